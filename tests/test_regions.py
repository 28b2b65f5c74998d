"""The exact regions: thresholds of exp/softmax/log_softmax/softlog per format (proofs/thresholds.md)
and the range of the softlog divergences (proofs/sld_bounds.md).

Every threshold is computed by a closed formula and, independently, by bisection over the numbers
of the format with exactly rounded arithmetic; the two must agree exactly, and each threshold must
reproduce by direct evaluation (the predicate holds at it and fails at its neighbour).
"""

import argparse
import itertools
import json
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS, format_of, round_from_float64
from softlog_numerics.analysis.format_arithmetic import (
    ExactOps,
    VectorOps,
    cr_exp,
    cr_log,
    cr_log1p,
    next_down,
    next_up,
)
from softlog_numerics.analysis.sld_bounds import (
    ds_K,
    s_K,
    sld_infimum,
    sweep_naive_k2,
    sweep_sld_sym,
    unit_interval_values,
)
from softlog_numerics.regions import (
    EXP_KEYS,
    argmax_zero_predicate,
    bisection_thresholds,
    collapse_predicate,
    formula_thresholds,
    softlog_region,
)
from softlog_numerics.ulp import ulp_distance

DTYPES = list(FORMATS)

# The published table (proofs/thresholds.md, Theorems T1-T5); the tests below recompute it.
EXPECTED = {
    "float16": (11.09375, -17.34375, -9.7109375, 7.625),
    "bfloat16": (89.0, -93.0, -87.5, 5.5625),
    "float32": (88.72283935546875, -103.97208404541016, -87.3365478515625, 16.63553237915039),
    "float64": (709.7827128933841, -745.1332191019412, -708.3964185322642, 36.73680056967711),
}

# Points without a correct bit (offsets in ULPs from the number nearest x0), Theorem T6's table.
SOFTLOG_BAD = {
    "float16": {"naive_log": (-1, 0), "naive_log1p": (-1, 0)},
    "bfloat16": {"naive_log": (0, 1), "naive_log1p": (0,)},
    "float32": {"naive_log": (0,), "naive_log1p": (0,)},
    "float64": {"naive_log": (0, 1), "naive_log1p": (0, 1)},
}

# Certified minima of sld (proofs/sld_bounds.md, Theorem B5): 25 digits after the point.
SLD_MIN = {
    2: "-0.0164910869580489231274284",
    3: "-0.0296832469141835990247140",
    10: "-0.0783692307666541976339236",
    100: "-0.1357154988457661394393296",
    math.inf: "-0.1463115983394333069507900",
}


# ---------------------------------------------------------------------------------------------
# Thresholds


@pytest.mark.parametrize("dtype", DTYPES)
def test_rounding_boundaries_exact(dtype):
    """Theorem T0: the rounding boundaries (overflow, zero, subnormal, 2**-p, 1 + y) are where the
    theorem says, checked with exact rational rounding just at and around each boundary."""
    f = format_of(dtype)
    p, emin, emax = f.precision, f.emin, f.emax
    tiny = Fraction(1, 2**200)  # a relative perturbation far below any spacing of the format

    def rn(v):
        return oracle.round_rational(v.numerator, v.denominator, f)

    omega = Fraction(2) ** emax * (2 - Fraction(1, 2**p))
    assert rn(omega) == math.inf and rn(omega * (1 - tiny)) == f.max
    zero = Fraction(2) ** (emin - p)
    assert rn(zero) == 0.0 and rn(zero * (1 + tiny)) == f.min_subnormal
    sub = Fraction(2) ** emin * (1 - Fraction(1, 2**p))
    assert rn(sub) == f.tiny and rn(sub * (1 - tiny)) < f.tiny
    two_p = Fraction(1, 2**p) * (1 + Fraction(1, 2**p))
    assert rn(two_p) == 2.0**-p and rn(two_p * (1 + tiny)) > 2.0**-p
    one_p = 1 + Fraction(1, 2**p)
    assert rn(one_p) == 1.0 and rn(one_p * (1 + tiny)) > 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_formula_equals_bisection(dtype):
    """Theorems T1-T5: the closed formulas equal the bisection over the format's numbers (exact
    arithmetic, correctly rounded exp/log) for all five thresholds, and the published table."""
    formula = formula_thresholds(dtype)
    bisect = bisection_thresholds(dtype)
    assert formula == bisect
    assert tuple(formula[k] for k in EXP_KEYS[:4]) == EXPECTED[dtype]
    assert formula["log_softmax_argmax_zero_gap"] == formula["softmax_collapse_gap"]
    for v in formula.values():  # every threshold is a number of the format
        assert float(round_from_float64(np.float64(v), dtype)) == v


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_thresholds_reproduce_by_direct_evaluation(dtype):
    """T1-T3 at the threshold and at its neighbour, with the correctly rounded exp."""
    f = format_of(dtype)
    th = formula_thresholds(dtype)
    x = th["exp_overflow"]
    assert cr_exp(x, f) == math.inf and cr_exp(next_down(x, f), f) <= f.max
    x = th["exp_underflow_zero"]
    assert cr_exp(x, f) == 0.0 and cr_exp(next_up(x, f), f) >= f.min_subnormal
    x = th["exp_subnormal"]
    assert 0 < cr_exp(x, f) < f.tiny and cr_exp(next_up(x, f), f) >= f.tiny


