"""Double-double exponential and logarithm on float64 arrays, without libm (except the starting
point of the Newton step of :func:`log1p_dd`): the kernels of the float64 log-softmax family, used
by the production functions and by the oracle's float64 fast path.

* :func:`exp_dd`: ``exp(th + tl) = 2**k (mh + ml)``; :func:`expm1_dd`: ``expm1(x)`` for
  ``x`` in ``[0, 700]``; :func:`log1p_dd`: ``log1p(sh + sl)`` for ``sh >= 0``;
* :func:`expm1_core` (``|r| <= 0.36``), :func:`reduce_ln2`, and the in-place double-double
  steps :func:`dd_mul_into`, :func:`dd_add_const_into` they are built from.

Relative error at most ``2**-97`` for exact double-double input (hypothesis H_dd,
proofs/log_softmax.md, Theorem LSE0 (b), which argues it term by term; it needs ``np.log1p`` within
``2**-47`` relative, Hypothesis W of proofs/fast_oracle.md, for the Newton step's start).
"""

from __future__ import annotations

import numpy as np

from softlog_numerics._core import constants as _c
from softlog_numerics._core.dd import dd_add
from softlog_numerics._core.eft import fast_two_sum, split, two_sum

__all__ = [
    "INV_LN2",
    "LN2_1",
    "LN2_2",
    "LN2_3",
    "dd_add_const_into",
    "dd_mul_into",
    "exp_dd",
    "expm1_core",
    "expm1_dd",
    "log1p_dd",
    "reduce_ln2",
]

_SPLITTER = 134217729.0  # 2**27 + 1
INV_LN2 = 1.4426950408889634
"""``1 / ln 2`` rounded to float64 (the reduction's quotient estimate)."""
# ln 2 = LN2_1 + LN2_2 + LN2_3 (+ 1.4e-37): the first two have 32 significant bits, so k * LN2_i
# is exact for |k| < 2**21.
LN2_1 = float.fromhex("0x1.62e42ff000000p-1")
LN2_2 = float.fromhex("-0x1.718432a200000p-35")
LN2_3 = float.fromhex("0x1.3c7673007e5edp-69")


def expm1_core(rh, rl):
    """``expm1(r)`` as a double-double for ``|r| <= 0.36``: Taylor of degree 10 at ``r / 2**8``
    (truncation ``< 2**-119`` relative), then 8 doublings ``E <- E (E + 2)``.

    The operations are those of :func:`dd_mul` and :func:`dd_add` (``_core.dd``), in the same order,
    written into preallocated scratch arrays (:func:`dd_mul_into`, :func:`dd_add_const_into`):
    the results are the same bits, with about half the memory traffic. The split of the constant
    factor ``r / 2**8`` of the Horner steps is computed once."""
    rh = rh * 2.0**-8
    rl = rl * 2.0**-8
    shape = np.shape(rh)
    w = [np.empty(shape) for _ in range(4)]
    rs = split(rh)
    ph = np.full(shape, _c.INV_FACTORIALS[10][0])
    pl = np.full(shape, _c.INV_FACTORIALS[10][1])
    for i in range(9, 0, -1):
        dd_mul_into(ph, pl, rh, rl, rs, w)
        dd_add_const_into(ph, pl, *_c.INV_FACTORIALS[i], w)
    dd_mul_into(ph, pl, rh, rl, rs, w)
    eh, el = ph, pl
    th, tl = np.empty(shape), np.empty(shape)
    for _ in range(8):
        np.copyto(th, eh)
        np.copyto(tl, el)
        dd_add_const_into(th, tl, 2.0, 0.0, w)
        dd_mul_into(eh, el, th, tl, split(th), w)
    return eh, el


