"""The softlog ``L(x) = ln((e - 1/e) x + 1/e)`` and its inverse, vectorised over NumPy arrays.

``L`` maps ``[0, 1]`` onto ``[-1, 1]``, is defined for ``x > -1/(e**2 - 1)`` and vanishes at
``x0 = 1/(e + 1)``. The naive ``log(a x + b)`` loses every digit near ``x0``; here ``L`` is written
around centres ``x_C`` with an exactly representable value ``C = L(x_C)``:

    ``L(x) = C + log1p(K_C (x - x_C))``,  ``K_C = (e - 1/e) e**-C``,

with ``K_C (x - x_C)`` computed as a double-double (error-free transformations, ``_core/eft.py``) so that
the only large errors are the one call to the platform ``log1p``/``log`` and the final rounding
(proofs/softlog.md, Theorems S1-S4).
"""

from __future__ import annotations

import decimal
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics._core import constants as _c
from softlog_numerics._core.eft import mul_split_constant, split_constant
from softlog_numerics._core.formats import BFLOAT16 as _BF16
from softlog_numerics._core.formats import as_float_array, format_of, round_from_float64
from softlog_numerics.functions._inverse_exact import rounded_inverse

__all__ = ["softlog", "softlog_inverse"]

# ---------------------------------------------------------------------------------------------
# Constants derived (exactly, or with the error stated in proofs/softlog.md, Lemma S2.1) from the
# float64 pairs of _constants.py.

_SPLITTER = 134217729.0  # 2**27 + 1
_AH, _AM = split_constant(*_c.A)  # A = e - 1/e = _AH (26 bits) + _AM
_A_HI = _c.A[0]
_X0_HI = _c.X0[0]
_D0_HI, _D0_LO = _c.D0  # A (x0 - X0_HI)
_XB_HI = _c.XB[0]  # the smallest float64 in the domain: x >= _XB_HI  <=>  x > -1/(e**2 - 1)
_DB_HI, _DB_LO = _c.DB  # A (xb - XB_HI) < 0
_K0H, _K0M = split_constant(*_c.K0)  # e**2 - 1
_KHH, _KHM = split_constant(*_c.K_HALF)  # (e - 1/e) e**(1/2)
_XH_HI, _XH_LO = _c.X_HALF  # L(X_HALF) = -1/2
_LOG_A_HI = _c.LOG_A[0]

# Regime boundaries (float64; x in [lower, upper) of each regime). Their values are the ones
# analysed in proofs/softlog.md, Theorem S2; any change must be re-checked there.
_R2_LO = -0.0989380198014472  # ~ L^-1(-2)
_R3_LO = 0.1015363240915518  # ~ L^-1(-1/2)
_R4_LO = 0.1748302095515532  # ~ L^-1(-1/4)
_R5_LO = 2.0**92  # above: L = log(x) + log(A) (boundary chosen in Theorem S4)

_BLOCK = 1 << 15  # elements per block of the float64 kernel (keeps its buffers in cache)


# ---------------------------------------------------------------------------------------------
# float64 kernels. All run under np.errstate(all="ignore"): each is also evaluated on inputs of
# other regimes, whose (finite, infinite or NaN) results are overwritten.


def _centre_zero(x: np.ndarray, out: np.ndarray, buf: np.ndarray) -> None:
    """Regime R4 (``x >= _R4_LO``; ``C = 0``, ``x_C = x0``), into ``out``; ``buf`` is (5, n) scratch.

    ``s = x - X0_HI`` and ``e = (x - s) - X0_HI`` (exact for ``x >= X0_HI / 2``), then
    ``t = A (x - x0) = A s + A e - D0`` as the double-double ``th + tl``, and
    ``L = log1p(th) + tl / (1 + th)``.
    """
    s, e, p, u, v = buf
    np.subtract(x, _X0_HI, out=s)
    np.subtract(x, s, out=e)
    e -= _X0_HI  # exact rounding error of s (0 for X0_HI/2 <= x <= 2 X0_HI)
    # Dekker: p = fl(s AH), err = s AH - p = (s_hi AH - p) + s_lo AH, exactly.
    np.multiply(s, _AH, out=p)
    np.multiply(s, _SPLITTER, out=u)
    np.subtract(u, s, out=v)
    np.subtract(u, v, out=u)  # s_hi
    np.subtract(s, u, out=v)  # s_lo
    u *= _AH
    u -= p
    v *= _AH
    u += v  # err
    # low-order terms: err + s AM + e A  (with D0 subtracted exactly below)
    e *= _A_HI
    np.multiply(s, _AM, out=v)
    e += v
    # fast_two_sum(p, -D0_HI): |p| >= D0_HI whenever p != 0
    np.subtract(p, _D0_HI, out=s)  # tau
    np.subtract(s, p, out=v)
    np.subtract(-_D0_HI, v, out=v)  # tau_e
    v -= _D0_LO
    v += u
    v += e  # q
    # normalise: th = fl(tau + q), tl = q - (th - tau)
    np.add(s, v, out=p)  # th
    np.subtract(p, s, out=u)
    v -= u  # tl
    np.add(p, 1.0, out=u)
    v /= u  # tl / (1 + th)
    np.log1p(p, out=out)
    out += v


