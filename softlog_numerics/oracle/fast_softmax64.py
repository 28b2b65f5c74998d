"""A certified fast path for the correctly rounded float64 logsumexp, log_softmax and softmax
(Ziv's strategy, proofs/fast_oracle.md, Theorem F9).

A float64 value cannot decide a float64 rounding; a double-double can. For a row of float64 logits
(temperature 1) with maximum ``m`` at its first position ``k``:

* ``d_i = x_i - m`` exactly, as a double-double (TwoSum);
* ``e_i = exp(d_i)`` by the double-double kernel of :mod:`softlog_numerics._core.exp_dd`
  (relative error ``2**-97``, no libm), ``e_k`` left out, entries with ``d_i < -745`` counted as 0;
* ``s = sum e_i`` by the error-free pairwise tree of ``_core.dd.dd_row_sums``, ``l = log1p(s)`` by
  the double-double ``log1p_dd``;
* ``log_softmax_i = d_i - l``, ``softmax_i = e_i / (1 + s)`` (``dd_div``), ``logsumexp = m + l``, each a
  double-double ``(h, t)`` with an absolute error bound ``r``.

The rounding to float64 is *decided* when neither float64 midpoint next to ``h`` lies within ``r``
of ``h + t`` (:func:`decided64`, the test of Theorem F5 with a bound in place of the guard); then
``RN(exact) = h``. Results below ``2**-1021`` in magnitude (the subnormal range, where the
double-double carries no relative accuracy) are undecided unless they are known to round to zero.
Rows with an undecided element, and the rows the special-value table settles, go to the interval
loop; so every result is the loop's, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from softlog_numerics._core.dd import dd_add, dd_div, dd_row_sums
from softlog_numerics._core.eft import fast_two_sum, two_sum
from softlog_numerics._core.exp_dd import exp_dd, log1p_dd
from softlog_numerics.oracle.fast_softmax import UNIT_ROUNDOFF, regular_rows

__all__ = ["DD_KERNEL_ERROR", "decided64", "logsumexp_rows64", "softmax_estimate64", "softmax_rows64"]

DD_KERNEL_ERROR = 2.0**-97
"""Hypothesis H_dd (proofs/log_softmax.md, Theorem LSE0 (b)): relative error of ``exp_dd`` and
``log1p_dd`` for exact double-double input."""

_U2 = UNIT_ROUNDOFF * UNIT_ROUNDOFF
_TINY = 2.0**-1074
_NORMAL = 2.0**-1021  # results below this are not decided from their double-double (Theorem F9, step 6)
_ZERO_BELOW = 2.0**-1075  # a positive result whose upper bound is below this rounds to +0
_D_MIN = -745.0  # exp(d) < 2**-1074 below: counted as 0 (absolute allowance)
_S_MIN = 2.0**-900  # below: log1p(s) = s, relative error s/2 < 2**-901 (Theorem F9, step 3)
_SAFE = 1.0 + 2.0**-40
_BLOCK = 1 << 14  # elements per tile: the kernels make about a hundred passes


def decided64(h: np.ndarray, t: np.ndarray, r: np.ndarray) -> np.ndarray:
    """True where every real number within ``r`` of the double-double ``h + t`` (``|t| <= ulp(h)/2``,
    ``|h| >= 2**-1021``, ``h`` finite) rounds to ``h`` in float64 (Theorem F9, step 6).

    With ``g = ulp(h)``: the midpoint on the side of ``t`` is ``g/2`` from ``h``, or ``g/4`` when
    ``t`` points toward zero and ``|h|`` is a power of two; the one on the other side is farther.
    Decided when the distance from ``h + t`` to it, ``g/2 - |t|`` (or ``g/4 - |t|``), exceeds ``r``.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        m, e = np.frexp(h)
        inward = (np.abs(m) == 0.5) & ((h > 0) != (t > 0)) & (t != 0)
        room = np.ldexp(np.where(inward, 0.25, 0.5), e - 53)
        room -= np.abs(t)
        ok = room > r * _SAFE
        ok &= np.abs(h) >= _NORMAL
        ok &= np.isfinite(h)
    return ok


