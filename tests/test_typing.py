"""The package is typed (PEP 561): ``py.typed`` is shipped, mypy passes on the package with the
settings of ``[tool.mypy]`` in pyproject.toml, and every public function is annotated (every
parameter and the return), so that the coverage of the type hints cannot silently shrink."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import pytest

import softlog_numerics as sn
from softlog_numerics import oracle

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(sn.__file__).resolve().parent

MODULES = {
    "softlog_numerics": sn,
    "softlog_numerics.grad": sn.grad,
    "softlog_numerics.oracle": oracle,
    "softlog_numerics.oracle.grad": oracle.grad,
    **{f"softlog_numerics.{m}": getattr(sn, m)
       for m in ("ulp", "strategies", "audit", "accuracy", "algorithms", "regions")},
}


def _public_functions():
    for modname, module in MODULES.items():
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) or (callable(obj) and hasattr(obj, "__wrapped__")):
                yield f"{modname}.{name}", obj


PUBLIC_FUNCTIONS = dict(_public_functions())


def test_py_typed_is_shipped():
    assert (PACKAGE / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["softlog_numerics"]
    assert any(r.startswith("mypy") for r in config["project"]["optional-dependencies"]["test"])


def test_public_functions_are_found():
    # the production functions, their derivatives and oracle twins, and the verification tools
    assert len(PUBLIC_FUNCTIONS) >= 80, sorted(PUBLIC_FUNCTIONS)
    assert "softlog_numerics.softlog" in PUBLIC_FUNCTIONS
    assert "softlog_numerics.oracle.grad.cross_entropy_jvp" in PUBLIC_FUNCTIONS


@pytest.mark.parametrize("name", sorted(PUBLIC_FUNCTIONS))
def test_public_function_is_annotated(name):
    """Every parameter and the return (inspect.signature follows the array_api wrapper to the
    NumPy function it wraps)."""
    sig = inspect.signature(PUBLIC_FUNCTIONS[name])
    missing = [p for p, v in sig.parameters.items() if v.annotation is inspect.Parameter.empty]
    assert not missing, f"{name}: parameters without a type hint: {missing}"
    assert sig.return_annotation is not inspect.Signature.empty, f"{name}: no return type hint"


ALIASES = ("accuracy", "algorithms", "audit", "grad", "regions", "strategies", "ulp")
"""The public module paths that ``softlog_numerics/__init__.py`` registers in ``sys.modules``:
each has a stub ``softlog_numerics/<name>.pyi`` so that type checkers resolve them too."""

# A user's imports through the public paths, type-checked with the package.
PROBE = """
import numpy as np

import softlog_numerics as sn
from softlog_numerics.accuracy import measure
from softlog_numerics.algorithms import variants
from softlog_numerics.audit import audit
from softlog_numerics.grad import log_softmax_jvp
from softlog_numerics.regions import formula_thresholds
from softlog_numerics.strategies import logit_vectors
from softlog_numerics.ulp import ulp_distance

x = np.linspace(-3.0, 3.0, 7, dtype=np.float32)
y = sn.log_softmax(x, axis=-1, temperature=2.0)
d: np.ndarray = ulp_distance(y, sn.oracle.log_softmax(x))
t: dict[str, float] = formula_thresholds("bfloat16")
"""


def test_public_module_paths_have_stubs():
    assert {n for n in ALIASES if n in sn.__all__} == set(ALIASES)
    for name in ALIASES:
        stub = (PACKAGE / f"{name}.pyi").read_text()
        target = getattr(sn, name).__name__
        assert f"from {target} import *" in stub, name
        assert not (PACKAGE / f"{name}.py").exists(), name


def test_mypy_passes_on_the_package(tmp_path):
    """``mypy softlog_numerics`` with the pyproject settings and a fresh cache (about 5 s), with a
    user's module importing through the public paths."""
    from mypy import api  # in the test extra

    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    stdout, stderr, status = api.run([
        "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(tmp_path / "mypy-cache"),
        "--show-error-codes",
        str(PACKAGE),
        str(probe),
    ])
    assert status == 0, f"mypy exit status {status}\n{stdout}\n{stderr}"
