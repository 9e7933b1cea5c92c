"""Sphinx configuration for the fastloss documentation.

Build: ``pip install -e ".[docs]"`` then
``sphinx-build -W --keep-going -b html docs docs/_build/html``.

The API pages are generated from the ``__all__`` lists of the public
modules (see ``_write_api_pages``), so a name added to ``__all__`` gets its
page on the next build without editing these files.

Intersphinx links to NumPy, SciPy, PyTorch and MONAI need their inventories
from the network; a build without network access would fail with ``-W``.
They are therefore enabled only when ``FASTLOSS_DOCS_INTERSPHINX=1`` is set
(CI machines with network access, release builds).
"""

import os
import sys
from pathlib import Path

import fastloss

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # _apigen

project = "fastloss"
author = "the fastloss developers"
copyright = "the fastloss developers"
version = release = fastloss.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "api/family_*.md", "gallery/README.txt", "**/GALLERY_HEADER.rst",
                    "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.codeobj.json"]

# ---- API pages -----------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

from _apigen import write_api_pages  # noqa: E402

write_api_pages(DOCS / "api")

# ---- math ------------------------------------------------------------------
# MathJax from its CDN by default; FASTLOSS_DOCS_MATHJAX names a local copy
# (a URL or path relative to the built site) for machines without network.
if os.environ.get("FASTLOSS_DOCS_MATHJAX"):
    mathjax_path = os.environ["FASTLOSS_DOCS_MATHJAX"]

# ---- cross-project links -----------------------------------------------------
intersphinx_mapping = {}
if os.environ.get("FASTLOSS_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "scipy": ("https://docs.scipy.org/doc/scipy/", None),
        "torch": ("https://pytorch.org/docs/stable/", None),
        "monai": ("https://docs.monai.io/en/stable/", None),
        "dask": ("https://docs.dask.org/en/stable/", None),
    }

# ---- gallery ---------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    # every example must run: a failing one fails the build
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "matplotlib_animations": False,
}

# ---- HTML ------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"fastloss {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_css_files = ["fastloss.css"]
# the guide's single pages have no section navigation: give their wide
# tables the sidebar's room
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_sidebars.update({page: [] for page in (
    "index", "design", "guide/install", "guide/conventions", "guide/torch", "guide/dask",
    "guide/benchmarks")})
html_show_sourcelink = False
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]
