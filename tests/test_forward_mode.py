"""The forward mode of the production functions against the oracle (proofs/grad.md, Theorem G4):
every JVP within ``LOSS_GRAD_BOUNDS`` ULPs of the correctly rounded value, or within the absolute
allowance ``CANCELLATION[f] * 2**-53 * tau`` (``testing.contract.within_contract``); a table of
special values, exactly; the shape check on ``dx``; ``softmax_jvp`` is the softmax VJP bit for bit;
and a constant tangent, along which log_softmax does not move, gives exactly 0.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from test_backward import FAMILIES, _rows, _targets
from test_oracle import exact_round, same

import softlog_numerics as sn
from softlog_numerics import oracle
from softlog_numerics._core.axes import Rows
from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics.oracle.enclosures import OracleUndecided
from softlog_numerics.strategies import cotangents, logit_vectors
from softlog_numerics.testing.contract import within_contract

DTYPES = list(FORMATS)
EXAMPLES = settings(max_examples=max(80, settings.default.max_examples))


def _check(function, dtype, got, want, args):
    ok, worst = within_contract(function, dtype, got, want, args)
    assert ok, (function, dtype, worst, args, got, want)
    return worst


def _nan(a):
    return np.isnan(np.asarray(a).astype(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(data=st.data())
def test_jvps_within_contract(dtype, data):
    """log_softmax, softmax and logsumexp JVPs against the oracle on every logit family and every
    tangent family (one-hot, ones, scaled, near-softmax and near-constant cancel); the rows whose
    JVP is NaN (NaN or ``+inf`` logits, all ``-inf``) agree."""
    x = _rows(dtype, data)
    dx = data.draw(cotangents(dtype, x))
    for name in ("log_softmax_jvp", "softmax_jvp"):
        got = getattr(sn.grad, name)(x, dx)
        want = getattr(oracle.grad, name)(x, dx)
        assert got.dtype == x.dtype and got.shape == x.shape
        nan = _nan(want)
        assert np.array_equal(nan, _nan(got)), (name, x, dx)
        fin = ~nan.any(axis=1)
        if fin.any():
            _check(f"grad.{name}", dtype, got[fin], want[fin], (x[fin], dx[fin]))
    got, want = sn.grad.logsumexp_jvp(x, dx), oracle.grad.logsumexp_jvp(x, dx)
    assert got.dtype == x.dtype and got.shape == (x.shape[0],)
    nan = _nan(want)
    assert np.array_equal(_nan(got), nan), (x, dx)
    if (~nan).any():
        _check("grad.logsumexp_jvp", dtype, got[~nan], want[~nan], (x[~nan], dx[~nan]))


@pytest.mark.parametrize("dtype", DTYPES)
@EXAMPLES
@given(data=st.data())
def test_cross_entropy_jvp_within_contract(dtype, data):
    """The cross-entropy JVP for index and probability targets, label smoothing 0, 0.1 and 1,
    z-loss 0 and 1e-4, along every tangent family."""
    x = _rows(dtype, data, rows=2)
    target, eps, lam, t = _targets(dtype, data, x)
    dx = data.draw(cotangents(dtype, x))
    kw = dict(label_smoothing=eps, z_loss=lam, validate=False)
    got = sn.grad.cross_entropy_jvp(x, target, dx, **kw)
    try:
        want = oracle.grad.cross_entropy_jvp(x, target, dx, **kw)
    except OracleUndecided:  # z_loss > 0 has no irrationality proof (proofs/grad.md, Theorem G1)
        reject()
    assert got.dtype == x.dtype and got.shape == (x.shape[0],)
    nan = _nan(want)
    assert np.array_equal(_nan(got), nan), (x, target, dx, kw)
    if (~nan).any():
        _check("grad.cross_entropy_jvp", dtype, got[~nan], want[~nan], (x[~nan], dx[~nan], t[~nan], lam))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_softmax_jvp_is_the_softmax_vjp(dtype, data):
    """The softmax Jacobian is symmetric: ``softmax_jvp(x, dx) == softmax_vjp(x, dx)`` bit for bit."""
    x = _rows(dtype, data)
    dx = data.draw(cotangents(dtype, x))
    assert same(sn.grad.softmax_jvp(x, dx), sn.grad.softmax(x, dx))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_constant_tangent_leaves_log_softmax_still(dtype, data):
    """Shift invariance: ``log_softmax(x + c)`` does not depend on ``c``, so along ``dx = c`` the
    exact JVP is 0; the production one is exactly ``+0`` (``(dx_j - dx_k) + T`` with every
    difference 0), and ``logsumexp_jvp`` is exactly ``c`` (``+0`` for ``c = -0``, as the oracle's exact zeros)."""
    x = data.draw(logit_vectors(dtype, 1, 8, families=FAMILIES))[None]
    fmt = format_of(dtype)
    c = data.draw(st.sampled_from([1.0, -3.0, 0.5, 2.0**-20, 1e4, -0.0, float(fmt.max)]))
    dx = np.full(x.shape, c).astype(x.dtype)
    got = sn.grad.log_softmax_jvp(x, dx)
    if _nan(oracle.grad.logsumexp(x, np.ones(1))).any():  # a NaN row: no derivative
        assert _nan(got).all()
        return
    assert same(got, np.zeros_like(got)), (x, c, got)
    assert same(sn.grad.logsumexp_jvp(x, dx), dx[:, 0] + 0), (x, c)  # exact zeros are +0


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_match_the_oracle(dtype):
    """NaN and ``+-inf`` logits, ``-inf`` (masked) logits, one finite logit, non-finite tangents,
    empty rows, one-hot tangents, ignored targets (-100), label smoothing 0 and 1: exactly the
    oracle's values, sign of zero included."""
    dt = format_of(dtype).dtype
    x = np.array([[np.nan, 0, 1], [np.inf, 0, 1], [-np.inf] * 3, [-np.inf, 2, -np.inf],
                  [0, -np.inf, 1], [-np.inf, 1, 3], [1, 1, -np.inf], [-np.inf, 0, -np.inf]], dt)
    dx = np.array([[1, 2, -1], [1, 2, -1], [1, 2, -1], [1, 2, -1],
                   [np.inf, 0, 0], [0, np.nan, 0], [0, 1, 0], [0, 0, 1]], dt)
    for name in ("log_softmax_jvp", "softmax_jvp", "logsumexp_jvp"):
        got, want = getattr(sn.grad, name)(x, dx), getattr(oracle.grad, name)(x, dx)
        assert same(got, want), (name, got, want)
    assert _nan(sn.grad.log_softmax_jvp(x, dx)[[0, 1, 2, 4, 5]]).all()
    assert same(sn.grad.log_softmax_jvp(x[3:4], dx[3:4]), np.array([[-1, 0, -3]], dt))  # dx - dx_1
    assert same(sn.grad.softmax_jvp(x[3:4], dx[3:4]), np.zeros((1, 3), dt))  # p = (0, 1, 0)
    assert same(sn.grad.logsumexp_jvp(x[3:], dx[3:])[[0, 3, 4]], np.array([2, 0.5, 0], dt))
    assert same(sn.grad.log_softmax_jvp(x[6:7], dx[6:7]), np.array([[-0.5, 0.5, -0.5]], dt))  # p = 1/2
    assert same(sn.grad.softmax_jvp(x[6:7], dx[6:7]), np.array([[-0.25, 0.25, 0]], dt))
    empty = np.zeros((2, 0), dt)
    assert sn.grad.log_softmax_jvp(empty, empty).shape == (2, 0)
    assert sn.grad.softmax_jvp(empty, empty).shape == (2, 0)
    assert same(sn.grad.logsumexp_jvp(empty, empty), np.zeros(2, dt))
    assert same(sn.grad.logsumexp_jvp(empty, empty, keepdims=True), np.zeros((2, 1), dt))
    assert same(oracle.grad.logsumexp_jvp(empty, empty), np.zeros(2, dt))
    z = np.array([[2.0, 1.0, 0.0], [0.0, -np.inf, 1.0], [np.nan, 0.0, 0.0], [5.0, 0.0, 1.0],
                  [-np.inf, 4.0, -np.inf], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]], dt)
    y = np.array([0, 2, 1, -100, 1, 1, 0])
    dz = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 1], [np.nan, 1, 1], [0, 1, 0], [1, 1, 1], [0, 0, 0]], dt)
    for eps in (0.0, 1.0):
        got = sn.grad.cross_entropy_jvp(z, y, dz, label_smoothing=eps)
        want = oracle.grad.cross_entropy_jvp(z, y, dz, label_smoothing=eps)
        exact = [1, 2, 3, 4, 6]  # rows 0 and 5 within the contract (p = 1/3 is not a float)
        assert same(got[exact], want[exact]), (eps, got, want)
        t = np.full((2, 3), eps / 3)
        t[[0, 1], [0, 1]] += 1 - eps
        _check("grad.cross_entropy_jvp", dtype, got[[0, 5]], want[[0, 5]], (z[[0, 5]], dz[[0, 5]], t, 0.0))
        assert same(got[3], dt.type(0)) and _nan(got[2])  # ignored (even with a NaN tangent), NaN logit
        assert _nan(got[1]) == (eps > 0)  # smoothing puts target mass on the masked logit
        assert same(got[4], dt.type(0)) or (eps > 0 and _nan(got[4]))  # one finite logit, p = t = 1 there
    assert same(sn.grad.cross_entropy_jvp(np.zeros((0, 4), dt), np.zeros(0, np.int64), np.zeros((0, 4), dt)),
                np.zeros(0, dt))


