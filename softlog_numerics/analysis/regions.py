"""Where exp, softmax, log_softmax and softlog break down in each format, located exactly.

Every threshold here is computed twice, by two routes that share nothing but the definition of
correct rounding:

* a **formula** in the format's precision ``p`` and exponent range ``[emin, emax]`` (the rounding
  boundary of the format, pulled back through ``exp``), enclosed in an interval and then
  rounded *directed* (up or down) to the format; proofs/thresholds.md derives each one;
* a **bisection** over the representable values of the format (their ordinal positions, see
  :func:`softlog_numerics.ulp.ordinal`), deciding a monotone predicate at each probe with
  correctly rounded ``exp``/``log`` and exactly rounded ``+ - * /`` (rational arithmetic): this is
  the format's own arithmetic, not float64's.

Every enclosure here (of ``exp``, ``log``, ``log1p``, the constants, the formulas and the softlog
``L``) is built from the enclosure primitives of :mod:`softlog_numerics.oracle`, which do not trust
mpmath's rounding of ``exp``/``log`` (hypothesis H1 of proofs/oracle.md, Theorem O2), at a working
precision passed explicitly; the refinement is the oracle's Ziv loop,
:func:`softlog_numerics.oracle.decide_enclosure`. No mpmath global context is read or changed.

``tests/test_regions.py`` checks that the two agree for every threshold and format, and that each
threshold reproduces by direct evaluation (the predicate holds at the threshold and fails at its
neighbour).

The thresholds (for a value ``x`` or a logit gap ``g`` of the format):

``exp_overflow``
    smallest ``x`` with ``RN(exp(x)) = +inf``: ``RU((emax + 1) ln 2 + ln(1 - 2**-(p+1)))``.
``exp_underflow_zero``
    largest ``x`` with ``RN(exp(x)) = 0``: ``RD((emin - p) ln 2)``.
``exp_subnormal``
    largest ``x`` with ``RN(exp(x))`` subnormal (nonzero, below ``2**emin``):
    ``RD(emin ln 2 + ln(1 - 2**-p))``.
``softmax_collapse_gap``
    smallest ``g`` with ``RN(1 + RN(exp(-g))) = 1``: ``RU(p ln 2 - ln(1 + 2**-p))``.
``log_softmax_argmax_zero_gap``
    smallest ``g`` at which the max-shifted three-pass log_softmax of ``[g, 0]``, every operation
    rounded to the format, returns exactly 0 for the first class (whose true value
    ``-log1p(exp(-g))`` is negative): the same number as the collapse gap
    (proofs/thresholds.md, Theorem T5).
``softlog_*_width``
    for the two textbook softlog formulas and the library's own softlog, the number of
    consecutive representable ``x`` around ``x0 = 1/(e+1)`` on which the result, evaluated in the
    format, has no correct bit (relative error at least 1). Computed by evaluating every ``x`` in
    a window of ``±SOFTLOG_WINDOW`` ULPs, which Theorem T6 shows contains the whole region.

Format arithmetic
-----------------
:class:`ExactOps` rounds every operation to the format exactly (scalar; used by the bisections and
the softlog scan). :class:`VectorOps` is its vectorised counterpart for the region maps: ``+ - * /``
are computed in float64 and rounded once with
:func:`~softlog_numerics._dtypes.round_from_float64`, which is exact for float16, bfloat16 and
float32 (float64 has ``53 >= 2p + 2`` bits: double rounding is innocuous, Figueroa 1995), and
native for float64; ``exp``/``log``/``log1p`` take NumPy's float64 libm value (within 1 float64
ULP, checked by ``tests/test_regions.py::test_libm_primitives_within_one_ulp``) and round it once,
so they can differ from the correctly rounded value only when the exact value lies within one
float64 ULP of a rounding boundary of the format; in float64 they are the libm's (<= 1 ULP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from mpmath import libmp

from ._dtypes import FORMATS, Format, format_of, round_from_float64
from .oracle import (
    _I_ONE,
    _add,
    _decide,
    _div,
    _dyadic,
    _exp,
    _log,
    _log1p,
    _mul,
    _point,
    _softlog_constants,
    _softlog_enc,
    _sub,
    decide_enclosure,
    round_rational,
)
from .ulp import from_ordinal, ordinal

__all__ = [
    "EXP_KEYS",
    "SOFTLOG_KEYS",
    "SOFTLOG_VARIANTS",
    "SOFTLOG_WINDOW",
    "ExactOps",
    "VectorOps",
    "bisection_thresholds",
    "cr_exp",
    "cr_log",
    "formula_thresholds",
    "log_softmax_variant",
    "regions_table",
    "softlog_no_correct_bits",
    "softlog_variant",
    "softlog_widths",
]

EXP_KEYS = (
    "exp_overflow",
    "exp_underflow_zero",
    "exp_subnormal",
    "softmax_collapse_gap",
    "log_softmax_argmax_zero_gap",
)
"""The thresholds that have a closed formula, in the order they are reported."""

SOFTLOG_VARIANTS = ("naive_log", "naive_log1p", "production")
"""Softlog algorithms whose region of total accuracy loss is measured."""

SOFTLOG_KEYS = tuple(f"softlog_{v}_width" for v in SOFTLOG_VARIANTS)

SOFTLOG_WINDOW = 64
"""Half-width, in ULPs of x, of the window around x0 scanned for the softlog regions (Theorem T6
shows that the region lies within 10 ULPs of the number nearest x0 for every format and variant)."""


# ---------------------------------------------------------------------------------------------
# Exact values of the format, their neighbours and directed rounding


def _mpf_fraction(t) -> Fraction:
    """A raw mpmath value (sign, man, exp, bc) as an exact Fraction (finite values only)."""
    sign, man, exp, _ = t
    v = Fraction(man << exp) if exp >= 0 else Fraction(man, 1 << -exp)
    return -v if sign else v


def _rn(v: Fraction, fmt: Format) -> float:
    """Round an exact rational to the format, once (as the float64 holding the result)."""
    return round_rational(v.numerator, v.denominator, fmt)


def _pos(x: float, fmt: Format) -> int:
    return int(ordinal(round_from_float64(np.float64(x), fmt)))


def _val(o: int, fmt: Format) -> float:
    return float(from_ordinal(np.int64(o), fmt.dtype).astype(np.float64))


def next_up(x: float, fmt) -> float:
    """The next larger number of the format after ``x`` (a value of the format)."""
    fmt = format_of(fmt)
    return _val(_pos(x, fmt) + 1, fmt)


def next_down(x: float, fmt) -> float:
    """The next smaller number of the format before ``x`` (a value of the format)."""
    fmt = format_of(fmt)
    return _val(_pos(x, fmt) - 1, fmt)


def _finite(t) -> bool:
    """Whether a raw mpmath value is finite (not an infinity or NaN: those have a zero mantissa
    and a nonzero exponent)."""
    return bool(t[1]) or t == libmp.fzero


def _decide_nearest(fmt: Format):
    """The oracle's decision: both ends of the enclosure round to nearest alike (sign of zero
    included), else None."""
    return lambda enc: _decide(enc, fmt)


def _directed(value: Fraction, fmt: Format, up: bool) -> float:
    """The number of the format just above (``up``) or just below ``value``, or ``value`` itself."""
    r = _rn(value, fmt)
    if math.isinf(r):  # |value| beyond the overflow boundary
        if r > 0:
            return r if up else fmt.max
        return -fmt.max if up else r
    if up and Fraction(r) < value:
        r = next_up(r, fmt)
    elif not up and Fraction(r) > value:
        r = next_down(r, fmt)
    return r


def round_directed(enclose, fmt, up: bool) -> float:
    """``RU`` (``up=True``) or ``RD`` of the real number enclosed by ``enclose(prec)``.

    ``enclose(prec)`` returns a raw interval ``(lo, hi)`` built with the oracle's enclosure
    primitives at working precision ``prec``; it is re-evaluated at increasing precision by
    :func:`softlog_numerics.oracle.decide_enclosure` until both endpoints round alike."""
    fmt = format_of(fmt)

    def decide(enc):
        lo, hi = enc
        if not (_finite(lo) and _finite(hi)):
            return None
        a = _directed(_mpf_fraction(lo), fmt, up)
        b = _directed(_mpf_fraction(hi), fmt, up)
        return a if a == b else None

    return decide_enclosure(enclose, decide, fmt)


def cr_exp(x: float, fmt) -> float:
    """Correctly rounded ``exp(x)`` in the format (``x`` a value of the format), by Ziv's loop."""
    fmt = format_of(fmt)
    if math.isnan(x):
        return x
    if math.isinf(x):
        return math.inf if x > 0 else 0.0
    if x == 0.0:
        return 1.0
    return decide_enclosure(lambda prec: _exp(_point(x), prec), _decide_nearest(fmt), fmt)


