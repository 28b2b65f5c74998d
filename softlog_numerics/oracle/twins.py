"""Correctly rounded reference values, computed with interval arithmetic on mpmath's raw numbers.

Every function here has the signature of the production function of the same name and returns,
elementwise, the exact mathematical result rounded *once* to the dtype of the input (round to
nearest, ties to even, gradual underflow, overflow to infinity).

How (proofs/oracle.md, Theorem O2):

1. Special values (NaN, infinities, empty rows, masked ``-inf`` logits, out-of-domain input) are
   settled by the table in each docstring, outside mpmath.
2. Results that are rational are computed exactly with :class:`fractions.Fraction` and rounded by
   :func:`round_rational`: ``softlog(0) = -1``, ``softlog(1) = 1``, a single unmasked logit, a
   softmax over equal logits, and every softlog sum whose transcendental parts cancel. Sums are
   first collected as ``c + sum_v W(v) L(v)`` over the *distinct* arguments ``v`` of the softlog;
   such a sum is rational exactly when every weight ``W(v)`` with ``v`` outside ``{0, 1}`` is zero
   (proofs/oracle.md, Theorem O2, Lemma T), so the rational cases are recognised completely.
3. Everything else is enclosed in an interval at working precision ``P`` bits (directed rounding for
   ``+ - * /``; ``exp``, ``log`` and ``e`` evaluated 8 bits wider and widened outward by a relative
   ``2**-P``). If both endpoints round to the same number of the target format (and the same sign of
   zero), that is the correctly rounded result; otherwise ``P`` is doubled (Ziv's strategy). ``P``
   starts at ``p + 32`` and the loop gives up with :class:`OracleUndecided` past ``MAX_PRECISION``
   bits rather than ever return a value it has not proven.

The precision is passed explicitly to mpmath's low-level functions (``mpmath.libmp``); no global
context (``mpmath.mp``, ``mpmath.iv``) is read or changed.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from mpmath import libmp
from numpy.typing import ArrayLike

from softlog_numerics._core.axes import (
    Axis,
    Rows,
    checked_temperature,
    prepared_distributions,
    prepared_layer,
)
from softlog_numerics._core.formats import Format, as_float_array, format_of
from softlog_numerics.oracle import fast, fast_divergence, fast_softmax, fast_softmax64
from softlog_numerics.oracle.enclosures import (
    EXACT_SOFTLOG,
    I_ONE,
    I_ZERO,
    INF,
    NAN,
    add,
    as_float64,
    as_result,
    below_branch,
    div,
    dyadic,
    enclose_exp,
    enclose_log1p,
    enclose_rational,
    enclose_softlog,
    mul,
    round_rational,
    softlog_mpmath,
    sub,
    ziv,
)

__all__ = [
    "log_softmax",
    "logsumexp",
    "sld",
    "sld_sym",
    "softlog",
    "softlog_cross_entropy",
    "softlog_entropy",
    "softlog_inverse",
    "softlog_softmax",
    "softmax",
]


def softlog(x: ArrayLike, *, method: str = "auto") -> np.ndarray:
    """Correctly rounded ``L(x) = ln((e - 1/e) x + 1/e)`` in the dtype of ``x``.

    Special values: ``L(±0) = -1`` and ``L(1) = 1`` exactly, ``L(+inf) = +inf``; NaN, and every
    ``x < -1/(e**2 - 1)`` (``-inf`` included), give NaN.

    ``method="auto"`` (default) takes the certified fast path of :mod:`softlog_numerics.oracle.fast`
    (bit-identical results); ``method="mpmath"`` always uses the interval loop
    (:func:`~softlog_numerics.oracle.enclosures.softlog_mpmath`).

    Notes
    -----
    Domain: every value of the four formats; ``L`` is finite and non-zero for every finite ``x``
    above the branch point ``x_b = -1/(e**2 - 1)`` (``-1 <= L < 0`` on ``[0, x0)``, ``x0 = 1/(e + 1)``
    irrational, so ``L`` of a float never vanishes; ``|L| <= 710.7``), the only exact cases are
    ``L(0) = -1`` and ``L(1) = 1``.

    Algorithm (``method="auto"``): Ziv's strategy. float16, bfloat16, float32: a float64 estimate
    within ``2**-46`` relative (proofs/fast_oracle.md, Theorem F1), decided by its low bits
    (proofs/fast_oracle.md, Theorem F2). float64: the double-double softlog of
    :mod:`softlog_numerics._core.softlog_dd`, within ``2**-64.8`` relative (proofs/divergence.md,
    Theorem D3), decided by its low part (proofs/fast_oracle.md, Theorem F5). Undecided inputs (about
    one in two million float32, four in ten thousand float64) go to the interval loop, which
    decides every input (proofs/oracle.md, Theorem O2).

    Accuracy: correctly rounded (0 ULP) for every input, special values included; the fast path
    is bit-identical to ``method="mpmath"``.
    """
    if method not in ("auto", "mpmath"):
        raise ValueError(f"method must be 'auto' or 'mpmath', not {method!r}")
    x = as_float_array(x)
    if method == "auto":
        return fast.softlog(x)
    return softlog_mpmath(x)


_INVERSE_EXACT = {-1.0: 0.0, 1.0: 1.0}  # L(0) = -1, L(1) = 1: the only rational values (below)


def _branch_enclosure(prec: int):
    """Enclosure of the branch point ``-1/(e**2 - 1)`` at ``prec`` bits."""
    e2 = enclose_exp((libmp.from_int(2), libmp.from_int(2)), prec)
    return div((libmp.from_int(-1), libmp.from_int(-1)), sub(e2, I_ONE, prec), prec)


def softlog_inverse(y: ArrayLike) -> np.ndarray:
    """Correctly rounded ``L^-1(y) = (e**y - 1/e) / (e - 1/e) = expm1(y + 1) / (e**2 - 1)`` in the
    dtype of ``y``.

    Special values: ``L^-1(-1) = +0`` and ``L^-1(1) = 1`` exactly, ``L^-1(+inf) = +inf``, NaN gives
    NaN, and ``L^-1(-inf)`` is the limit, the branch point ``-1/(e**2 - 1)`` rounded once. Every
    other value is irrational: ``(e**(y+1) - 1) = x (e**2 - 1)`` with rational ``x`` and ``y``
    would be a vanishing combination of ``e**(y+1)``, ``e**2`` and ``1`` with non-zero rational
    coefficients, impossible by Lindemann-Weierstrass unless ``y + 1`` is 0 or 2
    (proofs/softlog.md, Theorem S6); so Ziv's loop ends.
    """
    y = as_float_array(y, "y")
    fmt = format_of(y.dtype)
    ys = as_float64(y).ravel().tolist()
    fixed = {}
    for i, v in enumerate(ys):
        if v != v:
            fixed[i] = NAN
        elif v == INF:
            fixed[i] = INF
        elif v in _INVERSE_EXACT:
            fixed[i] = _INVERSE_EXACT[v]

    def enclose(todo, prec):
        out = {}
        e2m1 = sub(enclose_exp((libmp.from_int(2), libmp.from_int(2)), prec), I_ONE, prec)
        for i in todo:
            if ys[i] == -INF:
                out[i] = _branch_enclosure(prec)
                continue
            t = libmp.mpf_add(libmp.from_float(ys[i]), libmp.from_int(1), 0)  # y + 1, exact
            num = sub(enclose_exp((t, t), prec), I_ONE, prec)
            out[i] = div(num, e2m1, prec)
        return out

    return as_result(ziv(fmt, len(ys), enclose, fixed), fmt, y.shape)


# ---------------------------------------------------------------------------------------------
# logsumexp, log_softmax, softmax


def _lse_row_special(row: list):
    """(settled LSE or None, finite entries) for one row."""
    if any(v != v for v in row):
        return NAN, None
    if any(v == INF for v in row):
        return INF, None
    finite = [v for v in row if v != -INF]
    if not finite:
        return -INF, None
    if len(finite) == 1:
        return finite[0] + 0.0, None  # ln(exp(-0)) = +0
    return None, finite


class ShiftedRow:
    """A row of finite logits as exact offsets ``d_i = (x_i - x_k) / T`` from one largest entry
    ``x_k``, for a temperature ``T`` (None: 1, and every ``d_i`` is a float-exact raw mpf).

    ``sum_i exp(x_i / T) = exp(x_k / T) (1 + s)`` with ``s = sum_{i != k} exp(d_i)``; every result
    is then written with ``log1p(s)``, which stays tight when ``s`` is far below ``2**-P``. With a
    temperature the offsets are exact rationals (``q``), enclosed at each precision (``d``, pairs).
    """

    def __init__(self, finite: list, temperature: float | None = None):
        self.k = max(range(len(finite)), key=finite.__getitem__)
        self.m = libmp.from_float(finite[self.k])
        self.temperature = temperature
        if temperature is None:
            self.d = [libmp.mpf_sub(libmp.from_float(v), self.m, 0) for v in finite]  # exact
        else:
            t, m = Fraction(temperature), Fraction(finite[self.k])
            self.q = [(Fraction(v) - m) / t for v in finite]
            self.mq = m / t
        self.prec: int | None = None

    def offsets(self, prec: int) -> list:
        """Enclosures (pairs) of the offsets ``d_i`` at ``prec`` bits (points without a temperature)."""
        if self.temperature is None:
            return [(v, v) for v in self.d]
        return [enclose_rational(q, prec) for q in self.q]

    def at(self, prec: int):
        if self.prec != prec:
            self.ds = self.offsets(prec)
            self.e = [I_ONE if i == self.k else enclose_exp(d, prec) for i, d in enumerate(self.ds)]
            s = I_ZERO
            for i, e in enumerate(self.e):
                if i != self.k:
                    s = add(s, e, prec)
            self.s = s
            self.prec = prec
        return self


_STREAM = 1 << 14  # rows longer than this keep no per-entry enclosures (memory stays bounded)
_CHUNK = 1 << 12  # ... and are decided this many entries at a time


class StreamedRow:
    """:class:`ShiftedRow` for long rows: the same offsets, exponentials and ``s`` (the same
    enclosures, summed in the same order), but recomputed from the float row when needed instead
    of stored, so that memory does not grow with the row beyond the row itself."""

    def __init__(self, finite: list, temperature: float | None = None):
        self.row = np.asarray(finite, dtype=np.float64)
        self.k = int(np.argmax(self.row))  # the first largest entry, as max(range(n), key=...)
        self.m = libmp.from_float(float(self.row[self.k]))
        self.temperature = temperature
        if temperature is not None:
            self.t = Fraction(temperature)
            self.mq = Fraction(float(self.row[self.k])) / self.t
        self.prec: int | None = None

    def q(self, i: int) -> Fraction:
        return (Fraction(float(self.row[i])) - Fraction(float(self.row[self.k]))) / self.t

    def offset(self, i: int, prec: int):
        if self.temperature is None:
            d = libmp.mpf_sub(libmp.from_float(float(self.row[i])), self.m, 0)  # exact
            return d, d
        return enclose_rational(self.q(i), prec)

    def exp(self, i: int, prec: int):
        return I_ONE if i == self.k else enclose_exp(self.offset(i, prec), prec)

    def at(self, prec: int):
        if self.prec != prec:
            s = I_ZERO
            for i in range(len(self.row)):
                if i != self.k:
                    s = add(s, enclose_exp(self.offset(i, prec), prec), prec)
            self.s = s
            self.prec = prec
        return self


def _offset_plus(c, t, sign: int, fmt: Format, prec: int):
    """Enclosure (or same-rounding stand-in) of ``c + sign * t`` for an exact ``c`` that is a
    multiple of the format's smallest subnormal and an enclosure ``t >= 0``.

    The sum is formed exactly (no rounding to ``P`` bits, which could not tell ``c - t`` from a
    midpoint ``c`` for ``t`` far below ``2**-P |c|``). When ``t < 2**(emin - p)`` (half the smallest
    subnormal), every value of ``c + sign * (0, t_hi]`` lies strictly between ``c`` and the next
    multiple of half the smallest subnormal, where no rounding boundary is, so all of them round
    like the stand-in ``c + sign * 2**(emin - p - 1)`` (proofs/oracle.md, Theorem O2, step 5).
    """
    lo, hi = t
    if libmp.mpf_lt(hi, libmp.from_man_exp(1, fmt.emin - fmt.precision)):
        if lo[0] == 0 and lo[1]:  # 0 < t < 2**(emin - p)
            r = libmp.mpf_add(c, libmp.from_man_exp(sign, fmt.emin - fmt.precision - 1), 0)
            return r, r
        return add((c, c), t, prec) if sign > 0 else sub((c, c), t, prec)  # t may be 0: undecided
    if sign > 0:
        return libmp.mpf_add(c, lo, 0), libmp.mpf_add(c, hi, 0)
    return libmp.mpf_sub(c, hi, 0), libmp.mpf_sub(c, lo, 0)


def _rational_plus(q: Fraction, t, sign: int, fmt: Format, prec: int):
    """Enclosure of ``q + sign * t`` for an exact rational ``q`` (an offset divided by a
    temperature) and an enclosure ``t >= 0``: a dyadic ``q`` is added exactly (by
    :func:`_offset_plus` when ``q`` is a multiple of ``2**(emin - p)``, the grid of the rounding
    boundaries, so that ``q`` on a boundary minus a tiny ``t`` is decided), any other ``q`` is no
    rounding boundary and is enclosed at ``prec`` bits."""
    if not q.denominator & (q.denominator - 1):
        c = dyadic(q)
        if (q * 2 ** (fmt.precision - fmt.emin)).denominator == 1:
            return _offset_plus(c, t, sign, fmt, prec)
        lo, hi = t
        if sign > 0:
            return libmp.mpf_add(c, lo, 0), libmp.mpf_add(c, hi, 0)
        return libmp.mpf_sub(c, hi, 0), libmp.mpf_sub(c, lo, 0)
    r = enclose_rational(q, prec)
    return add(r, t, prec) if sign > 0 else sub(r, t, prec)


def logsumexp(
    x: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    *,
    temperature: float = 1.0,
    method: str = "auto",
) -> np.ndarray:
    """Correctly rounded ``ln(sum(exp(x / T)))`` along ``axis`` (int, tuple or None), ``T`` the
    ``temperature`` (a positive finite float, exact: the logits are divided as real numbers).

    Special values: a NaN in the row gives NaN; else a ``+inf`` gives ``+inf``; ``-inf`` entries
    are masked out (they contribute ``exp(-inf) = 0``); an empty or all ``-inf`` row gives ``-inf``;
    a row with one finite entry returns it exactly (``-0`` gives ``+0``), divided by ``T`` and
    rounded once. A finite result beyond the format's range is ``+inf`` (correct rounding of an
    overflow).

    ``method="auto"`` (default) takes the certified fast path of
    :mod:`softlog_numerics.oracle.fast_softmax` for float16, bfloat16 and float32 rows at
    temperature 1 (bit-identical; proofs/fast_oracle.md, Theorem F6), and that of
    :mod:`softlog_numerics.oracle.fast_softmax64` for float64 rows (Theorem F9); ``method="mpmath"``
    always uses the interval loop.
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    tau = checked_temperature(temperature)
    rows = Rows(as_float64(x), axis)
    if _fast(method, fmt, tau) or _fast64(method, fmt, tau):
        x2 = np.ascontiguousarray(rows.rows)
        if fmt.precision <= 24:
            values, todo = fast_softmax.logsumexp_rows(x2, fmt)
        else:
            values, todo = fast_softmax64.logsumexp_rows64(x2)
        values = values.astype(np.float64)
        for r in todo.tolist():
            values[r] = _lse_row(rows.rows[r].tolist(), fmt, tau)
    else:
        values = np.array([_lse_row(row, fmt, tau) for row in rows.rows.tolist()], dtype=np.float64)
    return rows.reduced(values, keepdims).astype(fmt.dtype)


