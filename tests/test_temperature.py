"""The ``temperature`` of logsumexp, log_softmax and softmax (proofs/log_softmax.md, Theorem LSE7):
the logits are divided by ``T`` as real numbers, never rounded first.

* the production functions against the oracle, within the unchanged contract (Hypothesis, every
  logit family, temperatures from 1e-30 to 1e30);
* the oracle against plain mpmath at 600 bits with the offsets ``(x_i - m)/T`` formed exactly as
  fractions (an independent reference);
* a power-of-two temperature equals the exact scaling of the logits, bit for bit;
* a special-value table (masked logits, infinities, NaN, one finite entry, differences that
  overflow float64, ``T`` near zero: argmax collapse) compared exactly with the oracle;
* ``T = 1`` is the function without a temperature, bit for bit; bad temperatures raise.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_oracle import exact_round, mpf_exact, same

import softlog_numerics as sn
from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics.oracle.enclosures import OracleUndecided
from softlog_numerics.strategies import logit_vectors
from softlog_numerics.testing.contract import (
    LOSS_GRAD_BOUNDS,
    ULP_BOUNDS,
    within_contract,
)
from softlog_numerics.ulp import ulp_distance

DTYPES = list(FORMATS)
NAMES = ("logsumexp", "log_softmax", "softmax")
TEMPERATURES = st.one_of(
    st.sampled_from([3.0, 0.1, 7.3, 1e-3, 0.5, 2.0, 1e5, 1e-30, 1e30, 1 / 3, 2.0**-20]),
    st.floats(min_value=1e-3, max_value=1e3),
)


def _check(name: str, x, tau: float):
    got = getattr(sn, name)(x, temperature=tau)
    want = getattr(oracle, name)(x, temperature=tau)
    assert got.dtype == want.dtype and got.shape == want.shape
    d = ulp_distance(got, want)
    bound = ULP_BOUNDS[name][format_of(x.dtype).name]
    assert d.size == 0 or d.max() <= bound, (name, x, tau, got, want, d)
    zeros = (got == 0) & (want == 0)
    assert not (zeros & (np.signbit(got) != np.signbit(want))).any(), (name, x, tau, got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_temperature_within_the_contract(name, dtype, data):
    """Theorem LSE7: the bounds of ULP_BOUNDS hold with any temperature."""
    x = data.draw(logit_vectors(dtype, 1, 24))
    _check(name, x, data.draw(TEMPERATURES))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_temperature_on_rows_of_a_matrix(dtype, data):
    x = np.stack(data.draw(st.lists(logit_vectors(dtype, 5, 5), min_size=1, max_size=4)))
    tau = data.draw(TEMPERATURES)
    for name in NAMES:
        _check(name, x, tau)


def _ref_rows(x, tau: float, bits: int = 600):
    """Plain mpmath: offsets ``(x_i - m)/T`` and ``m/T`` as exact fractions, converted at ``bits``;
    returns (logsumexp, log_softmax, softmax) of one row, rounded once by exact_round."""
    dt = x.dtype
    row = [float(v) for v in x]
    finite = [v for v in row if v != -math.inf]
    t = Fraction(tau)
    if len(finite) == 1:
        lse = exact_round(Fraction(finite[0]) / t, dt)
        return lse, [-math.inf if v == -math.inf else 0.0 for v in row], [0.0 if v == -math.inf else 1.0 for v in row]
    m = Fraction(max(finite))
    with mpmath.workprec(bits):
        def mp(q: Fraction):
            return mpmath.mpf(q.numerator) / q.denominator

        d = {v: (Fraction(v) - m) / t for v in finite}
        others = list(finite)
        others.remove(max(finite))  # the maximum's term is exactly 1: s sums the others
        s = mpmath.fsum(mpmath.exp(mp(d[v])) for v in others)
        l1p = mpmath.log1p(s)
        lse = exact_round(m / t + mpf_exact(l1p), dt)
        lsm, sm = [], []
        for v in row:
            if v == -math.inf:
                lsm.append(-math.inf)
                sm.append(0.0)
                continue
            lsm.append(exact_round(d[v] - mpf_exact(l1p), dt))
            sm.append(exact_round(mpf_exact(mpmath.exp(mp(d[v])) / (1 + s)), dt))
    return lse, lsm, sm


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_oracle_temperature_matches_mpmath(dtype, data):
    """The oracle's temperature path against :func:`_ref_rows` (rows of 2 to 5 finite logits with
    a spread that keeps every term above 2**-3000)."""
    fmt = format_of(dtype)
    vals = data.draw(st.lists(st.floats(-30, 30, width=16 if fmt.precision <= 11 else 32), min_size=2, max_size=5))
    x = np.array(vals).astype(fmt.dtype)
    tau = data.draw(st.sampled_from([3.0, 0.1, 7.3, 0.5, 1 / 3, 100.0]))
    lse, lsm, sm = _ref_rows(x, tau)
    assert same(oracle.logsumexp(x, temperature=tau), np.asarray(lse, dtype=fmt.dtype)), (x, tau)
    assert same(oracle.log_softmax(x, temperature=tau), np.array(lsm).astype(fmt.dtype)), (x, tau)
    assert same(oracle.softmax(x, temperature=tau), np.array(sm).astype(fmt.dtype)), (x, tau)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_power_of_two_temperature_is_an_exact_scaling(dtype, data):
    """The oracle's ``f(x, temperature=2**k) == f(x * 2**-k)`` bit for bit when the scaling is exact
    (logits within 2**-8 .. 2**8 of the format's range ends are excluded): the two paths (offsets
    as fractions, offsets as floats) agree. The production functions are held to the contract by
    the tests above (their float64 results are not correctly rounded, so paths may differ)."""
    fmt = format_of(dtype)
    x = data.draw(logit_vectors(dtype, 1, 12))
    k = data.draw(st.integers(-3, 3))
    x64 = x.astype(np.float64)
    finite = x64[np.isfinite(x64)]
    big = float(fmt.dtype.type(np.finfo(np.float64).max if fmt.name == "float64" else float(_max(fmt))))
    if finite.size and (np.abs(finite).max() > big * 2.0**-8 or (np.abs(finite[finite != 0]) < 2.0 ** (fmt.emin + 8)).any()):
        return
    scaled = (x64 * 2.0**-k).astype(fmt.dtype)
    for name in NAMES:
        f = getattr(oracle, name)
        assert same(f(x, temperature=2.0**k), f(scaled)), (name, x, k)


def _max(fmt) -> float:
    return math.ldexp(2.0 - 2.0 ** (1 - fmt.precision), fmt.emax)


INF, NAN = math.inf, math.nan
SPECIAL_ROWS = [
    [NAN, 1.0],
    [INF, 1.0],
    [INF, INF],
    [-INF, -INF],
    [-INF, 2.0],
    [-0.0, -INF],
    [3.0, 3.0],
    [1.0, 2.0, 3.0],
    [0.5, -INF, 7.0],
]
SPECIAL_ROWS_64 = [
    [1.7e308, 1.6e308],
    [-1.7e308, 1.7e308],  # x - a overflows float64; (x - a)/T does not for T >= 2
    [-1.7e308, -1.79e308, 1.7e308, 1.5e308],
    [1e-310, -1e-310],
    [5e-324, 0.0],
    [1e300, 1e300],
]
SPECIAL_TEMPERATURES = [3.0, 0.25, 1e-300, 1e300, 5e-324, 1.7e308, 2.0**-1000]


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_with_a_temperature(dtype):
    """Every row and temperature of the table: production == oracle exactly where the oracle's
    result is settled by the special-value table (NaN, infinities, masked entries, one finite
    entry), and within the contract elsewhere; the oracle's special rows are checked by hand."""
    fmt = format_of(dtype)
    rows = SPECIAL_ROWS + (SPECIAL_ROWS_64 if fmt.name == "float64" else [])
    for tau in SPECIAL_TEMPERATURES:
        for r in rows:
            with np.errstate(over="ignore"):
                x = np.array(r).astype(fmt.dtype)
            for name in NAMES:
                _check(name, x, tau)
    x = np.array([NAN, 1.0]).astype(fmt.dtype)
    assert np.isnan(sn.log_softmax(x, temperature=3.0).astype(np.float64)).all()
    x = np.array([-INF, 2.0]).astype(fmt.dtype)
    assert same(sn.log_softmax(x, temperature=3.0), np.array([-INF, 0.0]).astype(fmt.dtype))
    assert same(sn.softmax(x, temperature=3.0), np.array([0.0, 1.0]).astype(fmt.dtype))
    assert same(sn.logsumexp(x, temperature=3.0), np.asarray(exact_round(Fraction(2, 3), fmt.name), dtype=fmt.dtype))
    # argmax collapse: T -> 0 gives a one-hot softmax and 0 / -inf log-softmax
    x = np.array([1.0, 2.0, 0.5]).astype(fmt.dtype)
    assert same(sn.softmax(x, temperature=1e-30), np.array([0.0, 1.0, 0.0]).astype(fmt.dtype))
    want = [exact_round((Fraction(float(v)) - 2) / Fraction(1e-300), fmt.name) if v != 2 else -0.0 for v in x]
    assert same(sn.log_softmax(x, temperature=1e-300), np.array(want).astype(fmt.dtype))  # -inf but in float64