def cr_log(x: float, fmt) -> float:
    """Correctly rounded ``log(x)`` in the format (NaN for ``x < 0``, ``-inf`` at 0, 0 at 1)."""
    fmt = format_of(fmt)
    if math.isnan(x) or x < 0:
        return math.nan
    if x == 0.0:
        return -math.inf
    if math.isinf(x):
        return math.inf
    if x == 1.0:
        return 0.0
    return decide_enclosure(lambda prec: _log(_point(x), prec), _decide_nearest(fmt), fmt)


def cr_log1p(x: float, fmt) -> float:
    """Correctly rounded ``log1p(x)`` in the format (``x`` a value of the format).

    ``x > 0`` uses the oracle's ``log1p`` enclosure; ``-1 < x < 0`` the oracle's ``log`` of the
    exact ``1 + x`` (formed at precision 0, i.e. without rounding)."""
    fmt = format_of(fmt)
    if math.isnan(x) or x < -1:
        return math.nan
    if x == -1.0:
        return -math.inf
    if math.isinf(x):
        return math.inf
    if x == 0.0:
        return x
    if x > 0:
        enclose = lambda prec: _log1p(_point(x), prec)  # noqa: E731
    else:
        one_plus_x = libmp.mpf_add(libmp.fone, libmp.from_float(x), 0)  # exact
        enclose = lambda prec: _log((one_plus_x, one_plus_x), prec)  # noqa: E731
    return decide_enclosure(enclose, _decide_nearest(fmt), fmt)


