"""Shared test configuration: hypothesis profiles and helpers."""

import os

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          max_examples=60, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=40)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def streamed_outputs():
    """Every reused or caller's output written with the streamed stores, as
    if it were larger than the CPU's cache: the small arrays of the tests
    then cover both store paths (fresh arrays take the plain one).
    test_gradient_cache checks the real threshold."""
    from fastloss import _buffers

    old = _buffers._stream_bytes
    _buffers._stream_bytes = 0
    yield
    _buffers._stream_bytes = old


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


def tol(dtype):
    """(rtol, atol) for comparing a result of `dtype` with a float64 oracle."""
    return (1e-4, 1e-5) if np.dtype(dtype) == np.float32 else (1e-10, 1e-12)


def compile_or_skip(fn):
    """torch.compile(fn) with the aot_eager backend, full graph; skip the test
    where this torch install cannot compile."""
    import torch

    try:
        import torch._dynamo  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the install
        pytest.skip(f"torch.compile unusable here: {exc}")
    return torch.compile(fn, backend="aot_eager", fullgraph=True)


def run_python(code, env=None, timeout=300):
    """Run ``python -c code`` importing the same fastloss as this process.

    The child runs outside the source tree (so it cannot pick up the
    uncompiled package) with PYTHONPATH pointing at the directory that holds
    the fastloss under test.  Returns the CompletedProcess.
    """
    import subprocess
    import sys
    import tempfile

    import fastloss

    root = os.path.dirname(os.path.dirname(os.path.abspath(fastloss.__file__)))
    full = dict(os.environ)
    full["PYTHONPATH"] = root + os.pathsep + full.get("PYTHONPATH", "")
    full.update(env or {})
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=full, cwd=cwd, timeout=timeout)
