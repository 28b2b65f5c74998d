"""The exact range of the softlog divergences, with certified numbers.

Definitions (``L(x) = ln((e - 1/e) x + 1/e)``, ``p, q`` in the probability simplex of ``K``
classes)::

    sld(p, q)     = 1/2 * sum_k p_k (L(p_k) - L(q_k))
    sld_sym(p, q) = 1/4 * sum_k (p_k - q_k) (L(p_k) - L(q_k))

proofs/sld_bounds.md proves (Theorems B1-B6):

* ``0 <= sld_sym <= 1``; ``sld_sym = 0`` iff ``p = q``; ``sld_sym = 1`` iff ``p`` and ``q`` are
  one-hot on different classes;
* ``sld <= 1``, with equality iff ``p`` is one-hot on a class ``k`` with ``q_k = 0`` (for
  ``K >= 3`` ``q`` need not be one-hot);
* ``min sld`` over ``K`` classes is attained at ``q = e_1``, ``p = (a, c, ..., c)`` with
  ``c = (1 - a)/(K - 1)``, where ``a`` minimises the convex function
  ``s_K(a) = 1/2 [a (L(a) - 1) + (1 - a)(L(c) + 1)]``; ``s_K'(a) = 1/2 [chi(a) - chi(c) - 2]``
  with ``chi(x) = L(x) + x L'(x)``. As ``K -> infinity`` the minimum decreases to
  ``min_a a (L(a) - 1) / 2``.

:func:`sld_infimum` solves ``s_K'(a) = 0`` with ``mpmath.findroot`` and certifies the result with
``mpmath.iv`` interval arithmetic: ``s_K' < 0`` is proven on a subdivision of ``[0, a_lo]`` and
``s_K' > 0`` on one of ``[a_hi, 1]`` (so the minimiser lies in ``[a_lo, a_hi]`` without appealing
to convexity), and the minimum value is enclosed by the interval extension of ``s_K`` over
``[a_lo, a_hi]``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import mpmath
import numpy as np
from mpmath.ctx_iv import MPIntervalContext

from softlog_numerics import oracle
from softlog_numerics._core.formats import format_of, round_from_float64
from softlog_numerics.analysis.format_arithmetic import VectorOps, softlog_variant
from softlog_numerics.functions import sld_sym
from softlog_numerics.testing.ulp import from_ordinal, ordinal

__all__ = [
    "NAIVE_CLASSES",
    "SLD_KS",
    "NaiveSweep",
    "SldInfimum",
    "SymSweep",
    "complement",
    "ds_K",
    "s_K",
    "sld_infimum",
    "sld_infimum_table",
    "sweep_naive_k2",
    "sweep_sld_sym",
    "unit_interval_values",
]

SLD_KS = (2, 3, 10, 100, math.inf)
"""The class counts reported (``math.inf`` for the limit)."""


def _consts(ctx):
    b = 1 / ctx.e
    return ctx.e - b, b


def _L(ctx, x):
    A, B = _consts(ctx)
    return ctx.log(A * x + B)


def _chi(ctx, x):
    """``L(x) + x L'(x)``: the derivative of ``x L(x)``."""
    A, B = _consts(ctx)
    return ctx.log(A * x + B) + A * x / (A * x + B)


def _gamma(ctx, a, K):
    return 0 * a if K == math.inf else (1 - a) / (K - 1)


def s_K(a, K, ctx=mpmath.mp):
    """``sld((a, c, ..., c), e_1)`` with ``c = (1 - a)/(K - 1)`` (``K = math.inf``: the limit
    ``a (L(a) - 1) / 2``), in the mpmath context ``ctx`` (``mpmath.mp`` or ``mpmath.iv``)."""
    c = _gamma(ctx, a, K)
    tail = 0 if K == math.inf else (1 - a) * (_L(ctx, c) + 1)
    return (a * (_L(ctx, a) - 1) + tail) / 2


def ds_K(a, K, ctx=mpmath.mp):
    """``d s_K / d a = (chi(a) - chi(c) - 2) / 2`` (for ``K = inf``, ``c = 0`` and ``chi(0) = -1``)."""
    return (_chi(ctx, a) - _chi(ctx, _gamma(ctx, a, K)) - 2) / 2


