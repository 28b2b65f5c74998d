"""The certified fast oracle for logsumexp, log_softmax and softmax (proofs/fast_oracle.md, Theorem F6).

Bit-identity with the interval loop (``method="mpmath"``) on every logit family of ``strategies``,
on a table of special rows and on random rows; the error bound of the float64 estimate against
mpmath; the decision test itself; and the fallback, exercised by a bound made artificially loose.
"""

from __future__ import annotations

import math
import zlib

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics.oracle import fast_softmax
from softlog_numerics.testing.strategies import LOGIT_FAMILIES, logit_vectors

NARROW = ("float16", "bfloat16", "float32")
NAMES = ("log_softmax", "softmax", "logsumexp")


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(format_of(a.dtype).uint)


def _assert_identical(name: str, x: np.ndarray, **kw) -> None:
    f = getattr(oracle, name)
    fast, slow = f(x, **kw), f(x, method="mpmath", **kw)
    assert fast.dtype == slow.dtype and fast.shape == slow.shape
    bad = np.flatnonzero(_bits(fast).ravel() != _bits(slow).ravel())
    assert bad.size == 0, f"{name} {x.dtype}: fast {fast.ravel()[bad[:3]]} vs mpmath {slow.ravel()[bad[:3]]} for x = {x!r}"


@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_identical_to_mpmath_on_every_family(dtype, name, data):
    """Rows of 1-3 logit vectors of one family: the fast path returns the interval loop's bits."""
    family = data.draw(st.sampled_from([f for f in LOGIT_FAMILIES if f != "wide"]))
    n = data.draw(st.integers(1, 24))
    rows = [data.draw(logit_vectors(dtype, n, n, families=[family])) for _ in range(data.draw(st.integers(1, 3)))]
    _assert_identical(name, np.stack(rows))


def _special_rows(dtype) -> np.ndarray:
    f = FORMATS[dtype]
    big, tiny, sub = f.max, f.tiny, f.min_subnormal
    inf, nan = math.inf, math.nan
    table = [
        [0.0, -0.0, 0.0],  # equal entries, signed zeros: 1/3, -log 3
        [1.0, 1.0, 1.0],
        [2.0, -inf, 2.0],  # equal finite entries with a masked one
        [2.0, -inf, -inf],  # one finite entry
        [-inf, -inf, -inf],
        [nan, 0.0, 1.0],
        [inf, 0.0, 1.0],
        [inf, -inf, 0.0],
        [big, -big, 0.0],  # x - max overflows the format; log_softmax -> -inf
        [big, big, big],  # logsumexp overflows
        [-big, -big, -big / 2],
        [sub, -sub, 0.0],  # d is tiny: softmax near 1/3
        [tiny, sub, 0.0],
        [0.0, -1e4, -3e4],  # outputs underflow: softmax 0, log_softmax -0 for the max
        [50.0, 0.0, -inf],
        [3.0, 2.5, -inf],
        [-0.5, -0.5, -inf],  # logsumexp near 0.19
        [0.0, math.log(0.5), math.log(0.5)],
    ]
    return np.array(table, dtype=np.float64).astype(f.dtype) if dtype != "bfloat16" else np.array(table).astype(f.dtype)


@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", NAMES)
def test_identical_on_special_rows(dtype, name):
    with np.errstate(over="ignore"):
        x = _special_rows(dtype)
    _assert_identical(name, x)
    _assert_identical(name, x.T.copy(), axis=0)  # along another axis
    _assert_identical(name, x[:, :0])  # empty rows
    _assert_identical(name, x[:, :1])  # one entry per row


@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", NAMES)
def test_identical_on_random_rows(dtype, name):
    """Two hundred random rows of mixed shapes and magnitudes (the figure of merit of the speed)."""
    rng = np.random.default_rng(20261207)
    fmt = FORMATS[dtype]
    for scale in (0.01, 3.0, 40.0):
        for n in (2, 7, 100):
            x = rng.standard_normal((8, n)) * scale
            x[rng.random(x.shape) < 0.1] = -np.inf
            _assert_identical(name, x.astype(fmt.dtype))


