"""Error-free transformations on float64 arrays (Knuth, Dekker; see Muller et al., Handbook of
Floating-Point Arithmetic, ch. 4), valid in round-to-nearest without overflow:

* ``two_sum(a, b) -> (s, t)`` with ``s = fl(a + b)`` and ``s + t == a + b`` exactly (6 flops);
* ``fast_two_sum(a, b)``: the same when ``|a| >= |b|`` (or ``a == 0``) (3 flops);
* ``two_prod(a, b) -> (p, t)`` with ``p = fl(a * b)`` and ``p + t == a * b`` exactly, by Dekker's
  split (17 flops), valid while ``|a|, |b| < 2**995`` and ``a * b`` has no underflow.

They work elementwise on NumPy arrays (or scalars) of float64 and allocate their results.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "blocked_row_sums",
    "fast_two_sum",
    "fraction_dd",
    "grid_split_sums",
    "mul_split_constant",
    "nonnegative_row_sums",
    "split",
    "split_constant",
    "two_prod",
    "two_sum",
]

_SPLITTER = 134217729.0  # 2**27 + 1


def two_sum(a: Any, b: Any) -> tuple[Any, Any]:
    s = a + b
    bb = s - a
    t = (a - (s - bb)) + (b - bb)
    return s, t


def fast_two_sum(a: Any, b: Any) -> tuple[Any, Any]:
    s = a + b
    t = b - (s - a)
    return s, t


def split(a):
    """``a = hi + lo`` with both halves holding at most 26 significant bits."""
    c = _SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


def two_prod(a, b):
    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    t = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, t


def fraction_dd(q) -> tuple[float, float]:
    """A rational (``fractions.Fraction``) as the double-double ``(hi, lo)``: ``hi = RN(q)`` and
    ``lo = RN(q - hi)``, so ``|hi + lo - q| <= 2**-106 |q|`` barring underflow."""
    hi = float(q)  # Fraction.__float__ divides the integers exactly, then rounds once
    return hi, float(q - type(q)(hi))


def nonnegative_row_sums(E, chunk: int = 1 << 15):
    """Row sums of a non-negative finite float64 matrix ``E`` as a double-double ``(h, l)`` with
    ``|h + l - sum_i E_i| <= 2**-58 sum_i E_i`` (for fewer than ``2**30`` columns).

    Each chunk of at most ``2**15`` columns is split on a power-of-two grid ``sigma >= 2 c max(E)``
    (Rump, Ogita & Oishi): ``q = fl(sigma + E) - sigma`` and ``r = E - q`` are exact and the ``q``
    add up exactly, the ``r`` (each ``<= 2**-53 sigma``) in float64 within ``2**-59`` of the chunk
    sum (proofs/log_softmax.md, Theorems LSE0 (d) and LSE1 (b)); the chunks are accumulated by
    TwoSum with the low parts added in float64 (``<= 2**-76`` relative for ``n < 2**30``). Rows
    holding entries above ``2**900`` are summed ``2**-200`` times smaller (the scaling loses only
    values below ``2**-874``, far below ``2**-58`` of their row) so that no grid overflows.
    """
    E = np.asarray(E, dtype=np.float64)
    R, n = E.shape
    big = (E.max(axis=1) > 2.0**900) if n else np.zeros(R, dtype=bool)
    if big.any():
        E = E.copy()
        E[big] *= 2.0**-200
        h, lo = nonnegative_row_sums(E, chunk)
        h[big] *= 2.0**200
        lo[big] *= 2.0**200
        return h, lo
    h = np.zeros(R)
    lo = np.zeros(R)
    for c0 in range(0, n, chunk):
        q, r = grid_split_sums(E[:, c0 : c0 + chunk])
        h, e = two_sum(h, q)
        lo += e + r
    return fast_two_sum(h, lo)


def grid_split_sums(E, out=None):
    """Per row of a non-negative finite float64 matrix ``E`` of ``c <= 2**15`` columns, ``(q, r)``
    with ``q + r`` the row sum: the Rump-Ogita-Oishi extraction on the grid ``sigma``, the power of
    two with ``2 c max(E) < sigma <= 4 c max(E)``. ``q_i = fl(sigma + E_i) - sigma`` and
    ``r_i = E_i - q_i`` are exact, the ``q_i`` (multiples of ``2**-53 sigma``, at most ``c`` of them)
    add up exactly, and ``r = fl(sum r_i)`` errs by at most ``c 2**-53 sum r_i`` with
    ``|r_i| <= 2**-53 sigma`` (proofs/log_softmax.md, Theorem LSE1 (b)). ``out`` (shape
    ``(2,) + E.shape``, float64) is scratch for ``q_i`` and ``r_i``: both are summed by one reduction.
    """
    if out is None:
        out = np.empty((2,) + E.shape)
    T, R = out[0], out[1]
    short = 0 < E.shape[1] <= SHORT_ROW
    mx = short_row_max(E) if short else E.max(axis=1)
    mx *= E.shape[1]
    sigma = np.ldexp(2.0, np.frexp(mx)[1])[:, None]
    np.add(E, sigma, out=T)
    T -= sigma
    np.subtract(E, T, out=R)
    if short:
        return short_row_sums(T), short_row_sums(R)
    q, r = out.sum(axis=2)
    return q, r


# ---------------------------------------------------------------------------------------------
# Reductions along a short last axis. NumPy's reduction of a (rows, c) array along a short axis
# pays a fixed cost per row (~15-30 ns: 3-4x the arithmetic for c = 10); column-wise array
# operations pay it per column instead.

SHORT_ROW = 15  # up to this many columns, short_row_sums and short_row_max are used


def short_row_max(E):
    """``E.max(axis=1)`` of a 2-D float array with ``1 <= c`` columns, column by column (the maximum
    is exact: the same values, NaN propagating as in the reduction)."""
    m = E[:, 0].copy()
    for j in range(1, E.shape[1]):
        np.maximum(m, E[:, j], out=m)
    return m


def short_row_sums(E):
    """``E.sum(axis=1)`` of a 2-D float64 array with ``1 <= c <= 15`` columns, column by column, in
    the order of NumPy's pairwise summation for fewer than 16 terms: sequential below 8 terms,
    else ``((e_0 + e_1) + (e_2 + e_3)) + ((e_4 + e_5) + (e_6 + e_7))`` and then ``e_8, e_9, ...``
    added in turn. The callers' error bounds hold for a float64 sum of ``c`` terms in any order;
    this order gives NumPy's bits (tests/test_log_softmax.py checks it on this NumPy)."""
    c = E.shape[1]
    col = [E[:, j] for j in range(c)]
    if c < 8:
        s = col[0].copy()
        for v in col[1:]:
            s += v
        return s
    s = (col[0] + col[1]) + (col[2] + col[3])
    s += (col[4] + col[5]) + (col[6] + col[7])
    for v in col[8:]:
        s += v
    return s


