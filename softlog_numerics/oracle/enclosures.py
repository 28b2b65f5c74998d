"""Enclosures and rounding: the machinery every oracle of the package is built from.

* :func:`round_to` rounds an exact value (a rational, an mpmath number, a float) to a format once
  (round to nearest, ties to even, gradual underflow, overflow to inf), through
  :func:`~softlog_numerics._core.formats.round_rational`, the one rounding of rationals of the
  package (re-exported here), which the production functions use too.
* Interval primitives on raw mpmath values ``(lo, hi)`` at an explicit working precision:
  :func:`add`, :func:`sub`, :func:`mul`, :func:`div` (outward rounding), :func:`enclose_exp`,
  :func:`enclose_log`, :func:`enclose_log1p`, :func:`enclose_softlog` (proofs/oracle.md, H1).
* Ziv's loop, :func:`decide_enclosure` (and :func:`ziv` for many values): the precision doubles until
  both ends of every enclosure round alike (proofs/oracle.md, Theorem O2); past
  :data:`MAX_PRECISION` bits :class:`OracleUndecided` is raised, never an unproven value returned.
* :func:`softlog_mpmath`, the softlog by that loop alone (``oracle.softlog(x, method="mpmath")``).

Depends on the core and mpmath only. The precision is passed explicitly to mpmath's low-level
functions (``mpmath.libmp``); no global context (``mpmath.mp``, ``mpmath.iv``) is read or changed.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Callable, TypeVar

import mpmath
import numpy as np
from mpmath import libmp
from mpmath.libmp import libmpi

from softlog_numerics._core.formats import (
    Format,
    FormatLike,
    as_float_array,
    format_of,
    round_rational,
)

_T = TypeVar("_T")

__all__ = [
    "EXACT_SOFTLOG",
    "GUARD",
    "INF",
    "I_ONE",
    "I_ZERO",
    "MAX_PRECISION",
    "NAN",
    "OracleUndecided",
    "PROVEN_NAN",
    "add",
    "as_float64",
    "as_result",
    "below_branch",
    "decide_enclosure",
    "div",
    "dyadic",
    "enclose_exp",
    "enclose_log",
    "enclose_log1p",
    "enclose_rational",
    "enclose_softlog",
    "exact_plus",
    "mul",
    "point",
    "round_enclosure",
    "round_rational",
    "round_to",
    "softlog_constants",
    "softlog_mpmath",
    "sub",
    "ziv",
]

MAX_PRECISION = 1 << 15
"""The largest working precision, in bits, that Ziv's loop tries before it raises
:class:`OracleUndecided`."""
NAN = float("nan")
INF = float("inf")


class OracleUndecided(ArithmeticError):
    """The rounding of a result was not decided below ``MAX_PRECISION`` bits (never silently guessed)."""


# ---------------------------------------------------------------------------------------------
# Rounding an exact binary or rational value to a format, once.


def _round_mpf_tuple(t, fmt: Format):
    """Round a raw mpmath value ``(sign, man, exp, bc)`` to ``fmt``; None for NaN."""
    if t == libmp.fnan:
        return None
    if t == libmp.finf:
        return INF
    if t == libmp.fninf:
        return -INF
    sign, man, exp, bc = t
    if not man:
        return 0.0
    # 2**(exp+bc-1) <= |t| < 2**(exp+bc): settle far under- and overflow before building integers
    # whose size is the exponent (exp(-1e300) is a legitimate enclosure endpoint).
    if exp + bc <= fmt.emin - fmt.precision:
        return -0.0 if sign else 0.0
    if exp + bc - 1 >= fmt.emax + 1:
        return -INF if sign else INF
    # |t| = man * 2**exp: round the integer man to a multiple of 2**(q - exp), q the last place.
    q = max(exp + bc - 1, fmt.emin) - (fmt.precision - 1)
    shift = q - exp
    if shift <= 0:
        n = man << -shift
    else:
        n = man >> shift
        rem = man - (n << shift)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and n & 1):
            n += 1
    if n and n.bit_length() - 1 + q > fmt.emax:
        return -INF if sign else INF
    r = math.ldexp(float(n), q)  # n <= 2**p: exact
    return -r if sign else r


def as_float64(a) -> np.ndarray:
    """``a`` as float64, exactly; quiet for signalling NaNs (ml_dtypes warns when casting them)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(a).astype(np.float64)