def _fast(method: str, fmt: Format, tau) -> bool:
    """Whether a call takes the certified fast path (ValueError for an unknown ``method``)."""
    if method not in ("auto", "mpmath"):
        raise ValueError(f"method must be 'auto' or 'mpmath', not {method!r}")
    return method == "auto" and tau is None and fmt.precision <= 24


def _fast64(method: str, fmt: Format, tau) -> bool:
    """Whether a float64 call takes the certified double-double fast path (Theorem F9)."""
    return method == "auto" and tau is None and fmt.precision == 53


def _lse_row(row: list, fmt: Format, tau) -> float:
    """The correctly rounded logsumexp of one row (a list of floats), by the interval loop."""
    settled, finite = _lse_row_special(row)
    if settled is not None:
        if tau is not None and math.isfinite(settled):
            q = Fraction(settled) / Fraction(tau)
            settled = round_rational(q.numerator, q.denominator, fmt)
        return settled
    sh = StreamedRow(finite, tau) if len(finite) > _STREAM else ShiftedRow(finite, tau)

    def enclose(todo, prec):
        t = sh.at(prec)
        if tau is None:
            return {0: _offset_plus(t.m, enclose_log1p(t.s, prec), 1, fmt, prec)}
        # m/T + log1p(s) is irrational (s > 0; Lindemann-Weierstrass, proofs/log_softmax.md, Theorem LSE9 (e))
        return {0: _rational_plus(t.mq, enclose_log1p(t.s, prec), 1, fmt, prec)}

    return ziv(fmt, 1, enclose, {})[0]


