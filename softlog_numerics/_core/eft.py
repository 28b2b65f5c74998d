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
    mx = E.max(axis=1)
    mx *= E.shape[1]
    sigma = np.ldexp(2.0, np.frexp(mx)[1])[:, None]
    np.add(E, sigma, out=T)
    T -= sigma
    np.subtract(E, T, out=R)
    q, r = out.sum(axis=2)
    return q, r


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
