"""Formats, input checks and single rounding from float64 (softlog_numerics/_core/formats.py).

``round_from_float64`` is checked against two references that share no code with it: the
oracle's integer rounding ``round_rational`` (proofs/oracle.md, Theorem O1), and a vectorised
search ``search_round`` that brackets each value between consecutive numbers of the format with
``numpy.nextafter`` and compares with the midpoint (exact in float64 for the three narrow
formats, whose midpoints have at most 25 significant bits). The bfloat16 path (round to odd in
float32, then to nearest even) is Theorem O3.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from softlog_numerics._core.formats import (
    BFLOAT16,
    FORMATS,
    Format,
    as_float_array,
    format_of,
    result_format,
    round_from_float64,
)
from softlog_numerics.oracle import round_rational

NARROW = ["float16", "bfloat16", "float32"]
DTYPES = list(FORMATS)


def _nextafter(x, up: bool):
    with np.errstate(over="ignore"):
        return np.nextafter(x, np.asarray(np.inf if up else -np.inf, x.dtype))


def search_round(x64, dtype) -> np.ndarray:
    """Round float64 values to a narrow format by bracketing: a <= |x| < b = nextafter(a, inf),
    then the midpoint decides (ties: the neighbour whose bit pattern is even); past the largest
    finite number the midpoint is max + (max - nextafter(max, 0))/2. The cast ``|x| -> dtype``
    only supplies a starting point, which is then walked to the bracket."""
    fmt = format_of(dtype)
    dt = fmt.dtype
    x = np.asarray(x64, dtype=np.float64)
    mag = np.abs(x)
    finite = np.isfinite(mag)
    biggest = _nextafter(np.asarray(np.inf, dt), up=False)
    with np.errstate(over="ignore", invalid="ignore"):
        a = np.where(finite, mag, 0.0).astype(dt)
    a = np.where(np.isinf(a), biggest, a)
    while True:  # walk down while a > |x|
        over = a.astype(np.float64) > np.where(finite, mag, 0.0)
        if not over.any():
            break
        a = np.where(over, _nextafter(a, up=False), a)
    while True:  # walk up while nextafter(a) <= |x|
        b = _nextafter(a, up=True)
        under = np.isfinite(b) & (b.astype(np.float64) <= np.where(finite, mag, 0.0))
        if not under.any():
            break
        a = np.where(under, b, a)
    b = _nextafter(a, up=True)
    fa = a.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        fb = b.astype(np.float64)
        mid = np.where(np.isfinite(fb), (fa + fb) / 2, fa + (fa - _nextafter(a, up=False).astype(np.float64)) / 2)
    even_a = (a.view(fmt.uint) & 1) == 0
    r = np.where(mag < mid, a, np.where(mag > mid, b, np.where(even_a, a, b)))
    r = np.where(mag == fa, a, r)
    r = np.where(np.isinf(mag), np.asarray(np.inf, dt), r)
    r = np.where(np.signbit(x), -r, r)
    return np.where(np.isnan(x), np.asarray(np.nan, dt), r).astype(dt)


def identical(a, b) -> bool:
    """Same dtype, shape and bit patterns (every NaN counted equal)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    fmt = format_of(a.dtype)
    nan = np.isnan(a.astype(np.float64)) & np.isnan(b.astype(np.float64))
    return bool(np.all((a.view(fmt.uint) == b.view(fmt.uint)) | nan))


def by_round_rational(x64, dtype) -> np.ndarray:
    """Elementwise round_rational (Theorem O1) of float64 values, for the specials by hand."""
    fmt = format_of(dtype)
    out = []
    for v in np.asarray(x64, dtype=np.float64).ravel().tolist():
        if not math.isfinite(v):
            out.append(v)
        else:
            n, d = v.as_integer_ratio()
            r = round_rational(n, d, fmt)
            out.append(math.copysign(r, v) if r == 0.0 else r)
    return np.array(out, dtype=np.float64).reshape(np.shape(x64)).astype(fmt.dtype)


def all_finite(dtype) -> np.ndarray:
    """Every finite value of a 16-bit format, both signs."""
    fmt = format_of(dtype)
    v = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(fmt.dtype)
    with np.errstate(invalid="ignore"):  # ml_dtypes warns when casting its NaN patterns
        return v[np.isfinite(v.astype(np.float64))]


