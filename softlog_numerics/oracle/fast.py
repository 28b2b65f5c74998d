"""A certified fast path for the correctly rounded softlog (Ziv's strategy), vectorised with NumPy.

For an input ``x`` of float16, bfloat16 or float32 the value ``L(x) = ln((e - 1/e) x + 1/e)`` is
evaluated in float64 from a double-double argument, with a proven relative error below ``2**-46``
(proofs/fast_oracle.md, Theorem F1). The rounding to the input's format is then *decided* when no
rounding boundary (midpoint of two consecutive numbers of the format) lies within that error of the
float64 value; the test is a look at the low bits of the float64 value (Theorem F2). Decided values
are the correctly rounded ones; the few undecided inputs (about one in two million) are handed, one
by one, to the interval-arithmetic mpmath oracle (``oracle.softlog(x, method="mpmath")``). The
result is bit-identical to the mpmath oracle for every input, special values included.

The one assumption about the platform (Hypothesis W, proofs/fast_oracle.md): NumPy's float64
``log1p`` and ``log`` have relative error below ``2**-47``, 64 times the usual 1-ULP claim; it is
measured on every test run by ``tests/test_fast_oracle.py::test_libm_hypothesis_W``.

For float64 input a float64 value cannot decide the rounding; the double-double ``(h, l)`` of
:func:`softlog_numerics._core.softlog_dd.softlog_dd` (relative error below ``2**-64.8``,
proofs/divergence.md, Theorem D3; no libm) can: ``RN(L) = h`` when neither float64 midpoint next
to ``h`` lies within ``2**-64.8 |h|`` of ``h + l`` (proofs/fast_oracle.md, Theorem F5). About four
inputs in ten thousand are left undecided and go to the mpmath oracle.
"""

from __future__ import annotations

import numpy as np
from mpmath import libmp

from softlog_numerics._core import constants as _c
from softlog_numerics._core.formats import (
    FORMATS,
    as_float_array,
    format_of,
    round_from_float64,
)
from softlog_numerics._core.softlog_dd import softlog_dd
from softlog_numerics.oracle.enclosures import enclose_softlog, softlog_mpmath

__all__ = [
    "DD_GUARD",
    "LIBM_RELATIVE_ERROR",
    "RELATIVE_ERROR",
    "DOMAIN_START",
    "FastResult",
    "midpoint_distance",
    "softlog",
    "softlog_certified",
    "softlog_certified64",
    "softlog_estimate",
    "softlog_estimate_wide",
]

LIBM_RELATIVE_ERROR = 2.0**-47
"""Hypothesis W: relative error bound assumed for NumPy's float64 ``log1p`` and ``log``."""

RELATIVE_ERROR = 2.0**-46
"""Proven bound on ``|v - L(x)| / |v|`` for the float64 value ``v`` of :func:`softlog_estimate`
(Theorem F1), for every float16, bfloat16 and float32 input in the domain other than 0 and 1."""

# ---------------------------------------------------------------------------------------------
# Constants (float64 pairs of _constants.py; errors in proofs/fast_oracle.md, Theorem F1).

_SPLITTER = 134217729.0  # 2**27 + 1
_A_HI, _A_LO = _c.A
_A_H26 = float(np.float64(_A_HI) * _SPLITTER - (np.float64(_A_HI) * _SPLITTER - _A_HI))
_A_L26 = _A_HI - _A_H26  # A_HI = _A_H26 + _A_L26 exactly, both of at most 26 bits
_X0_HI = _c.X0[0]
_D0_HI, _D0_LO = _c.D0  # a (x0 - X0_HI)
DOMAIN_START = _c.XB[0]
"""The smallest float64 in the softlog's domain: ``x >= DOMAIN_START``  <=>  ``x > -1/(e**2 - 1)``."""
_DB_HI, _DB_LO = _c.DB  # a (xb - XB_HI) < 0
_XN = -0.0989  # below: the near-branch form log(a (x - xb))

_BLOCK = 1 << 15