def cr_constant(enclose, fmt) -> float:
    """A constant correctly rounded to the format; ``enclose(prec)`` returns a raw interval built
    with the oracle's enclosure primitives at working precision ``prec``."""
    fmt = format_of(fmt)
    return decide_enclosure(enclose, _decide_nearest(fmt), fmt)


# ---------------------------------------------------------------------------------------------
# Arithmetic of a format


class ExactOps:
    """Scalar arithmetic of one format: every operation's exact result rounded once to it.

    Values are Python floats holding numbers of the format. ``+ - * /`` are exact rationals
    rounded by :func:`softlog_numerics.oracle.round_rational`; ``exp``, ``log``, ``log1p`` are
    correctly rounded by the oracle's Ziv loop over its enclosures. Infinite and NaN operands follow IEEE
    754 (computed in float64, whose special-value rules are the format's).
    """

    exact = True

    def __init__(self, fmt):
        self.fmt = format_of(fmt)

    def _binary(self, a, b, op, fop):
        if not (math.isfinite(a) and math.isfinite(b)):
            with np.errstate(all="ignore"):
                return float(fop(np.float64(a), np.float64(b)))
        if op == "/" and b == 0.0:
            with np.errstate(all="ignore"):
                return float(np.float64(a) / np.float64(b))
        fa, fb = Fraction(a), Fraction(b)
        v = {"+": fa + fb, "-": fa - fb, "*": fa * fb, "/": fa / fb if b else None}[op]
        if v == 0:  # an exact zero: IEEE's sign rules, which float64 applies exactly here
            return float(fop(np.float64(a), np.float64(b)))
        return _rn(v, self.fmt)

    def add(self, a, b):
        return self._binary(a, b, "+", np.add)

    def sub(self, a, b):
        return self._binary(a, b, "-", np.subtract)

    def mul(self, a, b):
        return self._binary(a, b, "*", np.multiply)

    def div(self, a, b):
        return self._binary(a, b, "/", np.divide)

    def neg(self, a):
        return -a

    def maximum(self, a, b):
        return max(a, b)

    def where(self, c, a, b):
        return a if c else b

    def exp(self, a):
        return cr_exp(a, self.fmt)

    def log(self, a):
        return cr_log(a, self.fmt)

    def log1p(self, a):
        return cr_log1p(a, self.fmt)

    def const(self, enclose):
        return cr_constant(enclose, self.fmt)

    def value(self, x):
        """An input of the format, checked to be one."""
        x = float(x)
        if math.isfinite(x) and _rn(Fraction(x), self.fmt) != x:
            raise ValueError(f"{x!r} is not a number of {self.fmt.name}")
        return x


