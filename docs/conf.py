"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build`` from the repository root.

Offline by design: no intersphinx, no theme or extension beyond Sphinx, numpydoc and myst-parser.
The package is imported from this checkout (not from whatever is installed), and the proofs and
the report are included from ``proofs/`` and ``figures/`` rather than copied into ``docs/``.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import softlog_numerics  # noqa: E402

project = "softlog-numerics"
author = "the softlog-numerics authors"
copyright = "the softlog-numerics authors"
release = version = softlog_numerics.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []

# autodoc: document what each module's ``__all__`` lists, in source order, under the public path
autodoc_default_options = {"members": True, "undoc-members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
add_module_names = False

# numpydoc: no autosummary tables of class members (each member is documented by autodoc)
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# myst: $...$ and $$...$$ maths (the proofs), heading anchors for links to sections
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3


def _attribute_doc(obj, name):
    """The ``#:`` or string docstring of the module attribute ``name`` bound to ``obj``, from the
    module of the package that assigns it (a re-exported constant has none where it is imported)."""
    from sphinx.pycode import ModuleAnalyzer

    for modname, module in sorted(sys.modules.items()):
        if not modname.startswith("softlog_numerics") or getattr(module, name, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:  # no source: try the next module
            continue
        if ("", name) in docs:
            return list(docs[("", name)])
    return None


def _data_docstring(app, what, name, obj, options, lines):
    """A re-exported constant is documented with its own docstring, not its type's (``tuple``)."""
    if what != "data":
        return
    type_doc = (type(obj).__doc__ or "").strip().splitlines()
    if lines and [ln.strip() for ln in lines[: len(type_doc)]] == [ln.strip() for ln in type_doc]:
        lines[:] = _attribute_doc(obj, name.rsplit(".", 1)[-1]) or []


def setup(app):
    app.connect("autodoc-process-docstring", _data_docstring, priority=100)