class _Tile64:
    """The double-double quantities of Theorem F9 for a tile of regular float64 rows."""

    def __init__(self, t: np.ndarray, m: np.ndarray):
        rows, n = t.shape
        self.m = m
        self.k = t.argmax(axis=1)  # regular rows hold no NaN: the first maximum
        self.idx = np.arange(rows)
        with np.errstate(invalid="ignore", over="ignore"):
            self.dh, self.dl = two_sum(t, -m[:, None])
            live = self.dh >= _D_MIN  # False at masked entries and where x - m overflowed
            live[self.idx, self.k] = False
            self.eh = np.zeros((rows, n))
            self.el = np.zeros((rows, n))
            kk, mh, ml = exp_dd(self.dh[live], self.dl[live])
            self.eh[live] = np.ldexp(mh, kk)
            self.el[live] = np.ldexp(ml, kk)
            s, err = dd_row_sums(self.eh, self.el)
            self.sh, self.sl = fast_two_sum(s, err)
            self.lh, self.ll = log1p_dd(self.sh, self.sl)
            # s < 2**-900: log1p_dd's Newton step would run in the subnormal range (H_dd needs
            # s >= 2**-900, proofs/log_softmax.md, Theorem LSE1 (c)); l = s (1 - s/2 + ...) instead
            small = self.sh < _S_MIN
            self.lh[small] = self.sh[small]
            self.ll[small] = self.sl[small]
        # Theorem F9, steps 2-4: |s^ - s| <= delta_s s + abs_s, |l^ - l| <= eta_l l + abs_s
        h = max(1, math.ceil(math.log2(max(n, 2))))
        self.delta_s = DD_KERNEL_ERROR * 1.001 + (n * (h + 2) + 2) * _U2
        self.abs_s = 3.0 * n * _TINY
        self.eta_l = DD_KERNEL_ERROR * 1.001 + self.delta_s * (1.0 + 2.0 * self.delta_s) + 2.0**-900
        self.overflowed = ~np.isfinite(self.dh) & np.isfinite(t)  # x - m beyond the range

    def log_softmax(self):
        """``(h, t, r)`` of ``d_i - l``."""
        with np.errstate(invalid="ignore", over="ignore"):
            yh, yl = dd_add(self.dh, self.dl, -self.lh[:, None], -self.ll[:, None])
            yh[self.idx, self.k] = -self.lh
            yl[self.idx, self.k] = -self.ll
            r = np.abs(yh) * (self.eta_l + 2.0**-101)
            r += self.abs_s
        return yh, yl, r

    def softmax(self):
        """``(h, t, r)`` of ``e_i / (1 + s)``."""
        with np.errstate(invalid="ignore", over="ignore"):
            Dh, Dl = dd_add(np.ones_like(self.sh), np.zeros_like(self.sh), self.sh, self.sl)
            eh, el = self.eh, self.el
            eh[self.idx, self.k] = 1.0
            el[self.idx, self.k] = 0.0
            ph, pl = dd_div(eh, el, Dh[:, None], Dl[:, None])
            eta = DD_KERNEL_ERROR * 1.001 + self.delta_s + 2.0**-102 + self.abs_s
            r = np.abs(ph) * (eta * (1.0 + 2.0 * eta))
            r += 4.0 * _TINY
            # d < -745: p < exp(-745) < 2**-1075, exactly +0 once rounded (step 5)
            gone = self.dh < _D_MIN
            ph[gone] = 0.0
            pl[gone] = 0.0
            r[gone] = 0.0
        return ph, pl, r

    def logsumexp(self):
        """``(h, t, r)`` of ``m + l``."""
        with np.errstate(invalid="ignore", over="ignore"):
            vh, vl = dd_add(self.m, np.zeros_like(self.m), self.lh, self.ll)
            r = (np.abs(self.m) + self.lh) * 2.0**-102 + self.lh * self.eta_l * (1.0 + 2.0**-40) + 2.0 * self.abs_s
        return vh, vl, r