class VectorOps:
    """Vectorised arithmetic of one format on float64 arrays holding numbers of the format.

    ``+ - * /`` in float64 then one rounding (exact emulation for the narrow formats, native for
    float64); ``exp``, ``log``, ``log1p`` from NumPy's float64 libm, then one rounding: faithful,
    and correctly rounded except within one float64 ULP of a midpoint of the format
    (proofs/thresholds.md, Theorem T7).
    """

    exact = False

    def __init__(self, fmt):
        self.fmt = format_of(fmt)

    def _r(self, v):
        if self.fmt.name == "float64":
            return v
        return round_from_float64(v, self.fmt).astype(np.float64)

    def _op(self, fn, *args):
        with np.errstate(all="ignore"):
            return self._r(fn(*(np.asarray(a, dtype=np.float64) for a in args)))

    def add(self, a, b):
        return self._op(np.add, a, b)

    def sub(self, a, b):
        return self._op(np.subtract, a, b)

    def mul(self, a, b):
        return self._op(np.multiply, a, b)

    def div(self, a, b):
        return self._op(np.divide, a, b)

    def neg(self, a):
        return -np.asarray(a, dtype=np.float64)

    def maximum(self, a, b):
        return np.maximum(a, b)

    def where(self, c, a, b):
        return np.where(c, a, b)

    def exp(self, a):
        return self._op(np.exp, a)

    def log(self, a):
        return self._op(np.log, a)

    def log1p(self, a):
        return self._op(np.log1p, a)

    def const(self, enclose):
        return cr_constant(enclose, self.fmt)

    def value(self, x):
        x = np.asarray(x)
        if x.dtype != self.fmt.dtype:
            x = round_from_float64(x.astype(np.float64), self.fmt)
        return x.astype(np.float64)


# ---------------------------------------------------------------------------------------------
# The algorithm variants, written once against ExactOps / VectorOps


# Enclosures of the constants at working precision prec, from the oracle's primitives.


def _A(prec):
    """``e - 1/e``."""
    return _softlog_constants(prec)[0]


def _B(prec):
    """``1/e``."""
    return _softlog_constants(prec)[1]


def _C(prec):
    """``e**2 - 1``."""
    return _sub(_exp(_point(2.0), prec), _I_ONE, prec)


def softlog_variant(name: str, ops, x):
    """A textbook softlog formula evaluated in the format of ``ops``.

    ``naive_log``: ``log(RN(RN(a x) + b))`` with ``a = RN(e - 1/e)``, ``b = RN(1/e)``;
    ``naive_log1p``: ``RN(log1p(RN(c x)) - 1)`` with ``c = RN(e**2 - 1)``.
    ``production``: the library's :func:`softlog_numerics.softlog.softlog` (imported when used).
    """
    if name == "naive_log":
        a, b = ops.const(_A), ops.const(_B)
        return ops.log(ops.add(ops.mul(a, x), b))
    if name == "naive_log1p":
        c = ops.const(_C)
        return ops.sub(ops.log1p(ops.mul(c, x)), 1.0)
    if name == "production":
        from .softlog import softlog

        arr = np.asarray(x, dtype=np.float64)
        y = softlog(round_from_float64(arr, ops.fmt)).astype(np.float64)
        return float(y) if ops.exact else y
    raise ValueError(f"unknown softlog variant {name!r}; expected one of {SOFTLOG_VARIANTS}")


LOG_SOFTMAX_VARIANTS = ("naive", "shifted", "shifted_log1p", "production")
"""Two-class log_softmax algorithms drawn on the region maps."""


