"""Softlog entropy, cross-entropy, sld and sld_sym against the correctly rounded oracle, their
ranges and exact properties, special values, validation and dtype promotion.

Tolerances (proofs/divergence.md):

* Theorems D3/D4: the double-double softlog and softlog difference have relative error < 2**-64.
* Theorem D5: sld_sym is within 1 ULP of the oracle in every format.
* Theorem D6: entropy, cross-entropy and sld are within 1 ULP, or within ``2**-58 sum_k |t_k|``
  absolutely where the terms ``t_k`` cancel (tighter than the contract's ``4 * 2**-53 sum |t_k|``).
* Theorem D7: sld_sym is ``+0`` for ``p == q``, symmetric bit for bit, in ``[0, 1]`` when the
  entries of ``p`` and ``q`` each sum to at most 1; entropy in ``[-1, fl(-L(1/K)) + 1 ulp]`` and
  sld at most 1 for exactly normalised ``p``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import softlog_numerics as sn
from softlog_numerics import oracle
from softlog_numerics._core import constants as _c
from softlog_numerics._core import softlog_dd as sdd
from softlog_numerics._core.eft import two_prod, two_sum
from softlog_numerics._core.formats import (
    BFLOAT16,
    FORMATS,
    format_of,
    round_from_float64,
)
from softlog_numerics.functions import _divergence as dv
from softlog_numerics.strategies import probability_pairs, probability_vectors
from softlog_numerics.testing.contract import CANCELLATION, ULP_BOUNDS
from softlog_numerics.ulp import from_ordinal, ordinal, ulp_distance

DTYPES = ["float16", "bfloat16", "float32", "float64"]
NAMES = ["softlog_entropy", "softlog_cross_entropy", "sld", "sld_sym"]
A = (math.e - 1 / math.e, 1 / math.e)


def _call(name, p, q, **kw):
    f = getattr(dv, name)
    return f(p, **kw) if name == "softlog_entropy" else f(p, q, **kw)


def _call_oracle(name, p, q, **kw):
    f = getattr(oracle, name)
    return f(p, **kw) if name == "softlog_entropy" else f(p, q, **kw)


def _softlog64(x):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(A[0] * x + A[1])


def _sum_abs_terms(name, p, q) -> float:
    """``sum_k |t_k|`` (the terms as written, with the 1/2 or 1/4), to ~1e-15, shrunk by 1e-6
    so that it never overstates the contract's allowance."""
    p = p.astype(np.float64)
    q = q.astype(np.float64)
    if name == "softlog_entropy":
        t = np.where(p == 0, 0.0, p * _softlog64(p))
    elif name == "softlog_cross_entropy":
        t = np.where(p == 0, 0.0, p * _softlog64(q))
    elif name == "sld":
        t = np.where((p == 0) | (p == q), 0.0, 0.5 * p * (_softlog64(p) - _softlog64(q)))
    else:
        t = 0.25 * (p - q) * (_softlog64(p) - _softlog64(q))
    return float(np.abs(t).sum()) * (1 - 1e-6)


def _check_accuracy(name, p, q, got, want):
    """Theorem D5/D6 bound, and the contract (which it implies)."""
    fmt = format_of(got.dtype)
    d = float(ulp_distance(got, want))
    if d <= 1:
        return d
    assert name != "sld_sym", f"sld_sym {d} ULP (Theorem D5 says <= 1): p={p!r} q={q!r} {got!r} vs {want!r}"
    err = abs(float(got) - float(want)) + 0.5 * _ulp_of(float(want), fmt)
    allowed = 2.0**-58 * _sum_abs_terms(name, p, q)
    assert err <= allowed, f"{name}: {d} ULP and |error| {err:.3g} > 2**-58 sum|t| = {allowed:.3g}: p={p!r} q={q!r}"
    assert d <= ULP_BOUNDS[name][fmt.name] or err <= CANCELLATION[name] * 2.0**-53 * _sum_abs_terms(name, p, q)
    return d


