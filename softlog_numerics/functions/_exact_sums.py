"""The decimal row sums of the exact stages (``_cross_entropy_exact``, ``_backward_exact``):
``sum_v e**((v - a)/T)`` at a given precision, every operation correctly rounded."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction

__all__ = ["CUT", "offset_exponentials"]

CUT = -3000
"""Offsets below are dropped from the sums: each term is below ``e**-3000 < 10**-1302``."""


def offset_exponentials(prec: int, below, a: float, tau: float | None):
    """At ``prec`` digits: ``(ctx, rho, terms, r)`` with ``terms[v] = e**((v - a)/T)`` for the entries
    ``v`` of ``below`` whose offset is above ``CUT`` and ``r`` their sum, every operation correctly
    rounded (the offset once, twice with a temperature ``tau``), ``rho = 10**(1 - prec)``."""
    ctx = Context(prec=prec, rounding=ROUND_HALF_EVEN, Emin=-(10**9), Emax=10**9)
    ad, td = Decimal(a), Decimal(1.0 if tau is None else tau)
    terms = {}
    r = Decimal(0)
    for v in below:
        d = ctx.subtract(Decimal(v), ad)
        if tau is not None:
            d = ctx.divide(d, td)
        if d > CUT:
            e = ctx.exp(d)
            terms[v] = e
            r = ctx.add(r, e)
    return ctx, Fraction(1, 10 ** (prec - 1)), terms, r
