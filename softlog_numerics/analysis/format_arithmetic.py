"""The arithmetic of a format, emulated exactly or vectorised, and the textbook algorithm variants
written once against it.

:class:`ExactOps` rounds every operation to the format exactly (scalar; used by the bisections and
the softlog scan). :class:`VectorOps` is its vectorised counterpart for the region maps: ``+ - * /``
are computed in float64 and rounded once with
:func:`~softlog_numerics._core.formats.round_from_float64`, which is exact for float16, bfloat16 and
float32 (float64 has ``53 >= 2p + 2`` bits: double rounding is innocuous, Figueroa 1995), and
native for float64; ``exp``/``log``/``log1p`` take NumPy's float64 libm value (within 1 float64
ULP, checked by ``tests/test_regions.py::test_libm_primitives_within_one_ulp``) and round it once,
so they can differ from the correctly rounded value only when the exact value lies within one
float64 ULP of a rounding boundary of the format; in float64 they are the libm's (<= 1 ULP).

Directed rounding (:func:`round_directed`, :func:`next_up`, :func:`next_down`) and the correctly
rounded scalar ``exp``/``log``/``log1p`` (:func:`cr_exp`, :func:`cr_log`, :func:`cr_log1p`) are built
from the oracle's enclosure primitives (:mod:`softlog_numerics.oracle.enclosures`) at an explicit
working precision, refined by its Ziv loop.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
from mpmath import libmp
from numpy.typing import ArrayLike

from softlog_numerics._core.formats import (
    Format,
    FormatLike,
    format_of,
    round_from_float64,
)
from softlog_numerics.functions import log_softmax, softlog
from softlog_numerics.oracle.enclosures import (
    I_ONE,
    decide_enclosure,
    enclose_exp,
    enclose_log,
    enclose_log1p,
    point,
    round_enclosure,
    round_rational,
    softlog_constants,
    sub,
)
from softlog_numerics.testing import textbook
from softlog_numerics.testing.ulp import from_ordinal, ordinal

__all__ = [
    "LOG_SOFTMAX_VARIANTS",
    "SOFTLOG_VARIANTS",
    "ExactOps",
    "VectorOps",
    "cr_constant",
    "cr_exp",
    "cr_log",
    "cr_log1p",
    "finite_mpf",
    "log_softmax_variant",
    "mpf_fraction",
    "next_down",
    "next_up",
    "ordinal_of",
    "pairwise_sum",
    "round_directed",
    "softlog_variant",
    "value_at",
]

SOFTLOG_VARIANTS = ("naive_log", "naive_log1p", "production")
"""Softlog algorithms whose region of total accuracy loss is measured."""

# ---------------------------------------------------------------------------------------------
# Exact values of the format, their neighbours and directed rounding


def mpf_fraction(t) -> Fraction:
    """A raw mpmath value (sign, man, exp, bc) as an exact Fraction (finite values only)."""
    sign, man, exp, _ = t
    v = Fraction(man << exp) if exp >= 0 else Fraction(man, 1 << -exp)
    return -v if sign else v


def _rn(v: Fraction, fmt: Format) -> float:
    """Round an exact rational to the format, once (as the float64 holding the result)."""
    return round_rational(v.numerator, v.denominator, fmt)


def ordinal_of(x: float, fmt: Format) -> int:
    return int(ordinal(round_from_float64(np.float64(x), fmt)))


def value_at(o: int | np.integer, fmt: Format) -> float:
    return float(from_ordinal(np.int64(o), fmt.dtype).astype(np.float64))


def next_up(x: float, fmt: FormatLike) -> float:
    """The next larger number of the format after ``x`` (a value of the format)."""
    fmt = format_of(fmt)
    return value_at(ordinal_of(x, fmt) + 1, fmt)


def next_down(x: float, fmt) -> float:
    """The next smaller number of the format before ``x`` (a value of the format)."""
    fmt = format_of(fmt)
    return value_at(ordinal_of(x, fmt) - 1, fmt)


def finite_mpf(t) -> bool:
    """Whether a raw mpmath value is finite (not an infinity or NaN: those have a zero mantissa
    and a nonzero exponent)."""
    return bool(t[1]) or t == libmp.fzero


def _decide_nearest(fmt: Format):
    """The oracle's decision: both ends of the enclosure round to nearest alike (sign of zero
    included), else None."""
    return lambda enc: round_enclosure(enc, fmt)


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
    :func:`softlog_numerics.oracle.enclosures.decide_enclosure` until both endpoints round alike."""
    fmt = format_of(fmt)

    def decide(enc):
        lo, hi = enc
        if not (finite_mpf(lo) and finite_mpf(hi)):
            return None
        a = _directed(mpf_fraction(lo), fmt, up)
        b = _directed(mpf_fraction(hi), fmt, up)
        return a if a == b else None

    return decide_enclosure(enclose, decide, fmt)