def _centre_minus_one(y: np.ndarray) -> np.ndarray:
    """Regime R2 (``_R2_LO <= x < _R3_LO``; ``C = -1``, ``x_C = 0``): ``-1 + log1p(fl(K0 x))``."""
    p, q = mul_split_constant(y, _K0H, _K0M)
    p += q  # u_hi = fl(K0 x) up to 2**-77
    r = np.log1p(p, out=p)
    r -= 1.0
    return r


def _centre_minus_half(y: np.ndarray) -> np.ndarray:
    """Regime R3 (``_R3_LO <= x < _R4_LO``; ``C = -1/2``): ``-1/2 + log1p(fl(K (x - x_C)))``."""
    s = y - _XH_HI  # exact (Sterbenz)
    p, q = mul_split_constant(s, _KHH, _KHM)
    q -= _c.K_HALF[0] * _XH_LO  # K (s - XH_LO): the product is rounded, error <= 2**-106
    p += q
    r = np.log1p(p, out=p)
    r -= 0.5
    return r


def _near_branch(y: np.ndarray) -> np.ndarray:
    """Regime R1 (``XB_HI <= x < _R2_LO``): ``w = A (x - xb) = A s - DB``, ``L = log(wh) + wl/wh``."""
    s = y - _XB_HI  # exact (Sterbenz), >= 0
    p, q = mul_split_constant(s, _AH, _AM)
    q -= _DB_LO
    # fast_two_sum(p, -DB_HI): p >= 0 > DB_HI and p >= -DB_HI whenever p != 0
    w = p - _DB_HI
    we = (-_DB_HI - (w - p)) + q
    wh = w + we
    wl = we - (wh - w)
    r = np.log(wh)
    r += wl / wh
    return r


def _huge(y: np.ndarray) -> np.ndarray:
    """Regime R5 (``x > 2**64``, and ``+inf``): ``log(x) + log(A)``."""
    r = np.log(y)
    r += _LOG_A_HI
    return r


def _softlog_block(x: np.ndarray, out: np.ndarray, buf: np.ndarray) -> None:
    _centre_zero(x, out, buf)
    mask = buf[0].view(np.bool_)[: x.size]
    np.greater_equal(x, _R4_LO, out=mask)
    np.logical_not(mask, out=mask)  # x < _R4_LO, or NaN
    low = np.flatnonzero(mask)
    if low.size:
        y = x.take(low)
        r = _centre_minus_one(y)  # NaN for NaN and for x < xb (K0 x < -1)
        sub = np.flatnonzero(y >= _R3_LO)
        if sub.size:
            r[sub] = _centre_minus_half(y.take(sub))
        sub = np.flatnonzero((y < _R2_LO) & (y >= _XB_HI))
        if sub.size:
            r[sub] = _near_branch(y.take(sub))
        out[low] = r
    np.greater(x, _R5_LO, out=mask)
    high = np.flatnonzero(mask)
    if high.size:
        out[high] = _huge(x.take(high))
    np.equal(x, 1.0, out=mask)
    one = np.flatnonzero(mask)
    if one.size:
        out[one] = 1.0


