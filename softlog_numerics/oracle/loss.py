"""The correctly rounded fused loss: cross-entropy from logits, with label smoothing and z-loss.

For a row of logits ``x`` with maximum ``m``, ``L = log1p(s)``, ``s = sum_{i != k} exp(x_i - m)``
and ``lse = m + L``, the loss against a target distribution ``t`` (:mod:`softlog_numerics._core.targets`)
is

    ``loss = sum_k t_k (lse - x_k) + z_loss * lse**2 = c + L (T + z_loss (2 m + L))``

with the rationals ``C = sum_k t_k (m - x_k) >= 0``, ``c = C + z_loss m**2`` and ``T = sum_k t_k``:
a rational plus a part that vanishes with ``L``, formed exactly by ``exact_plus`` (so a rational
midpoint plus ``log1p(exp(-10**308))`` still rounds the right way). The exact cases (proofs/grad.md, Theorem G1): a row
with one finite logit (``L = 0``: the loss is the rational ``C + z_loss m**2``) and a row whose
target vanishes on its finite logits with ``z_loss = 0`` (loss ``0``). Every other loss is
transcendental (``lse`` is, for two or more finite logits, and the loss is a non-constant
polynomial in it with rational coefficients), so Ziv's loop terminates.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from mpmath import libmp
from numpy.typing import ArrayLike

from softlog_numerics._core.axes import checked_temperature
from softlog_numerics._core.formats import round_rational
from softlog_numerics._core.targets import IGNORE_INDEX, prepared_targets
from softlog_numerics.oracle import fast_grad
from softlog_numerics.oracle.enclosures import (
    INF,
    NAN,
    add,
    as_float64,
    dyadic,
    enclose_log1p,
    enclose_rational,
    exact_plus,
    mul,
    point,
    ziv,
)
from softlog_numerics.oracle.twins import ShiftedRow

__all__ = ["cross_entropy", "settled_loss_row"]


def settled_loss_row(row: list, t: list):
    """``(settled loss or None, indices of the finite logits)`` of one row (not ignored).

    NaN for a row holding NaN or ``+inf`` or no finite logit; ``+inf`` when a ``-inf`` (masked)
    logit has a positive target (``-t_k log_softmax_k = +inf``); masked logits with ``t_k = 0``
    contribute ``0``.
    """
    if any(v != v or v == INF for v in row):
        return NAN, None
    finite = [i for i, v in enumerate(row) if v != -INF]
    if not finite:
        return NAN, None
    if any(row[i] == -INF and t[i] > 0 for i in range(len(row))):
        return INF, None
    return None, finite


def _row_loss(row: list, t: list, lam: Fraction, fmt, tau: float | None = None) -> float:
    settled, finite = settled_loss_row(row, t)
    if settled is not None:
        return settled
    m = max(row[i] for i in finite)
    tq = Fraction(1) if tau is None else Fraction(tau)
    fm = Fraction(m) / tq  # the logits divided by the temperature, exactly
    T = sum((t[i] for i in finite), Fraction(0))
    C = sum((t[i] * (fm - Fraction(row[i]) / tq) for i in finite), Fraction(0))
    if len(finite) == 1 or (T == 0 and lam == 0):
        exact = C + lam * fm * fm  # L = 0, or the only term left is C = 0
        return round_rational(exact.numerator, exact.denominator, fmt)
    sh = ShiftedRow([row[i] for i in finite], tau)
    c = C + lam * fm * fm  # the rational part: loss = c + L (T + lam (2 m + L))
    two_m = (libmp.mpf_shift(libmp.from_float(m), 1),) * 2 if tau is None else None
    zl = point(float(lam))

    def enclose(todo, prec):
        L = enclose_log1p(sh.at(prec).s, prec)
        w = enclose_rational(T, prec)
        if lam:
            tm = two_m if tau is None else enclose_rational(2 * fm, prec)
            w = add(w, mul(zl, add(tm, L, prec), prec), prec)
        w = mul(L, w, prec)
        if c.denominator & (c.denominator - 1):  # not dyadic: not a rounding boundary
            return {0: add(enclose_rational(c, prec), w, prec)}
        return {0: exact_plus(dyadic(c), w, fmt, prec)}

    return ziv(fmt, 1, enclose, {})[0]


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
    method: str = "auto",
) -> np.ndarray:
    """Correctly rounded per-example cross-entropy from logits, in the logits' dtype.

    ``loss = -sum_k t_k log_softmax(x)_k + z_loss * logsumexp(x)**2`` along ``axis`` with
    ``t = (1 - label_smoothing) b + label_smoothing / K`` (``b`` the one-hot class index or the
    given probabilities); the arguments are those of :func:`softlog_numerics.cross_entropy`. With
    a ``temperature`` ``T`` it is the loss of ``x / T``, divided exactly (the rationals above are
    formed from ``x_k / T``; proofs/grad.md, Theorem G2, step 7).

    Special values: an ignored row (class index ``ignore_index``) gives ``+0``; a row holding NaN
    or ``+inf``, or no finite logit, gives NaN; a ``-inf`` logit with a positive target gives
    ``+inf`` (and contributes 0 where its target is 0).

    ``method``: ``"auto"`` takes the certified fast path for float16, bfloat16 and float32 logits
    without z-loss at temperature 1 (proofs/fast_oracle.md, Theorem F8, step 8; bit-identical),
    ``"mpmath"`` the interval loop alone.
    """
    if method not in ("auto", "mpmath"):
        raise ValueError(f"method must be 'auto' or 'mpmath', not {method!r}")
    tau = checked_temperature(temperature)
    tg = prepared_targets(
        logits, target, label_smoothing=label_smoothing, z_loss=z_loss, axis=axis,
        ignore_index=ignore_index, validate=validate,
    )
    fmt = tg.fmt
    lam = Fraction(tg.z_loss)
    X = np.ascontiguousarray(as_float64(tg.rows.rows))
    out = np.zeros(X.shape[0])
    live = np.flatnonzero(~tg.ignored)
    rows = live.tolist()
    if method == "auto" and tau is None and lam == 0 and fmt.precision <= 24:
        t_hi, t_lo = tg.float64()
        values, todo = fast_grad.cross_entropy_loss_rows(X[live], t_hi[live], t_lo[live], fmt,
                                                         exact_targets=tg.smoothing == 0)
        out[live] = values
        rows = live[todo].tolist()
    for r in rows:
        out[r] = _row_loss(X[r].tolist(), tg.exact(r), lam, fmt, tau)
    return tg.rows.reduced(out, False).astype(fmt.dtype)