@pytest.mark.parametrize("dtype", DTYPES)
def test_thresholds_reproduce_by_direct_evaluation(dtype):
    """Theorems T4, T5: the collapse and the zero of the three-pass log_softmax start exactly at
    the threshold (evaluated in the format with exact arithmetic), not one number earlier; with
    NumPy's own float32/float64 arithmetic too (margins: 1.8 ULP of exp for float32, 40 for float64)."""
    f = format_of(dtype)
    ops = ExactOps(f)
    g = formula_thresholds(dtype)["softmax_collapse_gap"]
    prev = next_down(g, f)
    assert collapse_predicate(g, ops) and not collapse_predicate(prev, ops)
    assert argmax_zero_predicate(g, ops) and not argmax_zero_predicate(prev, ops)
    # and far beyond: still collapsed; the exact value stays negative
    assert collapse_predicate(4 * g, ops) and argmax_zero_predicate(4 * g, ops)
    assert float(oracle.log_softmax(np.array([g, 0.0]).astype(f.dtype))[0]) < 0
    if dtype in ("float32", "float64"):
        t = np.dtype(dtype).type
        for gap, collapsed in ((g, True), (prev, False)):
            x = np.array([gap, 0.0], dtype=dtype)
            d = x - x.max()
            y = d - np.log(np.exp(d).sum())
            assert (t(1) + np.exp(t(-gap)) == 1) == collapsed
            assert (y[0] == 0) == collapsed


