"""The backward pass: vector-Jacobian products of ``logsumexp``, ``log_softmax``, ``softmax`` and
``cross_entropy`` along the last axis of rows, NumPy only, every format evaluated in float64.

With ``p = softmax(x)`` (the float64 production softmax, within 3 ULP: ``|p^ - p| <= 7 u p``,
``u = 2**-53``), ``k`` an argmax of the row, ``q_k = 1 - p_k = sum_{i != k} p_i`` (summed, never
subtracted) and ``S = sum_j g_j`` (double-double):

* log_softmax: ``v_k = -(sum_{i != k} g_i) + q_k S`` and ``v_j = g_j - p_j S`` for ``j != k``: a
  dominant class keeps its small ``v_k`` (PyTorch's ``g - exp(log_softmax) S`` returns 0 there);
* softmax: ``w_j = p_j ((g_j - g_k) + T)`` with ``T = sum_{i != k} (g_k - g_i) p_i``;
* logsumexp: ``gamma p_j``;
* cross_entropy: ``gamma (p_j (1 + 2 z_loss lse) - t_j)``, the argmax component with
  ``t_k >= 1/2`` as ``(1 - t_k) - q_k``.

Accuracy (proofs/grad.md, Theorem G3): each component is within the ULP bound of the contract or
within ``CANCELLATION[f] * 2**-53 * tau_j`` of the correctly rounded value, ``tau_j`` the sum of
the magnitudes of the terms it is formed from (:func:`softlog_numerics.testing.contract.term_scale`).
"""

from __future__ import annotations

import numpy as np

from softlog_numerics._core.axes import Rows
from softlog_numerics._core.eft import nonnegative_row_sums, two_prod, two_sum
from softlog_numerics._core.formats import as_float_array, format_of, round_from_float64
from softlog_numerics._core.targets import IGNORE_INDEX, prepared_targets
from softlog_numerics.functions._log_softmax import logsumexp as _lse
from softlog_numerics.functions._log_softmax import softmax as _softmax

__all__ = ["cross_entropy_vjp", "log_softmax_vjp", "logsumexp_vjp", "softmax_vjp"]


