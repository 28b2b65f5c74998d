"""The last stage of the log_softmax VJP in float16, bfloat16 and float32: components of one row,
correctly rounded, with :mod:`decimal` at increasing precision (proofs/grad.md, Theorem G8).

With ``a`` the row maximum, ``m`` the number of entries equal to it, ``t_i = x_i - a`` and ``S =
sum_i g_i`` (an exact rational), the component ``v_j = g_j - p_j S`` is written as a rational
anchor ``c`` plus a signed remainder ``sigma W`` (``W > 0``) that stays small when a class
dominates:

* ``x_j < a``: ``c = g_j`` and ``W = |S| e**t_j / D``, ``D = sum_i e**t_i``;
* ``x_j = a``: ``p_j = 1/m - r/(m (m + r))`` with ``r = sum_{x_i < a} e**t_i``, so ``c = g_j - S/m``
  and ``W = |S| r / (m (m + r))``, of the sign of ``S``.

``S = 0`` or ``W = 0`` (a tie row with nothing below the maximum) leaves the rational ``c``, rounded
exactly. Otherwise ``v_j`` is irrational (Theorem G1 (a)): the enclosure of ``W``, whose relative
width shrinks with ``10**-P``, decides its rounding at some finite precision ``P`` (Ziv's loop),
and a one-sided test decides at once where ``W`` is tiny beside the distance of ``c`` to the
nearest rounding boundary.
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

__all__ = ["rounded_cross_entropy_vjp", "rounded_log_softmax_vjp"]

_FIRST_DIGITS = 40
_MAX_DIGITS = 1 << 16  # never reached for an irrational component (Theorem G8); a guard only


def _anchored(c: Fraction, sign: int, W: Fraction, e: Fraction, fmt: Format, prec: int) -> float | None:
    """``RN_fmt(c + sign w)`` for the unknown ``w`` in ``(0, W + e]``, ``|w - W| <= e``, if decided:
    the one-sided test (no boundary within ``boundary_gap(c)`` of ``c``), then the two ends ``W -+ e``;
    past the guard precision the rounding of ``c + sign W``."""
    near = min(boundary_gap(c, fmt), W + e)
    ends = sorted((c + sign * near, c + sign * (W + e)))
    res = rounded_if_decided(ends[0], ends[1], fmt)
    if res is None and W > e:
        ends = sorted((c + sign * (W - e), c + sign * (W + e)))
        res = rounded_if_decided(ends[0], ends[1], fmt)
    if res is None and prec > _MAX_DIGITS:  # never reached: the value is irrational
        res = rounded_fraction(c + sign * W, fmt)
    return res


def rounded_log_softmax_vjp(x, g, cols, fmt: Format) -> list[float]:
    """``RN_fmt(g_j - p_j sum(g))`` for each ``j`` in ``cols``, as float64 values, for one row:
    ``x`` floats with a finite maximum (``-inf`` allowed, no NaN or ``+inf``), ``g`` finite floats."""
    a = max(x)
    fin = [i for i, v in enumerate(x) if v != float("-inf")]
    ties = [i for i in fin if x[i] == a]
    m = len(ties)
    S = sum((Fraction(v) for v in g), Fraction(0))
    n = len(fin)
    out: list = [None] * len(cols)
    anchors = []
    for idx, j in enumerate(cols):
        gj = Fraction(g[j])
        if S == 0 or x[j] == float("-inf"):  # p_j S = 0
            out[idx] = rounded_fraction(gj, fmt)
        elif x[j] == a:
            c = gj - S / m
            if m == n:  # every finite logit is a maximum: p_j = 1/m exactly
                out[idx] = rounded_fraction(c, fmt)
            else:
                anchors.append((idx, j, c, 1 if S > 0 else -1))
        else:
            anchors.append((idx, j, gj, -1 if S > 0 else 1))
    below = [x[i] for i in fin if x[i] != a]
    prec = _FIRST_DIGITS
    while anchors:
        ctx, rho, terms, r = offset_exponentials(prec, below, a, None)
        # each e**t_i within 1501 rho relative (t_i rounded, |t_i| <= 3000, then exp), their sum
        # within (1501 + n) rho, the cut terms below n 10**-1302 against D >= 1 (LSE2 stage 3)
        cut = n * Fraction(1, 10**1300)
        sig = (1501 + n) * rho * 2
        D = ctx.add(m, r)
        for item in list(anchors):
            idx, j, c, sign = item
            if x[j] == a:
                # W = |S| r / (m (m + r)): relative error of r/(m + r) at most that of r (its
                # relative condition is m/(m + r) <= 1), plus the two roundings below
                Wt = Fraction(ctx.divide(r, ctx.multiply(m, D))) * abs(S)
                rel = sig + 2 * rho
                abs_err = abs(S) * cut
            else:
                ej = terms.get(x[j])
                if ej is None:  # t_j <= -3000: W < |S| 10**-1302, one-sided only
                    Wt, rel, abs_err = Fraction(0), Fraction(0), abs(S) * cut
                else:  # W = |S| e**t_j / D: e**t_j, D and the division
                    Wt = Fraction(ctx.divide(ej, D)) * abs(S)
                    rel = 1501 * rho * 2 + sig + rho
                    abs_err = abs(S) * cut
            # one-sided: 0 < W <= W + err and no boundary within delta of c (other than c)
            res = _anchored(c, sign, Wt, Wt * rel * 2 + abs_err, fmt, prec)
            if res is not None:
                out[idx] = res
                anchors.remove(item)
        prec *= 2
    return out



def rounded_cross_entropy_vjp(x, t, gam: float, tau: float | None, cols, fmt: Format) -> list[float]:
    """``RN_fmt(v_j)``, ``v_j = (gam/T) (p_j - t_j)`` (``p`` the softmax of ``x/T``; no z-loss), for
    each ``j`` in ``cols``, as float64 values, for one row: ``x`` floats with a finite maximum
    (``-inf`` only where ``t_j = 0``), ``t`` the exact targets, ``gam`` a finite non-zero float.

    The anchors of :func:`rounded_log_softmax_vjp` with ``G = gam/T``: ``x_j < a``: ``c = -G t_j``,
    remainder ``+G p_j``; ``x_j = a``: ``c = G (1/m - t_j)``, remainder ``-G r/(m (m + r))``; a row
    whose finite logits are all maxima is rational (Theorem G9 (c))."""
    tq = Fraction(1) if tau is None else Fraction(tau)
    G = Fraction(gam) / tq
    a = max(x)
    fin = [i for i, v in enumerate(x) if v != float("-inf")]
    m = sum(1 for i in fin if x[i] == a)
    n = len(fin)
    out: list = [None] * len(cols)
    todo = []
    for idx, j in enumerate(cols):
        if x[j] == float("-inf"):  # p_j = 0 = t_j
            out[idx] = 0.0
        elif m == n:  # every finite logit is a maximum: p_j = 1/m
            out[idx] = rounded_fraction(G * (Fraction(1, m) - t[j]), fmt)
        else:
            tie = x[j] == a
            c = G * ((Fraction(1, m) if tie else 0) - t[j])
            sign = (-1 if G > 0 else 1) if tie else (1 if G > 0 else -1)
            todo.append((idx, j, tie, c, sign))
    below = [x[i] for i in fin if x[i] != a]
    e1 = 1501 if tau is None else 3001  # relative error of each e**d_i, in units of rho
    prec = _FIRST_DIGITS
    while todo:
        ctx, rho, terms, r = offset_exponentials(prec, below, a, tau)
        cut = n * Fraction(1, 10**1300)
        sig = (e1 + n) * rho * 2  # relative error of r
        D = ctx.add(m, r)
        for item in list(todo):
            idx, j, tie, c, sign = item
            if tie:  # W0 = r / (m (m + r)), as in the VJP above
                W0 = Fraction(ctx.divide(r, ctx.multiply(m, D)))
                rel = sig + 2 * rho
            else:  # W0 = p_j = e**d_j / D
                ej = terms.get(x[j])
                W0 = Fraction(0) if ej is None else Fraction(ctx.divide(ej, D))
                rel = Fraction(0) if ej is None else e1 * rho * 2 + sig + rho
            W = abs(G) * W0
            res = _anchored(c, sign, W, abs(G) * (W0 * rel * 2 + cut), fmt, prec)
            if res is not None:
                out[idx] = res
                todo.remove(item)
        prec *= 2
    return out
