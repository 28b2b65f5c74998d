"""The backward pass of the softlog family (proofs/grad.md, Theorem G5): ``grad.softlog``,
``grad.softlog_entropy``, ``grad.softlog_cross_entropy``, ``grad.sld``, ``grad.sld_sym``.

* production against the oracle: within ``LOSS_GRAD_BOUNDS`` (1 ULP in every format) or, where the
  terms of a component cancel, within ``CANCELLATION[f] * 2**-53 * tau``
  (:func:`softlog_grad_term_scale`), on every probability-pair family and all floats for softlog;
* the oracle against plain mpmath at 600 bits (an independent evaluation, rounded by exact_round),
  and its formulas against mpmath's numerical derivative of the forward functions;
* special values and exact zeros compared exactly; bad shapes raise naming the argument.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_oracle import exact_round, mpf_exact, same

import softlog_numerics as sn
from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics.strategies import floats, probability_pairs, probability_vectors
from softlog_numerics.testing.contract import (
    CANCELLATION,
    LOSS_GRAD_BOUNDS,
    softlog_grad_term_scale,
)
from softlog_numerics.ulp import ulp_distance

DTYPES = list(FORMATS)
PAIRED = ("softlog_cross_entropy", "sld", "sld_sym")


def _cotangent(dtype, rows: int):
    return st.lists(floats(dtype, -1e4, 1e4), min_size=rows, max_size=rows).map(
        lambda v: np.array(v, dtype=np.float64).astype(format_of(dtype).dtype)
    )


def _check_component(name, wrt, got, want, p, q, g):
    fname = f"grad.{name}"
    fmt = format_of(got.dtype)
    d = ulp_distance(got, want)
    ok = d <= LOSS_GRAD_BOUNDS[fname][fmt.name]
    if fname in CANCELLATION and not ok.all():
        tau = softlog_grad_term_scale(fname, wrt, p, q, g)
        err = np.abs(got.astype(np.float64) - want.astype(np.float64))
        ok |= err <= CANCELLATION[fname] * 2.0**-53 * tau
    assert ok.all(), (name, wrt, p, q, g, got, want, d)
    zeros = (got == 0) & (want == 0)
    assert not (zeros & (np.signbit(got) != np.signbit(want))).any(), (name, wrt, got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_softlog_vjp_within_one_ulp(dtype, data):
    fmt = format_of(dtype)
    x = np.array(data.draw(st.lists(floats(dtype, allow_nan=True, allow_infinity=True), min_size=1, max_size=8)))
    x = x.astype(fmt.dtype)
    g = np.array(data.draw(st.lists(floats(dtype, allow_infinity=True), min_size=len(x), max_size=len(x))))
    g = g.astype(fmt.dtype)
    got, want = sn.grad.softlog(x, g), oracle.grad.softlog(x, g)
    assert got.dtype == want.dtype == fmt.dtype and got.shape == x.shape
    assert (ulp_distance(got, want) <= LOSS_GRAD_BOUNDS["grad.softlog"][fmt.name]).all(), (x, g, got, want)
    assert same(np.isnan(got.astype(np.float64)), np.isnan(want.astype(np.float64)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softlog_vjp_near_the_branch_point(dtype):
    """The floats next to x_b = -1/(e**2 - 1), where ``x - x_b`` is the difference of close numbers."""
    fmt = format_of(dtype)
    xb = np.float64(-0.15651764274966565)
    x = xb
    near = []
    for _ in range(6):
        x = np.nextafter(x, np.inf)
        near.append(x)
    xs = np.array(near + [xb]).astype(fmt.dtype)
    g = np.ones_like(xs)
    got, want = sn.grad.softlog(xs, g), oracle.grad.softlog(xs, g)
    assert (ulp_distance(got, want) <= 1).all(), (xs, got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ("softlog_entropy",) + PAIRED)
@given(data=st.data())
def test_divergence_vjps_within_the_contract(name, dtype, data):
    if name == "softlog_entropy":
        p = np.stack(data.draw(st.lists(probability_vectors(dtype, 5, 5), min_size=1, max_size=3)))
        q = p
        args = (p,)
    else:
        pairs = data.draw(st.lists(probability_pairs(dtype, 5, 5), min_size=1, max_size=3))
        p, q = np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])
        args = (p, q)
    g = data.draw(_cotangent(dtype, len(p)))
    got = getattr(sn.grad, name)(*args, g)
    want = getattr(oracle.grad, name)(*args, g)
    got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
    for wrt, a, b in zip("pq", got, want):
        assert a.shape == p.shape and a.dtype == b.dtype
        _check_component(name, wrt, a, b, p, q, g)


def _mp_L(v):
    e = mpmath.e
    return mpmath.log((e - 1 / e) * v + 1 / e)


def _mp_forward(name, p, q):
    if name == "softlog_entropy":
        return -mpmath.fsum(pi * _mp_L(pi) for pi in p)
    if name == "softlog_cross_entropy":
        return -mpmath.fsum(pi * _mp_L(qi) for pi, qi in zip(p, q))
    if name == "sld":
        return mpmath.fsum(pi * (_mp_L(pi) - _mp_L(qi)) for pi, qi in zip(p, q)) / 2
    return mpmath.fsum((pi - qi) * (_mp_L(pi) - _mp_L(qi)) for pi, qi in zip(p, q)) / 4


@pytest.mark.parametrize("name", ("softlog_entropy",) + PAIRED)
def test_oracle_formulas_are_the_derivatives_of_the_forward_functions(name):
    """mpmath's numerical derivative (at 60 digits) of the forward function with respect to each
    entry agrees with the oracle's float64 VJP (g = 1) to 1e-12 relative: the formulas are right."""
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(4))
    q = rng.dirichlet(np.ones(4))
    args = (p,) if name == "softlog_entropy" else (p, q)
    got = getattr(oracle.grad, name)(*args, np.float64(1.0))
    got = got if isinstance(got, tuple) else (got,)
    with mpmath.workdps(60):
        P = [mpmath.mpf(float(v)) for v in p]
        Q = [mpmath.mpf(float(v)) for v in q]
        for which, gv in zip("pq", got):
            for k in range(4):
                def f(t, k=k, which=which):
                    pp, qq = list(P), list(Q)
                    (pp if which == "p" else qq)[k] += t
                    return _mp_forward(name, pp, pp if name == "softlog_entropy" else qq)

                want = mpmath.diff(f, 0)
                assert abs(float(want) - gv[k]) <= 1e-12 * max(1.0, abs(float(want))), (name, which, k)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_oracle_matches_plain_mpmath(dtype, data):
    """The oracle's entropy and sld_sym VJPs (g = 1) and softlog VJP against mpmath at 600 bits with
    the derivative written directly, rounded once by exact_round."""
    fmt = format_of(dtype)
    p, q = data.draw(probability_pairs(dtype, 2, 4))
    x = data.draw(floats(dtype, -0.15, 100.0))
    with mpmath.workprec(600):
        xb = -1 / (mpmath.e**2 - 1)
        one = np.ones((), dtype=fmt.dtype)
        assert same(oracle.grad.softlog(np.array([x], dtype=fmt.dtype), np.array([1.0], dtype=fmt.dtype)),
                    np.array([exact_round(mpf_exact(1 / (mpmath.mpf(float(x)) - xb)), fmt.name)]).astype(fmt.dtype))
        dp, dq = oracle.grad.sld_sym(p, q, one)
        for k, (pk, qk) in enumerate(zip(p.astype(np.float64).tolist(), q.astype(np.float64).tolist())):
            if pk == qk:
                assert same(dp[k], fmt.dtype.type(0.0)) and same(dq[k], fmt.dtype.type(0.0))
                continue
            D = _mp_L(mpmath.mpf(pk)) - _mp_L(mpmath.mpf(qk))
            wp = (D + (mpmath.mpf(pk) - qk) / (mpmath.mpf(pk) - xb)) / 4
            wq = -(D + (mpmath.mpf(pk) - qk) / (mpmath.mpf(qk) - xb)) / 4
            assert same(dp[k], exact_round(mpf_exact(wp), fmt.name)), (p, q, k)
            assert same(dq[k], exact_round(mpf_exact(wq), fmt.name)), (p, q, k)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_and_exact_cases(dtype):
    fmt = format_of(dtype)
    inf, nan = math.inf, math.nan
    x = np.array([nan, inf, -inf, -0.2, 0.0, 1.0, 0.5]).astype(fmt.dtype)
    g = np.array([1.0, -1.0, 1.0, 1.0, -0.0, inf, -inf]).astype(fmt.dtype)
    got = sn.grad.softlog(x, g)
    want = np.array([nan, 0.0, nan, nan, 0.0, inf, -inf]).astype(fmt.dtype)
    assert same(got, want) and same(oracle.grad.softlog(x, g), want)
    # exact zeros (+0) and rational components
    p = np.array([[0.5, 0.5], [1.0, 0.0]]).astype(fmt.dtype)
    one = np.array([1.0, -2.0]).astype(fmt.dtype)
    for mod in (sn, oracle):
        dp, dq = mod.grad.sld_sym(p, p, one)
        assert same(dp, np.zeros_like(p)) and same(dq, np.zeros_like(p))
        dp, dq = mod.grad.softlog_cross_entropy(p, p, one)
        # -g L(q): q = 1 gives -g, q = 0 gives g (L(0) = -1, L(1) = 1); p = 0 gives dq = +0
        assert same(dp[1], np.array([-(-2.0), -2.0]).astype(fmt.dtype)), dp
        assert same(dq[1, 1], fmt.dtype.type(0.0))
        e = mod.grad.softlog_entropy(np.array([[0.0, 1.0]]).astype(fmt.dtype), one[:1])
        assert same(e[0, 0], fmt.dtype.type(1.0))  # -(L(0) + 0) = 1
    nanrow = np.array([[nan, 1.0]]).astype(fmt.dtype)
    for mod in (sn, oracle):
        r = mod.grad.softlog_entropy(nanrow, one[:1], validate=False)
        assert np.isnan(r.astype(np.float64)[0, 0])


def test_bad_shapes_name_the_argument():
    p = np.full((2, 3), 1 / 3)
    for mod in (sn, oracle):
        with pytest.raises(ValueError, match="g must have shape"):
            mod.grad.sld(p, p, np.ones(3))
        with pytest.raises(ValueError, match="g must have shape"):
            mod.grad.softlog(np.ones(3), np.ones(2))
        with pytest.raises(ValueError, match="same shape"):
            mod.grad.sld_sym(p, p[:, :2], np.ones(2))
        with pytest.raises(ValueError, match="sum to 1"):
            mod.grad.softlog_entropy(2 * p, np.ones(2))


def test_axis_and_keepdims():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(4), (3,)).T.copy()  # distributions along axis 0
    q = rng.dirichlet(np.ones(4), (3,)).T.copy()
    g = rng.standard_normal(3)
    for mod in (sn, oracle):
        a = mod.grad.sld(p, q, g, axis=0)
        b = mod.grad.sld(p.T.copy(), q.T.copy(), g)
        assert same(a[0], b[0].T) and same(a[1], b[1].T)
        c = mod.grad.sld(p, q, g[None, :], axis=0, keepdims=True)
        assert same(c[0], a[0])
