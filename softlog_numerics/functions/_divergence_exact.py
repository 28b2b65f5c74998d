"""The last stage of the entropies and divergences in float16, bfloat16 and float32: one row,
correctly rounded, with :mod:`decimal` at increasing precision (proofs/divergence.md, Theorem
D12 (c)).

A row is first written exactly as ``c + sum_v W(v) L(v)`` over the distinct arguments ``v`` of the
softlog, with :class:`~fractions.Fraction` weights; ``L(0) = -1`` and ``L(1) = 1`` are folded into
the rational ``c`` and zero weights are dropped. With no weight left the row is the rational
``c``, rounded exactly. Otherwise the value is irrational (Lemma T of proofs/oracle.md), so it is
never a rounding boundary, and the enclosure below, whose width is proportional to ``10**-P``,
decides its rounding at some finite precision ``P``.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction

from softlog_numerics._core.formats import Format
from softlog_numerics._core.rounding import rounded_fraction, rounded_if_decided

__all__ = ["folded_row", "rounded_row"]

_FIRST_DIGITS = 40
_MAX_DIGITS = 1 << 16  # never reached for an irrational value (Theorem D12 (c)); a guard only


def folded_row(kind: str, p, q) -> tuple[Fraction, dict[float, Fraction]]:
    """``(c, W)`` with the row's value ``c + sum_v W[v] L(v)`` exactly: ``kind`` is ``"entropy"``,
    ``"cross"``, ``"sld"`` or ``"sym"``, ``p``, ``q`` sequences of finite floats; no key of ``W``
    is 0 or 1 and no weight is 0."""
    c = Fraction(0)
    W: dict[float, Fraction] = {}

    def add(v: float, w: Fraction) -> None:
        nonlocal c
        if v == 0.0:
            c -= w
        elif v == 1.0:
            c += w
        else:
            W[v] = W.get(v, Fraction(0)) + w

    for pk, qk in zip(p, q):
        if pk == 0.0 and kind != "sym":
            continue
        P = Fraction(pk)
        if kind == "entropy":
            add(pk, -P)
        elif kind == "cross":
            add(qk, -P)
        elif pk != qk:
            w = P / 2 if kind == "sld" else (P - Fraction(qk)) / 4
            add(pk, w)
            add(qk, -w)
    return c, {v: w for v, w in W.items() if w != 0}


def rounded_row(kind: str, p, q, fmt: Format) -> float:
    """The row's exact value rounded to nearest (ties to even) in ``fmt``, as the float64 that
    holds it; ``p``, ``q`` finite, every softlog argument above the branch point."""
    c, W = folded_row(kind, p, q)
    if not W:
        return rounded_fraction(c, fmt)
    items = sorted(W.items())
    digits = _FIRST_DIGITS
    while True:
        r = rounded_if_decided(*_enclosure(c, items, digits), fmt)
        if r is not None:
            return r
        if digits >= _MAX_DIGITS:
            raise ArithmeticError("the rounding of a divergence row was not decided (Theorem D12)")
        digits *= 2


def _enclosure(c: Fraction, items, digits: int) -> tuple[Fraction, Fraction]:
    """Rational ``lo <= S <= hi`` for ``S = c + sum_v w L(v)``, from one evaluation at ``digits``
    significant digits (each operation correctly rounded to nearest, relative error at most
    ``rho / 2``, ``rho = 10**(1 - digits)``); the bound is Theorem D12 (c)'s, term by term, and is
    itself evaluated with upward rounding (every quantity in it is nonnegative)."""
    ctx = _context(digits, ROUND_HALF_EVEN)
    up = _context(30, ROUND_CEILING)
    down = _context(digits + 10, ROUND_FLOOR)
    rho = Decimal(10) ** (1 - digits)  # exact
    e = ctx.exp(Decimal(1))
    b = ctx.divide(1, e)  # 1/e within 1.01 rho / e
    a = ctx.subtract(e, b)  # e - 1/e within 3 rho
    total = ctx.divide(c.numerator, c.denominator)
    one_rho = up.add(1, rho)
    mag = up.multiply(abs(total), one_rho)  # |c|
    err = up.multiply(rho, mag)
    for v, w in items:
        dv = Decimal(v)  # exact
        g = ctx.fma(a, dv, b)  # a v + b within dg = rho (3 |v| + 0.38 + |g|)
        dg = up.multiply(rho, up.add(up.add(up.multiply(3, abs(dv)), _C038), abs(g)))
        gap = down.subtract(g, dg)
        if gap <= 0:  # the argument is not yet separated from 0
            return Fraction(-(10**9)), Fraction(10**9)
        ell = ctx.ln(g)
        # |ln g - ln(a v + b)| <= dg / (g - dg); the logarithm's rounding rho |ln g| / 2
        err_l = up.add(up.divide(dg, gap), up.multiply(rho, abs(ell)))
        wd = ctx.divide(w.numerator, w.denominator)
        t = ctx.multiply(wd, ell)
        aw = up.multiply(abs(wd), one_rho)  # |w|
        # |w| err_l, and the weight's and the product's roundings: 2 rho |w| |ln g|
        err = up.add(err, up.add(up.multiply(aw, err_l), up.multiply(up.multiply(2 * rho, aw), abs(ell))))
        mag = up.add(mag, abs(t))
        total = ctx.add(total, t)
    # each of the len(items) additions errs by at most rho/2 of a partial sum, itself at most
    # mag (1 + err); the factor 2 covers the rest
    err = up.multiply(2, up.add(err, up.multiply(up.multiply(len(items) + 1, rho), mag)))
    return Fraction(down.subtract(total, err)), Fraction(_context(digits + 10, ROUND_CEILING).add(total, err))


_C038 = Decimal("0.38")


def _context(digits: int, rounding: str) -> Context:
    """A decimal context of ``digits`` digits, ``rounding``, and an exponent range no value here
    leaves."""
    return Context(prec=digits, rounding=rounding, Emin=-(10**9), Emax=10**9)
