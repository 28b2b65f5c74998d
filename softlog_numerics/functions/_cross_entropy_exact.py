"""The last stage of the fused loss in float16, bfloat16 and float32: one row, correctly rounded,
with :mod:`decimal` at increasing precision (proofs/grad.md, Theorem G7).

With ``a`` the row maximum, ``alpha = a/T``, ``C = sum_k t_k (a - x_k)/T``, ``W = sum_k t_k`` and
``L = log1p(s)``, ``s = sum_{i != argmax} exp((x_i - a)/T)``, the loss is

    ``loss(L) = C + W L + lam (alpha + L)**2``.

``C``, ``W``, ``alpha`` and ``lam`` are exact rationals (:class:`~fractions.Fraction`); only ``L``
is evaluated, in ``decimal``, with the error bound of logsumexp's decimal stage (proofs/
log_softmax.md, Theorem LSE2 stage 3 and LSE10 (e)). If the row has one finite logit (``L = 0``)
or ``W = lam = 0``, the loss is rational and rounded exactly. Otherwise it is irrational
(Theorem G1 (a)), never a rounding boundary, and the enclosure, whose width shrinks with
``10**-P``, decides its rounding at some finite precision ``P`` (Ziv's loop).
"""

from __future__ import annotations

from fractions import Fraction

from softlog_numerics._core.formats import Format
from softlog_numerics._core.rounding import (
    boundary_gap,
    rounded_fraction,
    rounded_if_decided,
)
from softlog_numerics.functions._exact_sums import offset_exponentials

__all__ = ["rounded_loss"]

_FIRST_DIGITS = 60
_MAX_DIGITS = 1 << 16  # never reached for an irrational loss (Theorem G7); a guard only


def rounded_loss(x, t, lam: Fraction, tau: float | None, fmt: Format) -> float:
    """``RN_fmt(loss)`` of one row, as the float64 that holds it.

    ``x``: the row's logits as floats, at least one finite, none NaN or ``+inf``; ``t``: the
    smoothed targets as fractions (``TargetSpec.exact``), ``t_k = 0`` wherever ``x_k = -inf``;
    ``lam``: the z-loss weight; ``tau``: the temperature (None: 1)."""
    tq = Fraction(1) if tau is None else Fraction(tau)
    fin = [i for i, v in enumerate(x) if v != float("-inf")]
    k = max(fin, key=lambda i: x[i])
    a = Fraction(x[k])
    alpha = a / tq
    C = sum((tk * (a - Fraction(x[i])) for i, tk in enumerate(t) if tk), Fraction(0)) / tq
    W = sum(t, Fraction(0))
    others = [x[i] for i in fin if i != k]
    base = C + lam * alpha * alpha  # loss(0)
    if not others or (W == 0 and lam == 0):
        return rounded_fraction(base, fmt)
    # loss(L) - base = L (c1 + lam L), c1 = W + 2 lam alpha
    c1 = W + 2 * lam * alpha
    delta = boundary_gap(base, fmt)  # no rounding boundary within delta of base, except base
    n = len(x)
    big = 3010 if tau is None else 6010
    prec = _FIRST_DIGITS
    while True:
        ctx, rho, _, s = offset_exponentials(prec, others, x[k], tau)
        cut = n * Fraction(1, 10**1300)
        # one-sided: 0 < L <= S <= s_hi (LSE10 (e)), so loss - base lies in (0, w] (c1 >= 0) or
        # [-w, 0) (c1 < 0 and lam s_hi < -c1), w = s_hi (|c1| + lam s_hi); between base and
        # base +- delta no boundary lies, so the end at base may be moved to base +- delta
        s_hi = Fraction(s) * (1 + 4 * (big + n) * rho) + cut
        w = s_hi * (abs(c1) + lam * s_hi)
        if c1 >= 0 or lam * s_hi < -c1:
            sign = 1 if c1 >= 0 else -1
            lo, hi = sorted((base + sign * min(delta, w), base + sign * w))
            r = rounded_if_decided(lo, hi, fmt)
            if r is not None:
                return r
        # two-sided: |L~ - L| <= e (LSE2 stage 3 without the final addition), and loss is
        # Lipschitz on [L~ - e, L~ + e] with constant W + 2 lam (|alpha| + L~ + e)
        Ld = ctx.ln(ctx.add(1, s))
        Lt = Fraction(Ld)
        e = 2 * rho * (big + n + abs(Lt)) + cut
        mid = C + W * Lt + lam * (alpha + Lt) ** 2
        err = e * (W + 2 * lam * (abs(alpha) + abs(Lt) + e))
        r = rounded_if_decided(mid - err, mid + err, fmt)
        if r is not None:
            return r
        if prec > _MAX_DIGITS:  # never reached: the loss is irrational
            return rounded_fraction(mid, fmt)
        prec *= 2