def _cotangent(g, shape, name: str = "g") -> np.ndarray:
    g = as_float_array(g, name)
    if g.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} (the output's), got {g.shape}")
    with np.errstate(invalid="ignore"):
        return g.astype(np.float64)


_BIG = 2.0**900  # cotangent rows beyond this are scaled by 2**-100 (linear: exact), so that no
#                  TwoProd argument reaches 2**995 and no sum overflows


def _scaled(G):
    """``(G * f, 1 / f)`` with ``f = 2**-100`` on rows holding an entry above ``2**900``."""
    with np.errstate(invalid="ignore"):
        big = (np.abs(np.where(np.isfinite(G), G, 0.0)).max(axis=1, initial=0.0) > _BIG)
    f = np.where(big, 2.0**-100, 1.0)
    return G * f[:, None], (1.0 / f)[:, None]


def _signed_sums(G):
    """Row sums of a finite float64 matrix as a double-double (positive and negative parts
    summed error-free, then subtracted): within ``2**-57 sum |G|``."""
    ph, pl = nonnegative_row_sums(np.maximum(G, 0.0))
    nh, nl = nonnegative_row_sums(np.maximum(-G, 0.0))
    h, e = two_sum(ph, -nh)
    return h, e + (pl - nl)


def _probabilities(X64):
    """``(p, k, q_k, bad)``: float64 softmax rows, the argmax, ``1 - p_k`` summed from the other
    entries, and the rows whose derivative is NaN (a NaN or ``+inf`` logit, no finite one)."""
    p = _softmax(X64, axis=-1)
    R, n = X64.shape
    bad = np.isnan(X64).any(axis=1) | (X64 == np.inf).any(axis=1) | ~np.isfinite(X64).any(axis=1)
    k = np.argmax(np.where(np.isnan(X64), -np.inf, X64), axis=1)
    others = np.where(bad[:, None], 0.0, p)
    others[np.arange(R), k] = 0.0
    qh, ql = nonnegative_row_sums(others)
    return p, k, qh + ql, bad


def _rows_of(x, g, axis, gshape=None):
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    rows = Rows(x, axis)
    with np.errstate(invalid="ignore"):
        X64 = rows.rows.astype(np.float64)
    return fmt, rows, X64


def _finish(out64, bad, G, fmt, rows):
    bad = bad | ~np.isfinite(G).all(axis=1) if G is not None else bad
    out64[bad] = np.nan
    with np.errstate(all="ignore"):
        out = round_from_float64(out64, fmt)
    return rows.elementwise(out)


def log_softmax_vjp(x, g, axis=-1) -> np.ndarray:
    """VJP of ``log_softmax``: ``g - softmax(x) sum(g)`` along ``axis``, in the dtype of ``x``.

    Parameters
    ----------
    x : array_like
        The logits (float16, bfloat16, float32, float64).
    g : array_like
        The cotangent, of ``x``'s shape (any float format).
    axis : int, tuple of ints or None, optional
        As in :func:`softlog_numerics.log_softmax`.

    Returns
    -------
    numpy.ndarray
        The input cotangent, ``x``'s shape and dtype.

    Notes
    -----
    Special values (as :func:`softlog_numerics.oracle.grad.log_softmax`): a row of ``x`` with NaN,
    ``+inf`` or no finite entry, or a non-finite cotangent row, gives NaN; a ``-inf`` logit gives
    ``g_j``. Algorithm: at the argmax ``k``, ``-(sum_{i != k} g_i) + q_k S`` with ``q_k`` summed
    from the other probabilities; elsewhere ``g_j - p_j S``. Accuracy: ``ULP_BOUNDS`` and
    ``CANCELLATION["grad.log_softmax"]`` (proofs/grad.md, Theorem G3): narrow formats 1 ULP
    unless the terms cancel below ``2**-28`` of their sum.
    """
    fmt, rows, X64 = _rows_of(x, g, axis)
    G = Rows(_cotangent(g, np.shape(x)), axis).rows
    R, n = X64.shape
    out = np.zeros((R, n))
    if R == 0 or n == 0:
        return rows.elementwise(out.astype(fmt.dtype))
    with np.errstate(all="ignore"):
        Gf, back = _scaled(np.where(np.isfinite(G), G, 0.0))
        p, k, qk, bad = _probabilities(X64)
        Sh, Sl = _signed_sums(Gf)
        rest = Gf.copy()
        rest[np.arange(R), k] = 0.0
        Rh, Rl = _signed_sums(rest)
        S = Sh + Sl
        ph, pe = two_prod(p, S[:, None])
        out = (Gf - ph) - (pe + p * Sl[:, None])
        qh, qe = two_prod(qk, Sh)
        vk_h, vk_e = two_sum(-Rh, qh)
        out[np.arange(R), k] = vk_h + (vk_e + qe + qk * Sl - Rl)
        out *= back
    return _finish(out, bad, G, fmt, rows)


def softmax_vjp(x, g, axis=-1) -> np.ndarray:
    """VJP of ``softmax``: ``y (g - sum(g y))`` with ``y = softmax(x)`` along ``axis``.

    Notes
    -----
    Special values (as :func:`softlog_numerics.oracle.grad.softmax`): NaN rows as for
    :func:`log_softmax_vjp`; ``-inf`` logits give ``+0``. Algorithm: ``p_j ((g_j - g_k) + T)``,
    ``T = sum_{i != k} (g_k - g_i) p_i``, so a constant cotangent gives exactly 0. Accuracy:
    ``ULP_BOUNDS`` and ``CANCELLATION["grad.softmax"]`` (proofs/grad.md, Theorem G3).
    """
    fmt, rows, X64 = _rows_of(x, g, axis)
    G = Rows(_cotangent(g, np.shape(x)), axis).rows
    R, n = X64.shape
    if R == 0 or n == 0:
        return rows.elementwise(np.zeros((R, n)).astype(fmt.dtype))
    with np.errstate(all="ignore"):
        Gf, back = _scaled(np.where(np.isfinite(G), G, 0.0))
        p, k, _, bad = _probabilities(X64)
        gk = Gf[np.arange(R), k][:, None]
        dh, dl = two_sum(gk, -Gf)  # g_k - g_i, exact
        th, te = two_prod(dh, p)
        Th, Tl = _signed_sums(th)
        Tl = Tl + (te + dl * p).sum(axis=1)
        ch, cl = two_sum(Gf, -gk)  # g_j - g_k, exact
        sh, se = two_sum(ch, Th[:, None])
        inner = sh + (se + cl + Tl[:, None])
        out = np.where(X64 == -np.inf, 0.0, (p * inner) * back)  # masked: exactly +0
    return _finish(out, bad, G, fmt, rows)


def logsumexp_vjp(x, g, axis=-1, keepdims: bool = False) -> np.ndarray:
    """VJP of ``logsumexp``: ``g softmax(x)``, ``g`` of the shape ``logsumexp(x, axis,
    keepdims)`` returns; the result has ``x``'s shape and dtype (special values as
    :func:`softlog_numerics.oracle.grad.logsumexp`). Accuracy: ``ULP_BOUNDS["grad.logsumexp"]``
    (proofs/grad.md, Theorem G3)."""
    fmt, rows, X64 = _rows_of(x, g, axis)
    R, n = X64.shape
    reduced = rows.reduced(np.zeros(R), keepdims).shape
    gam = _cotangent(g, reduced).reshape(-1)
    if R == 0 or n == 0:
        return rows.elementwise(np.zeros((R, n)).astype(fmt.dtype))
    with np.errstate(all="ignore"):
        p, _, _, bad = _probabilities(X64)
        out = np.where(X64 == -np.inf, 0.0, p * np.where(np.isfinite(gam), gam, 0.0)[:, None])
    return _finish(out, bad | ~np.isfinite(gam), None, fmt, rows)


def cross_entropy_vjp(
    logits,
    target,
    g,
    *,
    label_smoothing: float = 0.0,
    axis: int = -1,
    z_loss: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
    validate: bool = True,
) -> np.ndarray:
    """Gradient of :func:`softlog_numerics.cross_entropy` with respect to the logits, times the
    cotangent ``g`` of the loss's shape: ``g (softmax(z) (1 + 2 z_loss lse) - t)``.

    Notes
    -----
    Special values (as :func:`softlog_numerics.oracle.grad.cross_entropy`): ignored rows give
    ``+0``; rows whose loss is NaN or ``+inf`` give NaN. Algorithm: ``p_j - t_j`` (and at the
    argmax, when ``t_k >= 1/2``, ``(1 - t_k) - q_k`` with ``q_k`` summed from the other
    probabilities), plus ``2 z_loss lse p_j``, times ``g``. Accuracy: ``ULP_BOUNDS`` and
    ``CANCELLATION["grad.cross_entropy"]`` (proofs/grad.md, Theorem G3): a one-hot target gives
    the relative accuracy of softmax on every component.
    """
    tg = prepared_targets(
        logits, target, label_smoothing=label_smoothing, z_loss=z_loss, axis=axis,
        ignore_index=ignore_index, validate=validate,
    )
    fmt, rows = tg.fmt, tg.rows
    R, K = rows.rows.shape
    gam = _cotangent(g, rows.reduced(np.zeros(R), False).shape).reshape(-1)
    if R == 0 or K == 0:
        return rows.elementwise(np.zeros((R, K)).astype(fmt.dtype))
    t_hi, t_lo = tg.float64()
    with np.errstate(all="ignore"):
        X64 = rows.rows.astype(np.float64)
        p, k, qk, bad = _probabilities(X64)
        ar = np.arange(R)
        w = (p - t_hi) - t_lo
        tk = t_hi[ar, k]
        big = tk >= 0.5
        one_minus = (1.0 - t_hi[ar, k]) - t_lo[ar, k]  # exact for tk in [1/2, 1] (Sterbenz)
        w[ar[big], k[big]] = one_minus[big] - qk[big]
        if tg.z_loss:
            lse = _lse(X64, axis=-1)
            w = w + (2.0 * tg.z_loss) * lse[:, None] * p
        out = np.where(X64 == -np.inf, 0.0, w * np.where(np.isfinite(gam), gam, 0.0)[:, None])
        masked_hit = ((X64 == -np.inf) & (t_hi > 0)).any(axis=1)
        bad = bad | masked_hit | ~np.isfinite(gam)
        out[bad] = np.nan
        out[tg.ignored] = 0.0
        res = round_from_float64(out, fmt)
    return rows.elementwise(res)
