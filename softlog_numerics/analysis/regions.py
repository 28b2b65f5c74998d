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
:func:`softlog_numerics.oracle.enclosures.decide_enclosure`. No mpmath global context is read or changed.

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

The format arithmetic (:class:`ExactOps`, :class:`VectorOps`) and the textbook variants the
thresholds are taken from live in :mod:`softlog_numerics.analysis.format_arithmetic`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from softlog_numerics._core.formats import FORMATS, Format, FormatLike, format_of
from softlog_numerics.analysis.format_arithmetic import (
    LOG_SOFTMAX_VARIANTS,
    SOFTLOG_VARIANTS,
    ExactOps,
    VectorOps,
    cr_constant,
    cr_exp,
    cr_log,
    cr_log1p,
    finite_mpf,
    log_softmax_variant,
    mpf_fraction,
    next_down,
    next_up,
    ordinal_of,
    round_directed,
    softlog_variant,
    value_at,
)
from softlog_numerics.analysis.sld_bounds import sld_infimum_table
from softlog_numerics.oracle.enclosures import (
    I_ONE,
    add,
    decide_enclosure,
    div,
    dyadic,
    enclose_exp,
    enclose_log,
    enclose_log1p,
    enclose_softlog,
    mul,
    sub,
)

__all__ = [
    "EXP_KEYS",
    "LOG_SOFTMAX_VARIANTS",
    "SOFTLOG_KEYS",
    "SOFTLOG_VARIANTS",
    "SOFTLOG_WINDOW",
    "ExactOps",
    "VectorOps",
    "bisection_thresholds",
    "cr_exp",
    "cr_log",
    "cr_log1p",
    "formula_thresholds",
    "log_softmax_variant",
    "next_up",
    "regions_table",
    "softlog_no_correct_bits",
    "softlog_variant",
    "softlog_widths",
    "x0_nearest",
]

EXP_KEYS = (
    "exp_overflow",
    "exp_underflow_zero",
    "exp_subnormal",
    "softmax_collapse_gap",
    "log_softmax_argmax_zero_gap",
)
"""The thresholds that have a closed formula, in the order they are reported."""

SOFTLOG_KEYS = tuple(f"softlog_{v}_width" for v in SOFTLOG_VARIANTS)
"""The keys of :func:`softlog_widths`, one per softlog variant, in the order they are reported."""

SOFTLOG_WINDOW = 64
"""Half-width, in ULPs of x, of the window around x0 scanned for the softlog regions (Theorem T6
shows that the region lies within 10 ULPs of the number nearest x0 for every format and variant)."""


# ---------------------------------------------------------------------------------------------
# Thresholds: formulas


def _q(value):
    """An exact dyadic rational (int or Fraction) as a point interval."""
    v = dyadic(Fraction(value))
    return v, v


def _ln2(prec):
    return enclose_log(_q(2), prec)


def formula_thresholds(dtype: FormatLike) -> dict[str, float]:
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
        return add(mul(_q(emax + 1), _ln2(prec), prec), enclose_log(_q(1 - Fraction(1, 2 ** (p + 1))), prec), prec)

    def zero_enc(prec):  # (emin - p) ln 2
        return mul(_q(emin - p), _ln2(prec), prec)

    def subnormal_enc(prec):  # emin ln 2 + ln(1 - 2**-p)
        return add(mul(_q(emin), _ln2(prec), prec), enclose_log(_q(1 - Fraction(1, 2**p)), prec), prec)

    def collapse_enc(prec):  # p ln 2 - ln(1 + 2**-p)
        return sub(mul(_q(p), _ln2(prec), prec), enclose_log1p(_q(Fraction(1, 2**p)), prec), prec)

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
    a, b = ordinal_of(lo, fmt), ordinal_of(hi, fmt)
    while b - a > 1:
        m = (a + b) // 2
        if pred(value_at(m, fmt)):
            b = m
        else:
            a = m
    return value_at(b, fmt)


def collapse_predicate(g: float, ops: ExactOps) -> bool:
    """``RN(1 + RN(exp(-g))) == 1`` in the format of ``ops``."""
    return ops.add(1.0, ops.exp(ops.neg(g))) == 1.0


def argmax_zero_predicate(g: float, ops: ExactOps) -> bool:
    """The shifted three-pass log_softmax of ``[g, 0]`` in the format returns exactly 0 for the
    first class (whose exact value ``-log1p(exp(-g))`` is negative for every finite ``g``)."""
    y0, _ = log_softmax_variant("shifted", ops, g, 0.0)
    return y0 == 0.0


def bisection_thresholds(dtype: FormatLike) -> dict[str, float]:
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
    return div(I_ONE, add(enclose_exp(I_ONE, prec), I_ONE, prec), prec)


def x0_nearest(fmt: Format) -> float:
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
        if not (finite_mpf(lo) and finite_mpf(hi)):
            return None  # not yet separated from the branch point: refine
        a, b = mpf_fraction(lo), mpf_fraction(hi)
        if a <= 0 <= b:
            return None  # the enclosure still straddles 0: refine
        if (a > 0) != (y > 0):
            return True  # wrong sign
        half = Fraction(y) / 2
        if y > 0:  # correct bits iff L > y/2
            return False if a > half else (True if b <= half else None)
        return False if b < half else (True if a >= half else None)

    return decide_enclosure(lambda prec: enclose_softlog(x, prec), decide, format_of(fmt))


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
    c = ordinal_of(x0_nearest(f), f)
    xs = [value_at(c + k, f) for k in range(-window, window + 1)]
    if variant == "production":
        ys = [float(v) for v in softlog_variant("production", VectorOps(f), np.array(xs))]
    else:
        ys = [softlog_variant(variant, ops, x) for x in xs]
    bad = tuple(k for k, x, y in zip(range(-window, window + 1), xs, ys) if softlog_no_correct_bits(y, x, f))
    return SoftlogRegion(variant, f.name, bad, window)


def softlog_widths(dtype: FormatLike, window: int = SOFTLOG_WINDOW) -> dict[str, int | None]:
    """``{"softlog_<variant>_width": width}`` for the three variants (see :class:`SoftlogRegion`)."""
    out: dict[str, int | None] = {}
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
    out: dict = {}
    for name in FORMATS:
        row: dict[str, Any] = formula_thresholds(name)
        if verify:
            b = bisection_thresholds(name)
            if b != row:
                raise AssertionError(f"{name}: formula {row} != bisection {b}")
        if softlog:
            row.update(softlog_widths(name))
        out[name] = row
    out["sld_infimum"] = {k: float(v.value_mid) for k, v in sld_infimum_table().items()}
    return out