def log_softmax_variant(name: str, ops, x0, x1):
    """Two-class log_softmax ``[x0, x1]`` by one algorithm, in the format of ``ops``.

    ``naive``: ``x_i - log(exp(x0) + exp(x1))``. ``shifted`` (three passes, as scipy, PyTorch and
    JAX): ``m = max``, ``d_i = x_i - m``, ``d_i - log(exp(d0) + exp(d1))``. ``shifted_log1p``:
    ``d_i - log1p(exp(d_j))`` with ``j`` the smaller entry. ``production``: the library's
    :func:`softlog_numerics.logsoftmax.log_softmax`. Returns ``(y0, y1)``.
    """
    if name == "naive":
        s = ops.add(ops.exp(x0), ops.exp(x1))
        ls = ops.log(s)
        return ops.sub(x0, ls), ops.sub(x1, ls)
    if name in ("shifted", "shifted_log1p"):
        m = ops.maximum(x0, x1)
        d0, d1 = ops.sub(x0, m), ops.sub(x1, m)
        if name == "shifted":
            ls = ops.log(ops.add(ops.exp(d0), ops.exp(d1)))
        else:
            other = ops.where(x0 >= x1, d1, d0)
            ls = ops.log1p(ops.exp(other))
        return ops.sub(d0, ls), ops.sub(d1, ls)
    if name == "production":
        from .logsoftmax import log_softmax

        a = np.stack([np.asarray(x0, dtype=np.float64), np.asarray(x1, dtype=np.float64)], axis=-1)
        y = log_softmax(round_from_float64(a, ops.fmt), axis=-1).astype(np.float64)
        if ops.exact:
            return float(y[0]), float(y[1])
        return y[..., 0], y[..., 1]
    raise ValueError(f"unknown log_softmax variant {name!r}; expected one of {LOG_SOFTMAX_VARIANTS}")


# ---------------------------------------------------------------------------------------------
# Thresholds: formulas


def _q(value):
    """An exact dyadic rational (int or Fraction) as a point interval."""
    v = _dyadic(Fraction(value))
    return v, v


def _ln2(prec):
    return _log(_q(2), prec)


def formula_thresholds(dtype) -> dict[str, float]:
    """The five exp/softmax thresholds of a format from their closed formulas.

    Parameters
    ----------
    dtype : dtype, dtype name or Format
        One of float16, bfloat16, float32, float64.

    Returns
    -------
    dict
        ``{name: value}`` for the names of :data:`EXP_KEYS`; every value is a number of the format
        (held exactly by a Python float).

    Notes
    -----
    Each formula is enclosed with the oracle's interval primitives and rounded up or down to the
    format (the direction its definition requires), refining until both ends of the enclosure
    round alike. Derivations: ``exp_overflow`` proofs/thresholds.md, Theorem T1; ``exp_underflow_zero``
    proofs/thresholds.md, Theorem T2; ``exp_subnormal`` proofs/thresholds.md, Theorem T3;
    ``softmax_collapse_gap`` proofs/thresholds.md, Theorem T4; ``log_softmax_argmax_zero_gap``
    proofs/thresholds.md, Theorem T5 (:func:`bisection_thresholds` finds the same numbers
    independently).
    """
    f = format_of(dtype)
    p, emin, emax = f.precision, f.emin, f.emax

    def overflow_enc(prec):  # (emax + 1) ln 2 + ln(1 - 2**-(p+1))
        return _add(_mul(_q(emax + 1), _ln2(prec), prec), _log(_q(1 - Fraction(1, 2 ** (p + 1))), prec), prec)

    def zero_enc(prec):  # (emin - p) ln 2
        return _mul(_q(emin - p), _ln2(prec), prec)

    def subnormal_enc(prec):  # emin ln 2 + ln(1 - 2**-p)
        return _add(_mul(_q(emin), _ln2(prec), prec), _log(_q(1 - Fraction(1, 2**p)), prec), prec)

    def collapse_enc(prec):  # p ln 2 - ln(1 + 2**-p)
        return _sub(_mul(_q(p), _ln2(prec), prec), _log1p(_q(Fraction(1, 2**p)), prec), prec)

    overflow = round_directed(overflow_enc, f, up=True)
    zero = round_directed(zero_enc, f, up=False)
    subnormal = round_directed(subnormal_enc, f, up=False)
    collapse = round_directed(collapse_enc, f, up=True)
    return {
        "exp_overflow": overflow,
        "exp_underflow_zero": zero,
        "exp_subnormal": subnormal,
        "softmax_collapse_gap": collapse,
        "log_softmax_argmax_zero_gap": collapse,
    }


