"""The VJP of the softlog-softmax layer (``grad.softlog_softmax``) against its correctly rounded
oracle, the oracle against plain mpmath and against ``mpmath.diff`` of the forward layer, and the
special-value table.

Tolerance (proofs/grad.md, Theorem G6): each component of ``dP`` and ``dw`` is within
``LOSS_GRAD_BOUNDS["grad.softlog_softmax"]`` ULPs (1 in float16/bfloat16/float32, 2 in float64)
of the oracle, or within ``CANCELLATION["grad.softlog_softmax"] * 2**-53 * tau`` (25), ``tau``
from :func:`softlog_numerics.testing.contract.layer_grad_term_scale` (the terms the component is
formed from, times the layer's conditioning ``1 + (Z + 1)/1024``). The exact zeros of the
special-value table are ``+0`` on both sides; elsewhere a zero's sign is not compared (a tiny
value that cancels to 0 within the allowance may have either sign in the oracle).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import softlog_numerics as sn
from softlog_numerics import oracle
from softlog_numerics._core.formats import format_of
from softlog_numerics.oracle import OracleUndecided, round_to
from softlog_numerics.strategies import floats, probability_vectors
from softlog_numerics.testing.contract import (
    CANCELLATION,
    LOSS_GRAD_BOUNDS,
    layer_grad_term_scale,
)
from softlog_numerics.ulp import ulp_distance

DTYPES = ["float16", "bfloat16", "float32", "float64"]
NAME = "grad.softlog_softmax"


def _check(wrt, got, want, P, w, g, log):
    fmt = format_of(want.dtype)
    assert got.dtype == want.dtype and got.shape == want.shape, (wrt, got.dtype, want.dtype)
    d = ulp_distance(got, want)
    ok = d <= LOSS_GRAD_BOUNDS[NAME][fmt.name]
    if not ok.all():
        tau = layer_grad_term_scale(wrt, P, w, g, log)
        err = np.abs(got.astype(np.float64) - want.astype(np.float64))
        ok |= err <= CANCELLATION[NAME] * 2.0**-53 * tau
    assert ok.all(), (wrt, P, w, g, log, got, want, d)
    assert (np.isnan(got.astype(np.float64)) == np.isnan(want.astype(np.float64))).all()


@st.composite
def layer_vjp_inputs(draw, dtype, max_b=3, max_k=6):
    fmt = format_of(dtype)
    k = draw(st.integers(1, max_k))
    b = draw(st.integers(0, max_b))
    lead = draw(st.sampled_from([(), (2,)]))
    n = int(np.prod(lead, dtype=int)) * b
    vecs = [draw(probability_vectors(dtype, k, k)) for _ in range(n)]
    P = (np.stack(vecs) if vecs else np.zeros((0, k), dtype=fmt.dtype)).reshape(lead + (b, k))
    s = draw(st.sampled_from([1.0, 8.0, 64.0]))
    shape = draw(st.sampled_from([(b, k), (b,)]))
    size = int(np.prod(shape, dtype=int))
    w = np.array([draw(floats(dtype, -s, s, allow_subnormal=False)) for _ in range(size)], dtype=fmt.dtype)
    gs = draw(st.sampled_from([1.0, 1e-3, 1e3]))
    gsize = int(np.prod(lead, dtype=int)) * k
    g = np.array([draw(floats(dtype, -gs, gs)) for _ in range(gsize)], dtype=fmt.dtype)
    return P, w.reshape(shape), g.reshape(lead + (k,))


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_layer_vjp_within_contract(dtype, log, data):
    P, w, g = data.draw(layer_vjp_inputs(dtype))
    got = sn.grad.softlog_softmax(P, w, g, log=log)
    want = oracle.grad.softlog_softmax(P, w, g, log=log)
    _check("P", got[0], want[0], P, w, g, log)
    _check("w", got[1], want[1], P, w, g, log)


def _ab():
    """``(e - 1/e, 1/e)`` at the current mpmath precision."""
    return mpmath.e - 1 / mpmath.e, 1 / mpmath.e


def _mp_vjp(P, w, g, log):
    """``(dP, dw)`` by the formulas in plain mpmath at 60 digits (float64 inputs, nested lists)."""
    R, B, K = P.shape
    _A, _B = _ab()
    w2 = np.broadcast_to(w[:, None] if w.ndim == 1 else w, (B, K))
    dP = [[[None] * K for _ in range(B)] for _ in range(R)]
    dw = [[mpmath.mpf(0)] * K for _ in range(B)]
    for r in range(R):
        L = [[mpmath.log(_A * mpmath.mpf(float(P[r, b, k])) + _B) for k in range(K)] for b in range(B)]
        z = [mpmath.fsum(mpmath.mpf(float(w2[b, k])) * L[b][k] for b in range(B)) for k in range(K)]
        top = max(z)
        e = [mpmath.exp(zk - top) for zk in z]
        p = [ek / mpmath.fsum(e) for ek in e]
        G = [mpmath.mpf(float(x)) for x in g[r]]
        if log:
            v = [G[k] - p[k] * mpmath.fsum(G) for k in range(K)]
        else:
            dot = mpmath.fsum(G[j] * p[j] for j in range(K))
            v = [p[k] * (G[k] - dot) for k in range(K)]
        for b in range(B):
            for k in range(K):
                dP[r][b][k] = v[k] * mpmath.mpf(float(w2[b, k])) * _A / (_A * mpmath.mpf(float(P[r, b, k])) + _B)
                dw[b][k] += v[k] * L[b][k]
    if w.ndim == 1:
        dw = [[mpmath.fsum(row)] for row in dw]
    return dP, dw


@pytest.mark.parametrize("log", [False, True])
def test_oracle_matches_plain_mpmath(log):
    """The oracle equals the 60-digit formulas rounded once to float64 (no value here lies within
    ``10**-40`` relative of a rounding boundary)."""
    rng = np.random.default_rng(3)
    for wshape in [(3, 4), (3,)]:
        P = rng.dirichlet(np.ones(4), size=(2, 3))
        w = rng.normal(size=wshape) * 4
        g = rng.normal(size=(2, 4))
        dP, dw = oracle.grad.softlog_softmax(P, w, g, log=log)
        with mpmath.workdps(60):
            mP, mw = _mp_vjp(P, w, g, log)
            wantP = np.array([[[float(round_to(x, np.float64)) for x in row] for row in m] for m in mP])
            wantw = np.array([[float(round_to(x, np.float64)) for x in row] for row in mw]).reshape(w.shape)
        assert (dP == wantP).all(), (dP, wantP)
        assert (dw == wantw).all(), (dw, wantw)


def test_formulas_match_mpmath_diff_of_the_forward_layer():
    """The VJP formulas are the derivative: ``mpmath.diff`` of ``sum g * softlog_softmax`` (as an
    mpmath function of one entry of ``P`` or ``w``) agrees with the oracle to 1e-12 relative."""
    rng = np.random.default_rng(4)
    P = rng.dirichlet(np.ones(3), size=(1, 2))
    w = rng.normal(size=(2, 3))
    g = rng.normal(size=(1, 3))
    dP, dw = oracle.grad.softlog_softmax(P, w, g)

    def loss(Pm, wm):
        _A, _B = _ab()
        z = [mpmath.fsum(wm[b][k] * mpmath.log(_A * Pm[b][k] + _B) for b in range(2)) for k in range(3)]
        s = mpmath.fsum(mpmath.exp(x) for x in z)
        return mpmath.fsum(mpmath.mpf(float(g[0, k])) * mpmath.exp(z[k]) / s for k in range(3))

    with mpmath.workdps(40):
        base_P = [[mpmath.mpf(float(x)) for x in row] for row in P[0]]
        base_w = [[mpmath.mpf(float(x)) for x in row] for row in w]
        for b in range(2):
            for k in range(3):
                def fP(t, b=b, k=k):
                    Pm = [row[:] for row in base_P]
                    Pm[b][k] = t
                    return loss(Pm, base_w)

                def fw(t, b=b, k=k):
                    wm = [row[:] for row in base_w]
                    wm[b][k] = t
                    return loss(base_P, wm)

                assert math.isclose(float(mpmath.diff(fP, base_P[b][k])), dP[0, b, k], rel_tol=1e-12)
                assert math.isclose(float(mpmath.diff(fw, base_w[b][k])), dw[b, k], rel_tol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(dtype):
    """The table: exact zeros (+0) for a zero cotangent row, ``K == 1``, a constant softmax
    cotangent, a zero weight, a uniform member with per-member weights; NaN rows; empty shapes."""
    dt = format_of(dtype).dtype
    P = np.array([[[0.25, 0.75], [0.5, 0.5]], [[1.0, 0.0], [0.5, 0.5]]], dtype=dt)
    w = np.array([[1.0, -2.0], [0.0, 3.0]], dtype=dt)
    for f in (sn.grad.softlog_softmax, oracle.grad.softlog_softmax):
        # a zero cotangent row: +0 in its row of dP
        dP, dw = f(P, w, np.array([[0.0, 0.0], [1.0, -1.0]], dtype=dt))
        assert (dP[0] == 0).all() and not np.signbit(dP[0].astype(np.float64)).any()
        # a constant softmax cotangent: v = 0, everything +0
        dP, dw = f(P, w, np.full((2, 2), 3.0, dtype=dt))
        for a in (dP, dw):
            assert (a == 0).all() and not np.signbit(a.astype(np.float64)).any()
        # a zero weight: +0 in dP there
        dP, _ = f(P, w, np.array([[1.0, 0.0], [0.5, -1.0]], dtype=dt))
        assert (dP[:, 1, 0] == 0).all() and not np.signbit(dP[:, 1, 0].astype(np.float64)).any()
        # a uniform member (b = 1) with per-member weights: dw[1] is exactly +0
        _, dw = f(P, np.array([2.0, -1.0], dtype=dt), np.array([[1.0, 0.0], [0.5, -1.0]], dtype=dt))
        assert dw[1] == 0 and not np.signbit(np.float64(dw[1]))
        # K == 1
        dP, dw = f(np.ones((2, 3, 1), dtype=dt), np.ones(3, dtype=dt), np.ones((2, 1), dtype=dt))
        assert (dP == 0).all() and (dw == 0).all()
        # NaN rows (validate=False): dP's row NaN, dw all NaN
        bad = P.copy()
        bad[1, 0, 0] = np.nan
        dP, dw = f(bad, w, np.ones((2, 2), dtype=dt) * np.array([1.0, 2.0], dtype=dt), validate=False)
        assert np.isnan(dP[1].astype(np.float64)).all() and not np.isnan(dP[0].astype(np.float64)).any()
        assert np.isnan(dw.astype(np.float64)).all()
        dP, dw = f(P, w, np.array([[np.inf, 0.0], [1.0, 1.0]], dtype=dt))
        assert np.isnan(dP[0].astype(np.float64)).all() and np.isnan(dw.astype(np.float64)).all()
        # empty shapes
        dP, dw = f(np.zeros((2, 0, 3), dtype=dt), np.zeros((0, 3), dtype=dt), np.zeros((2, 3), dtype=dt))
        assert dP.shape == (2, 0, 3) and dw.shape == (0, 3)
        dP, dw = f(np.zeros((0, 2, 3), dtype=dt), np.ones(2, dtype=dt), np.zeros((0, 3), dtype=dt))
        assert dP.shape == (0, 2, 3) and dw.shape == (2,) and (dw == 0).all()


def test_rows_whose_cotangents_cancel_give_an_exact_zero_dw():
    """Two equal rows of ``P`` with opposite cotangents: ``v`` is linear in ``g``, so their ``dw``
    contributions cancel exactly; the oracle merges equal rows (summing their cotangents) and
    returns +0 instead of looping, and the production value is +0 too (found by the thorough
    Hypothesis profile)."""
    P = np.array([[[1.0, 0.0]], [[1.0, 0.0]]], dtype=np.float16)
    w = np.array([[-1.0, -1.0]], dtype=np.float16)
    g = np.array([[-1.0, 1.0], [1.0, -1.0]], dtype=np.float16)
    for log in (False, True):
        for f in (sn.grad.softlog_softmax, oracle.grad.softlog_softmax):
            _, dw = f(P, w, g, log=log)
            assert (dw == 0).all() and not np.signbit(dw.astype(np.float64)).any(), (f, log, dw)


@pytest.mark.parametrize("case", [
    # two rows whose logits are a permutation of each other's and whose cotangents mirror: the
    # log-softmax VJPs are negatives of each other, so dw cancels where the softlogs agree
    ("float32", [[[1.0, 8.6736174e-19], [8.6736174e-19, 1.0], [0.0, 1.0]],
                 [[1.0, 0.0], [0.0, 1.0], [1.0, 9.3132257e-10]]],
     [[-1.0, -1.0], [-1.0, -1.0], [-1.0, 0.0]], [[-1.0, 0.0], [0.0, -1.0]], True),
    # two classes of equal logits with a cotangent constant across them: sum_k v_k over a class is 0
    ("float64", [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [4.65661287e-10, 4.65661287e-10, 0.5, 0.5]],
     [-1.0, -1.0, -1.0], [-1.0, 0.0, -1.0, 0.0], False),
])
def test_oracle_recognises_vanishing_combinations(case):
    """Exact zeros that come from the structure of the probabilities (permuted rows, classes of
    equal logits), recognised by the oracle as identically vanishing polynomials in the class
    probabilities instead of looping to OracleUndecided (found by the thorough profile)."""
    dtype, P, w, g, log = case
    dt = format_of(dtype).dtype
    P, w, g = np.array(P, dtype=dt), np.array(w, dtype=dt), np.array(g, dtype=dt)
    got = sn.grad.softlog_softmax(P, w, g, log=log)
    want = oracle.grad.softlog_softmax(P, w, g, log=log)
    _check("P", got[0], want[0], P, w, g, log)
    _check("w", got[1], want[1], P, w, g, log)


def test_equal_logits_are_exact():
    """All logits equal (``p = 1/K``, rational): the oracle settles ``v`` with fractions, and the
    production result is within the contract of it."""
    P = np.full((1, 2, 3), 1 / 3)
    w = np.array([1.5, -0.5])
    g = np.array([[1.0, 2.0, 4.0]])
    for log in (False, True):
        want = oracle.grad.softlog_softmax(P, w, g, log=log)
        got = sn.grad.softlog_softmax(P, w, g, log=log)
        _check("P", got[0], want[0], P, w, g, log)
        _check("w", got[1], want[1], P, w, g, log)


def test_each_gradient_in_its_input_format():
    """``dP`` in ``P``'s dtype and ``dw`` in ``w``'s, rounded once each (float16 ``P`` with float32
    ``w`` evaluates in float32 and rounds ``dP`` to float16)."""
    P = np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float16)
    w = np.array([1.0, -3.0], dtype=np.float32)
    g = np.array([1.0, -2.0])
    for f in (sn.grad.softlog_softmax, oracle.grad.softlog_softmax):
        dP, dw = f(P, w, g)
        assert dP.dtype == np.float16 and dw.dtype == np.float32 and dP.shape == (2, 2) and dw.shape == (2,)
    got, want = sn.grad.softlog_softmax(P, w, g), oracle.grad.softlog_softmax(P, w, g)
    assert (ulp_distance(got[0], want[0]) <= 1).all() and (ulp_distance(got[1], want[1]) <= 1).all()


def test_bad_cotangent_shape_is_a_value_error_naming_both_shapes():
    P = np.full((2, 1, 3), 1 / 3)
    for f in (sn.grad.softlog_softmax, oracle.grad.softlog_softmax):
        with pytest.raises(ValueError, match=r"\(2, 3\)"):
            f(P, np.ones(1), np.ones((3, 2)))


def test_oracle_refuses_an_unrecognised_exact_zero():
    """``exp(z)`` proportional to ``(a v + b, a u + b, e**2 - 1 + 1, 1)``-like values obey a rational
    linear relation: logits ``L(1/2), L(1/4), L(1), L(0)`` and ``g = (-3/4, 1/2, 1/4, 0)`` make the
    softmax VJP's last component exactly 0, which the oracle cannot recognise; it raises
    OracleUndecided rather than guess (module docstring of oracle.layer_grad)."""
    P = np.array([[[0.5, 0.25, 1.0, 0.0]]])
    g = np.array([[-0.75, 0.5, 0.25, 0.0]])
    with pytest.raises(OracleUndecided):
        oracle.grad.softlog_softmax(P, np.ones(1), g, validate=False)


def test_large_cotangents_stay_finite():
    """Cotangents near the top of the range: scaled by ``2**-100`` (exact), no overflow, no NaN."""
    rng = np.random.default_rng(5)
    P = rng.dirichlet(np.ones(4), size=(2, 3))
    w = rng.normal(size=(3, 4))
    g = rng.normal(size=(2, 4)) * 1e307
    got, want = sn.grad.softlog_softmax(P, w, g), oracle.grad.softlog_softmax(P, w, g)
    _check("P", got[0], want[0], P, w, g, False)
    _check("w", got[1], want[1], P, w, g, False)
    assert np.isfinite(got[0]).all() and np.isfinite(got[1]).all()


@pytest.mark.parametrize("case", [
    # a uniform member's row of large cotangents beside a row of subnormal ones (per-member w)
    ([[[0.25, 0.25, 0.25, 0.25]], [[0.5, 0.499001996, 0.000499001996, 0.000499001996]]], [-1.0],
     [[-1.0, -1.0, -1.0, -1.0], [0.0, 6.13e-322, 0.0, -2.47e-323]], False),
    ([[[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [1.0, 0.0]]], [-1.0, -1.0],
     [[-1e3, -1e3], [0.0, 2.2250738585072014e-308]], True),
])
def test_rows_of_very_different_cotangent_scales(case):
    """Each dw entry's terms are scaled to its own largest term, not to the largest cotangent row:
    a row that contributes nothing must not push the others' terms into underflow (found by the
    thorough Hypothesis profile: 7e-323 came out as 0)."""
    P, w, g, log = (np.array(case[0]), np.array(case[1]), np.array(case[2]), case[3])
    got = sn.grad.softlog_softmax(P, w, g, log=log, validate=False)
    want = oracle.grad.softlog_softmax(P, w, g, log=log, validate=False)
    _check("P", got[0], want[0], P, w, g, log)
    _check("w", got[1], want[1], P, w, g, log)
