"""The ULP metric every accuracy figure is stated in (softlog_numerics/testing/ulp.py; proofs/oracle.md,
Theorem O4): special cases tabulated, exhaustive successor checks in float16 and bfloat16,
metric properties on random draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics.strategies import floats
from softlog_numerics.ulp import bits_of_error, from_ordinal, ordinal, ulp_distance

DTYPES = list(FORMATS)


def _nextafter(x, up=True):
    with np.errstate(over="ignore"):
        return np.nextafter(x, np.asarray(np.inf if up else -np.inf, x.dtype))


def _all_values(dtype) -> np.ndarray:
    """Every bit pattern of a 16-bit format (NaNs included)."""
    fmt = format_of(dtype)
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(fmt.dtype)


def _finite(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return v[np.isfinite(v.astype(np.float64))]


def _inf_position(fmt) -> int:
    """ordinal(+inf): the count of finite non-negative numbers (every finite magnitude pattern)."""
    return ((1 << (fmt.bits - fmt.precision)) - 1) << (fmt.precision - 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ulp_distance_special_cases(dtype):
    """±0 are one point; NaN/NaN = 0; NaN/number = inf (also a signalling NaN); inf is one step
    past max; -inf to inf counts every number; across zero the positions add; the subnormals
    are consecutive with the normals."""
    fmt = format_of(dtype)
    dt = fmt.dtype
    s, t, mx = fmt.min_subnormal, fmt.tiny, fmt.max
    inf_pos = _inf_position(fmt)
    table = [
        (0.0, -0.0, 0),
        (np.nan, np.nan, 0),
        (np.nan, 1.0, math.inf),
        (1.0, np.nan, math.inf),
        (np.nan, np.inf, math.inf),
        (np.inf, np.inf, 0),
        (np.inf, mx, 1),
        (-np.inf, -mx, 1),
        (-np.inf, np.inf, 2 * inf_pos),
        (-mx, mx, 2 * inf_pos - 2),
        (s, -s, 2),
        (-0.0, s, 1),
        (0.0, -s, 1),
        (t, t - s, 1),
        (t, 0.0, 1 << (fmt.precision - 1)),
        (1.0, 1.0 + fmt.eps, 1),
        (1.0, 1.0 - fmt.eps / 2, 1),
        (2.0, 1.0, 1 << (fmt.precision - 1)),
        (-2.0, -1.0, 1 << (fmt.precision - 1)),
    ]
    a = np.array([r[0] for r in table]).astype(dt)
    b = np.array([r[1] for r in table]).astype(dt)
    want = np.array([float(r[2]) for r in table])
    got = ulp_distance(a, b)
    assert got.dtype == np.float64
    assert np.array_equal(got, want), [(r, g) for r, g in zip(table, got) if g != float(r[2])]
    assert np.array_equal(ulp_distance(b, a), want)
    snan = np.array(np.inf, dtype=np.float64).astype(dt).view(fmt.uint) + fmt.uint.type(1)
    snan = np.asarray(snan).view(dt)  # exponent all ones, lowest mantissa bit: a signalling NaN
    assert ulp_distance(snan, snan) == 0 and ulp_distance(snan, dt.type(1.0)) == math.inf


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_successor_is_one_ulp_exhaustive(dtype):
    """For every finite x: ordinal(nextafter(x, inf)) == ordinal(x) + 1 and the distance is 1
    (across zero and into +inf included); from_ordinal inverts ordinal (up to the sign of 0);
    the ordinals of the non-NaN patterns are exactly -inf_pos..inf_pos, each once apart from 0."""
    fmt = format_of(dtype)
    x = _finite(_all_values(dtype))
    y = _nextafter(x)
    assert np.array_equal(ordinal(y), ordinal(x) + 1)
    assert np.all(ulp_distance(x, y) == 1)
    back = from_ordinal(ordinal(x), fmt.dtype)
    assert np.array_equal(back.astype(np.float64), x.astype(np.float64))
    v = _all_values(dtype)
    with np.errstate(invalid="ignore"):
        v = v[~np.isnan(v.astype(np.float64))]
    o = np.sort(ordinal(v))
    inf_pos = _inf_position(fmt)
    assert o[0] == -inf_pos and o[-1] == inf_pos
    assert np.array_equal(np.unique(o), np.arange(-inf_pos, inf_pos + 1))
    assert len(o) == 2 * inf_pos + 2  # every position once, 0 twice (+0 and -0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_successor_is_one_ulp_sampled(dtype):
    """The same on 20000 random finite bit patterns and the edges of float32 and float64."""
    fmt = format_of(dtype)
    rng = np.random.default_rng(7)
    inf_pos = _inf_position(fmt)
    mags = rng.integers(0, inf_pos, 20000, dtype=np.int64)
    signs = rng.integers(0, 2, 20000).astype(fmt.uint) << fmt.uint.type(fmt.bits - 1)
    x = (mags.astype(fmt.uint) | signs).view(fmt.dtype)
    edges = np.array([0.0, -0.0, fmt.min_subnormal, -fmt.min_subnormal, fmt.tiny, -fmt.tiny, fmt.max, -fmt.max, 1.0, -1.0]).astype(fmt.dtype)
    x = np.concatenate([x, edges])
    y = _nextafter(x)
    assert np.array_equal(ordinal(y), ordinal(x) + 1)
    assert np.all(ulp_distance(x, y) == 1)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_ulp_distance_is_a_metric(dtype, data):
    """Theorem O4 on random non-NaN triples (infinities included): d >= 0, d(a, b) = d(b, a),
    d(a, b) == 0 iff a == b numerically (±0 equal), and the triangle inequality (exact below
    2**53, which covers every pair of the three narrow formats)."""
    f = floats(dtype, allow_infinity=True)
    a, b, c = (np.asarray(data.draw(f)) for _ in range(3))
    dab, dba = ulp_distance(a, b), ulp_distance(b, a)
    assert dab == dba and dab >= 0
    assert (dab == 0) == (float(a) == float(b))
    if max(dab, ulp_distance(b, c), ulp_distance(a, c)) < 2.0**53:
        assert ulp_distance(a, c) <= dab + ulp_distance(b, c)
    assert bits_of_error(a, a) == 0


def test_ulp_distance_shapes_and_errors():
    """Broadcasting, 0-d results, Python floats as float64, and TypeError for two formats."""
    a = np.array([[1.0], [2.0]], dtype=np.float32)
    b = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    assert ulp_distance(a, b).shape == (2, 3)
    assert ulp_distance(np.float16(1), np.float16(1)).shape == ()
    assert ulp_distance(1.0, np.nextafter(1.0, 2.0)) == 1
    assert bits_of_error(np.float32(1), np.nextafter(np.float32(1), np.float32(2))) == 1.0
    with pytest.raises(TypeError, match="one format"):
        ulp_distance(np.float32(1), np.float64(1))
    with pytest.raises(TypeError, match="one format"):
        ulp_distance(np.zeros(2, np.float16), np.zeros(2, FORMATS["bfloat16"].dtype))
    with pytest.raises(TypeError):
        ulp_distance(np.array([1j]), np.array([1j]))


def test_compare_classifies_every_mismatch():
    """compare: the one element-by-element measurement of got against want (audit, sweeps)."""
    from softlog_numerics.testing.ulp import compare

    want = np.array([1.0, np.nan, 2.0, np.inf, 0.0, 3.0, np.nan])
    got = np.array([np.nan, 1.0, np.inf, 5.0, -0.0, np.nextafter(3.0, 4.0), np.nan])
    c = compare(got, want)
    assert c.nan.tolist() == [True, False, False, False, False, False, False]
    assert c.number_where_nan.tolist() == [False, True, False, False, False, False, False]
    assert c.inf_where_finite.tolist() == [False, False, True, False, False, False, False]
    assert c.finite_where_inf.tolist() == [False, False, False, True, False, False, False]
    assert c.wrong_sign_zero.tolist() == [False, False, False, False, True, False, False]
    assert c.distance.tolist()[4:] == [0.0, 1.0, 0.0]
    assert c.incorrect.tolist() == [True, True, True, True, True, True, False]
