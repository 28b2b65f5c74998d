"""logsumexp, log_softmax and softmax against the correctly rounded oracle, in every format.

Every tolerance below is a bound proven in proofs/log_softmax.md (the theorem is named where it is
used): the ULP contract of ``_bounds.py`` for the accuracy tests, and derived bounds for the
properties (softmax sums, the round trip ``logsumexp(log_softmax(x))``, shift invariance).
"""

from __future__ import annotations

import math
import tracemalloc
import warnings

import mpmath
import numpy as np
import pytest
import scipy.special
from hypothesis import given
from hypothesis import strategies as st

from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS, format_of, round_from_float64
from softlog_numerics._core.rounding import rounds_once
from softlog_numerics.functions import _log_softmax as impl
from softlog_numerics.strategies import collapse_gap, logit_vectors
from softlog_numerics.testing.contract import ULP_BOUNDS
from softlog_numerics.ulp import from_ordinal, ordinal, ulp_distance

DTYPES = list(FORMATS)
FUNCTIONS = {
    "logsumexp": (impl.logsumexp, oracle.logsumexp),
    "log_softmax": (impl.log_softmax, oracle.log_softmax),
    "softmax": (impl.softmax, oracle.softmax),
}
U64 = 2.0**-53


def _as(values, dtype):
    with np.errstate(over="ignore"):
        return round_from_float64(np.asarray(values, dtype=np.float64), format_of(dtype))


def _check(name: str, x, axis=-1, **kw):
    """ULP distance to the oracle <= the contract (proofs/log_softmax.md, Theorems LSE2-LSE5);
    zeros must also agree in sign wherever the oracle's zero is signed by the math."""
    mine, ref = FUNCTIONS[name]
    got = mine(x, axis=axis, **kw)
    want = ref(x, axis=axis, **kw)
    assert got.dtype == want.dtype and got.shape == want.shape
    d = ulp_distance(got, want)
    bound = ULP_BOUNDS[name][format_of(x.dtype).name]
    if d.size:
        worst = int(np.argmax(d))
        assert d.flat[worst] <= bound, (
            f"{name} {x.dtype}: {d.flat[worst]} ULP > {bound} at flat index {worst}; "
            f"got {got.flat[worst]!r}, want {want.flat[worst]!r}, x = {x!r}"
        )
        zeros = (got == 0) & (want == 0)
        assert not (zeros & (np.signbit(got) != np.signbit(want))).any(), (name, x, got, want)
    return d


# ---------------------------------------------------------------------------------------------
# The hypotheses on the platform library and on the double-double kernels (Theorem LSE0).


def _exp_errors(args: np.ndarray) -> tuple[float, float]:
    """float64 np.exp: (largest relative error in units of u = 2**-53 over normal results, largest
    absolute error in units of 2**-1074 over subnormal results)."""
    got = np.exp(args)
    rel = sub = 0.0
    with mpmath.workprec(160):
        for x, y in zip(args.tolist(), got.tolist()):
            e = mpmath.exp(mpmath.mpf(x))
            err = abs(mpmath.mpf(y) - e)
            if e >= mpmath.mpf(2) ** -1022:
                rel = max(rel, float(err / e) / U64)
            else:
                sub = max(sub, float(err * mpmath.mpf(2) ** 1074))
    return rel, sub


def test_libm_hypothesis_exp_and_log1p():
    """H_exp: float64 np.exp errs by at most _LAMBDA_EXP = 1.25 u relative on normal results and by
    at most 2**-1074 on subnormal ones (Theorem LSE0 (b)); H_log1p: np.log1p within 1 ULP."""
    rng = np.random.default_rng(20261126)
    args = np.concatenate([
        -rng.uniform(0.0, 1.0, 3000),
        -rng.uniform(0.0, 40.0, 3000),
        -rng.uniform(0.0, 745.0, 3000),
        rng.uniform(0.0, 700.0, 2000),
        -rng.uniform(708.0, 745.1, 2000),  # subnormal results
        np.ldexp(rng.uniform(0.5, 1.0, 2000), rng.integers(-60, 0, 2000)) * rng.choice([-1.0, 1.0], 2000),
    ])
    rel, sub = _exp_errors(args)
    assert rel <= impl._LAMBDA_EXP and sub <= 1.0, (rel, sub)
    s = np.concatenate([np.ldexp(rng.uniform(0.5, 1.0, 3000), rng.integers(-80, 20, 3000)), rng.uniform(0, 2, 1000)])
    got = np.log1p(s)
    worst = 0.0
    with mpmath.workprec(160):
        for x, y in zip(s.tolist(), got.tolist()):
            e = mpmath.log1p(mpmath.mpf(x))
            ulp = 2.0 ** (math.frexp(float(e))[1] - 53)
            worst = max(worst, float(abs(mpmath.mpf(y) - e) / ulp))
    assert worst <= 1.0, worst