def _softlog64(x: np.ndarray) -> np.ndarray:
    """L(x) for a 1-D contiguous float64 array (Theorem S2), block by block."""
    n = x.size
    out = np.empty(n, dtype=np.float64)
    buf = np.empty((5, min(n, _BLOCK)), dtype=np.float64)
    with np.errstate(all="ignore"):
        for i in range(0, n, _BLOCK):
            j = min(i + _BLOCK, n)
            _softlog_block(x[i:j], out[i:j], buf[:, : j - i])
    return out


# ---------------------------------------------------------------------------------------------
# float16, bfloat16, float32: one float64 evaluation, one rounding (Theorem S3).


def _softlog_narrow_block(x64: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``z = log1p(fl(fl(fl(x - X0_HI) - X0_LO) A_HI))`` in float64.

    For inputs of at most 24 significant bits the relative error of this float64 value is below
    ``2**-49`` away from the branch point (Theorem S3); every float64 NaN/inf rule of ``log1p``
    gives the softlog's special values (``t < -1`` -> NaN, ``+inf`` -> ``+inf``).
    """
    np.subtract(x64, _X0_HI, out=z)
    z -= _c.X0[1]
    z *= _A_HI
    return np.log1p(z, out=z)


# ---------------------------------------------------------------------------------------------
# float32: correctly rounded (proofs/fast_oracle.md, Theorem F4). The float64 value z of
# _softlog_narrow_block is within delta(x) of L(x) (Theorem S3); the rounding of z to float32 is
# that of L unless a float32 midpoint lies within delta of z. Midpoints are the float64 values whose
# low 29 significand bits are 2**28; delta is below 16 ulp64(z) wherever z >= -1.999 and below
# (3 + 4 w / |z|) ulp64(z), w = |t| / (1 + t), elsewhere. The few flagged inputs (about one in
# 1.6e7) are evaluated again by an exact Ziv loop in decimal arithmetic.

_MASK29 = np.int64((1 << 29) - 1)
_K32 = 16
_SHIFTED_HALF29 = np.int64((1 << 28) - _K32)
_NEAR_BRANCH_Z = -1.999
_NO_INDEX = np.zeros(0, dtype=np.intp)
_BLOCK32 = 1 << 16  # more NumPy calls per block than _narrow: a larger block amortises them


def _softlog32(x: np.ndarray) -> np.ndarray:
    """Correctly rounded softlog of a 1-D float32 array (Theorem F4)."""
    n = x.size
    out = np.empty(n, dtype=np.float32)
    m = min(n, _BLOCK32)
    b, z = np.empty((2, m), dtype=np.float64)
    low = np.empty(m, dtype=np.int64)
    flag = np.empty(m, dtype=np.bool_)
    flagged = []
    with np.errstate(all="ignore"):
        for i in range(0, n, _BLOCK32):
            j = min(i + _BLOCK32, n)
            k = j - i
            bk, zk, lk, fk = b[:k], z[:k], low[:k], flag[:k]
            np.copyto(bk, x[i:j], casting="safe")
            np.subtract(bk, _X0_HI, out=bk)
            bk -= _c.X0[1]
            bk *= _A_HI  # t-hat, kept in bk for the near-branch test
            np.log1p(bk, out=zk)
            np.copyto(out[i:j], zk, casting="same_kind")
            # |low29(z) - 2**28| <= 16, as one unsigned window test modulo 2**29
            np.subtract(zk.view(np.int64), _SHIFTED_HALF29, out=lk)
            lk &= _MASK29
            np.less_equal(lk, 2 * _K32, out=fk)
            idx = np.flatnonzero(fk) if fk.any() else _NO_INDEX
            np.less(zk, _NEAR_BRANCH_Z, out=fk)
            if fk.any():
                near = np.flatnonzero(fk)
                zn = zk.take(near)
                tn = bk.take(near)
                w = np.abs(tn) / (1.0 + tn)
                kk = 3.0 + 4.0 * w / np.abs(zn)
                d = np.abs((zn.view(np.int64) & _MASK29) - (np.int64(1) << np.int64(28)))
                extra = near[(d <= kk) & np.isfinite(zn)]
                if extra.size:
                    idx = np.union1d(idx, extra)
            if idx.size:
                flagged.append(idx + i)
    for idx in flagged:
        for i in idx.tolist():
            v = float(x[i])
            if _XB_HI <= v < np.inf:  # not NaN, not +inf, in the domain
                out[i] = _softlog_decimal32(v)
    return out


_DEC_CACHE: dict[int, tuple] = {}


def _dec_constants(digits: int):
    c = _DEC_CACHE.get(digits)
    if c is None:
        ctx = decimal.Context(prec=digits, rounding=decimal.ROUND_HALF_EVEN, Emax=999999, Emin=-999999)
        e = ctx.exp(decimal.Decimal(1))
        b = ctx.divide(decimal.Decimal(1), e)
        a = ctx.subtract(e, b)
        c = _DEC_CACHE[digits] = (ctx, a, b)
    return c


def _softlog_decimal32(x: float) -> np.float32:
    """``RN_float32(L(x))`` for a float32 value ``x`` in the domain, exactly (Ziv loop in decimal).

    ``L`` is evaluated as ``ln(a x + b)`` with Python's :mod:`decimal` (each operation, ``exp`` and
    ``ln`` included, correctly rounded to ``digits`` digits), with the absolute error bound
    ``10**(1 - digits) ((12 |x| + 2) / w + 2 |L|)`` (proofs/fast_oracle.md, Theorem F4). The
    rounding is accepted when that interval lies strictly between two float32 midpoints; otherwise
    the precision doubles. ``L(x)`` is never a float32 midpoint for ``x`` outside ``{0, 1}``, so the
    loop ends (proofs/fast_oracle.md, Theorem F4).
    """
    digits = 40
    xd = decimal.Decimal(x)  # exact
    while digits <= 5000:
        ctx, a, b = _dec_constants(digits)
        w = ctx.add(ctx.multiply(a, xd), b)
        if w > 0:
            lv = ctx.ln(w)
            u = Fraction(1, 10 ** (digits - 1))
            err = u * ((12 * abs(Fraction(x)) + 2) / Fraction(w) + 2 * abs(Fraction(lv)))
            f = Fraction(lv)
            c = np.float32(float(lv))
            for _ in range(2):
                lo_mid = (Fraction(float(c)) + Fraction(float(np.nextafter(c, np.float32(-np.inf))))) / 2
                hi_mid = (Fraction(float(c)) + Fraction(float(np.nextafter(c, np.float32(np.inf))))) / 2
                if f < lo_mid:
                    c = np.nextafter(c, np.float32(-np.inf))
                elif f > hi_mid:
                    c = np.nextafter(c, np.float32(np.inf))
                else:
                    break
            if lo_mid < f - err and f + err < hi_mid:
                return c
        digits *= 2
    raise ArithmeticError(f"softlog({x!r}) undecided at 5000 digits")  # pragma: no cover


_LOW45 = np.uint64((1 << 45) - 1)
_HALF45 = np.uint64((1 << 44) - 1)
_SHIFT45 = np.uint64(45)
_ONE = np.uint64(1)
_BF16_TINY = 2.0**-126


def _store_bfloat16(dst: np.ndarray, z: np.ndarray, tmp: np.ndarray) -> None:
    """``dst[...] = round_from_float64(z, bfloat16)``, faster; ``z`` and ``tmp`` are float64
    scratch of ``dst``'s size (``z`` is overwritten).

    One rounding to nearest-even to 8 significant bits on the float64 bit pattern (add
    ``2**44 - 1 + lsb`` below bit 45, clear the 45 low bits); the float64 -> bfloat16 cast of the
    result is then exact (overflow gives inf, NaN stays NaN). Values below the smallest normal
    bfloat16, where the grid is coarser, go through ``round_from_float64``. Equal to
    ``round_from_float64`` on every value (``tests/test_softlog.py::test_fast_bfloat16_rounding``).
    """
    np.abs(z, out=tmp)
    small = np.flatnonzero(tmp < _BF16_TINY)
    keep = round_from_float64(z[small], _BF16) if small.size else None
    bits = z.view(np.uint64)
    t = tmp.view(np.uint64)
    np.right_shift(bits, _SHIFT45, out=t)
    t &= _ONE
    t += _HALF45
    bits += t
    bits &= ~_LOW45
    np.copyto(dst, z, casting="same_kind")
    if keep is not None:
        dst[small] = keep


def _to_bfloat16(z) -> np.ndarray:
    """``round_from_float64(z, bfloat16)`` by :func:`_store_bfloat16` (any shape)."""
    z = np.array(z, dtype=np.float64, order="C", copy=True)
    out = np.empty(z.shape, dtype=_BF16)
    with np.errstate(all="ignore"):
        _store_bfloat16(out.reshape(-1), z.reshape(-1), np.empty(z.size))
    return out


def _narrow(x: np.ndarray, fmt, kernel) -> np.ndarray:
    """Evaluate ``kernel(x64_block, z_block)`` in float64 and round once to ``fmt`` (Theorem S3).

    ``x`` is 1-D; each block is widened exactly to float64 (every value of the four formats is a
    float64), evaluated, and rounded once: NumPy's cast for float16/float32 (a single correct
    rounding), :func:`_store_bfloat16` for bfloat16.
    """
    n = x.size
    out = np.empty(n, dtype=fmt.dtype)
    m = min(n, _BLOCK)
    b, z, tmp = np.empty((3, m), dtype=np.float64)
    bf16 = fmt.name == "bfloat16"
    with np.errstate(all="ignore"):  # includes bfloat16 signalling NaNs in the widening cast
        for i in range(0, n, _BLOCK):
            j = min(i + _BLOCK, n)
            k = j - i
            np.copyto(b[:k], x[i:j], casting="safe")
            r = kernel(b[:k], z[:k])
            if bf16:
                _store_bfloat16(out[i:j], r, tmp[:k])
            else:
                np.copyto(out[i:j], r, casting="same_kind")
    return out


_TABLES: dict[tuple[str, str], np.ndarray] = {}


def _lookup(x: np.ndarray, fmt, kernel) -> np.ndarray:
    """For the 16-bit formats: the value of :func:`_narrow` for every one of the 65536 bit
    patterns, computed once (about a millisecond) and then looked up by bit pattern. The table
    holds exactly what :func:`_narrow` returns, so Theorems S3-S5 apply unchanged."""
    key = (kernel.__name__, fmt.name)
    table = _TABLES.get(key)
    if table is None:
        table = _narrow(np.arange(1 << 16, dtype=np.uint16).view(fmt.dtype), fmt, kernel)
        _TABLES[key] = table
    flat = np.ascontiguousarray(x).reshape(-1)
    return table.take(flat.view(np.uint16)).reshape(x.shape)


# ---------------------------------------------------------------------------------------------
# Inverse: x = (exp(y) - 1/e) / (e - 1/e), by regime (Theorem S5).

_K1_HI = _c.K1[0]
_K0_HI = _c.K0[0]
_XB_LO = _c.XB[1]
_X0_LO = _c.X0[1]


def _inverse_block(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Inverse softlog of a float64 block into ``out`` (Theorem S5).

    ========================  ================================================  ===================
    regime                    formula (exact argument of exp/expm1)             x range
    ========================  ================================================  ===================
    ``y < -2`` (and -inf)     ``XB + exp(y) / A``                               ``(xb, -0.099)``
    ``-2 <= y < -1/4``        ``expm1(y + 1) / (e**2 - 1)``                     ``[-0.099, 0.175)``
    ``-1/4 <= y < 3/4``       ``X0 + expm1(y) / A``                             ``[0.175, 0.744)``
    ``3/4 <= y < 2``          ``1 + expm1(y - 1) / (1 - e**-2)``                ``[0.744, 2.99)``
    ``y >= 2`` (and +inf)     ``exp(y - 1) / (1 - e**-2) + XB``                 ``[2.99, inf]``
    ========================  ================================================  ===================

    The middle regime is evaluated on the whole block, the others on their index sets.
    """
    np.expm1(y, out=out)
    out /= _A_HI
    out += _X0_LO
    out += _X0_HI
    low = np.flatnonzero(~(y >= -0.25))  # y < -1/4, -inf, NaN
    if low.size:
        yl = y.take(low)
        v = yl + 1.0  # exact (Sterbenz) on [-2, -1/4)
        np.expm1(v, out=v)
        v /= _K0_HI
        sub = np.flatnonzero(~(yl >= -2.0))
        if sub.size:
            w = np.exp(yl.take(sub))
            w /= _A_HI
            w += _XB_LO
            w += _XB_HI
            v[sub] = w
        out[low] = v
    high = np.flatnonzero(y >= 0.75)
    if high.size:
        yh = y.take(high)
        v = yh - 1.0  # exact on [3/4, 2**53)
        np.expm1(v, out=v)
        v /= _K1_HI
        v += 1.0
        sub = np.flatnonzero(yh >= 2.0)
        if sub.size:
            w = yh.take(sub)
            w -= 1.0
            np.exp(w, out=w)
            w /= _K1_HI
            w += _XB_HI
            v[sub] = w
        out[high] = v
    return out


