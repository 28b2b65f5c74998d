"""No input breaks a promise: for inputs of every format drawn from every family (the edges of the
format's range included: ``range_edge``), each public function returns a value within its contract
of the oracle, or the oracle's special value, and never NaN where the oracle's value is a number.

One property per public function (forward, fused loss, backward, forward mode); the contract is
:func:`softlog_numerics.testing.contract.within_contract` (ULP bound or cancellation allowance).
The layer (no contract row) and the softlog-family VJPs (tested in tests/test_softlog_backward.py)
are held here to the NaN rule.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import softlog_numerics as sn
from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics.strategies import (
    cotangents,
    floats,
    logit_vectors,
    probability_pairs,
    probability_vectors,
)
from softlog_numerics.testing.contract import within_contract

DTYPES = list(FORMATS)
FEW = settings(max_examples=25)


def _nan(a) -> np.ndarray:
    return np.isnan(np.asarray(a).astype(np.float64))


def _promise(function: str, dtype, got, want, args=None):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (function, got.dtype, want.dtype)
    assert not (_nan(got) & ~_nan(want)).any(), (function, args, got, want)  # NaN for a number
    if args is not None:
        ok, worst = within_contract(function, dtype, got, want, args)
        assert ok, (function, dtype, worst, args, got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(data=st.data())
def test_elementwise(dtype, data):
    fmt = format_of(dtype)
    x = np.array(data.draw(st.lists(floats(dtype, allow_nan=True, allow_infinity=True), min_size=1, max_size=12)))
    x = x.astype(fmt.dtype)
    for name in ("softlog", "softlog_inverse"):
        _promise(name, dtype, getattr(sn, name)(x), getattr(oracle, name)(x), (x,))


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(data=st.data())
def test_log_softmax_family_and_loss(dtype, data):
    x = data.draw(logit_vectors(dtype, 1, 12))
    for name in ("logsumexp", "log_softmax", "softmax"):
        _promise(name, dtype, getattr(sn, name)(x), getattr(oracle, name)(x), (x,))
    y = np.array([data.draw(st.integers(0, len(x) - 1))])
    X = x[None, :]
    _promise("cross_entropy", dtype, sn.cross_entropy(X, y), oracle.cross_entropy(X, y), (X, y))


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(data=st.data())
def test_backward_and_forward_mode(dtype, data):
    x = data.draw(logit_vectors(dtype, 1, 10))
    g = data.draw(cotangents(dtype, x))
    for name in ("log_softmax", "softmax"):
        _promise(f"grad.{name}", dtype, getattr(sn.grad, name)(x, g), getattr(oracle.grad, name)(x, g), (x, g))
    for name in ("log_softmax_jvp", "softmax_jvp"):
        _promise(f"grad.{name}", dtype, getattr(sn.grad, name)(x, g), getattr(oracle.grad, name)(x, g), (x, g))
    g1 = g[:1].reshape(())
    _promise("grad.logsumexp", dtype, sn.grad.logsumexp(x, g1), oracle.grad.logsumexp(x, g1), (x, g1))


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(data=st.data())
def test_entropies_and_divergences(dtype, data):
    p = data.draw(probability_vectors(dtype, 1, 12))
    _promise("softlog_entropy", dtype, sn.softlog_entropy(p), oracle.softlog_entropy(p), (p,))
    p, q = data.draw(probability_pairs(dtype, 1, 12))
    for name in ("softlog_cross_entropy", "sld", "sld_sym"):
        _promise(name, dtype, getattr(sn, name)(p, q), getattr(oracle, name)(p, q), (p, q))
    g = np.asarray(1.0, dtype=format_of(dtype).dtype)
    for name in ("softlog_cross_entropy", "sld", "sld_sym"):  # the NaN rule for the VJPs
        for a, b in zip(getattr(sn.grad, name)(p, q, g), getattr(oracle.grad, name)(p, q, g)):
            _promise(f"grad.{name}", dtype, a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(data=st.data())
def test_layer(dtype, data):
    fmt = format_of(dtype)
    P = np.stack(data.draw(st.lists(probability_vectors(dtype, 3, 3), min_size=2, max_size=2)))
    w = np.array(data.draw(st.lists(floats(dtype, -8.0, 8.0), min_size=2, max_size=2))).astype(fmt.dtype)
    for log in (False, True):
        _promise("softlog_softmax", dtype, sn.softlog_softmax(P, w, log=log), oracle.softlog_softmax(P, w, log=log))


def test_the_edge_family_holds_the_reported_softmax_row():
    """The family that would have caught the float64 softmax NaN draws rows like it: a huge entry
    next to another within a factor 4 (checked on the reproducer itself)."""
    x = np.array([1.616645611598377e308, 4.996016272442588e307])
    _promise("softmax", "float64", sn.softmax(x), oracle.softmax(x), (x,))