def test_double_double_kernels():
    """_exp_dd and _log1p_dd err by less than _DD_REL = 2**-97 relative (Theorem LSE0 (b))."""
    rng = np.random.default_rng(7)
    th = np.concatenate([-rng.uniform(0, 1e-3, 200), -rng.uniform(0, 50, 800), -rng.uniform(0, 3000, 800), [0.0]])
    tl = th * rng.uniform(-1, 1, th.size) * U64
    k, mh, ml = impl._exp_dd(th, tl)
    sh = np.concatenate([np.ldexp(rng.uniform(0.5, 1, 1500), rng.integers(-1000, 40, 1500)), [0.5, 1.0, 3.0]])
    sl = sh * rng.uniform(-1, 1, sh.size) * U64 / 2
    Lh, Ll = impl._log1p_dd(sh, sl)
    with mpmath.workprec(300):
        worst_exp = max(
            abs(mpmath.ldexp(mpmath.mpf(h) + mpmath.mpf(l), int(kk)) / mpmath.exp(mpmath.mpf(a) + mpmath.mpf(b)) - 1)
            for a, b, kk, h, l in zip(th.tolist(), tl.tolist(), k.tolist(), mh.tolist(), ml.tolist())
        )
        worst_log = max(
            abs((mpmath.mpf(h) + mpmath.mpf(l)) / mpmath.log1p(mpmath.mpf(a) + mpmath.mpf(b)) - 1)
            for a, b, h, l in zip(sh.tolist(), sl.tolist(), Lh.tolist(), Ll.tolist())
        )
    assert worst_exp <= impl._DD_REL and worst_log <= impl._DD_REL, (worst_exp, worst_log)


def test_error_free_tile_sum():
    """Lemma of Theorem LSE1 (b): the extracted high parts sum exactly, and q + r is the sum of
    E (1 + LO) within 0.02 u relative for tiles of up to _C_MAX columns."""
    rng = np.random.default_rng(3)
    for c in (1, 7, 1000, impl._C_MAX):
        E = np.exp(-rng.exponential(rng.uniform(0.1, 30), (3, c)))
        E[1] *= 1e-200
        LO = rng.uniform(-1, 1, (3, c)) * U64 * 40
        q, r = impl._exact_sum_tile(E, np.empty((2,) + E.shape), LO.copy())
        for i in range(3):
            terms = E[i].tolist() + (E[i] * LO[i]).tolist()  # E LO rounded: 2**-106 relative
            diff = math.fsum([float(q[i]), float(r[i])] + [-v for v in terms])  # exact, rounded once
            assert abs(diff) <= 0.02 * U64 * math.fsum(terms)


def test_thresholds_from_their_formulas():
    """The constants of logsoftmax.py satisfy the inequalities they are chosen for (proofs/log_softmax.md,
    Theorem LSE6)."""
    c = impl._C_MAX
    gamma = (c - 1) * U64 / (1 - (c - 1) * U64)
    assert gamma * 4 * c * c * U64 <= 0.02 * U64  # R-sum error of the error-free tile sum
    assert impl._C1 == impl._LAMBDA_EXP + 0.1
    # a subnormal exp term errs by <= 2**-1074: 2**60 of them stay below 2**-70 relative of s >= _TINY_S
    assert 2.0**60 * 2.0**-1074 <= 2.0**-70 * impl._TINY_S
    assert impl._TILE >= impl._C_MAX and impl._GROUP >= impl._TILE
    # _NUDGE moves a float64 by one or two ULPs; _NUDGE_L is far below half an ULP of any narrow T != 0
    # only where it matters: its rows' T - L rounds to T in float64 only when L < 2**-53 |T|.
    assert impl._NUDGE == np.nextafter(1.0, 2.0)
    for x in (1.0, 1.5, -3.75, 1e-300, -1e300):
        y = x * impl._NUDGE
        assert 1 <= abs(int(ordinal(np.float64(y))) - int(ordinal(np.float64(x)))) <= 2
    # ln 2 split: two 32-bit parts and a remainder, k * part exact for |k| < 2**21
    for part in (impl._LN2_1, impl._LN2_2):
        m, _ = math.frexp(part)
        assert (abs(m) * 2.0**32).is_integer()
    with mpmath.workprec(200):
        assert abs(mpmath.mpf(impl._LN2_1) + impl._LN2_2 + impl._LN2_3 - mpmath.log(2)) < 2.0**-120


# ---------------------------------------------------------------------------------------------
# Accuracy against the oracle: Hypothesis over the adversarial families (Theorems LSE2-LSE5).


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(FUNCTIONS))
@given(data=st.data())
def test_accuracy_logit_families(name, dtype, data):
    x = data.draw(logit_vectors(dtype, 1, 40))
    _check(name, x)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_accuracy_rows_of_a_matrix(dtype, data):
    """Several rows at once (row classification and scalars per row), along either axis."""
    rows = data.draw(st.lists(logit_vectors(dtype, 6, 6), min_size=1, max_size=5))
    x = np.stack(rows)
    for name in FUNCTIONS:
        _check(name, x, axis=-1)
        _check(name, np.ascontiguousarray(x.T), axis=0)


# ---------------------------------------------------------------------------------------------
# Fixed adversarial cases.


