"""A certified fast path for the correctly rounded logsumexp, log_softmax and softmax (Ziv's strategy).

For rows of float16, bfloat16 or float32 logits (exact in float64) the results are evaluated in
float64 with a proven error bound per element (proofs/fast_oracle.md, Theorem F6), and the rounding
to the input's format is *decided* when both ends of the error interval round to the same number
(the same bits, sign of zero included). Rows with an undecided element, and the rows the special
value table settles (NaN, ``+inf``, fewer than two finite entries, and for softmax equal finite
entries, whose result is the rational ``1/n``), are returned as *undecided rows*: the caller
(:mod:`softlog_numerics.oracle.twins`) computes them with the mpmath oracle, so that every result
is the mpmath oracle's, bit for bit.

The evaluation, for a row ``x`` with maximum ``m`` at its first position ``k``:

* ``d_i = fl(x_i - m)``, ``e_i = exp(d_i)`` (NumPy, Hypothesis W), ``e_k`` replaced by 0;
* ``s = sum_i e_i`` by a balanced tree of additions built here (``ceil(log2 n)`` roundings per
  term, whatever order NumPy's own reductions would use);
* ``l = log1p(s)``; then ``log_softmax_i = d_i - l``, ``softmax_i = e_i / (1 + s)`` (``e_k = 1``),
  ``logsumexp = m + l``.

Only the temperature 1 has a fast path (a temperature divides the logits exactly as real numbers,
which float64 cannot do); float64 rows have none (a float64 value cannot decide a float64
rounding). Both go to the mpmath oracle.
"""

from __future__ import annotations

import math

import numpy as np

from softlog_numerics._core.formats import Format, round_from_float64
from softlog_numerics.oracle.fast import LIBM_RELATIVE_ERROR

__all__ = [
    "TILE",
    "UNIT_ROUNDOFF",
    "SoftmaxTile",
    "decided_rounding",
    "logsumexp_rows",
    "regular_rows",
    "softmax_estimate",
    "softmax_rows",
    "sum_error_bound",
    "tree_sum",
]

UNIT_ROUNDOFF = 2.0**-53
"""``u``, the unit roundoff of float64."""

TILE = 1 << 16
"""Elements per tile of rows (the tile's float64 temporaries stay in the cache)."""

_W = LIBM_RELATIVE_ERROR
_TINY = 2.0**-1074  # smallest positive float64
_ABS = 2.0**-1000  # absolute allowance for the subnormal range of float64 (Theorem F6, step 2)
_SAFE = 1.0 + 2.0**-40  # covers the roundings in computing a bound (Theorem F6, step 6)
_D_CAP = 746.0  # exp(t) < 2**-1076 for t <= -746: such terms are covered by _ABS


def sum_error_bound(n: int) -> float:
    """``gamma_h = h u / (1 - h u)`` for ``h = ceil(log2 n)``: the relative error bound of the
    tree sum of ``n`` non-negative float64 terms (proofs/fast_oracle.md, Theorem F6, step 3)."""
    h = max(1, math.ceil(math.log2(max(n, 1))))
    return h * UNIT_ROUNDOFF / (1.0 - h * UNIT_ROUNDOFF)


def tree_sum(e: np.ndarray) -> np.ndarray:
    """Row sums of the 2-d ``e`` (destroyed) by a balanced tree: at each level the upper half of the
    columns is added onto the lower half, so each term meets ``ceil(log2 n)`` roundings (the error
    is at most ``sum_error_bound(n) * sum(|e|)``, Higham, Lemma 3.1, whatever the signs)."""
    n = e.shape[1]
    while n > 1:
        h = n // 2
        e[:, :h] += e[:, n - h : n]
        n -= h
    return e[:, 0].copy()


