"""The kernel modules' type stubs (``fastloss/_<target>/_<name>.pyi``,
``fastloss/_openmp_helpers.pyi``, written by ``tools/gen_kernel_stubs.py``):
in step with the ``.pyx`` sources, and naming the functions, parameters,
defaults, constants and enum members of the compiled modules that
``fastloss._dispatch.kernels`` loads."""

import ast
import enum
import importlib
import importlib.machinery
import importlib.util
import inspect
from pathlib import Path

import pytest

from fastloss import _dispatch

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "gen_kernel_stubs.py"


def _tool():
    if not TOOL.exists():
        pytest.skip("tools/ not present (tests run from an installed wheel)")
    spec = importlib.util.spec_from_file_location("gen_kernel_stubs", TOOL)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen


def _extensions(package):
    """Names of the extension modules built into ``package``'s directory."""
    here = Path(importlib.import_module(package).__file__).parent
    names = set()
    for p in here.iterdir():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:   # most specific first
            if p.name.startswith("_") and p.name.endswith(suffix):
                names.add(p.name[:-len(suffix)])
                break
    return sorted(names)


def _built_targets():
    return [t for t, _ in _dispatch.TARGETS if _dispatch._built(t)]


FAMILIES = [name[1:] for name in _extensions(f"fastloss._{_dispatch.TARGET}")]


def test_stubs_are_current():
    gen = _tool()
    stale = [f"{why}: {p.relative_to(ROOT)}" for p, why in gen.stale()]
    assert not stale, f"run python tools/gen_kernel_stubs.py: {stale}"
    assert gen.main(["--check"]) == 0


def test_every_built_target_has_the_same_stubs():
    chosen = Path(importlib.import_module(f"fastloss._{_dispatch.TARGET}").__file__).parent
    for t in _built_targets():
        here = Path(importlib.import_module(f"fastloss._{t}").__file__).parent
        for name in _extensions(f"fastloss._{t}"):
            stub = here / f"{name}.pyi"
            assert stub.is_file(), f"no stub for fastloss._{t}.{name}"
            assert stub.read_text() == (chosen / f"{name}.pyi").read_text(), stub


def _stub(mod):
    path = Path(mod.__file__).parent / (mod.__name__.rsplit(".", 1)[1] + ".pyi")
    assert path.is_file(), f"no stub beside {mod.__file__}"
    return ast.parse(path.read_text(), filename=str(path))


def _stub_params(fn):
    """[(name, kind, default)] of a stub function; default: a value, ... or None."""
    a = fn.args
    out = []

    def add(args, defaults, kind):
        defaults = [None] * (len(args) - len(defaults)) + list(defaults)
        for arg, d in zip(args, defaults):
            out.append((arg.arg, kind, None if d is None else ast.literal_eval(d)))

    positional = a.posonlyargs + a.args
    add(positional, a.defaults, "positional")
    if a.vararg:
        out.append((a.vararg.arg, "*", None))
    add(a.kwonlyargs, [d for d in a.kw_defaults if d is not None], "keyword")
    if a.kwarg:
        out.append((a.kwarg.arg, "**", None))
    return out


def _runtime_params(fn):
    kinds = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**",
             inspect.Parameter.KEYWORD_ONLY: "keyword"}
    out = []
    for p in inspect.signature(fn).parameters.values():
        default = None if p.default is p.empty else p.default
        out.append((p.name, kinds.get(p.kind, "positional"), default))
    return out


def _conforms(value, ann):
    """Whether ``value`` has the type of the stub annotation ``ann`` (the forms
    the generator writes: int, float, str, bool, Any, tuple[...])."""
    if isinstance(ann, ast.Name):
        if ann.id == "Any":
            return True
        types = {"int": int, "float": float, "str": str, "bool": bool}
        return ann.id in types and isinstance(value, types[ann.id])
    if isinstance(ann, ast.Subscript) and getattr(ann.value, "id", None) == "tuple":
        items = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
        if not isinstance(value, tuple):
            return False
        if len(items) == 2 and isinstance(items[1], ast.Constant) and items[1].value is ...:
            return all(_conforms(v, items[0]) for v in value)
        return len(items) == len(value) and all(_conforms(v, a) for v, a in zip(value, items))
    return False