# ---------------------------------------------------------------------------------------------
# Thresholds: bisection over the representable values


def _bisect_first_true(pred, lo: float, hi: float, fmt: Format) -> float:
    """Smallest value ``x`` of the format in ``(lo, hi]`` with ``pred(x)``, for a monotone
    predicate with ``pred(lo)`` false and ``pred(hi)`` true (both checked)."""
    if pred(lo) or not pred(hi):
        raise AssertionError(f"bad bracket [{lo!r}, {hi!r}] for {fmt.name}")
    a, b = _pos(lo, fmt), _pos(hi, fmt)
    while b - a > 1:
        m = (a + b) // 2
        if pred(_val(m, fmt)):
            b = m
        else:
            a = m
    return _val(b, fmt)


def collapse_predicate(g: float, ops: ExactOps) -> bool:
    """``RN(1 + RN(exp(-g))) == 1`` in the format of ``ops``."""
    return ops.add(1.0, ops.exp(ops.neg(g))) == 1.0


def argmax_zero_predicate(g: float, ops: ExactOps) -> bool:
    """The shifted three-pass log_softmax of ``[g, 0]`` in the format returns exactly 0 for the
    first class (whose exact value ``-log1p(exp(-g))`` is negative for every finite ``g``)."""
    y0, _ = log_softmax_variant("shifted", ops, g, 0.0)
    return y0 == 0.0


def bisection_thresholds(dtype) -> dict[str, float]:
    """The five exp/softmax thresholds found by bisection over the representable values of the
    format, with correctly rounded exp/log and exactly rounded arithmetic at every probe.

    The brackets use only the format's parameters, never the formulas: ``exp(emax + 1) > 2**(emax+1)``
    overflows and ``exp(0)`` does not; ``exp(emin - p) < 2**(emin - p)`` rounds to zero; at
    ``g = p``, ``exp(-g) < 2**-p`` collapses the sum; at ``g = 0`` nothing collapses.
    """
    f = format_of(dtype)
    ops = ExactOps(f)
    p = f.precision
    overflow = _bisect_first_true(lambda x: cr_exp(x, f) == math.inf, 0.0, float(f.emax + 1), f)
    # largest x with exp(x) -> 0 is the value just below the smallest x with exp(x) != 0
    first_nonzero = _bisect_first_true(lambda x: cr_exp(x, f) != 0.0, float(f.emin - p), 0.0, f)
    first_normal = _bisect_first_true(lambda x: cr_exp(x, f) >= f.tiny, float(f.emin - p), 0.0, f)
    collapse = _bisect_first_true(lambda g: collapse_predicate(g, ops), 0.0, float(p), f)
    argmax_zero = _bisect_first_true(lambda g: argmax_zero_predicate(g, ops), 0.0, float(p), f)
    return {
        "exp_overflow": overflow,
        "exp_underflow_zero": next_down(first_nonzero, f),
        "exp_subnormal": next_down(first_normal, f),
        "softmax_collapse_gap": collapse,
        "log_softmax_argmax_zero_gap": argmax_zero,
    }


# ---------------------------------------------------------------------------------------------
# Softlog: the region without a correct bit around x0


def _x0_enc(prec):
    """``x0 = 1/(e + 1)``."""
    return _div(_I_ONE, _add(_exp(_I_ONE, prec), _I_ONE, prec), prec)


def _x0_nearest(fmt: Format) -> float:
    return cr_constant(_x0_enc, fmt)