@dataclass(frozen=True)
class SldInfimum:
    """A certified minimum of ``sld`` over ``K`` classes.

    ``value_lo <= min sld <= value_hi`` and the minimiser's large entry lies in ``[a_lo, a_hi]``
    (proven by interval arithmetic at ``bits`` bits; ``pieces`` intervals were needed to prove the
    sign of the derivative away from the bracket).
    """

    K: float
    a_lo: mpmath.mpf
    a_hi: mpmath.mpf
    value_lo: mpmath.mpf
    value_hi: mpmath.mpf
    bits: int
    pieces: int

    @property
    def a_mid(self) -> mpmath.mpf:
        with mpmath.workprec(self.bits):
            return (self.a_lo + self.a_hi) / 2

    @property
    def value_mid(self) -> mpmath.mpf:
        with mpmath.workprec(self.bits):
            return (self.value_lo + self.value_hi) / 2

    @property
    def c_mid(self) -> mpmath.mpf:
        """The other entries of the minimising ``p``: ``(1 - a)/(K - 1)`` (0 in the limit)."""
        if self.K == math.inf:
            return mpmath.mpf(0)
        with mpmath.workprec(self.bits):
            return (1 - self.a_mid) / (self.K - 1)

    def digits(self, n: int = 20) -> str:
        with mpmath.workprec(self.bits):
            return mpmath.nstr(self.value_mid, n)


def _prove_sign(ivc, lo, hi, K, negative: bool, max_pieces: int = 100000) -> int:
    """Prove ``ds_K < 0`` (``negative``) or ``> 0`` on ``[lo, hi]`` by adaptive subdivision and
    evaluation in the interval context ``ivc``; returns the number of pieces; raises if it cannot."""
    stack = [(lo, hi)]
    pieces = 0
    while stack:
        a, b = stack.pop()
        d = ds_K(ivc.mpf([a, b]), K, ivc)
        if (negative and d.b < 0) or (not negative and d.a > 0):
            pieces += 1
            continue
        if pieces + len(stack) > max_pieces or b - a < mpmath.mpf(2) ** (-ivc.prec + 8):
            raise ArithmeticError(f"could not prove the sign of s_K' on [{a}, {b}] (K={K})")
        m = (a + b) / 2
        stack.extend([(a, m), (m, b)])
    return pieces


def sld_infimum(K, *, bits: int = 160, half_width_bits: int = 100) -> SldInfimum:
    """The certified minimum of ``sld`` over ``K`` classes (``K >= 2``, or ``math.inf`` for the
    limit); see :class:`SldInfimum`.

    Notes
    -----
    The reduction to one variable is proven in proofs/sld_bounds.md, Theorem B3 and the
    certification method in proofs/sld_bounds.md, Theorem B5 (the sign of the derivative is proven
    by interval arithmetic on a subdivision of ``[0, 1]`` minus a bracket of width ``2**-99``).
    """
    if K != math.inf and (K != int(K) or K < 2):
        raise ValueError("K must be an integer >= 2 or math.inf")
    # mpmath's interval context has no workprec: a private context holds the precision, so the
    # shared mpmath.iv is never changed
    ivc = MPIntervalContext()
    ivc.prec = bits
    with mpmath.workprec(bits):
        a_star = mpmath.findroot(lambda a: ds_K(a, K), mpmath.mpf("0.9"))
        h = mpmath.mpf(2) ** (-half_width_bits)
        a_lo, a_hi = a_star - h, a_star + h
        if not (0 < a_lo and a_hi < 1):
            raise ArithmeticError("root outside (0, 1)")
        pieces = _prove_sign(ivc, mpmath.mpf(0), a_lo, K, negative=True)
        pieces += _prove_sign(ivc, a_hi, mpmath.mpf(1), K, negative=False)
        v = s_K(ivc.mpf([a_lo, a_hi]), K, ivc)
        # a second, tighter enclosure: the value at a point inside is an upper bound; the minimum
        # over [a_lo, a_hi] is at least the interval lower bound above
        upper = s_K(ivc.mpf(a_star), K, ivc).b
        lo, hi = mpmath.mpf(v.a), min(mpmath.mpf(v.b), mpmath.mpf(upper))
        return SldInfimum(K, a_lo, a_hi, lo, hi, bits, pieces)


