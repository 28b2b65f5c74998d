"""Correctly rounded reference values, computed with interval arithmetic on mpmath's raw numbers.

Every function here has the signature of the production function of the same name and returns,
elementwise, the exact mathematical result rounded *once* to the dtype of the input (round to
nearest, ties to even, gradual underflow, overflow to infinity).

How (proofs/oracle.md, Theorem O2):

1. Special values (NaN, infinities, empty rows, masked ``-inf`` logits, out-of-domain input) are
   settled by the table in each docstring, outside mpmath.
2. Results that are rational are computed exactly with :class:`fractions.Fraction` and rounded by
   :func:`round_rational`: ``softlog(0) = -1``, ``softlog(1) = 1``, a single unmasked logit, a
   softmax over equal logits, and every softlog sum whose transcendental parts cancel. Sums are
   first collected as ``c + sum_v W(v) L(v)`` over the *distinct* arguments ``v`` of the softlog;
   such a sum is rational exactly when every weight ``W(v)`` with ``v`` outside ``{0, 1}`` is zero
   (proofs/oracle.md, Theorem O2, Lemma T), so the rational cases are recognised completely.
3. Everything else is enclosed in an interval at working precision ``P`` bits (directed rounding for
   ``+ - * /``; ``exp``, ``log`` and ``e`` evaluated 8 bits wider and widened outward by a relative
   ``2**-P``). If both endpoints round to the same number of the target format (and the same sign of
   zero), that is the correctly rounded result; otherwise ``P`` is doubled (Ziv's strategy). ``P``
   starts at ``p + 32`` and the loop gives up with :class:`OracleUndecided` past ``MAX_PRECISION``
   bits rather than ever return a value it has not proven.

The precision is passed explicitly to mpmath's low-level functions (``mpmath.libmp``); no global
context (``mpmath.mp``, ``mpmath.iv``) is read or changed.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
from mpmath import libmp
from mpmath.libmp import libmpi

from ._axes import Rows, prepared_distributions, prepared_layer
from ._dtypes import Format, as_float_array, format_of

__all__ = [
    "MAX_PRECISION",
    "OracleUndecided",
    "log_softmax",
    "logsumexp",
    "round_rational",
    "round_to",
    "sld",
    "sld_sym",
    "softlog",
    "softlog_cross_entropy",
    "softlog_entropy",
    "softlog_softmax",
    "softmax",
]

MAX_PRECISION = 1 << 15
NAN = float("nan")
INF = float("inf")


class OracleUndecided(ArithmeticError):
    """The rounding of a result was not decided below ``MAX_PRECISION`` bits (never silently guessed)."""


# ---------------------------------------------------------------------------------------------
# Rounding an exact binary or rational value to a format, once.


def round_rational(num: int, den: int, fmt) -> float:
    """Round ``num / den`` (integers, ``den > 0``) to ``fmt``, once; returned as the float64 that
    holds the result exactly (every value of the four formats is a float64).

    Ties go to even; values below the smallest normal are rounded on the subnormal grid; a value
    whose rounding is at least ``2**(emax+1)`` becomes ``±inf``. Zero results keep the sign of
    ``num`` (``-0.0`` for a negative value that underflows; ``+0.0`` for ``num == 0``).

    Notes
    -----
    Exact integer arithmetic: the exponent from bit lengths, the grid of the binade (or of the
    subnormals), one ``divmod`` and a comparison of twice the remainder with the divisor; proven
    correct in proofs/oracle.md, Theorem O1 (ties to even, subnormals, overflow, sign of zero).
    """
    fmt = format_of(fmt)
    num, den = int(num), int(den)
    if den <= 0:
        raise ValueError("den must be positive")
    negative = num < 0
    num = abs(num)
    if num == 0:
        return 0.0
    sign = -1.0 if negative else 1.0
    p = fmt.precision
    # 2**(guess-1) < num/den < 2**(guess+1)
    guess = num.bit_length() - den.bit_length()
    if guess + 1 <= fmt.emin - p:  # below half the smallest subnormal, 2**(emin-p): rounds to 0
        return sign * 0.0
    if guess - 1 >= fmt.emax + 1:  # at least 2**(emax+1) > max + ulp/2: overflows
        return sign * INF
    # e = floor(log2(num/den))
    e = guess
    if (num << max(0, -e)) < (den << max(0, e)):
        e -= 1
    q = max(e, fmt.emin) - (p - 1)  # exponent of the last place
    # n = round(num / den / 2**q) to nearest, ties to even
    if q >= 0:
        d = den << q
        n, r = divmod(num, d)
    else:
        d = den
        n, r = divmod(num << -q, den)
    twice_r = 2 * r
    if twice_r > d or (twice_r == d and n & 1):
        n += 1
    if n and n.bit_length() - 1 + q > fmt.emax:
        return sign * INF
    return sign * math.ldexp(float(n), q)  # n <= 2**p and the result is a float64: exact


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


def _f64(a) -> np.ndarray:
    """``a`` as float64, exactly; quiet for signalling NaNs (ml_dtypes warns when casting them)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(a).astype(np.float64)


