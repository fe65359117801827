"""Sphinx configuration of the fairskl documentation.

Build with ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``). The
build needs no network: the intersphinx inventories are written from the installed packages
(``_inventories.py``). Nor does reading it: sphinx-mathjax-offline copies MathJax into
``_static/mathjax/`` and points ``mathjax_path`` there, so the equations render offline too.
"""

import os
import sys
from pathlib import Path

# sphinx-gallery runs the examples in this process; never open a window.
os.environ.setdefault("MPLBACKEND", "Agg")

import fairskl  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _inventories import intersphinx_mapping as _offline_inventories  # noqa: E402

project = "fairskl"
author = "The fairskl developers"
copyright = "The fairskl developers"
release = fairskl.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from _static/, not from a CDN
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates", "Thumbs.db", ".DS_Store"]
default_role = "literal"

# -- autodoc / autosummary / numpydoc ------------------------------------------------------------
# api.rst lists the public names; autosummary writes one page per name into generated/
# (gitignored, rewritten on every build) with the templates in _templates/autosummary/.
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters section is the single source of types
# numpydoc would add a Methods table to each class page whose entries link to stub pages that
# autosummary does not write (a warning for TradeoffRefit.__call__); the class template uses
# autodoc's :members: instead.
numpydoc_show_class_members = False

# -- intersphinx: links to scikit-learn, fairlearn, skorch, torch and torchvision -----------------
intersphinx_mapping = _offline_inventories(Path(__file__).parent / "_build" / "_inventories")

# -- sphinx-gallery ------------------------------------------------------------------------------
# Every examples/plot_*.py is run during the build; one that raises fails the build.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # "Gallery examples" on each API page (the minigallery directive of the templates)
    "doc_module": ("fairskl",),
    "backreferences_dir": "generated/backreferences",
    # link the names used in the examples' code to their API pages, ours and the others'
    "reference_url": {"fairskl": None},
}

# -- HTML ----------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"fairskl {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
}
html_show_sourcelink = False


# scikit-learn generates set_*_request methods (metadata routing) on estimators whose fit or
# score take extra arguments; their docstrings link into scikit-learn's own glossary, and they
# are documented there. Leave them out of our class pages.
def _skip_request_methods(app, what, name, obj, skip, options):
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_request_methods)