def _inverse64(y: np.ndarray) -> np.ndarray:
    n = y.size
    out = np.empty(n, dtype=np.float64)
    with np.errstate(all="ignore"):
        for i in range(0, n, _BLOCK):
            j = min(i + _BLOCK, n)
            _inverse_block(y[i:j], out[i:j])
    return out


# ---------------------------------------------------------------------------------------------
# Public functions


def softlog(x: ArrayLike) -> np.ndarray:
    """Softlog ``L(x) = ln((e - 1/e) x + 1/e)``, elementwise, in the dtype of ``x``.

    Parameters
    ----------
    x : array_like
        float16, bfloat16, float32 or float64 (int and bool become float64). Complex, object,
        string and other dtypes raise TypeError.

    Returns
    -------
    numpy.ndarray
        ``L(x)``, same shape and dtype as ``x`` (float64 for int/bool input); a 0-d array for a
        scalar input.

    Notes
    -----
    Domain: ``x > -1/(e**2 - 1) = -0.15651764...``; ``L`` is increasing and concave, ``L(0) = -1``,
    ``L(1/(e+1)) = 0``, ``L(1) = 1`` (proofs/softlog.md, Theorem S1).

    Special values (as :func:`softlog_numerics.oracle.softlog`): ``L(+0) = L(-0) = -1`` and
    ``L(1) = 1`` exactly, ``L(+inf) = +inf``; NaN, ``-inf`` and every ``x <= -1/(e**2 - 1)``
    give NaN. No floating-point warning is emitted.

    Algorithm. float64: ``L(x) = C + log1p(K_C (x - x_C))`` with a centre chosen by regime --
    ``C = 0`` (``x_C = x0``; double-double argument and a first-order correction) for
    ``x >= 0.1748``, ``C = -1/2`` on ``[0.1015, 0.1748)``, ``C = -1`` (``x_C = 0``) on
    ``[-0.0989, 0.1015)``, ``log(A (x - xb))`` (double-double) near the branch point ``xb``, and
    ``log(x) + log(A)`` above ``2**92``. float16, bfloat16 and float32: one float64 evaluation of
    the centred form, rounded once to the input's format (for the 16-bit formats, done once for all
    65536 bit patterns and then looked up). float32 values whose float64 value lies within its
    proven error of a float32 midpoint (about one input in 1.6e7, spotted from the low bits of the
    float64 value) are recomputed by an exact Ziv loop in decimal arithmetic.

    Accuracy (``ULP_BOUNDS["softlog"]``): 0 ULP (correctly rounded) in float16, bfloat16 and float32
    and at most 2 ULP in float64, for every input, assuming the platform's float64 ``log1p`` and
    ``log`` are within 1 ULP (proofs/softlog.md, Theorem S2; proofs/softlog.md, Theorem S3;
    proofs/fast_oracle.md, Theorem F4). float32 is also checked exhaustively: all 4,278,190,081
    non-NaN float32 inputs agree with the certified oracle (``softlog-numerics exhaustive softlog
    --dtype float32 --start=-inf --stop=inf``). Monotone non-decreasing in every format
    (proofs/softlog.md, Theorem S4).
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    if fmt.name == "float64":
        flat = np.ascontiguousarray(x).reshape(-1)
        return _softlog64(flat).reshape(x.shape)
    if fmt.bits == 16:
        return _lookup(x, fmt, _softlog_narrow_block)
    flat = np.ascontiguousarray(x).reshape(-1)
    if fmt.name == "float32":
        return _softlog32(flat).reshape(x.shape)
    return _narrow(flat, fmt, _softlog_narrow_block).reshape(x.shape)


def softlog_inverse(y: ArrayLike) -> np.ndarray:
    """Inverse softlog ``x = (exp(y) - 1/e) / (e - 1/e)``, elementwise, in the dtype of ``y``.

    Parameters
    ----------
    y : array_like
        float16, bfloat16, float32 or float64 (int and bool become float64); TypeError otherwise.

    Returns
    -------
    numpy.ndarray
        ``L^-1(y)``, same shape and dtype as ``y``; a 0-d array for a scalar input.

    Notes
    -----
    ``L^-1`` maps the whole real line onto ``(-1/(e**2 - 1), +inf)``; ``softlog(softlog_inverse(y))``
    is ``y`` up to the two rounding errors (proofs/softlog.md, Theorem S1).

    Special values: ``L^-1(-1) = 0`` (``+0``), ``L^-1(1) = 1`` exactly, ``L^-1(0)`` is ``1/(e+1)``
    rounded; ``L^-1(+inf) = +inf``; ``L^-1(-inf)`` is the branch point ``-1/(e**2 - 1)`` rounded to
    nearest (the limit of ``L^-1`` at ``-inf``); NaN gives NaN; results beyond the format's range
    overflow to ``+inf``. No floating-point warning is emitted.

    Algorithm: five regimes in float64, each ``exp`` or ``expm1`` taken at an exactly computed
    argument (``y``, ``y + 1`` or ``y - 1``) and combined with the centre ``x_C`` of ``L`` nearest
    to the result, so that no subtraction cancels more than a factor 1.6 (proofs/softlog.md,
    Theorem S5). float16, bfloat16: one float64 evaluation rounded once (a table of the 65536
    values). float32: the float64 evaluation, a bit test of its distance to float32's rounding
    boundaries, and an exact decimal evaluation for the rare inputs it flags (Theorem S7).

    Accuracy (``ULP_BOUNDS["softlog_inverse"]``, against ``oracle.softlog_inverse``): 0 ULP
    (correctly rounded) on every float16 and bfloat16 input, checked exhaustively
    (proofs/softlog.md, Theorem S6), and on every float32 input if ``exp``/``expm1`` are within 1
    ULP (proofs/softlog.md, Theorem S7); at most 4 ULP in float64 under the same hypothesis, 3 ULP
    with their measured 0.67 (Theorem S5); measured at most 2 ULP in float64.
    """
    y = as_float_array(y, "y")
    fmt = format_of(y.dtype)
    if fmt.name == "float64":
        flat = np.ascontiguousarray(y).reshape(-1)
        return _inverse64(flat).reshape(y.shape)
    if fmt.bits == 16:
        return _lookup(y, fmt, _inverse_block)
    flat = np.ascontiguousarray(y).reshape(-1)
    return _inverse_float32(flat, fmt).reshape(y.shape)


# |v - L^-1(y)| <= K ulp(v) for the float64 value v, K = 4 (Theorem S5, lambda <= 1): the bit
# test's radius 2K + 3 in steps of v (Theorem S7 (a))
_INVERSE_RADIUS = 11


def _inverse_float32(y: np.ndarray, fmt) -> np.ndarray:
    """float32 ``softlog_inverse`` of the 1-D ``y``, correctly rounded (Theorem S7): the float64
    value of :func:`_inverse_block`, a bit test of its distance to the rounding boundaries of
    float32, and :func:`rounded_inverse` for the inputs it flags."""
    n = y.size
    out = np.empty(n, dtype=fmt.dtype)
    m = min(n, _BLOCK)
    b, z = np.empty((2, m), dtype=np.float64)
    w = np.empty(m, dtype=np.int64)
    q = 53 - fmt.precision
    shift = _INVERSE_RADIUS - (1 << (q - 1))
    with np.errstate(all="ignore"):
        for i in range(0, n, _BLOCK):
            j = min(i + _BLOCK, n)
            k = j - i
            np.copyto(b[:k], y[i:j], casting="safe")
            r = _inverse_block(b[:k], z[:k])
            np.copyto(out[i:j], r, casting="same_kind")
            # (bits + shift) mod 2**q <= 2 radius: within radius steps of a midpoint's pattern
            np.add(r.view(np.int64), shift, out=w[:k])
            np.bitwise_and(w[:k], (1 << q) - 1, out=w[:k])
            for t in np.flatnonzero((w[:k] <= 2 * _INVERSE_RADIUS) & np.isfinite(r) & (np.abs(b[:k]) <= 1e4)):
                out[i + t] = rounded_inverse(float(b[t]), fmt)
    return out