def decided_rounding(v: np.ndarray, r: np.ndarray, fmt: Format, sign: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Round ``v`` to ``fmt`` where every real number within ``r`` of ``v`` rounds alike.

    ``v`` and ``r >= 0`` are float64 arrays: the truth is known to lie in ``[v - r, v + r]``. The
    interval is widened by the float64 roundings of its ends (Theorem F6, step 6); with ``sign``
    ``-1`` (``+1``) the truth is known to be negative (positive), and the interval is clipped below
    ``-0`` (above ``+0``), so that a result that underflows gets its sign of zero. Returns the
    rounded values (in ``fmt.dtype``) and a mask of the decided ones: those whose two ends round to
    the same bits.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.abs(v)
        w *= 2.0**-52
        w += r
        w *= _SAFE
        w += _TINY
        lo = v - w
        hi = np.add(v, w, out=w)
        if sign < 0:
            np.minimum(hi, -_TINY, out=hi)
        elif sign > 0:
            np.maximum(lo, _TINY, out=lo)
        a = round_from_float64(lo, fmt)
        b = round_from_float64(hi, fmt)
    decided = a.view(fmt.uint) == b.view(fmt.uint)
    decided &= ~np.isnan(v)
    return a, decided


_SHORT = 16  # rows up to this length are reduced column by column (NumPy's reductions along a
# short last axis cost tens of ns per row)


def _row_reduce(op: np.ufunc, t: np.ndarray) -> np.ndarray:
    """``op.reduce(t, axis=1)`` for ``np.maximum`` or ``np.minimum`` (NaN propagates), column by
    column for short rows."""
    if t.shape[1] > _SHORT:
        return op.reduce(t, axis=1)
    m = t[:, 0].copy()
    for j in range(1, t.shape[1]):
        op(m, t[:, j], out=m)
    return m


def _row_argmax(t: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The first position of the row maximum ``m`` (rows without NaN), as ``t.argmax(axis=1)``."""
    if t.shape[1] > _SHORT:
        return t.argmax(axis=1)
    k = np.full(t.shape[0], t.shape[1] - 1, dtype=np.intp)
    for j in range(t.shape[1] - 2, -1, -1):
        k[t[:, j] == m] = j
    return k


def _row_all(b: np.ndarray) -> np.ndarray:
    """Rows whose entries are all True, as ``b.all(axis=1)``."""
    if b.shape[1] > _SHORT:
        return np.asarray(b.all(axis=1))
    a = b[:, 0].copy()
    for j in range(1, b.shape[1]):
        a &= b[:, j]
    return a


class SoftmaxTile:
    """The float64 quantities of Theorem F6 for a tile of regular rows (maxima ``m``, minima ``lo``)."""

    def __init__(self, t: np.ndarray, m: np.ndarray, lo: np.ndarray):
        rows, n = t.shape
        self.m = m
        self.k = _row_argmax(t, m)
        self.idx = np.arange(rows)
        with np.errstate(invalid="ignore", over="ignore"):
            self.d = t - m[:, None]
            e = np.exp(self.d)
        e[self.idx, self.k] = 0.0
        self.e = e
        self.s = tree_sum(e.copy())
        self.l = np.log1p(self.s)
        # Theorem F6, steps 1-4: beta bounds the relative error of each e_i, delta that of s
        spread = np.minimum(m - lo, _D_CAP)  # +inf for rows with masked entries: capped
        # (sums of small positive terms, so that their own roundings are relative: step 6)
        c = 1.01 * UNIT_ROUNDOFF * spread
        self.beta = _W + c + _W * c
        gamma = sum_error_bound(n)
        self.delta = gamma + self.beta + gamma * self.beta
        self.eta_l = _W + self.delta * (1.0 + 2.0 * self.delta) * (1.0 + _W)

    def probabilities(self) -> tuple[np.ndarray, np.ndarray]:
        """``(v, r)`` with ``|softmax - v| <= r`` elementwise (Theorem F6, step 5, softmax); ``v``
        is 1/(1 + s) at the argmax and exactly 0 at masked entries. Consumes ``self.e``."""
        u = UNIT_ROUNDOFF
        e = self.e
        e[self.idx, self.k] = 1.0
        with np.errstate(invalid="ignore", over="ignore"):
            v = e / (1.0 + self.s)[:, None]
            dden = u + self.delta + u * self.delta + 2.0 * _ABS
            eta = (self.beta + u + self.beta * u + dden) / (1.0 - dden)
            r = v * (eta * (1.0 + 2.0 * eta))[:, None]
            r += 2.0 * _ABS
        return v, r

    def complement(self) -> tuple[np.ndarray, np.ndarray]:
        """``(v, r)`` per row with ``|q_k - v| <= r`` for ``q_k = 1 - softmax_k = s / (1 + s)`` at
        the argmax ``k`` (Theorem F8, step 1: the relative error of ``s`` in place of that of
        ``e_i`` in step 5 of Theorem F6)."""
        u = UNIT_ROUNDOFF
        with np.errstate(invalid="ignore", over="ignore"):
            v = self.s / (1.0 + self.s)
            dden = u + self.delta + u * self.delta + 2.0 * _ABS
            eta = (self.delta + u + self.delta * u + dden) / (1.0 - dden)
            r = v * (eta * (1.0 + 2.0 * eta))
            r += 4.0 * _ABS
        return v, r


def regular_rows(t: np.ndarray, log: bool):
    """Which rows of the tile ``t`` the fast path evaluates (the others are settled exactly: NaN,
    ``+inf``, fewer than two finite entries and, for softmax, equal finite entries), with the row
    maxima and minima."""
    m = _row_reduce(np.maximum, t)
    lo = _row_reduce(np.minimum, t)
    ok = np.isfinite(m)  # no NaN (max propagates it), no +inf, not all -inf
    if t.shape[1] < 2:
        ok[:] = False
    elif not log:
        ok &= lo != m
    masked = np.flatnonzero(ok & (lo == -np.inf))
    if masked.size:
        sub = t[masked]
        fin = np.isfinite(sub)
        good = fin.sum(axis=1) >= 2
        if not log:
            good &= np.where(fin, sub, np.inf).min(axis=1) != m[masked]
        ok[masked] = good
    return ok, m, lo


def _estimate(t: np.ndarray, m: np.ndarray, lo: np.ndarray, log: bool):
    """``(v, r, tile)`` of Theorem F6 for regular rows ``t`` (maxima ``m``, minima ``lo``)."""
    q = SoftmaxTile(t, m, lo)
    u = UNIT_ROUNDOFF
    with np.errstate(invalid="ignore", over="ignore"):
        if log:
            # Theorem F6, step 5 (log_softmax): |y - v| <= eta_y |y| + abs, |y| = |d| + l
            v = q.d - q.l[:, None]
            eta = u + (1.0 + u) * np.maximum(u, q.eta_l)
            r = np.abs(v)
            r *= (eta * (1.0 + 2.0 * eta))[:, None]
            r += 2.0 * _ABS
        else:
            # Theorem F6, step 5 (softmax): relative error of e_i, of 1 + s, and the division
            v, r = q.probabilities()
    return v, r, q


def _next_toward(z: np.ndarray, d: np.ndarray, fmt: Format) -> np.ndarray:
    """The neighbour of each ``z`` (a number of ``fmt``, ``z != d``) on the side of ``d``, as float64."""
    bits = z.view(fmt.uint).astype(np.int64)
    away = np.abs(d) > np.abs(z.astype(np.float64))
    bits += np.where(away, 1, -1)
    return bits.astype(fmt.uint).view(fmt.dtype).astype(np.float64)


def _exact_offsets(t, m, q, vals, dec, fmt: Format) -> None:
    """Theorem F6, step 5': decide the log_softmax entries left undecided whose offset
    ``d = x - m`` is exact, from ``d - l_hi <= y < d`` (``l > 0``): in place on ``vals``, ``dec``."""
    ri, ci = np.nonzero(~dec)
    if not ri.size:
        return
    x, mm, d = t[ri, ci], m[ri], q.d[ri, ci]
    with np.errstate(invalid="ignore", over="ignore"):
        bb = d - x  # TwoSum(x, -m): d + err = x - m exactly
        err = (x - (d - bb)) + (-mm - bb)
        lh, eta = q.l[ri], q.eta_l[ri]
        l_hi = (lh + 2.0 * _ABS) * (1.0 + 2.0 * eta) * _SAFE
        low = np.nextafter(d - l_hi, -np.inf)  # <= d - l_hi (one float64 below the rounded difference)
        z = round_from_float64(d, fmt)
        zf = z.astype(np.float64)
        mid = zf != d
        mid[mid] = (zf[mid] + _next_toward(z[mid], d[mid], fmt)) / 2.0 == d[mid]
        top = np.where(mid, np.nextafter(d, -np.inf), d)
        top[d == 0.0] = -_TINY
        a = round_from_float64(low, fmt)
        b = round_from_float64(top, fmt)
    ok = (err == 0.0) & (a.view(fmt.uint) == b.view(fmt.uint)) & np.isfinite(d)
    vals[ri[ok], ci[ok]] = a[ok]
    dec[ri[ok], ci[ok]] = True


def softmax_estimate(x: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """The float64 value ``v`` and error bound ``r`` of Theorem F6 for (log-)softmax of each row of
    the float64 array ``x``: ``|exact - v| <= r`` elementwise, for rows of values of a format of at
    most 24 bits with at least two finite entries, no NaN and no ``+inf`` (other rows: unspecified).
    For the tests, which check the bound against mpmath."""
    return _estimate(x, x.max(axis=1), x.min(axis=1), log)[:2]


def softmax_rows(x: np.ndarray, fmt: Format, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """(Log-)softmax of each row of the float64 array ``x`` (values of ``fmt``), fast.

    Returns the results in ``fmt.dtype`` (shape of ``x``) and the indices of the rows left to the
    exact path (their values in the first array are unspecified).
    """
    rows, n = x.shape
    out = np.empty((rows, n), dtype=fmt.dtype)
    undecided = np.zeros(rows, dtype=np.bool_)
    if n == 0 or rows == 0:
        return out, np.flatnonzero(undecided)
    step = max(1, TILE // n)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        t = x[r0:r1]
        ok, m, lo = regular_rows(t, log)
        undecided[r0:r1] = ~ok
        if not ok.any():
            continue
        if not ok.all():
            t, m, lo = t[ok], m[ok], lo[ok]
        v, r, q = _estimate(t, m, lo, log)
        masked = np.isneginf(t)
        with np.errstate(invalid="ignore", over="ignore"):
            vals, dec = decided_rounding(v, r, fmt, sign=-1 if log else 1)
            vals[masked] = -np.inf if log else 0.0
        dec |= masked
        if log and not dec.all():
            _exact_offsets(t, m, q, vals, dec, fmt)
        bad = ~_row_all(dec)
        if ok.all():
            out[r0:r1] = vals
            undecided[r0:r1] |= bad
        else:
            pos = np.flatnonzero(ok) + r0
            out[pos] = vals
            undecided[pos[bad]] = True
    return out, np.flatnonzero(undecided)


def logsumexp_rows(x: np.ndarray, fmt: Format) -> tuple[np.ndarray, np.ndarray]:
    """``ln(sum(exp(x)))`` of each row of the float64 array ``x`` (values of ``fmt``), fast.

    Returns the results in ``fmt.dtype`` (one per row) and the indices of the rows left to the
    exact path.
    """
    rows, n = x.shape
    out = np.zeros(rows, dtype=fmt.dtype)  # undecided rows stay 0 (no stray bit patterns)
    undecided = np.ones(rows, dtype=np.bool_)
    if n < 2 or rows == 0:
        return out, np.flatnonzero(undecided)
    step = max(1, TILE // n)
    u = UNIT_ROUNDOFF
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        t = x[r0:r1]
        ok, m, lo = regular_rows(t, True)
        if not ok.any():
            continue
        pos = np.flatnonzero(ok) + r0
        if not ok.all():
            t, m, lo = t[ok], m[ok], lo[ok]
        q = SoftmaxTile(t, m, lo)
        with np.errstate(invalid="ignore", over="ignore"):
            # Theorem F6, step 5 (logsumexp): |LSE - v| <= u |v| + (1 + u)(eta_l l + abs)
            v = q.m + q.l
            r = np.abs(v) * (u * (1.0 + 2.0 * u)) + q.l * (q.eta_l * (1.0 + 2.0 * q.eta_l)) + 4.0 * _ABS
            vals, dec = decided_rounding(v, r, fmt)
        out[pos] = vals
        undecided[pos] = ~dec
    return out, np.flatnonzero(undecided)