def round_to(value: Any, dtype: FormatLike) -> np.ndarray:
    """Round a number to ``dtype`` once, exactly (a 0-d array).

    ``value`` may be an ``mpmath.mpf`` (its exact binary value is used, whatever ``mpmath.mp.prec``
    is now: no re-rounding to the context's precision), a :class:`fractions.Fraction`, an int, a
    Python or NumPy float, or a decimal string (read exactly as a rational, e.g. ``"0.1"``,
    ``"1/3"``, or ``"inf"``/``"nan"``).
    """
    fmt = format_of(dtype)
    if isinstance(value, str):
        try:
            value = Fraction(value.strip())
        except ValueError:
            value = float(value)  # 'inf', '-inf', 'nan' (anything else raises ValueError)
    if isinstance(value, np.ndarray) and value.ndim == 0 or isinstance(value, np.generic):
        value = np.asarray(value)
        if value.dtype.kind in "biu":
            value = int(value)
        else:
            value = float(as_float64(as_float_array(value)))
    if isinstance(value, (Fraction, int)):
        value = Fraction(value)
        r = round_rational(value.numerator, value.denominator, fmt)
    elif isinstance(value, float):
        if math.isfinite(value):
            r = round_rational(*value.as_integer_ratio(), fmt)
            r = math.copysign(r, value) if r == 0.0 else r
        else:
            r = value
    elif isinstance(value, mpmath.mpf):
        r = _round_mpf_tuple(value._mpf_, fmt)
        r = NAN if r is None else r
    else:
        raise TypeError(f"round_to cannot read a {type(value).__name__} exactly")
    return np.array(r, dtype=np.float64).astype(fmt.dtype)


# ---------------------------------------------------------------------------------------------
# Interval primitives on raw mpmath values (lo, hi). + - * / are rounded outward by mpmath's
# libmpi; exp, log and e are evaluated GUARD bits wider than P to nearest and then widened by a
# relative 2**-P, which covers any error below 2**(2-P-GUARD) relative (proofs/oracle.md, H1).

_FLOOR, _CEIL, _NEAR = libmp.round_floor, libmp.round_ceiling, libmp.round_nearest
_ZERO, _ONE = libmp.fzero, libmp.fone
I_ZERO, I_ONE = (_ZERO, _ZERO), (_ONE, _ONE)
_WHOLE = (libmp.fninf, libmp.finf)
GUARD = 8

add, sub, mul, div = libmpi.mpi_add, libmpi.mpi_sub, libmpi.mpi_mul, libmpi.mpi_div


def _down(y, prec):
    """A lower bound of f from y, an approximation of f with relative error below 2**(2-prec-GUARD)."""
    if not y[1]:  # 0, +-inf, nan: mpmath returns these only when they are exact
        return y
    return libmp.mpf_sub(y, libmp.mpf_shift(libmp.mpf_abs(y), -prec), prec, _FLOOR)


def _up(y, prec):
    """An upper bound of f from y (see :func:`_down`)."""
    if not y[1]:
        return y
    return libmp.mpf_add(y, libmp.mpf_shift(libmp.mpf_abs(y), -prec), prec, _CEIL)


def enclose_exp(s, prec):
    """Enclosure of exp over the interval s."""
    w = prec + GUARD
    return _down(libmp.mpf_exp(s[0], w, _NEAR), prec), _up(libmp.mpf_exp(s[1], w, _NEAR), prec)


def enclose_log(s, prec):
    """Enclosure of log over the interval s, which must be positive.

    One logarithm: ``log(hi) <= log(lo) + (hi - lo)/lo`` (concavity) bounds the upper end.
    """
    lo, hi = s
    y = libmp.mpf_log(lo, prec + GUARD, _NEAR)
    upper = _up(y, prec)
    if hi != lo:
        slope = libmp.mpf_div(libmp.mpf_sub(hi, lo, prec, _CEIL), lo, prec, _CEIL)
        upper = libmp.mpf_add(upper, slope, prec, _CEIL)
    return _down(y, prec), upper


def enclose_log1p(s, prec):
    """Enclosure of log(1 + s) for an interval ``s >= 0``, tight also when ``1 + s`` rounds to 1.

    Intersection of ``log(1 + s)`` evaluated directly with ``s/(1+s) <= log1p(s) <= s``.
    """
    lo, hi = s
    direct = enclose_log(add(I_ONE, s, prec + GUARD), prec)
    a = direct[0]
    if lo != libmp.finf:
        b = libmp.mpf_div(lo, libmp.mpf_add(_ONE, lo, prec, _CEIL), prec, _FLOOR)
        a = b if libmp.mpf_gt(b, a) else a
    c = direct[1] if libmp.mpf_lt(direct[1], hi) else hi
    return a, c


def point(x: float):
    v = libmp.from_float(x)
    return v, v