def around_midpoints(values: np.ndarray) -> np.ndarray:
    """For each value a (positive finite): a, the midpoint to nextafter(a, inf) (max + half ulp for
    the largest), and each of these ± one float64 ulp; then the negatives."""
    a = values[values.astype(np.float64) > 0]
    b = _nextafter(a, up=True).astype(np.float64)
    fa = a.astype(np.float64)
    prev = _nextafter(a, up=False).astype(np.float64)
    mid = np.where(np.isfinite(b), (fa + b) / 2, fa + (fa - prev) / 2)
    pts = [fa, mid]
    pts += [np.nextafter(p, np.inf) for p in (fa, mid)] + [np.nextafter(p, -np.inf) for p in (fa, mid)]
    x = np.concatenate(pts)
    return np.concatenate([x, -x, [0.0, -0.0]])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_round_from_float64_exhaustive_around_every_midpoint(dtype):
    """Theorem O3 (bfloat16, and float16 below the smallest normal) and NumPy's float64 -> float16 cast: around every midpoint of the
    format (the midpoint, ± 1 float64 ulp, and each number ± 1 float64 ulp, both signs, the
    overflow threshold included), round_from_float64 == search_round == round_rational."""
    x = around_midpoints(all_finite(dtype))
    got = round_from_float64(x, dtype)
    assert got.dtype == format_of(dtype).dtype
    assert identical(got, search_round(x, dtype))
    assert identical(got, by_round_rational(x, dtype))


@pytest.mark.parametrize("dtype", NARROW)
def test_round_from_float64_sampled_binades(dtype):
    """float32 (and the 16-bit formats again) on 3000 random numbers of the format spread over
    all binades including subnormals, around their midpoints; against both references."""
    fmt = format_of(dtype)
    rng = np.random.default_rng(3)
    top = int(np.asarray(fmt.max, np.float64).astype(fmt.dtype).view(fmt.uint))
    pats = rng.integers(1, top + 1, 3000).astype(fmt.uint)
    x = around_midpoints(pats.view(fmt.dtype))
    got = round_from_float64(x, dtype)
    assert identical(got, search_round(x, dtype))
    assert identical(got, by_round_rational(x, dtype))


@pytest.mark.parametrize("dtype", NARROW)
@given(data=st.data())
def test_round_from_float64_random_doubles(dtype, data):
    """Arbitrary float64 input (all binades, subnormals, ±inf, NaN): == round_rational."""
    v = data.draw(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True))
    x = np.array([v])
    assert identical(round_from_float64(x, dtype), by_round_rational(x, dtype))


@pytest.mark.parametrize(
    ("dtype", "x", "want"),
    [
        ("bfloat16", 1 + 2.0**-8 + 2.0**-40, 1.0078125),  # ml_dtypes' own cast gives 1.0
        ("bfloat16", 1 + 2.0**-8, 1.0),  # a tie: even
        ("bfloat16", 1 + 3 * 2.0**-8, 1.015625),  # a tie: even upward
        ("float16", 1 + 2.0**-11 + 2.0**-40, 1 + 2.0**-10),
        ("float32", 1 + 2.0**-24 + 2.0**-50, 1 + 2.0**-23),
    ],
)
def test_double_rounding_witnesses(dtype, x, want):
    """Inputs that a rounding through float32 (or any wider intermediate) gets wrong."""
    assert identical(round_from_float64(np.float64(x), dtype), np.asarray(want).astype(format_of(dtype).dtype))