_BLOCK = 256  # blocked_row_sums: columns per block


def blocked_row_sums(E):
    """Row sums of a 2-D float64 array ``E`` of ``c`` columns with a known error bound: ``(s, d)``
    with ``|s - sum_i E_i| <= gamma_d sum_i |E_i|``, ``gamma_d = d u / (1 - d u)``.

    The columns are grouped in blocks of 256 and the ``q = c // 256`` blocks added elementwise (any
    order: ``q - 1`` additions per sum, one more for the ``c mod 256`` leftover columns), then the
    256 partial sums in 16 groups of 16, then the 16: ``d = ceil(c/256) + 29`` (154 for ``c = 32000``) instead of
    the ``c - 1`` of a reduction whose order is unknown. Each input reaches its sum through at most
    ``d`` roundings, so the bound holds whatever order NumPy adds in (Higham, Accuracy and Stability
    of Numerical Algorithms, section 4.2). Rows of fewer than 512 columns: ``E.sum(axis=1)``, ``d = c -
    1``. ``E`` is not modified.
    """
    R, c = E.shape
    q, r = divmod(c, _BLOCK)
    if q < 2:
        return E.sum(axis=1), max(c - 1, 0)
    head = E[:, : q * _BLOCK].reshape(R, q, _BLOCK).sum(axis=1)
    d = q - 1
    if r:
        head[:, :r] += E[:, q * _BLOCK :]
        d += 1
    return head.reshape(R, 16, 16).sum(axis=1).sum(axis=1), d + 30


# ---------------------------------------------------------------------------------------------
# Private helpers for products by a constant known as a float64 pair (used by softlog).


def split_constant(hi: float, lo: float) -> tuple[float, float]:
    """A constant ``c ~ hi + lo`` as ``h + m``: ``h`` holds the leading 26 bits of ``hi`` and
    ``m = fl((hi - h) + lo)``, so ``|h + m - (hi + lo)| <= 2**-53 |m| <= 2**-79 |c|``.

    With ``h`` of 26 bits, ``s * h`` is split exactly by Dekker's algorithm with one half only
    (:func:`mul_split_constant`), and ``s * m`` is a ``2**-26``-relative correction whose own
    rounding is ``2**-79`` relative.
    """
    h, _ = split(float(hi))
    h = float(h)
    return h, float((float(hi) - h) + float(lo))


def mul_split_constant(s, h: float, m: float):
    """``(p, q)`` with ``p = fl(s h)`` and ``p + q = s (h + m) (1 + theta)``, ``|theta| <= 2**-77``
    (float64 arrays, ``|s| < 2**995``, no underflow in ``s h``). ``q`` is *not* normalised:
    ``|q| <= 2**-25 |p|``.

    ``s h - p`` is exact by Dekker's product with ``h`` already of 26 bits (``h = h + 0`` is a valid
    split of it): ``(s_hi h - p) + s_lo h`` has every operation exact.
    """
    p = s * h
    sh, sl = split(s)
    err = (sh * h - p) + sl * h
    return p, err + s * m
