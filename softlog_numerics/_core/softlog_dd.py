"""The double-double softlog and its kernels, shared by the divergences, the softlog-softmax layer
(re-exported by ``functions/_softlog_dd.py``) and the float64 fast oracle (``oracle/fast.py``);
proofs/divergence.md, Theorems D3 and D4. In the core so that the oracle can use them without
importing the production functions.

With ``a = e - 1/e``, ``x0 = 1/(e + 1)`` (where ``L`` vanishes) and ``x_b = -1/(e**2 - 1)`` (the
branch point, ``L(x_b) = -inf``), for float64 arrays:

* :func:`softlog_dd` -- ``L(x)`` as a double-double, relative error below ``2**-64``: near ``x0``
  ``log1p(a (x - x0))`` by a series, elsewhere ``log(a (x - x_b))`` by a table of 93 logarithms
  ``log(j/128)`` and the same series (Theorem D3);
* :func:`softlog_diff_dd` -- ``L(p) - L(q)`` as a double-double with ``D(q, p) = -D(p, q)`` exactly:
  ``log1p(a (h - l) / (a (l - x_b)))`` for ``h > l`` with ``h - l`` exact (Theorem D4);
* :func:`log1p_dd` -- ``log1p`` of a double-double by the same series and table;
* :func:`centred` -- ``a (x - c)`` for the centres ``x0`` and ``x_b`` as a double-double, with
  ``x - c`` exact;
* :func:`below_branch` -- ``a x + 1/e < 0``, decided exactly.
"""

from __future__ import annotations

import numpy as np

from softlog_numerics._core import constants as _c
from softlog_numerics._core.dd import dd_div
from softlog_numerics._core.eft import fast_two_sum, two_prod, two_sum

__all__ = ["below_branch", "centred", "log1p_dd", "softlog_arg", "softlog_diff_dd", "softlog_dd"]


# ---------------------------------------------------------------------------------------------
# Constants. a = e - 1/e, x0 = 1/(e + 1) and the branch point x_b = -1/(e**2 - 1) are the pairs of
# softlog_numerics._core.constants, with D0 = a (x0 - X0[0]) and DB = a (x_b - XB[0]) so that
# a (x - x0) = a (x - X0[0]) - D0 and a (x - x_b) = a (x - XB[0]) - DB with x - X0[0], x - XB[0]
# exact (TwoSum). ln 2 (_LN2_HI with 42 significant bits: k * _LN2_HI exact for |k| < 2**11) and the
# table log(j/128) for the reduced argument m in [sqrt(1/2), sqrt(2)) are literals of _constants.

_LN2_HI, _LN2_LO = _c.LN2
_J0, _J1 = _c.LOG_J0, _c.LOG_J1
_A_HI, _A_LO = _c.A
_LOGC_HI = np.array([hi for hi, _ in _c.LOG_TABLE])
_LOGC_LO = np.array([lo for _, lo in _c.LOG_TABLE])
_SQRT_HALF = 0.7071067811865476
_TAU = 2.0**-8  # series for log1p(r) when |r| <= _TAU (and |r| <= 0.00553 after the table reduction)
_HUGE = 2.0**990  # softlog arguments at least this large are scaled by 2**-64 first (Dekker's split
# needs its argument below 2**996)
_BIG = 2.0**500  # differences L(p) - L(q) with max(|p|, |q|) at least this large are scaled by 2**-600
# log1p(r) = r - r**2/2 + r**3 * (1/3 - r/4 + ... - r**7/10): the float64 tail coefficients
_TAIL = tuple((-1.0) ** (n + 1) / n for n in range(3, 11))


# ---------------------------------------------------------------------------------------------
# Double-double kernels on 1-D float64 arrays.


def _mul_a(h, l):
    """``(e - 1/e) * (h + l)`` as a double-double."""
    p, e = two_prod(_A_HI, h)
    return fast_two_sum(p, e + (_A_HI * l + _A_LO * h))


def centred(x, centre, d, scale=1.0):
    """``a (x - c)`` as a double-double, for the centre ``c`` with float64 part ``centre[0]`` and
    ``d = a (c - centre[0])`` (a pair): ``a (x - centre[0]) - d`` with ``x - centre[0]`` exact.
    ``scale`` (a power of two, per element) multiplies ``x`` and the constants first."""
    sh, sl = two_sum(x * scale, -centre[0] * scale)
    th, tl = _mul_a(sh, sl)
    s, e = two_sum(th, -d[0] * scale)
    return fast_two_sum(s, (e + tl) - d[1] * scale)


def _log1p_series(rh, rl):
    """``log1p(rh + rl)`` for ``|rh| <= 0.00553``: ``r - r**2/2`` in double-double, the rest in float64."""
    qh, ql = two_prod(rh, rh)
    ql = ql + 2.0 * rh * rl
    s, e = two_sum(rh, -0.5 * qh)
    poly = _TAIL[-1]
    for c in _TAIL[-2::-1]:
        poly = poly * rh + c
    tail = (rh * qh) * poly
    lo = (e + (rl - 0.5 * ql)) + tail
    return fast_two_sum(s, lo)