def round_to(value, dtype) -> np.ndarray:
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
            value = float(_f64(as_float_array(value)))
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
_I_ZERO, _I_ONE = (_ZERO, _ZERO), (_ONE, _ONE)
_WHOLE = (libmp.fninf, libmp.finf)
GUARD = 8

_add, _sub, _mul, _div = libmpi.mpi_add, libmpi.mpi_sub, libmpi.mpi_mul, libmpi.mpi_div


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


def _exp(s, prec):
    """Enclosure of exp over the interval s."""
    w = prec + GUARD
    return _down(libmp.mpf_exp(s[0], w, _NEAR), prec), _up(libmp.mpf_exp(s[1], w, _NEAR), prec)


def _log(s, prec):
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


def _log1p(s, prec):
    """Enclosure of log(1 + s) for an interval ``s >= 0``, tight also when ``1 + s`` rounds to 1.

    Intersection of ``log(1 + s)`` evaluated directly with ``s/(1+s) <= log1p(s) <= s``.
    """
    lo, hi = s
    direct = _log(_add(_I_ONE, s, prec + GUARD), prec)
    a = direct[0]
    if lo != libmp.finf:
        b = libmp.mpf_div(lo, libmp.mpf_add(_ONE, lo, prec, _CEIL), prec, _FLOOR)
        a = b if libmp.mpf_gt(b, a) else a
    c = direct[1] if libmp.mpf_lt(direct[1], hi) else hi
    return a, c


def _point(x: float):
    v = libmp.from_float(x)
    return v, v


def _dyadic(fr: Fraction):
    """A Fraction whose denominator is a power of two, as an exact raw mpf."""
    den = fr.denominator
    if den & (den - 1):
        raise ValueError(f"{fr} is not dyadic")
    return libmp.from_man_exp(fr.numerator, 1 - den.bit_length())


_CONSTANTS: dict[int, tuple] = {}


def _softlog_constants(prec: int):
    """``(a, b) = (e - 1/e, 1/e)`` as intervals at ``prec`` bits, cached per precision."""
    c = _CONSTANTS.get(prec)
    if c is None:
        e = libmp.mpf_e(prec + GUARD, _NEAR)
        e = (_down(e, prec), _up(e, prec))
        b = _div(_I_ONE, e, prec)
        c = _CONSTANTS[prec] = (_sub(e, b, prec), b)
    return c


_BRANCH_BITS = 256


def _branch_point():
    """Enclosure of ``-1/(e**2 - 1)`` (where the argument of the softlog's log is 0) at 256 bits."""
    a, b = _softlog_constants(_BRANCH_BITS)
    return libmpi.mpi_neg(_div(b, a, _BRANCH_BITS))