def _softmax_rows(x, axis, log: bool, temperature, method: str) -> np.ndarray:
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    tau = checked_temperature(temperature)
    rows = Rows(as_float64(x), axis)
    if _fast(method, fmt, tau) or _fast64(method, fmt, tau):
        x2 = np.ascontiguousarray(rows.rows)
        if fmt.precision <= 24:
            values, todo = fast_softmax.softmax_rows(x2, fmt, log)
        else:
            values, todo = fast_softmax64.softmax_rows64(x2, log)
        for r in todo.tolist():
            values[r] = _softmax_row(rows.rows[r].tolist(), fmt, log, tau)
        return rows.elementwise(values).astype(fmt.dtype)
    result = np.empty(rows.rows.shape, dtype=np.float64)
    for r in range(rows.rows.shape[0]):
        result[r] = _softmax_row(rows.rows[r].tolist(), fmt, log, tau)
    return rows.elementwise(result).astype(fmt.dtype)


def _softmax_enclosures(d: list, k: int, e: list, s, todo, prec, log: bool, fmt=None) -> dict:
    """Enclosures of (log_)softmax from offsets ``d`` (``d[k] == 0``), ``e = exp(d)``, ``s``.

    With ``fmt``, the offsets are exact multiples of its smallest subnormal and ``d - log1p(s)``
    is formed by :func:`_offset_plus`.
    """
    out = {}
    if log:
        l1p = enclose_log1p(s, prec)
        for i in todo:
            if fmt is None:
                out[i] = sub(d[i], l1p, prec)
            else:
                out[i] = _offset_plus(d[i][0], l1p, -1, fmt, prec)
    else:
        total = add(I_ONE, s, prec)
        for i in todo:
            out[i] = div(e[i], total, prec)
    return out


