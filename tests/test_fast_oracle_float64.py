"""Tests of the certified float64 fast oracle (proofs/fast_oracle.md, Theorem F5).

The claim is bit-identity with the mpmath oracle (``oracle.softlog(x, method="mpmath")``) for every
float64 input. It rests on Theorem D3 (the double-double softlog within ``2**-64.8`` relative,
measured by tests/test_divergence.py::test_softlog_double_double_relative_error) and on the
decision rule of Theorem F5, checked here exactly with fractions.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from softlog_numerics import oracle
from softlog_numerics._core import constants as _constants
from softlog_numerics.oracle import fast as fast_oracle

DATA = Path(fast_oracle.__file__).parents[1] / "data" / "hard_cases" / "softlog.json"
XB_HI = _constants.XB[0]
X0_HI = _constants.X0[0]
TINY = 2.0**-1074


def _assert_identical(x, got, want):
    """Same bits (NaN against NaN counts as equal; the results are never zero)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype == np.float64
    same = (got.view(np.int64) == want.view(np.int64)) | (np.isnan(got) & np.isnan(want))
    bad = np.flatnonzero(~same)
    assert bad.size == 0, [(float(x.flat[i]).hex(), float(got.flat[i]), float(want.flat[i])) for i in bad[:5]]


def _neighbours(c: float, k: int) -> np.ndarray:
    """``c`` and the ``k`` consecutive float64 values on each side of it."""
    i = int(np.array([c]).view(np.int64)[0])
    return np.arange(i - k, i + k + 1, dtype=np.int64).view(np.float64)


def _inputs(rng, n: int) -> np.ndarray:
    """Float64 inputs over the whole domain: every binade (subnormals to 1.8e308) on both sides of
    zero where the domain allows, uniform on [x_b, 1.2], and neighbourhoods of x0, x_b, 0 and 1."""
    m = n // 8
    parts = [
        rng.integers(0, 0x7FF0000000000000, m, dtype=np.int64).view(np.float64),  # bit patterns > 0
        np.exp2(rng.uniform(-1074, 1024, m)),  # log-uniform magnitudes, subnormals included
        -np.exp2(rng.uniform(-1074, np.log2(-XB_HI), m)),  # negative, down to the branch point
        rng.uniform(XB_HI, 1.2, m),
        XB_HI + np.exp2(rng.uniform(-57, -3, m)),  # next to the branch point
        X0_HI + np.exp2(rng.uniform(-56, -9, m)) * rng.choice([-1.0, 1.0], m),  # next to x0
        1.0 + np.exp2(rng.uniform(-53, -5, m)) * rng.choice([-1.0, 1.0], m),  # next to 1
        rng.integers(0, 1 << 20, m, dtype=np.int64).view(np.float64) * rng.choice([-1.0, 1.0], m),
    ]
    special = np.concatenate([
        _neighbours(X0_HI, 64), _neighbours(XB_HI, 64), _neighbours(1.0, 16),
        [TINY, -TINY, 2.0**-1022, -(2.0**-1022), 1.7976931348623157e308, 2.0**990, 2.0**1000,
         np.nextafter(2.0**990, 0.0), 0.5, 2.0, 1e-300, -1e-300, -0.1, -0.0989, -0.15],
    ])
    x = np.concatenate(parts + [special])
    return x[x >= XB_HI]


def test_random_float64_identical():
    """Bit-identity with the mpmath path on 64,000 inputs over every magnitude of the domain."""
    rng = np.random.default_rng(2026)
    x = _inputs(rng, 64_000)
    assert x.size > 63_000
    _assert_identical(x, fast_oracle.softlog(x), oracle.softlog(x, method="mpmath"))
    _assert_identical(x, oracle.softlog(x), oracle.softlog(x, method="mpmath"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2))