def _ulp_of(x: float, fmt) -> float:
    x = abs(x)
    if not math.isfinite(x):
        return math.inf
    e = max(math.frexp(x)[1] - 1, fmt.emin) if x else fmt.emin
    return math.ldexp(1.0, e - fmt.precision + 1)


# ---------------------------------------------------------------------------------------------
# Theorems D3, D4: the float64 kernels (no libm function is used; IEEE binary64 + - * / only).


def test_error_free_transformations_are_exact():
    rng = np.random.default_rng(5)
    a = rng.standard_normal(2000) * np.exp2(rng.integers(-60, 60, 2000))
    b = rng.standard_normal(2000) * np.exp2(rng.integers(-60, 60, 2000))
    s, t = two_sum(a, b)
    p, e = two_prod(a, b)
    for i in range(0, 2000, 7):
        fa, fb = Fraction(float(a[i])), Fraction(float(b[i]))
        assert Fraction(float(s[i])) + Fraction(float(t[i])) == fa + fb
        assert Fraction(float(p[i])) + Fraction(float(e[i])) == fa * fb


def test_constants_and_table_against_mpmath():
    with mpmath.workprec(300):
        e = mpmath.e
        a = e - 1 / e
        for pair, exact in [
            (_c.A, a),
            (_c.D0, a * (1 / (e + 1) - _c.X0[0])),
            (_c.DB, a * (-1 / (e * e - 1) - _c.XB[0])),
        ]:
            assert abs(mpmath.mpf(pair[0]) + pair[1] - exact) <= 2.0**-105 * abs(exact)
        assert abs(sdd._LN2_HI * 2.0**42 - round(sdd._LN2_HI * 2.0**42)) == 0
        assert abs(mpmath.mpf(sdd._LN2_HI) + sdd._LN2_LO - mpmath.log(2)) <= 2.0**-96
        for j in range(sdd._J0, sdd._J1 + 1):
            v = mpmath.log(mpmath.mpf(j) / 128)
            assert abs(mpmath.mpf(sdd._LOGC_HI[j - sdd._J0]) + sdd._LOGC_LO[j - sdd._J0] - v) <= 2.0**-105 * max(abs(v), 2.0**-8)


def _kernel_points(rng):
    x0 = _c.X0[0]
    return np.concatenate([
        rng.random(2000),
        rng.random(300) * 1e-3,
        x0 + (rng.random(300) - 0.5) * 2.0**-30,
        np.nextafter(x0, np.array([-1.0, 1.0] * 3)),
        np.exp2(rng.uniform(-1074, 1023, 400)),
        -0.1565 + rng.random(100) * 0.05,
        [np.nextafter(_c.XB[0], 1), _c.XB[0], 5e-324, 1.7976931348623157e308, 2.0**990, 0.5, 0.25],
    ])


def _rel(hi, lo, exact):
    return abs((mpmath.mpf(float(hi)) + mpmath.mpf(float(lo)) - exact) / exact)


def test_softlog_double_double_relative_error():
    """Theorem D3: |L_dd(x) - L(x)| < 2**-64 |L(x)| (measured: about 2**-70)."""
    rng = np.random.default_rng(6)
    x = _kernel_points(rng)
    x = x[~sdd.below_branch(x)]
    hi, lo = sdd.softlog_dd(x)
    worst = 0.0
    with mpmath.workprec(400):
        a, b = mpmath.e - 1 / mpmath.e, 1 / mpmath.e
        for xi, h, l in zip(x.tolist(), hi, lo):
            worst = max(worst, float(_rel(h, l, mpmath.log(a * mpmath.mpf(xi) + b))))
    assert worst < 2.0**-64, math.log2(worst)