# Decision on the float64 bit pattern (Theorem F2): a value of a p-bit format has its midpoints
# where the low (53 - p) bits of the float64 significand are 100...0. With the error below
# 2**-46 |v| < 128 ulp64(v), the rounding is decided when those bits are more than 128 away.
_GUARD = 128
_LOW_BITS = {name: 53 - f.precision for name, f in FORMATS.items() if f.precision < 53}


def _kernel_block(x: np.ndarray, out: np.ndarray, buf: np.ndarray) -> None:
    """``out = v(x)`` for a float64 block ``x`` whose values have at most 24 significant bits.

    Regime C (every input; overwritten below ``_XN``): ``t = a (x - x0)`` as ``th + tl`` with
    relative error ``<= 2**-80``, ``v = fl(log1p(th) + fl(tl / fl(1 + th)))``.
    Regime N (``DOMAIN_START <= x < _XN``): ``w = a (x - xb) = wh + wl``, ``v = fl(log(wh) + fl(wl / wh))``.
    Values outside the domain, infinities and NaN give meaningless results (settled elsewhere).
    """
    s, e, p, pe, q = buf
    # two_sum(x, -X0_HI): s + e = x - X0_HI exactly
    np.subtract(x, _X0_HI, out=s)
    np.subtract(s, x, out=q)  # bb
    np.subtract(s, q, out=e)
    np.subtract(x, e, out=e)  # x - (s - bb)
    np.subtract(-_X0_HI, q, out=q)  # -X0_HI - bb
    e += q
    # two_prod(s, A_HI) with A_HI = _A_H26 + _A_L26: p + pe = s A_HI exactly
    np.multiply(s, _SPLITTER, out=q)
    np.subtract(q, s, out=pe)
    np.subtract(q, pe, out=q)  # s_hi
    np.multiply(s, _A_HI, out=p)
    np.multiply(q, _A_H26, out=pe)
    pe -= p
    np.subtract(s, q, out=out)  # s_lo (out is scratch here)
    q *= _A_L26
    pe += q
    np.multiply(out, _A_H26, out=q)
    pe += q
    out *= _A_L26
    pe += out
    # q = (((pe + s A_LO) + e A_HI) - D0_HI) - D0_LO
    np.multiply(s, _A_LO, out=q)
    q += pe
    e *= _A_HI
    q += e
    q -= _D0_HI
    q -= _D0_LO
    # fast_two_sum(p, q): th = s, tl = e
    np.add(p, q, out=s)
    np.subtract(s, p, out=e)
    np.subtract(q, e, out=e)
    np.add(s, 1.0, out=q)
    e /= q
    np.log1p(s, out=out)
    out += e
    low = np.flatnonzero(x < _XN)
    if low.size:
        out[low] = _near_branch(x.take(low))


def _near_branch(x: np.ndarray) -> np.ndarray:
    """Regime N: ``log(wh) + wl / wh`` with ``w = a (x - xb) = a s - DB``, ``s = x - XB_HI`` exact."""
    s = x - DOMAIN_START
    c = s * _SPLITTER
    sh = c - (c - s)
    sl = s - sh
    p = s * _A_HI
    pe = (((sh * _A_H26 - p) + sh * _A_L26) + sl * _A_H26) + sl * _A_L26
    q = ((pe + s * _A_LO) - _DB_HI) - _DB_LO
    wh = p + q
    wl = q - (wh - p)
    return np.log(wh) + wl / wh