def test_temperature_and_method_are_honoured():
    x = np.array([[1.0, 2.0, 4.0]], dtype=np.float32)
    _assert_identical("log_softmax", x, temperature=0.3)  # the loop on both sides
    with pytest.raises(ValueError, match="method must be 'auto' or 'mpmath'"):
        oracle.softmax(x, method="fast")


# ---------------------------------------------------------------------------------------------
# Theorem F6: the bound and the decision


@pytest.mark.parametrize("log", [True, False])
def test_estimate_error_bound(log):
    """``|exact - v| <= r`` for the float64 estimate, against a 120-bit mpmath evaluation, on rows
    whose errors are largest: long rows (the tree sum), wide spreads (the rounding of ``x - m``),
    outputs near the subnormal range. The bound is also not vacuous: ``r`` stays below
    ``2**-40 |v|`` on rows of 100 entries (where |v| is far above the absolute allowance)."""
    rng = np.random.default_rng(7)
    rows = [
        rng.standard_normal((3, 100)) * 30,
        rng.uniform(-700, 0, (3, 100)),
        rng.standard_normal((3, 4000)),
        np.array([[0.0, 1e-30, -1e-30, 2.0**-126]]),
    ]
    worst = 0.0
    for x in rows:
        x = x.astype(np.float32).astype(np.float64)
        v, r = fast_softmax.softmax_estimate(x, log)
        with mpmath.workprec(120):
            for i in range(x.shape[0]):
                row = [mpmath.mpf(t) for t in x[i]]
                lse = mpmath.log(mpmath.fsum(mpmath.exp(t) for t in row))
                for j in range(0, x.shape[1], max(1, x.shape[1] // 50)):
                    exact = row[j] - lse if log else mpmath.exp(row[j] - lse)
                    err = abs(mpmath.mpf(v[i, j]) - exact)
                    assert err <= r[i, j], f"row {i} entry {j}: error {float(err):.3e} > bound {r[i, j]:.3e}"
                    if abs(v[i, j]) > 1e-250 and x.shape[1] == 100:
                        worst = max(worst, r[i, j] / abs(v[i, j]))
    assert worst < 2.0**-40


def test_decided_rounding():
    f32 = FORMATS["float32"]
    one = np.array([1.0])
    mid = 1.0 + 2.0**-24  # midpoint between 1 and its successor in float32
    vals, dec = fast_softmax.decided_rounding(np.array([mid, 1.0, 1.0]), np.array([1e-20, 1e-20, 2.0**-23]), f32)
    assert dec.tolist() == [False, True, False]
    assert vals[1] == 1.0
    # sign of an underflowing result: known negative gives -0, known positive +0
    v, d = fast_softmax.decided_rounding(np.array([0.0]), np.array([1e-300]), f32, sign=-1)
    assert d[0] and v[0] == 0 and math.copysign(1, v[0]) < 0
    v, d = fast_softmax.decided_rounding(np.array([0.0]), np.array([1e-300]), f32, sign=1)
    assert d[0] and math.copysign(1, v[0]) > 0
    v, d = fast_softmax.decided_rounding(np.array([0.0]), np.array([1e-300]), f32)
    assert not d[0]  # sign unknown: undecided
    v, d = fast_softmax.decided_rounding(np.array([4e38, np.nan]), np.array([1e30, 0.0]), f32)
    assert d.tolist() == [True, False] and v[0] == np.inf
    assert fast_softmax.decided_rounding(one, np.array([0.0]), f32)[1][0]


def test_sum_error_bound():
    u = 2.0**-53
    assert fast_softmax.sum_error_bound(2) == pytest.approx(u)
    assert fast_softmax.sum_error_bound(1000) == pytest.approx(10 * u)
    assert fast_softmax.sum_error_bound(1024) == pytest.approx(10 * u)


@pytest.mark.parametrize("dtype", NARROW)
def test_fallback_rows_are_the_mpmath_ones(dtype, monkeypatch):
    """With the libm bound made 2**-12 (so that many roundings are undecided), the undecided rows go
    to the interval loop and the result is still bit-identical."""
    monkeypatch.setattr(fast_softmax, "_W", 2.0**-12)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((40, 5)) * 4).astype(FORMATS[dtype].dtype)
    _, todo = fast_softmax.softmax_rows(x.astype(np.float64), FORMATS[dtype], True)
    assert todo.size > 0
    for name in NAMES:
        _assert_identical(name, x)


@pytest.mark.parametrize("dtype", NARROW)
def test_offsets_on_midpoints(dtype):
    """Two-class rows ``[h, x]`` with ``h`` half the spacing at ``x``: the offset ``x - h`` is exactly
    a rounding midpoint and ``log_softmax = x - h - log1p(exp(x - h))`` lies just below it (the case
    Theorem F6, step 5' settles without the loop). Also pairs drawn uniformly over bit patterns."""
    fmt = FORMATS[dtype]
    rng = np.random.default_rng(11)
    p = fmt.precision
    emax = int(np.log2(fmt.max))
    rows = []
    for _ in range(60):
        e = int(rng.integers(p + 1, emax))
        j = int(rng.integers(0, 2 ** (p - 1)))
        x = -(2.0**e + j * 2.0 ** (e - p + 1))
        rows.append([2.0 ** (e - p), x])
    pairs = np.array(rows).astype(fmt.dtype)
    assert np.array_equal(pairs.astype(np.float64), np.array(rows))  # the rows are exact
    x64 = pairs.astype(np.float64)
    _, todo = fast_softmax.softmax_rows(x64, fmt, True)
    assert todo.size == 0  # decided without the loop
    _assert_identical("log_softmax", pairs)
    bits = rng.integers(0, 2**fmt.bits, size=(300, 2), dtype=np.uint64).astype(fmt.uint)
    x = bits.view(fmt.dtype)
    with np.errstate(invalid="ignore"):  # signalling NaN patterns
        x = x[np.isfinite(x.astype(np.float64)).all(axis=1)]
    for name in NAMES:
        _assert_identical(name, x)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", NAMES)
def test_million_random_entries_identical(dtype, name):
    """10**6 entries per function and format (rows of 2 to 64 logits, magnitudes from 1e-3 to the
    format's range, masked entries, ties), fast path against the interval loop (about a minute each)."""
    fmt = FORMATS[dtype]
    rng = np.random.default_rng(zlib.crc32(f"{dtype} {name}".encode()))
    total = 0
    while total < 10**6:
        n = int(rng.integers(2, 65))
        scale = float(np.exp(rng.uniform(np.log(1e-3), np.log(min(fmt.max, 1e30)))))
        x = rng.standard_normal((max(1, 4096 // n), n)) * scale
        x[rng.random(x.shape) < 0.05] = -np.inf
        if rng.random() < 0.2:
            x[:, 1] = x[:, 0]  # ties of the maximum
        with np.errstate(over="ignore"):
            _assert_identical(name, x.astype(fmt.dtype))
        total += x.size


def test_undecided_rows_leave_no_stray_bits():
    """Rows the fast path leaves to the loop (here NaN and +inf rows, many of them) are filled by
    the loop; the fast path's placeholder for them is 0, never an uninitialised bit pattern (which
    could be a signalling NaN and raise "invalid value" when widened)."""
    values, todo = fast_softmax.logsumexp_rows(np.array([[np.nan, 1.0], [np.inf, 0.0]] * 500), FORMATS["float32"])
    assert todo.size == 1000 and not values.view(np.uint32).any()
    x = np.array([[np.nan, 1.0], [1.0, 2.0], [np.inf, 0.0]] * 300, dtype=np.float32)
    _assert_identical("logsumexp", x)
