"""Write the API reference pages from the public modules' ``__all__``.

One page per public module lists its names in autosummary tables (one
generated page per name).  The NumPy API (``fastloss.__all__``) is grouped
by the module that defines each function, so a new family module gets its
own section as soon as its names are in ``fastloss.__all__``.
"""

import importlib
import inspect
from pathlib import Path

# (module, title, intro); modules that need an optional dependency are
# documented when it is installed ([docs] installs torch and dask).
MODULES = [
    ("fastloss", "NumPy API", "Losses, metrics and settings on NumPy arrays."),
    ("fastloss.torch", "fastloss.torch", "Loss modules for PyTorch training loops."),
    ("fastloss.torch.functional", "fastloss.torch.functional",
     "Differentiable functions with torch's signatures."),
    ("fastloss.metrics", "fastloss.metrics", "Mergeable accumulators."),
    ("fastloss.dask", "fastloss.dask", "The same losses and metrics on dask arrays."),
    ("fastloss.gbdt", "fastloss.gbdt",
     "Gradient-boosting objectives: gradient, Hessian and loss value from one pass, with "
     "adapters for XGBoost, LightGBM, CatBoost and their scikit-learn estimators "
     "(see :doc:`../guide/gbdt`)."),
    ("fastloss.testing", "fastloss.testing", "Gradient checks."),
]

# section titles for the family modules of the NumPy API; a module missing
# here is titled by its own name
FAMILIES = {
    "fastloss.lse": "Log-sum-exp, softmax",
    "fastloss.classification": "Classification: cross-entropy, focal, margins, face recognition",
    "fastloss.elementwise": "Element-wise: binary, regression, margins, regularizers",
    "fastloss.embedding": "Metric learning: embeddings",
    "fastloss.detection": "Detection",
    "fastloss.segmentation": "Segmentation and hard metrics",
    "fastloss.distance": "Distance transforms and surface metrics",
}


def public_names(modname):
    """The documented names of a module: its ``__all__`` without submodules."""
    mod = importlib.import_module(modname)
    out = []
    for name in getattr(mod, "__all__", ()):
        obj = getattr(mod, name)
        if inspect.ismodule(obj) or name.startswith("__"):
            continue
        out.append(name)
    return out


def _table(modname, names):
    lines = [f".. currentmodule:: {modname}", "", ".. autosummary::",
             "   :toctree: generated/", "   :nosignatures:", ""]
    lines += [f"   {n}" for n in names]
    return "\n".join(lines) + "\n"


def _page(modname, title, intro):
    names = public_names(modname)
    head = f"{title}\n{'=' * len(title)}\n\n{intro}\n\n"
    if modname != "fastloss":
        head += f".. automodule:: {modname}\n   :no-members:\n\n"
        return head + _table(modname, names)
    mod = importlib.import_module(modname)
    groups = {}
    for n in names:
        owner = getattr(getattr(mod, n), "__module__", "fastloss") or "fastloss"
        key = owner if owner.startswith("fastloss.") and owner not in (
            "fastloss._threads", "fastloss._buffers") else "fastloss"
        groups.setdefault(key, []).append(n)
    body = head
    order = [m for m in FAMILIES if m in groups]
    order += sorted(m for m in groups if m not in FAMILIES and m != "fastloss")
    for key in order:
        sec = FAMILIES.get(key, key)
        body += f"{sec}\n{'-' * len(sec)}\n\n{_table('fastloss', groups[key])}\n"
    if "fastloss" in groups:
        sec = "Threads, gradient cache, configuration"
        body += f"{sec}\n{'-' * len(sec)}\n\n{_table('fastloss', groups['fastloss'])}\n"
    return body


def page_name(modname):
    return "numpy" if modname == "fastloss" else modname.replace("fastloss.", "").replace(".", "_")


def _family_list(modname):
    """A MyST snippet: the autosummary table of one family module's names,
    linking to their pages in the API reference (included by the guide)."""
    lines = ["```{eval-rst}", ".. currentmodule:: fastloss", "", ".. autosummary::",
             "   :nosignatures:", ""]
    lines += [f"   {n}" for n in public_names(modname)]
    return "\n".join(lines + ["```", ""])


def _write(path, text):
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_api_pages(outdir):
    """Write ``outdir/<page>.rst`` for every module and
    ``outdir/family_<name>.md`` for every family module (only when changed)."""
    outdir = Path(outdir)
    outdir.mkdir(exist_ok=True)
    for modname, title, intro in MODULES:
        _write(outdir / f"{page_name(modname)}.rst", _page(modname, title, intro))
    for modname in FAMILIES:
        short = modname.split(".")[-1]
        _write(outdir / f"family_{short}.md", _family_list(modname))