def test_bad_input_names_the_argument():
    z = np.zeros((2, 3), np.float32)
    for name in ("log_softmax_jvp", "softmax_jvp", "logsumexp_jvp"):
        with pytest.raises(ValueError, match=r"dx must have shape \(2, 3\)"):
            getattr(sn.grad, name)(z, np.zeros(3))
    with pytest.raises(ValueError, match=r"dx must have shape \(2, 3\)"):
        sn.grad.cross_entropy_jvp(z, np.array([0, 1]), np.zeros((2,)))
    with pytest.raises(TypeError, match="dx"):
        sn.grad.log_softmax_jvp(z, np.array([["a", "b", "c"]] * 2))


def test_oracle_splits_the_rational_part_of_the_cross_entropy_jvp():
    """A dominant logit (gap 17760) with the one-hot target elsewhere: the exact JVP is the rational
    ``dx_4 - dx_3`` plus ``sum_{k != 4} p_k (dx_k - dx_4)``, about ``-0.49 e**-17760``. The oracle
    forms the rational part exactly (``exact_plus``), so it decides the rounding of that value just
    below ``dx_4 - dx_3``; production is within the contract."""
    x = np.array([[-4.522e04, -5.645e04, 4.330e04, -6.435e04, 6.550e04, 4.774e04]], np.float16)
    target = np.array([[0.0, 0.0, 0.0, 1.0, 0.0, 0.0]], np.float16)
    dx = np.array([[-0.0679, 1.2705, -1.979, -1.06, 0.2905, -0.204]], np.float16)
    want = oracle.grad.cross_entropy_jvp(x, target, dx, validate=False)
    d = [Fraction(float(v)) for v in dx[0]]
    exact = d[4] - d[3] - Fraction(1, 2**30000)  # the rest is negative and below 2**-25000
    assert same(want, np.array([exact_round(exact, "float16")], dtype=np.float16))
    got = sn.grad.cross_entropy_jvp(x, target, dx, validate=False)
    t = target.astype(np.float64)
    _check("grad.cross_entropy_jvp", "float16", got, want, (x, dx, t, 0.0))


