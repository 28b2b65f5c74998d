"""The fused loss: per-example cross-entropy from logits, with label smoothing and z-loss, in
float16, bfloat16, float32 and float64, NumPy only.

For a row with maximum ``a`` and ``L = log1p(s)`` (as logsumexp computes them,
:func:`._log_softmax.row_statistics`), ``lse = a + L`` and the loss is a sum of non-negative terms

    ``loss = sum_k t_k (a - x_k) + T L + z_loss (a + L)**2``,  ``T = sum_k t_k``:

no cancellation, every format evaluated in float64 with double-double sums and one final rounding
(proofs/grad.md, Theorem G2); in the narrow formats the rounding is tested and the rows it does not
decide are evaluated exactly (Theorem G7).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics._core.axes import checked_temperature
from softlog_numerics._core.dd import dd_add, dd_div_scalar
from softlog_numerics._core.eft import (
    fast_two_sum,
    fraction_dd,
    nonnegative_row_sums,
    two_prod,
    two_sum,
)
from softlog_numerics._core.formats import round_from_float64
from softlog_numerics._core.rounding import decided_dd
from softlog_numerics._core.targets import IGNORE_INDEX, Targets, prepared_targets
from softlog_numerics.functions._cross_entropy_exact import rounded_loss
from softlog_numerics.functions._log_softmax import row_statistics

__all__ = ["cross_entropy", "loss_rows"]

_BIG = 2.0**900  # rows with entries beyond this are scaled by 2**-64 before a - x (no overflow,
#                  and TwoProd's split stays below 2**995)


def _index_part(tg: Targets, x, a, scale, g0, g1):
    """``C = sum_k t_k (a - x_k)`` for class indices: ``(1 - eps)(a - x_y) + (eps/K) sum_k (a - x_k)``
    (the full sum only when ``eps > 0``), ``T = 1``; everything times ``scale``."""
    R, K = x.shape
    ar = np.arange(R)
    y = np.where(tg.ignored[g0:g1], 0, tg.index[g0:g1])
    xy = x[ar, y]
    dy_h, dy_l = two_sum(a * scale, -(xy * scale))  # exact
    eps = Fraction(tg.smoothing)
    k_hi, k_lo = fraction_dd(1 - eps)
    c_h, c_e = two_prod(np.full(R, k_hi), dy_h)
    c_l = c_e + (k_hi * dy_l + k_lo * dy_h)
    masked_hit = (xy == -np.inf) & (k_hi > 0)
    if eps:
        s_hi, s_lo = fraction_dd(eps / K)
        d_hi, d_lo = two_sum((a * scale)[:, None], -(x * scale[:, None]))  # exact
        masked_hit |= (x == -np.inf).any(axis=1)
        d_hi = np.where(np.isfinite(d_hi), d_hi, 0.0)
        D_h, D_l = nonnegative_row_sums(d_hi)
        D_l = D_l + np.where(np.isfinite(d_lo), d_lo, 0.0).sum(axis=1)
        e_h, e_e = two_prod(np.full(R, s_hi), D_h)
        c_h, f = two_sum(c_h, e_h)
        c_l = c_l + f + e_e + s_hi * D_l + s_lo * D_h
    c_h = np.where(masked_hit, 0.0, c_h)
    c_l = np.where(masked_hit | ~np.isfinite(c_l), 0.0, c_l)
    return c_h, c_l, np.ones(R), np.zeros(R), masked_hit


def _probability_part(tg: Targets, x, a, scale, g0, g1):
    """``C = sum_k t_k (a - x_k)`` and ``T = sum_k t_k`` for probability targets, every product
    exact (TwoProd) and every sum error-free in its high part."""
    th_, tl_ = tg.float64(g0, g1)
    d_hi, d_lo = two_sum((a * scale)[:, None], -(x * scale[:, None]))  # (a - x) scale, exact
    d_hi = np.where(th_ == 0.0, 0.0, d_hi)  # t = 0: no contribution (masked logits too)
    d_lo = np.where(np.isfinite(d_hi), np.where(th_ == 0.0, 0.0, d_lo), 0.0)
    masked_hit = ~np.isfinite(d_hi).all(axis=1)
    d_hi = np.where(np.isfinite(d_hi), d_hi, 0.0)
    p, e = two_prod(th_, d_hi)
    c_h, c_l = nonnegative_row_sums(p)
    c_l = c_l + (e + th_ * d_lo + tl_ * d_hi).sum(axis=1)
    T_h, T_l = nonnegative_row_sums(th_)
    T_l = T_l + tl_.sum(axis=1)
    return c_h, c_l, T_h, T_l, masked_hit


def loss_rows(tg: Targets, tau: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The float64 double-double loss of every row, as ``(hi, lo)``, before the final rounding,
    and ``lam L`` per row (an upper bound, for the error bound of Theorem G2 step 4); NaN and
    ``+inf`` where the special-value table says so (ignored rows ``+0``). ``tau``: the loss of the
    logits divided by that temperature."""
    X = tg.rows.rows
    R, K = X.shape
    hi = np.zeros(R)
    lo = np.zeros(R)
    lamL = np.zeros(R)
    if R == 0:
        return hi, lo, lamL
    if K == 0:
        hi[~tg.ignored] = np.nan
        return hi, lo, lamL
    lam = tg.z_loss
    with np.errstate(all="ignore"):
        for g0, g1, st in row_statistics(X, tg.fmt, tau):
            x = X[g0:g1].astype(np.float64)
            a = st.a
            scale = np.where(np.abs(np.where(np.isfinite(x), x, 0.0)).max(axis=1) > _BIG, 2.0**-64, 1.0)
            part = _index_part if tg.probs is None else _probability_part
            c_h, c_l, T_h, T_l, masked_hit = part(tg, x, a, scale, g0, g1)
            inv = 1.0 / scale
            if tau is not None:  # sum_k t_k (a - x_k) / T, divided while still scaled (no overflow)
                c_h, c_l = dd_div_scalar(*fast_two_sum(c_h, np.where(np.isfinite(c_h), c_l, 0.0)), tau)
            c_h, c_l = c_h * inv, c_l * inv
            Lh, Ll = st.Lh, st.Ll
            q, f = two_prod(T_h, Lh)
            tl_prod = f + T_h * Ll + T_l * Lh
            y_h, y_l = dd_add(c_h, c_l, q, tl_prod)
            if lam:
                A_h, A_l = two_sum(a if tau is None else st.a_hi, Lh)
                A_l = A_l + Ll if tau is None else A_l + (Ll + st.a_lo)
                s2, s2l = two_prod(A_h, A_h)
                s2l = s2l + 2.0 * A_h * A_l
                z_h, z_l = two_prod(s2, np.full_like(s2, lam))
                z_l = z_l + lam * s2l
                y_h, y_l = dd_add(y_h, y_l, z_h, z_l)
            bad = ~st.live | np.isnan(x).any(axis=1) | (x == np.inf).any(axis=1)
            over = ~np.isfinite(y_h) | ~np.isfinite(y_l)  # inf - inf of an overflowed part:
            y_h = np.where(over, np.inf, y_h)  # every part is >= 0, so the loss overflows
            y_l = np.where(over, 0.0, y_l)
            y_h = np.where(masked_hit, np.inf, y_h)
            y_l = np.where(masked_hit, 0.0, y_l)
            y_h = np.where(bad, np.nan, y_h)
            hi[g0:g1], lo[g0:g1] = y_h, y_l
            lamL[g0:g1] = lam * np.abs(Lh) * (1.0 + 2.0**-40)
    hi[tg.ignored] = 0.0
    lo[tg.ignored] = 0.0
    return hi, lo, lamL


