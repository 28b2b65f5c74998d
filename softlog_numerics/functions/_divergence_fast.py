"""The fast first stage of the entropies and divergences in float16, bfloat16 and float32
(proofs/divergence.md, Theorem D10).

For a row whose entries all lie in ``[0, 1]`` the sum ``S`` is evaluated in plain float64 together
with a proven radius ``R``: ``|S' - S| + 2**-63.8 Sigma <= R``, where ``2**-63.8 Sigma`` bounds the
error of the double-double value ``S^`` that the exact algorithm of :mod:`._divergence` rounds
(Theorems D5, D6). If the two ends of ``[S' - R, S' + R]`` (rounded outwards to float64) round
to the same format value, bit for bit, that value is ``RN(S)``, the correctly rounded result the
library returns in float16, bfloat16 and float32 (Theorem D12 (a)), and also ``phi(S^)`` for the
monotone ``phi`` of the float64 algorithm (rounding to float64, the scale, rounding to the format;
Theorem D10); other rows are left to the later stages. The result is therefore the same, bit for
bit, as without this stage.

The softlog in float64 (absolute error ``c_L``):

* 16-bit formats: a table of ``RN(L(x))`` over the 65,536 bit patterns, built once from the
  double-double kernel :func:`softlog_dd` (``c_L = 1.0001 * 2**-53``), with NaN outside ``[0, 1]``;
* float32: ``L(x) = L(j/N) + log1p(r)``, ``j = rint(N x)``, ``r = (N x - j) a / (N A(j/N))``,
  ``N = 2**16``, ``r = (N x - j) / (j + N/(e**2 - 1))``, ``|r| <= 2**-14.32``,
  ``log1p(r) ~ r (1 - r/2)`` (``c_L = 2**-44.4``), from a table of ``RN(L(j/N))``.

Rows are processed in tiles of at most ``2**15`` entries (columns in chunks of that size), so the
extra memory is a few tiles of float64 (about 1.5 MiB) whatever the input's size.

float64 rows of at most ``2**12`` entries (:func:`fast_rows64`, Theorem D11): ``L(x) = A_j + lo``
with ``A_j`` of 26 bits (so ``p A_j`` is exact after one Veltkamp split of ``p``) and
``lo = B_j + log1p(r)`` to degree 4 (``|A_j + lo - L| <= 2**-63.7``); the exact parts are summed
by Rump-Ogita-Oishi extraction on a fixed grid, giving a double-double and a radius from which the
float64 rounding is decided the same way.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from softlog_numerics._core import constants as _c
from softlog_numerics._core.eft import two_prod, two_sum
from softlog_numerics._core.formats import round_from_float64
from softlog_numerics.functions._softlog_dd import softlog_dd

__all__ = ["COLS64", "TILE", "fast_rows", "fast_rows64"]

TILE = 1 << 15  # entries per tile
MAX_COLS = 1 << 20  # the hypothesis K <= 2**20 of Theorems D5-D6
_N = 1 << 16
_U = 2.0**-53
_C_L = {"float16": 1.0001 * _U, "bfloat16": 1.0001 * _U, "float32": 2.0**-44.4}
_E63 = 2.0**-63.8  # the exact algorithm's own error, relative to Sigma (Theorems D5, D6)
_TINY = 2.0**-1000  # ends below this are not decided (scalings by 1/2, 1/4 must be exact)
_ONE_BITS = {"float16": 0x3C00, "bfloat16": 0x3F80}
_MAGIC = 1.5 * 2.0**52  # t + _MAGIC lies in [2**52, 2**53): spacing 1, so it rounds t to an integer
_MAGIC_BITS = int(np.array(_MAGIC).view(np.int64))
_KAPPA = _N / _c.K0[0]  # N b / a = N / (e**2 - 1), relative error below 2**-51.9


@functools.lru_cache(maxsize=None)
def _unit_tables():
    """``T_j = RN(L(j/N))``, ``j = 0..N``, from the double-double kernel (Theorem D3)."""
    h, l = softlog_dd(np.arange(_N + 1, dtype=np.float64) / _N)
    return h + l


@functools.lru_cache(maxsize=None)
def _bit_tables(name: str, dtype):
    """``X[b]`` (the value, NaN outside ``[0, 1]``) and ``RN(L(X[b]))`` for the 65,536 bit patterns
    ``b`` of a 16-bit format, the softlog from the double-double kernel (D3)."""
    with np.errstate(invalid="ignore"):  # the signalling NaN patterns
        x = np.arange(1 << 16, dtype=np.uint16).view(dtype).astype(np.float64)
        ok = (x >= 0.0) & (x <= 1.0)
    X = np.where(ok, x, np.nan)
    L = np.full(x.shape, np.nan)
    h, l = softlog_dd(x[ok])
    L[ok] = h + l
    return X, L


class _Scratch:
    def __init__(self, shape):
        self.f = [np.empty(shape) for _ in range(5)]
        self.i = np.empty(shape, dtype=np.intp)


def _unit_softlog(x, out, tmp, tt, ib, s=None):
    """``out = L^(x)`` for float32 ``x`` in ``[0, 1]`` (``|L^ - L| <= c_L``, Theorem D10 (a)) and
    ``tt = N x`` (exact); ``s`` (if given) the float64 row sums of ``x``, as
    ``x.astype(float64).sum(axis=1)`` gives them."""
    T = _unit_tables()
    np.multiply(x, float(_N), out=tt, dtype=np.float64)  # t = N x, exact
    if s is not None:  # the pairwise sum of N x is N times that of x: no rounding changes
        np.sum(tt, axis=1, out=s)
        s /= _N
    np.add(tt, _MAGIC, out=tmp)  # 1.5 * 2**52 + rint(t), exactly
    np.subtract(tmp.view(np.int64), _MAGIC_BITS, out=ib)  # j
    tmp -= _MAGIC  # j, exactly
    np.subtract(tt, tmp, out=out)  # d = t - j, exact (Sterbenz), |d| <= 1/2
    tmp += _KAPPA
    out /= tmp  # r = d / (j + kappa) = a (x - j/N) / A(j/N)
    np.multiply(out, -0.5, out=tmp)
    tmp += 1.0
    out *= tmp  # r (1 - r/2)
    np.take(T, ib, out=tmp, mode="clip")
    out += tmp


def _values_and_softlog(x, bits, X, L, val, lx, tmp, ib, s=None):
    """``lx`` = L^(x) and ``val`` = the entries as float64 (16-bit formats) or ``N x`` (float32,
    exact); ``s`` (if given) = the float64 row sums of ``x`` (those of the validation)."""
    if bits:
        np.copyto(ib, x.view(np.uint16), casting="unsafe")
        np.take(L, ib, out=lx)
        if val is not None:
            np.take(X, ib, out=val)
            if s is not None:
                np.sum(val, axis=1, out=s)
        return
    _unit_softlog(x, lx, tmp, val, ib, s)


def _gamma(n: int) -> float:
    return (n * _U) / (1.0 - n * _U)


def _radius_coefficient(kind: str, fmtname: str, k: int) -> float:
    """``rho`` with ``|S'_raw - S_raw| + (exact algorithm's error) <= rho * s`` for the raw sum
    (``S``, ``2S`` for sld, ``4S`` for sld_sym) and ``s`` the float64 sum of ``p`` (of ``p`` and
    ``q`` for sld_sym), with a margin of 1 % (Theorem D10 (b))."""
    c = _C_L[fmtname]
    g = _gamma(k)  # the row's dot product of k terms (products included)
    if kind in ("entropy", "cross"):
        beta = c + _U * (1 + c) + g * (1 + _U) * (1 + c) + _E63
    elif kind == "sld":
        beta = 2 * c + 4.0002 * _U + 2.0002 * g + 2 * _E63
    else:
        beta = 2 * c + 6.001 * _U + 2.0002 * g + 2 * _E63
    return 1.01 * beta / (1.0 - g)


def fast_rows(kind: str, P, Q, fmt, in_unit: bool, mass=None, sums: bool = False):
    """``(decided, values)``: a boolean mask over the rows of ``P`` (2-D, the format's dtype) and
    the results (format dtype) where decided. ``in_unit``: every entry is known to lie in
    ``[0, 1]`` (validated input); otherwise rows with entries outside are not decided. ``mass``:
    the float64 row sums of ``p`` (``fl(sum p + sum q)`` for sld_sym) if known, else computed.
    ``sums`` (rows of at most ``TILE`` entries only): also return the float64 row sums of ``p`` and
    of ``q`` that the validation compares with 1 (``(decided, values, sp, sq)``)."""
    rows, k = P.shape
    name = fmt.name
    decided = np.zeros(rows, dtype=bool)
    values = np.zeros(rows, dtype=fmt.dtype)
    if rows == 0 or k == 0 or k > MAX_COLS or name not in _C_L:
        return (decided, values, None, None) if sums else (decided, values)
    bits = name in _ONE_BITS
    X: Any = None  # the 16-bit tables, when the format has them
    L: Any = None
    if bits:
        X, L = _bit_tables(name, fmt.dtype)
    rho = _radius_coefficient(kind, name, k)
    scale = {"entropy": -1.0, "cross": -1.0, "sld": 0.5, "sym": 0.25}[kind]
    cols = min(k, TILE)
    tile_rows = max(1, TILE // cols)
    buf = _Scratch((tile_rows, cols))
    want = sums and k <= TILE
    SP: Any = np.zeros(rows) if want else None  # row sums of p and q, when wanted
    SQ: Any = np.zeros(rows) if want and kind != "entropy" else None
    for r0 in range(0, rows, tile_rows):
        r1 = min(rows, r0 + tile_rows)
        nr = r1 - r0
        # the row scalars of one tile only (no array of the rows' count but the results)
        S = np.zeros(nr)
        M = np.zeros(nr) if mass is None else mass[r0:r1]
        ok = np.ones(nr, dtype=bool)
        for c0 in range(0, k, cols):
            c1 = min(k, c0 + cols)
            nc = c1 - c0
            p = P[r0:r1, c0:c1]
            q = Q[r0:r1, c0:c1]
            f0, f1, f2, f3, f4 = (b[:nr, :nc] for b in buf.f)
            ib = buf.i[:nr, :nc]
            if not bits and not in_unit:
                for a in ((p, q) if kind != "entropy" else (p,)):
                    with np.errstate(invalid="ignore"):
                        ok &= (a.min(axis=1) >= 0) & (a.max(axis=1) <= 1)
                if not ok.any():
                    break
                if not ok.all():  # keep the kernel's indices in range
                    p = np.where(ok[:, None], p, 0).astype(p.dtype)
                    q = np.where(ok[:, None], q, 0).astype(q.dtype)
            sp: Any = SP[r0:r1] if want else None
            sq = SQ[r0:r1] if SQ is not None else None
            # pv, qv: the entries as float64 (16-bit formats) or N times them (float32, exact);
            # for float32 the row sums are N times theirs, bit for bit, and divided by N below
            if kind == "entropy":
                _values_and_softlog(p, bits, X, L, f2, f0, f1, ib, sp)
                pv = fac = f2
            elif kind == "cross":
                _values_and_softlog(q, bits, X, L, f3, f0, f1, ib, sq)
                if bits:
                    np.copyto(ib, p.view(np.uint16), casting="unsafe")
                    np.take(X, ib, out=f2)
                else:
                    np.multiply(p, float(_N), out=f2, dtype=np.float64)
                pv = f2
                if want:
                    np.sum(pv, axis=1, out=sp)
                    if not bits:
                        sp /= _N
                fac = pv
            else:
                _values_and_softlog(p, bits, X, L, f2, f0, f1, ib, sp)
                _values_and_softlog(q, bits, X, L, f3, f1, f4, ib, sq)
                f0 -= f1  # D^ = L^(p) - L^(q)
                pv, qv = f2, f3
                if kind == "sld":
                    fac = pv
                else:
                    np.subtract(pv, qv, out=f1)  # m^ = fl(p - q) (times N for float32)
                    fac = f1
            # the row dot products sum_k f0 fac in float64, in any order (with or without FMA):
            # within gamma_K sum_k |f0 fac| (Theorem D10 (b))
            S += np.einsum("ij,ij->i", f0, fac)
            if mass is not None or want:
                continue
            if kind == "sym":
                M += np.add.reduce(pv, axis=1, dtype=np.float64)
                M += np.add.reduce(qv, axis=1, dtype=np.float64)
            else:
                M += np.add.reduce(pv, axis=1, dtype=np.float64)
        if not bits:  # the N of N x (a power of two: exact)
            S /= _N
            if mass is None and not want:
                M /= _N
        if want:
            M = SP[r0:r1] + SQ[r0:r1] if kind == "sym" else SP[r0:r1]
        decided[r0:r1], values[r0:r1] = _decide(S, M, ok, rho, scale, fmt)
    if sums:
        return decided, values, SP, SQ
    return decided, values


def _decide(S, M, ok, rho: float, scale: float, fmt):
    """``(decided, values)`` for a tile's raw sums ``S`` and masses ``M`` (Theorem D10 (c)): the
    ends of ``[S - R, S + R]``, ``R = M rho + 2**-51 |S| + 2**-1074``, scaled, rounded to ``fmt``;
    decided where both give the same bits (and neither is below ``_TINY``)."""
    with np.errstate(invalid="ignore", over="ignore"):
        R = M * rho + np.abs(S) * 2.0**-51 + 2.0**-1074
        lo = (S - R) * scale
        hi = (S + R) * scale
        good = ok & np.isfinite(lo) & np.isfinite(hi)
        good &= (np.abs(lo) >= _TINY) & (np.abs(hi) >= _TINY)
        flo = round_from_float64(np.where(good, lo, 0.0), fmt)
        fhi = round_from_float64(np.where(good, hi, 0.0), fmt)
    ui = fmt.uint
    decided = good & (flo.view(ui) == fhi.view(ui))
    return decided, np.where(decided, flo, np.zeros_like(flo))


# ---------------------------------------------------------------------------------------------
# float64 (Theorem D11): the same decision, for the float64 rounding, from a sum known to about
# 2**-62 of the row's mass: L(x) = A_j + lo with A_j of 26 bits (so p A_j is exact after one
# Veltkamp split of p), lo = B_j + log1p(r) to degree 4, and the row sums of the exact parts by
# Rump-Ogita-Oishi extraction on a fixed grid (|terms| <= 1).

COLS64 = 1 << 12  # columns per chunk: the extraction's fixed grid needs c <= 2**12
TILE64 = 1 << 14  # entries per tile (nine float64 buffers)
_SPLITTER = 134217729.0
_THIRD = 1.0 / 3.0


@functools.lru_cache(maxsize=None)
def _unit_tables64():
    """``A_j`` (``L(j/N)`` to 26 bits, ``|A_j| <= 1``) and ``B_j = RN(L(j/N) - A_j)`` from the
    double-double kernel (D3): ``|A_j + B_j - L(j/N)| <= 2**-64.7``."""
    h, l = softlog_dd(np.arange(_N + 1, dtype=np.float64) / _N)
    c = _SPLITTER * h
    A = c - (c - h)  # Veltkamp: the leading 26 bits of h, h - A exact
    B = (h - A) + l
    # |A_j| >= 2**-20 makes A_j - A_i exact (multiples of 2**-45, at most 2 in size)
    assert np.abs(A).min() >= 2.0**-20
    return A, B


def _unit_softlog64(x, A_out, lo, tmp, tt, ib, s=None):
    """``L(x) ~ A_out + lo`` for float64 ``x`` in ``[0, 1]`` (``|A + lo - L(x)| <= 2**-63.5``,
    Theorem D11 (a)); ``tt = N x``; ``s`` the row sums of ``x`` (as the validation computes them)."""
    A, B = _unit_tables64()
    np.multiply(x, float(_N), out=tt)  # exact
    if s is not None:
        np.sum(tt, axis=1, out=s)
        s /= _N
    np.add(tt, _MAGIC, out=tmp)
    np.subtract(tmp.view(np.int64), _MAGIC_BITS, out=ib)  # j
    tmp -= _MAGIC
    np.subtract(tt, tmp, out=lo)  # d, exact
    tmp += _KAPPA
    lo /= tmp  # r
    np.multiply(lo, -0.25, out=tmp)
    tmp += _THIRD
    tmp *= lo
    tmp -= 0.5
    tmp *= lo
    tmp *= lo  # P = -r**2/2 + r**3/3 - r**4/4
    lo += tmp
    np.take(B, ib, out=tmp, mode="clip")
    lo += tmp
    np.take(A, ib, out=A_out, mode="clip")


def _extract_sums(v, sigma, tmp):
    """Row sums of ``v`` (``|v| <= sigma / (2 c)``, ``c`` columns, ``sigma`` a power of two) as
    ``(q, r)``: ``q`` exact, ``r`` the float64 sum of the exact remainders (Theorem D11 (b))."""
    np.add(v, sigma, out=tmp)
    tmp -= sigma  # q_i, exact
    q = tmp.sum(axis=1)
    np.subtract(v, tmp, out=tmp)  # r_i = v_i - q_i, exact, |r_i| <= 2**-53 sigma
    return q, tmp.sum(axis=1)


def _radius64(kind: str, c: int, sigmas):
    """``(rho, absolute)``: the radius is ``rho * s + absolute`` for ``s`` the float64 sum of ``p``
    (of ``p`` and ``q`` for sld_sym) and ``sigmas`` the extraction grids (Theorem D11 (c)), a
    margin of 5 % included."""
    g = _gamma(c)
    eps_l = 2.0**-63.7
    if kind in ("entropy", "cross"):  # for S
        beta = eps_l + 2.0**-66.2 + 2.0**-65.3 + _E63
    elif kind == "sld":  # for 2S
        beta = 2 * eps_l + 2.0**-64.1 + 2.0**-64.3 + 2 * _E63
    else:  # for 4S
        beta = 2 * eps_l + 2.0**-66.2 + 2.0**-64.6 + 2.0**-65.1 + 2 * _E63
    absolute = 1.01 * (c * _U) ** 2 * sum(sigmas) + 8 * c * 2.0**-1074
    return 1.05 * beta / (1.0 - g), 1.05 * absolute


def fast_rows64(kind: str, P, Q, in_unit: bool, mass=None, sums: bool = False):
    """As :func:`fast_rows` for float64 rows (entropy, cross-entropy, sld)."""
    rows, k = P.shape
    decided = np.zeros(rows, dtype=bool)
    values = np.zeros(rows)
    if rows == 0 or k == 0 or k > COLS64:
        return (decided, values, None, None) if sums else (decided, values)
    cols = min(k, COLS64)
    chunks = -(-k // cols)
    tile_rows = max(1, TILE64 // cols)
    f = [np.empty((tile_rows, cols)) for _ in range(9)]
    ibuf = np.empty((tile_rows, cols), dtype=np.intp)
    sig1 = 2.0 ** (int(cols - 1).bit_length() + 1)  # >= 2c
    sig2 = sig1 * 2.0**-12
    H = np.zeros(rows)
    lo_all = np.zeros(rows)
    ok_all = np.ones(rows, dtype=bool)
    want = sums and k <= TILE and chunks == 1
    SP: Any = np.zeros(rows) if want else None  # row sums of p and q, when wanted
    SQ: Any = np.zeros(rows) if want and kind != "entropy" else None
    M_all = np.zeros(rows) if mass is None else mass
    for r0 in range(0, rows, tile_rows):
        r1 = min(rows, r0 + tile_rows)
        nr = r1 - r0
        ok = ok_all[r0:r1]
        for c0 in range(0, k, cols):
            c1 = min(k, c0 + cols)
            nc = c1 - c0
            p = P[r0:r1, c0:c1]
            q = Q[r0:r1, c0:c1]
            Ap, lp, t0, t1, tp, Aq, lq, t2, tq = (b[:nr, :nc] for b in f)
            ib = ibuf[:nr, :nc]
            if not in_unit:
                for a in ((p, q) if kind != "entropy" else (p,)):
                    with np.errstate(invalid="ignore"):
                        ok &= (a.min(axis=1) >= 0) & (a.max(axis=1) <= 1)
                if not ok.any():
                    break
                if not ok.all():
                    p = np.where(ok[:, None], p, 0.0)
                    q = np.where(ok[:, None], q, 0.0)
            sp: Any = SP[r0:r1] if want else None
            sq = SQ[r0:r1] if SQ is not None else None
            if kind == "cross":
                _unit_softlog64(q, Ap, lp, t0, tq, ib, sq)
                if want:
                    np.sum(p, axis=1, out=sp)
            else:
                _unit_softlog64(p, Ap, lp, t0, tp, ib, sp)
            if kind in ("sld", "sym"):
                _unit_softlog64(q, Aq, lq, t0, tq, ib, sq)
            if kind == "sym":
                if mass is None and not want:
                    M_all[r0:r1] += p.sum(axis=1) + q.sum(axis=1)
                mh, ml = two_sum(p, -q)  # m = p - q exactly
                Ap -= Aq  # DA, exact
                lp -= lq  # DL = fl(lo_p - lo_q)
                e1, err = two_prod(mh, Ap)  # mh DA exactly (barring underflow)
                np.multiply(mh, lp, out=t0)
                err += t0
                Ap += lp
                ml *= Ap
                err += ml  # E2
                q1, r1_ = _extract_sums(e1, 4 * sig1, t1)
                q3, r3_ = _extract_sums(err, 2 * sig2, t1)
                h, e = two_sum(H[r0:r1], q1)
                H[r0:r1] = h
                lo_all[r0:r1] += e + (r1_ + (q3 + r3_))
                continue
            if mass is None and not want:
                M_all[r0:r1] += p.sum(axis=1)
            # Veltkamp: p = ph + pl, both of at most 26 bits
            np.multiply(p, _SPLITTER, out=t0)
            np.subtract(t0, p, out=t1)
            t0 -= t1  # ph
            np.subtract(p, t0, out=t1)  # pl
            if kind == "sld":
                lp -= lq
                lp *= p  # fl(p fl(lo_p - lo_q))
                np.multiply(t1, Ap, out=t2)
                np.multiply(t1, Aq, out=tq)
                t2 -= tq  # fl(pl A_p - pl A_q)
                lp += t2  # E2'
                np.multiply(t0, Ap, out=t2)  # E1p, exact
                np.multiply(t0, Aq, out=tq)  # E1q, exact
                q1, r1_ = _extract_sums(t2, sig1, t1)
                q2, r2_ = _extract_sums(tq, sig1, t1)
                q3, r3_ = _extract_sums(lp, sig2 * 2.0, t1)
                hq, he = two_sum(q1, -q2)
                low = he + ((r1_ - r2_) + (q3 + r3_))
            else:
                lp *= p
                np.multiply(t1, Ap, out=t1)
                lp += t1  # E2' = fl(pl A + fl(p lo))
                np.multiply(t0, Ap, out=t0)  # E1 = ph A, exact
                q1, r1_ = _extract_sums(t0, sig1, t1)
                q3, r3_ = _extract_sums(lp, sig2, t1)
                hq = q1
                low = r1_ + (q3 + r3_)
            h, e = two_sum(H[r0:r1], hq)
            H[r0:r1] = h
            lo_all[r0:r1] += e + low
    if want:
        M_all = SP + SQ if kind == "sym" else SP
    sigmas = {"entropy": [sig1, sig2], "cross": [sig1, sig2], "sld": [sig1, sig1, 2 * sig2],
              "sym": [4 * sig1, 2 * sig2]}[kind]
    rho, absolute = _radius64(kind, cols, sigmas)
    scale = {"entropy": -1.0, "cross": -1.0, "sld": 0.5, "sym": 0.25}[kind]
    with np.errstate(invalid="ignore", over="ignore"):
        R = M_all * rho + absolute
        R = R + np.abs(lo_all) * 2.0**-51
        vlo = (H + (lo_all - R)) * scale
        vhi = (H + (lo_all + R)) * scale
        good = ok_all & np.isfinite(vlo) & np.isfinite(vhi)
        good &= (np.abs(vlo) >= _TINY) & (np.abs(vhi) >= _TINY)
    decided = good & (vlo.view(np.uint64) == vhi.view(np.uint64))
    values = np.where(decided, vlo, 0.0)
    if sums:
        return decided, values, SP, SQ
    return decided, values
