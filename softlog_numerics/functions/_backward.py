"""The backward pass: vector-Jacobian products of ``logsumexp``, ``log_softmax``, ``softmax`` and
``cross_entropy`` along the last axis of rows, NumPy only, every format evaluated in float64.

With ``p = softmax(x)`` (the float64 production softmax, within 3 ULP: ``|p^ - p| <= 7 u p``,
``u = 2**-53``), ``k`` an argmax of the row, ``q_k = 1 - p_k = sum_{i != k} p_i`` (summed, never
subtracted) and ``S = sum_j g_j`` (double-double):

* log_softmax: ``v_k = -(sum_{i != k} g_i) + q_k S`` and ``v_j = g_j - p_j S`` for ``j != k``: a
  dominant class keeps its small ``v_k`` (PyTorch's ``g - exp(log_softmax) S`` returns 0 there);
* softmax: ``w_j = p_j ((g_j - g_k) + T)`` with ``T = sum_{i != k} (g_k - g_i) p_i``;
* logsumexp: ``gamma p_j``, float64 from the softmax kernel with ``gamma`` in its row factor
  (one rounding);
* cross_entropy: ``gamma (p_j (1 + 2 z_loss lse) - t_j)``, the argmax component with
  ``t_k >= 1/2`` as ``(1 - t_k) - q_k``.

Accuracy (proofs/grad.md, Theorem G3): each component is within the ULP bound of the contract or
within ``CANCELLATION[f] * 2**-53 * tau_j`` of the correctly rounded value, ``tau_j`` the sum of
the magnitudes of the terms it is formed from (:func:`softlog_numerics.testing.contract.term_scale`).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics._core.axes import (
    Axis,
    Rows,
    checked_cotangent,
    checked_temperature,
)
from softlog_numerics._core.dd import dd_add, dd_div, dd_div_scalar, dd_mul
from softlog_numerics._core.eft import (
    fast_two_sum,
    fraction_dd,
    nonnegative_row_sums,
    two_prod,
    two_sum,
)
from softlog_numerics._core.exp_dd import exp_dd as _exp_dd
from softlog_numerics._core.formats import as_float_array, format_of, round_from_float64
from softlog_numerics._core.rounding import decided_dd, rounds_once
from softlog_numerics._core.targets import IGNORE_INDEX, prepared_targets
from softlog_numerics.functions._backward_exact import (
    rounded_cross_entropy_vjp,
    rounded_log_softmax_vjp,
)
from softlog_numerics.functions._log_softmax import logsumexp as _lse
from softlog_numerics.functions._log_softmax import scaled_softmax
from softlog_numerics.functions._log_softmax import softmax as _softmax

__all__ = [
    "centred",
    "centred_at",
    "cross_entropy_vjp",
    "finish",
    "log_softmax_cotangent",
    "log_softmax_vjp",
    "logsumexp_vjp",
    "loss_weights",
    "per_element",
    "row_blocks",
    "rows_of",
    "scaled_rows",
    "signed_sums",
    "softmax_block",
    "softmax_vjp",
    "spread",
    "spread_at",
]
"""The VJPs, and the row machinery the forward mode (:mod:`._forward_mode`) shares."""


_BLOCK = 1 << 20  # elements per block of rows: the float64 temporaries stay near 8 MiB each


def row_blocks(R: int, n: int):
    """Row ranges of at most ``_BLOCK`` elements (none when a row is empty)."""
    if n == 0:
        return
    step = max(1, _BLOCK // n)
    for r0 in range(0, R, step):
        yield r0, min(R, r0 + step)


_BIG = 2.0**900  # cotangent rows beyond this are scaled by 2**-100 (linear: exact), so that no
#                  TwoProd argument reaches 2**995 and no sum overflows


def scaled_rows(G):
    """``(G * f, 1 / f)`` with ``f = 2**-100`` on rows holding an entry above ``2**900``."""
    with np.errstate(invalid="ignore"):
        big = (np.abs(np.where(np.isfinite(G), G, 0.0)).max(axis=1, initial=0.0) > _BIG)
    f = np.where(big, 2.0**-100, 1.0)
    return G * f[:, None], (1.0 / f)[:, None]


def signed_sums(G):
    """Row sums of a finite float64 matrix as a double-double (positive and negative parts
    summed error-free, then subtracted): within ``2**-57 sum |G|``."""
    ph, pl = nonnegative_row_sums(np.maximum(G, 0.0))
    nh, nl = nonnegative_row_sums(np.maximum(-G, 0.0))
    h, e = two_sum(ph, -nh)
    return h, e + (pl - nl)


def _bad_rows(X64):
    """The rows whose derivative is NaN: a NaN or ``+inf`` logit, or no finite one."""
    return np.isnan(X64).any(axis=1) | (X64 == np.inf).any(axis=1) | ~np.isfinite(X64).any(axis=1)


def _probabilities(X64, tau: float | None = None):
    """``(p, k, q_k, bad)``: float64 softmax rows (of ``X64 / tau`` with a temperature), the
    argmax, ``1 - p_k`` summed from the other entries, and the rows whose derivative is NaN (a NaN
    or ``+inf`` logit, no finite one)."""
    p = _softmax(X64, axis=-1) if tau is None else _softmax(X64, axis=-1, temperature=tau)
    R, n = X64.shape
    bad = _bad_rows(X64)
    k = np.argmax(np.where(np.isnan(X64), -np.inf, X64), axis=1)
    others = np.where(bad[:, None], 0.0, p)
    others[np.arange(R), k] = 0.0
    qh, ql = nonnegative_row_sums(others)
    return p, k, qh + ql, bad


def rows_of(x, axis):
    x = as_float_array(x)
    return format_of(x.dtype), Rows(x, axis)


def per_element(x, g, axis, block, name: str = "g"):
    """A derivative of ``x``'s shape and dtype from ``block(X, G, fmt)`` on blocks of rows, ``g``
    (the cotangent, or the tangent ``dx``) checked to have ``x``'s shape."""
    fmt, rows = rows_of(x, axis)
    G = Rows(checked_cotangent(g, np.shape(x), name), axis).rows
    X = rows.rows
    R, n = X.shape
    out = np.empty((R, n), dtype=fmt.dtype)
    for r0, r1 in row_blocks(R, n):
        out[r0:r1] = block(X[r0:r1], G[r0:r1], fmt)
    return rows.elementwise(out)


