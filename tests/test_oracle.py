"""The oracle is what every accuracy claim is measured against, so it is checked here against
references that share none of its code:

* ``exact_round`` rounds a :class:`~fractions.Fraction` to a format by walking the format's own
  numbers with ``numpy.nextafter`` and comparing with the midpoints as Fractions (no bit tricks,
  no ``divmod``), for ``round_rational`` / ``round_to`` (proofs/oracle.md, Theorem O1);
* plain mpmath evaluation at 400-600 bits, rounded by ``exact_round``, for the oracle's functions
  (Theorem O2): a plain evaluation has relative error far below ``2**-500``, so it can disagree
  with the correct rounding only for an exact value within ``2**-500`` of a rounding boundary,
  which Lemma T excludes for every input drawn here (the rational cases are evaluated exactly);
* the tables of special values in the docstrings, compared exactly (``ulp_distance == 0`` and
  the sign bit).
"""

from __future__ import annotations

import math
import tracemalloc
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import libmp

from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics.oracle import twins
from softlog_numerics.strategies import (
    floats,
    logit_vectors,
    probability_pairs,
    unit_interval,
)
from softlog_numerics.ulp import ulp_distance

DTYPES = list(FORMATS)
TINY = Fraction(1, 2**200)
# The comparisons with mpmath are the oracle's own check: 200 examples by default (about 25 s for
# the file), the profile's number when that is larger (thorough: 3000).
MORE = settings(max_examples=max(200, settings.default.max_examples))


# ---------------------------------------------------------------------------------------------
# An independent rounding: walk the format with nextafter.


def _next(x, dtype, up=True):
    dt = format_of(dtype).dtype
    with np.errstate(over="ignore"):
        return np.nextafter(np.asarray(x, dt), np.asarray(np.inf if up else -np.inf, dt))[()]


def exact_round(v, dtype):
    """``v`` (Fraction, int, or ±inf/nan float) rounded to nearest-even in ``dtype``, by search.

    Finds the representable ``a <= |v| < b`` (``b = nextafter(a, inf)``) by stepping from a rough
    guess, then compares ``|v|`` with the midpoint of ``a`` and ``b``; past the largest finite
    number the midpoint is ``max + (max - nextafter(max, 0)) / 2``. Zero results take the sign
    of ``v``; ``v == 0`` gives ``+0``.
    """
    dt = format_of(dtype).dtype
    if isinstance(v, float) and not math.isfinite(v):
        return dt.type(v)
    v = Fraction(v)
    if v == 0:
        return dt.type(0.0)
    mag = abs(v)
    try:
        guess = float(mag)
    except OverflowError:
        guess = math.inf
    with np.errstate(over="ignore"):
        a = np.asarray(guess).astype(dt)[()]
    if not np.isfinite(a):
        a = _next(a, dt, up=False)  # the largest finite number
    while Fraction(float(a)) > mag:
        a = _next(a, dt, up=False)
    while True:
        b = _next(a, dt)
        if not np.isfinite(b) or Fraction(float(b)) > mag:
            break
        a = b
    fa = Fraction(float(a))
    if fa == mag:
        r = a
    else:
        if np.isfinite(b):
            mid = (fa + Fraction(float(b))) / 2
        else:
            mid = fa + (fa - Fraction(float(_next(a, dt, up=False)))) / 2
        if mag < mid:
            r = a
        elif mag > mid:
            r = b
        else:  # tie: the neighbour whose last significand bit is 0 (inf's pattern ends in 0 too)
            bits_a = int(np.asarray(a, dt).view(format_of(dt).uint))
            r = a if bits_a % 2 == 0 else b
    return (-np.asarray(r, dt))[()] if v < 0 else r


def mpf_exact(x) -> Fraction | float:
    """An mpmath number as an exact Fraction; magnitudes beyond 2**±4000 are clamped to 2**±4000
    (which round like them in every format), infinities and NaN as floats."""
    t = x._mpf_
    if t in (libmp.finf, libmp.fninf, libmp.fnan):
        return float(mpmath.mpf(t))
    sign, man, exp, bc = t
    if not man:
        return Fraction(0)
    s = -1 if sign else 1
    if exp + bc < -4000:
        return Fraction(s, 2**4000)
    if exp + bc > 4000:
        return Fraction(s * 2**4000)
    return s * (Fraction(man) * Fraction(2) ** exp)