def test_random_float64_identical_millions(seed):
    """10**7 inputs: the undecided ones are the mpmath oracle's by construction; 200,000 decided
    ones (a sample) are compared with the mpmath path, and the undecided fraction stays below the
    Theorem F5 estimate of 1.5 * 2**-11."""
    rng = np.random.default_rng(100 + seed)
    x = _inputs(rng, 10_000_000)
    r = fast_oracle.softlog_certified64(x)
    assert r.fallback.size < 1.5 * 2.0**-11 * x.size
    sample = np.concatenate([rng.choice(x.size, 200_000, replace=False), r.fallback])
    _assert_identical(x[sample], r.values[sample], oracle.softlog(x[sample], method="mpmath"))


def test_special_values():
    """±0 -> -1, 1 -> 1, +inf -> +inf, NaN/-inf/below the branch point -> NaN, the branch point's
    float64 neighbours, subnormals and the extremes: the mpmath oracle's bits."""
    below = np.nextafter(XB_HI, -1.0)
    x = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, XB_HI, below, -0.16, -1e300,
                  TINY, -TINY, 2.0**-1022, 1.7976931348623157e308, -1.7976931348623157e308])
    got = fast_oracle.softlog(x)
    _assert_identical(x, got, oracle.softlog(x, method="mpmath"))
    assert got[0] == got[1] == -1.0 and got[2] == 1.0 and got[4] == np.inf
    assert np.isnan(got[[3, 5, 6, 8, 9, 10, 15]]).all() and np.isfinite(got[7])
    r = fast_oracle.softlog_certified64(x)
    assert r.fallback.size == 0  # settled, never sent to mpmath


def _decided_exactly(h: float, l: float) -> bool:
    """Theorem F5's condition in exact rational arithmetic: both float64 midpoints around h (the
    one below |h| a quarter ULP away when |h| is a power of two) farther than 0.5859375 * 2**-64 |h|
    from h + l."""
    m, e = np.frexp(h)
    g = Fraction(2) ** int(e - 53)
    a = abs(Fraction(h))
    v = a + abs(Fraction(l)) if (h > 0) == (l > 0) or l == 0 else a - abs(Fraction(l))  # |h + l|
    up = a + g / 2
    down = a - (g / 4 if abs(m) == 0.5 else g / 2)
    guard = Fraction(0.5859375) * a / 2**64
    return min(up - v, v - down) > guard


def test_decision_rule_exact():
    """The vectorised test of Theorem F5 (with its rounded guard) agrees with the exact condition,
    on random pairs, on pairs planted next to the decision boundary and at powers of two."""
    rng = np.random.default_rng(7)
    h = np.exp2(rng.uniform(-60, 10, 3000)) * rng.choice([-1.0, 1.0], 3000)
    h[:600] = np.exp2(rng.integers(-60, 10, 600)) * rng.choice([-1.0, 1.0], 600)  # powers of two
    _, e = np.frexp(h)
    g = np.ldexp(1.0, e - 53)
    frac = rng.uniform(-0.5, 0.5, h.size)
    frac[1000:2000] = rng.choice([-1.0, 1.0], 1000) * (0.5 - rng.uniform(0, 2.0**-10, 1000))
    frac[:300] = -np.sign(h[:300]) * (0.25 - rng.uniform(0, 2.0**-10, 300))  # inward at 2**k
    l = frac * g
    pow2 = np.abs(np.frexp(h)[0]) == 0.5
    inward = np.sign(l) == -np.sign(h)
    keep = ~(pow2 & inward & (np.abs(l) > g / 4))  # not a (h, l) that fast_two_sum can return
    h, l = h[keep], l[keep]
    got = fast_oracle._decide64(h, l)
    want = np.array([_decided_exactly(a, b) for a, b in zip(h.tolist(), l.tolist())])
    assert (got == want).all()
    assert 0 < (~got).sum() < got.size


