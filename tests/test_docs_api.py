"""The API reference covers every public name, with complete docstrings and types.

* every name in ``fastloss.__all__`` and in the public submodules' ``__all__``
  gets a page from ``docs/_apigen.py`` (and, once the site is built, has
  its HTML page);
* its docstring has the numpydoc sections a reader needs: Parameters (when
  it takes any), Returns (functions) and Examples;
* the type stubs of the family modules match the functions' signatures, and
  ``py.typed`` and the stubs are installed with the package.
"""

import importlib
import importlib.resources
import inspect
import re
import sys
from pathlib import Path

import pytest

import fastloss

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MODULES = ["fastloss", "fastloss.torch", "fastloss.torch.functional", "fastloss.metrics",
           "fastloss.dask", "fastloss.testing", "fastloss.gbdt"]
NEEDS = {"fastloss.torch": "torch", "fastloss.torch.functional": "torch",
         "fastloss.dask": "dask.array"}


def _apigen():
    if not (DOCS / "_apigen.py").exists():
        pytest.skip("docs/ not present (tests run from an installed wheel)")
    sys.path.insert(0, str(DOCS))
    try:
        return importlib.import_module("_apigen")
    finally:
        sys.path.remove(str(DOCS))


def _module(name):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    return importlib.import_module(name)


def _public(modname):
    mod = _module(modname)
    names = [n for n in getattr(mod, "__all__", ())
             if not n.startswith("__") and not inspect.ismodule(getattr(mod, n))]
    assert names, f"{modname} has no __all__"
    return mod, names


def _cases():
    out = []
    for modname in MODULES:
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            out.append(pytest.param(modname, None, marks=pytest.mark.skip(reason="not installed")))
            continue
        for n in getattr(mod, "__all__", ()):
            if not n.startswith("__") and not inspect.ismodule(getattr(mod, n)):
                out.append(pytest.param(modname, n, id=f"{modname}.{n}"))
    return out


@pytest.mark.parametrize("modname", MODULES)
def test_every_public_name_has_an_api_page(modname, tmp_path):
    gen = _apigen()
    _, names = _public(modname)
    gen.write_api_pages(tmp_path)
    page = (tmp_path / f"{gen.page_name(modname)}.rst").read_text()
    assert modname in [m for m, _, _ in gen.MODULES]
    listed = set()
    for block in re.findall(r"\.\. currentmodule:: (\S+)\n\n\.\. autosummary::\n"
                            r"   :toctree: generated/\n   :nosignatures:\n\n((?:   \S+\n)+)", page):
        assert block[0] == modname
        listed |= {line.strip() for line in block[1].splitlines()}
    assert set(names) <= listed, f"no API page for {sorted(set(names) - listed)}"


def test_built_site_has_a_page_per_name():
    site = DOCS / "_build" / "html" / "api" / "generated"
    if not site.is_dir():
        pytest.skip("the site is not built (sphinx-build -b html docs docs/_build/html)")
    missing = []
    for modname in MODULES:
        _, names = _public(modname)
        missing += [f"{modname}.{n}" for n in names
                    if not (site / f"{modname}.{n}.html").is_file()]
    assert not missing, f"built site lacks pages for {missing}"


def _sections(doc):
    return set(re.findall(r"^(\w[\w ]*)\n-{3,}\s*$", doc, re.M))


@pytest.mark.parametrize("modname,name", _cases())
def test_docstring_sections(modname, name):
    obj = getattr(_module(modname), name)
    doc = inspect.getdoc(obj)
    assert doc, f"{modname}.{name} has no docstring"
    have = _sections(doc)
    want = {"Examples"}
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        params = [p for p in inspect.signature(target).parameters if p != "self"]
    except (TypeError, ValueError):
        params = ["?"]
    if params:
        want.add("Parameters")
    if not inspect.isclass(obj):
        want.add("Returns")
    assert want <= have, f"{modname}.{name}: missing {sorted(want - have)} sections"
    assert ">>> " in doc.split("Examples")[-1], f"{modname}.{name}: empty Examples"


def test_stubs_match_the_functions():
    tools = ROOT / "tools" / "gen_stubs.py"
    if not tools.exists():
        pytest.skip("tools/ not present (tests run from an installed wheel)")
    spec = importlib.util.spec_from_file_location("gen_stubs", tools)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    stale = []
    for modname in gen.family_modules():
        path = gen.stub_path(modname)   # fastloss/x.pyi, or x/__init__.pyi for a package
        if not path.exists() or path.read_text() != gen.render(modname):
            stale.append(str(path.relative_to(ROOT)))
    assert not stale, f"out of date (run python tools/gen_stubs.py): {stale}"


def test_py_typed_and_stubs_are_installed():
    pkg = importlib.resources.files("fastloss")
    assert pkg.joinpath("py.typed").is_file()
    owners = {getattr(fastloss, n).__module__ for n in fastloss.__all__
              if callable(getattr(fastloss, n))}
    for owner in sorted(o for o in owners if not o.split(".")[-1].startswith("_")):
        if owner == "fastloss":
            continue
        name = owner.split(".")[-1]
        assert (pkg.joinpath(name + ".pyi").is_file()
                or pkg.joinpath(name, "__init__.pyi").is_file()), f"no stub for {owner}"