def _softmax_row(row: list, fmt: Format, log: bool, tau: float | None = None) -> list:
    n = len(row)
    if n == 0:
        return []
    masked = -INF if log else 0.0
    if any(v != v for v in row) or all(v == -INF for v in row):
        return [NAN] * n
    if any(v == INF for v in row):
        return [NAN if v == INF else masked for v in row]
    index = [i for i, v in enumerate(row) if v != -INF]
    finite = [row[i] for i in index]
    if len(finite) == 1:
        return [masked if v == -INF else (0.0 if log else 1.0) for v in row]
    out = [masked] * n
    if not log and all(v == finite[0] for v in finite):  # exp(x)/sum exp(x) = 1/n exactly
        share = round_rational(1, len(finite), fmt)
        for i in index:
            out[i] = share
        return out
    if len(finite) > _STREAM:
        values = _streamed_softmax(finite, fmt, log, tau)
        for i, v in zip(index, values):
            out[i] = v
        return out
    sh = ShiftedRow(finite, tau)

    def enclose(todo, prec):
        t = sh.at(prec)
        if tau is None or not log:
            return _softmax_enclosures(t.ds, t.k, t.e, t.s, todo, prec, log, fmt if tau is None else None)
        l1p = enclose_log1p(t.s, prec)
        return {i: _rational_plus(sh.q[i], l1p, -1, fmt, prec) for i in todo}

    values = ziv(fmt, len(finite), enclose, {})
    for i, v in zip(index, values):
        out[i] = v
    return out