def test_softlog_difference_double_double_relative_error():
    """Theorem D4: |D_dd(p, q) - (L(p) - L(q))| < 2**-64 |L(p) - L(q)| when |p - q| >= 2**-960
    (below, where D is near the subnormal range, an absolute error under 2**-1070); sign and
    antisymmetry exact."""
    rng = np.random.default_rng(7)
    x = _kernel_points(rng)
    x = x[~sdd.below_branch(x)]
    p = np.concatenate([x, x, rng.random(500)])
    q = np.concatenate([np.nextafter(x, 2.0), rng.permutation(x), rng.random(500)])
    keep = (p != q) & ~sdd.below_branch(q) & np.isfinite(q)
    p, q = p[keep], q[keep]
    hi, lo = sdd.softlog_diff_dd(p, q)
    hi2, lo2 = sdd.softlog_diff_dd(q, p)
    assert np.array_equal(hi2, -hi) and np.array_equal(lo2, -lo)
    assert np.array_equal(np.sign(hi), np.sign(p - q))
    worst = 0.0
    with mpmath.workprec(2200):
        a, b = mpmath.e - 1 / mpmath.e, 1 / mpmath.e
        for pi, qi, h, l in zip(p.tolist(), q.tolist(), hi, lo):
            exact = mpmath.log((a * mpmath.mpf(pi) + b) / (a * mpmath.mpf(qi) + b))
            if abs(pi - qi) >= 2.0**-960:
                worst = max(worst, float(_rel(h, l, exact)))
            else:
                assert abs(mpmath.mpf(float(h)) + mpmath.mpf(float(l)) - exact) < 2.0**-1070
    assert worst < 2.0**-64, math.log2(worst)


# ---------------------------------------------------------------------------------------------
# Theorems D5, D6: accuracy against the oracle.


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_accuracy_against_oracle(name, dtype, data):
    p, q = data.draw(probability_pairs(dtype, 1, 64))
    _check_accuracy(name, p, q, _call(name, p, q), _call_oracle(name, p, q))


@pytest.mark.parametrize("dtype", DTYPES)
def test_accuracy_wide_rows(dtype):
    """A few K = 1000 rows: random, near one-hot, and q a few ULPs from p."""
    fmt = FORMATS[dtype]
    rng = np.random.default_rng(11)
    rows = [rng.dirichlet(np.full(1000, 0.3)), rng.dirichlet(np.full(1000, 0.3))]
    near = np.full(1000, 1e-7 / 999)
    near[3] = 1 - 1e-7
    p = np.stack([rows[0], near]).astype(np.float64)
    q = np.stack([rows[1], rows[0]]).astype(np.float64)
    p = round_from_float64(p, fmt)
    q = round_from_float64(q, fmt)
    q[1] = from_ordinal(ordinal(p[0]) + rng.integers(-3, 4, 1000), fmt.dtype)  # p[0] moved a few ulps
    q[1] = np.abs(q[1])
    for name in NAMES:
        got = _call(name, p, q, validate=False)
        want = _call_oracle(name, p, q, validate=False)
        for r in range(2):
            _check_accuracy(name, p[r], q[r], got[r], want[r])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_accuracy_outside_the_simplex(name, dtype, data):
    """validate=False: entries in (x_b, 4], sums anywhere (the proofs cover every finite input)."""
    from softlog_numerics.strategies import floats

    k = data.draw(st.integers(1, 6))
    elem = floats(dtype, -0.1565, 4.0)
    p = np.array([data.draw(elem) for _ in range(k)], dtype=format_of(dtype).dtype)
    q = np.array([data.draw(elem) for _ in range(k)], dtype=format_of(dtype).dtype)
    got = _call(name, p, q, validate=False)
    want = _call_oracle(name, p, q, validate=False)
    _check_accuracy(name, p, q, got, want)


EXTREME = [0.0, -0.0, 1.0, 0.5, 0.2689414213699951, 0.26894142136999516, 5e-324, 2.2250738585072014e-308,
           1e-300, 1e-17, 3.0, 1e10, 1e300, 2.0**995, 1.7976931348623157e308, -0.1, -0.15651764274966565,
           -0.15651764274966568, 0.999999, 2.0**-1000]


