"""Choose, once at import, the kernel build that the CPU runs fastest.

Every kernel module is compiled for several CPU targets (see setup.py).
The best target whose instruction sets the CPU reports (through NumPy's
CPU feature detection) is chosen; ``FASTLOSS_CPU_TARGET`` forces one.
``fastloss.show_config()`` reports the choice and the reason.
"""

import importlib
import os

# Best first.  Each target lists the NumPy CPU features it needs.
TARGETS = (
    ("x86_64_v4", ("AVX512F", "AVX512CD", "AVX512VL", "AVX512BW", "AVX512DQ", "AVX2", "FMA3")),
    ("x86_64_v3", ("AVX2", "FMA3", "F16C", "BMI2")),
    ("baseline", ()),
)


def _cpu_features():
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy < 2
        from numpy.core._multiarray_umath import __cpu_features__
    return {name for name, present in __cpu_features__.items() if present}


def _built(target):
    try:
        importlib.import_module(f"fastloss._{target}._lse")
    except ImportError:
        return False
    return True


def _choose():
    forced = os.environ.get("FASTLOSS_CPU_TARGET", "").strip()
    names = [name for name, _ in TARGETS]
    if forced:
        if forced not in names:
            raise ImportError(
                f"FASTLOSS_CPU_TARGET must be one of {names}, got {forced!r}"
            )
        if not _built(forced):
            raise ImportError(f"FASTLOSS_CPU_TARGET={forced!r} was not built on this platform")
        return forced, "forced by FASTLOSS_CPU_TARGET"
    features = _cpu_features()
    for name, needs in TARGETS:
        missing = [f for f in needs if f not in features]
        if missing:
            continue
        if _built(name):
            reason = f"CPU has {', '.join(needs)}" if needs else "portable fallback"
            return name, reason
    raise ImportError("no fastloss kernel build found: was the package compiled?")


TARGET, REASON = _choose()


def kernels(family):
    """The compiled module ``src/_<family>.pyx`` for the chosen target."""
    return importlib.import_module(f"fastloss._{TARGET}._{family}")