def softlog_no_correct_bits(y: float, x: float, fmt: Format) -> bool:
    """True when ``y`` has no correct bit as an approximation of ``L(x)``: ``|y - L| >= |L|``.

    ``L(x)`` is never 0 at a number of the format (``x0 = 1/(e+1)`` is irrational), so this is
    ``y`` NaN, infinite, zero, of the opposite sign, or ``|y| >= 2 |L|``: decided exactly with an
    interval enclosure of ``L(x)`` (the oracle's) refined until it excludes ``y / 2`` and 0.
    """
    if not math.isfinite(y) or y == 0.0:
        return True

    def decide(enc):  # enc: the oracle's enclosure of L(x) at the working precision
        lo, hi = enc
        if not (_finite(lo) and _finite(hi)):
            return None  # not yet separated from the branch point: refine
        a, b = _mpf_fraction(lo), _mpf_fraction(hi)
        if a <= 0 <= b:
            return None  # the enclosure still straddles 0: refine
        if (a > 0) != (y > 0):
            return True  # wrong sign
        half = Fraction(y) / 2
        if y > 0:  # correct bits iff L > y/2
            return False if a > half else (True if b <= half else None)
        return False if b < half else (True if a >= half else None)

    return decide_enclosure(lambda prec: _softlog_enc(x, prec), decide, format_of(fmt))


@dataclass(frozen=True)
class SoftlogRegion:
    """The points without a correct bit near x0, for one variant and format."""

    variant: str
    dtype: str
    offsets: tuple[int, ...]  # ULP offsets (ordinal differences) from the number nearest x0
    window: int

    @property
    def width(self) -> int:
        """Number of consecutive representable x from the first to the last bad point (0 if none)."""
        return 0 if not self.offsets else self.offsets[-1] - self.offsets[0] + 1

    @property
    def count(self) -> int:
        return len(self.offsets)


def softlog_region(variant: str, dtype, window: int = SOFTLOG_WINDOW) -> SoftlogRegion:
    """Evaluate ``variant`` in the format at every x within ``window`` ULPs of the number nearest
    ``x0`` (exact format arithmetic, correctly rounded log/log1p) and collect those without a
    correct bit.

    Notes
    -----
    The region lies within 10 ULPs of the number nearest ``x0`` for both naive variants in every
    format (proofs/thresholds.md, Theorem T6), so the default window of 64 finds all of it.
    """
    f = format_of(dtype)
    ops = ExactOps(f)
    c = _pos(_x0_nearest(f), f)
    xs = [_val(c + k, f) for k in range(-window, window + 1)]
    if variant == "production":
        ys = [float(v) for v in softlog_variant("production", VectorOps(f), np.array(xs))]
    else:
        ys = [softlog_variant(variant, ops, x) for x in xs]
    bad = tuple(k for k, x, y in zip(range(-window, window + 1), xs, ys) if softlog_no_correct_bits(y, x, f))
    return SoftlogRegion(variant, f.name, bad, window)


def softlog_widths(dtype, window: int = SOFTLOG_WINDOW) -> dict[str, int]:
    """``{"softlog_<variant>_width": width}`` for the three variants (see :class:`SoftlogRegion`)."""
    out = {}
    for v in SOFTLOG_VARIANTS:
        try:
            out[f"softlog_{v}_width"] = softlog_region(v, dtype, window).width
        except ImportError:  # the production module is not there (only while the library is assembled)
            out[f"softlog_{v}_width"] = None
    return out


# ---------------------------------------------------------------------------------------------
# The table behind ``softlog-numerics regions``


def regions_table(*, verify: bool = False, softlog: bool = True) -> dict:
    """All thresholds per format and the SLD infima, as plain Python data.

    Floats are the exact values (every number of the four formats is a float64; ``repr`` of it
    round-trips). With ``verify=True`` the bisection is run too and a mismatch raises.
    """
    from .sld_bounds import sld_infimum_table

    out: dict = {}
    for name in FORMATS:
        row = formula_thresholds(name)
        if verify:
            b = bisection_thresholds(name)
            if b != row:
                raise AssertionError(f"{name}: formula {row} != bisection {b}")
        if softlog:
            row.update(softlog_widths(name))
        out[name] = row
    out["sld_infimum"] = {k: float(v.value_mid) for k, v in sld_infimum_table().items()}
    return out
