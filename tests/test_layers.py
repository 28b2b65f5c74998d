"""The package's architecture, checked: every module imports only its own layer or the layers below
it, no two modules import each other (directly or around a longer loop), and the package's own
modules are never imported inside a function (the only function-local imports are of the optional
heavy libraries, so that ``import softlog_numerics`` stays light).

The layers, lowest first (the package docstring of ``softlog_numerics`` states the same order):
``_core``; ``functions`` and ``oracle``, side by side and blind to each other; ``testing``;
``analysis``; ``report``; ``cli``; and the package itself (``__init__``, ``__main__``).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import softlog_numerics

PACKAGE = Path(softlog_numerics.__file__).parent

RANK = {"_core": 0, "functions": 1, "oracle": 1, "testing": 2, "analysis": 3, "report": 4, "cli": 5}
TOP = 6  # softlog_numerics/__init__.py and __main__.py

LAZY = {"matplotlib", "torch", "jax", "dask", "scipy", "array_api_compat", "cupy"}
"""The only libraries a function may import when it runs (all optional or heavy)."""


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def _rank(module: str) -> int:
    layer = _layer(module)
    return TOP if layer is None else RANK[layer]


def _imports(path: Path):
    """(imported module, line, at top level?) for every import of the package in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import (write it absolute)"
            base = node.module or ""
            if base.split(".")[0] != "softlog_numerics":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in MODULES else base), node.lineno, id(node) in top
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "softlog_numerics":
                    yield alias.name, node.lineno, id(node) in top


def _graph() -> dict[str, set[str]]:
    return {m: {dep for dep, _, _ in _imports(p) if dep != m} for m, p in MODULES.items()}


def test_the_layers_are_the_subpackages():
    assert {_layer(m) for m in MODULES} - {None} == set(RANK)
    tops = {m for m in MODULES if _layer(m) is None}
    assert tops == {"softlog_numerics", "softlog_numerics.__main__"}, tops


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    """A module imports its own layer or lower ones; ``functions`` and ``oracle`` never each other
    (the oracle must not share code with what it checks); nothing imports the package root."""
    for dep, line, _ in _imports(MODULES[module]):
        where = f"{MODULES[module].name}:{line} imports {dep}"
        assert dep in MODULES, where + ", which is not a module of the package"
        if _rank(module) < TOP:
            assert dep != "softlog_numerics", where + " (the package root is the top layer)"
        assert _rank(dep) <= _rank(module), where + " (an upward import)"
        if _rank(dep) == _rank(module):
            assert _layer(dep) == _layer(module) or _rank(module) == TOP, where + " (a sibling layer)"


def test_no_import_cycles():
    """Tarjan's strongly connected components of the import graph are all single modules."""
    graph = _graph()
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_function_local_imports_except_the_lazy_libraries(module):
    tree = ast.parse(MODULES[module].read_text())
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            roots = {n.split(".")[0] for n in names}
            assert roots <= LAZY, f"{MODULES[module].name}:{node.lineno} imports {names} inside a function"


def test_the_graph_sees_the_imports():
    """The checks above can fail: the known edges are found."""
    graph = _graph()
    assert "softlog_numerics.oracle.enclosures" in graph["softlog_numerics.oracle.fast"]
    assert "softlog_numerics._core.formats" in graph["softlog_numerics.functions._softlog"]
    assert "softlog_numerics.analysis.sld_bounds" in graph["softlog_numerics.analysis.regions"]


def test_every_module_imports():
    """Every module of the tree imports (none is left behind by a move)."""
    for name in MODULES:
        if name != "softlog_numerics.__main__":  # runs the command line
            assert importlib.import_module(name).__file__ == str(MODULES[name])


@pytest.mark.parametrize("name", ["accuracy", "algorithms", "audit", "regions", "strategies", "ulp"])
def test_public_module_paths_are_the_layer_modules(name):
    """``softlog_numerics.<name>`` (attribute and import path) is the module of its layer."""
    module = importlib.import_module(f"softlog_numerics.{name}")
    assert module is getattr(softlog_numerics, name)
    assert _layer(module.__name__) in ("testing", "analysis")


@pytest.mark.parametrize("layer", sorted(RANK))
def test_every_layer_is_a_regular_package_that_says_what_it_holds(layer):
    """An ``__init__.py`` (without one, setuptools' package discovery leaves the folder out of the
    wheel) whose docstring names the layer's modules."""
    init = PACKAGE / layer / "__init__.py"
    assert init.exists(), f"{layer}/ has no __init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    modules = sorted(p.stem for p in (PACKAGE / layer).glob("*.py") if p.stem != "__init__")
    missing = [m for m in modules if f".{m}`" not in doc and not m.startswith("_")]
    assert doc and not missing, f"{layer}/__init__.py docstring does not name {missing}"


def _private_imports(module: str, source: str):
    """``(line, name, from)`` for each ``from m import _name`` in ``source`` (the code of ``module``)
    where ``_name`` is not a private module of ``module``'s own subpackage."""
    own = ".".join(module.split(".")[:2])
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("softlog_numerics")):
            continue
        for alias in node.names:
            is_own_module = f"{node.module}.{alias.name}" in MODULES and node.module == own
            if alias.name.startswith("_") and not is_own_module:
                yield node.lineno, alias.name, node.module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_crosses_a_module(module):
    """What another module needs is public in its module: ``from m import _name`` is refused unless
    ``_name`` is itself a (private) module of the importer's own subpackage."""
    found = list(_private_imports(module, MODULES[module].read_text()))
    assert not found, f"{MODULES[module].name} imports private names (line, name, from): {found}"


def test_the_private_name_check_can_fail():
    """The rule above refuses a private function taken from a sibling module, and a private module
    of another subpackage, and accepts a private module of one's own subpackage."""
    bad = "from softlog_numerics.functions._divergence import _dot_rows\n"
    assert list(_private_imports("softlog_numerics.functions._layer", bad)) == [
        (1, "_dot_rows", "softlog_numerics.functions._divergence")
    ]
    other = "from softlog_numerics.functions import _backward\n"
    assert len(list(_private_imports("softlog_numerics.oracle.grad", other))) == 1
    assert not list(_private_imports("softlog_numerics.functions.grad", other))