def _offset_midpoints(q: _Tile64, vals: np.ndarray, dec: np.ndarray) -> None:
    """Theorem F9, step 7: log_softmax entries whose exact offset ``d = dh + dl`` is a float64
    midpoint (``x_i`` and ``m`` in different binades) and ``l`` is tiny: ``y = d - l`` lies in
    ``[d - l_hi, d)``, strictly below the midpoint, so it rounds to the float64 just below ``d`` when
    ``l_hi`` is below a quarter of the spacing there. In place on ``vals``, ``dec``."""
    ri, ci = np.nonzero(~dec)
    if not ri.size:
        return
    dh, dl = q.dh[ri, ci], q.dl[ri, ci]
    with np.errstate(invalid="ignore", over="ignore"):
        m, e = np.frexp(dh)
        inward = (np.abs(m) == 0.5) & ((dh > 0) != (dl > 0))
        spacing = np.ldexp(np.where(inward, 0.5, 1.0), e - 53)  # between dh and its neighbour toward dl
        l_hi = (q.lh[ri] + q.abs_s) * (1.0 + 2.0 * q.eta_l) * _SAFE
        ok = (np.abs(dl) * 2.0 == spacing) & (l_hi < spacing * 0.25) & (np.abs(dh) >= _NORMAL) & np.isfinite(dh)
        ok &= dh < 0  # d = x - m < 0 (the argmax, d = 0, is not a midpoint)
        below = np.where(dl > 0, dh, dh - spacing)  # the float64 just below the midpoint d
    vals[ri[ok], ci[ok]] = below[ok]
    dec[ri[ok], ci[ok]] = True


def softmax_estimate64(x: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(h, t, r)`` of Theorem F9 for (log-)softmax of each regular row of the float64 array
    ``x`` (at least two finite entries, no NaN or ``+inf``): ``|exact - (h + t)| <= r``. For the tests."""
    q = _Tile64(x, x.max(axis=1))
    return q.log_softmax() if log else q.softmax()


def _decide(h, t, r, masked, log: bool) -> tuple[np.ndarray, np.ndarray]:
    vals = h.copy()
    dec = decided64(h, t, r)
    if not log:  # positive results known to round to +0
        with np.errstate(invalid="ignore", over="ignore"):
            zero = (np.abs(h) + np.abs(t) + r) * _SAFE < _ZERO_BELOW
        vals[zero] = 0.0
        dec |= zero
    vals[masked] = -np.inf if log else 0.0
    dec |= masked
    return vals, dec


def softmax_rows64(x: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """(Log-)softmax of each row of the float64 array ``x``, fast.

    Returns the float64 results (shape of ``x``) and the indices of the rows left to the exact
    path (their values in the first array are unspecified).
    """
    rows, n = x.shape
    out = np.empty((rows, n))
    undecided = np.zeros(rows, dtype=np.bool_)
    if n == 0 or rows == 0:
        return out, np.flatnonzero(undecided)
    step = max(1, _BLOCK // n)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        t = x[r0:r1]
        ok, m, _ = regular_rows(t, log)
        undecided[r0:r1] = ~ok
        if not ok.any():
            continue
        if not ok.all():
            t, m = t[ok], m[ok]
        q = _Tile64(t, m)
        h, tl, r = q.log_softmax() if log else q.softmax()
        vals, dec = _decide(h, tl, r, np.isneginf(t), log)
        if log and not dec.all():
            _offset_midpoints(q, vals, dec)
        bad = ~dec.all(axis=1) | q.overflowed.any(axis=1)
        pos = np.flatnonzero(ok) + r0
        out[pos] = vals
        undecided[pos[bad]] = True
    return out, np.flatnonzero(undecided)


def logsumexp_rows64(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ln(sum(exp(x)))`` of each row of the float64 array ``x``, fast: the float64 results (one per
    row) and the indices of the rows left to the exact path."""
    rows, n = x.shape
    out = np.zeros(rows)
    undecided = np.ones(rows, dtype=np.bool_)
    if n < 2 or rows == 0:
        return out, np.flatnonzero(undecided)
    step = max(1, _BLOCK // n)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        t = x[r0:r1]
        ok, m, _ = regular_rows(t, True)
        if not ok.any():
            continue
        pos = np.flatnonzero(ok) + r0
        if not ok.all():
            t, m = t[ok], m[ok]
        q = _Tile64(t, m)
        h, tl, r = q.logsumexp()
        dec = decided64(h, tl, r) & ~q.overflowed.any(axis=1)
        out[pos] = h
        undecided[pos] = ~dec
    return out, np.flatnonzero(undecided)