def test_fallback_is_exercised():
    """Some inputs are left undecided (the double-double lies within the guard of a midpoint):
    their values are the mpmath oracle's, and they are where the decision would be unsafe."""
    rng = np.random.default_rng(11)
    x = rng.uniform(0.0, 1.0, 200_000)
    r = fast_oracle.softlog_certified64(x, fallback=False)
    assert 20 < r.fallback.size < 1.5 * 2.0**-11 * x.size
    xf = x[r.fallback]
    _assert_identical(xf, oracle.softlog(xf), oracle.softlog(xf, method="mpmath"))
    for xi in xf[:5].tolist():  # genuinely close to a midpoint: within 2**-11 ULP
        assert abs(fast_oracle.midpoint_distance(xi, "float64")) < 2.0**-11


def test_fallback_is_the_mpmath_oracle(monkeypatch):
    """With the guard widened so that every input is undecided, the result is entirely the mpmath
    oracle's (the fallback path), and equals the fast path's."""
    rng = np.random.default_rng(5)
    x = _inputs(rng, 800)
    fast = fast_oracle.softlog(x)
    monkeypatch.setattr(fast_oracle, "_GUARD64", 2.0**70)
    r = fast_oracle.softlog_certified64(x)
    assert r.fallback.size == ((x != 0) & (x != 1)).sum()
    _assert_identical(x, r.values, fast)


def test_recorded_hard_cases():
    """The recorded float64 hard cases (softlog_numerics/data/hard_cases/softlog.json): the fast
    oracle, the mpmath oracle and the recorded value agree, each is undecided by the fast path,
    and the recorded signed distance agrees with a fresh 200-bit computation."""
    rec = json.loads(DATA.read_text())["rounding_hard_cases"]["formats"]["float64"]
    assert rec["count"] == len(rec["cases"]) > 0
    x = np.array([float.fromhex(c["x"]) for c in rec["cases"]])
    want = np.array([float.fromhex(c["value"]) for c in rec["cases"]])
    _assert_identical(x, oracle.softlog(x, method="mpmath"), want)
    _assert_identical(x, fast_oracle.softlog(x), want)
    assert fast_oracle.softlog_certified64(x, fallback=False).fallback.size == x.size
    for c in rec["cases"]:
        d = fast_oracle.midpoint_distance(float.fromhex(c["x"]), "float64")
        assert abs(d - c["distance_ulp"]) <= 1e-6 * abs(c["distance_ulp"]), c


def test_shapes_and_dtypes():
    """Shape and dtype are kept; 0-d and empty input work; int input is float64."""
    x = np.linspace(-0.1, 2.0, 12).reshape(3, 4)
    y = fast_oracle.softlog(x)
    assert y.shape == (3, 4) and y.dtype == np.float64
    z = fast_oracle.softlog(np.float64(0.5))
    assert z.shape == () and z == oracle.softlog(0.5, method="mpmath")
    assert fast_oracle.softlog(np.zeros(0)).shape == (0,)
    assert (fast_oracle.softlog([0, 1, 2]) == oracle.softlog(np.array([0.0, 1.0, 2.0]), method="mpmath")).all()
    with pytest.raises(TypeError):
        fast_oracle.softlog_certified64(np.zeros(3, dtype=np.float32))


def test_float64_fast_path_is_fast():
    """The point of the float64 path: at least 20 times the mpmath path in the same run (the
    benchmark measures the rate; here a loose floor on a loaded machine)."""
    import time

    rng = np.random.default_rng(3)
    x = rng.uniform(-0.15, 1.2, 1 << 19)
    fast_oracle.softlog(x[:1000])
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        fast_oracle.softlog(x)
        best = min(best, time.perf_counter() - t)
    xs = x[:4000]
    t = time.perf_counter()
    oracle.softlog(xs, method="mpmath")
    mp = xs.size / (time.perf_counter() - t)
    assert x.size / best > 20 * mp, f"{x.size / best:.3g} against {mp:.3g} values/s"
