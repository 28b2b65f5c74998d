"""The public API is declared once: ``softlog_numerics.__all__`` is sorted and lists exactly the
public names; every public function has an oracle twin, keeps the input's dtype, and cites a proof."""

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import softlog_numerics as sn
from softlog_numerics import oracle
from softlog_numerics.testing.contract import LOSS_GRAD_BOUNDS, ULP_BOUNDS

ROOT = Path(__file__).resolve().parents[1]

FUNCTIONS = [
    "cross_entropy",
    "log_softmax",
    "logsumexp",
    "sld",
    "sld_sym",
    "softlog",
    "softlog_cross_entropy",
    "softlog_entropy",
    "softlog_inverse",
    "softlog_softmax",
    "softmax",
]
MODULES = ["accuracy", "algorithms", "audit", "grad", "oracle", "regions", "strategies", "ulp"]
VJPS = ["cross_entropy", "log_softmax", "logsumexp", "softmax"]
SOFTLOG_VJPS = ["sld", "sld_sym", "softlog", "softlog_cross_entropy", "softlog_entropy"]
JVPS = ["cross_entropy_jvp", "log_softmax_jvp", "logsumexp_jvp", "softmax_jvp"]
LAYER_VJPS = ["softlog_softmax"]
GRAD = sorted(VJPS + SOFTLOG_VJPS + JVPS + LAYER_VJPS)


def test_all_is_sorted_and_exact():
    assert sn.__all__ == sorted(sn.__all__)
    assert set(sn.__all__) == set(FUNCTIONS) | set(MODULES) | {"__version__"}
    public = {n for n in dir(sn) if not n.startswith("_")}
    # every other public attribute is an implementation module (imported as a side effect)
    assert all(inspect.ismodule(getattr(sn, n)) for n in public - set(sn.__all__)), public - set(sn.__all__)
    for name in FUNCTIONS:
        assert callable(getattr(sn, name)) and not inspect.ismodule(getattr(sn, name)), name


@pytest.mark.parametrize("name", FUNCTIONS)
def test_functions_are_documented_with_a_proof(name):
    doc = inspect.getdoc(getattr(sn, name))
    assert getattr(sn, name).__name__ == name
    assert doc and "Notes" in doc, f"{name} needs a numpydoc Notes section"
    refs = re.findall(r"proofs/([\w-]+\.md), Theorem ([\w.-]*\w)", doc)
    assert refs, f"{name}'s docstring cites no theorem in proofs/"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_has_an_oracle_twin_with_the_same_parameters(name):
    """Same parameters in the same order; the oracle may add keyword-only options (``method``)."""
    impl = inspect.signature(getattr(sn, name)).parameters
    ref = inspect.signature(getattr(oracle, name)).parameters
    assert list(ref)[: len(impl)] == list(impl)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(ref.values())[len(impl):])


@pytest.mark.parametrize("name", GRAD)
def test_every_derivative_has_an_oracle_twin_and_a_contract_row(name):
    """``softlog_numerics.grad.<f>`` and ``oracle.grad.<f>`` take the same parameters (the oracle
    may add keyword-only ones after them: ``method``); each VJP and JVP has a row in the contract
    and a docstring citing its theorem (G3 for the VJPs, G4 for the JVPs, G5 for the softlog
    family, G6 for the layer)."""
    assert sn.grad.__all__ == GRAD
    impl = inspect.signature(getattr(sn.grad, name)).parameters
    ref = inspect.signature(getattr(oracle.grad, name)).parameters
    assert list(ref)[: len(impl)] == list(impl)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(ref.values())[len(impl):])
    assert f"grad.{name}" in LOSS_GRAD_BOUNDS
    theorem = "G4" if name in JVPS else "G5" if name in SOFTLOG_VJPS else "G6" if name in LAYER_VJPS else "G3"
    assert re.search(rf"proofs/grad\.md, Theorem {theorem}", inspect.getdoc(getattr(sn.grad, name)))


def test_contract_covers_the_functions():
    assert set(ULP_BOUNDS) <= set(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_public_function_has_an_oracle_twin_and_a_contract_row(name):
    """An oracle twin, and a row in the contract (``ULP_BOUNDS``, or ``LOSS_GRAD_BOUNDS`` for the
    fused loss); the softlog-softmax layer's bound depends on its weights and is stated in its
    docstring instead (proofs/divergence.md, Theorem D8)."""
    assert callable(getattr(oracle, name))
    if name != "softlog_softmax":
        assert name in ULP_BOUNDS or name in LOSS_GRAD_BOUNDS, name


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_dtype_is_preserved(dtype):
    from softlog_numerics._core.formats import format_of

    dt = format_of(dtype).dtype
    x = np.array([0.25, 0.75], dtype=dt)
    for f in (sn.softlog, sn.logsumexp, sn.log_softmax, sn.softmax, sn.softlog_entropy):
        assert f(x).dtype == dt, f.__name__
    for f in (sn.sld, sn.sld_sym, sn.softlog_cross_entropy):
        assert f(x, x[::-1].copy()).dtype == dt, f.__name__
    assert sn.softlog_softmax(x.reshape(1, 2), np.ones(1, dtype=dt)).dtype == dt


def test_integer_input_becomes_float64():
    assert sn.softlog(np.array([0, 1])).dtype == np.float64
    assert sn.log_softmax(np.array([1, 2, 3])).dtype == np.float64


@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array(["a"]), np.array([None], dtype=object),
                                 np.array(["2020-01-01"], dtype="datetime64[D]")])
def test_unsupported_dtypes_raise_type_error_naming_the_dtype(bad):
    for f in (sn.softlog, sn.log_softmax, sn.logsumexp, sn.softmax):
        with pytest.raises(TypeError, match=re.escape(bad.dtype.name)):
            f(bad)


def test_mixed_formats_are_validated_each_in_its_own_format():
    """A float16 distribution (sum off by 1.2e-4, fine for float16) beside a float64 one is accepted,
    and the result is in the promoted format."""
    p = np.array([0.1, 0.2, 0.7]).astype(np.float16)
    q = np.array([0.3, 0.3, 0.4])
    for f in (sn.sld, sn.sld_sym, sn.softlog_cross_entropy):
        r = f(p, q)
        assert r.dtype == np.float64
        assert r == oracle.__dict__[f.__name__](p, q)
    P = np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]], dtype=np.float32)
    assert sn.softlog_softmax(P, np.array([1, 1])).dtype == np.float64


def test_big_endian_input_is_accepted():
    x = np.array([0.25, 0.5], dtype=">f8")
    assert sn.softlog(x).tolist() == sn.softlog(x.astype("<f8")).tolist()
    assert sn.log_softmax(np.array([1.0, 2.0], dtype=">f4")).dtype == np.float32


def test_softmax_of_a_single_finite_entry_is_exactly_one():
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        from softlog_numerics._core.formats import format_of

        dt = format_of(dtype).dtype
        x = np.array([[7.0, -np.inf], [8.0, -np.inf]]).astype(dt)
        assert sn.softmax(x).astype(np.float64).tolist() == [[1.0, 0.0], [1.0, 0.0]]
        assert sn.softmax(np.array([7.0]).astype(dt)).astype(np.float64).tolist() == [1.0]


def test_bad_axis_says_what_an_axis_is():
    with pytest.raises(TypeError, match="axis must be an int, a tuple of ints or None"):
        sn.logsumexp(np.ones(3), axis=1.0)