def _streamed_softmax(finite: list, fmt: Format, log: bool, tau) -> list:
    """The values of :func:`_softmax_row` for a long row, from a :class:`StreamedRow`, decided
    ``_CHUNK`` entries at a time (the same enclosures as the stored path)."""
    sh = StreamedRow(finite, tau)

    def enclose(todo, prec):
        t = sh.at(prec)
        if log:
            l1p = enclose_log1p(t.s, prec)
            if tau is None:
                return {i: _offset_plus(t.offset(i, prec)[0], l1p, -1, fmt, prec) for i in todo}
            return {i: _rational_plus(t.q(i), l1p, -1, fmt, prec) for i in todo}
        total = add(I_ONE, t.s, prec)
        return {i: div(t.exp(i, prec), total, prec) for i in todo}

    return ziv(fmt, len(finite), enclose, {}, chunk=_CHUNK)


def log_softmax(x: ArrayLike, axis: Axis = -1, *, temperature: float = 1.0, method: str = "auto") -> np.ndarray:
    """Correctly rounded ``x/T - logsumexp(x/T)`` along ``axis``, in the dtype of ``x`` (``T`` the
    ``temperature``, exact, as in :func:`logsumexp`).

    Special values: a row holding NaN, or only ``-inf``, is all NaN; in a row holding ``+inf`` the
    ``+inf`` entries are NaN and the others ``-inf``; ``-inf`` entries of other rows give ``-inf``;
    the only finite entry of a row gives ``+0``.

    ``method``: as in :func:`logsumexp` (the fast path is Theorem F6 of proofs/fast_oracle.md).
    """
    return _softmax_rows(x, axis, True, temperature, method)


