"""Choose, once at import, the kernel build that the CPU runs fastest.

Every kernel module is compiled for several CPU targets (see setup.py).
The best target whose instruction sets the CPU reports (through NumPy's
CPU feature detection) is chosen; ``FASTLOSS_CPU_TARGET`` forces one.
``fastloss.show_config()`` reports the choice and the reason.
``use_target(name)`` runs a block of code on another target's kernels (tests
and tools).
"""

import contextlib
import importlib
import importlib.util
import os
import sys
import types

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


def _load(target, family):
    """Import ``fastloss._<target>._<family>``.

    The three targets compile one C file per kernel module, generated under
    the target-neutral name ``fastloss._kernels._<family>`` (setup.py); the
    module takes its name from the import, and its functions are given that
    name as their ``__module__`` here.
    """
    mod = importlib.import_module(f"fastloss._{target}._{family}")
    neutral = f"fastloss._kernels._{family}"
    for val in vars(mod).values():
        if getattr(val, "__module__", None) == neutral:
            val.__module__ = mod.__name__
    return mod


def _built(target):
    """Whether ``target``'s kernels were compiled, found without importing them.

    Loading a build for instructions this CPU lacks can execute one of them
    in the module's initialisation (a SIGILL, not an ImportError), so a
    target is imported only when nothing is :func:`_missing` for it.
    """
    return importlib.util.find_spec(f"fastloss._{target}._lse") is not None


def _missing(target):
    """The CPU features ``target`` needs that this CPU does not report."""
    features = _cpu_features()
    return [f for f in dict(TARGETS)[target] if f not in features]


def runnable():
    """The targets that were built and that this CPU runs, best first."""
    return [name for name, _ in TARGETS if _built(name) and not _missing(name)]


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
        missing = _missing(forced)
        if missing:
            raise ImportError(f"FASTLOSS_CPU_TARGET={forced!r} needs {', '.join(missing)}, "
                              "which this CPU does not report")
        return forced, "forced by FASTLOSS_CPU_TARGET"
    for name, needs in TARGETS:
        if _missing(name):
            continue
        if _built(name):
            reason = f"CPU has {', '.join(needs)}" if needs else "portable fallback"
            return name, reason
    raise ImportError("no fastloss kernel build found: was the package compiled?")


TARGET, REASON = _choose()


def kernels(family):
    """The compiled module ``src/_<family>.pyx`` for the chosen target."""
    return _load(TARGET, family)


def _check_usable(name):
    """Raise ValueError unless ``name`` is a target that was built and this CPU runs."""
    needs = dict(TARGETS)
    if name not in needs:
        raise ValueError(f"unknown CPU target {name!r}: the targets are {[t for t, _ in TARGETS]}")
    if not _built(name):
        built = [t for t, _ in TARGETS if _built(t)]
        raise ValueError(f"CPU target {name!r} was not built on this platform (built: {built})")
    missing = _missing(name)
    if missing:
        raise ValueError(f"CPU target {name!r} needs {', '.join(missing)}, "
                         "which this CPU does not report")


def _repoint(old, new):
    """Point every loaded fastloss module's references to kernel modules of
    target ``old`` at the same kernel modules of target ``new``."""
    prefix = f"fastloss._{old}."
    builds = tuple(f"fastloss._{t}" for t, _ in TARGETS)
    for modname, mod in list(sys.modules.items()):
        if mod is None or not modname.startswith("fastloss."):
            continue
        if modname in builds or modname.startswith(tuple(b + "." for b in builds)):
            continue   # the target packages themselves
        for attr, val in list(vars(mod).items()):
            if isinstance(val, types.ModuleType) and val.__name__.startswith(prefix):
                family = val.__name__[len(prefix) + 1:]
                setattr(mod, attr, _load(new, family))


@contextlib.contextmanager
def use_target(name):
    """Run the code in a ``with`` block on the kernels of CPU target ``name``.

    For tests and tools that compare targets in one process.  Inside the
    block, ``TARGET`` is ``name``, :func:`kernels` returns ``name``'s build,
    and every loaded fastloss module that holds a kernel module of the
    previous target (``fastloss.lse._k`` and the like) holds ``name``'s
    build of it instead.  On leaving the block, also by an exception, the
    previous selection is restored.  Blocks nest.  Not thread-safe: the
    switch changes module attributes that every thread reads.

    Parameters
    ----------
    name : str
        One of the names in ``TARGETS`` ('x86_64_v4', 'x86_64_v3',
        'baseline'), built on this platform and runnable on this CPU.

    Raises
    ------
    ValueError
        If ``name`` is not a target, was not built, or needs an instruction
        set this CPU does not report.

    Examples
    --------
    >>> import fastloss
    >>> from fastloss import _dispatch
    >>> with _dispatch.use_target("baseline"):
    ...     print(fastloss.lse._k.__name__, _dispatch.kernels("lse").__name__)
    fastloss._baseline._lse fastloss._baseline._lse
    >>> fastloss.lse._k.__name__ == f"fastloss._{_dispatch.TARGET}._lse"
    True
    """
    global TARGET, REASON
    _check_usable(name)
    previous, previous_reason = TARGET, REASON
    _repoint(previous, name)
    TARGET, REASON = name, "selected by fastloss._dispatch.use_target"
    try:
        yield
    finally:
        _repoint(name, previous)
        TARGET, REASON = previous, previous_reason