def test_production_log_softmax_is_not_zero_past_the_collapse_gap():
    """The library's log_softmax does not fall in the collapse region: at the gap where the three-pass
    algorithm returns 0, it returns the correctly rounded negative value (within its bound)."""
    logsoftmax = pytest.importorskip("softlog_numerics.functions._log_softmax")
    from softlog_numerics.testing.contract import ULP_BOUNDS

    for dtype in DTYPES:
        g = formula_thresholds(dtype)["softmax_collapse_gap"]
        x = np.array([g, 0.0]).astype(format_of(dtype).dtype)
        y = logsoftmax.log_softmax(x)
        assert float(y[0]) < 0
        assert ulp_distance(y, oracle.log_softmax(x)).max() <= ULP_BOUNDS["log_softmax"][dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_softlog_regions_within_proven_window(dtype):
    """Theorem T6: the points without a correct bit lie within 10 ULPs of the number nearest x0 (the
    scan covers +-64); they are the tabulated ones; the library's softlog has none."""
    for variant, expected in SOFTLOG_BAD[dtype].items():
        region = softlog_region(variant, dtype)
        assert region.offsets == expected
        assert all(abs(k) <= 10 for k in region.offsets)
        assert region.width == expected[-1] - expected[0] + 1
    assert softlog_region("production", dtype).offsets == ()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_vector_ops_match_exact_ops(dtype):
    """Theorem T7: VectorOps' + - * / equal the exactly rounded operations; its exp/log/log1p are
    within 1 ULP of the correctly rounded ones (and, in the narrow formats, equal on at least 98%
    of the samples; in float64 they are the libm's)."""
    f = format_of(dtype)
    rng = np.random.default_rng(7)
    n = 300
    a = round_from_float64(rng.standard_normal(n) * np.exp2(rng.integers(-8, 8, n)), f).astype(np.float64)
    b = round_from_float64(rng.standard_normal(n) * np.exp2(rng.integers(-8, 8, n)), f).astype(np.float64)
    V, E = VectorOps(f), ExactOps(f)
    for name in ("add", "sub", "mul", "div"):
        got = getattr(V, name)(a, b)
        want = np.array([getattr(E, name)(float(x), float(y)) for x, y in zip(a, b)])
        assert np.array_equal(got, want), name
    x = round_from_float64(rng.uniform(-8, 8, n), f).astype(np.float64)
    pos = np.abs(x) + f.tiny
    for name, arg in (("exp", x), ("log", pos), ("log1p", pos)):
        got = getattr(V, name)(arg).astype(f.dtype)
        want = np.array([getattr(E, name)(float(v)) for v in arg]).astype(f.dtype)
        d = ulp_distance(got, want)
        assert d.max() <= 1, name
        if dtype != "float64":  # narrow formats: differ only within 1 float64 ULP of a midpoint
            assert (d == 0).mean() >= 0.98, name


def test_libm_primitives_within_one_ulp():
    """The hypothesis of Theorem T7 and of the region maps: NumPy's float64 exp, log and log1p are
    within 1 ULP of the correctly rounded values (measured here on 400 arguments each)."""
    rng = np.random.default_rng(11)
    f = FORMATS["float64"]
    xs = rng.uniform(-740, 709, 400)
    ps = np.exp2(rng.uniform(-1000, 1000, 400))
    qs = np.exp2(rng.uniform(-60, 30, 400))
    for fn, cr, args in ((np.exp, cr_exp, xs), (np.log, cr_log, ps), (np.log1p, cr_log1p, qs)):
        got = fn(args)
        want = np.array([cr(float(v), f) for v in args])
        assert ulp_distance(got, want).max() <= 1, fn.__name__


def test_cli_regions_json_and_table(capsys):
    """`softlog-numerics regions --json`: exact numbers that round-trip, the SLD minima; the table."""
    from softlog_numerics.cli import regions as _cli_regions

    parser = argparse.ArgumentParser()
    _cli_regions.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["regions", "--json"])
    assert args.run(args) == 0
    data = json.loads(capsys.readouterr().out)
    for dtype in DTYPES:
        row = data[dtype]
        assert {k: row[k] for k in EXP_KEYS} == formula_thresholds(dtype)
        for k in EXP_KEYS:
            assert float(round_from_float64(np.float64(row[k]), dtype)) == row[k]
        assert row["softlog_production_width"] == 0
        assert row["softlog_naive_log_width"] == len(range(SOFTLOG_BAD[dtype]["naive_log"][0], SOFTLOG_BAD[dtype]["naive_log"][-1] + 1))
    assert set(data["sld_infimum"]) == {"2", "3", "10", "100", "limit"}
    assert data["sld_infimum"]["2"] == float(mpmath.mpf(SLD_MIN[2]))
    assert data["sld_infimum_certified"]["2"]["lo"] == SLD_MIN[2]
    args = parser.parse_args(["regions", "--verify", "--no-softlog"])
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "| exp_overflow | 11.09375 | 89.0 | 88.72283935546875 | 709.7827128933841 |" in out
    assert "formula = bisection" in out


# ---------------------------------------------------------------------------------------------
# SLD bounds