_BRANCH = _branch_point()


def _below_branch(x: float) -> bool:
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


def _softlog_enc(x: float, prec: int):
    """Enclosure of ``L(x) = log((e - 1/e) x + 1/e)`` for ``x`` above the branch point."""
    a, b = _softlog_constants(prec)
    arg = _add(_mul(a, _point(x), prec), b, prec)
    if libmp.mpf_le(arg[0], _ZERO):  # not yet separated from the branch point at this precision
        return _WHOLE
    return _log(arg, prec)


# ---------------------------------------------------------------------------------------------
# Ziv loop


class _ProvenNaN:
    """Returned by an enclosure to say the result is NaN."""


PROVEN_NAN = _ProvenNaN()


def _decide(enc, fmt: Format):
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


def decide_enclosure(enclose, decide, fmt: Format, *, what=lambda: "1 value(s)"):
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


def _ziv(fmt: Format, count: int, enclose, fixed: dict) -> list:
    """Correctly rounded values ``0..count-1``: ``fixed`` holds the settled ones, ``enclose(todo, P)``
    returns ``{i: enclosure}`` at working precision ``P`` for the others."""
    out = [fixed.get(i) for i in range(count)]
    todo = [i for i in range(count) if i not in fixed]
    if not todo:
        return out

    def decide(enclosures):
        undecided = []
        for i in todo:
            r = _decide(enclosures[i], fmt)
            if r is None:
                undecided.append(i)
            else:
                out[i] = r
        todo[:] = undecided
        return None if todo else out

    return decide_enclosure(
        lambda prec: enclose(list(todo), prec), decide, fmt, what=lambda: f"{len(todo)} value(s)"
    )


def _as_result(values: list, fmt: Format, shape) -> np.ndarray:
    return np.array(values, dtype=np.float64).reshape(shape).astype(fmt.dtype)


# ---------------------------------------------------------------------------------------------
# softlog

_EXACT_L = {0.0: -1, 1.0: 1}  # the only floats with a rational softlog (Lemma T)


def _softlog_settled(x: float):
    """L(x) where it needs no enclosure (special values and exact cases), else None."""
    if x != x or x == -INF:
        return NAN
    if x == INF:
        return INF
    if x in _EXACT_L:
        return float(_EXACT_L[x])
    if _below_branch(x):
        return NAN
    return None


def softlog(x, *, method: str = "auto") -> np.ndarray:
    """Correctly rounded ``L(x) = ln((e - 1/e) x + 1/e)`` in the dtype of ``x``.

    Special values: ``L(±0) = -1`` and ``L(1) = 1`` exactly, ``L(+inf) = +inf``; NaN, and every
    ``x < -1/(e**2 - 1)`` (``-inf`` included), give NaN.

    ``method="auto"`` (default) takes the certified fast path of :mod:`softlog_numerics.fast_oracle`
    for float16, bfloat16 and float32 input (bit-identical results, proofs/fast_oracle.md,
    Theorem F2) and the interval loop below for float64; ``method="mpmath"`` always uses the loop.
    """
    if method not in ("auto", "mpmath"):
        raise ValueError(f"method must be 'auto' or 'mpmath', not {method!r}")
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    if method == "auto" and fmt.precision <= 24:
        from .fast_oracle import softlog as _fast_softlog

        return _fast_softlog(x)
    xs = _f64(x).ravel().tolist()
    fixed = {}
    for i, v in enumerate(xs):
        s = _softlog_settled(v)
        if s is not None:
            fixed[i] = s

    def enclose(todo, prec):
        return {i: _softlog_enc(xs[i], prec) for i in todo}

    return _as_result(_ziv(fmt, len(xs), enclose, fixed), fmt, x.shape)


# ---------------------------------------------------------------------------------------------
# logsumexp, log_softmax, softmax