def softmax(x: ArrayLike, axis: Axis = -1, *, temperature: float = 1.0, method: str = "auto") -> np.ndarray:
    """Correctly rounded ``exp(x/T - logsumexp(x/T))`` along ``axis``, in the dtype of ``x`` (``T``
    the ``temperature``, exact, as in :func:`logsumexp`).

    Special values: as :func:`log_softmax`, with ``0`` in place of ``-inf`` and ``1`` in place of
    ``0``. ``n`` equal finite entries give ``1/n`` each, rounded once.

    ``method``: as in :func:`logsumexp` (the fast path is Theorem F6 of proofs/fast_oracle.md).
    """
    return _softmax_rows(x, axis, False, temperature, method)


# ---------------------------------------------------------------------------------------------
# Softlog entropy, cross-entropy and divergences: c + sum_v W(v) L(v), exact where rational.


def _pairs_entropy(p, q):  # -sum p L(p)
    return ((pi, -pi) for pi in p)


def _pairs_cross(p, q):  # -sum p L(q)
    return ((qi, -pi) for pi, qi in zip(p, q))


def _pairs_sld(p, q):  # sum p (L(p) - L(q)) / 2
    for pi, qi in zip(p, q):
        yield pi, pi / 2
        yield qi, -pi / 2


def _pairs_sym(p, q):  # sum (p - q)(L(p) - L(q)) / 4
    for pi, qi in zip(p, q):
        c = (pi - qi) / 4
        yield pi, c
        yield qi, -c


def softlog_sum(pairs) -> tuple[Fraction, dict]:
    """``sum c * L(v)`` over ``(v, c)`` pairs (c a Fraction) as ``(rational part, {v: W(v)})`` with
    the exact softlogs folded into the rational part and zero weights dropped."""
    weights: dict[float, Fraction] = {}
    for v, c in pairs:
        if c:
            weights[v] = weights.get(v, 0) + c
    const = Fraction(0)
    for v, lv in EXACT_SOFTLOG.items():  # -0.0 and 0.0 are one key
        if v in weights:
            const += weights.pop(v) * lv
    return const, {v: w for v, w in weights.items() if w}


def sum_enclosure(const: Fraction, weights: dict, prec: int, cache: dict):
    """Enclosure of ``const + sum W(v) L(v)``; ``cache`` holds ``L(v)`` enclosures at ``prec``."""
    c = dyadic(const)
    total = (c, c)
    for v, w in weights.items():
        lv = cache.get(v)
        if lv is None:
            lv = cache[v] = enclose_softlog(v, prec)
        wm = dyadic(w)
        total = add(total, mul((wm, wm), lv, prec), prec)
    return total