def _adversarial(dtype) -> list[np.ndarray]:
    fmt = format_of(dtype)
    rng = np.random.default_rng(11)
    g0 = collapse_gap(dtype)
    cases = []
    for g in np.linspace(0.25 * g0, 2.5 * g0, 23):  # dominant class across the collapse gap
        cases += [_as([g, 0.0], dtype), _as([g, 0.0, 0.0, 0.0], dtype), _as([0.0, -g, -g - 1.0], dtype),
                  _as([g - 7.25, -7.25], dtype)]
    c = _as(3.3, dtype)
    for steps in ([0, -1], [0, 0, -1, -2], [0, 0, 0], [-1, 0, -3]):  # near ties
        cases.append(from_ordinal(ordinal(c) + np.array(steps), fmt.dtype))
        cases.append(-from_ordinal(ordinal(c) + np.array(steps), fmt.dtype))
    m = fmt.max
    cases += [_as(v, dtype) for v in ([m, m], [m, -m], [m, m / 2, 0.0], [-m, -m], [m] * 5, [-m, 0.0], [m, m * 0.999])]
    cases += [_as(v, dtype) for v in ([-np.inf, 1.0, 2.0], [-np.inf, -np.inf, 0.5], [3.0, -np.inf], [-np.inf] * 3)]
    depth = -math.log(fmt.min_subnormal)
    for f in (0.9, 0.98, 1.0, 1.02):  # subnormal softmax outputs
        cases.append(_as([0.0, -f * depth, -f * depth - 0.5], dtype))
    cases.append(_as([0.0] + [-0.95 * depth] * 40, dtype))  # many subnormal-scale terms
    cases.append(_as([1e-300 if dtype == "float64" else 0.0, -0.99 * depth, -0.995 * depth], dtype))
    for n in (1, 2, 3):  # narrow rows
        for _ in range(4):
            cases.append(_as(rng.normal(0, 10.0 ** rng.uniform(-2, 2), n), dtype))
    # logsumexp cancellation: a < 0 and a + log1p(s) ~ 0 (log-probabilities)
    ln2 = math.log(2.0)
    cases += [_as([-ln2, -ln2], dtype), _as([-math.log(3.0)] * 3, dtype), _as([-0.5, -0.6], dtype)]
    for n in (2, 5, 30):
        cases.append(oracle.log_softmax(_as(rng.normal(0, 3, n), dtype)))
    return cases


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_accuracy_adversarial_cases(name, dtype):
    for x in _adversarial(dtype):
        _check(name, x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_accuracy_wide_row(dtype):
    """One row of 32000 logits per format (Theorem LSE1's tile sums at full width)."""
    rng = np.random.default_rng(32000)
    x = _as(rng.normal(0.0, 4.0, 32000), dtype)
    for name in FUNCTIONS:
        _check(name, x)


def test_dominant_class_is_not_rounded_to_zero():
    """The motivating case: float32 [16.94, 0] has log p_max = -4.4e-8, not 0 (field notes §2)."""
    x = np.array([16.94, 0.0], dtype=np.float32)
    y = impl.log_softmax(x)
    assert y[0] == oracle.log_softmax(x)[0] and -4.5e-8 < float(y[0]) < -4.3e-8
    x = np.array([40.0, 0.0])
    assert impl.log_softmax(x)[0] == oracle.log_softmax(x)[0] < 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiling_paths(dtype, monkeypatch):
    """Tiny tiles force column chunks, several blocks and groups, and the multi-chunk argmax."""
    monkeypatch.setattr(impl, "_C_MAX", 8)
    monkeypatch.setattr(impl, "_TILE", 24)
    monkeypatch.setattr(impl, "_GROUP", 48)
    rng = np.random.default_rng(5)
    x = rng.normal(0, 5, (7, 37))
    x[1, 3] = -np.inf
    x[2, :] = -np.inf
    x[2, 30] = 1.5
    x[3, 20] = np.nan
    x[4, 11] = np.inf
    x[5, 36] = 60.0
    x[6] = -rng.uniform(0, 30, 37)
    x = _as(x, dtype)
    for name in FUNCTIONS:
        _check(name, x)
        _check(name, x[:, :5])


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(FUNCTIONS))
@given(data=st.data())
def test_accuracy_wide_family_slow(name, dtype, data):
    _check(name, data.draw(logit_vectors(dtype, families=("wide",))))


# ---------------------------------------------------------------------------------------------
# Special values (the oracle's table), compared exactly, signs of zeros included.