def same(a, b) -> bool:
    """Equal as floating-point data: ulp distance 0 (NaN == NaN) and the same sign bit."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    sa, sb = np.signbit(a.astype(np.float64)), np.signbit(b.astype(np.float64))
    nan = np.isnan(a.astype(np.float64))
    return bool(np.all(ulp_distance(a, b) == 0) and np.all((sa == sb) | nan))


def test_exact_round_reference_on_known_values():
    """The reference itself, on values whose rounding is known by hand."""
    assert exact_round(Fraction(1) + Fraction(1, 2**24) + Fraction(1, 2**60), "float32") == np.float32(1.0000001)
    assert exact_round(Fraction(1) + Fraction(1, 2**24), "float32") == np.float32(1.0)  # tie, even
    assert exact_round(Fraction(3, 2**24) + 1, "float32") == np.float32(1 + 2**-22)  # tie, even up
    assert exact_round(Fraction(65520), "float16") == np.float16(np.inf)
    assert exact_round(Fraction(65519), "float16") == np.float16(65504)
    assert np.signbit(exact_round(Fraction(-1, 2**30), "float16"))
    assert exact_round(Fraction(1, 2**25), "float16") == 0 and exact_round(Fraction(3, 2**26), "float16") == 2.0**-24


# ---------------------------------------------------------------------------------------------
# Theorem O1: round_rational


def _boundary_cases(dtype) -> list[Fraction]:
    """Midpoints (both parities), midpoints ± 2**-200, subnormal and overflow edges, both signs."""
    fmt = format_of(dtype)
    dt = fmt.dtype
    anchors = [
        1.0, 1.5, 3.0, 0.1, 1e-3, 100.0, fmt.tiny, fmt.min_subnormal, 2 * fmt.min_subnormal,
        3 * fmt.min_subnormal, fmt.tiny - fmt.min_subnormal, fmt.tiny / 2, fmt.max / 2,
        float(_next(dt.type(fmt.max), dt, up=False)), 2.0 ** (fmt.emax - 1), 0.2689414213699951,
    ]
    cases = [Fraction(0)]
    for x in anchors:
        a = np.asarray(x).astype(dt)[()]
        for _ in range(2):  # two consecutive midpoints: one rounds down to even, one up
            b = _next(a, dt)
            if not np.isfinite(b):
                break
            fa, fb = Fraction(float(a)), Fraction(float(b))
            mid = (fa + fb) / 2
            cases += [fa, mid, mid * (1 + TINY), mid * (1 - TINY), mid + (fb - fa) / 3, mid * (1 - TINY / 3)]
            a = b
    smallest = Fraction(fmt.min_subnormal)
    mx = Fraction(fmt.max)
    half_ulp_max = (mx - Fraction(float(_next(dt.type(fmt.max), dt, up=False)))) / 2
    cases += [
        smallest, smallest / 2, smallest / 2 * (1 + TINY), smallest / 2 * (1 - TINY), smallest / 4,
        Fraction(1, 2**3000), Fraction(fmt.tiny), Fraction(fmt.tiny) - smallest / 2,
        mx, mx + half_ulp_max, mx + half_ulp_max - mx * TINY, mx + half_ulp_max + mx * TINY, 2 * mx,
        Fraction(2**5000), Fraction(1, 3), Fraction(2, 3), Fraction(10**30 + 1, 7 * 10**29),
    ]
    return cases + [-c for c in cases]


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_rational_boundaries(dtype):
    """Theorem O1 on its hard cases: exact ties both ways, ties ± 2**-200, the subnormal and
    overflow edges, negatives (underflow to -0), zero (+0); each compared exactly."""
    fmt = format_of(dtype)
    cases = _boundary_cases(dtype)
    assert len(cases) > 150
    for v in cases:
        got = oracle.round_rational(v.numerator, v.denominator, fmt)
        want = exact_round(v, dtype)
        assert same(np.asarray(got).astype(fmt.dtype), np.asarray(want)), (dtype, v, got, want)
        assert isinstance(got, float) and float(np.float64(want)) == got
        assert same(oracle.round_to(v, dtype), np.asarray(want)), (dtype, v)


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_rational_known_edges(dtype):
    """The named edges by value: half the smallest subnormal ties to +0, max + half ulp is inf,
    just below it is max, the largest subnormal/smallest normal midpoint goes to the normal."""
    fmt = format_of(dtype)
    s, mx = Fraction(fmt.min_subnormal), Fraction(fmt.max)
    half_ulp = Fraction(2) ** (fmt.emax - fmt.precision)
    rr = lambda v: oracle.round_rational(v.numerator, v.denominator, fmt)  # noqa: E731
    assert rr(s / 2) == 0.0 and not math.copysign(1, rr(s / 2)) < 0
    assert math.copysign(1, rr(-s / 2)) < 0 and rr(-s / 2) == 0.0
    assert rr(s / 2 * (1 + TINY)) == fmt.min_subnormal
    assert rr(3 * s / 2) == 2 * fmt.min_subnormal  # tie between 1 and 2 subnormal units: even
    assert rr(Fraction(fmt.tiny) - s / 2) == fmt.tiny
    assert rr(mx + half_ulp) == math.inf and rr(-mx - half_ulp) == -math.inf
    assert rr(mx + half_ulp - mx * TINY) == fmt.max
    assert oracle.round_rational(0, 7, fmt) == 0.0 and math.copysign(1, oracle.round_rational(0, 7, fmt)) > 0
    with pytest.raises(ValueError):
        oracle.round_rational(1, 0, fmt)


@st.composite
def rationals(draw, dtype):
    """Random rationals over the whole range of a format, and near its midpoints."""
    fmt = format_of(dtype)
    kind = draw(st.sampled_from(["random", "near_mid", "scaled"]))
    if kind == "near_mid":
        a = draw(floats(dtype, 0.0, float(_next(format_of(dtype).dtype.type(fmt.max), dtype, up=False))))
        fa = Fraction(float(a))
        fb = Fraction(float(_next(a, dtype)))
        off = draw(st.sampled_from([Fraction(0), TINY, -TINY, Fraction(1, 2**60), Fraction(-1, 3 * 2**70)]))  # of an ulp
        v = (fa + fb) / 2 + off * (fb - fa)
        return v if draw(st.booleans()) else -v
    num = draw(st.integers(-(2**200), 2**200))
    den = draw(st.integers(1, 2**200))
    v = Fraction(num, den)
    if kind == "scaled":
        v *= Fraction(2) ** draw(st.integers(fmt.emin - fmt.precision - 4, fmt.emax + 4))
    return v


@pytest.mark.parametrize("dtype", DTYPES)
@MORE
@given(data=st.data())
def test_round_rational_random(dtype, data):
    """Theorem O1 on random rationals: round_rational == the independent search, exactly."""
    v = data.draw(rationals(dtype))
    got = oracle.round_rational(v.numerator, v.denominator, dtype)
    assert same(np.asarray(got).astype(format_of(dtype).dtype), np.asarray(exact_round(v, dtype))), v


def test_round_to_reads_values_exactly():
    """round_to uses the exact value of an mpf computed at any precision (no re-rounding to
    mpmath.mp.prec: the double-rounding witness 1 + 2**-24 + 2**-60 -> 1.0000001 in float32),
    floats, decimal strings, NumPy scalars, and keeps the sign of zero and the specials."""
    with mpmath.workprec(200):
        v = mpmath.mpf(1) + mpmath.mpf(2) ** -24 + mpmath.mpf(2) ** -60
    assert same(oracle.round_to(v, "float32"), np.array(np.float32(1.0000001)))
    with mpmath.workprec(300):
        tiny64 = mpmath.mpf(2) ** -1075 + mpmath.mpf(2) ** -1200  # above half the smallest subnormal
    assert oracle.round_to(tiny64, "float64") == 2.0**-1074
    assert same(oracle.round_to(-0.0, "float16"), np.array(np.float16(-0.0)))
    assert same(oracle.round_to(mpmath.mpf("-inf"), "bfloat16"), np.array(-np.inf).astype(format_of("bfloat16").dtype))
    assert np.isnan(oracle.round_to(mpmath.mpf("nan"), "float32"))
    assert oracle.round_to("0.1", "float64") == 0.1
    assert oracle.round_to("1/3", "float16") == np.float16(1 / 3)
    assert oracle.round_to(np.float32(0.1), "float64") == float(np.float32(0.1))
    assert oracle.round_to(True, "float16") == 1.0
    assert oracle.round_to(2**1000, "float32") == np.inf
    assert same(oracle.round_to(-(2.0**-1074), "float32"), np.array(np.float32(-0.0)))
    with pytest.raises(TypeError):
        oracle.round_to(object(), "float32")


# ---------------------------------------------------------------------------------------------
# References by plain high-precision evaluation


def _mp_softlog(x: float):
    """L(x) at the current mpmath precision, exact at 0 and 1; None where it is NaN."""
    if x == 0.0:
        return mpmath.mpf(-1)
    if x == 1.0:
        return mpmath.mpf(1)
    e = mpmath.e
    arg = (e - 1 / e) * mpmath.mpf(x) + 1 / e
    return None if arg < 0 else mpmath.log(arg)


def ref_softlog(x, dtype, bits=400):
    fmt = format_of(dtype)
    x = float(x)
    if math.isnan(x) or x == -math.inf:
        return fmt.dtype.type(np.nan)
    if x == math.inf:
        return fmt.dtype.type(np.inf)
    with mpmath.workprec(bits):
        v = _mp_softlog(x)
        return fmt.dtype.type(np.nan) if v is None else exact_round(mpf_exact(v), dtype)


def _mp_shifted(finite):
    """(m, offsets, s) with s = sum_{i != argmax} exp(x_i - m), at the current precision."""
    k = max(range(len(finite)), key=lambda i: finite[i])
    m = mpmath.mpf(finite[k])
    d = [mpmath.mpf(v) - m for v in finite]
    s = mpmath.fsum(mpmath.exp(t) for i, t in enumerate(d) if i != k)
    return m, d, s


def ref_log_softmax(x, bits=600):
    dt = x.dtype
    row = [float(v) for v in x]
    finite = [v for v in row if v != -math.inf]
    if not finite:
        return np.full(len(row), np.nan, dt)
    if len(finite) == 1:
        return np.array([-np.inf if v == -math.inf else 0.0 for v in row]).astype(dt)
    with mpmath.workprec(bits):
        m, d, s = _mp_shifted(finite)
        l1p = mpmath.log1p(s)
        it = iter(d)
        out = []
        for v in row:
            # x_i - m exact, minus log1p(s) (relative error 2**-600 of itself), summed exactly: an
            # offset that is a midpoint of the format stays distinguishable from offset - tiny.
            out.append(-np.inf if v == -math.inf else exact_round(mpf_exact(next(it)) - mpf_exact(l1p), dt))
    return np.array(out, dtype=dt)


def ref_logsumexp(x, bits=600):
    dt = x.dtype
    finite = [float(v) for v in x if float(v) != -math.inf]
    if not finite:
        return np.array(-np.inf, dt)
    with mpmath.workprec(bits):
        m, d, s = _mp_shifted(finite)
        return np.asarray(exact_round(mpf_exact(m) + mpf_exact(mpmath.log1p(s)), dt))


def ref_sld_sym(p, q, bits=600):
    """sum (p - q)(L(p) - L(q)) / 4 with L(p) - L(q) = log1p((e - 1/e)(p - q)/((e - 1/e) q + 1/e))."""
    with mpmath.workprec(bits):
        e = mpmath.e
        a, b = e - 1 / e, 1 / e
        total = mpmath.mpf(0)
        for pi, qi in zip(p.astype(np.float64).tolist(), q.astype(np.float64).tolist()):
            if pi == qi:
                continue
            dp = mpmath.mpf(pi) - mpmath.mpf(qi)
            total += dp * mpmath.log1p(a * dp / (a * qi + b))
        return np.asarray(exact_round(mpf_exact(total / 4), p.dtype))


def ref_cross_entropy(p, q, bits=600):
    with mpmath.workprec(bits):
        total = mpmath.mpf(0)
        for pi, qi in zip(p.astype(np.float64).tolist(), q.astype(np.float64).tolist()):
            if pi != 0.0:
                total -= mpmath.mpf(pi) * _mp_softlog(qi)
        return np.asarray(exact_round(mpf_exact(total), p.dtype))


# ---------------------------------------------------------------------------------------------
# Theorem O2: known values


X0 = Fraction(0.2689414213699951)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softlog_known_values(dtype):
    """softlog at 0, ±0, 1, its zero x0 = 1/(e+1) and 8 neighbours each side, the neighbours of
    0 and 1, the subnormal/normal edges, max, and near the branch point, against mpmath at 400
    bits rounded by exact_round."""
    fmt = format_of(dtype)
    dt = fmt.dtype
    xs = [0.0, -0.0, 1.0, fmt.min_subnormal, fmt.tiny, fmt.max, 0.5, 2.0, -0.1, -0.15, 1e-3]
    c = np.asarray(float(X0)).astype(dt)[()]
    for _ in range(8):
        c = _next(c, dt, up=False)
    for _ in range(17):
        xs.append(float(c))
        c = _next(c, dt)
    xs += [float(_next(dt.type(1.0), dt, up=False)), float(_next(dt.type(1.0), dt)), float(_next(dt.type(0.0), dt, up=False))]
    x = np.array(xs, dtype=np.float64).astype(dt)
    got = oracle.softlog(x)
    want = np.array([ref_softlog(v, dtype) for v in x], dtype=dt)
    assert same(got, want), [(float(a), float(g), float(w)) for a, g, w in zip(x, got, want) if not same(np.asarray(g), np.asarray(w))]
    assert float(got[0]) == -1.0 and float(got[1]) == -1.0 and float(got[2]) == 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_softlog_special_values(dtype):
    """The docstring's table: L(±0) = -1, L(1) = 1, L(inf) = inf, NaN for NaN, -inf and every x
    below -1/(e**2 - 1) = -0.15651764...; an empty array stays empty."""
    dt = format_of(dtype).dtype
    x = np.array([0.0, -0.0, 1.0, np.inf, -np.inf, np.nan, -0.5, -0.157, -1e30 if dtype != "float16" else -6e4]).astype(dt)
    want = np.array([-1.0, -1.0, 1.0, np.inf, np.nan, np.nan, np.nan, np.nan, np.nan]).astype(dt)
    assert same(oracle.softlog(x), want)
    assert oracle.softlog(np.zeros((0, 3), dt)).shape == (0, 3)
    assert oracle.softlog(np.float32(0.5)).shape == ()


@pytest.mark.parametrize("dtype", DTYPES)
def test_signalling_nan_input_is_nan_without_warnings(dtype):
    """A signalling NaN (exponent all ones, lowest mantissa bit) is NaN like any other, and no
    cast warning escapes (warnings are errors in this suite)."""
    fmt = format_of(dtype)
    snan = (np.array(np.inf, dtype=np.float64).astype(fmt.dtype).view(fmt.uint) + fmt.uint.type(1)).view(fmt.dtype)
    x = np.array([snan, np.asarray(0.5).astype(fmt.dtype)[()]], dtype=fmt.dtype)
    assert np.isnan(oracle.softlog(x)[0]) and oracle.softlog(x)[1] == oracle.softlog(x[1:])[0]
    assert np.isnan(oracle.logsumexp(x)) and np.isnan(oracle.log_softmax(x)).all()
    assert np.isnan(oracle.softlog_entropy(x, validate=False))
    assert np.isnan(oracle.softlog_softmax(x.reshape(1, 2), x[:1], validate=False)).all()


def test_branch_point_is_separated_from_every_float64():
    """softlog is NaN exactly below B = -1/(e**2 - 1): the oracle's 256-bit enclosure of B holds B
    and no float64 (checked on B's float64 neighbours, which are > 2**-60 away), so the NaN test
    is exact for all four formats."""
    with mpmath.workprec(1000):
        b = -1 / (mpmath.e**2 - 1)
        lo, hi = oracle.enclosures._BRANCH
        assert mpmath.mpf(lo) <= b <= mpmath.mpf(hi)
        assert mpmath.mpf(hi) - mpmath.mpf(lo) < mpmath.mpf(2) ** -250
        f = float(b)
        for c in [f, float(_next(f, "float64", up=False)), float(_next(f, "float64"))]:
            assert abs(mpmath.mpf(c) - b) > mpmath.mpf(2) ** -60
            assert oracle.enclosures.below_branch(c) == (mpmath.mpf(c) < b)
            assert np.isnan(oracle.softlog(np.float64(c))) == (mpmath.mpf(c) < b)


def test_log_softmax_dominant_class_float32():
    """field-notes §2: float32 [16.94, 0] has log p_max = -4.3959346e-08 (correctly rounded), where
    the 3-pass formula returns 0; the oracle agrees with mpmath and with that decimal."""
    x = np.array([16.94, 0.0], dtype=np.float32)
    got = oracle.log_softmax(x)
    assert got[0] == np.float32(-4.3959346e-08)
    assert same(got, ref_log_softmax(x))


def test_log_softmax_dominant_class_float64():
    """float64 [40, 0]: log p_max = -4.248354255291589e-18 (mpmath, 600 bits, exact_round)."""
    x = np.array([40.0, 0.0])
    got = oracle.log_softmax(x)
    assert got[0] == -4.248354255291589e-18
    assert same(got, ref_log_softmax(x))
    assert same(oracle.logsumexp(x), ref_logsumexp(x))


def _rows_table():
    """(row, logsumexp, log_softmax, softmax) special cases from the docstrings."""
    nan, inf = np.nan, np.inf
    return [
        ([], -inf, [], []),
        ([-inf, -inf], -inf, [nan, nan], [nan, nan]),
        ([nan, 1.0], nan, [nan, nan], [nan, nan]),
        ([inf, nan], nan, [nan, nan], [nan, nan]),
        ([inf, 1.0, -inf], inf, [nan, -inf, -inf], [nan, 0.0, 0.0]),
        ([inf, inf], inf, [nan, nan], [nan, nan]),
        ([2.0, -inf], 2.0, [0.0, -inf], [1.0, 0.0]),
        ([-0.0, -inf], 0.0, [0.0, -inf], [1.0, 0.0]),
        ([-3.0], -3.0, [0.0], [1.0]),
        ([1.5, 1.5, 1.5, 1.5], None, None, [0.25] * 4),
        ([0.0, -1e4], None, [-0.0, -1e4], [1.0, 0.0]),  # underflow keeps the exact value's sign
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_family_special_values(dtype):
    """Every row of the special-value table of logsumexp/log_softmax/softmax, exactly (sign bit
    included: lse([-0, -inf]) = +0; log_softmax([0, -1e4])[0] = -0 since the exact value is
    -exp(-1e4) < 0)."""
    dt = format_of(dtype).dtype
    for row, lse, lsm, sm in _rows_table():
        x = np.array(row, dtype=np.float64).astype(dt)
        if lse is not None:
            assert same(oracle.logsumexp(x), np.array(lse).astype(dt)), (row, oracle.logsumexp(x))
        if lsm is not None:
            assert same(oracle.log_softmax(x), np.array(lsm, dtype=np.float64).astype(dt)), row
        if sm is not None:
            assert same(oracle.softmax(x), np.array(sm, dtype=np.float64).astype(dt)), row
    three = oracle.softmax(np.array([7.0, 7.0, 7.0]).astype(dt))
    assert same(three, np.array([exact_round(Fraction(1, 3), dt)] * 3))
    e = np.zeros((2, 0), dt)
    assert oracle.logsumexp(e).tolist() == [-np.inf, -np.inf] and oracle.log_softmax(e).shape == (2, 0)


def test_huge_offsets_do_not_build_huge_integers():
    """exp(-1e308) is a legitimate interval endpoint; rounding it must not allocate 2**1e308."""
    x = np.array([0.0, -1e308])
    assert same(oracle.softmax(x), np.array([1.0, 0.0]))
    assert same(oracle.log_softmax(x), np.array([-0.0, -1e308]))
    assert same(oracle.logsumexp(x), np.array(0.0))
    f32 = np.array([3e38, -3e38], dtype=np.float32)
    assert same(oracle.log_softmax(f32), np.array([-0.0, -np.inf], dtype=np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_offset_at_a_midpoint(dtype):
    """x = [2**(p-1) + 1, -2**(p-1)]: the offset x_1 - x_0 = -(2**p + 1) is a midpoint of the
    format and log_softmax_1 = offset - log1p(exp(offset)) lies below it by about exp(-2**p),
    so it rounds to -(2**p + 2), not to the even -2**p. (Rounding the difference to the working
    precision P made the oracle need P > 2**p / ln 2 bits: OracleUndecided for float64.)"""
    fmt = format_of(dtype)
    a = 2.0 ** (fmt.precision - 1)
    x = np.array([a + 1.0, -a]).astype(fmt.dtype)
    got = oracle.log_softmax(x)
    assert same(got, np.array([-0.0, -(2.0**fmt.precision + 2.0)]).astype(fmt.dtype))
    assert same(got, ref_log_softmax(x))
    assert same(oracle.logsumexp(x), np.array(a + 1.0).astype(fmt.dtype))


def _divergence_table():
    """(function, p, q, expected) with exact results, validate=False where out of domain."""
    nan = np.nan
    f = oracle
    return [
        (f.softlog_entropy, [1.0, 0.0], None, -1.0),
        (f.softlog_entropy, [0.0, 1.0, 0.0], None, -1.0),
        (f.softlog_cross_entropy, [1.0, 0.0], [0.0, 1.0], 1.0),
        (f.softlog_cross_entropy, [1.0, 0.0], [1.0, 0.0], -1.0),
        (f.softlog_cross_entropy, [0.5, 0.5], [1.0, 0.0], 0.0),  # -(0.5*1 + 0.5*(-1)) = +0
        (f.sld, [1.0, 0.0], [0.0, 1.0], 1.0),
        (f.sld, [0.25, 0.75], [0.25, 0.75], 0.0),
        (f.sld_sym, [1.0, 0.0], [0.0, 1.0], 1.0),
        (f.sld_sym, [0.3, 0.7], [0.3, 0.7], 0.0),
        (f.softlog_entropy, [nan, 1.0], None, nan),
        (f.softlog_entropy, [-0.5, 1.5], None, nan),  # L(-0.5) is NaN
        (f.softlog_cross_entropy, [0.0, 1.0], [-0.5, 1.5], nan),  # 0 * NaN is NaN
        (f.softlog_cross_entropy, [1.0, 0.0], [np.inf, 0.0], nan),
        (f.softlog_cross_entropy, [0.5, -0.5], [0.3, 0.3], 0.0),  # cancels exactly: Lemma T
        (f.sld, [0.0, 1.0], [-0.2, 1.2], nan),
        (f.sld_sym, [0.5, 0.5], [-0.5, 1.5], nan),
        (f.sld_sym, [-0.5, 1.5], [-0.5, 1.5], nan),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_divergence_special_values(dtype):
    """The divergences' exact cases (one-hots, p == q, exact cancellation) and NaN conventions
    (validate=False: non-finite rows, softlog evaluated below the branch point), exactly; exact
    zeros are +0."""
    dt = format_of(dtype).dtype
    for fn, p, q, want in _divergence_table():
        args = [np.array(p).astype(dt)] + ([] if q is None else [np.array(q).astype(dt)])
        got = fn(*args, validate=False)
        assert same(got, np.array(want).astype(dt)), (fn.__name__, p, q, got)


def test_divergence_rows_pair_p_and_q_for_tuple_axes():
    """With axis a tuple, row r of p is paired with row r of q: compare with the same data moved
    to a 2-D layout by hand, and axis=None with the flattened arrays."""
    rng = np.random.default_rng(5)
    p = rng.random((3, 4, 2))
    q = rng.random((3, 4, 2)) ** 2
    p /= p.sum(axis=(0, 2), keepdims=True)
    q /= q.sum(axis=(0, 2), keepdims=True)
    flat = lambda a: a.transpose(1, 0, 2).reshape(4, 6)  # noqa: E731
    for fn in (oracle.sld, oracle.sld_sym, oracle.softlog_cross_entropy):
        got = fn(p, q, axis=(0, 2))
        assert same(got, fn(flat(p), flat(q), axis=1))
        assert fn(p, q, axis=(2, 0), keepdims=True).shape == (1, 4, 1)
    pn, qn = p / p.sum(), q / q.sum()
    assert same(oracle.sld(pn, qn, axis=None), oracle.sld(pn.ravel(), qn.ravel()))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softlog_softmax_special_values(dtype):
    """K = 1 gives 1 (log: +0); B = 0 and equal columns give 1/K exactly; non-finite P or w and P
    below the branch point (even with weight 0) give a NaN row; shapes (..., K)."""
    dt = format_of(dtype).dtype
    f = oracle.softlog_softmax
    P1 = np.array([[0.3], [1.0]]).astype(dt)
    assert same(f(P1, np.array([2.0, -1.0]).astype(dt), validate=False), np.array([1.0]).astype(dt))
    assert same(f(P1, np.array([2.0, -1.0]).astype(dt), log=True, validate=False), np.array([0.0]).astype(dt))
    third = exact_round(Fraction(1, 3), dt)
    assert same(f(np.zeros((2, 0, 3), dt), np.zeros(0, dt)), np.full((2, 3), third, dt))
    # columns equal as sums: 1*L(0.3) + 1*L(0.3) and 2*L(0.3) + 0*L(0): exactly 1/2 each
    P = np.array([[0.3, 0.3], [0.3, 0.0]]).astype(dt)
    w_eq = np.array([[1.0, 2.0], [1.0, 0.0]]).astype(dt)
    assert same(f(P, w_eq, validate=False), np.array([0.5, 0.5]).astype(dt))
    with mpmath.workprec(200):
        minus_ln2 = exact_round(mpf_exact(-mpmath.log(2)), dt)
    assert same(f(P, w_eq, log=True, validate=False), np.array([minus_ln2] * 2))
    bad = np.array([[0.5, 0.5], [-0.5, 1.5]]).astype(dt)
    assert np.isnan(f(bad, np.array([1.0, 0.0]).astype(dt), validate=False)).all()
    assert np.isnan(f(np.array([[0.5, 0.5]]).astype(dt), np.array([np.inf]).astype(dt), validate=False)).all()
    assert f(np.full((5, 2, 3), 1 / 3).astype(dt), np.ones(2, dt)).shape == (5, 3)


# ---------------------------------------------------------------------------------------------
# The Ziv loop's failure path and the mpmath state


def test_undecided_raises_instead_of_guessing(monkeypatch):
    """With MAX_PRECISION = 100 bits, softlog at the float64 nearest x0 (which needs about 55 + 53
    bits) raises OracleUndecided; with the default limit it returns the mpmath value. (The interval
    loop itself: the float64 fast path of Theorem F5 decides this input without it.)"""
    x = np.float64(0.2689414213699951)
    monkeypatch.setattr(oracle.enclosures, "MAX_PRECISION", 100)
    with pytest.raises(oracle.OracleUndecided, match="not decided"):
        oracle.softlog(x, method="mpmath")
    monkeypatch.undo()
    assert same(oracle.softlog(x), np.asarray(ref_softlog(x, "float64")))


def test_mpmath_state_is_untouched(monkeypatch):
    """No call reads or changes mpmath's global precision (mp.prec, iv.prec), also when it raises;
    results are the same whatever mp.prec is."""
    x = np.array([0.2689414213699951, 0.7, 1e-300])
    ref = oracle.softlog(x, method="mpmath")
    saved = mpmath.mp.prec, mpmath.iv.prec
    try:
        mpmath.mp.prec, mpmath.iv.prec = 20, 30
        assert same(oracle.softlog(x, method="mpmath"), ref)
        assert same(oracle.softlog(x), ref)
        oracle.log_softmax(np.array([3.0, 1.0]))
        oracle.sld_sym(np.array([0.3, 0.7]), np.array([0.6, 0.4]))
        oracle.softlog_softmax(np.array([[0.3, 0.7]]), np.array([1.5]))
        with pytest.raises(ValueError):
            oracle.sld(np.array([0.3, 0.3]), np.array([0.5, 0.5]))
        monkeypatch.setattr(oracle.enclosures, "MAX_PRECISION", 60)
        with pytest.raises(oracle.OracleUndecided):
            oracle.softlog(x, method="mpmath")
        assert (mpmath.mp.prec, mpmath.iv.prec) == (20, 30)
    finally:
        mpmath.mp.prec, mpmath.iv.prec = saved


def test_mpmath_primitives_meet_hypothesis_h1():
    """Hypothesis H1 of proofs/oracle.md: mpmath's exp, log and e at w bits (round to nearest) are
    within 2**(2-w) relative of the value at 3w bits, on arguments over many magnitudes."""
    rng = np.random.default_rng(11)
    args = np.concatenate([rng.normal(size=40) * 10.0 ** rng.integers(-20, 3, 40), [1e-300, 700.0, -745.0, 1.0 + 2**-52]])
    for w in (40, 93, 200, 700):
        bound = mpmath.mpf(2) ** (2 - w)
        with mpmath.workprec(3 * w + 50):
            e_ref = mpmath.e + 0
            y = mpmath.mpf(libmp.mpf_e(w, libmp.round_nearest))
            assert abs(y - e_ref) <= bound * e_ref
            for a in args.tolist():
                x = libmp.from_float(a)
                ref = mpmath.exp(mpmath.mpf(x))
                y = mpmath.mpf(libmp.mpf_exp(x, w, libmp.round_nearest))
                assert abs(y - ref) <= bound * ref, (w, a)
                if a > 0:
                    ref = mpmath.log(mpmath.mpf(x))
                    y = mpmath.mpf(libmp.mpf_log(x, w, libmp.round_nearest))
                    assert abs(y - ref) <= bound * abs(ref), (w, a)


# ---------------------------------------------------------------------------------------------
# Theorem O2 against plain high-precision mpmath, on Hypothesis draws


@pytest.mark.parametrize("dtype", DTYPES)
@MORE
@given(data=st.data())
def test_softlog_matches_mpmath(dtype, data):
    """softlog == mpmath at 600 bits rounded by exact_round, over the whole range and near x0, 0
    and 1 (unit_interval's weights)."""
    x = data.draw(st.one_of(floats(dtype, allow_nan=True, allow_infinity=True), unit_interval(dtype)))
    assert same(oracle.softlog(x), np.asarray(ref_softlog(x, dtype, bits=600)))


@pytest.mark.parametrize("dtype", DTYPES)
@MORE
@given(data=st.data())
def test_softmax_family_matches_mpmath(dtype, data):
    """log_softmax and logsumexp == mpmath at 600 bits (log1p of the shifted sum) rounded by
    exact_round, on every logit family but "wide", rows of 1 to 6 entries."""
    x = data.draw(logit_vectors(dtype, min_size=1, max_size=6))
    assert same(oracle.log_softmax(x), ref_log_softmax(x)), x
    assert same(oracle.logsumexp(x), ref_logsumexp(x)), x


@pytest.mark.parametrize("dtype", DTYPES)
@MORE
@given(data=st.data())
def test_divergences_match_mpmath(dtype, data):
    """sld_sym and softlog_cross_entropy == mpmath at 600 bits rounded by exact_round, on
    probability pairs (equal, close, disjoint one-hots, independent) of 1 to 6 entries."""
    p, q = data.draw(probability_pairs(dtype, max_size=6))
    assert same(oracle.sld_sym(p, q), ref_sld_sym(p, q)), (p, q)
    assert same(oracle.softlog_cross_entropy(p, q), ref_cross_entropy(p, q)), (p, q)


def test_long_rows_are_streamed_with_the_same_results(monkeypatch):
    """Rows longer than ``_STREAM`` keep no per-entry enclosures and are decided in chunks; the
    results are those of the stored path, bit for bit (the same enclosures in the same order)."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((3, 30)) * 5).astype(np.float32)
    x[0, 3] = -np.inf
    calls = [
        lambda: oracle.log_softmax(x), lambda: oracle.softmax(x), lambda: oracle.logsumexp(x),
        lambda: oracle.log_softmax(x, temperature=3.0), lambda: oracle.softmax(x, temperature=0.3),
        lambda: oracle.logsumexp(x, temperature=7.0),
    ]
    stored = [c() for c in calls]
    monkeypatch.setattr(twins, "_STREAM", 4)
    monkeypatch.setattr(twins, "_CHUNK", 7)
    assert all(c().tobytes() == s.tobytes() for c, s in zip(calls, stored))


def test_oracle_memory_per_entry_is_bounded_on_a_long_row():
    """A row of 20000 float32 logits: the oracle's peak Python allocation stays below 400 bytes
    per entry (the stored path needed about 1 KB per entry)."""
    x = (np.random.default_rng(5).standard_normal(20000) * 3).astype(np.float32)
    tracemalloc.start()
    try:
        oracle.log_softmax(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 400 * x.size, peak
