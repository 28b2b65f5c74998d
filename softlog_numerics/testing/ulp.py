"""Distances between floating-point numbers counted in units in the last place (ULPs).

The metric is defined for every pair of inputs of one format, so that an accuracy test never has
to exclude a case:

* the numbers of a format are put in order and numbered by :func:`ordinal` (``-0`` and ``+0`` share
  the number 0; ``+inf`` comes right after the largest finite number);
* ``ulp_distance(a, b) = |ordinal(a) - ordinal(b)|``: 0 for equal numbers, 1 for neighbours, and the
  count of representable numbers crossed otherwise (a sign change counts every number in between);
* NaN against NaN is 0 (both say "undefined"); NaN against any number is ``inf``.

A correctly rounded result is at distance 0 from the oracle; a faithfully rounded one at most 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics._core.formats import FormatLike, as_float_array, format_of

__all__ = ["Comparison", "bits_of_error", "compare", "format_ulp", "from_ordinal", "ordinal", "ulp_distance"]


def ordinal(x: ArrayLike) -> np.ndarray:
    """Position of each value in the ordered set of its format, as int64 (NaN gives an arbitrary value).

    ``ordinal(+0) == ordinal(-0) == 0``; ``ordinal(nextafter(x, inf)) == ordinal(x) + 1`` for every
    finite ``x``, including across zero and into ``+inf``.
    """
    a = as_float_array(x)
    fmt = format_of(a.dtype)
    bits = np.ascontiguousarray(a).view(fmt.uint).astype(np.uint64).reshape(a.shape)
    sign_bit = np.uint64(1) << np.uint64(fmt.bits - 1)
    magnitude = (bits & ~sign_bit).astype(np.int64)
    return np.where(bits & sign_bit, -magnitude, magnitude)


def from_ordinal(o: ArrayLike, dtype: FormatLike) -> np.ndarray:
    """Inverse of :func:`ordinal`: the value of ``dtype`` at each position ``o`` (0 gives ``+0``).

    Positions beyond ``+inf``/``-inf`` are not values of the format: ValueError.
    """
    fmt = format_of(dtype)
    o = np.asarray(o, dtype=np.int64)
    inf_pos = ordinal(np.array(np.inf, dtype=np.float64).astype(fmt.dtype))
    if np.any(np.abs(o) > inf_pos):
        raise ValueError(f"ordinal out of range for {fmt.name}: |o| must be <= {int(inf_pos)}")
    sign_bit = np.uint64(1) << np.uint64(fmt.bits - 1)
    bits = np.where(o < 0, np.abs(o).astype(np.uint64) | sign_bit, o.astype(np.uint64))
    return bits.astype(fmt.uint).view(fmt.dtype)


def ulp_distance(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """ULP distance between two arrays of the same format, elementwise (float64 result).

    Parameters
    ----------
    a, b : array_like
        Arrays of one of float16, bfloat16, float32, float64 (both the same), broadcastable.

    Returns
    -------
    numpy.ndarray of float64
        ``|ordinal(a) - ordinal(b)|``; 0 where both are NaN; ``inf`` where exactly one is NaN.
        ``+0`` and ``-0`` are at distance 0. Distances above 2**53 are rounded to float64.

    Raises
    ------
    TypeError
        If the two arrays are of different formats (compare in one format: round the wider
        one with :func:`softlog_numerics.oracle.round_to` or ``astype`` first).

    Notes
    -----
    A metric on the non-NaN values with ``±0`` identified (proofs/oracle.md, Theorem O4), exact
    up to ``2**53``, which covers every pair of float16, bfloat16 and float32 values.
    """
    a = as_float_array(a, "a")
    b = as_float_array(b, "b")
    if a.dtype != b.dtype:
        raise TypeError(
            f"ulp_distance needs both arrays in one format, got {a.dtype.name} and {b.dtype.name}"
        )
    a, b = np.broadcast_arrays(a, b)
    oa, ob = ordinal(a), ordinal(b)
    # |oa - ob| can exceed int64 only for float64 values of opposite signs; split the subtraction.
    d = np.abs(oa.astype(np.float64) - ob.astype(np.float64))
    same_sign = (oa >= 0) == (ob >= 0)
    d = np.where(same_sign, np.abs(oa - np.where(same_sign, ob, 0)).astype(np.float64), d)
    # NaN from the bit patterns: casting a signalling NaN of bfloat16/float32 to float64 warns.
    inf_pos = int(ordinal(np.array(np.inf, dtype=np.float64).astype(a.dtype)))
    na, nb = np.abs(oa) > inf_pos, np.abs(ob) > inf_pos
    d = np.where(na | nb, np.inf, d)
    d = np.where(na & nb, 0.0, d)
    return d


def bits_of_error(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """``log2(1 + ulp_distance(a, b))``: 0 for a correctly rounded result, 1 for one ULP off."""
    return np.log2(1.0 + ulp_distance(a, b))


def format_ulp(v: float) -> str:
    """A ULP distance as tables print it: ``inf``, an integer below 10**6, else 3 significant digits."""
    if v == float("inf"):
        return "inf"
    return f"{v:.0f}" if v < 1e6 else f"{v:.2e}"


@dataclass(frozen=True)
class Comparison:
    """How results ``got`` compare, element by element, with the correctly rounded ``want``.

    Attributes
    ----------
    distance : numpy.ndarray
        :func:`ulp_distance` (NaN against NaN is 0, NaN against a number is ``inf``).
    nan, number_where_nan : numpy.ndarray of bool
        ``got`` is NaN where ``want`` is a number; the reverse.
    inf_where_finite, finite_where_inf : numpy.ndarray of bool
        ``got`` is infinite where ``want`` is finite; the reverse (NaN excluded from both).
    wrong_sign_zero : numpy.ndarray of bool
        both are zero, of opposite signs (distance 0).
    """

    distance: np.ndarray
    nan: np.ndarray
    number_where_nan: np.ndarray
    inf_where_finite: np.ndarray
    finite_where_inf: np.ndarray
    wrong_sign_zero: np.ndarray

    @property
    def nan_mismatch(self) -> np.ndarray:
        """NaN on exactly one side."""
        return self.nan | self.number_where_nan

    @property
    def incorrect(self) -> np.ndarray:
        """Not the correctly rounded result: a distance > 0, or the wrong sign of zero."""
        return (self.distance > 0) | self.wrong_sign_zero


def compare(got: ArrayLike, want: ArrayLike) -> Comparison:
    """The :class:`Comparison` of ``got`` with ``want`` (arrays of one format and shape): the one
    element-by-element measurement that the audit and the sweeps summarise."""
    got, want = np.asarray(got), np.asarray(want)
    with np.errstate(invalid="ignore"):
        g, w = got.astype(np.float64), want.astype(np.float64)
    gn, wn = np.isnan(g), np.isnan(w)
    gi, wi = np.isinf(g), np.isinf(w)
    return Comparison(
        distance=ulp_distance(got, want),
        nan=gn & ~wn,
        number_where_nan=~gn & wn,
        inf_where_finite=gi & ~wi & ~wn,
        finite_where_inf=~gi & ~gn & wi,
        wrong_sign_zero=(g == 0) & (w == 0) & (np.signbit(g) != np.signbit(w)),
    )
