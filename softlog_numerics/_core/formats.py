"""The four floating formats the library serves, and the checks every public function applies.

A :class:`Format` records what the numerics depend on: the precision ``p`` (significand bits,
implicit bit included) and the exponent range ``[emin, emax]`` of normal numbers. Everything else
(epsilon, unit roundoff, smallest subnormal, largest finite) is derived from those three numbers, so
a threshold written in terms of them holds for every format at once.

``round_from_float64`` rounds float64 values to a narrower format *once* (ties to even, subnormals,
overflow to inf). NumPy's float64 -> float16 and float64 -> float32 casts already do this;
ml_dtypes' float64 -> bfloat16 cast does not (it goes through float32 and rounds twice:
1 + 2**-8 + 2**-40 becomes 1.0 instead of 1.0078125), so bfloat16 goes through float32 with
round-to-odd, which makes the second rounding exact (proofs/oracle.md, Theorem O3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeAlias

import ml_dtypes
import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = [
    "FORMATS",
    "Format",
    "as_float_array",
    "format_of",
    "result_format",
    "round_from_float64",
    "round_rational",
]

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


@dataclass(frozen=True)
class Format:
    """A binary floating-point format: precision and exponent range of its normal numbers."""

    name: str
    dtype: np.dtype
    precision: int
    emin: int
    emax: int
    uint: np.dtype

    @property
    def bits(self) -> int:
        return 8 * self.dtype.itemsize

    @property
    def eps(self) -> float:
        """Distance from 1 to the next larger number, ``2**(1-p)``."""
        return 2.0 ** (1 - self.precision)

    @property
    def unit_roundoff(self) -> float:
        """``u = 2**-p``: the relative error bound of one rounding to nearest."""
        return 2.0 ** (-self.precision)

    @property
    def tiny(self) -> float:
        """Smallest positive normal number, ``2**emin``."""
        return 2.0 ** self.emin

    @property
    def min_subnormal(self) -> float:
        """Smallest positive subnormal number, ``2**(emin - p + 1)``."""
        return 2.0 ** (self.emin - self.precision + 1)

    @property
    def max(self) -> float:
        """Largest finite number, ``(2 - 2**(1-p)) * 2**emax``."""
        return (2.0 - 2.0 ** (1 - self.precision)) * 2.0**self.emax

    def __repr__(self) -> str:
        return f"Format({self.name!r}, p={self.precision}, emin={self.emin}, emax={self.emax})"


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("float16", np.dtype(np.float16), 11, -14, 15, np.dtype(np.uint16)),
        Format("bfloat16", BFLOAT16, 8, -126, 127, np.dtype(np.uint16)),
        Format("float32", np.dtype(np.float32), 24, -126, 127, np.dtype(np.uint32)),
        Format("float64", np.dtype(np.float64), 53, -1022, 1023, np.dtype(np.uint64)),
    )
}

_SUPPORTED = ", ".join(FORMATS)


FormatLike: TypeAlias = Format | DTypeLike
"""What names a format: a :class:`Format`, a dtype or dtype name (``"bfloat16"`` too), or an
array or scalar (anything with a ``dtype``)."""


def format_of(dtype: FormatLike) -> Format:
    """The :class:`Format` of a dtype, dtype name, array or scalar; TypeError if unsupported."""
    if isinstance(dtype, Format):
        return dtype
    if isinstance(dtype, str):
        if dtype in FORMATS:
            return FORMATS[dtype]
        raise TypeError(f"unsupported floating format {dtype!r}; supported: {_SUPPORTED}")
    if hasattr(dtype, "dtype") and not isinstance(dtype, type):
        dtype = getattr(dtype, "dtype")
    dt = np.dtype(dtype)
    for f in FORMATS.values():
        if f.dtype == dt:
            return f
    raise TypeError(f"unsupported dtype {dt.name}; supported floating dtypes: {_SUPPORTED}")


def as_float_array(x: ArrayLike, name: str = "x") -> np.ndarray:
    """``x`` as a NumPy array of one of the four formats.

    Integer and boolean input becomes float64, as in NumPy's own ufuncs. Complex, object, string,
    bytes, datetime, timedelta and structured arrays, and floating types other than the four
    formats (e.g. ``longdouble``), raise TypeError naming the dtype. A NumPy masked array with
    masked entries raises TypeError too: a mask is not a value, and using the data under it would
    be a silent wrong answer (fill it first: ``-inf`` for logits, ``0`` for probabilities).
    """
    if isinstance(x, np.ma.MaskedArray) and np.ma.getmaskarray(x).any():
        raise TypeError(
            f"{name} is a masked array with masked entries; masks are not honoured: fill them first, "
            f"e.g. {name}.filled(-np.inf) for logits (masked logits) or {name}.filled(0) for "
            "probabilities, or pass .data to use the values under the mask"
        )
    a = np.asarray(x)
    if not a.dtype.isnative:  # big-endian data on a little-endian machine (or vice versa)
        a = a.astype(a.dtype.newbyteorder("="))
    dt = a.dtype
    if dt == BFLOAT16 or dt in (np.float16, np.float32, np.float64):
        return a
    if dt.kind in "biu":
        return a.astype(np.float64)
    if dt.kind == "c":
        raise TypeError(
            f"{name} has complex dtype {dt.name}; softlog_numerics is defined for real input only "
            f"(pass x.real, or one of {_SUPPORTED})"
        )
    raise TypeError(f"{name} has unsupported dtype {dt.name}; expected one of {_SUPPORTED} (or int/bool)")


_ORDER = {"float16": 0, "bfloat16": 0, "float32": 1, "float64": 2}


def result_format(*arrays: np.ndarray) -> Format:
    """Common format of several arrays: NumPy's promotion, with bfloat16+float16 -> float32.

    ml_dtypes defines no common type for bfloat16 and float16; the narrowest format holding both
    exactly is float32.
    """
    fmts = {format_of(a.dtype).name for a in arrays}
    if len(fmts) == 1:
        return FORMATS[fmts.pop()]
    widest = max(fmts, key=_ORDER.__getitem__)
    if _ORDER[widest] == 0:  # {float16, bfloat16}
        return FORMATS["float32"]
    return FORMATS[widest]


def round_from_float64(x: ArrayLike, fmt: FormatLike) -> np.ndarray:
    """Round float64 values to ``fmt`` with a single rounding (ties to even, subnormals, overflow).

    float16 and float32 use NumPy's casts, which round directly from the float64 value (float16
    values below the smallest normal are rounded on the subnormal grid in float64 first, which is
    the same rounding and 6x faster; proofs/oracle.md, Theorem O3). bfloat16
    first rounds to float32 *to odd* (truncate, then set the last bit if anything was discarded),
    then to bfloat16 with ties to even; with 16 spare bits the second rounding is the one a direct
    rounding would make (proofs/oracle.md, Theorem O3).
    """
    fmt = format_of(fmt)
    x = np.asarray(x, dtype=np.float64)
    if fmt.name == "float16" and x.size:
        return _round_to_float16(x)
    if fmt.name in ("float64", "float32", "float16"):
        with np.errstate(over="ignore", invalid="ignore"):  # invalid: a signalling NaN
            return x.astype(fmt.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        f = np.asarray(x.astype(np.float32))
        inexact = f != x  # f is compared as float64 (exactly); False for NaN
        bits = f.view(np.uint32)
        # too far: |f| > |x|, i.e. f beyond x on the side of x's sign (for inexact f only; x == 0
        # is exact): (f > x) == (x > 0); boolean temporaries only (the float32 and float64
        # magnitudes cost 12 bytes per element), and arithmetic on the masks, not boolean
        # indexing, which costs ~9 ns per element when the masks are dense
        too_far = np.asarray(f > x)
        np.equal(too_far, x > 0, out=too_far)
        too_far &= inexact
        np.subtract(bits, too_far, out=bits, casting="unsafe")
        np.bitwise_or(bits, inexact, out=bits, casting="unsafe")
        return bits.view(np.float32).astype(BFLOAT16)


_F16_GRID = 1.5 * 2.0**28  # float64 spacing 2**-24 (the float16 subnormal quantum) in [2**28, 2**29)


def _round_to_float16(x: np.ndarray) -> np.ndarray:
    """NumPy's float64 -> float16 cast, with values below the smallest normal rounded on the
    subnormal grid by float64 arithmetic (NumPy takes ~170 ns per such value; proofs/oracle.md,
    Theorem O3, float16 paragraph)."""
    with np.errstate(over="ignore", invalid="ignore"):
        a = np.abs(x)
        small = a < 2.0**-14
        if not small.any():
            return x.astype(np.float16)
        k = a + _F16_GRID
        k -= _F16_GRID
        k *= 2.0**24
        sub = k.astype(np.uint16)
        sub |= np.signbit(x).astype(np.uint16) << np.uint16(15)
        big = np.where(small, 0.0, x).astype(np.float16).view(np.uint16)
        return np.where(small, sub, big).view(np.float16)


def round_rational(num: int, den: int, fmt: FormatLike) -> float:
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
        return sign * math.inf
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
        return sign * math.inf
    return sign * math.ldexp(float(n), q)  # n <= 2**p and the result is a float64: exact