@pytest.mark.parametrize("dtype", DTYPES)
def test_unit_temperature_is_the_plain_function(dtype):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((20, 33)) * 30).astype(format_of(dtype).dtype)
    for name in NAMES:
        for mod in (sn, oracle) if dtype != "float64" else (sn,):
            f = getattr(mod, name)
            assert same(f(x, temperature=1.0), f(x)), (mod.__name__, name)
            assert same(f(x, temperature=1), f(x)), (mod.__name__, name)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan, -0.0])
def test_bad_temperature_raises_value_error(bad):
    for mod in (sn, oracle):
        for name in NAMES:
            with pytest.raises(ValueError, match="temperature"):
                getattr(mod, name)(np.ones(3), temperature=bad)


@pytest.mark.parametrize("bad", ["2", None, True, 1j])
def test_non_number_temperature_raises_type_error(bad):
    for mod in (sn, oracle):
        with pytest.raises(TypeError, match="temperature"):
            mod.log_softmax(np.ones(3), temperature=bad)


# ---------------------------------------------------------------------------------------------
# cross_entropy with a temperature (proofs/grad.md, Theorem G2, step 7)


def _ce_check(x, target, tau, **kw):
    got = sn.cross_entropy(x, target, temperature=tau, **kw)
    want = oracle.cross_entropy(x, target, temperature=tau, **kw)
    assert got.dtype == want.dtype and got.shape == want.shape
    bound = LOSS_GRAD_BOUNDS["cross_entropy"][format_of(x.dtype).name]
    d = ulp_distance(got, want)
    assert d.size == 0 or d.max() <= bound, (x, target, tau, kw, got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_cross_entropy_temperature_within_the_contract(dtype, data):
    x = np.stack(data.draw(st.lists(logit_vectors(dtype, 6, 6), min_size=1, max_size=4)))
    tau = data.draw(TEMPERATURES)
    y = np.array(data.draw(st.lists(st.integers(0, 5), min_size=len(x), max_size=len(x))))
    eps = data.draw(st.sampled_from([0.0, 0.1, 1.0]))
    lam = data.draw(st.sampled_from([0.0, 1e-4]))
    _ce_check(x, y, tau, label_smoothing=eps, z_loss=lam)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_oracle_cross_entropy_is_minus_log_softmax(dtype, data):
    """Two correctly rounded values of one real number: the oracle's loss of a class index (no
    smoothing, no z-loss) equals minus its log_softmax entry bit for bit, with any temperature."""
    x = data.draw(logit_vectors(dtype, 2, 8))
    tau = data.draw(TEMPERATURES)
    j = data.draw(st.integers(0, len(x) - 1))
    lsm = oracle.log_softmax(x, temperature=tau)[j]
    ce = oracle.cross_entropy(x[None, :], np.array([j]), temperature=tau)[0]
    if np.isnan(lsm.astype(np.float64)):
        assert np.isnan(ce.astype(np.float64))
    else:  # a zero loss is +0 (a single finite logit: log_softmax +0 too)
        want = -lsm if lsm != 0 else lsm.dtype.type(0.0)
        assert same(np.asarray(ce), np.asarray(want)), (x, tau, j, ce, lsm)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_temperature_special_values(dtype):
    fmt = format_of(dtype)
    x = np.array([[1.0, 2.0, -INF], [NAN, 1.0, 0.0], [3.0, 3.0, 3.0], [0.5, 1.0, 2.0]]).astype(fmt.dtype)
    y = np.array([1, 0, -100, 2])
    for tau in (3.0, 1e-30, 1e30):
        got = sn.cross_entropy(x, y, temperature=tau)
        assert same(got, oracle.cross_entropy(x, y, temperature=tau)), tau
        assert np.isnan(got[1].astype(np.float64)) and same(got[2], fmt.dtype.type(0.0))
    masked = sn.cross_entropy(x[:1], np.array([2]), temperature=3.0)
    assert masked.astype(np.float64)[0] == INF
    # argmax collapse: the loss of the largest logit tends to 0, of another to (a - x_y)/T
    got = sn.cross_entropy(x[3:], np.array([0]), temperature=1e-30)
    assert same(got, np.array([exact_round(Fraction(3, 2) / Fraction(1e-30), fmt.name)]).astype(fmt.dtype))
    with pytest.raises(ValueError, match="temperature"):
        sn.cross_entropy(x, y, temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        oracle.cross_entropy(x, y, temperature=-2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_cross_entropy_gradient_with_a_temperature(dtype, data):
    """``grad.cross_entropy(..., temperature=T)``: ``(g/T)(softmax(z/T)(1 + 2 z_loss lse) - t)``,
    within the contract of G3 with the term scale of ``z/T`` and ``g/T`` (proofs/grad.md, Theorem
    G3, temperature); the dominant-class case keeps its tiny component."""
    fmt = format_of(dtype)
    x = np.stack(data.draw(st.lists(logit_vectors(dtype, 5, 5), min_size=1, max_size=3)))
    tau = data.draw(TEMPERATURES)
    y = np.array(data.draw(st.lists(st.integers(0, 4), min_size=len(x), max_size=len(x))))
    g = np.array(data.draw(st.lists(st.floats(-4, 4), min_size=len(x), max_size=len(x)))).astype(fmt.dtype)
    eps = data.draw(st.sampled_from([0.0, 0.1]))
    got = sn.grad.cross_entropy(x, y, g, label_smoothing=eps, temperature=tau)
    try:
        want = oracle.grad.cross_entropy(x, y, g, label_smoothing=eps, temperature=tau)
    except OracleUndecided:
        return
    t = np.full(x.shape, eps / x.shape[1])
    t[np.arange(len(x)), y] += 1 - eps
    ok, worst = within_contract("grad.cross_entropy", dtype, got, want, (x, g, t, 0.0, tau))
    assert ok, (x, y, g, tau, got, want, worst)


def test_cross_entropy_gradient_temperature_dominant_class():
    x = np.array([[37.42994775023705, 0.0]])
    for mod in (sn, oracle):
        d = mod.grad.cross_entropy(x, np.array([0]), np.array([1.0]), temperature=2.0)
        assert d[0, 0] < 0 and d[0, 0] == -d[0, 1] and d[0, 1] == pytest.approx(0.5 * math.exp(-37.42994775023705 / 2), rel=1e-12)
