"""The algorithm zoo: the registry, strict evaluation in the working format, and the behaviours
each variant is in the zoo to show (measured against the oracle, with numbers).

Tolerances: the strict variants make no accuracy promise (they are measured, not trusted), so the
assertions here are about *format membership* (every intermediate is a number of the working
format: exact checks), about *exact* outputs that only a strict evaluation produces (a collapsed
3-pass log_softmax returns exactly 0 where any wider evaluation does not), and about orders of
magnitude that separate a cancelling formula from a stable one (thresholds stated per test, each
a factor of at least 10 away from the measured value).
"""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import mpmath
import numpy as np
import pytest

from softlog_numerics import algorithms as al
from softlog_numerics import oracle
from softlog_numerics._core.axes import check_probabilities
from softlog_numerics._core.formats import FORMATS, round_from_float64
from softlog_numerics.analysis import sweeps
from softlog_numerics.ulp import from_ordinal, ordinal, ulp_distance

DTYPES = list(FORMATS)
X0 = 1.0 / (math.e + 1.0)
DIV = ("softlog_entropy", "softlog_cross_entropy", "sld", "sld_sym")


def cast(x, d):
    return round_from_float64(np.asarray(x, dtype=np.float64), FORMATS[d])


def sample_args(function, d, seed=0):
    """Small benign and adversarial inputs for one function."""
    f = FORMATS[d]
    rng = np.random.default_rng(seed)
    if function == "softlog":
        return (cast(np.concatenate([rng.uniform(0, 1, 40), [0.0, 1.0, X0, -0.1, 3.0]]), d),)
    if function in ("logsumexp", "log_softmax", "softmax"):
        rows = [sweeps.logit_blocks(f, rng, fam, 2, 9) for fam in ("random", "dominant", "masked", "near_tie")]
        return (np.concatenate(rows),)
    p = sweeps.probability_blocks(f, rng, "random", 4, 7)
    q = sweeps.probability_blocks(f, rng, "near_one_hot", 4, 7)
    return (p,) if function == "softlog_entropy" else (p, q)


# ---------------------------------------------------------------------------------------------
# Registry


REQUIRED = {
    "softlog": {"naive", "log1p", "centred", "production"},
    "logsumexp": {"naive", "shifted", "shifted_log1p", "online", "two_pass", "shifted_acc32", "production"},
    "log_softmax": {"naive", "shifted", "shifted_log1p", "online", "two_pass", "shifted_acc32", "production"},
    "softmax": {"naive", "shifted", "division_free", "online", "two_pass", "shifted_acc32", "production"},
    "softlog_entropy": {"naive", "centred", "centred_compensated", "production"},
    "softlog_cross_entropy": {"naive", "centred", "centred_compensated", "production"},
    "sld": {"direct_naive", "direct", "ratio", "ratio_compensated", "production"},
    "sld_sym": {"direct_naive", "direct", "ratio", "ratio_compensated", "production"},
}


def test_registry_has_every_required_variant_with_description_and_reference():
    assert set(al.REGISTRY) == set(al.FUNCTIONS) == set(REQUIRED)
    for f, names in REQUIRED.items():
        assert names <= set(al.REGISTRY[f]), (f, names - set(al.REGISTRY[f]))
        for v in al.variants(f):
            assert v.function == f and v.description and v.reference, v
            assert set(v.dtypes) <= set(DTYPES)
            assert v.strict == (v.name != "production")
    # float32 accumulation is declared, for the 16-bit formats only
    v = al.get("log_softmax", "shifted_acc32")
    assert v.dtypes == ("float16", "bfloat16")
    assert v.working_format("float16").name == "float32"
    assert al.get("log_softmax", "shifted").working_format("float16").name == "float16"


def test_unknown_names_and_bad_arguments_are_rejected_clearly():
    with pytest.raises(ValueError, match="unknown function"):
        al.variants("softplus")
    with pytest.raises(ValueError, match="unknown variant 'fast'"):
        al.get("softlog", "fast")
    with pytest.raises(ValueError, match="not float32"):
        al.evaluate("log_softmax", "shifted_acc32", np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="does not contain"):
        al.evaluate("softlog", "naive", np.zeros(3, np.float32), accumulate_dtype="float16")
    with pytest.raises(ValueError, match="same shape"):
        al.evaluate("sld", "ratio", np.full(3, 1 / 3), np.full(4, 0.25))


# ---------------------------------------------------------------------------------------------
# Strict evaluation: every intermediate is a number of the working format