def _lse_row_special(row: list):
    """(settled LSE or None, finite entries) for one row."""
    if any(v != v for v in row):
        return NAN, None
    if any(v == INF for v in row):
        return INF, None
    finite = [v for v in row if v != -INF]
    if not finite:
        return -INF, None
    if len(finite) == 1:
        return finite[0] + 0.0, None  # ln(exp(-0)) = +0
    return None, finite


class _Shifted:
    """A row of finite logits as exact offsets ``d_i = x_i - x_k`` from one largest entry ``x_k``.

    ``sum_i exp(x_i) = exp(x_k) (1 + s)`` with ``s = sum_{i != k} exp(d_i)``; every result is then
    written with ``log1p(s)``, which stays tight when ``s`` is far below ``2**-P``.
    """

    def __init__(self, finite: list):
        self.k = max(range(len(finite)), key=finite.__getitem__)
        self.m = libmp.from_float(finite[self.k])
        self.d = [libmp.mpf_sub(libmp.from_float(v), self.m, 0) for v in finite]  # exact
        self.prec = None

    def at(self, prec: int):
        if self.prec != prec:
            self.e = [_I_ONE if i == self.k else _exp((d, d), prec) for i, d in enumerate(self.d)]
            s = _I_ZERO
            for i, e in enumerate(self.e):
                if i != self.k:
                    s = _add(s, e, prec)
            self.s = s
            self.prec = prec
        return self


def _offset_plus(c, t, sign: int, fmt: Format, prec: int):
    """Enclosure (or same-rounding stand-in) of ``c + sign * t`` for an exact ``c`` that is a
    multiple of the format's smallest subnormal and an enclosure ``t >= 0``.

    The sum is formed exactly (no rounding to ``P`` bits, which could not tell ``c - t`` from a
    midpoint ``c`` for ``t`` far below ``2**-P |c|``). When ``t < 2**(emin - p)`` (half the smallest
    subnormal), every value of ``c + sign * (0, t_hi]`` lies strictly between ``c`` and the next
    multiple of half the smallest subnormal, where no rounding boundary is, so all of them round
    like the stand-in ``c + sign * 2**(emin - p - 1)`` (proofs/oracle.md, Theorem O2, step 5).
    """
    lo, hi = t
    if libmp.mpf_lt(hi, libmp.from_man_exp(1, fmt.emin - fmt.precision)):
        if lo[0] == 0 and lo[1]:  # 0 < t < 2**(emin - p)
            r = libmp.mpf_add(c, libmp.from_man_exp(sign, fmt.emin - fmt.precision - 1), 0)
            return r, r
        return _add((c, c), t, prec) if sign > 0 else _sub((c, c), t, prec)  # t may be 0: undecided
    if sign > 0:
        return libmp.mpf_add(c, lo, 0), libmp.mpf_add(c, hi, 0)
    return libmp.mpf_sub(c, hi, 0), libmp.mpf_sub(c, lo, 0)


