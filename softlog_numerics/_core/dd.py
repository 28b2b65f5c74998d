"""Double-double arithmetic on float64 arrays: a value is the unevaluated sum ``hi + lo`` of two
float64 with ``|lo| <= ulp(hi)/2``, built on the error-free transformations of :mod:`.eft` (Muller
et al., Handbook of Floating-Point Arithmetic, ch. 14; the bounds used are proven where each caller
cites them).

* ``dd_add``: ``(ah + al) + (bh + bl)`` (TwoSum of the high parts, the rest in float64);
* ``dd_mul``: ``(ah + al)(bh + bl)`` (TwoProd of the high parts plus the cross terms);
* ``dd_div``: ``(nh + nl) / (dh + dl)``, one Newton correction of ``q = nh / dh`` whose remainder
  ``nh - q dh`` is exact (proofs/divergence.md, fact F4 and Theorem D4);
* ``dd_row_sums``: row sums of a double-double matrix as ``(s, err)``, a pairwise tree of TwoSum
  whose errors are collected with the low parts in ``err`` (proofs/divergence.md, Theorem D5).

Their error bounds are stated, term by term, where they are used: proofs/log_softmax.md (Theorem
LSE0) for ``dd_add`` and ``dd_mul``, proofs/divergence.md (Theorems D4-D8) for the others.
Valid without overflow, and while products stay within TwoProd's range (``|a|, |b| < 2**995``).
"""

from __future__ import annotations

import numpy as np

from softlog_numerics._core.eft import fast_two_sum, two_prod, two_sum

__all__ = ["dd_add", "dd_div", "dd_mul", "dd_row_sums"]


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
