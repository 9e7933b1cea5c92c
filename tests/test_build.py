"""The build: compiled kernels, OpenMP on, CPU target reported."""

import importlib
import io
import os

import pytest

import fastloss as fl
from fastloss import _dispatch

from conftest import run_python


def test_openmp_enabled():
    if os.environ.get("FASTLOSS_ALLOW_SERIAL") == "1":
        pytest.skip("serial build explicitly allowed by FASTLOSS_ALLOW_SERIAL=1")
    assert fl._openmp_enabled(), (
        "fastloss was built without OpenMP: every kernel runs on one thread. "
        "Rebuild with an OpenMP-capable compiler (or set FASTLOSS_ALLOW_SERIAL=1)."
    )


def test_kernels_are_compiled_extensions():
    for family in ("lse", "classification"):
        mod = _dispatch.kernels(family)
        assert mod.__file__.endswith((".so", ".pyd")), mod.__file__
        assert f"_{_dispatch.TARGET}" in mod.__name__


def test_every_built_target_imports():
    built = [t for t, _ in _dispatch.TARGETS if _dispatch._built(t)]
    assert "baseline" in built
    for t in built:
        if t in _dispatch.runnable():
            importlib.import_module(f"fastloss._{t}._classification")


def test_listing_the_targets_imports_none_of_them():
    # A build for instructions the CPU lacks can die of SIGILL as it loads:
    # show_config and the bench list the built targets without loading a
    # kernel module of any but the chosen one.
    code = ("import sys, io, fastloss; fastloss.show_config(io.StringIO()); "
            "import fastloss.bench.machine as m; m.fastloss_config(); "
            "print(sorted(k for k in sys.modules if k.startswith('fastloss._x86_64') "
            "and k.count('.') == 2))")
    out = run_python(code, {"FASTLOSS_CPU_TARGET": "baseline"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_target_the_cpu_lacks_is_refused(monkeypatch):
    monkeypatch.setattr(_dispatch, "_cpu_features", lambda: {"SSE2"})
    assert _dispatch._missing("baseline") == []
    assert "AVX2" in _dispatch._missing("x86_64_v3")
    monkeypatch.setenv("FASTLOSS_CPU_TARGET", "x86_64_v3")
    if _dispatch._built("x86_64_v3"):
        with pytest.raises(ImportError, match="x86_64_v3.*needs AVX2"):
            _dispatch._choose()
    monkeypatch.delenv("FASTLOSS_CPU_TARGET")
    assert _dispatch._choose()[0] == "baseline"
    assert _dispatch.runnable() == ["baseline"]


def test_show_config():
    buf = io.StringIO()
    fl.show_config(file=buf)
    text = buf.getvalue()
    assert f"fastloss {fl.__version__}" in text
    assert "OpenMP:" in text and "CPU target:" in text and _dispatch.TARGET in text
    # the Dice planes are requested ahead except on AMD CPUs: the kernels'
    # reading of the CPU model agrees with the kernel's /proc/cpuinfo
    ahead = _dispatch.kernels("segmentation").PLANES_AHEAD
    assert ("class planes: yes" in text) == ahead
    try:
        with open("/proc/cpuinfo") as f:
            vendors = {line.split(":")[1].strip() for line in f if line.startswith("vendor_id")}
    except OSError:
        vendors = set()
    if vendors == {"AuthenticAMD"}:
        assert not ahead and "class planes: no (an AMD CPU)" in text
    elif vendors == {"GenuineIntel"}:
        assert ahead


def test_forced_target_and_bad_value():
    code = "import fastloss._dispatch as d; print(d.TARGET, '|', d.REASON)"
    out = run_python(code, {"FASTLOSS_CPU_TARGET": "baseline"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("baseline | forced")
    out = run_python(code, {"FASTLOSS_CPU_TARGET": "pentium"})
    assert out.returncode != 0 and "FASTLOSS_CPU_TARGET must be one of" in out.stderr


def test_fastloss_does_not_import_peers():
    code = ("import sys, fastloss; bad = [m for m in ('torch', 'scipy', 'sklearn', 'monai') "
            "if m in sys.modules]; print(bad)")
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