def dyadic(fr: Fraction):
    """A Fraction whose denominator is a power of two, as an exact raw mpf."""
    den = fr.denominator
    if den & (den - 1):
        raise ValueError(f"{fr} is not dyadic")
    return libmp.from_man_exp(fr.numerator, 1 - den.bit_length())


def enclose_rational(fr: Fraction, prec: int):
    """Enclosure of a rational at ``prec`` bits (exact, a point, when it is dyadic)."""
    den = fr.denominator
    if not den & (den - 1):
        v = dyadic(fr)
        return v, v
    num = libmp.from_int(fr.numerator)
    d = libmp.from_int(den)
    return libmp.mpf_div(num, d, prec, _FLOOR), libmp.mpf_div(num, d, prec, _CEIL)


def exact_plus(c, t, fmt: Format, prec: int):
    """Enclosure (or same-rounding stand-in) of ``c + t`` for an exact raw mpf ``c`` and an interval
    ``t`` that does not hold 0, tight however small ``|t|`` is against ``|c|``.

    Let ``2**g`` be the finer of the format's half smallest subnormal ``2**(emin - p)`` and the last
    bit of ``c``: every rounding boundary of the format (its numbers and midpoints) and ``c`` are
    multiples of ``2**g``. When ``|t| < 2**g``, ``c + t`` lies strictly between ``c`` and the next
    multiple of ``2**g`` on the side of ``t``, where no boundary is, so it rounds like the stand-in
    ``c + sign(t) 2**(g - 1)`` (proofs/grad.md, Theorem G1; the argument of proofs/oracle.md,
    Theorem O2, step 5, for a ``c`` on a finer grid). Otherwise the endpoints are added exactly.
    """
    lo, hi = t
    g = fmt.emin - fmt.precision
    if c[1]:
        g = min(g, c[2])
    bound = libmp.from_man_exp(1, g)
    positive = lo[0] == 0 and lo[1]  # lo > 0
    negative = hi[0] == 1 and hi[1]  # hi < 0
    if positive and libmp.mpf_lt(hi, bound):
        r = libmp.mpf_add(c, libmp.from_man_exp(1, g - 1), 0)
        return r, r
    if negative and libmp.mpf_lt(libmp.mpf_neg(lo), bound):
        r = libmp.mpf_sub(c, libmp.from_man_exp(1, g - 1), 0)
        return r, r
    if positive or negative:
        return libmp.mpf_add(c, lo, 0), libmp.mpf_add(c, hi, 0)
    return add((c, c), t, prec)


_CONSTANTS: dict[int, tuple] = {}


def softlog_constants(prec: int):
    """``(a, b) = (e - 1/e, 1/e)`` as intervals at ``prec`` bits, cached per precision."""
    c = _CONSTANTS.get(prec)
    if c is None:
        e = libmp.mpf_e(prec + GUARD, _NEAR)
        e = (_down(e, prec), _up(e, prec))
        b = div(I_ONE, e, prec)
        c = _CONSTANTS[prec] = (sub(e, b, prec), b)
    return c


_BRANCH_BITS = 256


def _branch_point():
    """Enclosure of ``-1/(e**2 - 1)`` (where the argument of the softlog's log is 0) at 256 bits."""
    a, b = softlog_constants(_BRANCH_BITS)
    return libmpi.mpi_neg(div(b, a, _BRANCH_BITS))


_BRANCH = _branch_point()


def below_branch(x: float) -> bool:
    """Whether ``(e - 1/e) x + 1/e < 0``, i.e. ``L(x)`` is NaN. Exact for every float64.

    No float64 lies in the 256-bit enclosure of the (irrational) branch point: tests check the two
    float64 neighbours of -0.15651764274966565.
    """
    if x > -0.15:
        return False
    if x < -0.16:
        return True
    v = libmp.from_float(x)
    if libmp.mpf_lt(v, _BRANCH[0]):
        return True
    if libmp.mpf_gt(v, _BRANCH[1]):
        return False
    raise OracleUndecided(f"{x!r} is within 2**-250 of the softlog's branch point")  # pragma: no cover


def enclose_softlog(x: float, prec: int):
    """Enclosure of ``L(x) = log((e - 1/e) x + 1/e)`` for ``x`` above the branch point."""
    a, b = softlog_constants(prec)
    arg = add(mul(a, point(x), prec), b, prec)
    if libmp.mpf_le(arg[0], _ZERO):  # not yet separated from the branch point at this precision
        return _WHOLE
    return enclose_log(arg, prec)


# ---------------------------------------------------------------------------------------------
# Ziv loop


class _ProvenNaN:
    """Returned by an enclosure to say the result is NaN."""