def cr_exp(x: float, fmt: FormatLike) -> float:
    """Correctly rounded ``exp(x)`` in the format (``x`` a value of the format), by Ziv's loop."""
    fmt = format_of(fmt)
    if math.isnan(x):
        return x
    if math.isinf(x):
        return math.inf if x > 0 else 0.0
    if x == 0.0:
        return 1.0
    return decide_enclosure(lambda prec: enclose_exp(point(x), prec), _decide_nearest(fmt), fmt)


def cr_log(x: float, fmt: FormatLike) -> float:
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
    return decide_enclosure(lambda prec: enclose_log(point(x), prec), _decide_nearest(fmt), fmt)


def cr_log1p(x: float, fmt: FormatLike) -> float:
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
        enclose = lambda prec: enclose_log1p(point(x), prec)  # noqa: E731
    else:
        one_plus_x = libmp.mpf_add(libmp.fone, libmp.from_float(x), 0)  # exact
        enclose = lambda prec: enclose_log((one_plus_x, one_plus_x), prec)  # noqa: E731
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

    @staticmethod
    def _map(fn, *args):
        """``fn`` on numbers: a Python float for Python floats, a NumPy float64 for NumPy scalars
        (so that a formula can index it, ``s[..., None]``), elementwise on arrays."""
        if all(type(a) is float for a in args):
            return fn(*args)
        if all(np.ndim(a) == 0 for a in args):
            return np.float64(fn(*(float(a) for a in args)))
        return np.vectorize(fn, otypes=[np.float64])(*args)

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
        assert v is not None  # "/" by zero returned above
        return _rn(v, self.fmt)

    def add(self, a, b):
        return self._map(lambda u, v: self._binary(u, v, "+", np.add), a, b)

    def sub(self, a, b):
        return self._map(lambda u, v: self._binary(u, v, "-", np.subtract), a, b)

    def mul(self, a, b):
        return self._map(lambda u, v: self._binary(u, v, "*", np.multiply), a, b)

    def div(self, a, b):
        return self._map(lambda u, v: self._binary(u, v, "/", np.divide), a, b)

    def neg(self, a):
        return -a

    def exp(self, a):
        return self._map(lambda u: cr_exp(u, self.fmt), a)

    def log(self, a):
        return self._map(lambda u: cr_log(u, self.fmt), a)

    def log1p(self, a):
        return self._map(lambda u: cr_log1p(u, self.fmt), a)

    def max(self, a):
        """Row maximum along the last axis (exact; NaN propagates)."""
        return np.max(np.asarray(a, dtype=np.float64), axis=-1, initial=-np.inf)

    def sum(self, a):
        """Pairwise sum along the last axis, each addition rounded (:func:`pairwise_sum`)."""
        return pairwise_sum(self.add, np.asarray(a, dtype=np.float64), np.float64)

    def const(self, name: str) -> float:
        """A constant of :data:`softlog_numerics.testing.textbook.CONSTANTS`, correctly rounded."""
        return _constant(name, self.fmt)

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

    def exp(self, a):
        return self._op(np.exp, a)

    def log(self, a):
        return self._op(np.log, a)

    def log1p(self, a):
        return self._op(np.log1p, a)

    def max(self, a):
        """Row maximum along the last axis (exact; NaN propagates)."""
        return np.max(np.asarray(a, dtype=np.float64), axis=-1, initial=-np.inf)

    def sum(self, a):
        """Pairwise sum along the last axis, each addition rounded (:func:`pairwise_sum`)."""
        return pairwise_sum(self.add, np.asarray(a, dtype=np.float64), np.float64)

    def const(self, name: str) -> float:
        """A constant of :data:`softlog_numerics.testing.textbook.CONSTANTS`, correctly rounded."""
        return _constant(name, self.fmt)

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
    return softlog_constants(prec)[0]


def _B(prec):
    """``1/e``."""
    return softlog_constants(prec)[1]


def _C(prec):
    """``e**2 - 1``."""
    return sub(enclose_exp(point(2.0), prec), I_ONE, prec)