def _check_module(mod):
    tree = _stub(mod)
    stub_funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    stub_enums = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    stub_consts = {n.target.id: n.annotation for n in tree.body if isinstance(n, ast.AnnAssign)}

    public = {n: v for n, v in vars(mod).items()
              if not n.startswith("_") and not inspect.ismodule(v)
              and getattr(v, "__module__", mod.__name__) == mod.__name__}
    funcs = {n: v for n, v in public.items() if callable(v) and not isinstance(v, type)}
    enums = {n: v for n, v in public.items() if isinstance(v, type) and issubclass(v, enum.Enum)}
    consts = {n: v for n, v in public.items() if n not in funcs and n not in enums}

    where = mod.__name__
    assert sorted(stub_funcs) == sorted(funcs), f"{where}: functions differ"
    assert sorted(stub_enums) == sorted(enums), f"{where}: enums differ"
    assert sorted(stub_consts) == sorted(consts), f"{where}: constants differ"
    for name, fn in funcs.items():
        stub = _stub_params(stub_funcs[name])
        real = _runtime_params(fn)
        assert [p[:2] for p in stub] == [p[:2] for p in real], f"{where}.{name}: parameters"
        for (pname, _, sd), (_, _, rd) in zip(stub, real):
            if sd is not Ellipsis:
                assert (sd, type(sd)) == (rd, type(rd)), f"{where}.{name}({pname}=): default"
    for name, cls in enums.items():
        stub = [(t.id, ast.literal_eval(n.value)) for n in stub_enums[name].body
                if isinstance(n, ast.Assign) for t in n.targets]
        real = [(m.name, m.value) for m in cls]
        assert [s[0] for s in stub] == [r[0] for r in real], f"{where}.{name}: members"
        assert all(s[1] is Ellipsis or s[1] == r[1] for s, r in zip(stub, real)), (
            f"{where}.{name}: member values")
    for name, value in consts.items():
        assert _conforms(value, stub_consts[name]), (
            f"{where}.{name} = {value!r} is not a {ast.unparse(stub_consts[name])}")


@pytest.mark.parametrize("family", FAMILIES)
def test_stub_names_the_compiled_kernels(family):
    _check_module(_dispatch.kernels(family))


def test_stub_of_openmp_helpers():
    mod = importlib.import_module("fastloss._openmp_helpers")
    _check_module(mod)
    assert isinstance(mod.openmp_enabled(), bool)
    assert isinstance(mod.omp_max_threads(), int)


def test_stub_of_tensor_views():
    _check_module(importlib.import_module("fastloss._tensor_views"))


SAMPLE_PXD = """
ctypedef fused floating:
    float
    double
"""

SAMPLE = '''
"""A module docstring that shows a signature:
def not_a_function(y):
"""
cdef extern from *:
    int c_count() nogil

ctypedef fused idx_t:
    int32_t
    int64_t

cdef enum:
    WIDTH = 8

LIMITS = (WIDTH, 2)   # a tuple
NAME = ("x" if WIDTH else "y") + (
    "z")
_PRIVATE = 1


cpdef enum Mode:
    FAST = 0    # comment
    SLOW = 1


def kern(const floating[:, ::1] x,   # the input, (n, k)
         floating[::1] g,
         const idx_t[::1] idx, double[::1] out not None,
         object extra, bint flag=False, Py_ssize_t n=-1, str s="a, b"):
    """Doc."""
    cdef Py_ssize_t bad = -1
    if flag:
        return 0.0, -1
    return total.loss, bad


def helper():
    pass


def count():
    return c_count()


def maybe(a):
    if a:
        return None
    return a.b


cpdef double twice(double v) noexcept:
    return 2 * v
'''


def test_generator_reads_cython_signatures():
    gen = _tool()
    text = gen.render_module("_sample", SAMPLE, [SAMPLE_PXD])
    ast.parse(text)
    for line in [
        "LIMITS: tuple[int, int]\n",
        "NAME: str\n",
        "class Mode(IntEnum):\n    FAST = 0\n    SLOW = 1\n",
        "# floating: one type for every floating argument of a call\ndef kern(\n",
        "    x: npt.NDArray[np.float32 | np.float64],  # const floating[:, ::1]\n"
        "    g: npt.NDArray[np.float32 | np.float64],  # floating[::1]\n",
        "    idx: npt.NDArray[np.int32 | np.int64],  # const idx_t[::1]\n",
        "    out: npt.NDArray[np.float64],  # double[::1]\n",
        "    extra: Any,\n",
        "    flag: bool = False,  # bint\n",
        "    n: int = -1,  # Py_ssize_t\n",
        '    s: str = "a, b",\n',
        ") -> tuple[float, int]: ...\n",
        "def helper() -> None: ...\n",
        "def count() -> int: ...\n",
        "    a: Any,\n) -> Any: ...\n",
        "def twice(\n    v: float,  # double\n) -> float: ...\n",
        "from enum import IntEnum\nfrom typing import Any\n\nimport numpy as np\n"
        "import numpy.typing as npt\n",
    ]:
        assert line in text, f"{line!r} not in\n{text}"
    assert "not_a_function" not in text and "_PRIVATE" not in text and "WIDTH" not in text
