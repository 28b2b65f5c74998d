"""The softlog-softmax layer: member distributions -> softlog -> class-wise weighted sum -> softmax.

``softlog_softmax(P, w)[..., k] = softmax_k(z)`` with ``z_k = sum_b w[b, k] L(P[..., b, k])`` for
``B`` member distributions ``P[..., b, :]`` over ``K`` classes (``log_softmax`` with ``log=True``).

Algorithm (proofs/divergence.md, Theorem D8), in float64 for every format:

1. ``L(P)`` as double-doubles (:func:`softlog_numerics.functions._softlog_dd.softlog_dd`), ``w L`` exactly
   (TwoProd) and ``z_k`` by an error-free pairwise sum over ``b``: ``z`` carries an absolute error
   of at most ``2**-63.9 Z_k``, ``Z_k = sum_b |w[b, k] L(P[..., b, k])|``.
2. ``x_j = z_j - z_m`` (``m`` a largest ``z``) in double-double; ``exp(x_j) = 2**k_j E_j`` with
   ``E_j`` a double-double from a 64-entry table of ``2**(i/64)`` and a series for ``expm1``.
3. ``s = sum_{j != m} exp(x_j)`` scaled by its largest power of two; softmax ``exp(x_k) / (1 + s)``
   (a double-double division), log-softmax ``x_k - log1p(s)`` with the double-double ``log1p``.
4. One rounding to float64, and one to the format.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics._core import constants as _c
from softlog_numerics._core.axes import prepared_layer
from softlog_numerics._core.dd import dd_div, dd_row_sums
from softlog_numerics._core.eft import fast_two_sum, two_prod, two_sum
from softlog_numerics._core.formats import round_from_float64
from softlog_numerics.functions._softlog_dd import below_branch, log1p_dd, softlog_dd

__all__ = ["finite_rows", "layer_logits", "layer_softmax", "softlog_softmax"]

# ln(2)/64 = _C_HI + _C_LO with _C_HI of 36 significant bits (n * _C_HI exact for |n| < 2**17), and
# the table 2**(i/64) = _T2_HI[i] + _T2_LO[i]: literals of _constants.
_C_HI, _C_LO = _c.LN2_64
_T2_HI = np.array([hi for hi, _ in _c.EXP2_TABLE])
_T2_LO = np.array([lo for _, lo in _c.EXP2_TABLE])
_INV_C = 64 / math.log(2)
# expm1(r) = r + r**2/2 + r**3 * (1/6 + r/24 + ... + r**6/9!)
_EXP_TAIL = tuple(1.0 / math.factorial(n) for n in range(3, 10))
_X_MIN = -1100.0  # exp(x) below 2**-1500: it is 0 in every format and 2**-400 of any sum it joins


def _exp_dd(xh, xl):
    """``exp(xh + xl) = 2**k (Eh + El)`` for ``-1100 <= xh <= 1`` with ``E`` in ``[0.99, 2]``.

    ``x = n ln2/64 + r``, ``|r| <= ln2/128 + 2**-40``; ``exp(x) = 2**(n // 64) 2**((n % 64)/64) (1 + expm1(r))``.
    """
    n = np.rint(xh * _INV_C)
    r0 = xh - n * _C_HI  # exact: n * _C_HI is exact and within a factor 2 of xh (or n = 0)
    rh, rl = two_sum(r0, -n * _C_LO)
    rh, rl = fast_two_sum(rh, rl + xl)
    qh, ql = two_prod(rh, rh)
    ql = ql + 2.0 * rh * rl
    poly = _EXP_TAIL[-1]
    for c in _EXP_TAIL[-2::-1]:
        poly = poly * rh + c
    s, e = two_sum(rh, 0.5 * qh)
    mh, ml = fast_two_sum(s, (e + (rl + 0.5 * ql)) + (rh * qh) * poly)  # expm1(r)
    i = (n % 64).astype(np.intp)
    k = ((n - i) // 64).astype(np.int64)
    th, tl = _T2_HI[i], _T2_LO[i]
    ph, pl = two_prod(th, mh)
    pl = pl + (th * ml + tl * mh)
    s, e = two_sum(th, ph)
    eh, el = fast_two_sum(s, (e + pl) + tl)
    return eh, el, k



def finite_rows(flat, w2):
    """The rows ``r`` of ``flat`` (float64, ``(R, B, K)``) whose layer value is a number: every
    ``P[r]`` entry finite and not below the branch point, and every weight finite."""
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(flat).all(axis=(1, 2)) & bool(np.isfinite(w2).all())
        ok &= ~below_branch(np.where(np.isfinite(flat), flat, 0.0)).any(axis=(1, 2))
    return ok


def layer_logits(P, w2):
    """``z = sum_b w[b, k] L(P[r, b, k])`` as double-doubles, shape ``(R, K)``."""
    R, B, K = P.shape
    if B == 0:
        return np.zeros((R, K)), np.zeros((R, K))
    lh, ll = softlog_dd(P.ravel())
    lh, ll = lh.reshape(R, B, K), ll.reshape(R, B, K)
    th, tl = two_prod(w2[None], lh)
    tl = tl + w2[None] * ll
    th = np.swapaxes(th, 1, 2).reshape(R * K, B)
    tl = np.swapaxes(tl, 1, 2).reshape(R * K, B)
    sh, sl = dd_row_sums(th, tl)
    zh, zl = fast_two_sum(sh, sl)
    return zh.reshape(R, K), zl.reshape(R, K)


def layer_softmax(zh, zl, log: bool):
    """(log-)softmax of double-double logits ``(R, K)``, ``K >= 1``, as float64."""
    R, K = zh.shape
    rows = np.arange(R)
    m = np.argmax(zh, axis=1)
    s, e = two_sum(zh, -zh[rows, m][:, None])
    xh, xl = fast_two_sum(s, e + (zl - zl[rows, m][:, None]))
    xh[rows, m], xl[rows, m] = 0.0, 0.0
    live = xh >= _X_MIN
    live[rows, m] = False
    eh = np.zeros((R, K))
    el = np.zeros((R, K))
    ek = np.zeros((R, K), dtype=np.int64)
    if live.any():
        eh[live], el[live], ek[live] = _exp_dd(xh[live], xl[live])
    # s = sum_{j != m} exp(x_j) = 2**kmax (Sh + Sl)
    kmax = np.where(live, ek, np.iinfo(np.int64).min // 2).max(axis=1)
    kmax = np.where(live.any(axis=1), kmax, 0)
    with np.errstate(under="ignore"):
        shift = (ek - kmax[:, None]).clip(-2000, 0).astype(np.int32)
        sh_, sl_ = dd_row_sums(np.ldexp(eh, shift), np.ldexp(el, shift))
    Sh, Sl = fast_two_sum(sh_, sl_)
    zero = Sh == 0.0  # no x_j (j != m) above _X_MIN (K >= 2 here)
    small = kmax < -1000  # then s < 2**-999: log1p(s) = s to 2**-999 relative, 1 + s = 1
    with np.errstate(under="ignore"):
        uh = np.where(small, 0.0, np.ldexp(Sh, kmax.clip(-1000, 1100).astype(np.int32)))
        ul = np.where(small, 0.0, np.ldexp(Sl, kmax.clip(-1000, 1100).astype(np.int32)))
    if log:
        lh, ll = log1p_dd(uh, ul)
        with np.errstate(under="ignore"):
            tiny = -np.ldexp(Sh + Sl, kmax.clip(-3000, 0).astype(np.int32))
        ym = np.where(small, tiny, -(lh + ll))
        ym = np.where(zero, -0.0, ym)  # every other exp(x_j) below 2**-1500: y_m = -0 after rounding
        s, e = two_sum(xh, -lh[:, None])
        y = s + (e + (xl - ll[:, None]))
        y[rows, m] = ym
        return y
    th, tl = two_sum(1.0, uh)
    th, tl = fast_two_sum(th, tl + ul)
    eh[rows, m], el[rows, m], ek[rows, m] = 1.0, 0.0, 0
    qh, ql = dd_div(eh, el, th[:, None], tl[:, None])
    with np.errstate(under="ignore"):
        out = np.ldexp(qh + ql, ek.clip(-3000, 10).astype(np.int32))
    return np.where(live | (np.arange(K)[None] == m[:, None]), out, 0.0)


def softlog_softmax(P: ArrayLike, w: ArrayLike, *, log: bool = False, validate: bool = True) -> np.ndarray:
    """Softlog-softmax layer: ``softmax_k(sum_b w[b, k] L(P[..., b, k]))``.

    Parameters
    ----------
    P : array_like, shape ``(..., B, K)``
        ``B`` member distributions over ``K`` classes (each ``P[..., b, :]`` a probability vector).
    w : array_like, shape ``(B, K)`` or ``(B,)``
        Class-wise (or member-wise) weights; finite.
    log : bool, keyword-only
        Return the log-softmax instead.
    validate : bool, keyword-only
        Check that every ``P[..., b, :]`` is a distribution and that ``w`` is finite (ValueError
        naming the first offending index); shapes are always checked (ValueError with both shapes).

    Returns
    -------
    numpy.ndarray, shape ``(..., K)``
        In the common format of ``P`` and ``w`` (float16 with bfloat16 gives float32).

    Notes
    -----
    Special values follow :func:`softlog_numerics.oracle.softlog_softmax`: ``K == 1`` gives 1
    (``+0`` with ``log``); ``B == 0`` gives ``1/K``; with ``validate=False`` a ``(B, K)`` slice
    holding NaN or ``±inf`` in ``P`` or ``w``, or an entry of ``P`` below ``-1/(e**2 - 1)``
    (whatever its weight), is all NaN; ``K`` equal logits give ``1/K`` rounded once.

    Domain: ``P`` finite above ``-1/(e**2 - 1)``, ``w`` finite with
    ``Z = max_k sum_b |w[b, k] L(P[..., b, k])| <= 2**900``. Algorithm: double-double logits,
    a double-double ``exp`` of the offsets from the largest logit, and a double-double division
    (softmax) or ``x_k - log1p(sum_{j != m} exp(x_j))`` (log-softmax), rounded once to float64 and
    once to the format (module docstring).

    Accuracy (no contract row; the bound depends on the conditioning of ``z``): the computed
    logits carry an absolute error of at most ``2**-63.9 Z_k``, which the (log-)softmax turns into
    a relative error of at most ``rho = 2**-61 (Z + 1)``. The result is within
    ``1 + floor(2**(p + 1) rho + 2**(p - 51) [p < 53])`` ULP of the correctly rounded value for a
    format with ``p`` significand bits, that is within 1 ULP whenever ``Z <= 2**(59 - p)`` in
    float16/bfloat16/float32 (``2**48``, ``2**51``, ``2**35``) and ``Z <= 126`` in float64 (e.g.
    ``|w| <= 126`` with one member), and ``1 + floor((Z + 1)/128)`` ULP in float64 beyond; proven in
    proofs/divergence.md, Theorem D8.
    """
    fmt, P, w = prepared_layer(P, w, validate)
    B, K = P.shape[-2:]
    lead = P.shape[:-2]
    R = int(np.prod(lead, dtype=np.int64))
    w64 = w.astype(np.float64)
    w2 = np.ascontiguousarray(np.broadcast_to(w64[:, None] if w64.ndim == 1 else w64, (B, K)))
    flat = P.astype(np.float64).reshape(R, B, K)
    out = np.full((R, K), np.nan)
    if K == 0 or R == 0:
        return out.reshape(lead + (K,)).astype(fmt.dtype)
    good = np.flatnonzero(finite_rows(flat, w2))
    if good.size:
        if K == 1:
            out[good] = 0.0 if log else 1.0
        else:
            zh, zl = layer_logits(flat[good], w2)
            res = layer_softmax(zh, zl, log)
            if not log:
                equal = ((zh == zh[:, :1]) & (zl == zl[:, :1])).all(axis=1)
                res[equal] = 1.0 / K  # then rounded once more: right for K < 2**28 (Theorem D8)
            out[good] = res
    result = out if fmt.name == "float64" else round_from_float64(out, fmt)
    return np.asarray(result, dtype=fmt.dtype).reshape(lead + (K,))