def finish(out64, bad, G, fmt, zero=None):
    """``+0`` on the rows whose (co)tangent is 0 (an exact zero, as the oracle's), NaN on the rows
    whose derivative is not finite, then one rounding to ``fmt``. ``G`` is the (co)tangent of the
    input's shape, or None with ``zero`` marking the rows of a zero per-row cotangent."""
    if G is not None:
        bad = bad | ~np.isfinite(G).all(axis=1)
        zero = (G == 0.0).all(axis=1)
    if zero is not None:
        out64[zero] = 0.0
    out64[bad] = np.nan
    with np.errstate(all="ignore"):
        return round_from_float64(out64, fmt)


def log_softmax_vjp(x: ArrayLike, g: ArrayLike, axis: Axis = -1) -> np.ndarray:
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
    from the other probabilities; elsewhere ``g_j - p_j S``. Accuracy: correctly rounded in
    float16, bfloat16 and float32 (proofs/grad.md, Theorem G8: the float64 value is rounded where
    Theorem G3's bound decides it, the rest is evaluated in double-double and, where that does not
    decide either, in :mod:`decimal`; cotangents that cancel, such as ``c * softmax(x)``, cost up
    to about 4x more); float64 ``LOSS_GRAD_BOUNDS`` and ``CANCELLATION["grad.log_softmax"]``
    (proofs/grad.md, Theorem G3).
    """
    return per_element(x, g, axis, _log_softmax_block)


def _log_softmax_block(X, G, fmt):
    with np.errstate(all="ignore"):
        X64 = X.astype(np.float64)
        Gf, back = scaled_rows(np.where(np.isfinite(G), G, 0.0))
        p, k, qk, bad = _probabilities(X64)
        out = log_softmax_cotangent(p, k, qk, Gf)
        if fmt.name != "float64":
            return _log_softmax_rounded(X64, G, Gf, back, p, k, qk, out, bad, fmt)
        out *= back
    return finish(out, bad, G, fmt)


def _log_softmax_rounded(X64, G, Gf, back, p, k, qk, out, bad, fmt):
    """Narrow formats: ``RN_fmt(v_j)`` for every component (Theorem G8). Stage 1 rounds the float64
    ``z_j`` where Theorem G3's bound ``|z_j - v_j| <= 9.3 u tau_j`` (with ``tau_j`` from the float64
    softmax, plus ``4 * 2**-1074 sum|g|`` for its subnormal entries) decides it; the rows with
    other components go to the double-double stage (:func:`_log_softmax_vjp_dd`), and what that
    leaves to the decimal stage (:func:`rounded_log_softmax_vjp`)."""
    R, n = X64.shape
    ar = np.arange(R)
    mag = np.abs(Gf).sum(axis=1) * (1.0 + n * 2.0**-52)  # >= sum |g| (float64 summation)
    tau = np.abs(Gf) + p * mag[:, None]
    rest = mag - np.abs(Gf[ar, k])
    tau[ar, k] = np.maximum(rest, 0.0) * (1.0 + 2.0**-50) + qk * mag
    err = (9.4 * 2.0**-53 * tau + 4.0 * 2.0**-1074 * mag[:, None] + 2.0**-1074) * back
    z = out * back
    bad = bad | ~np.isfinite(G).all(axis=1)
    zero = (G == 0.0).all(axis=1)
    skip = bad | zero
    c, ok = rounds_once(z, 0.0, err, fmt)
    ok &= ~skip[:, None]
    y = np.where(ok, c, 0.0)
    y[zero] = 0.0
    y[bad] = np.nan
    rows = np.flatnonzero(~skip & ~ok.all(axis=1))
    for b0 in range(0, rows.size, max(1, _BLOCK // max(n, 1))):
        idx = rows[b0 : b0 + max(1, _BLOCK // max(n, 1))]
        c2, ok2 = _log_softmax_vjp_dd(X64[idx], G[idx].astype(np.float64), fmt)
        ok[idx] |= ok2
        y[idx] = np.where(ok2, c2, y[idx])
    for r in rows:
        cols = np.flatnonzero(~ok[r])
        if cols.size:
            vals = rounded_log_softmax_vjp(X64[r].tolist(), G[r].astype(np.float64).tolist(), cols.tolist(), fmt)
            y[r, cols] = vals
    return y.astype(fmt.dtype)


def _exact_row_sums(A):
    """Row sums of a float64 matrix as double-doubles ``(h, l)``: ``h`` the correctly rounded sum
    (:func:`math.fsum`) and ``l`` the rounded residual, so within ``2**-106`` of the exact sum."""
    h, l = np.empty(A.shape[0]), np.empty(A.shape[0])
    for i, row in enumerate(A.tolist()):
        h[i] = math.fsum(row)
        l[i] = math.fsum(row + [-h[i]])
    return h, l


def _dd_softmax(X, tau: float | None):
    """The softmax of rows ``X / T`` (finite maxima) as double-doubles, for the second stages
    (Theorems G8 (b), G9 (b)): ``(ph, pl, sh, sl, Dh, Dl, k, d, keep)`` with ``p_j = e**d_j / D``,
    ``d_j = (x_j - a)/T`` (exact by TwoSum, then divided in double-double), ``e**d_j`` from
    ``exp_dd`` (``e**0 = 1`` at the argmax ``k``), ``s = sum_{i != k} e**d_i`` by
    :func:`_exact_row_sums` and ``D = 1 + s``; ``keep`` marks the terms computed (finite, ``d_j >
    -2**20``; below, ``e**d_j < 2**-1.4e6``, inside the bounds)."""
    R = X.shape[0]
    ar = np.arange(R)
    a = np.max(X, axis=1)
    k = np.argmax(X, axis=1)
    dh, dl = two_sum(X, -a[:, None])
    if tau is not None:
        dh, dl = dd_div_scalar(dh, np.where(np.isfinite(dh), dl, 0.0), tau)
    keep = np.isfinite(X) & (dh > -(2.0**20))
    kk, mh, ml = _exp_dd(np.where(keep, dh, 0.0), np.where(keep, dl, 0.0))
    Eh = np.where(keep, np.ldexp(mh, kk), 0.0)
    El = np.where(keep, np.ldexp(ml, kk), 0.0)
    Eh[ar, k], El[ar, k] = 0.0, 0.0
    sh, sl = _exact_row_sums(np.concatenate([Eh, El], axis=1))
    Eh[ar, k] = 1.0  # e**0, exactly
    Dh, Dl = dd_add(np.ones(R), np.zeros(R), sh, sl)
    ph, pl = dd_div(Eh, El, Dh[:, None], Dl[:, None])
    return ph, pl, sh, sl, Dh, Dl, k, dh, keep


def _log_softmax_vjp_dd(X64, G64, fmt):
    """Stage 2 of the narrow log_softmax VJP (Theorem G8 (b)), for rows with a finite maximum and a
    finite cotangent: ``p_j = e**t_j / D`` from double-double exponentials (``_core.exp_dd``,
    ``2**-97`` relative) and ``D`` and ``S = sum g`` summed exactly (:func:`math.fsum`, then the
    rounded residual: ``2**-106`` relative), ``v_j = g_j - p_j S`` in double-double; ``(c, ok)`` from
    :func:`decided_dd` with the bound ``2**-94 (|p_j S| + |v_j|) + (n + 2) 2**-1073 |S|``."""
    R, n = X64.shape
    ph, pl = _dd_softmax(X64, None)[:2]
    Sh, Sl = _exact_row_sums(G64)
    qh, ql = dd_mul(ph, pl, Sh[:, None], Sl[:, None])
    vh, vl = two_sum(G64, -qh)
    vh, vl = fast_two_sum(vh, vl - ql)
    absS = np.abs(Sh)[:, None] * (1.0 + 2.0**-50)
    err = 2.0**-94 * (np.abs(qh) + np.abs(vh)) * (1.0 + 2.0**-40) + (n + 2) * 2.0**-1073 * absS
    return decided_dd(vh, vl, err, fmt)


def log_softmax_cotangent(p, k, qk, Gf):
    """``g_j - p_j S`` (``S = sum_i g_i``) in float64 for rows of probabilities ``p`` (float64),
    their argmax ``k``, ``q_k = sum_{i != k} p_i`` and finite cotangent rows ``Gf`` below
    ``2**901`` (:func:`scaled_rows`): at ``k`` as ``-(sum_{i != k} g_i) + q_k S`` (a double-double
    sum, one rounding), elsewhere ``(g_j - pi) - (pi' + p_j S_l)`` with ``pi + pi' = p_j S_h``
    exactly (proofs/grad.md, Theorem G3)."""
    R = p.shape[0]
    Sh, Sl = signed_sums(Gf)
    rest = Gf.copy()
    rest[np.arange(R), k] = 0.0
    Rh, Rl = signed_sums(rest)
    S = Sh + Sl
    ph, pe = two_prod(p, S[:, None])
    out = (Gf - ph) - (pe + p * Sl[:, None])
    qh, qe = two_prod(qk, Sh)
    vk_h, vk_e = two_sum(-Rh, qh)
    out[np.arange(R), k] = vk_h + (vk_e + qe + qk * Sl - Rl)
    return out


def softmax_vjp(x: ArrayLike, g: ArrayLike, axis: Axis = -1) -> np.ndarray:
    """VJP of ``softmax``: ``y (g - sum(g y))`` with ``y = softmax(x)`` along ``axis``.

    Notes
    -----
    Special values (as :func:`softlog_numerics.oracle.grad.softmax`): NaN rows as for
    :func:`log_softmax_vjp`; ``-inf`` logits give ``+0``. Algorithm: ``p_j ((g_j - g_k) + T)``,
    ``T = sum_{i != k} (g_k - g_i) p_i``, so a constant cotangent gives exactly 0. Accuracy:
    ``ULP_BOUNDS`` and ``CANCELLATION["grad.softmax"]`` (proofs/grad.md, Theorem G3).
    """
    return per_element(x, g, axis, softmax_block)


def spread(X64, Gf):
    """``(p, bad, g_k, T)`` of a block of rows: the float64 softmax, the rows whose derivative is
    NaN, and :func:`spread_at` of the softmax at each row's argmax ``k``. ``Gf`` finite and below
    ``2**901`` (:func:`scaled_rows`)."""
    p, k, _, bad = _probabilities(X64)
    gk, T = spread_at(p, k, Gf)
    return p, bad, gk, T


def spread_at(p, k, Gf):
    """``(g_k, T)`` for rows of probabilities ``p`` with argmax ``k``: the entry of ``Gf`` at ``k``
    and ``T = sum_{i != k} (g_k - g_i) p_i`` as a double-double ``(T_h, T_l)`` (columns), so that
    ``u - sum_i p_i g_i = (u - g_k) + T`` for any ``u``. The differences are exact (TwoSum) and the
    products exact (TwoProd): a row of equal ``g`` gives ``T = 0`` exactly."""
    R = p.shape[0]
    gk = Gf[np.arange(R), k][:, None]
    dh, dl = two_sum(gk, -Gf)  # g_k - g_i, exact
    th, te = two_prod(dh, p)
    Th, Tl = signed_sums(th)
    Tl = Tl + (te + dl * p).sum(axis=1)
    return gk, (Th[:, None], Tl[:, None])


def centred(X64, Gf):
    """``(p, bad, c)`` with ``c_j = g_j - sum_i p_i g_i`` (:func:`centred_at` of the float64
    softmax): the softmax VJP is ``p c``, the log_softmax JVP is ``c`` with ``g = dx``."""
    p, k, _, bad = _probabilities(X64)
    return p, bad, centred_at(p, k, Gf)


def centred_at(p, k, Gf):
    """``c_j = g_j - sum_i p_i g_i`` for rows of probabilities ``p`` with argmax ``k``, evaluated as
    ``(g_j - g_k) + T`` (:func:`spread_at`; one float64 rounding of a double-double)."""
    gk, (Th, Tl) = spread_at(p, k, Gf)
    ch, cl = two_sum(Gf, -gk)  # g_j - g_k, exact
    sh, se = two_sum(ch, Th)
    return sh + (se + cl + Tl)


def softmax_block(X, G, fmt):
    """The softmax VJP of a block of rows (``G`` the cotangent rows), rounded to ``fmt``."""
    with np.errstate(all="ignore"):
        X64 = X.astype(np.float64)
        Gf, back = scaled_rows(np.where(np.isfinite(G), G, 0.0))
        p, bad, inner = centred(X64, Gf)
        out = np.where(X64 == -np.inf, 0.0, (p * inner) * back)  # masked: exactly +0
    return finish(out, bad, G, fmt)


def logsumexp_vjp(x: ArrayLike, g: ArrayLike, axis: Axis = -1, keepdims: bool = False) -> np.ndarray:
    """VJP of ``logsumexp``: ``g softmax(x)`` along ``axis``, in the dtype of ``x``.

    Parameters
    ----------
    x : array_like
        The logits (float16, bfloat16, float32, float64).
    g : array_like
        The cotangent, one per row: of the shape ``logsumexp(x, axis, keepdims)`` returns.
    axis : int, tuple of ints or None, optional
        As in :func:`softlog_numerics.logsumexp`.
    keepdims : bool, optional
        Whether ``g`` keeps the reduced axes with length 1.

    Returns
    -------
    numpy.ndarray
        The input cotangent, ``x``'s shape and dtype.

    Notes
    -----
    Special values (as :func:`softlog_numerics.oracle.grad.logsumexp`): a row of ``x`` with NaN,
    ``+inf`` or no finite entry, or a non-finite ``g``, gives NaN; a ``-inf`` logit gives ``+0``.
    Algorithm: float64 rows go through the softmax kernel with ``g`` folded into its row factor
    (:func:`softlog_numerics.functions._log_softmax.scaled_softmax`: ``g = m 2**e``, the
    double-double ``m / (1 + s)`` or ``m exp(-a) / (1 + s)``, Dekker's exact partial products, one
    rounding, then ``2**(e - 100)``), so that ``g p_j`` is rounded once; the narrow formats
    multiply the float64 softmax by ``g`` and round once to their format. Accuracy:
    ``LOSS_GRAD_BOUNDS["grad.logsumexp"]`` (proofs/grad.md, Theorem G3): 3 ULP in float64 (the
    2.53 u budget of the softmax kernel, proofs/log_softmax.md, Theorem LSE4 (d)), 1 ULP in the
    narrow formats; components with ``p_j`` below ``2**-1022`` within the absolute allowance
    ``CANCELLATION * 2**-53 * 2**-1020 |g|``.
    """
    fmt, rows = rows_of(x, axis)
    X = rows.rows
    R, n = X.shape
    reduced = rows.reduced(np.zeros(R), keepdims).shape
    gam = checked_cotangent(g, reduced).reshape(-1)
    out = np.empty((R, n), dtype=fmt.dtype)
    for r0, r1 in row_blocks(R, n):
        with np.errstate(all="ignore"):
            X64 = X[r0:r1].astype(np.float64)
            gm = gam[r0:r1]
            gf = np.where(np.isfinite(gm), gm, 0.0)
            if fmt.name == "float64":
                bad = _bad_rows(X64)
                o = np.where(X64 == -np.inf, 0.0, scaled_softmax(X64, gf))
            else:
                p, _, _, bad = _probabilities(X64)
                o = np.where(X64 == -np.inf, 0.0, p * gf[:, None])
        out[r0:r1] = finish(o, bad | ~np.isfinite(gm), None, fmt, zero=gm == 0.0)
    return rows.elementwise(out)


def cross_entropy_vjp(
    logits: ArrayLike,
    target: ArrayLike,
    g: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    axis: int = -1,
    z_loss: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
    validate: bool = True,
    temperature: float = 1.0,
) -> np.ndarray:
    """Gradient of :func:`softlog_numerics.cross_entropy` with respect to the logits, times the
    cotangent ``g`` of the loss's shape: ``g (softmax(z) (1 + 2 z_loss lse) - t)``; with a
    ``temperature`` ``T`` the gradient of the loss of ``z / T``: ``(g / T) (softmax(z / T) (1 +
    2 z_loss lse(z / T)) - t)``, the division exact.

    Notes
    -----
    Special values (as :func:`softlog_numerics.oracle.grad.cross_entropy`): ignored rows give
    ``+0``; rows whose loss is NaN or ``+inf`` give NaN. Algorithm: ``p_j - t_j`` (and at the
    argmax, when ``t_k >= 1/2``, ``(1 - t_k) - q_k`` with ``q_k`` summed from the other
    probabilities), plus ``2 z_loss lse p_j``, times ``g``. Accuracy: without z-loss, correctly
    rounded in float16, bfloat16 and float32 (proofs/grad.md, Theorem G9: the float64 value where
    Theorem G3's bound decides, a double-double stage for the components that cancel, such as
    targets near the softmax, and a decimal stage for what is left); otherwise, and in float64,
    ``LOSS_GRAD_BOUNDS`` and ``CANCELLATION["grad.cross_entropy"]`` (proofs/grad.md, Theorem G3):
    a one-hot target gives the relative accuracy of softmax on every component.
    """
    tau = checked_temperature(temperature)
    tg = prepared_targets(
        logits, target, label_smoothing=label_smoothing, z_loss=z_loss, axis=axis,
        ignore_index=ignore_index, validate=validate,
    )
    fmt, rows = tg.fmt, tg.rows
    X = rows.rows
    R, K = X.shape
    gam = checked_cotangent(g, rows.reduced(np.zeros(R), False).shape).reshape(-1)
    out = np.empty((R, K), dtype=fmt.dtype)
    for r0, r1 in row_blocks(R, K):
        out[r0:r1] = _cross_entropy_block(tg, X[r0:r1], gam[r0:r1], r0, r1, tau)
    return rows.elementwise(out)


def _targets_of_block(tg, R, K, r0, r1):
    """``(w0, fix)``: for class indices the constant part ``-eps/K`` (a double-double) and the
    columns to overwrite; for probabilities the full ``t`` arrays."""
    if tg.probs is not None:
        return tg.float64(r0, r1)
    eps = Fraction(tg.smoothing)
    share = eps / K
    return fraction_dd(share), fraction_dd(1 - eps + share)


def loss_weights(tg, X64, r0, r1, tau: float | None = None, parts: bool = False):
    """``(w, bad)`` for rows ``r0:r1`` of the logits (``X64`` in float64): ``w_j = p_j (1 + 2
    z_loss lse) - t_j`` in float64 (``+0`` on a ``-inf`` logit) and the rows whose loss is NaN or
    ``+inf`` (a NaN or ``+inf`` logit, no finite one, a positive target on a ``-inf`` logit).
    With ``parts``, also ``(p, k, q_k)`` of :func:`_probabilities`."""
    R, K = X64.shape
    ar = np.arange(R)
    p, k, qk, bad = _probabilities(X64, tau)
    if tg.probs is None:
        (s_hi, s_lo), (o_hi, o_lo) = _targets_of_block(tg, R, K, r0, r1)
        y = np.where(tg.ignored[r0:r1], 0, tg.index[r0:r1])
        w = (p - s_hi) - s_lo
        w[ar, y] = (p[ar, y] - o_hi) - o_lo
        tk_hi = np.where(k == y, o_hi, s_hi)
        tk_lo = np.where(k == y, o_lo, s_lo)
        masked_hit = X64[ar, y] == -np.inf
        if s_hi > 0:
            masked_hit |= (X64 == -np.inf).any(axis=1)
    else:
        t_hi, t_lo = _targets_of_block(tg, R, K, r0, r1)
        w = (p - t_hi) - t_lo
        tk_hi, tk_lo = t_hi[ar, k], t_lo[ar, k]
        masked_hit = ((X64 == -np.inf) & (t_hi > 0)).any(axis=1)
    big = tk_hi >= 0.5
    one_minus = (1.0 - tk_hi) - tk_lo  # 1 - tk_hi exact for tk_hi in [1/2, 1] (Sterbenz)
    w[ar[big], k[big]] = one_minus[big] - qk[big]
    if tg.z_loss:
        lse = _lse(X64, axis=-1) if tau is None else _lse(X64, axis=-1, temperature=tau)
        w = w + (2.0 * tg.z_loss) * lse[:, None] * p
    w = np.where(X64 == -np.inf, 0.0, w)
    if parts:
        return w, bad | masked_hit, (p, k, qk)
    return w, bad | masked_hit


def _cross_entropy_stage1(tg, X64, gam, tau, out, probs, t_hi):
    """Narrow formats, no z-loss: ``(c, ok)``, the float64 gradient ``out`` rounded where Theorem
    G3's bound ``17 u tau_j`` decides it (Theorem G9 (a)); ``tau_j = |g/T| (p_j + t_j)``, at the
    argmax with ``t_k >= 1/2`` ``|g/T| (q_k + (1 - t_k))``, plus ``2**-1020 |g/T|``."""
    R, K = X64.shape
    ar = np.arange(R)
    p, k, qk = probs
    sc = np.abs(gam) / (1.0 if tau is None else tau) * (1.0 + 2.0**-50)
    mag = p + t_hi
    tk = t_hi[ar, k]
    top = tk >= 0.5
    mag[ar[top], k[top]] = qk[top] + (1.0 - tk[top])
    err = 17.5 * 2.0**-53 * (mag * (1.0 + 2.0**-40) + 2.0**-1020) * sc[:, None]
    return rounds_once(out, 0.0, err, tg.fmt)  # the caller sets aside the special rows


def _cross_entropy_dd(X64, gam, rows, targets, tau, fmt):
    """Stage 2 of the narrow cross-entropy gradient without z-loss (Theorem G9 (b)), for the rows
    ``rows`` of the block: ``p_j = e**d_j / (1 + s)`` with double-double exponentials of the exact
    (or, with a temperature, double-double) offsets ``d_j`` and ``s`` summed by :func:`math.fsum`;
    ``p_j - t_j`` (at the argmax with ``t_k >= 1/2``, ``(1 - t_k) - s/(1 + s)``) times ``g/T`` in
    double-double; :func:`decided_dd` with the bound of the proof."""
    X = X64[rows]
    R, K = X.shape
    ar = np.arange(R)
    th_t, tl_t = targets[0][rows], targets[1][rows]
    ph, pl, sh, sl, Dh, Dl, k, dh, keep = _dd_softmax(X, tau)
    wh, wl = dd_add(ph, pl, -th_t, -tl_t)
    mag = ph + np.abs(th_t)
    tk = th_t[ar, k]
    top = np.flatnonzero(tk >= 0.5)
    if top.size:
        qh, ql = dd_div(sh[top], sl[top], Dh[top], Dl[top])
        oh, ol = fast_two_sum(1.0 - tk[top], -tl_t[top, k[top]])  # 1 - t_hi exact (Sterbenz)
        wh[top, k[top]], wl[top, k[top]] = dd_add(oh, ol, -qh, -ql)
        mag[top, k[top]] = qh + oh
    g = np.broadcast_to(gam[rows][:, None], wh.shape)
    if tau is None:
        vh, vl = dd_mul(wh, wl, g, np.zeros_like(wh))
    else:
        ph2, pe2 = two_prod(wh, g)
        vh, vl = dd_div_scalar(ph2, pe2 + wl * g, tau)
    sc = np.abs(gam[rows])[:, None] / (1.0 if tau is None else tau) * (1.0 + 2.0**-50)
    d_abs = np.where(keep, np.abs(dh), 0.0) if tau is not None else 0.0
    rel = 2.0**-92 + K * 2.0**-99 + d_abs * 2.0**-99
    err = rel * mag * (1.0 + 2.0**-40) * sc + 2.0**-100 * np.abs(vh) + (K + 4) * 2.0**-1072 * sc
    return decided_dd(vh, vl, err, fmt)


def _cross_entropy_block(tg, X, gam, r0, r1, tau=None):
    with np.errstate(all="ignore"):
        X64 = X.astype(np.float64)
        w, bad, probs = loss_weights(tg, X64, r0, r1, tau, parts=True)
        gf = np.where(np.isfinite(gam), gam, 0.0)
        if tau is None:
            out = w * gf[:, None]
        else:  # w g / T rounded once: g = m 2**e, (w m) exact by TwoProd, divided in double-double
            m, e = np.frexp(gf)
            ph, pl = two_prod(w, m[:, None])
            qh, _ = dd_div_scalar(ph, pl, tau)
            out = np.ldexp(qh, np.broadcast_to(e[:, None], qh.shape))
        out = np.where(X64 == -np.inf, 0.0, out)
        out[gam == 0.0] = 0.0  # a zero cotangent: an exact zero, +0
        out[bad | ~np.isfinite(gam)] = np.nan
        out[tg.ignored[r0:r1]] = 0.0
        if tg.fmt.name == "float64" or tg.z_loss:
            return round_from_float64(out, tg.fmt)
        return _cross_entropy_rounded(tg, X64, gam, r0, r1, tau, out, bad, probs)


def _cross_entropy_rounded(tg, X64, gam, r0, r1, tau, out, bad, probs):
    """Narrow formats without z-loss: ``RN_fmt`` of every component (Theorem G9): stage 1
    (:func:`_cross_entropy_stage1`), stage 2 (:func:`_cross_entropy_dd`), then the decimal stage
    (:func:`rounded_cross_entropy_vjp`) for what is left."""
    fmt = tg.fmt
    gam = np.asarray(gam).astype(np.float64)
    special = ~np.isfinite(out) | (X64 == -np.inf)
    targets = tg.float64(r0, r1)  # (t_hi, t_lo), once for both stages
    c, ok = _cross_entropy_stage1(tg, X64, gam, tau, out, probs, targets[0])
    skip = bad | ~np.isfinite(gam) | (gam == 0.0) | tg.ignored[r0:r1]
    ok |= special | skip[:, None]
    y = np.where(ok, np.where(special | skip[:, None], out, c), 0.0)
    rows = np.flatnonzero(~ok.all(axis=1))
    if rows.size:
        c2, ok2 = _cross_entropy_dd(X64, gam, rows, targets, tau, fmt)
        y[rows] = np.where(ok[rows], y[rows], np.where(ok2, c2, 0.0))
        ok[rows] |= ok2
    for r in rows:
        cols = np.flatnonzero(~ok[r])
        if cols.size:
            vals = rounded_cross_entropy_vjp(X64[r].tolist(), tg.exact(r0 + int(r)), float(gam[r]), tau, cols.tolist(), fmt)
            y[r, cols] = vals
    return round_from_float64(y, fmt)
