"""Correctly rounded reference values, computed with mpmath interval arithmetic.

Every function here has the signature of the production function of the same name and returns,
elementwise, the exact mathematical result rounded *once* to the dtype of the input (round to
nearest, ties to even, gradual underflow, overflow to infinity).

How (proofs/oracle.md):

1. Special values (NaN, infinities, empty rows, masked ``-inf`` logits, out-of-domain input) are
   settled by the table in each docstring, outside mpmath.
2. Results that are exactly representable rationals in a way the algebra shows (``softlog(0) = -1``,
   ``softlog(1) = 1``, a single unmasked logit, ``p == q`` terms) are rounded exactly from a
   :class:`fractions.Fraction`.
3. Everything else is enclosed in an interval with ``mpmath.iv`` at working precision ``P`` bits. If
   both endpoints round to the same number of the target format (and the same sign of zero), that is
   the correctly rounded result; otherwise ``P`` is doubled (Ziv's strategy). ``P`` starts at
   ``p + 32`` and the loop gives up with :class:`OracleUndecided` past ``MAX_PRECISION`` bits rather
   than ever return a value it has not proven.

The interval context's precision is set for the duration of one evaluation and restored in a
``finally`` block; nothing global is left changed.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction

import mpmath
import numpy as np
from mpmath import iv
from mpmath import libmp

from ._axes import Rows, check_probabilities, check_same_shape
from ._dtypes import Format, as_float_array, format_of, result_format

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


class OracleUndecided(ArithmeticError):
    """The rounding of a result was not decided below ``MAX_PRECISION`` bits (never silently guessed)."""


# ---------------------------------------------------------------------------------------------
# Rounding an exact binary or rational value to a format, once.


def round_rational(num: int, den: int, fmt) -> float:
    """Round ``num / den`` (integers, ``den > 0``) to ``fmt``, once; returned as the float64 that
    holds the result exactly (every value of the four formats is a float64).

    Ties go to even; values below the smallest normal are rounded on the subnormal grid; a value
    whose rounding is at least ``2**(emax+1)`` becomes ``±inf``. Zero results keep the sign of
    ``num`` (``-0.0`` for a negative value that underflows).
    """
    fmt = format_of(fmt)
    if den <= 0:
        raise ValueError("den must be positive")
    negative = num < 0
    num = abs(num)
    if num == 0:
        return 0.0
    # e = floor(log2(num/den))
    e = num.bit_length() - den.bit_length()
    if (num << max(0, -e)) < (den << max(0, e)):
        e -= 1
    q = max(e, fmt.emin) - (fmt.precision - 1)  # exponent of the last place
    # n = round(num / den / 2**q) to nearest, ties to even
    if q >= 0:
        n, r = divmod(num, den << q)
        twice_r, d = 2 * r, den << q
    else:
        n, r = divmod(num << -q, den)
        twice_r, d = 2 * r, den
    if twice_r > d or (twice_r == d and n & 1):
        n += 1
    if n and n.bit_length() - 1 + q > fmt.emax:
        value = float("inf")
    else:
        value = float(n) * 2.0**q if q >= -1074 + 0 else 0.0
        value = _ldexp_exact(n, q)
    return -value if negative else value


def _ldexp_exact(n: int, q: int) -> float:
    import math

    return math.ldexp(float(n), q)  # n < 2**54 and n * 2**q representable: exact


def _round_mpf_tuple(t, fmt: Format):
    """Round a raw mpmath value ``(sign, man, exp, bc)`` to ``fmt``; None for NaN."""
    if t == libmp.fnan:
        return None
    if t == libmp.finf:
        return float("inf")
    if t == libmp.fninf:
        return float("-inf")
    sign, man, exp, _ = t
    if not man:
        return 0.0
    num = man << exp if exp >= 0 else man
    den = 1 if exp >= 0 else 1 << -exp
    return round_rational(-num if sign else num, den, fmt)


def round_to(value, dtype) -> np.ndarray:
    """Round an mpmath number, Fraction, int or float to ``dtype``, once (a 0-d array)."""
    fmt = format_of(dtype)
    if isinstance(value, Fraction):
        r = round_rational(value.numerator, value.denominator, fmt)
    elif isinstance(value, int):
        r = round_rational(value, 1, fmt)
    else:
        r = _round_mpf_tuple(mpmath.mpf(value)._mpf_, fmt)
        r = float("nan") if r is None else r
    return np.array(r, dtype=np.float64).astype(fmt.dtype)


# ---------------------------------------------------------------------------------------------
# Ziv loop over interval enclosures.


@contextlib.contextmanager
def _interval_precision(bits: int):
    saved = iv.prec
    try:
        iv.prec = bits
        yield
    finally:
        iv.prec = saved


def _decide(interval, fmt: Format):
    """The common rounding of both endpoints of ``interval``, or None if they differ."""
    lo, hi = interval._mpi_
    a, b = _round_mpf_tuple(lo, fmt), _round_mpf_tuple(hi, fmt)
    if a is None or b is None or a != b:
        return None
    if a == 0.0:
        if lo == libmp.fzero and hi == libmp.fzero:
            return 0.0
        if lo[0] == 0 and lo != libmp.fzero:  # lo > 0
            return 0.0
        if hi[0] == 1:  # hi < 0
            return -0.0
        return None
    return a


def _ziv(fmt: Format, count: int, enclose, fixed: dict) -> list:
    """Correctly rounded values ``0..count-1``: ``fixed`` holds the settled ones, ``enclose(todo)``
    returns ``{i: interval}`` at the current interval precision for the others."""
    out = [fixed.get(i) for i in range(count)]
    todo = [i for i in range(count) if i not in fixed]
    bits = fmt.precision + 32
    while todo:
        if bits > MAX_PRECISION:
            raise OracleUndecided(
                f"rounding to {fmt.name} not decided at {bits // 2} bits for {len(todo)} value(s); "
                "the exact value may be a rounding boundary the oracle does not recognise as exact"
            )
        with _interval_precision(bits):
            enclosures = enclose(todo)
        undecided = []
        for i in todo:
            r = _decide(enclosures[i], fmt)
            if r is None:
                undecided.append(i)
            else:
                out[i] = r
        todo = undecided
        bits *= 2
    return out


def _exact_float(v) -> Fraction:
    return Fraction(float(v))


def _softlog_constants():
    """``a = e - 1/e`` and ``b = 1/e`` as intervals at the current interval precision."""
    b = 1 / iv.e
    return iv.e - b, b


def _softlog_iv(x: float, consts):
    a, b = consts
    return iv.log(a * iv.mpf(x) + b)


def _as_result(values: list, fmt: Format, shape) -> np.ndarray:
    return np.array(values, dtype=np.float64).reshape(shape).astype(fmt.dtype)


NAN = float("nan")

# ---------------------------------------------------------------------------------------------
# softlog


def _softlog_exact(x: float):
    """Settled value of L(x) without mpmath, or None."""
    if x != x or x == -np.inf:
        return NAN
    if x == np.inf:
        return np.inf
    if x == 0.0:
        return -1.0
    if x == 1.0:
        return 1.0
    if x < -0.1565176427496657:  # below -1/(e^2-1) = -0.156517642749665651...: not real
        return NAN
    return None


def _softlog_values(xs: list, fmt: Format) -> list:
    fixed = {}
    for i, x in enumerate(xs):
        v = _softlog_exact(x)
        if v is not None:
            fixed[i] = v
    # inputs within 1e-15 of the branch point are decided by the interval test below

    def enclose(todo):
        consts = _softlog_constants()
        out = {}
        for i in todo:
            arg = consts[0] * iv.mpf(xs[i]) + consts[1]
            if arg.b < 0:
                out[i] = iv.mpf(NAN)
            else:
                out[i] = iv.log(arg)
        return out

    vals = _ziv(fmt, len(xs), _nan_aware(enclose, xs, fmt), fixed)
    return vals


def _nan_aware(enclose, xs, fmt):
    """Wrap ``enclose`` so that an interval proven NaN (argument of log entirely negative) settles."""

    def wrapped(todo):
        res = enclose(todo)
        for i, v in res.items():
            if isinstance(v, type(iv.mpf(0))) and v._mpi_[0] == libmp.fnan:
                res[i] = _NanInterval()
        return res

    return wrapped


class _NanInterval:
    _mpi_ = (libmp.fnan, libmp.fnan)


def _decide_with_nan(interval, fmt):
    if isinstance(interval, _NanInterval):
        return NAN
    return _decide_plain(interval, fmt)


_decide_plain = _decide


def softlog(x) -> np.ndarray:
    """Correctly rounded ``ln((e - 1/e) x + 1/e)`` in the dtype of ``x``.

    Special values: ``softlog(±0) = -1``, ``softlog(1) = 1``, ``softlog(+inf) = +inf``; NaN, and
    every ``x < -1/(e**2 - 1)`` (including ``-inf``), give NaN.
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    flat = [float(v) for v in x.astype(np.float64).ravel()]
    return _as_result(_softlog_values(flat, fmt), fmt, x.shape)