def _random_simplex(rng, n, K):
    """Dirichlet draws with a spread of concentrations, plus one-hots and near-one-hots."""
    alpha = rng.choice([0.05, 0.3, 1.0, 5.0], size=(n, 1))
    p = rng.gamma(np.broadcast_to(alpha, (n, K)))
    p /= p.sum(axis=1, keepdims=True)
    p[: n // 10] = np.eye(K)[rng.integers(0, K, n // 10)]
    return p


def _L(x):
    return np.log((math.e - 1 / math.e) * x + 1 / math.e)


@pytest.mark.parametrize("K", [2, 3, 5])
def test_sld_sym_range_exact(K):
    """Theorem B1 (and B6): sld_sym in [0, 1]; exactly 0 at p == q, exactly 1 at one-hots on different
    classes (oracle: correctly rounded, so exactly representable values come back exactly); random
    pairs evaluated in float64 stay within [0, 1] (margin 1e-15 for float64 rounding)."""
    rng = np.random.default_rng(K)
    p, q = _random_simplex(rng, 20000, K), _random_simplex(rng, 20000, K)
    v = 0.25 * ((p - q) * (_L(p) - _L(q))).sum(axis=1)
    assert v.min() >= -1e-15 and v.max() <= 1 + 1e-15
    e = np.eye(K)
    assert float(oracle.sld_sym(e[0], e[1])) == 1.0
    assert float(oracle.sld_sym(e[0], e[0])) == 0.0
    assert float(oracle.sld_sym(p[500], p[500])) == 0.0
    # not 1 unless disjoint one-hots: a near-one-hot pair is strictly below 1
    near = np.zeros(K)
    near[0], near[1] = 1 - 2.0**-30, 2.0**-30
    assert float(oracle.sld_sym(near, e[1])) < 1.0


def test_sld_upper_bound_exact():
    """Theorem B2: sld <= 1, equality at p = e_j with q_j = 0 -- for K >= 3 also for q not one-hot."""
    assert float(oracle.sld([1.0, 0.0], [0.0, 1.0])) == 1.0
    assert float(oracle.sld([1.0, 0.0, 0.0], [0.0, 0.5, 0.5])) == 1.0
    assert float(oracle.sld([1.0, 0.0, 0.0], [2.0**-40, 0.5, 0.5 - 2.0**-40])) < 1.0
    rng = np.random.default_rng(3)
    for K in (2, 3, 7):
        p, q = _random_simplex(rng, 20000, K), _random_simplex(rng, 20000, K)
        with np.errstate(invalid="ignore"):
            v = 0.5 * np.where(p > 0, p * (_L(p) - _L(q)), 0.0).sum(axis=1)
        assert v.max() <= 1 + 1e-15


def _sld64(p, q):
    return 0.5 * np.where(p > 0, p * (_L(p) - _L(q)), 0.0).sum(axis=-1)


@pytest.mark.parametrize("K", [2, 3, 10])
def test_sld_minimum_not_beaten_by_search(K):
    """Theorem B3: no pair found by random sampling or by local descent from the best samples goes
    below the certified minimum (float64 evaluation; allowance 1e-15), and the claimed minimiser
    attains it (oracle.sld in float64 within 4 ULP)."""
    from scipy.optimize import minimize

    m = sld_infimum(K)
    lo = float(m.value_lo)
    rng = np.random.default_rng(100 + K)
    n = 100000
    p = _random_simplex(rng, n, K)
    # sharpen p away from uniform to get q (the direction that makes sld negative), plus random q
    q = np.clip((p - 1 / K) * rng.uniform(1, 3, (n, 1)) + 1 / K, 0, None)
    q /= q.sum(axis=1, keepdims=True)
    v = _sld64(p, q)
    assert v.min() >= lo - 1e-15

    def f(z):
        a = np.exp(z[:K] - z[:K].max())
        b = np.exp(z[K:] - z[K:].max())
        return _sld64(a / a.sum(), b / b.sum())

    for i in np.argsort(v)[:4]:
        z0 = np.concatenate([np.log(p[i] + 1e-12), np.log(q[i] + 1e-12)])
        r = minimize(f, z0, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-9, "fatol": 1e-15})
        assert r.fun >= lo - 1e-15
    a, c = float(m.a_mid), float(m.c_mid)
    p_star = np.array([a] + [c] * (K - 1))
    q_star = np.eye(K)[0]
    got = oracle.sld(p_star, q_star, validate=False)
    assert abs(float(got) - float(m.value_mid)) <= 4 * np.spacing(abs(float(m.value_mid))) + 4 * abs(a + (K - 1) * c - 1)


