"""The backward pass of the softlog-softmax layer: the VJP of ``softlog_softmax(P, w)`` with respect
to ``P`` and ``w`` (proofs/grad.md, Theorem G6).

With ``z_k = sum_b w[b, k] L(P[..., b, k])`` and ``p = softmax(z)`` along the last axis, a
cotangent ``g`` of the output's shape first becomes the cotangent of the logits,
``v_k = p_k (g_k - sum_j g_j p_j)`` (softmax) or ``v_k = g_k - p_k sum_j g_j`` (``log=True``),
and then

* ``dP[..., b, k] = v_k w[b, k] L'(P[..., b, k])`` with ``L'(x) = 1/(x - x_b)``;
* ``dw[b, k] = sum over the leading indices of v_k L(P[..., b, k])``; for ``w`` of shape ``(B,)``,
  ``dw[b]`` sums over ``k`` too, evaluated as ``sum v_k (L(P[..., b, k]) - L(P[..., b, m]))``
  (``m`` the row's largest logit), which is the same number because ``sum_k v_k = 0``: a member
  whose distribution is constant along ``k`` contributes an exact zero.

Algorithm, in float64 for every format: the double-double logits and the float64 softmax of the
forward layer (:mod:`._layer`, Theorem D8: relative error ``rho + 2**-53``,
``rho = 2**-61 (Z + 1)``); ``v`` by the kernels of the softmax and log-softmax VJPs
(:func:`softlog_numerics.functions._backward.centred_at`,
:func:`~softlog_numerics.functions._backward.log_softmax_cotangent`); ``dP`` as
``((v L') m_w) 2**e_w`` (``w = m_w 2**e_w``) with ``P - x_b`` from the double-double branch point;
``dw`` from double-double softlogs (or differences of softlogs), float64 products and an
error-free signed sum over the leading indices. One rounding to the format of ``P`` (for ``dP``)
and of ``w`` (for ``dw``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics._core import constants as _c
from softlog_numerics._core.axes import checked_cotangent, prepared_layer
from softlog_numerics._core.eft import nonnegative_row_sums, two_sum
from softlog_numerics._core.formats import as_float_array, format_of, round_from_float64
from softlog_numerics.functions._backward import (
    centred_at,
    log_softmax_cotangent,
    signed_sums,
)
from softlog_numerics.functions._layer import finite_rows, layer_logits, layer_softmax
from softlog_numerics.functions._softlog_dd import (
    softlog_dd,
    softlog_diff_dd,
)

__all__ = ["softlog_softmax_vjp"]


def softlog_softmax_vjp(
    P: ArrayLike, w: ArrayLike, g: ArrayLike, *, log: bool = False, validate: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """VJP of :func:`softlog_numerics.softlog_softmax` with respect to ``P`` and ``w``.

    Parameters
    ----------
    P : array_like, shape ``(..., B, K)``
        The member distributions, as in :func:`softlog_numerics.softlog_softmax`.
    w : array_like, shape ``(B, K)`` or ``(B,)``
        The weights.
    g : array_like, shape ``(..., K)``
        The cotangent of the layer's output (any float format).
    log : bool, keyword-only
        The VJP of the log-softmax layer (``softlog_softmax(P, w, log=True)``).
    validate : bool, keyword-only
        As in :func:`softlog_numerics.softlog_softmax`.

    Returns
    -------
    (dP, dw) : tuple of numpy.ndarray
        ``dP`` of ``P``'s shape and dtype, ``dw`` of ``w``'s shape and dtype.

    Notes
    -----
    Domain: that of the forward layer (``Z = max_k sum_b |w[b, k] L(P[..., b, k])| <= 2**900``).
    Special values (as :func:`softlog_numerics.oracle.grad.softlog_softmax`): a row (one
    ``(B, K)`` slice of ``P`` with its ``g``) whose forward value is NaN, or whose cotangent is not
    finite, gives a NaN row of ``dP`` and makes all of ``dw`` NaN (each ``dw`` entry sums over every
    row); a zero cotangent row, ``K == 1``, and a softmax cotangent constant along the row give
    ``v = 0`` exactly (``+0`` components). Algorithm: module docstring. Accuracy: within
    ``LOSS_GRAD_BOUNDS["grad.softlog_softmax"]`` ULPs, or within ``CANCELLATION * 2**-53 * tau``
    of the correctly rounded value, ``tau`` the term scale of
    :func:`softlog_numerics.testing.contract.layer_grad_term_scale`, which carries the layer's
    conditioning factor ``1 + (Z + 1)/1024`` (proofs/grad.md, Theorem G6).
    """
    P_in = as_float_array(P, "P")
    w_in = as_float_array(w, "w")
    fmt_P, fmt_w = format_of(P_in.dtype), format_of(w_in.dtype)
    _, P2, w2_ = prepared_layer(P_in, w_in, validate)
    B, K = P2.shape[-2:]
    lead = P2.shape[:-2]
    G = checked_cotangent(g, lead + (K,)).reshape(-1, K)
    R = G.shape[0]
    wv = w2_.astype(np.float64)
    w2 = np.ascontiguousarray(np.broadcast_to(wv[:, None] if wv.ndim == 1 else wv, (B, K)))
    flat = P2.astype(np.float64).reshape(R, B, K)
    dP = np.zeros((R, B, K))
    dw = np.zeros(wv.shape)
    if R == 0 or K == 0 or B == 0:
        return _rounded(dP, P2.shape, fmt_P), _rounded(dw, wv.shape, fmt_w)
    ok = finite_rows(flat, w2) & np.isfinite(G).all(axis=1)
    if not ok.all():
        dP[~ok] = np.nan
        dw[...] = np.nan
    live = np.flatnonzero(ok & (G != 0.0).any(axis=1))
    if K >= 2 and live.size:
        Pl = flat[live]
        _, e = np.frexp(np.abs(G[live]).max(axis=1))
        Gf = np.ldexp(G[live], -e[:, None])  # rows scaled to [1/2, 1) at most: exact but for
        #                                      entries below 2**-1074 of the row's largest
        v, m = _logit_cotangent(Pl, w2, Gf, log)
        with np.errstate(all="ignore"):
            dP[live] = _dP(v, Pl, w2, e)
            if ok.all():
                dw[...] = _dw(v, e, m, Pl, wv.ndim == 1)
    return _rounded(dP, P2.shape, fmt_P), _rounded(dw, wv.shape, fmt_w)


def _rounded(x64, shape, fmt):
    with np.errstate(all="ignore"):
        return round_from_float64(x64.reshape(shape), fmt)


def _logit_cotangent(P, w2, Gf, log: bool):
    """``(v, m)``: the cotangent of the logits (float64, rows of ``Gf``'s scale) and each row's
    index of the largest logit."""
    zh, zl = layer_logits(P, w2)
    p = layer_softmax(zh, zl, False)
    m = np.argmax(zh, axis=1)
    if log:
        others = p.copy()
        others[np.arange(p.shape[0]), m] = 0.0
        qh, ql = nonnegative_row_sums(others)
        return log_softmax_cotangent(p, m, qh + ql, Gf), m
    return p * centred_at(p, m, Gf), m


def _dP(v, P, w2, e):
    """``v_k w[b, k] / (P[r, b, k] - x_b)`` as ``((v L') m_w) 2**(e_w + e_r)``: the row exponents
    ``e`` of the cotangent's scaling folded into one ``ldexp``, so that a subnormal result is
    rounded once."""
    s, d = two_sum(P, -_c.XB[0])
    Lp = 1.0 / (s + (d - _c.XB[1]))  # P - x_b = P - XB[0] - XB[1]: one rounding, then 1/.
    mw, ew = np.frexp(w2)
    t = (v[:, None, :] * Lp) * mw[None]
    return np.ldexp(t, e[:, None, None] + ew[None]) + 0.0  # exact zeros: +0


def _dw(v, e, m, P, per_member: bool):
    """``sum_r v[r, k] L(P[r, b, k])`` (shape ``(B, K)``), or with ``per_member`` the sum over ``k``
    too of ``v[r, k] (L(P[r, b, k]) - L(P[r, b, m_r]))`` (shape ``(B,)``), for rows of ``v``
    carrying the scale ``2**e[r]``: each output's terms are brought to the scale of its largest
    term (exact but for terms below ``2**-1074`` of it), summed error-free, and scaled back."""
    R, B, K = P.shape
    if per_member:
        ref = np.broadcast_to(P[np.arange(R), :, m][:, :, None], P.shape)
        same = P == ref
        D = np.zeros(P.shape)
        if (~same).any():
            D[~same], _ = softlog_diff_dd(P[~same], ref[~same])
        terms = (v[:, None, :] * D).transpose(1, 0, 2).reshape(B, R * K)
        scale = np.repeat(e, K)[None, :]  # column r * K + k belongs to row r
    else:
        Lh, _ = softlog_dd(P.ravel())
        terms = (v[:, None, :] * Lh.reshape(P.shape)).transpose(1, 2, 0).reshape(B * K, R)
        scale = e[None, :]
    _, te = np.frexp(terms)
    size = np.where(terms != 0.0, te + scale, np.iinfo(np.int32).min)
    top = size.max(axis=1, keepdims=True)
    top = np.where(top == np.iinfo(np.int32).min, 0, top)
    sh, sl = signed_sums(np.ldexp(terms, scale - top))
    return np.ldexp(sh + sl, top[:, 0]).reshape((B,) if per_member else (B, K))