def dd_mul_into(ah, al, bh, bl, bs, w):
    """``(ah, al) <- dd_mul(ah, al, bh, bl)`` bit for bit (``bs = split(bh)``, ``w`` four scratch
    arrays of the shape; ``ah``, ``al`` must not be ``bh``, ``bl``)."""
    x0, x1, x2, x3 = w
    bsh, bsl = bs
    np.multiply(ah, _SPLITTER, out=x0)  # split(ah): c
    np.subtract(x0, ah, out=x1)  # c - a
    np.subtract(x0, x1, out=x0)  # hi
    np.subtract(ah, x0, out=x1)  # lo
    p = x3
    np.multiply(ah, bh, out=p)  # p = ah bh
    # e = ((hi bsh - p) + hi bsl + lo bsh) + lo bsl (two_prod), into x2
    np.multiply(x0, bsh, out=x2)
    x2 -= p
    np.multiply(x0, bsl, out=x0)  # hi no longer needed
    x2 += x0
    np.multiply(x1, bsh, out=x0)
    x2 += x0
    np.multiply(x1, bsl, out=x0)
    x2 += x0
    # x = e + (ah bl + al bh)
    np.multiply(ah, bl, out=x0)
    np.multiply(al, bh, out=x1)
    x0 += x1
    x2 += x0
    # fast_two_sum(p, x): s = p + x, t = x - (s - p)
    np.add(p, x2, out=ah)
    np.subtract(ah, p, out=x0)
    np.subtract(x2, x0, out=al)


def dd_add_const_into(ah, al, bh: float, bl: float, w):
    """``(ah, al) <- dd_add(ah, al, bh, bl)`` bit for bit, for float64 constants ``bh``, ``bl``."""
    x0, x1, x2, _ = w
    np.add(ah, bh, out=x0)  # s
    np.subtract(x0, ah, out=x1)  # bb = s - a
    np.subtract(x0, x1, out=x2)  # s - bb
    np.subtract(ah, x2, out=x2)  # a - (s - bb)
    np.subtract(bh, x1, out=x1)  # b - bb
    x2 += x1  # t
    np.add(al, bl, out=x1)
    x2 += x1  # y = t + (al + bl)
    np.add(x0, x2, out=ah)  # s2 = s + y
    np.subtract(ah, x0, out=x1)
    np.subtract(x2, x1, out=al)  # y - (s2 - s)


def reduce_ln2(th, tl):
    """``t = k ln 2 + r`` with ``r`` a double-double, ``|r| <= 0.35`` (``|th| < 2**20``)."""
    k = np.rint(th * INV_LN2)
    rh, rl = two_sum(th, -k * LN2_1)  # exact, and so is k * LN2_1
    rh, rl = dd_add(rh, rl, -k * LN2_2, 0.0)
    rh, rl = dd_add(rh, rl, tl, -k * LN2_3)
    return k, rh, rl


def exp_dd(th, tl):
    """``exp(th + tl) = 2**k (mh + ml)`` with ``mh + ml`` in ``[0.7, 1.42]`` (never underflows)."""
    k, rh, rl = reduce_ln2(th, tl)
    eh, el = expm1_core(rh, rl)
    mh, ml = fast_two_sum(1.0, eh)
    mh, ml = fast_two_sum(mh, ml + el)
    return k.astype(np.int64), mh, ml


def expm1_dd(x):
    """``expm1(x)`` as a double-double for float64 ``x`` in ``[0, 700]``."""
    k, rh, rl = reduce_ln2(x, np.zeros_like(x))
    eh, el = expm1_core(rh, rl)
    p = np.ldexp(1.0, k.astype(np.int64))
    ch, cl = two_sum(p, -1.0)
    return dd_add(eh * p, el * p, ch, cl)


def log1p_dd(sh, sl):
    """``log1p(sh + sl)`` as a double-double, for ``sh >= 0``: ``L0 = log1p(sh)``, then one Newton
    step ``L = L0 + log1p(d)``, ``d = (s - expm1(L0)) / (1 + expm1(L0))``."""
    L0 = np.log1p(sh)
    mh, ml = expm1_dd(L0)
    nh, nl = dd_add(sh, sl, -mh, -ml)
    d = (nh + nl) / (1.0 + mh)
    return fast_two_sum(L0, d - 0.5 * d * d)