def sld_infimum_table(Ks=SLD_KS) -> dict[str, SldInfimum]:
    """``{"2": ..., "3": ..., "10": ..., "100": ..., "limit": ...}``."""
    return {("limit" if K == math.inf else str(int(K))): sld_infimum(K) for K in Ks}


# ---------------------------------------------------------------------------------------------
# Exhaustive check of the library's float sld_sym for two classes


def unit_interval_values(dtype) -> np.ndarray:
    """Every number of the format in ``[0, 1]`` (``+0`` up to 1, subnormals included), ascending,
    as float64: 15361 for float16, 16257 for bfloat16."""
    fmt = format_of(dtype)
    one = int(ordinal(np.array(1.0).astype(fmt.dtype)))
    return from_ordinal(np.arange(0, one + 1, dtype=np.int64), fmt.dtype).astype(np.float64)


def complement(a: np.ndarray, dtype) -> np.ndarray:
    """``RN(1 - a)`` in the format (float64 in, float64 out): the second entry of ``p = (a, 1 - a)``."""
    return round_from_float64(1.0 - a, dtype).astype(np.float64)


@dataclass
class SymSweep:
    """What the library's ``sld_sym`` returned on a set of two-class pairs ``(p, q)``."""

    dtype: str
    pairs: int = 0
    negative: int = 0
    above_one: int = 0
    nan: int = 0
    zero_but_unequal: int = 0  # p != q but the result is 0 (the exact value is positive but tiny)
    zero_beyond_one_ulp: int = 0  # of those, how many have an exact value >= the smallest subnormal
    nonzero_but_equal: int = 0  # p == q but the result is not +0
    minimum: float = math.inf
    maximum: float = -math.inf
    argmax: tuple = ()
    seconds: float = 0.0

    @property
    def in_unit_interval(self) -> bool:
        return self.negative == 0 and self.above_one == 0 and self.nan == 0


