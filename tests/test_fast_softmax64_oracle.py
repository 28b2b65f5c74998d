"""The certified float64 fast oracle for logsumexp, log_softmax and softmax (proofs/fast_oracle.md,
Theorem F9).

Bit-identity with the interval loop (``method="mpmath"``) on every logit family of ``strategies``,
on special rows and on random rows of every spread; offsets on float64 midpoints; the error bound
of the double-double estimate against mpmath; the decision test; and the fallback.
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
from softlog_numerics.oracle import fast_softmax64
from softlog_numerics.testing.strategies import LOGIT_FAMILIES, logit_vectors

NAMES = ("log_softmax", "softmax", "logsumexp")


def _assert_identical(name: str, x: np.ndarray, **kw) -> None:
    f = getattr(oracle, name)
    fast, slow = f(x, **kw), f(x, method="mpmath", **kw)
    assert fast.dtype == slow.dtype == np.float64 and fast.shape == slow.shape
    bad = np.flatnonzero(fast.view(np.uint64).ravel() != slow.view(np.uint64).ravel())
    assert bad.size == 0, f"{name}: fast {fast.ravel()[bad[:3]]} vs mpmath {slow.ravel()[bad[:3]]} for x = {x!r}"


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_identical_to_mpmath_on_every_family(name, data):
    family = data.draw(st.sampled_from([f for f in LOGIT_FAMILIES if f != "wide"]))
    n = data.draw(st.integers(1, 24))
    rows = [data.draw(logit_vectors("float64", n, n, families=[family])) for _ in range(data.draw(st.integers(1, 3)))]
    _assert_identical(name, np.stack(rows))


@pytest.mark.parametrize("name", NAMES)
def test_identical_on_special_rows(name):
    big, tiny, sub = 1.7976931348623157e308, 2.0**-1022, 2.0**-1074
    inf, nan = math.inf, math.nan
    x = np.array([
        [0.0, -0.0, 0.0], [2.0, -inf, 2.0], [2.0, -inf, -inf], [-inf, -inf, -inf], [nan, 0.0, 1.0],
        [inf, 0.0, 1.0], [big, -big, 0.0], [big, big, big], [1.616645611598377e308, 4.996016272442588e307, 0.0],
        [sub, -sub, 0.0], [tiny, sub, 0.0], [0.0, -1e4, -3e4], [50.0, 0.0, -inf], [0.0, -700.0, -740.0],
        [0.0, -745.5, -746.5], [1e300, 1e300 - 1e284, -1e300], [0.0, math.log(0.5), math.log(0.5)],
    ])
    with np.errstate(over="ignore"):
        _assert_identical(name, x)
        _assert_identical(name, x.T.copy(), axis=0)
        _assert_identical(name, x[:, :0])
        _assert_identical(name, x[:, :1])


@pytest.mark.parametrize("name", NAMES)
def test_identical_on_random_rows_of_every_spread(name):
    """Spreads from 0.01 to 1200 (past the subnormal range of softmax: those rows fall back)."""
    rng = np.random.default_rng(20261207)
    for scale in (0.01, 3.0, 40.0, 400.0):
        for n in (2, 7, 100):
            x = rng.standard_normal((6, n)) * scale
            x[rng.random(x.shape) < 0.1] = -np.inf
            _assert_identical(name, x)


def test_offsets_on_float64_midpoints():
    """Rows whose offsets ``x - m`` are float64 midpoints (``x`` and ``m`` in different binades)
    and whose ``l`` is tiny: decided by step 7, without the loop, and identical to it."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((50, 400)) * 200.0
    _, todo = fast_softmax64.softmax_rows64(x, True)
    assert todo.size == 0
    _assert_identical("log_softmax", x[:8])


def test_method_and_temperature():
    x = np.array([[1.0, 2.0, 4.0]])
    _assert_identical("log_softmax", x, temperature=0.3)  # the loop on both sides
    with pytest.raises(ValueError, match="method must be 'auto' or 'mpmath'"):
        oracle.logsumexp(x, method="fast")


@pytest.mark.parametrize("log", [True, False])
def test_estimate_error_bound(log):
    """``|exact - (h + t)| <= r`` against 250-bit mpmath, on long rows and wide spreads; and the
    bound is not vacuous (below ``2**-90 |h|`` plus the absolute allowance of the subnormal range)."""
    rng = np.random.default_rng(7)
    for x in (rng.standard_normal((2, 100)) * 30, rng.standard_normal((2, 3000)), rng.uniform(-700, 0, (2, 60))):
        h, t, r = fast_softmax64.softmax_estimate64(x, log)
        with mpmath.workprec(250):
            for i in range(x.shape[0]):
                row = [mpmath.mpf(v) for v in x[i]]
                m = max(row)
                lse = m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in row))
                for j in range(0, x.shape[1], max(1, x.shape[1] // 40)):
                    exact = row[j] - lse if log else mpmath.exp(row[j] - lse)
                    err = abs(mpmath.mpf(h[i, j]) + mpmath.mpf(t[i, j]) - exact)
                    assert err <= r[i, j], f"row {i} entry {j}: {float(err):.3e} > {r[i, j]:.3e}"
                    assert r[i, j] <= 2.0**-90 * abs(h[i, j]) + 2.0**-1060  # plus the subnormal allowance


def test_decided64():
    one = np.array([1.0])
    u = 2.0**-53
    assert fast_softmax64.decided64(one, np.array([u * 0.5]), np.array([1e-30]))[0]
    assert not fast_softmax64.decided64(one, np.array([u]), np.array([1e-30]))[0]  # the midpoint above 1
    assert not fast_softmax64.decided64(one, np.array([-u / 2]), np.array([1e-30]))[0]  # below 1 the spacing halves
    assert fast_softmax64.decided64(one, np.array([-u / 4]), np.array([1e-40]))[0]
    assert not fast_softmax64.decided64(np.array([2.0**-1030]), np.array([0.0]), np.array([0.0]))[0]  # subnormal
    assert not fast_softmax64.decided64(np.array([np.inf]), np.array([0.0]), np.array([0.0]))[0]


def test_fallback_rows_are_the_mpmath_ones(monkeypatch):
    """With H_dd made 2**-50 (so that many roundings are undecided) the undecided rows go to the loop."""
    monkeypatch.setattr(fast_softmax64, "DD_KERNEL_ERROR", 2.0**-50)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((30, 5)) * 4
    assert fast_softmax64.softmax_rows64(x, True)[1].size > 0
    for name in NAMES:
        _assert_identical(name, x)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_million_random_entries_identical(name):
    """10**6 float64 entries per function (rows of 2 to 64, scales 1e-3 to 1e3, masked entries,
    ties of the maximum), fast path against the interval loop."""
    rng = np.random.default_rng(zlib.crc32(f"f64 {name}".encode()))
    total = 0
    while total < 10**6:
        n = int(rng.integers(2, 65))
        scale = float(np.exp(rng.uniform(np.log(1e-3), np.log(1e3))))
        x = rng.standard_normal((max(1, 4096 // n), n)) * scale
        x[rng.random(x.shape) < 0.05] = -np.inf
        if rng.random() < 0.2:
            x[:, 1] = x[:, 0]
        _assert_identical(name, x)
        total += x.size
