"""Deciding a rounding to a narrow format from float64 information (Ziv's test), for the
production functions that return correctly rounded float16, bfloat16 and float32 results.

* :func:`midpoint_radius_flags`: the cheap per-element test of a float64 tile, on its bits: is a
  rounding boundary of the narrow format within ``r`` float64 steps of the value?
* :func:`round_dd`: the correct rounding of an exact double-double ``h + l``;
* :func:`decided_dd`: Ziv's test for a double-double value with an absolute error bound;
* :func:`rounds_once`: the same for the narrow formats from a float64 (or double-double) value,
  cheaper (two roundings of float64 numbers, Theorem LSE2 (b));
* :func:`rounded_if_decided`: the same test for the exact rational ends of an enclosure (the
  decimal stages); :func:`rounded_fraction`, one rational rounded; :func:`boundary_gap`, a
  distance from a rational within which no other rounding boundary lies (their one-sided tests).

The proofs are in proofs/log_softmax.md, Theorem LSE10.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from softlog_numerics._core.eft import two_sum
from softlog_numerics._core.formats import Format, round_from_float64, round_rational

__all__ = [
    "boundary_gap", "decided_dd", "fraction_bits", "midpoint_radius_flags", "round_dd", "rounded_fraction",
    "rounded_if_decided", "rounds_once",
]


def fraction_bits(fmt: Format) -> int:
    """Bits of a float64 significand below the last bit of ``fmt``'s: 29 (float32), 42 (float16),
    45 (bfloat16)."""
    return 53 - fmt.precision


def midpoint_radius_flags(Y: np.ndarray, W: np.ndarray, shift: np.ndarray, radius: np.ndarray, q: int) -> np.ndarray:
    """Per row of the float64 tile ``Y``, the minimum over the row of
    ``(bits(Y) + shift) mod 2**q``, with ``shift = radius - 2**(q-1)`` per row (``W``: int64
    scratch of ``Y``'s shape). A row holds an element whose integer view is within ``radius`` of
    a rounding boundary of the narrow format (the integers ``= 2**(q-1) mod 2**q``, Theorem LSE10
    (a)) exactly where the minimum is ``<= 2 radius``. ``radius = -1`` flags nothing. ``shift``
    and ``radius`` are arrays of one entry per row, or one integer each for the whole tile."""
    scalar = np.ndim(shift) == 0
    np.add(Y.view(np.int64), shift if scalar else shift[:, None], out=W)
    np.bitwise_and(W, (1 << q) - 1, out=W)
    if W.size == 0 or int(W.min()) > 2 * int(np.max(radius)):  # the common case: nothing flagged
        return np.zeros(Y.shape[0], dtype=bool)
    return W.min(axis=1) <= 2 * radius


def _is_boundary(h: np.ndarray, fmt: Format) -> np.ndarray:
    """Where the float64 ``h`` is a rounding boundary of ``fmt``: the midpoint of two adjacent
    numbers of ``fmt`` (or the overflow threshold ``max + ulp(max)/2``)."""
    with np.errstate(over="ignore", invalid="ignore"):
        c = round_from_float64(h, fmt).astype(np.float64)
        other = 2.0 * h - c  # exact: c is within one spacing of fmt from h (Sterbenz)
        b = (c != h) & np.isfinite(c) & (round_from_float64(other, fmt).astype(np.float64) == other)
        top = fmt.max + 2.0 ** (fmt.emax - fmt.precision)
        return b | (np.abs(h) == top)


def round_dd(h: np.ndarray, l: np.ndarray, fmt: Format) -> np.ndarray:
    """``RN_fmt(h + l)`` (as float64) for an exact double-double, ``|l| <= ulp(h)/2`` (TwoSum's
    output): ``RN_fmt(h)``, except where ``h`` is itself a boundary and ``l != 0``, where the value
    lies strictly on the side of ``l``: ``RN_fmt`` of the next float64 that way (Theorem LSE10 (b))."""
    c = round_from_float64(h, fmt).astype(np.float64)
    side = (l != 0.0) & _is_boundary(h, fmt)
    if side.any():
        step = np.nextafter(h[side], np.where(l[side] > 0.0, np.inf, -np.inf))
        c[side] = round_from_float64(step, fmt).astype(np.float64)
    return c


def decided_dd(yh: np.ndarray, yl: np.ndarray, err: np.ndarray, fmt: Format):
    """``(c, ok)``: ``ok`` where every real ``y`` with ``|y - (yh + yl)| <= err`` has the same
    rounding ``c = RN_fmt(y)`` (the same signed value), for finite ``yh`` and ``|yl| <=
    ulp(yh)``; a result whose interval holds 0 is never decided (the callers' values are not 0). The ends ``yh + (yl -+ d)``, with ``d`` covering ``err`` and the rounding of ``yl -+
    d``, are split exactly by TwoSum and rounded by :func:`round_dd` (Theorem LSE10 (c))."""
    yh = np.asarray(yh, dtype=np.float64)
    yl = np.asarray(yl, dtype=np.float64)
    d = (err + np.abs(yl) * 2.0**-48) * (1.0 + 2.0**-48) + 2.0**-1070
    lo = round_dd(*two_sum(yh, yl - d), fmt)
    hi = round_dd(*two_sum(yh, yl + d), fmt)
    ok = (lo == hi) & (np.signbit(lo) == np.signbit(hi)) & np.isfinite(yh)
    return lo, ok


def rounded_fraction(q: Fraction, fmt: Format) -> float:
    """``q`` rounded to nearest (ties to even) in ``fmt``, once and exactly (``round_rational``,
    Theorem O1), returned as the float64 that holds it."""
    return round_rational(q.numerator, q.denominator, fmt)


def boundary_gap(c: Fraction, fmt: Format) -> Fraction:
    """A ``delta > 0`` such that no rounding boundary of ``fmt`` lies in ``(c, c + delta]`` or
    ``[c - delta, c)``: boundaries are multiples of ``2**(emin - p)``, so one other than ``c`` is at
    least ``1/(den(c) 2**(p - emin))`` away (proofs/grad.md, Theorems G7 (b) and G8 (c))."""
    return Fraction(1, 2 * c.denominator * 2 ** (fmt.precision - fmt.emin))


def rounded_if_decided(lo: Fraction, hi: Fraction, fmt: Format) -> float | None:
    """``RN_fmt`` of every real number in ``[lo, hi]`` (rationals), as the float64 that holds it,
    if both ends round to the same value with the same sign (then the whole interval does: the
    rounding is monotone); else None. Each end is rounded once and exactly (``round_rational``,
    proofs/oracle.md, Theorem O1)."""
    a = round_rational(lo.numerator, lo.denominator, fmt)
    b = round_rational(hi.numerator, hi.denominator, fmt)
    return a if a == b and math.copysign(1.0, a) == math.copysign(1.0, b) else None


def rounds_once(yh, yl, err, fmt: Format):
    """``(c, ok)``: ``c = RN_fmt(lo)`` and ``ok`` where ``RN_fmt(lo) == RN_fmt(hi)`` (the same signed
    value) for float64 bounds ``lo <= y <= hi`` of the exact ``y``, given ``|yh + yl - y| <= err``
    (Theorem LSE2 (b)). Where ``ok``, ``c`` is ``RN_fmt(y)`` (rounding is monotone). For the narrow
    formats only: the float64 grid is 29 or more bits finer than ``fmt``'s.

    ``lo = fl(yh - w)`` and ``hi = fl(yh + w)`` with ``w = fl((|yl| + err)(1 + 2**-40)) +
    2**-52 |yh| + 2**-1074``: the term ``2**-52 |yh|`` and the factor ``1 + 2**-40`` cover the
    roundings of ``w``, ``lo`` and ``hi`` (the proof treats ``w <= 2 |yh|`` and ``w > 2 |yh|``).
    """
    w = (np.abs(yl) + err) * (1.0 + 2.0**-40) + 2.0**-52 * np.abs(yh) + 2.0**-1074
    lo = round_from_float64(yh - w, fmt).astype(np.float64)
    hi = round_from_float64(yh + w, fmt).astype(np.float64)
    ok = (lo == hi) & (np.signbit(lo) == np.signbit(hi))
    return lo, ok