def test_axes_shapes_and_row_blocks():
    """Any ``axis`` (and ``keepdims``) gives the bits of the same rows laid along the last axis,
    which are within the contract; more than ``2**20`` elements are evaluated in row blocks with
    the same bits as smaller calls."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4, 5)).astype(np.float32)
    dx = rng.normal(size=x.shape).astype(np.float32)
    for axis in (0, 1, -1, (0, 2), None):
        r, rd = Rows(x, axis), Rows(dx, axis)
        for name in ("log_softmax_jvp", "softmax_jvp"):
            f = getattr(sn.grad, name)
            flat = f(r.rows, rd.rows)
            assert same(f(x, dx, axis=axis), r.elementwise(flat)), (name, axis)
            _check(f"grad.{name}", "float32", flat, getattr(oracle.grad, name)(r.rows, rd.rows), (r.rows, rd.rows))
        flat = sn.grad.logsumexp_jvp(r.rows, rd.rows)
        _check("grad.logsumexp_jvp", "float32", flat, oracle.grad.logsumexp_jvp(r.rows, rd.rows), (r.rows, rd.rows))
        for keepdims in (False, True):
            got = sn.grad.logsumexp_jvp(x, dx, axis=axis, keepdims=keepdims)
            assert got.shape == oracle.grad.logsumexp_jvp(x, dx, axis=axis, keepdims=keepdims).shape
            assert same(got, r.reduced(flat, keepdims)), (axis, keepdims)
    y = rng.integers(0, 4, (3, 5))
    r, rd = Rows(x, 1), Rows(dx, 1)
    got = sn.grad.cross_entropy_jvp(x, y, dx, axis=1)
    assert got.shape == (3, 5)
    assert same(got, sn.grad.cross_entropy_jvp(r.rows, y.reshape(-1), rd.rows).reshape(3, 5))
    X = rng.normal(size=(4000, 300))
    D = rng.normal(size=X.shape)
    Y = rng.integers(0, 300, 4000)
    for name in ("log_softmax_jvp", "softmax_jvp", "logsumexp_jvp"):
        f = getattr(sn.grad, name)
        assert same(f(X, D), np.concatenate([f(X[i:i + 700], D[i:i + 700]) for i in range(0, 4000, 700)])), name
    f = sn.grad.cross_entropy_jvp
    parts = [f(X[i:i + 700], Y[i:i + 700], D[i:i + 700], label_smoothing=0.1) for i in range(0, 4000, 700)]
    assert same(f(X, Y, D, label_smoothing=0.1), np.concatenate(parts))