def sweep_sld_sym(dtype, ia=None, ib=None, *, chunk: int = 1 << 19) -> SymSweep:
    """Evaluate the library's :func:`softlog_numerics.sld_sym` on every pair
    ``p = (a, RN(1 - a))``, ``q = (b, RN(1 - b))`` with ``a = V[i]``, ``b = V[j]`` for ``i`` in
    ``ia`` and ``j`` in ``ib`` (index arrays into :func:`unit_interval_values`; default all), and
    count results outside ``[0, 1]``, zeros for ``p != q`` and nonzeros for ``p == q``.

    Every such pair is a valid input (``|a + RN(1 - a) - 1| <= 2**-p-1`` is far inside the
    validation tolerance ``sqrt(eps)``); the sweep passes ``validate=False`` only to save time.
    """
    fmt = format_of(dtype)
    V = unit_interval_values(fmt)
    W = complement(V, fmt)
    ia = np.arange(V.size) if ia is None else np.asarray(ia)
    ib = np.arange(V.size) if ib is None else np.asarray(ib)
    out = SymSweep(fmt.name)
    t0 = time.perf_counter()
    rows_per_chunk = max(1, chunk // ib.size)
    qb, qw = V[ib], W[ib]
    for s in range(0, ia.size, rows_per_chunk):
        blk = ia[s : s + rows_per_chunk]
        pa = np.repeat(V[blk], ib.size)
        pw = np.repeat(W[blk], ib.size)
        qa = np.tile(qb, blk.size)
        qc = np.tile(qw, blk.size)
        P = np.stack([pa, pw], axis=-1).astype(fmt.dtype)  # exact: values of the format
        Q = np.stack([qa, qc], axis=-1).astype(fmt.dtype)
        r = sld_sym(P, Q, validate=False).astype(np.float64)
        equal = (pa == qa) & (pw == qc)
        out.pairs += r.size
        out.nan += int(np.isnan(r).sum())
        out.negative += int((r < 0).sum() + (np.signbit(r) & (r == 0)).sum())
        out.above_one += int((r > 1).sum())
        zu = (r == 0) & ~equal
        out.zero_but_unequal += int(zu.sum())
        if zu.any():  # the float64 evaluation (<= 4 ULP of float64) tells whether 0 is within 1 ULP
            v64 = sld_sym(P[zu].astype(np.float64), Q[zu].astype(np.float64), validate=False)
            out.zero_beyond_one_ulp += int((v64 >= fmt.min_subnormal).sum())
        out.nonzero_but_equal += int(((r != 0) & equal).sum() + (np.signbit(r) & equal).sum())
        if r.size:
            out.minimum = min(out.minimum, float(np.nanmin(r)))
            k = int(np.nanargmax(r))
            if r[k] > out.maximum:
                out.maximum = float(r[k])
                out.argmax = (float(pa[k]), float(qa[k]))
    out.seconds = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------------------------------------
# The textbook formulas evaluated in the format, for every two-class pair

NAIVE_CLASSES = ("ok", "spurious zero", "wrong sign", "above 1", "below the minimum", "inf or NaN")
"""Classes of a naive result, in increasing severity (the index is the class code)."""


def _exact_sld_sign(P1, P2, Q1, Q2, dtype):
    """Sign (-1, 0, 1) of the exact ``sld`` at two-class float pairs (float64 arrays of numbers of
    the format), whether it does not round to 0 in the format, and how many pairs needed the oracle.

    ``L(p) - L(q) = log1p(A (p - q) / (A q + B))`` in float64 has a relative error below ``26 u``
    (``u = 2**-53``: 7 roundings in the argument amplified at most 3.2 times by ``log1p`` on
    ``t >= -A/(A + B)``, plus the libm's ULP), so the float64 sum ``S`` of the two terms has the
    exact sign when ``|S| > 30 u (|t1| + |t2|)``; the others are decided by the oracle.
    """
    fmt = format_of(dtype)
    A, B = math.e - 1 / math.e, 1 / math.e
    with np.errstate(all="ignore"):
        d1 = np.log1p(A * (P1 - Q1) / (A * Q1 + B))
        d2 = np.log1p(A * (P2 - Q2) / (A * Q2 + B))
        t1 = np.where(P1 == 0, 0.0, P1 * d1)
        t2 = np.where(P2 == 0, 0.0, P2 * d2)
    S = t1 + t2
    margin = 30 * 2.0**-53 * (np.abs(t1) + np.abs(t2))
    sign = np.sign(S)
    equal = (P1 == Q1) & (P2 == Q2)
    sign[equal] = 0.0
    sure = (np.abs(S) > margin) | equal
    nonzero = (np.abs(S) - margin >= 2.0 ** (fmt.emin - fmt.precision)) & ~equal
    todo = np.flatnonzero(~sure)
    if todo.size:
        p = np.stack([P1[todo], P2[todo]], -1).astype(fmt.dtype)
        q = np.stack([Q1[todo], Q2[todo]], -1).astype(fmt.dtype)
        r = oracle.sld(p, q, validate=False).astype(np.float64)
        sign[todo] = np.where(r != 0, np.sign(r), np.where(np.signbit(r), -1.0, 1.0))
        nonzero[todo] = r != 0
    return sign, nonzero, int(todo.size)


@dataclass
class NaiveSweep:
    """The textbook ``sld`` and ``sld_sym`` evaluated in a format over two-class pairs.

    ``counts[form][subset]`` counts the classes of :data:`NAIVE_CLASSES` for ``form`` in
    ``("sld", "sld_sym")`` and ``subset`` ``"all"`` (every pair) or ``"normalised"`` (pairs where
    ``a + (1 - a)`` and ``b + (1 - b)`` are exactly 1, i.e. ``1 - a`` and ``1 - b`` are numbers
    of the format). ``exact_negative[subset]`` counts pairs whose exact ``sld`` is negative.
    ``images[form]`` hold the worst class per pixel over ``(a, b) in [0, 1]**2`` on a linear grid
    (``"linear"``) and on the grid of the format's numbers (``"ordinal"``); rows index ``b``.
    """

    dtype: str
    stride: int
    pairs: dict
    counts: dict
    exact_negative: dict
    oracle_calls: int
    images: dict
    seconds: float


def sweep_naive_k2(dtype, stride: int = 1, *, pixels: int = 256, rows_per_chunk: int = 48) -> NaiveSweep:
    """Evaluate ``1/2 sum p (L(p) - L(q))`` and ``1/4 sum (p - q)(L(p) - L(q))`` with the naive
    softlog ``log(RN(RN(a x) + b))``, every operation in the format (``regions.VectorOps``), on
    the pairs ``p = (a, RN(1 - a))``, ``q = (b, RN(1 - b))`` with ``a``, ``b`` every ``stride``-th
    number of the format in ``[0, 1]``, and classify each result against the exact value of the
    same formula at the same (float) inputs.

    Classes (:data:`NAIVE_CLASSES`): *inf or NaN*; *below the minimum* (``sld`` below its
    certified minimum for ``K = 2``, or ``sld_sym < 0``); *above 1*; *wrong sign* (strictly
    opposite to the exact value, or nonzero where ``p == q``); *spurious zero* (0 where the exact
    value does not round to 0 in the format); *ok* otherwise.
    """
    fmt = format_of(dtype)
    ops = VectorOps(fmt)
    V = unit_interval_values(fmt)[::stride]
    W = complement(V, fmt)
    normalised = (1.0 - W) == V  # 1 - W is exact (W >= 1/2)
    LV = softlog_variant("naive_log", ops, V)
    LW = softlog_variant("naive_log", ops, W)
    floor2 = float(sld_infimum(2, bits=96, half_width_bits=60).value_lo)
    n = V.size
    grids = {
        "linear": np.minimum((V * pixels).astype(np.int64), pixels - 1),
        "ordinal": (np.arange(n) * pixels) // n,
    }
    images = {f: {g: np.zeros((pixels, pixels), np.int8) for g in grids} for f in ("sld", "sld_sym")}
    images["exact_negative"] = {g: np.zeros((pixels, pixels), bool) for g in grids}
    K = len(NAIVE_CLASSES)
    counts = {f: {s: np.zeros(K, np.int64) for s in ("all", "normalised")} for f in ("sld", "sld_sym")}
    negative = {"all": 0, "normalised": 0}
    calls = 0
    t0 = time.perf_counter()
    for s in range(0, n, rows_per_chunk):
        i = np.arange(s, min(n, s + rows_per_chunk))
        P1, P2 = np.repeat(V[i], n), np.repeat(W[i], n)
        LP1, LP2 = np.repeat(LV[i], n), np.repeat(LW[i], n)
        Q1, Q2 = np.tile(V, i.size), np.tile(W, i.size)
        LQ1, LQ2 = np.tile(LV, i.size), np.tile(LW, i.size)
        norm = np.repeat(normalised[i], n) & np.tile(normalised, i.size)
        d1, d2 = ops.sub(LP1, LQ1), ops.sub(LP2, LQ2)
        r_sld = ops.mul(0.5, ops.add(ops.mul(P1, d1), ops.mul(P2, d2)))
        r_sym = ops.mul(0.25, ops.add(ops.mul(ops.sub(P1, Q1), d1), ops.mul(ops.sub(P2, Q2), d2)))
        sign, nonzero, c = _exact_sld_sign(P1, P2, Q1, Q2, fmt)
        calls += c
        equal = (P1 == Q1) & (P2 == Q2)
        negative["all"] += int((sign < 0).sum())
        negative["normalised"] += int(((sign < 0) & norm).sum())
        where = {g: (np.tile(idx, i.size), np.repeat(idx[i], n)) for g, idx in grids.items()}
        for form, r, truth_sign, truth_nonzero, floor in (
            ("sld", r_sld, sign, nonzero, floor2),
            ("sld_sym", r_sym, np.where(equal, 0.0, 1.0), ~equal, 0.0),
        ):
            cls = np.zeros(r.shape, np.int8)
            cls[(r == 0) & truth_nonzero] = 1
            cls[(np.sign(r) * truth_sign < 0) | ((truth_sign == 0) & (r != 0))] = 2
            cls[r > 1] = 3
            cls[r < floor] = 4
            cls[~np.isfinite(r)] = 5
            counts[form]["all"] += np.bincount(cls, minlength=K)
            counts[form]["normalised"] += np.bincount(cls[norm], minlength=K)
            for g, (rows, cols) in where.items():
                bad = cls > 0
                if bad.any():
                    np.maximum.at(images[form][g], (rows[bad], cols[bad]), cls[bad])
        m = sign < 0
        for g, (rows, cols) in where.items():
            images["exact_negative"][g][rows[m], cols[m]] = True
    pairs = {"all": n * n, "normalised": int(normalised.sum()) ** 2}
    as_dict = {f: {s: dict(zip(NAIVE_CLASSES, map(int, v))) for s, v in d.items()} for f, d in counts.items()}
    return NaiveSweep(fmt.name, stride, pairs, as_dict, negative, calls, images, time.perf_counter() - t0)