def softlog_estimate(x) -> np.ndarray:
    """The float64 value ``v`` of Theorem F1 for float16/bfloat16/float32 input (same shape).

    ``|v - L(x)| < 2**-46 |v|`` for every ``x`` in the domain except 0 and 1 (where ``v`` is within
    ``2**-46`` of ``-1`` and ``1``); other inputs give unspecified values. Used by the tests and by
    the exhaustive sweeps to measure margins; :func:`softlog` is the correctly rounded function.
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    if fmt.precision > 24:
        raise TypeError("softlog_estimate takes float16, bfloat16 or float32 input")
    return _estimate_flat(_widen(x)).reshape(x.shape)


def _estimate_flat(flat: np.ndarray) -> np.ndarray:
    """The values ``v`` of Theorem F1 for a flat float64 array, block by block."""
    out = np.empty(flat.size)
    buf = np.empty((5, min(flat.size, _BLOCK)))
    with np.errstate(all="ignore"):
        for i in range(0, flat.size, _BLOCK):
            j = min(i + _BLOCK, flat.size)
            _kernel_block(flat[i:j], out[i:j], buf[:, : j - i])
    return out


def softlog_estimate_wide(x: np.ndarray) -> np.ndarray:
    """:func:`softlog_estimate` of a float64 array whose values are numbers of a format of at most
    24 bits (the caller's promise; not checked), with the exact ``-1`` and ``1`` at 0 and 1.

    ``|v - L(x)| <= 2**-46 |v|`` for every such ``x`` in the domain (Theorem F1; at 0 and 1, ``v``
    is exact); other inputs give unspecified values.
    """
    flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    out = _estimate_flat(flat)
    out[flat == 0.0] = -1.0
    out[flat == 1.0] = 1.0
    return out.reshape(np.shape(x))


def _widen(x: np.ndarray) -> np.ndarray:
    """``x`` as a flat float64 array (exact; quiet for signalling NaNs of bfloat16/float32)."""
    with np.errstate(invalid="ignore"):
        return np.ascontiguousarray(x, dtype=np.float64).reshape(-1)


class FastResult:
    """What :func:`softlog_certified` returns.

    Attributes
    ----------
    values : numpy.ndarray
        The correctly rounded results (flat, in the input's dtype).
    fallback : numpy.ndarray of intp
        Flat indices of the inputs the fast path left undecided (computed by the mpmath oracle).
    estimate : numpy.ndarray of float64
        The float64 values ``v`` (Theorem F1) for every input (meaningless for special values).
    """

    __slots__ = ("estimate", "fallback", "values")

    def __init__(self, values, fallback, estimate):
        self.values = values
        self.fallback = fallback
        self.estimate = estimate


def softlog_certified(x, *, fallback=True) -> FastResult:
    """Correctly rounded softlog of a flat float16/bfloat16/float32 array, with the fallback indices.

    With ``fallback=False`` the undecided entries are left as the rounding of the float64 estimate
    (not certified) and only their indices are returned: for sweeps that settle them in bulk.
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    if fmt.precision > 24:
        raise TypeError("softlog_certified takes float16, bfloat16 or float32 input")
    flat = _widen(x)
    n = flat.size
    v = np.empty(n)
    undecided = np.empty(n, dtype=np.bool_)
    m = min(n, _BLOCK)
    buf = np.empty((5, m))
    ibuf = np.empty(m, dtype=np.int64)
    shift = _LOW_BITS[fmt.name]
    mask = np.int64((1 << shift) - 1)
    half = np.int64(1 << (shift - 1))
    with np.errstate(all="ignore"):
        for i in range(0, n, _BLOCK):
            j = min(i + _BLOCK, n)
            k = j - i
            vb = v[i:j]
            _kernel_block(flat[i:j], vb, buf[:, :k])
            lb = ibuf[:k]
            np.bitwise_and(vb.view(np.int64), mask, out=lb)
            lb -= half
            np.abs(lb, out=lb)
            np.less_equal(lb, _GUARD, out=undecided[i:j])
            # NaN and inf estimates (low bits of an inf are 0; of a NaN, anything) are undecided too
            undecided[i:j] |= ~np.isfinite(vb)
        # settled inputs (the oracle's table): NaN, -inf and x < xb -> NaN; +inf; 0 -> -1; 1 -> 1
        settled_nan = ~(flat >= DOMAIN_START)
        v[settled_nan] = np.nan
        pinf = flat == np.inf
        v[pinf] = np.inf
        v[flat == 0.0] = -1.0
        v[flat == 1.0] = 1.0
        undecided &= ~(settled_nan | pinf | (flat == 0.0) | (flat == 1.0))
    values = round_from_float64(v, fmt)
    idx = np.flatnonzero(undecided)
    if fallback and idx.size:
        values[idx] = softlog_mpmath(x.reshape(-1)[idx])
    return FastResult(values, idx, v)


# ---------------------------------------------------------------------------------------------
# float64 (Theorem F5): the double-double of Theorem D3 and a look at its low part.

DD_GUARD = 0.5859375 * 2.0**-64
"""Guard of Theorem F5, relative to ``|h|``: ``fl(|h| * 0.5859375) * 2**-64`` bounds
``|h + l - L(x)|`` from above for the double-double ``(h, l)`` of ``softlog_dd``
(``2**-64.8 = 0.5743... * 2**-64``, Theorem D3)."""
_GUARD64 = 0.5859375  # DD_GUARD * 2**64 (7 bits: the product with |h| is rounded once)

_BLOCK64 = 1 << 14  # the double-double kernel makes ~60 passes: keep its temporaries in cache


def _decide64(h: np.ndarray, l: np.ndarray) -> np.ndarray:
    """Theorem F5: True where ``RN64(L) = h`` is proven, for ``(h, l)`` of ``softlog_dd``.

    With ``g = ulp(h)``: the midpoint on the side of ``l`` is ``g/2`` from ``h``, or ``g/4`` when
    ``l`` points toward zero and ``|h|`` is a power of two; decided when the distance from ``h + l``
    to it, ``g/2 - |l|`` (or ``g/4 - |l|``), exceeds the guard (both differences are exact or far
    above it).
    """
    m, e = np.frexp(h)
    inward = (np.abs(m) == 0.5) & ((h > 0) != (l > 0)) & (l != 0)
    room = np.ldexp(np.where(inward, 0.25, 0.5), e - 53)  # g/2 or g/4 (g = 2**(e - 53))
    room -= np.abs(l)
    guard = np.abs(h) * _GUARD64
    guard *= 2.0**-64
    return room > guard


def softlog_certified64(x, *, fallback=True) -> FastResult:
    """Correctly rounded softlog of a float64 array (flat result), with the fallback indices.

    ``values`` are the double-double highs ``h`` where Theorem F5 decides them, the settled special
    values, and the mpmath oracle's results at ``fallback`` (with ``fallback=False`` these keep
    ``h``, not certified). ``estimate`` holds ``h`` (the same array as ``values`` when nothing
    was computed by the fallback).
    """
    x = as_float_array(x)
    if x.dtype != np.float64:
        raise TypeError("softlog_certified64 takes float64 input")
    flat = np.ascontiguousarray(x).reshape(-1)
    n = flat.size
    v = np.empty(n)
    undecided = np.zeros(n, dtype=np.bool_)
    with np.errstate(all="ignore"):
        for i in range(0, n, _BLOCK64):  # block by block, so that the masks stay in cache
            j = min(i + _BLOCK64, n)
            xb, vb = flat[i:j], v[i:j]
            # settled inputs (the oracle's table): NaN, -inf and x < xb -> NaN; +inf; 0 -> -1; 1 -> 1
            live = xb >= DOMAIN_START
            live &= xb != np.inf
            live &= xb != 0.0
            live &= xb != 1.0
            if live.all():
                h, l = softlog_dd(xb)
                vb[:] = h
                np.logical_not(_decide64(h, l), out=undecided[i:j])
                continue
            vb.fill(np.nan)
            vb[xb == np.inf] = np.inf
            vb[xb == 0.0] = -1.0
            vb[xb == 1.0] = 1.0
            k = np.flatnonzero(live)
            if k.size:
                h, l = softlog_dd(xb[k])
                vb[k] = h
                undecided[i + k] = ~_decide64(h, l)
    idx = np.flatnonzero(undecided)
    values = v
    if fallback and idx.size:
        values = v.copy()
        values[idx] = softlog_mpmath(flat[idx])
    return FastResult(values, idx, v)


def softlog(x) -> np.ndarray:
    """Correctly rounded ``L(x) = ln((e - 1/e) x + 1/e)`` in the dtype of ``x``, fast.

    Parameters
    ----------
    x : array_like
        float16, bfloat16, float32 or float64 (int/bool become float64); any shape.

    Returns
    -------
    numpy.ndarray
        Bit-identical to ``oracle.softlog(x, method="mpmath")``: ``L(x)`` rounded once to the dtype
        of ``x``; ``L(±0) = -1``, ``L(1) = 1``, ``L(+inf) = +inf``, NaN for NaN and for every
        ``x < -1/(e**2 - 1)`` (``-inf`` included).

    Notes
    -----
    Domain: every value of the four formats; finite ``x > -1/(e**2 - 1)`` give finite non-zero
    ``L`` (``|L| <= 710.7``; ``x0 = 1/(e + 1)``, the zero of ``L``, is irrational), and the only
    exact cases are ``L(±0) = -1`` and ``L(1) = 1``.

    Algorithm: Ziv's strategy. float16, bfloat16 and float32: a float64 value ``v`` from a
    double-double argument with ``|v - L| < 2**-46 |v|`` (proofs/fast_oracle.md, Theorem F1); the
    rounding is accepted when no midpoint of the format lies within that error of ``v``
    (proofs/fast_oracle.md, Theorem F2), which leaves about one input in two million to the mpmath
    oracle. float64: the double-double ``(h, l)`` of ``_core.softlog_dd.softlog_dd`` with
    ``|h + l - L| <= 2**-64.8 |L|`` (proofs/divergence.md, Theorem D3; only ``+ - * /``, no libm),
    evaluated in blocks of 16384; ``h`` is accepted when the float64 midpoint on the side of ``l``
    (a quarter ULP away below a power of two) is farther than ``0.586 * 2**-64 |h|`` from ``h + l``
    (proofs/fast_oracle.md, Theorem F5), which leaves about four inputs in ten thousand to the
    mpmath oracle.

    Accuracy: 0 ULP (correct rounding, the ``ULP_BOUNDS`` of the oracle) for every input; for the
    narrow formats under Hypothesis W (float64 ``log1p``/``log`` within ``2**-47`` relative), for
    float64 under Hypothesis H of proofs/divergence.md only (IEEE float64 arithmetic). Throughput
    (``benchmarks/bench_oracle.py``, one core): about 15-90 million float32 values per second, and
    about 13-21 million float64 values per second (about 170-270 times the mpmath path).
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    if fmt.precision > 24:
        return softlog_certified64(x).values.reshape(x.shape)
    return softlog_certified(x).values.reshape(x.shape)


def midpoint_distance(x: float, dtype, prec: int = 200) -> float:
    """Signed distance from ``L(x)`` to the nearest rounding midpoint of ``dtype``, in ULPs of the
    result (``ulp = 2**(floor(log2|L|) - p + 1)``), from a ``prec``-bit mpmath enclosure.

    Positive when ``L(x)`` lies above the midpoint. Used to rank and record hard cases; its value is
    within ``2**(-prec + 40)`` of the exact distance for the inputs of the narrow formats.
    """
    fmt = format_of(dtype)
    lo, hi = enclose_softlog(float(x), prec)
    mid = libmp.mpf_shift(libmp.mpf_add(lo, hi, prec), -1)
    val = libmp.to_float(mid)  # only to locate the binade and the nearest midpoint
    m_exp = int(np.floor(np.log2(abs(val))))
    ulp_exp = m_exp - fmt.precision + 1
    # nearest midpoint: (k + 1/2) 2**ulp_exp
    scaled = libmp.mpf_shift(mid, -ulp_exp)  # L / ulp
    k = libmp.to_int(libmp.mpf_sub(scaled, libmp.from_float(0.5), prec), libmp.round_floor)
    best = None
    for kk in (k - 1, k, k + 1):
        d = libmp.mpf_sub(scaled, libmp.mpf_add(libmp.from_int(kk), libmp.from_float(0.5), prec), prec)
        f = libmp.to_float(d)
        if best is None or abs(f) < abs(best):
            best = f
    assert best is not None  # the loop ran three times
    return best