@pytest.mark.parametrize("dtype", NARROW)
def test_round_from_float64_special_values(dtype):
    """NaN, ±inf, ±0 (sign kept), float64 subnormals (to ±0), half the smallest subnormal (tie to
    +0), just above it (smallest subnormal), 3/2 of it (tie to 2 units), the largest subnormal,
    max, max + half ulp (inf), just below (max), and overflow of both signs."""
    fmt = format_of(dtype)
    s, mx = fmt.min_subnormal, fmt.max
    half_ulp = 2.0 ** (fmt.emax - fmt.precision)
    table = [
        (np.nan, np.nan), (np.inf, np.inf), (-np.inf, -np.inf), (0.0, 0.0), (-0.0, -0.0),
        (5e-324, 0.0), (-5e-324, -0.0), (s / 2, 0.0), (-s / 2, -0.0), (s / 2 * (1 + 2.0**-40), s),
        (1.5 * s, 2 * s), (fmt.tiny - s, fmt.tiny - s), (fmt.tiny - s / 2, fmt.tiny), (mx, mx),
        (mx + half_ulp, np.inf), (-(mx + half_ulp), -np.inf), (mx + half_ulp * (1 - 2.0**-20), mx),
        (1e300, np.inf), (-1e300, -np.inf),
    ]
    x = np.array([t[0] for t in table])
    want = np.array([t[1] for t in table]).astype(fmt.dtype)
    got = round_from_float64(x, dtype)
    assert identical(got, want), [(a, g, w) for a, g, w in zip(x, got, want) if not identical(g, w)]
    assert identical(got, search_round(x, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_from_float64_signalling_nan(dtype):
    """A signalling float64 NaN gives NaN without a warning (warnings are errors here)."""
    x = np.array([0x7FF0000000000001, 0xFFF0000000000001], dtype=np.uint64).view(np.float64)
    assert np.isnan(round_from_float64(x, dtype)).all()


def test_round_from_float64_shapes_and_float64():
    """0-d stays 0-d, lists are accepted, float64 is returned unchanged."""
    assert round_from_float64(np.float64(0.1), "bfloat16").shape == ()
    assert round_from_float64([[0.1, 0.2]], "float16").shape == (1, 2)
    x = np.array([0.1, -0.0, np.nan])
    assert identical(round_from_float64(x, "float64"), x)


# ---------------------------------------------------------------------------------------------
# Formats


def _finfo(fmt: Format):
    return ml_dtypes.finfo(fmt.dtype) if fmt.dtype == BFLOAT16 else np.finfo(fmt.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_format_constants_match_finfo(dtype):
    """p, emin, emax, eps, u, tiny, max, smallest subnormal and the width agree with NumPy's /
    ml_dtypes' finfo."""
    fmt = FORMATS[dtype]
    fi = _finfo(fmt)
    assert fmt.precision == fi.nmant + 1
    assert fmt.emin == fi.minexp and fmt.emax == fi.maxexp - 1
    assert fmt.eps == float(fi.eps) and fmt.unit_roundoff == float(fi.eps) / 2
    assert fmt.tiny == float(fi.smallest_normal)
    assert fmt.max == float(fi.max)
    assert fmt.min_subnormal == float(fi.smallest_subnormal)
    assert fmt.bits == fi.bits and fmt.uint.itemsize == fmt.dtype.itemsize
    assert format_of(dtype) is fmt and format_of(fmt.dtype) is fmt and format_of(fmt) is fmt
    assert format_of(np.zeros(2, fmt.dtype)) is fmt and format_of(fmt.dtype.type(1)) is fmt


@pytest.mark.parametrize("bad", ["float128", "half", "int32", np.int32, np.complex64, np.longdouble])
def test_format_of_rejects_other_types(bad):
    with pytest.raises(TypeError, match="unsupported"):
        format_of(bad)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (np.array([1 + 2j]), "complex128"),
        (np.array([1.0], dtype=np.complex64), "complex64"),
        (np.array([1.0], dtype=object), "object"),
        (np.array(["a"]), "<U1"),
        (np.array([b"a"]), "bytes8"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "datetime64[D]"),
        (np.array([1], dtype="timedelta64[s]"), "timedelta64[s]"),
        (np.zeros(1, dtype=[("a", "f8")]), "void"),
        (np.zeros(2, dtype=np.longdouble), np.dtype(np.longdouble).name),
        (np.zeros(2, dtype=ml_dtypes.float8_e4m3fn), "float8_e4m3fn"),
    ],
)
def test_as_float_array_rejects_with_the_dtype_named(value, name):
    """TypeError naming the argument and the dtype (complex: suggests .real)."""
    with pytest.raises(TypeError) as err:
        as_float_array(value, "logits")
    msg = str(err.value)
    assert "logits" in msg
    assert np.dtype(value.dtype).name in msg or name in msg
    if value.dtype.kind == "c":
        assert "real" in msg


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint16, np.uint64, np.bool_])
def test_as_float_array_integers_become_float64(dtype):
    x = np.array([0, 1], dtype=dtype)
    y = as_float_array(x)
    assert y.dtype == np.float64 and y.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_as_float_array_keeps_the_four_formats(dtype):
    x = np.array([0.5, -0.0], dtype=FORMATS[dtype].dtype)
    assert as_float_array(x) is x
    assert as_float_array([0.5, 1]).dtype == np.float64 and as_float_array(3.0).shape == ()


RESULT = {
    ("float16", "float16"): "float16",
    ("bfloat16", "bfloat16"): "bfloat16",
    ("float32", "float32"): "float32",
    ("float64", "float64"): "float64",
    ("float16", "bfloat16"): "float32",
    ("float16", "float32"): "float32",
    ("bfloat16", "float32"): "float32",
    ("float16", "float64"): "float64",
    ("bfloat16", "float64"): "float64",
    ("float32", "float64"): "float64",
}


@pytest.mark.parametrize(("pair", "want"), list(RESULT.items()))
def test_result_format_table(pair, want):
    """NumPy's promotion for the pairs it defines; float16 with bfloat16 gives float32, the
    narrowest format holding both exactly; the table is symmetric."""
    a, b = (np.zeros(1, FORMATS[n].dtype) for n in pair)
    assert result_format(a, b).name == want and result_format(b, a).name == want
    if BFLOAT16 not in (a.dtype, b.dtype):
        assert np.result_type(a, b) == FORMATS[want].dtype
    for n in pair:  # the result holds both inputs exactly
        assert FORMATS[want].precision >= FORMATS[n].precision and FORMATS[want].emax >= FORMATS[n].emax


def test_result_format_three_arrays():
    f16, bf16, f64 = (np.zeros(1, FORMATS[n].dtype) for n in ("float16", "bfloat16", "float64"))
    assert result_format(f16, bf16, f16).name == "float32"
    assert result_format(f16, bf16, f64).name == "float64"
    assert result_format(bf16).name == "bfloat16"
