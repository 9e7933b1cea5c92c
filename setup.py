"""Build script: Cython kernels, OpenMP probe, and one build per CPU target.

Every kernel module ``src/_<family>.pyx`` is compiled once per CPU target
into ``fastloss/_<target>/_<family>``; ``fastloss/_dispatch.py`` picks the
best target the running CPU supports.  Targets:

* ``baseline``  -- plain x86-64 (SSE2) or the platform default elsewhere;
* ``x86_64_v3`` -- AVX2 + FMA + BMI2 (``-march=x86-64-v3``), x86-64 only;
* ``x86_64_v4`` -- AVX-512 F/CD/VL/BW/DQ with 512-bit vectors
  (``-march=x86-64-v4 -mprefer-vector-width=512``), x86-64 only.

``src/_openmp_helpers.pyx`` is compiled once (it holds no hot loop).

Environment variables:

* ``FASTLOSS_FAIL_NO_OPENMP=1`` -- fail instead of building serially when
  the compiler cannot build and run an OpenMP program;
* ``FASTLOSS_DEBUG=1`` -- Cython bounds and wraparound checks on;
* ``FASTLOSS_SANITIZE=1`` -- AddressSanitizer + UBSan, ``-O1``;
* ``FASTLOSS_TARGETS=baseline`` -- build only the listed targets;
* ``FASTLOSS_MODULES=_lse,_classification`` -- build only the listed kernel
  modules (development: rebuild one family without touching the others).
"""

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
SRC = "src"
KERNELS = sorted(
    p.stem for p in (HERE / SRC).glob("_*.pyx") if p.stem != "_openmp_helpers"
)

IS_X86_64 = platform.machine().lower() in ("x86_64", "amd64")
TARGET_FLAGS = {
    "baseline": [],
    "x86_64_v3": ["-march=x86-64-v3"],
    "x86_64_v4": ["-march=x86-64-v4", "-mprefer-vector-width=512"],
}
# MSVC has no -march: /arch selects the instruction set (x64 default: SSE2).
MSVC_TARGET_FLAGS = {
    "baseline": [],
    "x86_64_v3": ["/arch:AVX2"],
    "x86_64_v4": ["/arch:AVX512"],
}


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _targets():
    wanted = os.environ.get("FASTLOSS_TARGETS")
    targets = ["baseline", "x86_64_v3", "x86_64_v4"] if IS_X86_64 else ["baseline"]
    if wanted:
        targets = [t for t in targets if t in wanted.split(",")]
    return targets


OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        #pragma omp parallel num_threads(2)
        printf("thread %d\\n", omp_get_thread_num());
        return 0;
    }
    """
)


def _openmp_flags(compiler):
    """Compile, link and run a parallel region; return (compile, link) flags.

    Returns ``None`` when no flag works.  The program must print one line per
    thread, so a compiler that accepts the flag but links a stub fails too.
    """
    if sys.platform == "win32":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    for cflags, lflags in candidates:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(OPENMP_PROBE)
            try:
                objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                exe = os.path.join(tmp, "probe")
                compiler.link_executable(objs, exe, extra_postargs=lflags)
                out = subprocess.run([exe], capture_output=True, text=True, timeout=60)
            except Exception as exc:  # compiler or link error: try the next flag
                print(f"fastloss: OpenMP probe with {cflags} failed: {exc}")
                continue
            if out.returncode == 0 and len(out.stdout.strip().splitlines()) == 2:
                return cflags, lflags
    return None


class BuildExt(build_ext):
    """build_ext that applies the OpenMP and optimisation flags per compiler."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:  # compile the per-target modules concurrently
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        probe = _openmp_flags(self.compiler)
        if probe is None:
            msg = (
                "\n" + "*" * 72 + "\n"
                "fastloss: the C compiler cannot build an OpenMP program.\n"
                "Building SERIAL kernels: every loss will run on one thread.\n"
                "Install an OpenMP-capable compiler (gcc, or clang + libomp),\n"
                "or set FASTLOSS_FAIL_NO_OPENMP=1 to make this an error.\n" + "*" * 72
            )
            if _env_flag("FASTLOSS_FAIL_NO_OPENMP"):
                raise RuntimeError(msg)
            print(msg, file=sys.stderr)
            omp_c, omp_l = [], []
        else:
            omp_c, omp_l = probe
            print(f"fastloss: OpenMP enabled with {' '.join(omp_c)}")

        if msvc:
            base = ["/O2", "/fp:precise"]
        elif _env_flag("FASTLOSS_SANITIZE"):
            base = ["-O1", "-g", "-fno-omit-frame-pointer",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
            omp_l = omp_l + ["-fsanitize=address,undefined"]
        else:
            # -fno-trapping-math lets selects become vector blends and
            # -fno-math-errno lets sqrt be an instruction; both keep IEEE
            # NaN/inf semantics (unlike -ffast-math, which is never used).
            base = ["-O3", "-g0", "-fno-trapping-math", "-fno-math-errno"]
        for ext in self.extensions:
            target = getattr(ext, "_fastloss_target", "baseline")
            flags = (MSVC_TARGET_FLAGS if msvc else TARGET_FLAGS)[target]
            ext.extra_compile_args = base + flags + omp_c + ext.extra_compile_args
            ext.extra_link_args = omp_l + ext.extra_link_args
        super().build_extensions()


def _modules():
    wanted = os.environ.get("FASTLOSS_MODULES")
    if not wanted:
        return KERNELS, True
    names = wanted.split(",")
    return [k for k in KERNELS if k in names], "_openmp_helpers" in names


def _extensions():
    directives = {
        "language_level": 3,
        "boundscheck": _env_flag("FASTLOSS_DEBUG"),
        "wraparound": _env_flag("FASTLOSS_DEBUG"),
        "initializedcheck": False,
        "nonecheck": False,
        "cdivision": True,
        "embedsignature": True,
    }
    common = dict(
        include_dirs=[SRC, np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    )
    kernels, with_helpers = _modules()
    exts = []
    if with_helpers:
        exts += cythonize(
            [Extension("fastloss._openmp_helpers", [f"{SRC}/_openmp_helpers.pyx"], **common)],
            include_path=[SRC],
            compiler_directives=directives,
            build_dir="build/cython/common",
        )
    for target in _targets():
        mods = [
            Extension(f"fastloss._{target}.{name}", [f"{SRC}/{name}.pyx"], **common)
            for name in kernels
        ]
        # One C file per (module, target): build_dir keeps them apart.
        built = cythonize(
            mods,
            include_path=[SRC],
            compiler_directives=directives,
            build_dir=f"build/cython/{target}",
        )
        for ext in built:
            ext._fastloss_target = target
        exts += built
    return exts


if __name__ == "__main__":
    if os.environ.get("FASTLOSS_CLEAN_CYTHON"):
        shutil.rmtree(HERE / "build" / "cython", ignore_errors=True)
    setup(
        ext_modules=_extensions(),
        cmdclass={"build_ext": BuildExt},
        packages=find_packages(include=["fastloss", "fastloss.*"]),
    )
