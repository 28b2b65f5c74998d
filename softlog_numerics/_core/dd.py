"""Double-double arithmetic on float64 arrays: a value is the unevaluated sum ``hi + lo`` of two
float64 with ``|lo| <= ulp(hi)/2``, built on the error-free transformations of :mod:`.eft` (Muller
et al., Handbook of Floating-Point Arithmetic, ch. 14; the bounds used are proven where each caller
cites them).

* ``dd_add``: ``(ah + al) + (bh + bl)`` (TwoSum of the high parts, the rest in float64);
* ``dd_mul``: ``(ah + al)(bh + bl)`` (TwoProd of the high parts plus the cross terms);
* ``dd_div``: ``(nh + nl) / (dh + dl)``, one Newton correction of ``q = nh / dh`` whose remainder
  ``nh - q dh`` is exact (proofs/divergence.md, fact F4 and Theorem D4);
* ``dd_div_scalar``: ``(th + tl) / T`` for a positive float64 ``T``, relative error ``<= 2**-103``
  over the whole float64 range (proofs/log_softmax.md, Theorem LSE9 (a));
* ``dd_row_sums``: row sums of a double-double matrix as ``(s, err)``, a pairwise tree of TwoSum
  whose errors are collected with the low parts in ``err`` (proofs/divergence.md, Theorem D5).

Their error bounds are stated, term by term, where they are used: proofs/log_softmax.md (Theorem
LSE0) for ``dd_add`` and ``dd_mul``, proofs/divergence.md (Theorems D4-D8) for ``dd_div`` and
``dd_row_sums``; ``dd_div_scalar`` handles the whole range itself (scaling, overflow to infinity).
Valid without overflow, and while products stay within TwoProd's range (``|a|, |b| < 2**995``).
"""

from __future__ import annotations

import math

import numpy as np

from softlog_numerics._core.eft import fast_two_sum, two_prod, two_sum

__all__ = ["dd_add", "dd_div", "dd_div_scalar", "dd_mul", "dd_row_sums"]


def dd_add(ah, al, bh, bl):
    s, e = two_sum(ah, bh)
    return fast_two_sum(s, e + (al + bl))


def dd_mul(ah, al, bh, bl):
    p, e = two_prod(ah, bh)
    return fast_two_sum(p, e + (ah * bl + al * bh))


def dd_div(nh, nl, dh, dl):
    q = nh / dh
    p, e = two_prod(q, dh)
    rem = (((nh - p) - e) + nl) - q * dl
    return fast_two_sum(q, rem / dh)


def dd_row_sums(hi, lo):
    err = lo.sum(axis=1)
    while hi.shape[1] > 1:
        if hi.shape[1] % 2:
            hi = np.concatenate([hi, np.zeros((hi.shape[0], 1))], axis=1)
        s, e = two_sum(hi[:, 0::2], hi[:, 1::2])
        err = err + e.sum(axis=1)
        hi = s
    s = hi[:, 0] if hi.shape[1] else np.zeros(hi.shape[0])
    return s, err


def dd_div_scalar(th, tl, tau: float):
    """``(th + tl) / tau`` as a double-double ``(h, l)`` for a double-double ``th + tl`` (``|tl| <=
    ulp(th)/2``, or ``th`` infinite and ``tl = 0``) and a float64 ``tau > 0`` (proofs/log_softmax.md,
    Theorem LSE9 (a)).

    With ``tau = m 2**j``, ``m`` in ``[1/2, 1)``: ``h' = RN(th / m)``, the remainder ``th - h' m``
    is a float, formed exactly by TwoProd (F4), and ``r = RN(RN(th - h' m + tl) / m)``; ``h' + r``
    errs by at most ``2**-103 |h' + r|``, and ``ldexp(., -j)`` is exact unless the result is
    subnormal (absolute error ``<= 2**-1075``) or overflows (``+-inf``, with ``l = 0``). Arguments
    are scaled by ``2**-64`` at and above ``2**990`` (Dekker's split) and by ``2**200`` below
    ``2**-900`` (no underflow in TwoProd), the scale removed by the same ``ldexp``.
    """
    m, j = math.frexp(tau)
    a = np.abs(th)
    big, small = a >= 2.0**990, a < 2.0**-900
    shift = np.full(th.shape, -j, dtype=np.int64)
    if big.any() or small.any():
        scale = np.where(big, 2.0**-64, np.where(small, 2.0**200, 1.0))
        th, tl = th * scale, tl * scale
        shift += np.where(big, 64, np.where(small, -200, 0))
    h = th / m
    p, e = two_prod(h, m)
    r = (((th - p) - e) + tl) / m
    hh, ll = fast_two_sum(h, r)
    hh, ll = np.ldexp(hh, shift), np.ldexp(ll, shift)
    bad = ~np.isfinite(hh)
    if bad.any():
        hh = np.where(bad, np.ldexp(th / m, shift), hh)  # +-inf (th infinite, or an overflow)
        ll = np.where(bad, 0.0, ll)
    return hh, ll