def _log_dd(ah, al, k0):
    """``log(ah + al) + k0 * ln 2`` for ``ah > 0`` normal: ``ah = 2**k m``, ``m = c (1 + r)`` with
    ``c = j/128`` the nearest table point, so ``log = k ln2 + log c + log1p(r)``, ``|r| <= 0.00553``."""
    m, k = np.frexp(ah)
    low = m < _SQRT_HALF
    m = np.where(low, 2.0 * m, m)
    k = np.where(low, k - 1, k)
    ml = np.ldexp(al, -k)
    j = np.rint(m * 128.0)
    c = j / 128.0
    dh, dl = two_sum(m - c, ml)  # m - c is exact (Sterbenz)
    rh = dh / c
    ph, pl = two_prod(rh, c)
    rl = (((dh - ph) - pl) + dl) / c
    rh, rl = fast_two_sum(rh, rl)
    sh, sl = _log1p_series(rh, rl)
    idx = j.astype(np.intp) - _J0
    kf = (k + k0).astype(np.float64)
    s1, e1 = two_sum(kf * _LN2_HI, _LOGC_HI[idx])
    s2, e2 = two_sum(s1, sh)
    lo = ((e1 + e2) + (kf * _LN2_LO + _LOGC_LO[idx])) + sl
    return fast_two_sum(s2, lo)


def log1p_dd(rh, rl):
    """``log1p(rh + rl)`` as a double-double for ``rh + rl > -1`` (finite)."""
    hi = np.empty_like(rh)
    lo = np.empty_like(rh)
    small = np.abs(rh) <= _TAU
    if small.any():
        hi[small], lo[small] = _log1p_series(rh[small], rl[small])
    big = ~small
    if big.any():
        ah, al = two_sum(1.0, rh[big])
        ah, al = fast_two_sum(ah, al + rl[big])
        hi[big], lo[big] = _log_dd(ah, al, 0)
    return hi, lo


def softlog_arg(x):
    """``A(x)/2**k0 = a (x - x_b) / 2**k0`` as a double-double and ``k0`` (64 for ``|x| >= 2**1000``)."""
    huge = np.abs(x) >= _HUGE
    k0 = np.where(huge, 64, 0)
    ah, al = centred(x, _c.XB, _c.DB, np.where(huge, 2.0**-64, 1.0))
    return ah, al, k0


def softlog_dd(x):
    """``L(x)`` as a double-double for finite ``x`` above the branch point; ``L(0) = -1`` and
    ``L(1) = 1`` exactly. Relative error below ``2**-64`` (proofs/divergence.md, Theorem D3)."""
    x = np.asarray(x, dtype=np.float64)
    hi = np.empty_like(x)
    lo = np.zeros_like(x)
    zero, one = x == 0.0, x == 1.0
    hi[zero], hi[one] = -1.0, 1.0
    todo = ~(zero | one)
    near = todo & (np.abs(x - _c.X0[0]) <= 2.0**-9)
    if near.any():
        th, tl = centred(x[near], _c.X0, _c.D0)
        series = np.abs(th) <= _TAU
        idx = np.flatnonzero(near)[series]
        hi[idx], lo[idx] = _log1p_series(th[series], tl[series])
        todo[idx] = False
    if todo.any():
        ah, al, k0 = softlog_arg(x[todo])
        hi[todo], lo[todo] = _log_dd(ah, al, k0)
    return hi, lo


_RATIO_HIGH = 2.0**1000


def softlog_diff_dd(p, q):
    """``L(p) - L(q)`` as a double-double for ``p != q`` finite above the branch point.

    With ``h = max(p, q)``, ``l = min(p, q)``: ``L(h) - L(l) = log1p(r)``, ``r = a (h - l) / A(l) >= 0``
    with ``h - l`` exact, where ``r <= 2**1000``; ``L(h) - L(l)`` from two double-double softlogs
    otherwise (then it exceeds 693 while ``|L(l)| < 40``); negated when ``p < q``. So ``D(q, p) = -D(p, q)`` exactly, the
    sign of ``D`` is the sign of ``p - q``, and ``{p, q} = {0, 1}`` gives ``±2`` exactly
    (proofs/divergence.md, Theorem D4).
    Arguments of ``2**500`` and more are scaled by ``2**-600`` first (``r`` does not change).
    """
    swap = p < q
    h, l = np.where(swap, q, p), np.where(swap, p, q)
    hi = np.empty_like(p)
    lo = np.zeros_like(p)
    exact = (h == 1.0) & (l == 0.0)
    hi[exact] = 2.0
    todo = ~exact
    ratio = np.zeros_like(todo)
    if todo.any():
        # r is invariant under scaling h, l and x_b by one power of two: keep a (h - l) and A(l)
        # below Dekker's limit
        scale = np.where(np.abs(h[todo]) >= _BIG, 2.0**-600, 1.0)
        ht, lt = h[todo] * scale, l[todo] * scale
        dh, dl = two_sum(ht, -lt)
        nh, nl = _mul_a(dh, dl)
        ah, al = centred(l[todo], _c.XB, _c.DB, scale)
        with np.errstate(over="ignore", invalid="ignore"):
            rh, rl = dd_div(nh, nl, ah, al)
            ok = rh <= _RATIO_HIGH
        idx = np.flatnonzero(todo)[ok]
        ratio[idx] = True
        hi[idx], lo[idx] = log1p_dd(rh[ok], rl[ok])
    direct = ~(exact | ratio)
    if direct.any():
        ph, pl = softlog_dd(h[direct])
        qh, ql = softlog_dd(l[direct])
        s, e = two_sum(ph, -qh)
        hi[direct], lo[direct] = fast_two_sum(s, e + (pl - ql))
    return np.where(swap, -hi, hi), np.where(swap, -lo, lo)


def below_branch(x):
    """``a x + 1/e < 0`` (``L(x)`` is NaN), decided exactly for float64 ``x`` (NaN gives False)."""
    x = np.asarray(x, dtype=np.float64)
    out = x < -0.16
    mid = (x >= -0.16) & (x <= -0.15)
    if mid.any():
        h, _ = centred(x[mid], _c.XB, _c.DB)
        out[mid] = h < 0.0
    return out