@pytest.mark.parametrize("d", DTYPES)
@pytest.mark.parametrize("function", al.FUNCTIONS)
def test_every_strict_variant_keeps_every_intermediate_in_the_format(function, d):
    """check=True verifies at each operation that its operands are members of the format
    (16-bit: rounding them again changes nothing; 32/64-bit: the dtype is the format's)."""
    args = sample_args(function, d)
    for v in al.variants(function, d):
        if not v.strict:
            continue
        got = v(*args, check=True)
        assert got.dtype == FORMATS[d].dtype, (v.name, got.dtype)
        assert got.shape == (args[0].shape if v.kind != "reduce" else args[0].shape[:-1])


def test_the_check_catches_an_unrounded_or_upcast_intermediate():
    A = al.Arith("float16", check=True)
    one = A.const(1.0)
    with pytest.raises(AssertionError, match="not a float16 number"):
        A.add(one, np.float64(0.1))  # 0.1 is not a float16 number
    B = al.Arith("float32", check=True)
    with pytest.raises(AssertionError, match="operand of dtype float64"):
        B.add(B.const(1.0), np.float64(0.5))
    C = al.Arith("float32")
    with pytest.raises(AssertionError, match="silent upcast"):
        C.add(C.const(1.0), np.float64(0.5))  # NumPy would return float64