def _correctly_rounded(tg: Targets, tau: float | None, hi, lo, lamL) -> np.ndarray:
    """Narrow formats: ``RN_fmt`` of each row's loss (Theorem G7). Stage 1 rounds the float64
    double-double where the bound of Theorem G2 step 4, ``theta l`` with ``theta = (1.28 (1 +
    2 lam L) + 0.13) u`` (``+ 2**-90`` relative for a temperature) and ``2**-1073`` absolute,
    decides it (:func:`decided_dd`); the other finite rows go to the decimal stage
    (:func:`rounded_loss`)."""
    fmt = tg.fmt
    theta = ((1.28 * (1.0 + 2.0 * lamL) + 0.13) * 2.0**-53 + 2.0**-90) * (1.0 + 2.0**-20)
    err = theta * np.abs(hi) + 2.0**-1072
    special = ~np.isfinite(hi) | tg.ignored
    with np.errstate(all="ignore"):
        c, ok = decided_dd(np.where(special, 1.0, hi), np.where(special, 0.0, lo), err, fmt)
    if tg.probs is not None:
        # G2 needs every term >= 0 (no negative target) and, with a z-loss, targets that sum to
        # at least 1/2 (step 3); other unvalidated targets go to the decimal stage
        with np.errstate(invalid="ignore"):
            ok &= (tg.probs >= 0.0).all(axis=1)
            if tg.z_loss:
                ok &= tg.probs.sum(axis=1) >= 0.51
    y = np.where(np.isnan(hi) | np.isinf(hi), hi, c)
    y[tg.ignored] = 0.0
    X = tg.rows.rows
    lam = Fraction(tg.z_loss)
    for r in np.flatnonzero(~ok & ~special):
        row = np.asarray(X[r], dtype=np.float64).tolist()
        y[r] = rounded_loss(row, tg.exact(int(r)), lam, tau, fmt)
    return y


def cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    axis: int = -1,
    z_loss: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
    validate: bool = True,
    temperature: float = 1.0,
) -> np.ndarray:
    """Per-example cross-entropy from logits, ``-sum_k t_k log_softmax(logits)_k + z_loss lse**2``.

    Parameters
    ----------
    logits : array_like
        float16, bfloat16, float32 or float64 (integers and booleans become float64).
    target : array_like
        Integer class indices of the logits' shape without ``axis`` (each in ``[0, K)`` or
        ``ignore_index``), or probabilities of the logits' shape (distributions along ``axis``).
    label_smoothing : float, optional
        ``eps`` in ``[0, 1]``: the target becomes ``t = (1 - eps) b + eps / K``.
    axis : int, optional
        The class axis (default the last).
    z_loss : float, optional
        Weight ``>= 0`` of the auxiliary term ``z_loss * logsumexp(logits)**2`` (PaLM).
    ignore_index : int, optional
        A class index marking a row that takes no part (default ``-100``, as PyTorch).
    validate : bool, optional
        Check that probability targets are distributions (default True).
    temperature : float, optional
        ``T > 0`` (finite): the loss of ``logits / T``, the division exact (not rounded first), as
        in :func:`softlog_numerics.log_softmax`; ``lse`` is then ``logsumexp(logits / T)``.

    Returns
    -------
    numpy.ndarray
        One loss per example (the logits' shape without ``axis``), in the logits' dtype; no
        reduction (sum or average them yourself).

    Raises
    ------
    TypeError
        For unsupported dtypes, float class indices, a non-integer ``axis``.
    ValueError
        For class indices out of range, probability targets that are not distributions,
        ``label_smoothing`` outside ``[0, 1]``, a negative or non-finite ``z_loss``, a
        temperature that is not positive and finite, shapes that do not match; the message names
        the argument and the first offending index.

    Notes
    -----
    Domain and special values (as :func:`softlog_numerics.oracle.cross_entropy`): an ignored row
    gives ``+0``; a row holding NaN or ``+inf``, or no finite logit, gives NaN; a ``-inf``
    (masked) logit contributes 0 where its target is 0 and makes the loss ``+inf`` where it is
    positive.

    Algorithm: ``sum_k t_k (a - x_k) + T log1p(s) + z_loss (a + log1p(s))**2`` with ``a`` the row
    maximum and ``s = sum_{i != argmax} exp(x_i - a)`` from logsumexp's row statistics: every
    term is non-negative, ``a - x_k`` is split exactly (TwoSum), the products are exact
    (TwoProd) and the sums are double-double (error-free extraction), so only ``log1p(s)``
    (``1.28 u`` relative) and the final rounding err.

    Accuracy (for targets that sum to at least 1/2, which ``validate`` ensures; in the narrow
    formats, any targets): correctly rounded in float16, bfloat16 and float32 (proofs/grad.md, Theorem G7: the
    float64 double-double loss is rounded where the error bound of Theorem G2 decides it; the
    other rows, those within a relative ``theta ~ 2**-52.5`` of a midpoint (about ``2**-28`` of
    random float32 rows), are evaluated in :mod:`decimal` at increasing precision until
    decided); within 2 ULP in float64 (Theorem G2), for
    ``z_loss * ln(K) <= 1/4`` (every practical z-loss weight) and rows of fewer than ``2**30``
    classes (``LOSS_GRAD_BOUNDS["cross_entropy"]``).
    With a temperature: ``sum_k t_k (a - x_k)`` is divided by ``T`` in double-double and ``s``,
    ``a/T`` come from the row statistics of Theorem LSE9: the same bounds (proofs/grad.md,
    Theorem G2, step 7).
    """
    tau = checked_temperature(temperature)
    tg = prepared_targets(
        logits, target, label_smoothing=label_smoothing, z_loss=z_loss, axis=axis,
        ignore_index=ignore_index, validate=validate,
    )
    hi, lo, lamL = loss_rows(tg, tau)
    if tg.fmt.name != "float64":
        y = _correctly_rounded(tg, tau, hi, lo, lamL)
        return tg.rows.reduced(y.astype(tg.fmt.dtype), False)
    with np.errstate(all="ignore"):
        y = hi + lo
        y = np.where(np.isnan(hi) | np.isinf(hi), hi, y)
        out = round_from_float64(y, tg.fmt)
    return tg.rows.reduced(out, False)