PROVEN_NAN = _ProvenNaN()


def round_enclosure(enc, fmt: Format):
    """The common rounding of both endpoints of ``enc = (lo, hi)``, or None if they differ.

    Both endpoints rounding to zero decide ``+0`` when ``lo >= 0`` (a positive value, or an exact
    zero, whose convention is ``+0``) and ``-0`` when ``hi < 0``; an enclosure of zero's both sides
    is undecided.
    """
    if enc is PROVEN_NAN:
        return NAN
    lo, hi = enc
    a, b = _round_mpf_tuple(lo, fmt), _round_mpf_tuple(hi, fmt)
    if a is None or b is None or a != b:
        return None
    if a == 0.0:
        if lo[0] == 0:  # lo >= 0
            return 0.0
        if hi[0] == 1 and hi[1]:  # hi < 0
            return -0.0
        return None
    return a


def decide_enclosure(
    enclose: Callable[[int], Any],
    decide: Callable[[Any], _T | None],
    fmt: Format,
    *,
    what: Callable[[], str] = lambda: "1 value(s)",
) -> _T:
    """Ziv's loop, once for the whole package: ``decide(enclose(P))`` at working precision
    ``P = p + 32, 2P, 4P, ...`` bits until it returns something other than None.

    ``enclose(P)`` computes an enclosure (or several) with the primitives of this module at the
    precision it is given (no global mpmath state is read or changed); ``decide`` turns it into
    the result or None. Past ``MAX_PRECISION`` bits :class:`OracleUndecided` is raised (its message
    names ``what()``, the values still undecided), never an unproven value returned.
    """
    bits = fmt.precision + 32
    while bits <= MAX_PRECISION:
        r = decide(enclose(bits))
        if r is not None:
            return r
        bits *= 2
    raise OracleUndecided(
        f"rounding to {fmt.name} not decided at {bits // 2} bits for {what()}; "
        "the exact value may be a rounding boundary the oracle does not recognise as exact"
    )


def ziv(fmt: Format, count: int, enclose, fixed: dict, chunk: int | None = None) -> list:
    """Correctly rounded values ``0..count-1``: ``fixed`` holds the settled ones, ``enclose(todo, P)``
    returns ``{i: enclosure}`` at working precision ``P`` for the others.

    With ``chunk``, ``enclose`` is called on at most ``chunk`` indices at a time and each part is
    decided before the next is enclosed, so that the enclosures held at once stay bounded (the
    same enclosures, so the same results; ``enclose`` must then be cheap to call repeatedly at one
    precision)."""
    out = [fixed.get(i) for i in range(count)]
    todo = [i for i in range(count) if i not in fixed]
    if not todo:
        return out
    step = chunk or len(todo)

    def attempt(prec):
        undecided = []
        for c0 in range(0, len(todo), step):
            part = todo[c0 : c0 + step]
            enclosures = enclose(part, prec)
            for i in part:
                r = round_enclosure(enclosures[i], fmt)
                if r is None:
                    undecided.append(i)
                else:
                    out[i] = r
        todo[:] = undecided
        return None if todo else out

    return decide_enclosure(attempt, lambda r: r, fmt, what=lambda: f"{len(todo)} value(s)")


def as_result(values: list, fmt: Format, shape) -> np.ndarray:
    return np.array(values, dtype=np.float64).reshape(shape).astype(fmt.dtype)


# ---------------------------------------------------------------------------------------------
# softlog

EXACT_SOFTLOG = {0.0: -1, 1.0: 1}  # the only floats with a rational softlog (Lemma T)


def _softlog_settled(x: float):
    """L(x) where it needs no enclosure (special values and exact cases), else None."""
    if x != x or x == -INF:
        return NAN
    if x == INF:
        return INF
    if x in EXACT_SOFTLOG:
        return float(EXACT_SOFTLOG[x])
    if below_branch(x):
        return NAN
    return None


def softlog_mpmath(x) -> np.ndarray:
    """Correctly rounded softlog of ``x`` (any of the four formats) by the interval loop alone.

    Special values and exact cases as :func:`softlog_numerics.oracle.softlog`; everything else is
    :func:`enclose_softlog` under :func:`ziv` (proofs/oracle.md, Theorem O2).
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    xs = as_float64(x).ravel().tolist()
    fixed = {}
    for i, v in enumerate(xs):
        s = _softlog_settled(v)
        if s is not None:
            fixed[i] = s

    def enclose(todo, prec):
        return {i: enclose_softlog(xs[i], prec) for i in todo}

    return as_result(ziv(fmt, len(xs), enclose, fixed), fmt, x.shape)
