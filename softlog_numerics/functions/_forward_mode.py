"""Forward mode: Jacobian-vector products of ``logsumexp``, ``log_softmax``, ``softmax`` and
``cross_entropy`` along a tangent ``dx`` of the logits, NumPy only, every format evaluated in
float64 with the machinery of the VJPs (:mod:`._backward`).

With ``p = softmax(x)`` (the float64 production softmax), ``k`` an argmax of the row and
``T = sum_{i != k} (dx_k - dx_i) p_i`` (exact differences and products, a double-double sum):

* logsumexp: ``sum_i p_i dx_i = dx_k - T``;
* log_softmax: ``dx_j - sum_i p_i dx_i = (dx_j - dx_k) + T``, the inner factor of the softmax VJP,
  so a constant tangent gives exactly 0;
* softmax: the softmax VJP with ``g = dx`` (the Jacobian ``diag(p) - p p^T`` is symmetric);
* cross_entropy: ``sum_j w_j dx_j`` with the weights ``w_j = p_j (1 + 2 z_loss lse) - t_j`` of the
  cross-entropy VJP, each product exact, the sum a double-double.

Accuracy (proofs/grad.md, Theorem G4): each result is within the ULP bound of the contract or
within ``CANCELLATION[f] * 2**-53 * tau`` of the correctly rounded value, ``tau`` the sum of the
magnitudes of the terms it is formed from (:func:`softlog_numerics.testing.contract.grad_term_scale`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics._core.axes import Axis, Rows, checked_cotangent
from softlog_numerics._core.eft import two_prod, two_sum
from softlog_numerics._core.formats import round_from_float64
from softlog_numerics._core.targets import IGNORE_INDEX, prepared_targets
from softlog_numerics.functions._backward import (
    centred,
    finish,
    loss_weights,
    per_element,
    row_blocks,
    rows_of,
    scaled_rows,
    signed_sums,
    softmax_block,
    spread,
)

__all__ = ["cross_entropy_jvp", "log_softmax_jvp", "logsumexp_jvp", "softmax_jvp"]


def logsumexp_jvp(x: ArrayLike, dx: ArrayLike, axis: Axis = -1, keepdims: bool = False) -> np.ndarray:
    """JVP of ``logsumexp``: ``sum(softmax(x) dx)`` along ``axis``, in the dtype of ``x``.

    Parameters
    ----------
    x : array_like
        The logits (float16, bfloat16, float32, float64).
    dx : array_like
        The tangent, of ``x``'s shape (any float format).
    axis : int, tuple of ints or None, optional
        As in :func:`softlog_numerics.logsumexp`.
    keepdims : bool, optional
        Keep the reduced axes with length 1.

    Returns
    -------
    numpy.ndarray
        The tangent of ``logsumexp(x, axis, keepdims)``: its shape, ``x``'s dtype.

    Notes
    -----
    Domain and special values (as :func:`softlog_numerics.oracle.grad.logsumexp_jvp`): a row of
    ``x`` with NaN, ``+inf`` or no finite entry, or a non-finite tangent row, gives NaN; a ``-inf``
    logit has ``p_j = 0`` and drops out; an empty row gives ``+0``. Algorithm: ``dx_k - T`` with
    ``T = sum_{i != k} (dx_k - dx_i) p_i`` (``k`` the argmax; exact differences and products, a
    double-double sum), so a constant tangent gives it exactly. Accuracy: ``LOSS_GRAD_BOUNDS`` and
    ``CANCELLATION["grad.logsumexp_jvp"]`` (proofs/grad.md, Theorem G4): narrow formats 1 ULP
    unless the terms cancel below about ``2**-26`` of their sum.
    """
    fmt, rows = rows_of(x, axis)
    D = Rows(checked_cotangent(dx, np.shape(x), "dx"), axis).rows
    X = rows.rows
    R, n = X.shape
    out = np.zeros(R, dtype=fmt.dtype)  # an empty row: the empty sum, +0
    for r0, r1 in row_blocks(R, n):
        out[r0:r1] = _logsumexp_jvp_block(X[r0:r1], D[r0:r1], fmt)
    return rows.reduced(out, keepdims)


def _logsumexp_jvp_block(X, D, fmt):
    with np.errstate(all="ignore"):
        X64 = X.astype(np.float64)
        Df, back = scaled_rows(np.where(np.isfinite(D), D, 0.0))
        _, bad, dk, (Th, Tl) = spread(X64, Df)
        h, e = two_sum(dk, -Th)  # exact
        out = ((h + (e - Tl)) * back)[:, 0]
    return finish(out, bad, D, fmt)


def log_softmax_jvp(x: ArrayLike, dx: ArrayLike, axis: Axis = -1) -> np.ndarray:
    """JVP of ``log_softmax``: ``dx - sum(softmax(x) dx)`` along ``axis``, in the dtype of ``x``.

    Parameters
    ----------
    x : array_like
        The logits (float16, bfloat16, float32, float64).
    dx : array_like
        The tangent, of ``x``'s shape (any float format).
    axis : int, tuple of ints or None, optional
        As in :func:`softlog_numerics.log_softmax`.

    Returns
    -------
    numpy.ndarray
        The tangent of ``log_softmax(x, axis)``: ``x``'s shape and dtype.

    Notes
    -----
    Domain and special values (as :func:`softlog_numerics.oracle.grad.log_softmax_jvp`): NaN rows
    as for :func:`logsumexp_jvp`; a ``-inf`` logit gives ``dx_j - sum(p dx)``. Algorithm:
    ``(dx_j - dx_k) + T`` with ``dx_j - dx_k`` exact and ``T`` as in :func:`logsumexp_jvp`, one
    rounding of a double-double (the inner factor of the softmax VJP): a constant tangent gives
    exactly ``+0`` (shift invariance). Accuracy: ``LOSS_GRAD_BOUNDS`` and
    ``CANCELLATION["grad.log_softmax_jvp"]`` (proofs/grad.md, Theorem G4).
    """
    return per_element(x, dx, axis, _log_softmax_jvp_block, "dx")


def _log_softmax_jvp_block(X, D, fmt):
    with np.errstate(all="ignore"):
        X64 = X.astype(np.float64)
        Df, back = scaled_rows(np.where(np.isfinite(D), D, 0.0))
        _, bad, c = centred(X64, Df)
        out = c * back
    return finish(out, bad, D, fmt)


def softmax_jvp(x: ArrayLike, dx: ArrayLike, axis: Axis = -1) -> np.ndarray:
    """JVP of ``softmax``: ``y (dx - sum(y dx))`` with ``y = softmax(x)`` along ``axis``.

    Parameters
    ----------
    x : array_like
        The logits (float16, bfloat16, float32, float64).
    dx : array_like
        The tangent, of ``x``'s shape (any float format).
    axis : int, tuple of ints or None, optional
        As in :func:`softlog_numerics.softmax`.

    Returns
    -------
    numpy.ndarray
        The tangent of ``softmax(x, axis)``: ``x``'s shape and dtype.

    Notes
    -----
    The Jacobian ``diag(y) - y y^T`` is symmetric, so this is the softmax VJP with ``g = dx``,
    bit for bit (:func:`softlog_numerics.grad.softmax`: same special values, ``-inf`` logits give
    ``+0``, and the same algorithm). Accuracy: ``LOSS_GRAD_BOUNDS`` and
    ``CANCELLATION["grad.softmax_jvp"]``, those of ``grad.softmax`` (proofs/grad.md, Theorem G4).
    """
    return per_element(x, dx, axis, softmax_block, "dx")


def cross_entropy_jvp(
    logits: ArrayLike,
    target: ArrayLike,
    dx: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    axis: int = -1,
    z_loss: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
    validate: bool = True,
) -> np.ndarray:
    """JVP of :func:`softlog_numerics.cross_entropy` along a logits tangent ``dx``:
    ``sum_k (softmax(z)_k (1 + 2 z_loss lse) - t_k) dx_k`` per row, in the dtype of the logits.

    Parameters
    ----------
    logits, target, label_smoothing, axis, z_loss, ignore_index, validate
        As in :func:`softlog_numerics.cross_entropy`.
    dx : array_like
        The tangent of the logits, of their shape (any float format).

    Returns
    -------
    numpy.ndarray
        The tangent of the loss: its shape, the logits' dtype.

    Notes
    -----
    Special values (as :func:`softlog_numerics.oracle.grad.cross_entropy_jvp`): ignored rows give
    ``+0``; rows whose loss is NaN or ``+inf``, or whose tangent row is not finite, give NaN.
    Algorithm: the weights ``w_j`` of :func:`softlog_numerics.grad.cross_entropy` (``p_j - t_j``,
    at the argmax with ``t_k >= 1/2`` ``(1 - t_k) - q_k``, plus ``2 z_loss lse p_j``) in float64,
    the products ``w_j dx_j`` exact (TwoProd) and summed as a double-double, one rounding.
    Accuracy: ``LOSS_GRAD_BOUNDS`` and ``CANCELLATION["grad.cross_entropy_jvp"]``
    (proofs/grad.md, Theorem G4; ``z_loss |lse| <= 2**20``).
    """
    tg = prepared_targets(
        logits, target, label_smoothing=label_smoothing, z_loss=z_loss, axis=axis,
        ignore_index=ignore_index, validate=validate,
    )
    fmt, rows = tg.fmt, tg.rows
    X = rows.rows
    R, K = X.shape
    D = Rows(checked_cotangent(dx, rows.shape, "dx"), axis).rows
    out = np.zeros(R, dtype=fmt.dtype)
    for r0, r1 in row_blocks(R, K):
        out[r0:r1] = _cross_entropy_jvp_block(tg, X[r0:r1], D[r0:r1], r0, r1)
    return rows.reduced(out, False)


_W_BIG = 2.0**64  # weights |w_j| <= 1 + 2 z_loss |lse| beyond this only outside Theorem G4's domain


def _normalised(W):
    """``(W * 2**-e, 2**e)`` with ``e`` the exponent of the largest ``|w|`` on the rows where it
    exceeds ``2**64`` (else ``e = 0``), so that no TwoProd of a weight and a scaled tangent
    overflows. Exact unless a weight falls ``2**1022`` below the largest of its row."""
    m = np.abs(W).max(axis=1, initial=0.0)
    e = np.where(m > _W_BIG, np.frexp(m)[1], 0)
    return np.ldexp(W, -e[:, None]), np.ldexp(1.0, e)


def _cross_entropy_jvp_block(tg, X, D, r0, r1):
    with np.errstate(all="ignore"):
        X64 = X.astype(np.float64)
        w, bad = loss_weights(tg, X64, r0, r1)
        bad = bad | ~np.isfinite(w).all(axis=1)  # 2 z_loss lse p_j beyond the float64 range
        w, wback = _normalised(np.where(np.isfinite(w), w, 0.0))
        Df, back = scaled_rows(np.where(np.isfinite(D), D, 0.0))
        th, te = two_prod(w, Df)  # exact: |w| <= 2**64 and |Df| <= 2**901
        h, lo = signed_sums(th)
        out = ((h + (lo + te.sum(axis=1))) * back[:, 0]) * wback
        out[bad | ~np.isfinite(D).all(axis=1)] = np.nan
        out[tg.ignored[r0:r1]] = 0.0
        return round_from_float64(out, tg.fmt)
