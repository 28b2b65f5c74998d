"""The inverse softlog of one finite float, correctly rounded to a format, with :mod:`decimal` at
increasing precision (proofs/softlog.md, Theorem S7 (b)): the last stage of float32
``softlog_inverse`` for the rare inputs whose float64 value lies too close to a rounding boundary.

``L^-1(y) = (e**(y + 1) - 1) / (e**2 - 1)`` is irrational for every float ``y`` other than -1 and 1
(Lindemann-Weierstrass, Theorem S6 (a)), so it is never a rounding boundary and the enclosure,
whose width is proportional to ``10**-P``, decides its rounding at some finite precision ``P``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction

from softlog_numerics._core.formats import Format
from softlog_numerics._core.rounding import rounded_if_decided

__all__ = ["rounded_inverse"]

_FIRST_DIGITS = 40
_MAX_DIGITS = 1 << 14  # never reached (Theorem S7 (b)); a guard only


def rounded_inverse(y: float, fmt: Format) -> float:
    """``RN_fmt(L^-1(y))`` for a finite float64 ``y`` with ``-1e4 <= y <= 1e4``, as the float64
    that holds it."""
    if y == -1.0:
        return 0.0
    if y == 1.0:
        return 1.0
    yp1 = Fraction(y) + 1  # exact
    # y + 1 in decimal, exactly (a float's expansion has at most 1100 significant digits)
    arg = Context(prec=1200, Emin=-(10**9), Emax=10**9).add(Decimal(y), 1)
    assert Fraction(arg) == yp1
    digits = _FIRST_DIGITS
    while True:
        ctx = Context(prec=digits, rounding=ROUND_HALF_EVEN, Emin=-(10**9), Emax=10**9)
        rho = Fraction(1, 10 ** (digits - 1))
        big = ctx.exp(arg)  # e**(y + 1), within rho/2 relative
        num = ctx.subtract(big, 1)
        e2 = ctx.subtract(ctx.exp(Decimal(2)), 1)  # e**2 - 1 within rho/2 (e**2 + 6.4) < 7.1 rho
        x = ctx.divide(num, e2)
        B, N, D, X = Fraction(big), Fraction(num), Fraction(e2), Fraction(x)
        # the numerator: exp's rounding and the subtraction's, rho/2 (B + |N|) <= rho (B + 1)
        err_n = rho * (B + 1)
        err_d = 8 * rho
        # |N'/D' - N/D| <= err_n / D + |N| err_d / (D (D - err_d)), D >= 6.3; the division rho |X|
        lo_d = D - err_d
        err = err_n / lo_d + (abs(N) + err_n) * err_d / (lo_d * lo_d) + rho * abs(X)
        r = rounded_if_decided(X - err, X + err, fmt)
        if r is not None:
            return r
        if digits >= _MAX_DIGITS:
            raise ArithmeticError(f"the rounding of softlog_inverse({y!r}) was not decided (Theorem S7)")
        digits *= 2