def _row_sum(pairs, fmt: Format) -> float:
    """Correctly rounded ``sum c * L(v)`` over the ``(v, c)`` pairs (floats v, Fraction c)."""
    const, weights = softlog_sum(pairs)
    if not weights:
        return round_rational(const.numerator, const.denominator, fmt)

    def enclose(todo, prec):
        return {0: sum_enclosure(const, weights, prec, {})}

    return ziv(fmt, 1, enclose, {})[0]


def _divergence_row(pairs, softlog_args: str, prow: list, qrow: list, fmt: Format) -> float:
    """The correctly rounded sum of one row (lists of floats), by the interval loop."""
    if not all(math.isfinite(v) for v in prow + qrow):
        return NAN
    evaluated = set()
    if "p" in softlog_args:
        evaluated.update(prow)
    if "q" in softlog_args:
        evaluated.update(qrow)
    if any(below_branch(v) for v in evaluated):
        return NAN
    fp = [Fraction(v) for v in prow]
    fq = [Fraction(v) for v in qrow]
    return _row_sum(((float(v), c) for v, c in pairs(fp, fq)), fmt)


_FAST_KIND = {_pairs_entropy: "entropy", _pairs_cross: "cross", _pairs_sld: "sld", _pairs_sym: "sym"}


def _divergence(pairs, args, names, softlog_args, axis, keepdims, validate, method):
    fmt, arrays = prepared_distributions(args, names, axis, validate)
    rows = [Rows(as_float64(a), axis) for a in arrays]
    if _fast(method, fmt, None):
        p = np.ascontiguousarray(rows[0].rows)
        q = np.ascontiguousarray(rows[-1].rows)
        fast_values, todo = fast_divergence.divergence_rows(_FAST_KIND[pairs], p, q, fmt)
        values = fast_values.astype(np.float64)
        for r in todo.tolist():
            values[r] = _divergence_row(pairs, softlog_args, p[r].tolist(), q[r].tolist(), fmt)
    else:
        ps = rows[0].rows.tolist()
        qs = rows[-1].rows.tolist()
        values = np.array(
            [_divergence_row(pairs, softlog_args, prow, qrow, fmt) for prow, qrow in zip(ps, qs)],
            dtype=np.float64,
        )
    return rows[0].reduced(values, keepdims).astype(fmt.dtype)


def softlog_entropy(
    p: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    *,
    validate: bool = True,
    method: str = "auto",
) -> np.ndarray:
    """Correctly rounded ``-sum(p * L(p))`` along ``axis``.

    With ``validate=False`` a row holding NaN or ``±inf`` gives NaN and an entry below
    ``-1/(e**2 - 1)`` gives NaN; an exact zero result is ``+0``.
    ``method``: as in :func:`logsumexp` (the fast path for float16, bfloat16 and float32 is
    Theorem F7 of proofs/fast_oracle.md).
    """
    return _divergence(_pairs_entropy, (p,), ("p",), "p", axis, keepdims, validate, method)


def softlog_cross_entropy(
    p: ArrayLike,
    q: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    *,
    validate: bool = True,
    method: str = "auto",
) -> np.ndarray:
    """Correctly rounded ``-sum(p * L(q))`` along ``axis``.

    With ``validate=False`` a row holding NaN or ``±inf`` gives NaN, and so does an entry of ``q``
    below ``-1/(e**2 - 1)`` (whatever ``p`` is there: ``0 * NaN`` is NaN); an exact zero result is
    ``+0``.
    ``method``: as in :func:`logsumexp` (the fast path for float16, bfloat16 and float32 is
    Theorem F7 of proofs/fast_oracle.md).
    """
    return _divergence(_pairs_cross, (p, q), ("p", "q"), "q", axis, keepdims, validate, method)