def logsumexp(x, axis=-1, keepdims: bool = False) -> np.ndarray:
    """Correctly rounded ``ln(sum(exp(x)))`` along ``axis`` (int, tuple or None).

    Special values: a NaN in the row gives NaN; else a ``+inf`` gives ``+inf``; ``-inf`` entries
    are masked out (they contribute ``exp(-inf) = 0``); an empty or all ``-inf`` row gives ``-inf``;
    a row with one finite entry returns it exactly (``-0`` gives ``+0``). A finite result beyond the
    format's range is ``+inf`` (correct rounding of an overflow).
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    rows = Rows(_f64(x), axis)
    out = []
    for row in rows.rows.tolist():
        settled, finite = _lse_row_special(row)
        if settled is not None:
            out.append(settled)
            continue
        sh = _Shifted(finite)

        def enclose(todo, prec, sh=sh):
            t = sh.at(prec)
            return {0: _offset_plus(t.m, _log1p(t.s, prec), 1, fmt, prec)}

        out.extend(_ziv(fmt, 1, enclose, {}))
    return rows.reduced(np.array(out, dtype=np.float64), keepdims).astype(fmt.dtype)


def _softmax_rows(x, axis, log: bool) -> np.ndarray:
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    rows = Rows(_f64(x), axis)
    result = np.empty(rows.rows.shape, dtype=np.float64)
    for r, row in enumerate(rows.rows.tolist()):
        result[r] = _softmax_row(row, fmt, log)
    return rows.elementwise(result).astype(fmt.dtype)


def _softmax_enclosures(d: list, k: int, e: list, s, todo, prec, log: bool, fmt=None) -> dict:
    """Enclosures of (log_)softmax from offsets ``d`` (``d[k] == 0``), ``e = exp(d)``, ``s``.

    With ``fmt``, the offsets are exact multiples of its smallest subnormal and ``d - log1p(s)``
    is formed by :func:`_offset_plus`.
    """
    out = {}
    if log:
        l1p = _log1p(s, prec)
        for i in todo:
            if fmt is None:
                out[i] = _sub(d[i], l1p, prec)
            else:
                out[i] = _offset_plus(d[i][0], l1p, -1, fmt, prec)
    else:
        total = _add(_I_ONE, s, prec)
        for i in todo:
            out[i] = _div(e[i], total, prec)
    return out


def _softmax_row(row: list, fmt: Format, log: bool) -> list:
    n = len(row)
    if n == 0:
        return []
    masked = -INF if log else 0.0
    if any(v != v for v in row) or all(v == -INF for v in row):
        return [NAN] * n
    if any(v == INF for v in row):
        return [NAN if v == INF else masked for v in row]
    index = [i for i, v in enumerate(row) if v != -INF]
    finite = [row[i] for i in index]
    if len(finite) == 1:
        return [masked if v == -INF else (0.0 if log else 1.0) for v in row]
    out = [masked] * n
    if not log and all(v == finite[0] for v in finite):  # exp(x)/sum exp(x) = 1/n exactly
        share = round_rational(1, len(finite), fmt)
        for i in index:
            out[i] = share
        return out
    sh = _Shifted(finite)

    def enclose(todo, prec):
        t = sh.at(prec)
        d = [(v, v) for v in t.d]
        return _softmax_enclosures(d, t.k, t.e, t.s, todo, prec, log, fmt)

    values = _ziv(fmt, len(finite), enclose, {})
    for i, v in zip(index, values):
        out[i] = v
    return out


def log_softmax(x, axis=-1) -> np.ndarray:
    """Correctly rounded ``x - logsumexp(x)`` along ``axis``, in the dtype of ``x``.

    Special values: a row holding NaN, or only ``-inf``, is all NaN; in a row holding ``+inf`` the
    ``+inf`` entries are NaN and the others ``-inf``; ``-inf`` entries of other rows give ``-inf``;
    the only finite entry of a row gives ``+0``.
    """
    return _softmax_rows(x, axis, log=True)


def softmax(x, axis=-1) -> np.ndarray:
    """Correctly rounded ``exp(x - logsumexp(x))`` along ``axis``, in the dtype of ``x``.

    Special values: as :func:`log_softmax`, with ``0`` in place of ``-inf`` and ``1`` in place of
    ``0``. ``n`` equal finite entries give ``1/n`` each, rounded once.
    """
    return _softmax_rows(x, axis, log=False)


# ---------------------------------------------------------------------------------------------
# Softlog entropy, cross-entropy and divergences: c + sum_v W(v) L(v), exact where rational.


def _pairs_entropy(p, q):  # -sum p L(p)
    return ((pi, -pi) for pi in p)


def _pairs_cross(p, q):  # -sum p L(q)
    return ((qi, -pi) for pi, qi in zip(p, q))


def _pairs_sld(p, q):  # sum p (L(p) - L(q)) / 2
    for pi, qi in zip(p, q):
        yield pi, pi / 2
        yield qi, -pi / 2


def _pairs_sym(p, q):  # sum (p - q)(L(p) - L(q)) / 4
    for pi, qi in zip(p, q):
        c = (pi - qi) / 4
        yield pi, c
        yield qi, -c


def _softlog_sum(pairs) -> tuple[Fraction, dict]:
    """``sum c * L(v)`` over ``(v, c)`` pairs (c a Fraction) as ``(rational part, {v: W(v)})`` with
    the exact softlogs folded into the rational part and zero weights dropped."""
    weights: dict[float, Fraction] = {}
    for v, c in pairs:
        if c:
            weights[v] = weights.get(v, 0) + c
    const = Fraction(0)
    for v, lv in _EXACT_L.items():  # -0.0 and 0.0 are one key
        if v in weights:
            const += weights.pop(v) * lv
    return const, {v: w for v, w in weights.items() if w}


def _sum_enclosure(const: Fraction, weights: dict, prec: int, cache: dict):
    """Enclosure of ``const + sum W(v) L(v)``; ``cache`` holds ``L(v)`` enclosures at ``prec``."""
    c = _dyadic(const)
    total = (c, c)
    for v, w in weights.items():
        lv = cache.get(v)
        if lv is None:
            lv = cache[v] = _softlog_enc(v, prec)
        wm = _dyadic(w)
        total = _add(total, _mul((wm, wm), lv, prec), prec)
    return total


def _row_sum(pairs, fmt: Format) -> float:
    """Correctly rounded ``sum c * L(v)`` over the ``(v, c)`` pairs (floats v, Fraction c)."""
    const, weights = _softlog_sum(pairs)
    if not weights:
        return round_rational(const.numerator, const.denominator, fmt)

    def enclose(todo, prec):
        return {0: _sum_enclosure(const, weights, prec, {})}

    return _ziv(fmt, 1, enclose, {})[0]


def _divergence(pairs, args, names, softlog_args, axis, keepdims, validate):
    fmt, arrays = prepared_distributions(args, names, axis, validate)
    rows = [Rows(_f64(a), axis) for a in arrays]
    ps = rows[0].rows.tolist()
    qs = rows[-1].rows.tolist()
    out = []
    for prow, qrow in zip(ps, qs):
        if not all(math.isfinite(v) for v in prow + qrow):
            out.append(NAN)
            continue
        evaluated = set()
        if "p" in softlog_args:
            evaluated.update(prow)
        if "q" in softlog_args:
            evaluated.update(qrow)
        if any(_below_branch(v) for v in evaluated):
            out.append(NAN)
            continue
        fp = [Fraction(v) for v in prow]
        fq = [Fraction(v) for v in qrow]
        pairs_f = pairs(fp, fq)
        out.append(_row_sum(((float(v), c) for v, c in pairs_f), fmt))
    return rows[0].reduced(np.array(out, dtype=np.float64), keepdims).astype(fmt.dtype)


def softlog_entropy(p, axis=-1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
    """Correctly rounded ``-sum(p * L(p))`` along ``axis``.

    With ``validate=False`` a row holding NaN or ``±inf`` gives NaN and an entry below
    ``-1/(e**2 - 1)`` gives NaN; an exact zero result is ``+0``.
    """
    return _divergence(_pairs_entropy, (p,), ("p",), "p", axis, keepdims, validate)


def softlog_cross_entropy(p, q, axis=-1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
    """Correctly rounded ``-sum(p * L(q))`` along ``axis``.

    With ``validate=False`` a row holding NaN or ``±inf`` gives NaN, and so does an entry of ``q``
    below ``-1/(e**2 - 1)`` (whatever ``p`` is there: ``0 * NaN`` is NaN); an exact zero result is
    ``+0``.
    """
    return _divergence(_pairs_cross, (p, q), ("p", "q"), "q", axis, keepdims, validate)


def sld(p, q, axis=-1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
    """Correctly rounded ``sum(p * (L(p) - L(q))) / 2`` along ``axis``.

    With ``validate=False`` a row holding NaN or ``±inf`` gives NaN, and so does an entry of ``p``
    or ``q`` below ``-1/(e**2 - 1)``; an exact zero result (e.g. ``p == q``) is ``+0``.
    """
    return _divergence(_pairs_sld, (p, q), ("p", "q"), "pq", axis, keepdims, validate)


def sld_sym(p, q, axis=-1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
    """Correctly rounded ``sum((p - q) * (L(p) - L(q))) / 4`` along ``axis``.

    With ``validate=False`` a row holding NaN or ``±inf`` gives NaN, and so does an entry of ``p``
    or ``q`` below ``-1/(e**2 - 1)``; an exact zero result (e.g. ``p == q``) is ``+0``.
    """
    return _divergence(_pairs_sym, (p, q), ("p", "q"), "pq", axis, keepdims, validate)


# ---------------------------------------------------------------------------------------------
# The softlog-softmax layer


def softlog_softmax(P, w, *, log: bool = False, validate: bool = True) -> np.ndarray:
    """Correctly rounded ``softmax_k(sum_b w[b, k] * L(P[..., b, k]))`` (``log_softmax`` if ``log``).

    ``P`` has shape ``(..., B, K)``; ``w`` has shape ``(B, K)`` or ``(B,)``. The result has shape
    ``(..., K)`` and the common dtype of ``P`` and ``w``.

    Special values: ``K == 1`` gives ``1`` (``+0`` with ``log``); ``B == 0`` gives the uniform
    ``1/K``. With ``validate=False``, a row (one ``(B, K)`` slice) holding NaN or ``±inf`` in ``P``,
    ``±inf`` or NaN in ``w``, or an entry of ``P`` below ``-1/(e**2 - 1)`` (whatever its weight:
    ``0 * NaN`` is NaN) is all NaN.
    """
    fmt, P, w = prepared_layer(P, w, validate)
    B, K = P.shape[-2:]
    w64 = _f64(w)
    w2 = np.broadcast_to(w64[:, None] if w64.ndim == 1 else w64, (B, K))
    flat = _f64(P).reshape(int(np.prod(P.shape[:-2], dtype=np.int64)), B, K)
    out = np.empty((flat.shape[0], K), dtype=np.float64)
    for r in range(flat.shape[0]):
        out[r] = _layer_row(flat[r], w2, fmt, log)
    return out.reshape(P.shape[:-2] + (K,)).astype(fmt.dtype)


def _layer_row(Pr, w2, fmt, log):
    B, K = Pr.shape
    if K == 0:
        return []
    if not (np.isfinite(Pr).all() and np.isfinite(w2).all()):
        return [NAN] * K
    if any(_below_branch(v) for v in set(Pr.ravel().tolist())):
        return [NAN] * K
    if K == 1:
        return [0.0 if log else 1.0]
    Pl, wl = Pr.tolist(), w2.tolist()
    forms = [
        _softlog_sum((Pl[b][k], Fraction(wl[b][k])) for b in range(B)) for k in range(K)
    ]
    if not log and all(f == forms[0] for f in forms):  # equal logits: 1/K exactly
        return [round_rational(1, K, fmt)] * K

    def enclose(todo, prec):
        cache = {}
        z = [_sum_enclosure(c, ws, prec, cache) for c, ws in forms]
        k = max(range(K), key=lambda j: libmp.to_float(z[j][1]))
        d = [_I_ZERO if j == k else _sub(z[j], z[k], prec) for j in range(K)]
        e = [_I_ONE if j == k else _exp(d[j], prec) for j in range(K)]
        s = _I_ZERO
        for j in range(K):
            if j != k:
                s = _add(s, e[j], prec)
        return _softmax_enclosures(d, k, e, s, todo, prec, log)

    return _ziv(fmt, K, enclose, {})