@pytest.mark.parametrize("dtype", DTYPES)
def test_accuracy_extreme_magnitudes(dtype):
    """validate=False rows mixing zeros, subnormals, huge values, x0's neighbours and the float64
    neighbours of the branch point (overflow to inf and underflow to a signed zero included):
    equal to the oracle bit for bit here (ULP 0 and the sign of zeros)."""
    dt = format_of(dtype).dtype
    rng = np.random.default_rng(12)
    for _ in range(60):
        k = int(rng.integers(1, 5))
        with np.errstate(over="ignore"):
            p = np.array(rng.choice(EXTREME, k)).astype(dt)
            q = np.array(rng.choice(EXTREME, k)).astype(dt)
            if rng.random() < 0.3 and dtype == "float64":
                q = np.nextafter(p, 1.0)
        for name in NAMES:
            got = _call(name, p, q, validate=False)
            want = _call_oracle(name, p, q, validate=False)
            assert ulp_distance(got, want) <= 1 and np.signbit(got) == np.signbit(want), (name, p, q, got, want)


# ---------------------------------------------------------------------------------------------
# Theorem D7 and D1: exact properties and ranges of the float results.


@st.composite
def exact_simplex(draw, dtype, min_size=1, max_size=64):
    """Vectors of ``dtype`` whose entries sum to 1 exactly: counts ``n_k / 2**m`` with ``m`` at
    most the precision (so every entry is representable)."""
    fmt = format_of(dtype)
    k = draw(st.integers(min_size, max_size))
    m = draw(st.integers(0, fmt.precision))
    cuts = sorted(draw(st.lists(st.integers(0, 2**m), min_size=k - 1, max_size=k - 1)))
    counts = np.diff(np.array([0, *cuts, 2**m]))
    counts = draw(st.permutations(counts.tolist()))
    return (np.array(counts, dtype=np.float64) / 2**m).astype(fmt.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_sld_sym_zero_symmetric_and_in_unit_interval(dtype, data):
    p = data.draw(exact_simplex(dtype))
    q = data.draw(st.one_of(exact_simplex(dtype, p.size, p.size), st.just(p)))
    s = dv.sld_sym(p, q)
    assert 0.0 <= float(s) <= 1.0
    assert dv.sld_sym(q, p).tobytes() == s.tobytes()
    z = dv.sld_sym(p, p)
    assert float(z) == 0.0 and not np.signbit(z)
    assert float(dv.sld(p, q)) <= 1.0
    z = dv.sld(p, p)
    assert float(z) == 0.0 and not np.signbit(z)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_sld_sym_zero_for_equal_vectors_of_any_kind(dtype, data):
    p = data.draw(probability_vectors(dtype, 0, 64))
    for f in (dv.sld_sym, dv.sld):
        z = f(p, p.copy(), validate=p.size > 0)
        assert float(z) == 0.0 and not np.signbit(z)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_entropy_range(dtype, data):
    p = data.draw(exact_simplex(dtype))
    k = p.size
    h = dv.softlog_entropy(p)
    top = _top(k, dtype)
    assert -1.0 <= float(h)
    assert float(h) <= top + _ulp_of(top, format_of(dtype)) * (1 + 1e-9)


def _top(k, dtype) -> float:
    """``-L(1/K)`` rounded once to ``dtype``."""
    with mpmath.workprec(200):
        v = -mpmath.log((mpmath.e - 1 / mpmath.e) / k + 1 / mpmath.e)
        return float(oracle.round_to(v, dtype))


def test_sld_two_class_infimum():
    """Theorem D2: for K = 2, min sld = -0.0164911 at p = (0.916027, 0.083973), q = (1, 0); a grid
    of 2001 x 101 float64 pairs never goes below it, and the minimiser's value is reproduced."""
    a = np.linspace(0, 1, 2001)
    b = np.linspace(0, 1, 101)
    A_, B_ = np.meshgrid(a, b, indexing="ij")
    p = np.stack([A_.ravel(), 1 - A_.ravel()], axis=1)
    q = np.stack([B_.ravel(), 1 - B_.ravel()], axis=1)
    s = dv.sld(p, q)
    i = int(np.argmin(s))
    assert s[i] >= -0.0164911 - 1e-7 and abs(A_.ravel()[i] - 0.916) < 1e-3 and B_.ravel()[i] == 1.0
    best = dv.sld(np.array([0.916026583593, 1 - 0.916026583593]), np.array([1.0, 0.0]))
    assert abs(float(best) - (-0.016491086958)) < 1e-11


def _exact_pairs(dtype):
    """All ``a`` in [0, 1] of ``dtype`` with ``1 - a`` representable (so ``(a, 1 - a)`` sums to 1)."""
    fmt = format_of(dtype)
    bits = np.arange(2 ** (fmt.bits), dtype=np.uint32).astype(fmt.uint)
    with np.errstate(invalid="ignore"):
        v = bits.view(fmt.dtype).astype(np.float64)
    v = np.unique(np.abs(v[(v >= 0) & (v <= 1)]))
    c = 1.0 - v
    back = round_from_float64(c, fmt).astype(np.float64)
    return v[(back == c) & (1.0 - c == v)]  # 1 - v exact in float64, then representable in fmt


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_sld_sym_unit_interval_exhaustive_two_classes(dtype):
    """Every ``p = (a, 1 - a)`` of the format (``1 - a`` exact) against a grid of 96 ``q``
    (bfloat16: against every such ``q``): ``0 <= sld_sym <= 1``, ``= 0`` iff ``p == q``,
    ``= 1`` iff ``{p, q} = {(1, 0), (0, 1)}``; ``sld <= 1``; entropy in ``[-1, fl(-L(1/2)) + ulp]``."""
    fmt = format_of(dtype)
    a = _exact_pairs(dtype)
    if dtype == "bfloat16":
        b = a
    else:
        idx = np.unique(np.linspace(0, a.size - 1, 90).astype(int))
        b = np.unique(np.concatenate([a[idx], [0.0, 1.0, 0.5, a[1], a[-2]]]))
    A_, B_ = np.meshgrid(a, b, indexing="ij")
    p = np.stack([A_.ravel(), 1 - A_.ravel()], axis=1).astype(fmt.dtype)
    q = np.stack([B_.ravel(), 1 - B_.ravel()], axis=1).astype(fmt.dtype)
    s = dv.sld_sym(p, q).astype(np.float64)
    assert s.min() >= 0.0 and s.max() <= 1.0
    same = A_.ravel() == B_.ravel()
    assert (s[same] == 0).all() and not np.signbit(s[same]).any()
    assert (s[~same] > 0).all()
    ones = s == 1.0
    disjoint = ((A_.ravel() == 1) & (B_.ravel() == 0)) | ((A_.ravel() == 0) & (B_.ravel() == 1))
    assert np.array_equal(ones, disjoint)
    assert dv.sld(p, q).astype(np.float64).max() <= 1.0
    h = dv.softlog_entropy(np.stack([a, 1 - a], axis=1).astype(fmt.dtype)).astype(np.float64)
    top = _top(2, dtype)
    assert h.min() >= -1.0 and h.max() <= top + _ulp_of(top, fmt)


@pytest.mark.slow
def test_sld_sym_unit_interval_exhaustive_float16_all_pairs():
    """Theorem D7 over every pair of float16 two-class distributions with exact sums (about 4.2e6)."""
    a = _exact_pairs("float16")
    for chunk in np.array_split(a, 16):
        A_, B_ = np.meshgrid(chunk, a, indexing="ij")
        p = np.stack([A_.ravel(), 1 - A_.ravel()], axis=1).astype(np.float16)
        q = np.stack([B_.ravel(), 1 - B_.ravel()], axis=1).astype(np.float16)
        s = dv.sld_sym(p, q).astype(np.float64)
        assert s.min() >= 0.0 and s.max() <= 1.0
        assert np.array_equal(s == 0, A_.ravel() == B_.ravel())


def test_sld_sym_above_one_only_with_excess_mass():
    """Sums above 1 (allowed by validation's tolerance) can lift the exact value above 1: the
    result then follows the oracle (no clipping); Theorem D7 bounds the excess."""
    p = np.array([1.0, 3e-4, 0.0], dtype=np.float32)
    q = np.array([0.0, 0.0, 1.0], dtype=np.float32)
    got, want = dv.sld_sym(p, q), oracle.sld_sym(p, q)
    assert float(want) > 1.0 and ulp_distance(got, want) <= 1
    tol = 2.0**-11.5
    excess = 2 * 0.25 * tol * math.log1p((math.e**2 - 1) * tol)
    assert float(got) <= 1.0 + excess + 2.0**-23


# ---------------------------------------------------------------------------------------------
# Special values, shapes, validation, promotion.

NAN = float("nan")
SPECIAL = [
    # (function, p, q, expected float64 value: compared bit for bit after rounding to the dtype)
    ("softlog_entropy", [], None, 0.0),
    ("softlog_entropy", [1.0], None, -1.0),
    ("softlog_entropy", [0.0, 1.0], None, -1.0),
    ("softlog_entropy", [-0.0, 1.0], None, -1.0),
    ("softlog_entropy", [NAN, 1.0], None, NAN),
    ("softlog_entropy", [np.inf, 0.0], None, NAN),
    ("softlog_entropy", [-0.2, 1.2], None, NAN),
    ("softlog_cross_entropy", [0.5, 0.5], [0.0, 1.0], 0.0),
    ("softlog_cross_entropy", [1.0, 0.0], [1.0, 0.0], -1.0),
    ("softlog_cross_entropy", [1.0, 0.0], [0.0, 1.0], 1.0),
    ("softlog_cross_entropy", [0.0, 1.0], [-0.2, 1.0], NAN),
    ("softlog_cross_entropy", [], [], 0.0),
    ("sld", [1.0, 0.0], [0.0, 1.0], 1.0),
    ("sld", [0.0, 1.0], [0.0, 1.0], 0.0),
    ("sld", [0.25, 0.75], [0.25, 0.75], 0.0),
    ("sld", [0.0, 1.0], [-0.2, 1.0], NAN),
    ("sld", [0.5, 0.5], [np.inf, 0.5], NAN),
    ("sld_sym", [1.0, 0.0], [0.0, 1.0], 1.0),
    ("sld_sym", [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], 1.0),
    ("sld_sym", [0.3, 0.7], [0.3, 0.7], 0.0),
    ("sld_sym", [0.5, 0.5], [NAN, 0.5], NAN),
    ("sld_sym", [], [], 0.0),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, p, q, expected", SPECIAL)
def test_special_values(name, p, q, expected, dtype):
    dt = format_of(dtype).dtype
    pa = np.array(p, dtype=np.float64).astype(dt)
    qa = None if q is None else np.array(q, dtype=np.float64).astype(dt)
    got = _call(name, pa, qa, validate=False)
    want = np.array(expected).astype(dt)
    assert got.dtype == dt and got.shape == ()
    assert ulp_distance(got, want) == 0 and np.signbit(got) == np.signbit(want)
    assert ulp_distance(got, _call_oracle(name, pa, qa, validate=False)) == 0


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_signed_zero_of_an_underflowing_result(dtype):
    """An inexact result below half the smallest subnormal keeps its sign, as the oracle's."""
    dt = format_of(dtype).dtype
    tiny = np.array([float(np.finfo(dt).smallest_subnormal)], dtype=dt)
    near_x0 = np.array([_c.X0[0]], dtype=np.float64).astype(dt)
    for name, p, q in [("softlog_cross_entropy", tiny, near_x0), ("sld", tiny, np.array([0.5], dtype=dt)),
                       ("softlog_entropy", tiny, None), ("sld_sym", tiny, np.array([0.0], dtype=dt))]:
        got = _call(name, p, q, validate=False)
        want = _call_oracle(name, p, q, validate=False)
        assert ulp_distance(got, want) == 0 and np.signbit(got) == np.signbit(want), (name, got, want)


@pytest.mark.parametrize("name", NAMES)
def test_axes_keepdims_and_empty_shapes(name):
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(4), size=(2, 3)).transpose(0, 2, 1).copy()  # sums along axis 1
    q = rng.dirichlet(np.ones(4), size=(2, 3)).transpose(0, 2, 1).copy()
    for axis, keepdims in [(1, False), (1, True), (-2, True)]:
        got = _call(name, p, q, axis=axis, keepdims=keepdims)
        want = _call_oracle(name, p, q, axis=axis, keepdims=keepdims)
        assert got.shape == want.shape and (ulp_distance(got, want) <= 1).all()
    r = rng.dirichlet(np.ones(6)).reshape(2, 3)
    s = rng.dirichlet(np.ones(6)).reshape(2, 3)
    for axis in [None, (0, 1)]:
        got = _call(name, r, s, axis=axis)
        assert got.shape == () and ulp_distance(got, _call_oracle(name, r, s, axis=axis)) <= 1
    for shape, out in [((0,), ()), ((3, 0), (3,)), ((0, 3), (0,))]:
        e = np.zeros(shape)
        got = _call(name, e, e, validate=False)
        assert got.shape == out and (got == 0).all() and not np.signbit(got).any()


def _message(f, *args, **kw):
    with pytest.raises(ValueError) as info:
        f(*args, **kw)
    return str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_validation_messages_match_the_oracle(name):
    good = np.array([[0.5, 0.5], [0.25, 0.75]])
    bad_entry = np.array([[0.5, 0.5], [1.25, -0.25]])
    bad_sum = np.array([[0.5, 0.5], [0.5, 0.25]])
    cases = [(bad_entry, good), (bad_sum, good), (good, np.array([[0.5, 0.5], [0.5, np.nan]]))]
    for p, q in cases:
        if name == "softlog_entropy" and p is good:
            continue
        msg = _message(lambda *a: _call(name, *a), p, q)
        assert msg == _message(lambda *a: _call_oracle(name, *a), p, q)
    assert "p[1, 0]" in _message(lambda *a: _call(name, *a), bad_entry, good)
    assert "index (1)" in _message(lambda *a: _call(name, *a), bad_sum, good)
    if name != "softlog_entropy":
        msg = _message(dv.__dict__[name], good, good[:, :1])
        assert "(2, 2)" in msg and "(2, 1)" in msg
        assert msg == _message(oracle.__dict__[name], good, good[:, :1])
    with pytest.raises(TypeError):
        _call(name, np.array([1 + 0j]), np.array([1.0]))


@pytest.mark.parametrize(
    "a, b, result",
    [
        ("float16", "bfloat16", "float32"),
        ("bfloat16", "float16", "float32"),
        ("float16", "float32", "float32"),
        ("bfloat16", "float32", "float32"),
        ("float16", "float64", "float64"),
        ("bfloat16", "float64", "float64"),
        ("float32", "float64", "float64"),
        ("int64", "float16", "float64"),
        ("bool", "float32", "float64"),
        ("float16", "float16", "float16"),
        ("bfloat16", "bfloat16", "bfloat16"),
    ],
)
def test_dtype_promotion(a, b, result):
    dta = BFLOAT16 if a == "bfloat16" else np.dtype(a)
    dtb = BFLOAT16 if b == "bfloat16" else np.dtype(b)
    p = np.array([0.0, 1.0]).astype(dta)
    q = np.array([0.25, 0.75]).astype(dtb)
    want_dt = format_of(result).dtype
    for name in NAMES[1:]:
        got = _call(name, p, q)
        assert got.dtype == want_dt
        assert ulp_distance(got, _call_oracle(name, p, q)) <= 1


def test_empty_distributions_and_masked_arrays():
    """Distributions over no class give +0 (the empty sum) in production and oracle; a masked array
    with masked entries raises TypeError naming the fix instead of using the data under the mask."""
    for mod in (sn, oracle):
        assert _same_bits(mod.sld(np.array([]), np.array([])), np.float64(0.0))
        assert _same_bits(mod.softlog_entropy(np.zeros((3, 0), np.float32)), np.zeros(3, np.float32))
        x = np.ma.array([1.0, 2.0, 1000.0], mask=[0, 0, 1])
        with pytest.raises(TypeError, match="masked"):
            mod.log_softmax(x)
        with pytest.raises(TypeError, match="masked"):
            mod.softlog_entropy(np.ma.array([0.5, 0.5], mask=[0, 1]), validate=False)
        assert _same_bits(mod.log_softmax(np.ma.array([1.0, 2.0])), mod.log_softmax(np.array([1.0, 2.0])))


def _same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ---------------------------------------------------------------------------------------------
# Theorem D12: correct rounding in float16, bfloat16 and float32.


def _narrow_divergence_cases(dtype):
    """``(p, q)`` 2-D pairs in ``dtype``: simplex rows of 2 to 1000 entries, ``q`` a few ULPs from
    ``p``, rows outside the simplex (``validate=False``), rows of exact terms (one-hot, ``q`` in
    {0, 1}) and rows whose terms cancel exactly or almost."""
    fmt = FORMATS[dtype]
    rng = np.random.default_rng(21)
    cases = []
    for k, rows in ((2, 60), (7, 60), (64, 20), (1000, 3)):
        p = round_from_float64(rng.dirichlet(np.full(k, 0.5), rows), fmt).astype(fmt.dtype)
        q = round_from_float64(rng.dirichlet(np.full(k, 0.5), rows), fmt).astype(fmt.dtype)
        near = from_ordinal(ordinal(p) + rng.integers(-3, 4, p.shape), fmt.dtype)
        cases += [(p, q), (p, np.abs(near))]
    wide = round_from_float64(rng.uniform(-0.15, 4.0, (60, 5)), fmt).astype(fmt.dtype)
    cases.append((wide, wide[::-1].copy()))
    onehot = np.eye(6)[rng.integers(0, 6, 20)]
    cases.append((round_from_float64(rng.dirichlet(np.ones(6), 20), fmt).astype(fmt.dtype), onehot.astype(fmt.dtype)))
    cases.append((onehot.astype(fmt.dtype), round_from_float64(rng.dirichlet(np.ones(6), 20), fmt).astype(fmt.dtype)))
    cancel = np.array([[0.5, -0.5, 0.25], [0.375, 0.375, -0.75], [0.5, 0.5, 0.0]])
    cases.append((cancel.astype(fmt.dtype), np.array([[0.3, 0.3, 0.0], [0.7, 0.7, 0.7], [0.5, 0.5, 0.0]]).astype(fmt.dtype)))
    with np.errstate(over="ignore"):
        ext = np.array(rng.choice(EXTREME, (40, 3))).astype(fmt.dtype)
    cases.append((ext, ext[rng.permutation(40)]))
    # a midpoint of fmt plus or minus far less than a float64 step: the float64 sum is the
    # midpoint, and a second rounding (ties to even) would go the wrong way (1 ULP); float16's
    # range is too narrow for this (2**-100 underflows to 0, the row is the midpoint itself)
    h = 2.0**-fmt.precision
    mid = np.array([[1.0, h, 2.0**-100], [1.0, 3 * h, -(2.0**-100)], [1.0, h, 2.0**-100], [1.0, h, 2.0**-90]])
    cases.append((mid.astype(fmt.dtype), np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.1], [1.0, 1.0, 0.1]]).astype(fmt.dtype)))
    return cases


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("stage", [1, 2, 3])
def test_narrow_divergences_are_correctly_rounded(dtype, stage, monkeypatch):
    """Bit for bit the oracle (sign of zero included; Theorem D12), ``validate=False``. ``stage`` >
    1 leaves every row of the first stage undecided (2: the double-double sums decide), 3 every
    row of the double-double stage too (the decimal stage decides)."""
    if stage > 1:
        fast = dv.fast_rows

        def undecided(*a, **k):
            out = fast(*a, **k)
            return (np.zeros_like(out[0]), *out[1:])

        monkeypatch.setattr(dv, "fast_rows", undecided)
    if stage > 2:
        monkeypatch.setattr(dv, "decided_dd", lambda yh, yl, err, fmt: (yh, np.zeros(np.shape(yh), dtype=bool)))
    for p, q in _narrow_divergence_cases(dtype):
        for name in NAMES:
            got = _call(name, p, q, validate=False)
            want = _call_oracle(name, p, q, validate=False)
            assert got.dtype == want.dtype
            g, w = got.astype(np.float64), want.astype(np.float64)
            same = ((g == w) & (np.signbit(g) == np.signbit(w))) | (np.isnan(g) & np.isnan(w))
            assert same.all(), (name, p[~same][:2], q[~same][:2], g[~same][:2], w[~same][:2])