_ENCLOSED = {"a": _A, "b": _B, "c": _C}
_DYADIC = {"one": 1.0, "half": 0.5, "quarter": 0.25}


def _constant(name: str, fmt: Format) -> float:
    if name in _DYADIC:
        return _DYADIC[name]
    return cr_constant(_ENCLOSED[name], fmt)


def pairwise_sum(add, a: np.ndarray, dtype) -> np.ndarray:
    """The balanced-tree sum along the last axis with the rounded addition ``add`` (empty -> +0):
    pairs ``(0, 1), (2, 3), ...`` first, an odd last entry carried to the next level."""
    if a.shape[-1] == 0:
        return np.zeros(a.shape[:-1], dtype=dtype)
    while a.shape[-1] > 1:
        n = a.shape[-1]
        h = n // 2
        t = np.asarray(add(a[..., 0:2 * h:2], a[..., 1:2 * h:2]))
        a = np.concatenate([t, a[..., 2 * h:]], axis=-1) if n % 2 else t
    return a[..., 0]


# The variants return floats for ExactOps and arrays for VectorOps: typed Any, as the callers know which.
def softlog_variant(name: str, ops: ExactOps | VectorOps, x: float | ArrayLike) -> Any:
    """A textbook softlog formula evaluated in the format of ``ops``.

    ``naive_log``: :func:`softlog_numerics.testing.textbook.softlog`, ``log(RN(RN(a x) + b))`` with
    ``a = RN(e - 1/e)``, ``b = RN(1/e)``; ``naive_log1p``:
    :func:`~softlog_numerics.testing.textbook.softlog_log1p`, ``RN(-1 + log1p(RN(c x)))`` with
    ``c = RN(e**2 - 1)``. ``production``: the library's :func:`softlog_numerics.softlog`.
    """
    if name == "naive_log":
        return textbook.softlog(ops, x)
    if name == "naive_log1p":
        return textbook.softlog_log1p(ops, x)
    if name == "production":
        arr = np.asarray(x, dtype=np.float64)
        y = softlog(round_from_float64(arr, ops.fmt)).astype(np.float64)
        return float(y) if ops.exact else y
    raise ValueError(f"unknown softlog variant {name!r}; expected one of {SOFTLOG_VARIANTS}")


LOG_SOFTMAX_VARIANTS = ("naive", "shifted", "shifted_log1p", "production")
"""Two-class log_softmax algorithms drawn on the region maps."""


def log_softmax_variant(
    name: str, ops: ExactOps | VectorOps, x0: float | ArrayLike, x1: float | ArrayLike
) -> tuple[Any, Any]:
    """Two-class log_softmax ``[x0, x1]`` by one algorithm, in the format of ``ops``.

    ``naive``: :func:`softlog_numerics.testing.textbook.log_softmax`, ``x_i - log(exp(x0) + exp(x1))``.
    ``shifted`` (three passes, as scipy, PyTorch and JAX):
    :func:`~softlog_numerics.testing.textbook.log_softmax_shifted`, ``m = max``, ``d_i = x_i - m``,
    ``d_i - log(exp(d0) + exp(d1))``. ``shifted_log1p``:
    :func:`~softlog_numerics.testing.textbook.log_softmax_shifted_log1p`, ``d_i - log1p(exp(d_j))``
    with ``j`` the smaller entry. ``production``: the library's :func:`softlog_numerics.log_softmax`.
    Returns ``(y0, y1)``.
    """
    if name in _LOG_SOFTMAX_FORMULAS:
        rows = np.stack([np.asarray(x0, dtype=np.float64), np.asarray(x1, dtype=np.float64)], axis=-1)
        y = _LOG_SOFTMAX_FORMULAS[name](ops, rows)
    elif name == "production":
        a = np.stack([np.asarray(x0, dtype=np.float64), np.asarray(x1, dtype=np.float64)], axis=-1)
        y = log_softmax(round_from_float64(a, ops.fmt), axis=-1).astype(np.float64)
    else:
        raise ValueError(f"unknown log_softmax variant {name!r}; expected one of {LOG_SOFTMAX_VARIANTS}")
    if ops.exact:
        return float(y[0]), float(y[1])
    return y[..., 0], y[..., 1]


_LOG_SOFTMAX_FORMULAS = {
    "naive": textbook.log_softmax,
    "shifted": textbook.log_softmax_shifted,
    "shifted_log1p": textbook.log_softmax_shifted_log1p,
}
