"""The derivative oracle (``softlog_numerics.oracle.grad``) and the loss oracle
(``oracle.cross_entropy``) against references that share none of their code (proofs/grad.md,
Theorem G1):

* plain mpmath evaluation (no intervals, no Ziv loop) at ``600 + 3 * min(max|x_i - m|, 2000)``
  bits plus the bits of the smallest gap, written as an exact rational plus a part that is small
  when a class dominates (``g_k - S`` plus ``q_k S``; ``(v_j - v_k) + sum_i (v_k - v_i) p_i``),
  summed as fractions and rounded by ``exact_round`` (tests/test_oracle.py, which walks the format
  with ``nextafter`` and keeps the sign of a value that rounds to zero): a rational midpoint plus
  ``exp(-10**308)`` rounds the right way;
* exact fractions where the value is rational: equal logits (``p = 1/n``), one finite logit,
  ``sum(g) = 0``, cotangents constant on every group of equal logits;
* the special-value table of the module docstring, compared exactly.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_oracle import exact_round, mpf_exact, same

from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS, format_of, round_from_float64
from softlog_numerics.oracle import grad as G
from softlog_numerics.strategies import cotangents, logit_vectors, probability_vectors

DTYPES = list(FORMATS)
MORE = settings(max_examples=max(100, settings.default.max_examples))
# the families whose rows the reference can resolve (huge offsets are clamped at -2000)
FAMILIES = ("random", "dominant", "near_tie", "masked", "subnormal", "all_equal", "huge")


def _bits(row) -> int:
    """600 bits, plus what resolves ``1 - p_j = O(exp(x_j - m))`` for gaps up to 2000 and
    ``exp(d) - 1`` for the smallest non-zero gap ``d``."""
    finite = [v for v in row if v != -math.inf]
    if not finite:
        return 600
    m = max(finite)
    gaps = [m - v for v in finite if v != m]
    if not gaps:
        return 600
    small = min(gaps)
    tiny = -math.frexp(small)[1] if small < 1 else 0
    return 600 + 3 * int(min(2000.0, max(gaps))) + max(0, tiny)


def _probabilities(row):
    """``(p, lse, N)``: exact fractions (``N = Fraction``) when the finite logits are all equal
    (``p = 1/n`` on them, ``0`` on ``-inf``; ``lse`` is then not needed exactly and is an mpf),
    else mpf values at the current precision (``N = mpmath.mpf``)."""
    finite = [v for v in row if v != -math.inf]
    m = max(finite)
    if all(v == m for v in finite):
        p = [Fraction(0) if v == -math.inf else Fraction(1, len(finite)) for v in row]
        return p, mpmath.mpf(m) + mpmath.log(len(finite)), Fraction
    e = [mpmath.mpf(0) if v == -math.inf else mpmath.exp(mpmath.mpf(v) - m) for v in row]
    D = mpmath.fsum(e)
    return [t / D for t in e], m + mpmath.log(D), mpmath.mpf


def _round(v, dtype):
    return exact_round(mpf_exact(v) if isinstance(v, mpmath.mpf) else v, dtype)


def _round_row(values, dtype):
    return np.array([_round(v, dtype) for v in values], dtype=format_of(dtype).dtype)


def _F(v):
    """An mpf or Fraction as an exact Fraction (mpf magnitudes clamped at ``2**-4000``, which
    round like them in every format)."""
    return mpf_exact(v) if isinstance(v, mpmath.mpf) else Fraction(v)


def _argmax(row):
    return max(range(len(row)), key=lambda i: row[i])


def ref_log_softmax_vjp(x, g):
    """``g_j - p_j S`` as the exact ``g_j`` minus ``p_j S``, and at the argmax ``k`` as the exact
    ``g_k - S`` plus ``q_k S`` (``q_k`` the sum of the other probabilities): the small part is
    carried as a separate number, so a rational midpoint plus ``exp(-10**308)`` rounds right."""
    row, gr = x.astype(np.float64).tolist(), g.astype(np.float64).tolist()
    k = _argmax(row)
    S = sum((Fraction(v) for v in gr), Fraction(0))
    with mpmath.workprec(_bits(row)):
        p, _, N = _probabilities(row)
        Sm = N(S.numerator) / S.denominator
        out = []
        for j, gj in enumerate(gr):
            if j == k:
                q = sum((p[i] for i in range(len(row)) if i != k), N(0))
                out.append(Fraction(gj) - S + _F(q * Sm))
            else:
                out.append(Fraction(gj) - _F(p[j] * Sm))
    return _round_row(out, x.dtype)


def _spread(row, v, p, N):
    """``T = sum_{i != k} (v_k - v_i) p_i`` with ``k`` the argmax: ``v_j - sum p v = (v_j - v_k) + T``."""
    k = _argmax(row)
    return k, sum(((N(v[k]) - N(v[i])) * p[i] for i in range(len(row)) if i != k), N(0))


def ref_softmax_vjp(x, g):
    row, gr = x.astype(np.float64).tolist(), g.astype(np.float64).tolist()
    with mpmath.workprec(_bits(row)):
        p, _, N = _probabilities(row)
        k, T = _spread(row, gr, p, N)
        out = [pj * ((N(gj) - N(gr[k])) + T) for gj, pj in zip(gr, p)]
    return _round_row(out, x.dtype)


def ref_log_softmax_jvp(x, dx):
    row, d = x.astype(np.float64).tolist(), dx.astype(np.float64).tolist()
    with mpmath.workprec(_bits(row)):
        p, _, N = _probabilities(row)
        k, T = _spread(row, d, p, N)
        out = [Fraction(dj) - Fraction(d[k]) + _F(T) for dj in d]
    return _round_row(out, x.dtype)


def ref_logsumexp_jvp(x, dx):
    row, d = x.astype(np.float64).tolist(), dx.astype(np.float64).tolist()
    with mpmath.workprec(_bits(row)):
        p, _, N = _probabilities(row)
        return np.asarray(_round(sum((pk * N(dk) for pk, dk in zip(p, d)), N(0)), x.dtype))


def ref_cross_entropy(x, t, lam):
    """``sum_k t_k (lse - x_k) + lam lse**2`` (t exact fractions), and its gradient ``p (1 + 2 lam
    lse) - t`` (exact fractions for equal logits without z-loss)."""
    row = x.astype(np.float64).tolist()
    with mpmath.workprec(_bits(row)):
        p, lse, N = _probabilities(row)
        tm = [mpmath.mpf(tk.numerator) / tk.denominator for tk in t]
        loss = mpmath.fsum(tk * (lse - v) for tk, v in zip(tm, row) if tk) + mpmath.mpf(lam) * lse**2
        if N is Fraction and lam == 0:
            grad = [pk - tk for pk, tk in zip(p, t)]
        else:
            pm = [mpmath.mpf(pk.numerator) / pk.denominator if N is Fraction else pk for pk in p]
            grad = [pk * (1 + 2 * mpmath.mpf(lam) * lse) - tk for pk, tk in zip(pm, tm)]
    return np.asarray(_round(loss, x.dtype)), _round_row(grad, x.dtype)


def _usable(x) -> bool:
    """Rows the VJPs are finite on: no NaN or +inf, at least one finite logit."""
    v = x.astype(np.float64)
    return bool(np.all(~np.isnan(v) & (v != np.inf)) and np.any(np.isfinite(v)))


# ---------------------------------------------------------------------------------------------
# Against plain mpmath


@pytest.mark.parametrize("dtype", DTYPES)
@MORE
@given(data=st.data())
def test_vjps_match_mpmath(dtype, data):
    """log_softmax and softmax VJPs == mpmath rounded once, rows of 1 to 5 logits of every family
    and cotangents of every family (one-hot, ones, near-softmax and near-constant cancel)."""
    x = data.draw(logit_vectors(dtype, 1, 5, families=FAMILIES))
    if not _usable(x):
        return
    g = data.draw(cotangents(dtype, x))
    assert same(G.log_softmax(x, g), ref_log_softmax_vjp(x, g)), (x, g)
    assert same(G.softmax(x, g), ref_softmax_vjp(x, g)), (x, g)
    assert same(G.softmax_jvp(x, g), ref_softmax_vjp(x, g)), (x, g)
    assert same(G.log_softmax_jvp(x, g), ref_log_softmax_jvp(x, g)), (x, g)
    assert same(G.logsumexp_jvp(x, g), ref_logsumexp_jvp(x, g)), (x, g)


@pytest.mark.parametrize("dtype", DTYPES)
@MORE
@given(data=st.data())
def test_logsumexp_vjp_is_g_times_softmax(dtype, data):
    """The logsumexp VJP with ``g = 1`` is the correctly rounded softmax, and with ``g = 2**k``
    its exact scaling (no rounding is added by a power of two, away from under/overflow)."""
    x = data.draw(logit_vectors(dtype, 1, 5, families=FAMILIES))
    if not _usable(x):
        return
    assert same(G.logsumexp(x, np.asarray(1.0, x.dtype)), oracle.softmax(x))
    two = np.asarray(2.0, x.dtype)
    sm = oracle.softmax(x).astype(np.float64)
    masked = x.astype(np.float64) == -np.inf  # p = 0 exactly: the only zeros that scale
    if np.all(masked | (sm >= format_of(dtype).tiny)):
        assert same(G.logsumexp(x, two), (2 * sm).astype(x.dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@MORE
@given(data=st.data())
def test_cross_entropy_matches_mpmath(dtype, data):
    """cross_entropy (index and probability targets, label smoothing, z-loss) and its gradient ==
    mpmath rounded once."""
    x = data.draw(logit_vectors(dtype, 1, 5, families=("random", "dominant", "near_tie", "all_equal", "subnormal")))
    n = x.shape[0]
    eps = data.draw(st.sampled_from([0.0, 0.1, 1.0, 2.0**-20]))
    lam = data.draw(st.sampled_from([0.0, 0.0, 1e-4]))
    if data.draw(st.booleans()):
        y = data.draw(st.integers(0, n - 1))
        target = np.asarray(y)
        base = [Fraction(int(k == y)) for k in range(n)]
    else:
        target = data.draw(probability_vectors(dtype, n, n))
        base = [Fraction(float(v)) for v in target.astype(np.float64)]
    E = Fraction(eps)
    t = [(1 - E) * b + E / n for b in base]
    want_loss, want_grad = ref_cross_entropy(x, t, lam)
    got = oracle.cross_entropy(x, target, label_smoothing=eps, z_loss=lam)
    assert same(got, want_loss), (x, target, eps, lam)
    gg = G.cross_entropy(x, target, np.asarray(1.0, x.dtype), label_smoothing=eps, z_loss=lam)
    assert same(gg, want_grad), (x, target, eps, lam)


# ---------------------------------------------------------------------------------------------
# Exact cases and special values


@pytest.mark.parametrize("dtype", DTYPES)
def test_known_values(dtype):
    dt = format_of(dtype).dtype
    # PyTorch's float64 defect (field notes section 9): the exact VJP is [5.55e-17, -5.55e-17]
    x = np.array([37.42994775023705, 0.0])
    v = G.log_softmax(x, np.array([1.0, 0.0]))
    assert v[0] == 5.551115123125776e-17 and v[0] == -v[1]
    # equal logits: p = 1/3, v = g - S/3 and w = (g - mean)/3 exactly
    x = np.zeros(3, dt)
    g = np.array([1.0, 2.0, 6.0], dt)
    assert same(G.log_softmax(x, g), np.array([exact_round(Fraction(1) - 3, dt), exact_round(Fraction(-1), dt), exact_round(Fraction(3), dt)], dt))
    assert same(G.softmax(x, g), np.array([exact_round(Fraction(-2, 3), dt), exact_round(Fraction(-1, 3), dt), exact_round(Fraction(1), dt)], dt))
    # sum(g) = 0: the log_softmax VJP is g itself
    x = np.array([1.0, -2.0, 0.5], dt)
    g = np.array([1.0, -3.0, 2.0], dt)
    assert same(G.log_softmax(x, g), g)
    # a constant cotangent: softmax VJP exactly 0, log_softmax JVP exactly 0
    g = np.full(3, 0.75, dt)
    assert same(G.softmax(x, g), np.zeros(3, dt))
    assert same(G.log_softmax_jvp(x, g), np.zeros(3, dt))
    # constant on each group of equal logits (the means agree): softmax VJP 0 there
    x = np.array([1.0, 1.0, 0.0], dt)
    g = np.array([1.0, 3.0, 2.0], dt)
    w = G.softmax(x, g)
    assert w[2] == 0 and not np.signbit(w[2]) and w[0] < 0 < w[1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(dtype):
    dt = format_of(dtype).dtype
    nan3 = np.full(3, np.nan, dt)
    g = np.array([1.0, 2.0, -1.0], dt)
    for x in ([np.nan, 0.0, 1.0], [np.inf, 0.0, 1.0], [-np.inf] * 3):
        x = np.array(x, dt)
        for f in (G.log_softmax, G.softmax, G.log_softmax_jvp, G.softmax_jvp):
            assert same(f(x, g), nan3), (f, x)
        assert same(G.logsumexp(x, np.asarray(1.0, dt)), nan3)
    x = np.array([0.0, -np.inf, 1.0], dt)
    for bad in ([np.nan, 0, 0], [np.inf, 0, 0]):
        assert same(G.log_softmax(x, np.array(bad, dt)), nan3)
    # masked logit: p = 0 exactly, so v = g there and the softmax/logsumexp VJPs are +0
    v = G.log_softmax(x, g)
    assert v[1] == g[1]
    w = G.softmax(x, g)
    assert w[1] == 0 and not np.signbit(w[1])
    u = G.logsumexp(x, np.asarray(3.0, dt))
    assert u[1] == 0 and not np.signbit(u[1])
    # one finite logit: p = 1, v = g - sum(g) = -(sum of the others)
    x = np.array([-np.inf, 2.0, -np.inf], dt)
    assert same(G.log_softmax(x, g), np.array([1.0, 0.0, -1.0], dt))
    assert same(G.softmax(x, g), np.zeros(3, dt))
    # empty rows
    e = np.zeros((2, 0), dt)
    assert G.log_softmax(e, e).shape == (2, 0) and G.softmax(e, e).dtype == dt


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_special_values(dtype):
    dt = format_of(dtype).dtype
    z = np.array([[2.0, 1.0, 0.0], [0.0, -np.inf, 1.0], [np.nan, 0.0, 0.0], [5.0, 0.0, 1.0], [1.0, 1.0, 1.0]], dt)
    y = np.array([0, 2, 1, -100, 1])
    loss = oracle.cross_entropy(z, y)
    assert loss.dtype == dt and np.isnan(loss[2]) and loss[3] == 0 and not np.signbit(loss[3])
    with mpmath.workprec(200):
        assert loss[4] == exact_round(mpf_exact(mpmath.log(3)), dt)
    g = G.cross_entropy(z, y, np.ones(5, dt))
    assert np.all(np.isnan(g[2])) and same(g[3], np.zeros(3, dt))
    assert same(g[4], np.array([exact_round(Fraction(1, 3), dt), exact_round(Fraction(-2, 3), dt), exact_round(Fraction(1, 3), dt)], dt))
    # a masked logit with a positive (smoothed) target: loss +inf, gradient NaN
    ls = oracle.cross_entropy(z, y, label_smoothing=0.1)
    assert ls[1] == np.inf and np.all(np.isnan(G.cross_entropy(z, y, np.ones(5, dt), label_smoothing=0.1)[1]))
    # one finite logit: loss and gradient rational (z-loss: lam m**2)
    one = np.array([[-np.inf, 3.0]], dt)
    assert oracle.cross_entropy(one, np.array([1]), z_loss=0.25)[0] == exact_round(Fraction(9, 4), dt)
    assert same(G.cross_entropy(one, np.array([1]), np.ones(1, dt), z_loss=0.25)[0], np.array([0.0, exact_round(Fraction(3, 2), dt)], dt))
    # label smoothing 1: the uniform target, whatever the class
    a = oracle.cross_entropy(z[:1], np.array([0]), label_smoothing=1.0)
    b = oracle.cross_entropy(z[:1], np.array([2]), label_smoothing=1.0)
    assert same(a, b)
    # the components have the signs of p - t
    gr = G.cross_entropy(z[:1], np.array([0]), np.ones(1, dt))[0]
    assert gr[0] < 0 < gr[1] and gr[2] > 0


def test_bad_input_names_the_argument():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"target\[1\] = 3"):
        oracle.cross_entropy(z, np.array([0, 3]))
    with pytest.raises(TypeError, match="class indices must be integers"):
        oracle.cross_entropy(z, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="label_smoothing"):
        oracle.cross_entropy(z, np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="z_loss"):
        oracle.cross_entropy(z, np.array([0, 1]), z_loss=-1.0)
    with pytest.raises(ValueError, match="target must sum to 1"):
        oracle.cross_entropy(z, np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"g must have shape \(2, 3\)"):
        G.log_softmax(z, np.zeros(3))
    with pytest.raises(ValueError, match=r"g must have shape \(2,\)"):
        G.cross_entropy(z, np.array([0, 1]), np.zeros(3))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_ties_with_a_negligible_rest_are_decided(dtype):
    """proofs/grad.md, Theorem G1 (c): two logits tied at the maximum and the rest ``1e38`` below
    (``r = exp(-1e38)``), cotangents making the rational part a rounding midpoint. The value lies
    just inside the midpoint (``w < 0``), so it rounds as the float64 next to the midpoint on that
    side; the interval loop alone would need ``10**38`` bits. Found by ``accuracy`` (bfloat16
    ``grad.logsumexp`` with ``g`` the smallest subnormal)."""
    fmt = FORMATS[dtype]
    tiny = fmt.min_subnormal
    x = np.array([[1e38, 1e38, -1e38]]).astype(fmt.dtype)

    def toward(v: float, direction: float) -> np.ndarray:  # RN of a value just past v
        return round_from_float64(np.array([np.nextafter(v, direction)]), fmt)[0]

    for g in (tiny, 3 * tiny, -5 * tiny):
        got = G.logsumexp(x, np.array([g]).astype(fmt.dtype), method="mpmath")
        assert got[0, 0] == toward(g / 2, 0.0) and got[0, 1] == got[0, 0]  # |g p_j| < |g|/2
        assert got[0, 2] == 0.0
    g = np.array([[6 * tiny, tiny, 0.0]]).astype(fmt.dtype)  # S = 7 tiny: v_j = g_j - 3.5 tiny - S w
    got = G.log_softmax(x, g, method="mpmath")
    assert got[0, 0] == toward(2.5 * tiny, np.inf) and got[0, 1] == toward(-2.5 * tiny, np.inf)
    got = G.cross_entropy(x, np.array([1]), np.array([3 * tiny]).astype(fmt.dtype), method="mpmath")
    assert got[0, 0] == toward(1.5 * tiny, 0.0) and got[0, 1] == toward(-1.5 * tiny, -np.inf)
    # the softmax VJP: w_j = (k g_j - G)/k**2 + pert, here (6 - 4)/4 tiny = tiny/2 (a midpoint) plus
    # r tiny/4 > 0 for the first entry, -tiny/2 + 3 r tiny/4 for the second; with g_2 = 5 the
    # perturbations turn negative (R = 5 r)
    got = G.softmax(x, np.array([[3 * tiny, tiny, 0.0]]).astype(fmt.dtype), method="mpmath")
    assert got[0, 0] == toward(0.5 * tiny, np.inf) and got[0, 1] == toward(-0.5 * tiny, np.inf)
    got = G.softmax(x, np.array([[3 * tiny, tiny, 5.0]]).astype(fmt.dtype), method="mpmath")
    assert got[0, 0] == toward(0.5 * tiny, -np.inf) and got[0, 1] == toward(-0.5 * tiny, -np.inf)
    for name in ("logsumexp", "log_softmax"):  # the fast path hands these rows to the loop
        gg = np.array([3 * tiny]).astype(fmt.dtype) if name == "logsumexp" else g
        fast = getattr(G, name)(x, gg)
        assert np.array_equal(fast.view(fmt.uint), getattr(G, name)(x, gg, method="mpmath").view(fmt.uint))