def sld(
    p: ArrayLike,
    q: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    *,
    validate: bool = True,
    method: str = "auto",
) -> np.ndarray:
    """Correctly rounded ``sum(p * (L(p) - L(q))) / 2`` along ``axis``.

    With ``validate=False`` a row holding NaN or ``±inf`` gives NaN, and so does an entry of ``p``
    or ``q`` below ``-1/(e**2 - 1)``; an exact zero result (e.g. ``p == q``) is ``+0``.
    ``method``: as in :func:`logsumexp` (the fast path for float16, bfloat16 and float32 is
    Theorem F7 of proofs/fast_oracle.md).
    """
    return _divergence(_pairs_sld, (p, q), ("p", "q"), "pq", axis, keepdims, validate, method)


def sld_sym(
    p: ArrayLike,
    q: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    *,
    validate: bool = True,
    method: str = "auto",
) -> np.ndarray:
    """Correctly rounded ``sum((p - q) * (L(p) - L(q))) / 4`` along ``axis``.

    With ``validate=False`` a row holding NaN or ``±inf`` gives NaN, and so does an entry of ``p``
    or ``q`` below ``-1/(e**2 - 1)``; an exact zero result (e.g. ``p == q``) is ``+0``.
    ``method``: as in :func:`logsumexp` (the fast path for float16, bfloat16 and float32 is
    Theorem F7 of proofs/fast_oracle.md).
    """
    return _divergence(_pairs_sym, (p, q), ("p", "q"), "pq", axis, keepdims, validate, method)


# ---------------------------------------------------------------------------------------------
# The softlog-softmax layer


def softlog_softmax(P: ArrayLike, w: ArrayLike, *, log: bool = False, validate: bool = True) -> np.ndarray:
    """Correctly rounded ``softmax_k(sum_b w[b, k] * L(P[..., b, k]))`` (``log_softmax`` if ``log``).

    ``P`` has shape ``(..., B, K)``; ``w`` has shape ``(B, K)`` or ``(B,)``. The result has shape
    ``(..., K)`` and the common dtype of ``P`` and ``w``.

    Special values: ``K == 1`` gives ``1`` (``+0`` with ``log``); ``B == 0`` gives the uniform
    ``1/K``. With ``validate=False``, a row (one ``(B, K)`` slice) holding NaN or ``±inf`` in ``P``,
    ``±inf`` or NaN in ``w``, or an entry of ``P`` below ``-1/(e**2 - 1)`` (whatever its weight:
    ``0 * NaN`` is NaN) is all NaN.
    """
    fmt, P, w = prepared_layer(P, w, validate)
    B, K = P.shape[-2:]
    w64 = as_float64(w)
    w2 = np.broadcast_to(w64[:, None] if w64.ndim == 1 else w64, (B, K))
    flat = as_float64(P).reshape(int(np.prod(P.shape[:-2], dtype=np.int64)), B, K)
    out = np.empty((flat.shape[0], K), dtype=np.float64)
    for r in range(flat.shape[0]):
        out[r] = _layer_row(flat[r], w2, fmt, log)
    return out.reshape(P.shape[:-2] + (K,)).astype(fmt.dtype)


def _layer_row(Pr, w2, fmt, log):
    B, K = Pr.shape
    if K == 0:
        return []
    if not (np.isfinite(Pr).all() and np.isfinite(w2).all()):
        return [NAN] * K
    if any(below_branch(v) for v in set(Pr.ravel().tolist())):
        return [NAN] * K
    if K == 1:
        return [0.0 if log else 1.0]
    Pl, wl = Pr.tolist(), w2.tolist()
    forms = [
        softlog_sum((Pl[b][k], Fraction(wl[b][k])) for b in range(B)) for k in range(K)
    ]
    if not log and all(f == forms[0] for f in forms):  # equal logits: 1/K exactly
        return [round_rational(1, K, fmt)] * K

    def enclose(todo, prec):
        cache: dict = {}
        z = [sum_enclosure(c, ws, prec, cache) for c, ws in forms]
        k = max(range(K), key=lambda j: libmp.to_float(z[j][1]))
        d = [I_ZERO if j == k else sub(z[j], z[k], prec) for j in range(K)]
        e = [I_ONE if j == k else enclose_exp(d[j], prec) for j in range(K)]
        s = I_ZERO
        for j in range(K):
            if j != k:
                s = add(s, e[j], prec)
        return _softmax_enclosures(d, k, e, s, todo, prec, log)

    return ziv(fmt, K, enclose, {})