NAN, INF = math.nan, math.inf
SPECIAL = [
    # row, logsumexp, log_softmax, softmax
    ([NAN, 1.0], NAN, [NAN, NAN], [NAN, NAN]),
    ([NAN, INF], NAN, [NAN, NAN], [NAN, NAN]),
    ([INF, 1.0, -INF], INF, [NAN, -INF, -INF], [NAN, 0.0, 0.0]),
    ([INF, INF], INF, [NAN, NAN], [NAN, NAN]),
    ([-INF, -INF], -INF, [NAN, NAN], [NAN, NAN]),
    ([-INF, 2.5], 2.5, [-INF, 0.0], [0.0, 1.0]),
    ([-0.0], 0.0, [0.0], [1.0]),
    ([-0.0, -INF], 0.0, [0.0, -INF], [1.0, 0.0]),
    ([3.0], 3.0, [0.0], [1.0]),
    ([0.0, -1e4], 0.0, [-0.0, -1e4], [1.0, 0.0]),
    ([5.0, 5.0], None, None, [0.5, 0.5]),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_table(dtype):
    for row, lse, lsm, sm in SPECIAL:
        x = _as(row, dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = (impl.logsumexp(x), impl.log_softmax(x), impl.softmax(x))
        for g, want in zip(got, (lse, lsm, sm)):
            if want is None:
                continue
            w = _as(want, dtype)
            assert g.dtype == w.dtype and g.shape == w.shape
            assert (ulp_distance(g, w) == 0).all(), (row, g, w)
            assert (np.signbit(g) == np.signbit(w)).all() | np.isnan(w.astype(np.float64)).all(), (row, g, w)
        for (name, (_, ref)), g in zip(FUNCTIONS.items(), got):
            r = ref(x)
            assert (ulp_distance(g, r) == 0).all() and (np.signbit(g) == np.signbit(r)).all(), (name, row, g, r)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_arrays(dtype):
    dt = format_of(dtype).dtype
    for shape, axis in [((0,), -1), ((3, 0), -1), ((0, 3), -1), ((0, 3), 0), ((2, 0, 4), (1, 2)), ((0,), None)]:
        x = np.zeros(shape, dtype=dt)
        lse = impl.logsumexp(x, axis=axis)
        assert lse.dtype == dt and np.shape(lse) == np.sum(x, axis=axis).shape
        assert (lse.astype(np.float64) == -np.inf).all()
        for f in (impl.log_softmax, impl.softmax):
            y = f(x, axis=axis)
            assert y.dtype == dt and y.shape == x.shape


def test_unsupported_dtypes_raise_type_error():
    for bad in (np.array([1 + 2j]), np.array(["a"])):
        for f in (impl.logsumexp, impl.log_softmax, impl.softmax):
            with pytest.raises(TypeError, match=bad.dtype.name):
                f(bad)
    assert impl.log_softmax(np.array([1, 2, 3])).dtype == np.float64
    assert impl.logsumexp(np.array([True, False])).dtype == np.float64


# ---------------------------------------------------------------------------------------------
# Axis handling like scipy.special.


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_axis_none_tuple_keepdims_like_scipy(dtype):
    rng = np.random.default_rng(1)
    x = _as(rng.normal(0, 3, (3, 4, 5)), dtype)
    x64 = x.astype(np.float64)
    for axis in (None, 0, 1, 2, -1, (0, 2), (1, 2), (0, 1, 2), (2, 0)):
        for keepdims in (False, True):
            got = impl.logsumexp(x, axis=axis, keepdims=keepdims)
            ref = scipy.special.logsumexp(x64, axis=axis, keepdims=keepdims)
            assert np.shape(got) == np.shape(ref)
            _check("logsumexp", x, axis=axis, keepdims=keepdims)
        for name in ("log_softmax", "softmax"):
            got = FUNCTIONS[name][0](x, axis=axis)
            ref = getattr(scipy.special, name)(x64, axis=axis)
            assert got.shape == np.shape(ref)
            assert np.allclose(got.astype(np.float64), ref, rtol=1e-5, atol=1e-30)
            _check(name, x, axis=axis)


# ---------------------------------------------------------------------------------------------
# Properties (Theorem LSE7).


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_shift_invariance_by_exact_shifts(dtype, data):
    """Integer logits shifted by an integer stay exact; the exact results are equal, so the
    computed ones are within twice the contract of each other, and in the narrow formats (which
    see x only through the exact float64 x - a) bitwise equal (Theorem LSE7 (a))."""
    n = data.draw(st.integers(1, 12))
    ints = data.draw(st.lists(st.integers(-60, 60), min_size=n, max_size=n))
    c = data.draw(st.integers(-100, 100))
    x = np.array(ints, dtype=np.float64)
    x, xs = _as(x, dtype), _as(x + c, dtype)
    assert (xs.astype(np.float64) == x.astype(np.float64) + c).all()
    fmt = format_of(dtype).name
    for name, (f, _) in FUNCTIONS.items():
        if name == "logsumexp":
            continue
        y, ys = f(x), f(xs)
        bound = ULP_BOUNDS[name][fmt]
        assert (ulp_distance(y, ys) <= 2 * bound).all()
        if fmt != "float64":
            assert (ulp_distance(y, ys) == 0).all(), (name, x, y, ys)


def _c_B(fmt, B) -> float:
    """Theorem LSE7: c_B = (2B + 1) u_F (1 + (2B + 2) u_F)."""
    u = fmt.unit_roundoff
    return (2 * B + 1) * u * (1 + (2 * B + 2) * u)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_softmax_sums_to_one(dtype, data):
    """Theorem LSE7 (b): |sum(softmax) - 1| <= c_B + n (B + 1/2) h_F, the sum taken exactly."""
    x = data.draw(logit_vectors(dtype, 1, 64))
    fmt = format_of(dtype)
    p = impl.softmax(x).astype(np.float64)
    if np.isnan(p).any() or not np.isfinite(x.astype(np.float64)).any():
        return
    B = ULP_BOUNDS["softmax"][fmt.name]
    bound = _c_B(fmt, B) + x.size * (B + 0.5) * fmt.min_subnormal
    assert abs(math.fsum(p.tolist()) - 1.0) <= bound


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_logsumexp_of_log_softmax_is_zero(dtype, data):
    """Theorem LSE7 (c): |logsumexp(log_softmax(x))| <= (c_B H' + (B + 1/2) h_F)(1 + (2B' + 2) u_F)
    + (B' + 1/2) h_F, with H' = sum |r_j| exp(-(1 - c_B)|r_j|) bounded from the computed z_j by
    |r_j| in [|z_j| / (1 + c_B), |z_j| / (1 - c_B)]."""
    x = data.draw(logit_vectors(dtype, 2, 64))
    fmt = format_of(dtype)
    z = impl.log_softmax(x)
    z64 = z.astype(np.float64)
    if np.isnan(z64).any() or np.isinf(z64).all():
        return
    y = float(impl.logsumexp(z))
    B, B2 = ULP_BOUNDS["log_softmax"][fmt.name], ULP_BOUNDS["logsumexp"][fmt.name]
    c = _c_B(fmt, B)
    a = np.abs(z64[np.isfinite(z64)])
    H = float(np.sum(a / (1 - c) * np.exp(-(1 - c) * a / (1 + c))))
    lam = c * H + (B + 0.5) * fmt.min_subnormal
    bound = lam * (1 + (2 * B2 + 2) * fmt.unit_roundoff) + (B2 + 0.5) * fmt.min_subnormal
    assert abs(y) <= bound * (1 + 2**-40), (x, z, y, bound)


# ---------------------------------------------------------------------------------------------
# Memory and warnings.


def test_peak_extra_memory_is_bounded():
    """Row tiles: besides the output, the extra memory is a few tile buffers (<= the input)."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.normal(0, 5, (64, 32000)).astype(dtype)
        for f in (impl.log_softmax, impl.softmax):
            tracemalloc.start()
            y = f(x)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert peak - y.nbytes <= min(x.nbytes, 8 << 20), (f.__name__, dtype, peak)
        tracemalloc.start()
        impl.logsumexp(x)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak <= min(x.nbytes, 8 << 20)


def test_no_runtime_warnings_on_extreme_inputs():
    cases = [np.array([1e308, -1e308, np.inf]), np.array([np.nan, np.inf, -np.inf]),
             np.array([-np.inf, -np.inf]), np.array([1e308, 1e308]), np.array([0.0, -1e308]),
             np.array([65504.0, -65504.0], dtype=np.float16)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x in cases:
            for f in (impl.logsumexp, impl.log_softmax, impl.softmax):
                f(x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_nan_for_finite_rows_near_the_top_of_the_range(dtype):
    """Every finite row has a finite softmax, log_softmax and logsumexp (at most +-inf for an
    overflowing logsumexp): a grid of 2- and 3-element rows over 17 magnitudes up to the format's
    largest value, both signs. float64 softmax returned NaN for [1.616645611598377e308,
    4.996016272442588e307] (the low part of x - a times the scaled row factor overflowed)."""
    fmt = format_of(dtype)
    big = float(np.finfo(np.float64).max) if fmt.name == "float64" else math.ldexp(2 - 2.0 ** (1 - fmt.precision), fmt.emax)
    mags = [big * f for f in (1.0, 0.9, 0.5, 0.3, 0.1, 0.03)] + [big * 10.0**-k for k in range(2, 13)]
    vals = sorted({s * m for m in mags for s in (1.0, -1.0)})
    rows = [[a, b] for a in vals for b in vals] + [[a, b, -a] for a in vals[::3] for b in vals[::3]]
    x = _as(np.array(rows[: len(vals) ** 2]), dtype)
    x3 = _as(np.array(rows[len(vals) ** 2 :]), dtype)
    for arr in (x, x3):
        arr = arr[np.isfinite(arr.astype(np.float64)).all(axis=1)]
        for name in ("softmax", "log_softmax"):
            out = FUNCTIONS[name][0](arr).astype(np.float64)
            assert not np.isnan(out).any(), (name, arr[np.isnan(out).any(axis=1)][:3])
        assert not np.isnan(impl.logsumexp(arr).astype(np.float64)).any()
    reproducer = _as([1.616645611598377e308, 4.996016272442588e307], "float64")
    if fmt.name == "float64":
        assert (impl.softmax(reproducer) == oracle.softmax(reproducer)).all()
        _check("softmax", reproducer)
        _check("softmax", _as([-1e308, -1e307], "float64"))


@pytest.mark.parametrize("c", range(1, 16))
def test_short_row_reductions_match_numpy(c):
    """The column-wise reductions of short rows (``_core.eft.short_row_sums``/``short_row_max``)
    give NumPy's ``sum(axis=1)``/``max(axis=1)`` bit for bit (so the short-row speed-up leaves the
    outputs unchanged); zeros, NaN and infinities included."""
    from softlog_numerics._core.eft import short_row_max, short_row_sums

    rng = np.random.default_rng(c)
    for t in range(12):
        E = np.exp(rng.standard_normal((257, c)) * rng.uniform(0.1, 40.0))
        E[rng.random(E.shape) < 0.1] = 0.0
        if t % 3 == 0:
            E[rng.random(E.shape) < 0.03] = np.nan
            E[rng.random(E.shape) < 0.03] = np.inf
        np.testing.assert_array_equal(short_row_sums(E).view(np.int64), E.sum(axis=1).view(np.int64))
        np.testing.assert_array_equal(short_row_max(E).view(np.int64), E.max(axis=1).view(np.int64))


def test_one_term_rows_are_the_scaled_sum_rows(monkeypatch):
    """The vectorised recompute of rows whose sum has one term or none after underflow (two-class
    rows with a gap beyond ~745, and rows whose other entries are all far below) gives the bits of
    the row-by-row ``_scaled_sum_row`` (proofs/log_softmax.md, Theorem LSE1 (c))."""
    rng = np.random.default_rng(4)
    x = np.zeros((400, 3))
    x[:, 0] = rng.uniform(-50, 50, 400)
    x[:, 1] = x[:, 0] - rng.uniform(740, 3e5, 400)
    x[:, 2] = np.where(rng.random(400) < 0.5, -np.inf, x[:, 0] - rng.uniform(2e6, 1e300, 400))
    fast = [f(x) for f in (impl.log_softmax, impl.softmax, impl.logsumexp)]
    monkeypatch.setattr(impl, "_one_term_rows", lambda *args: None)
    slow = [f(x) for f in (impl.log_softmax, impl.softmax, impl.logsumexp)]
    for a, b in zip(fast, slow):
        assert np.array_equal(a.view(np.uint64), b.view(np.uint64))


# ---------------------------------------------------------------------------------------------
# Narrow logsumexp is correctly rounded (Theorem LSE2 (b)).


def _log_probability_rows(dtype, rows: int, n: int, seed: int):
    """Rows of rounded log-probabilities: ``logsumexp`` cancels to about 0, the rows that stage 1
    cannot decide."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 4.0, (rows, n))
    return _as(z - scipy.special.logsumexp(z, axis=1, keepdims=True), dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("stages", ["all", "no float64 stage", "row-wise"])
def test_narrow_logsumexp_is_correctly_rounded(dtype, stages, monkeypatch):
    """Bit for bit the oracle on cancelling rows (stages 2 and 3) and on plain ones (stages 0 and
    1), with and without a temperature; ``"no float64 stage"`` skips stage 0 (every row to the
    double-double stage 1), ``"row-wise"`` also sends every row stage 1 leaves to the row-wise
    stage 2 instead of the vectorised stage 2a (Theorem LSE2 (b), (c))."""
    vectorised = stages != "row-wise"
    if stages != "all":
        monkeypatch.setattr(impl, "_lse_narrow_float64", lambda X, *args: np.zeros(X.shape[0], dtype=bool))
    if not vectorised:
        monkeypatch.setattr(impl, "_lse_retry_narrow", lambda X, g0, rows, *args: np.zeros(rows.size, dtype=bool))
    rng = np.random.default_rng(7)
    cases = [
        _log_probability_rows(dtype, 600 if vectorised else 150, 5, 1),
        _log_probability_rows(dtype, 200 if vectorised else 50, 40, 2),
        _as(rng.normal(0.0, 30.0, (400, 9)), dtype),
        _as(np.vstack([rng.normal(0.0, 5.0, (2, 40000)), np.full((1, 40000), np.nan)]), dtype),  # two chunks
    ]
    for x in cases:
        for T in (1.0, 0.3) if vectorised else (1.0,):
            got = impl.logsumexp(x, temperature=T).astype(np.float64)
            want = oracle.logsumexp(x, temperature=T).astype(np.float64)
            same = (got == want) & (np.signbit(got) == np.signbit(want)) | np.isnan(got) & np.isnan(want)
            assert same.all(), (T, x[~same][:3], got[~same][:3], want[~same][:3])


# ---------------------------------------------------------------------------------------------
# Narrow log_softmax is correctly rounded (Theorem LSE10).


def _narrow_log_softmax_cases(dtype, small: bool):
    """Rows that reach every stage: plain logits, log-probabilities, a dominant class (tiny ``L``,
    offsets that are midpoints of the format), mixed scales, integers, the range's edges, and (not
    ``small``) a row longer than one chunk."""
    rng = np.random.default_rng(11)
    r = 12 if small else 1
    x = rng.normal(0.0, 3.0, (300 // r, 8))
    x[:, 0] += rng.uniform(5.0, 40.0, 300 // r)
    big = FORMATS[dtype].max
    cases = [
        _as(rng.normal(0.0, 5.0, (200 // r, 40)), dtype),
        _log_probability_rows(dtype, 300 // r, 6, 3),
        _as(x, dtype),
        _as(rng.normal(0.0, 1.0, (60 // r, 50)) * rng.choice([0.01, 1.0, 100.0, 1e4], (60 // r, 1)), dtype),
        _as(rng.integers(-30, 30, (300 // r, 5)), dtype),
        _as([[big, -big, 0.0], [-big, 1e-30, 2.0], [1e-40, -1e-42, 0.0], [big, big * 0.5, -np.inf]], dtype),
        _as([[0.0, -9.875, -12.0, -11.9375]], dtype),
        # a NaN row in the sub-tile of rows whose s underflows (the nudge of LSE5 (c) still applies)
        _as(np.vstack([np.full((1, 12), np.nan), rng.normal(0.0, 1e4, (40 // r, 12))]), dtype),
    ]
    if not small:
        cases.append(_as(rng.normal(0.0, 5.0, (2, 40000)), dtype))
    return cases


def _flag_every_element(monkeypatch):
    """Stage 1 of narrow log_softmax and softmax flags every element of the tested rows: a radius
    of ``2**(q-1)`` float64 steps (and, for softmax, a subnormal-grid margin of 1/2)."""
    radius = impl._narrow_radius
    monkeypatch.setattr(impl, "_narrow_radius", lambda *a: (radius(*a)[0], 1 << (impl.fraction_bits(a[3]) - 1)))


_ORACLE_CACHE: dict = {}


def _oracle_cached(name: str, x, T: float):
    """``oracle.<name>(x, temperature=T)``, computed once per process for the inputs that the
    stage-by-stage tests share (with a temperature the oracle takes its interval loop)."""
    key = (name, x.dtype.str, x.shape, x.tobytes(), T)
    if key not in _ORACLE_CACHE:
        _ORACLE_CACHE[key] = getattr(oracle, name)(x, temperature=T)
    return _ORACLE_CACHE[key]


def _no_exact_sum(X, fmt, tau, out, rows, cols, log=True):
    """``_log_softmax_exact_sum`` deciding nothing (to test the later stages)."""
    return np.zeros(rows.size, dtype=bool)


def _only_stage(monkeypatch, stage: int) -> None:
    """Let only ``stage`` of narrow log_softmax / softmax decide the elements that reach it: 1 all
    stages; 2 flag every element at stage 1; 3 also switch off the exact float64 sum; 4 also every
    double-double decision (the decimal fallback decides)."""
    if stage > 1:
        _flag_every_element(monkeypatch)
    if stage > 2:
        monkeypatch.setattr(impl, "_log_softmax_exact_sum", _no_exact_sum)
    if stage > 3:
        monkeypatch.setattr(impl, "decided_dd", lambda yh, yl, err, fmt: (yh, np.zeros(np.shape(yh), dtype=bool)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("stage", [1, 2, 3, 4])
def test_narrow_log_softmax_is_correctly_rounded(dtype, stage, monkeypatch):
    """Bit for bit the oracle, with and without a temperature (bfloat16 ``[0, -9.875, -12]`` at
    ``T = 0.001`` was 1 ULP off before rows with an underflowing ``s`` were tested). ``stage`` > 1 flags every element
    at stage 1 and lets only that stage decide: 2 the exact float64 sum
    (``_log_softmax_exact_sum``), 3 the double-double row scalars, 4 the decimal fallback (on a
    smaller set of rows)."""
    _only_stage(monkeypatch, stage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the cast of the range's edges
        cases = _narrow_log_softmax_cases(dtype, small=stage == 4)
    for x in cases:
        for T in (1.0, 0.3, 0.001):  # 0.001: rows whose s underflows, inexact offsets (LSE10 (f))
            got = impl.log_softmax(x, temperature=T).astype(np.float64)
            want = _oracle_cached("log_softmax", x, T).astype(np.float64)
            same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
            assert same.all(), (T, x[~same][:3], got[~same][:3], want[~same][:3])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("stage", [1, 2, 3, 4])
def test_narrow_softmax_is_correctly_rounded(dtype, stage, monkeypatch):
    """Bit for bit the oracle, with and without a temperature (Theorem LSE11). ``stage`` > 1 flags
    every element at stage 1 and lets only that stage decide: 2 the exact float64 sum
    (``_log_softmax_exact_sum``), 3 the double-double exponential of the log-softmax value from
    the row scalars and from exact rows, 4 the decimal fallback (on a smaller set of rows). The
    cases include results subnormal in the format (wide rows; most float16 results of long
    rows)."""
    _only_stage(monkeypatch, stage)
    rng = np.random.default_rng(11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the cast of the range's edges
        cases = _narrow_log_softmax_cases(dtype, small=stage == 4)
        cases += [
            _as(rng.normal(0.0, 30.0, (80 if stage < 4 else 6, 16)), dtype),  # results down to the subnormals
            _as(np.zeros((3, 8)), dtype),  # 1/8 exactly
        ]
        if stage < 4:
            cases.append(_as(rng.normal(-3.0, 1.0, (20, 3000)), dtype))  # float16: mostly subnormal results
    for x in cases:
        for T in (1.0, 0.3, 0.001):
            got = impl.softmax(x, temperature=T).astype(np.float64)
            want = _oracle_cached("softmax", x, T).astype(np.float64)
            same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
            assert same.all(), (T, x[~same][:3], got[~same][:3], want[~same][:3])


def test_narrow_softmax_stage_1_decides_almost_everything(monkeypatch):
    """On plain logits, stage 1 of narrow softmax leaves fewer than 1 element in 10**4 to the later
    stages (Theorem LSE11: the radius is a few thousand float64 steps out of 2**29 or more)."""
    seen = []
    retry = impl._softmax_retry
    monkeypatch.setattr(impl, "_softmax_retry", lambda X, fmt, tau, out, und: (seen.extend(und), retry(X, fmt, tau, out, und)))
    rng = np.random.default_rng(5)
    total = 0
    for dtype in ("float16", "bfloat16", "float32"):
        x = _as(rng.normal(0.0, 5.0, (400, 500)), dtype)
        impl.softmax(x)
        total += x.size
    assert sum(c.size for _, c in seen) < total * 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_narrow_log_softmax_is_correctly_rounded_at_scale(dtype):
    """About 10 million elements per format (plain and wide-scale logits, log-probabilities,
    dominant classes; rows of 10 to 32 000), bit for bit the oracle's fast path (Theorem LSE10)."""
    rng = np.random.default_rng(2026)
    x = rng.normal(0.0, 3.0, (40000, 8))
    x[:, 0] += rng.uniform(0.0, 60.0, 40000)
    cases = [
        _as(rng.normal(0.0, 5.0, (256, 32000)), dtype),
        _as(rng.normal(0.0, 1.0, (2000, 128)) * rng.choice([0.01, 1.0, 30.0, 1e3], (2000, 1)), dtype),
        _log_probability_rows(dtype, 40000, 10, 5),
        _as(x, dtype),
    ]
    for x in cases:
        got = impl.log_softmax(x).astype(np.float64)
        want = oracle.log_softmax(x).astype(np.float64)
        same = (got == want) & (np.signbit(got) == np.signbit(want))
        assert same.all(), (x[~same.any(axis=1)][:2], got[~same][:3], want[~same][:3])


def test_log_softmax_offset_at_a_midpoint_beyond_the_nudge():
    """float32 ``[1024, 1010.54, -2**34]``: the offset ``T = -(2**34 + 2**10)`` is a float32
    midpoint and ``L = 1.43e-6`` is below half a float64 step of ``T`` but above ``_NUDGE_L``, so
    ``fl(T - L) = T`` and a tie-to-even gives ``-2**34``; the exact value lies beyond ``T``:
    ``-(2**34 + 2**11)`` (faithful before Theorem LSE10, correctly rounded now)."""
    x = np.array([[1024.0, 1024.0 - 13.46, -(2.0**34)]], dtype=np.float32)
    got = impl.log_softmax(x)
    assert got[0, 2] == np.float32(-(2.0**34 + 2.0**11))
    assert got.tobytes() == oracle.log_softmax(x).tobytes()


def test_narrow_log_softmax_stage_1_decides_almost_everything(monkeypatch):
    """The rounding test of stage 1 leaves at most a few elements to stage 2 on (256, 32000)
    float32 logits N(0, 5^2) (the cost of correct rounding stays small; measured: none), and some on
    rows whose offsets are midpoints of the format (a dominant class: ``L < 2**-20``)."""
    seen = []
    retry = impl._log_softmax_retry
    monkeypatch.setattr(impl, "_log_softmax_retry", lambda X, fmt, tau, out, und: (seen.append(und), retry(X, fmt, tau, out, und)))
    rng = np.random.default_rng(3)
    impl.log_softmax(_as(rng.normal(0.0, 5.0, (256, 32000)), "float32"))
    assert sum(c.size for und in seen for _, c in und) <= 8
    seen.clear()
    impl.log_softmax(_as([[40.0, 2.0**-19, 3 * 2.0**-19]], "float32"))  # 40 - 2**-19: a midpoint
    assert seen and sum(c.size for und in seen for _, c in und) >= 1


def test_rounds_once_refuses_a_straddled_midpoint():
    """An enclosure holding a float32 midpoint is undecided; one just beside it is decided."""
    mid = 1.0 + 2.0**-24  # halfway between 1 and the next float32
    c, ok = rounds_once(np.array([mid, mid + 2.0**-40]), np.zeros(2), np.array([2.0**-45, 2.0**-45]), FORMATS["float32"])
    assert ok.tolist() == [False, True]
    assert c[1] == 1.0 + 2.0**-23


def test_decimal_stage_decides_tiny_sums_beside_exact_offsets(monkeypatch):
    """float32 logits ~ N(0, 1e4**2) at T = 7: the offsets (x_j - a)/T are often float32 numbers or
    midpoints while L is about e**-1000, so the two-sided decimal test needed about 480 digits
    (25 s for 300 rows of 128, 400 s for two rows of 40,000); the one-sided test of LSE10 (e)
    decides them at the first precision, 60 digits, bit for bit the oracle's result."""
    seen = []
    real = impl.Context

    def context(*a, **k):
        seen.append(k.get("prec"))
        return real(*a, **k)

    monkeypatch.setattr(impl, "Context", context)
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1e4, (40, 128)).astype(np.float32)
    for f in ("log_softmax", "logsumexp"):
        seen.clear()
        got = getattr(impl, f)(x, temperature=7.0)
        assert got.tobytes() == getattr(oracle, f)(x, temperature=7.0).tobytes()
        if f == "log_softmax":
            assert seen, "no entry reached the decimal stage: the case no longer tests it"
        assert max(seen, default=60) <= 60, sorted(set(seen))