def test_sld_infimum_certified():
    """Theorems B4, B5: certified enclosures narrower than 1e-29 containing the published digits;
    the derivative changes sign across the bracket (checked again at 300 bits); the minima decrease
    with K towards the limit; a dense grid of s_K at 300 bits finds nothing lower."""
    values = []
    for K, digits in SLD_MIN.items():
        m = sld_infimum(K)
        with mpmath.workprec(300):
            assert m.value_hi - m.value_lo < mpmath.mpf("1e-29")
            published = mpmath.mpf(digits)
            assert abs(m.value_lo - published) < mpmath.mpf("2e-25")
            assert ds_K(m.a_lo, K) < 0 < ds_K(m.a_hi, K)
            assert m.value_lo <= s_K(m.a_mid, K) <= m.value_hi
            grid = [s_K(mpmath.mpf(i) / 4000, K) for i in range(4001)]
            assert min(grid) >= m.value_lo
        assert 0 < m.a_lo < m.a_hi < 1 and m.pieces < 2000
        values.append(m.value_lo)
    assert all(x > y for x, y in itertools.pairwise(values))  # decreasing in K, limit last


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_library_sld_sym_in_unit_interval_strided(dtype):
    """Theorem B6, default run: the library's float sld_sym on two-class pairs p = (a, RN(1 - a)),
    q = (b, RN(1 - b)), a and b every 29th number of the format in [0, 1] plus the 24 smallest and
    24 largest (0, subnormals, 1): never below 0, above 1 or NaN, +0 exactly when p == q, and every
    0 for p != q within 1 ULP (the exact value below the smallest subnormal)."""
    V = unit_interval_values(dtype)
    idx = np.unique(np.concatenate([np.arange(0, V.size, 29), np.arange(24), np.arange(V.size - 24, V.size)]))
    r = sweep_sld_sym(dtype, idx, idx)
    assert r.pairs == idx.size**2
    assert r.in_unit_interval, r
    assert r.nonzero_but_equal == 0 and r.zero_beyond_one_ulp == 0
    assert r.maximum == 1.0 and r.minimum == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_library_sld_sym_in_unit_interval_exhaustive(dtype):
    """Theorem B6, every pair: 15361**2 (float16) and 16257**2 (bfloat16) pairs; a few minutes each."""
    r = sweep_sld_sym(dtype)
    assert r.pairs == unit_interval_values(dtype).size ** 2
    assert r.in_unit_interval, r
    assert r.nonzero_but_equal == 0 and r.zero_beyond_one_ulp == 0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_naive_divergences_in_the_format(dtype):
    """The textbook sld_sym in the format never goes negative (its softlog is monotone, so every term
    keeps its sign) but the textbook sld has the wrong sign and goes below the true minimum on
    some pairs (every 32nd number of the format; the full sweep is in the report)."""
    s = sweep_naive_k2(dtype, stride=32, pixels=32)
    sym = s.counts["sld_sym"]["all"]
    assert sym["wrong sign"] == 0 and sym["below the minimum"] == 0 and sym["inf or NaN"] == 0
    assert s.counts["sld"]["all"]["wrong sign"] > 0
    assert s.counts["sld"]["all"]["below the minimum"] > 0
    assert sum(s.counts["sld"]["all"].values()) == s.pairs["all"]


def test_figures_are_drawn(tmp_path):
    """The figure functions write PNG and SVG with the stable names (small grids here)."""
    pytest.importorskip("matplotlib")
    from softlog_numerics.report import region_plots as rp

    variants = ("naive", "shifted", "shifted_log1p")
    stem, caption = rp.plot_log_softmax_regions(rp.log_softmax_region_data("float16", 12, 10, variants=variants), tmp_path)
    assert stem == "regions_log_softmax_float16" and "cells per class" in caption
    sweeps = {dt: sweep_naive_k2(dt, stride=128, pixels=32) for dt in ("float16", "bfloat16")}
    stem2, _ = rp.plot_sld_plane(sweeps, tmp_path)
    for s in (stem, stem2):
        assert (tmp_path / f"{s}.png").stat().st_size > 10000
        assert (tmp_path / f"{s}.svg").exists()