@pytest.mark.parametrize("d, ref", [("float16", np.float16), ("bfloat16", ml_dtypes.bfloat16)])
def test_emulated_basic_operations_are_the_formats_correctly_rounded_ones(d, ref):
    """NumPy's float16 and ml_dtypes' bfloat16 compute + - * / sqrt in float32 and round once,
    which is correctly rounded (24 >= 2p + 2); the float64 emulation must agree bit for bit."""
    rng = np.random.default_rng(1)
    f = FORMATS[d]
    a = from_ordinal(rng.integers(-int(ordinal(np.array(f.max, f.dtype))), int(ordinal(np.array(f.max, f.dtype))), 4000), f.dtype)
    b = from_ordinal(rng.integers(-int(ordinal(np.array(f.max, f.dtype))), int(ordinal(np.array(f.max, f.dtype))), 4000), f.dtype)
    A = al.Arith(d, check=True)
    xa, xb = A.input(a), A.input(b)
    with np.errstate(all="ignore"):
        for name, op in (("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("div", np.divide)):
            got = A.output(getattr(A, name)(xa, xb), f)
            want = op(a.astype(ref), b.astype(ref))
            assert np.array_equal(got.view(f.uint), want.view(f.uint)) or \
                np.all((ulp_distance(got, want) == 0) & (np.signbit(got) == np.signbit(want))), name
        got = A.output(A.sqrt(A.input(np.abs(a))), f)
        want = np.sqrt(np.abs(a).astype(ref))
        assert np.all(ulp_distance(got, want) == 0)


def _mp_rounded(fn, x, d):
    with mpmath.workprec(200):
        return np.array([oracle.round_to(fn(mpmath.mpf(float(v))), FORMATS[d].dtype)[()]
                         for v in x.astype(np.float64)], dtype=FORMATS[d].dtype)


PRIMITIVE_BOUND = {"float16": 1, "bfloat16": 1, "float32": 4, "float64": 1}
"""Max ULP of the working format's exp/log/log1p/expm1: 1 for the float64-libm emulation of the
16-bit formats and for float64 (the platform-libm hypothesis of the common brief); 4 for NumPy's
float32 SIMD functions (measured here: 2 on 1,500 points per function, 3 on 10**6 against float64)."""


@pytest.mark.parametrize("d", DTYPES)
def test_elementary_functions_of_the_working_format_against_mpmath(d):
    """The libm each working format uses, measured: max ULP <= PRIMITIVE_BOUND[d]."""
    f = FORMATS[d]
    rng = np.random.default_rng(2)
    A = al.Arith(d)
    lo = -min(80.0, -math.log(f.min_subnormal))
    hi = min(math.log(f.max), 80.0)
    cases = {
        "exp": (mpmath.exp, rng.uniform(lo, hi, 400)),
        "log": (mpmath.log, np.exp(rng.uniform(-30, 30, 400))),
        "log1p": (mpmath.log1p, rng.uniform(-0.99, 50, 400)),
        "expm1": (mpmath.expm1, rng.uniform(-20, 10, 400)),
    }
    worst = {}
    for name, (fn, x) in cases.items():
        x = x[np.abs(x) <= f.max]
        x = cast(x, d)
        got = A.output(getattr(A, name)(A.input(x)), f)
        worst[name] = float(ulp_distance(got, _mp_rounded(fn, x, d)).max())
    assert max(worst.values()) <= PRIMITIVE_BOUND[d], worst


# ---------------------------------------------------------------------------------------------
# What only a strict evaluation shows


@pytest.mark.parametrize("d, gap", [("float16", 8.0), ("float16", 16.94), ("bfloat16", 6.0),
                                    ("float32", 16.94), ("float64", 40.0)])
def test_shifted_three_pass_log_softmax_collapses_to_exactly_zero_past_the_gap(d, gap):
    """Past the collapse gap p ln 2, 1 + exp(-g) rounds to 1 in the format, so the 3-pass
    algorithm returns exactly 0 for the dominant class; the oracle's value is -log1p(exp(-g)) < 0
    (-3.355e-4 at fp16 gap 8: an evaluation in float32 or float64 would not return 0), and the
    log1p form recovers it within 1 ULP."""
    x = cast([gap, 0.0], d)
    want = oracle.log_softmax(x)
    assert float(want[0]) < 0
    assert float(al.evaluate("log_softmax", "shifted", x)[0]) == 0.0
    assert float(al.evaluate("log_softmax", "online", x)[0]) == 0.0
    assert ulp_distance(al.evaluate("log_softmax", "shifted_log1p", x), want).max() <= 1
    if d == "float16" and gap == 8.0:
        # float32 accumulation has not collapsed yet at g = 8 (its gap is 16.6)
        got = al.evaluate("log_softmax", "shifted_acc32", x)
        assert float(got[0]) == float(want[0]) == float(np.float16(-0.0003355))
        # ... and any variant run in float64 neither
        assert float(al.evaluate("log_softmax", "shifted", x, accumulate_dtype="float64")[0]) < 0


def test_float32_accumulation_collapses_at_the_float32_gap_for_bfloat16_input():
    """bfloat16 logits [20, 0]: the float32 sum 1 + exp(-20) rounds to 1, so shifted_acc32 returns
    0 while the truth -2.06e-9 is a normal bfloat16 number (thousands of bfloat16 ULPs away)."""
    x = cast([20.0, 0.0], "bfloat16")
    got = al.evaluate("log_softmax", "shifted_acc32", x)
    want = oracle.log_softmax(x)
    assert float(got[0]) == 0.0
    assert ulp_distance(got, want)[0] > 10_000


@pytest.mark.parametrize("d, naive_min", [("float16", 1000), ("bfloat16", 10_000),
                                          ("float32", 10**8), ("float64", 10**18)])
def test_naive_softlog_loses_every_digit_at_x0_while_the_centred_form_does_not(d, naive_min):
    """The 17 numbers of the format nearest x0 = 1/(e+1): naive log(a x + b) and -1 + log1p(c x)
    are off by at least ``naive_min`` ULPs (measured 3,026 / 15,299 / 8.5e8 / 4.4e18), the centred
    form by at most 3 (measured 2 / 1 / 1 / 1), the centred form in the wider format by 0."""
    f = FORMATS[d]
    c = int(ordinal(cast(X0, d)))
    x = from_ordinal(np.arange(c - 8, c + 9), f.dtype)
    want = oracle.softlog(x)
    err = {v.name: float(ulp_distance(v(x), want).max()) for v in al.variants("softlog", d) if v.strict}
    assert err["naive"] >= naive_min and err["log1p"] >= naive_min, err
    assert err["centred"] <= 3, err
    if d != "float64":
        assert err["centred_wide"] == 0, err


def test_division_free_softmax_picks_up_the_error_of_the_rounded_lse():
    """float16 logits near -290: the LSE is rounded to a multiple of 0.25, exp(x - LSE) inherits an
    absolute error up to 0.125 in its argument, i.e. ~12%: > 50 ULPs (measured 110), while the
    shifted division stays within 8 ULPs (measured 3)."""
    rng = np.random.default_rng(5)
    x = cast(-290.0 + rng.uniform(-8, 0, (8, 7)), "float16")
    want = oracle.softmax(x)
    df = ulp_distance(al.evaluate("softmax", "division_free", x), want).max()
    sh = ulp_distance(al.evaluate("softmax", "shifted", x), want).max()
    assert df > 50 and sh <= 8, (df, sh)


@pytest.mark.parametrize("d", DTYPES)
def test_online_and_two_pass_agree_with_the_oracle_on_benign_rows(d):
    """Logits uniform in [-4, 4], 100 per row: no collapse, no overflow; every log_softmax/softmax
    variant except the naive one is within 12 ULPs (each is a short chain of roundings) — a check
    that the lane-merged online normalizer and the mantissa/exponent sum are implemented right."""
    x = cast(np.random.default_rng(7).uniform(-4, 4, (6, 100)), d)
    for function in ("log_softmax", "softmax", "logsumexp"):
        want = getattr(oracle, function)(x)
        for name in ("shifted", "shifted_log1p" if function != "softmax" else "division_free", "online", "two_pass"):
            e = ulp_distance(al.evaluate(function, name, x), want).max()
            assert e <= 12, (function, name, e)


def test_ratio_form_of_sld_avoids_the_cancellation_of_two_logs():
    """float32, q a few positions from p (the 'close' pairs): L(p) - L(q) as a difference of two
    rounded logs loses the leading digits of each term; the log1p ratio form does not. Measured
    max ULP: direct >= 1e3 (thousands), ratio <= 20."""
    rng = np.random.default_rng(11)
    p, q = sweeps.pair_blocks(FORMATS["float32"], rng, "close", 30, 10)
    want = oracle.sld(p, q, validate=False)
    direct = ulp_distance(al.evaluate("sld", "direct", p, q), want)
    ratio = ulp_distance(al.evaluate("sld", "ratio", p, q), want)
    assert direct.max() >= 1e3 and ratio.max() <= 20, (direct.max(), ratio.max())


def test_compensated_sum_is_faithful_where_the_plain_pairwise_sum_is_not():
    """float16 rows of 64 values of mixed signs and magnitudes: every float16 sum is exact in
    float64, so the correctly rounded sum is known exactly. Compensated: <= 1 ULP on every row;
    plain pairwise: > 1 ULP on some row."""
    rng = np.random.default_rng(3)
    x = cast(rng.normal(0, 1, (200, 64)) * 2.0 ** rng.integers(-6, 6, (200, 64)), "float16")
    exact = x.astype(np.float64).sum(axis=1)  # exact: 64 float16 values fit in float64's 53 bits
    want = cast(exact, "float16")
    A = al.Arith("float16", check=True)
    comp = A.output(A.compensated_sum(A.input(x)), FORMATS["float16"])
    plain = A.output(A.sum(A.input(x)), FORMATS["float16"])
    assert ulp_distance(comp, want).max() <= 1
    assert ulp_distance(plain, want).max() > 1


@pytest.mark.parametrize("d", ["float16", "bfloat16"])
def test_two_sum_is_error_free_in_the_emulated_formats(d):
    """s + t == a + b exactly (checked with Fractions) for random pairs of the format."""
    f = FORMATS[d]
    rng = np.random.default_rng(4)
    top = int(ordinal(np.array(f.max / 4, f.dtype)))
    a = from_ordinal(rng.integers(-top, top, 500), f.dtype)
    b = from_ordinal(rng.integers(-top, top, 500), f.dtype)
    A = al.Arith(d, check=True)
    s, t = A.two_sum(A.input(a), A.input(b))
    for ai, bi, si, ti in zip(a.astype(float), b.astype(float), s, t):
        assert Fraction(float(si)) + Fraction(float(ti)) == Fraction(ai) + Fraction(bi)


def test_split_constants_carry_about_twice_the_precision():
    """``ln2_hi`` has at most ``max(2, p // 2 - 1)`` significant bits (so ``n * ln2_hi`` is exact
    for ``|n| < 2**(p - hi_bits)``), and ``hi + lo`` matches ln 2 and x0 = 1/(e+1) to within
    half an ULP of ``lo`` (checked against 200-bit mpmath values)."""
    with mpmath.workprec(200):
        ln2 = mpmath.log(2)
        x0 = 1 / (mpmath.e + 1)
        for d, f in FORMATS.items():
            c = al._constants(d)
            hi_bits = max(2, f.precision // 2 - 1)
            assert Fraction(c["ln2_hi"]).denominator.bit_length() - 1 <= hi_bits, d
            for hi, lo, exact in ((c["ln2_hi"], c["ln2_lo"], ln2), (c["x0_hi"], c["x0_lo"], x0)):
                err = abs(mpmath.mpf(hi) + mpmath.mpf(lo) - exact)
                half_ulp_lo = mpmath.mpf(2) ** (math.frexp(abs(lo))[1] - f.precision - 1)
                assert err <= half_ulp_lo, (d, hi, lo)
                assert abs(lo) <= abs(hi) * 2.0 ** (1 - min(hi_bits, f.precision)), (d, hi, lo)


# ---------------------------------------------------------------------------------------------
# The families the sweeps draw


def test_numpy_families_cover_every_family_of_the_strategies():
    from softlog_numerics.strategies import LOGIT_FAMILIES, PROBABILITY_FAMILIES

    rng = np.random.default_rng(0)
    for d, f in FORMATS.items():
        for fam in LOGIT_FAMILIES:
            x = sweeps.logit_blocks(f, rng, fam, 2, 50 if fam != "wide" else 32000)
            assert x.dtype == f.dtype and x.shape[0] == 2
        for fam in PROBABILITY_FAMILIES:
            p = sweeps.probability_blocks(f, rng, fam, 3, 9)
            assert p.dtype == f.dtype
            check_probabilities(p, -1, "p")
        for kind in sweeps.PAIR_KINDS:
            p, q = sweeps.pair_blocks(f, rng, kind, 3, 9)
            assert p.shape == q.shape and p.dtype == q.dtype == f.dtype
            check_probabilities(q, -1, "q")
