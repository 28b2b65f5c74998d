"""A certified fast path for the correctly rounded softlog entropy, cross-entropy and divergences.

For rows of float16, bfloat16 or float32 entries (exact in float64) each term of

* ``softlog_entropy``        ``-p L(p)``,
* ``softlog_cross_entropy``  ``-p L(q)``,
* ``sld``                    ``p (L(p) - L(q)) / 2``,
* ``sld_sym``                ``(p - q)(L(p) - L(q)) / 4``

is evaluated in float64 from the softlog estimates of Theorem F1 (relative error ``2**-46``), or,
for the differences ``L(p) - L(q)``, as ``log1p((p - q) / (q - xb))`` (relative error ``2**-46``
however close ``p`` and ``q`` are); the terms are summed by a balanced tree, and an absolute error
bound is computed beside the sum
(proofs/fast_oracle.md, Theorem F7). The rounding to the input's format is decided when both ends
of the error interval round to the same bits (``fast_softmax.decided_rounding``). Rows whose terms
are all exactly zero are ``+0`` (as the exact path returns). Rows with a non-finite entry or an
evaluated entry outside the softlog's domain, and undecided rows, are returned as undecided: the
caller (:mod:`softlog_numerics.oracle.twins`) computes them exactly, so every result is the mpmath
oracle's, bit for bit.

The bound is about ``2**-46`` times the sum of the terms' magnitudes: rows whose terms cancel to a
result far below their size are left to the exact path rather than decided wrongly.
"""

from __future__ import annotations

import numpy as np

from softlog_numerics._core.formats import Format
from softlog_numerics.oracle.fast import (
    DOMAIN_START,
    RELATIVE_ERROR,
    softlog_estimate_wide,
)
from softlog_numerics.oracle.fast_softmax import (
    TILE,
    UNIT_ROUNDOFF,
    decided_rounding,
    sum_error_bound,
    tree_sum,
)

__all__ = ["KINDS", "divergence_estimate", "divergence_rows"]

KINDS = ("entropy", "cross", "sld", "sym")
"""The sums with a fast path: ``-sum p L(p)``, ``-sum p L(q)``, ``sum p (L(p) - L(q)) / 2`` and
``sum (p - q)(L(p) - L(q)) / 4``."""

_SAFE = 1.0 + 2.0**-40  # covers the roundings in computing the two sums of magnitudes (Theorem F7, step 4)
_ABS = 2.0**-1000  # absolute allowance per term for the subnormal range of float64 (Theorem F7, step 2)


_Z_MIN = -0.49  # the quotient form is used where fl(z) >= this, so 1 + z > 1/2 (Theorem F7, step 1')


def _terms(kind: str, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float64 terms ``t`` and the magnitudes ``b`` whose sum, times ``2**-46``, bounds the
    error the softlogs bring (Theorem F7, steps 1, 1' and 2); ``b`` is 0 exactly where the exact
    term is 0."""
    if kind in ("entropy", "cross"):
        t = p * softlog_estimate_wide(p if kind == "entropy" else q)
        np.negative(t, out=t)
        return t, np.abs(t)
    # L(p) - L(q) = log1p(z), z = (p - q) / (q - xb): relative error below 2**-46 where q >= 0 and
    # 1 + z > 1/2 (step 1'); elsewhere the difference of the two estimates (step 1).
    d = p - q
    z = d / (q - DOMAIN_START)
    quotient = (q >= 0.0) & (z >= _Z_MIN)
    diff = np.log1p(z)
    c = p * 0.5 if kind == "sld" else d * 0.25
    slow = np.flatnonzero(~quotient)
    if slow.size:
        vp = softlog_estimate_wide(p.ravel()[slow])
        vq = softlog_estimate_wide(q.ravel()[slow])
        diff.ravel()[slow] = vp - vq
    t = diff * c
    b = np.abs(t)
    if slow.size:
        mag = np.abs(vp)
        mag += np.abs(vq)
        mag *= np.abs(c.ravel()[slow])
        if kind == "sld":
            mag[p.ravel()[slow] == q.ravel()[slow]] = 0.0
        b.ravel()[slow] = mag
    return t, b


def _estimate(kind: str, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row sums ``v``, their error bounds ``r`` and the exact-zero rows (Theorem F7)."""
    n = p.shape[1]
    t, b = _terms(kind, p, q)
    mag = np.abs(t)
    v = tree_sum(t)
    a = tree_sum(mag)
    bs = tree_sum(b)
    gamma = sum_error_bound(n)
    r = bs * (RELATIVE_ERROR * _SAFE)
    r += a * ((4.0 * UNIT_ROUNDOFF + gamma) * _SAFE)
    r += n * _ABS
    return v, r, bs == 0.0


def _regular(kind: str, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Rows with every entry finite and every evaluated entry in the softlog's domain."""
    with np.errstate(invalid="ignore"):
        if kind == "entropy":
            return np.asarray((p >= DOMAIN_START).all(axis=1) & (p < np.inf).all(axis=1))
        ok = np.isfinite(p).all(axis=1) & (q >= DOMAIN_START).all(axis=1) & (q < np.inf).all(axis=1)
        if kind != "cross":
            ok &= (p >= DOMAIN_START).all(axis=1)
        return np.asarray(ok)


def divergence_estimate(kind: str, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float64 value ``v`` and error bound ``r`` of Theorem F7 for each row of the 2-d float64
    arrays ``p`` and ``q`` (numbers of a format of at most 24 bits, finite, in the softlog's domain
    where evaluated): ``|exact - v| <= r``. For the tests, which check the bound against mpmath."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        v, r, _ = _estimate(kind, p, q)
    return v, r


def divergence_rows(kind: str, p: np.ndarray, q: np.ndarray, fmt: Format) -> tuple[np.ndarray, np.ndarray]:
    """The sum ``kind`` (one of :data:`KINDS`) of each row of the 2-d float64 arrays ``p`` and ``q``
    (numbers of ``fmt``, same shape; ``q`` is ignored for the entropy), fast.

    Returns the results in ``fmt.dtype`` (one per row) and the indices of the rows left to the exact
    path (their values in the first array are 0).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    rows, n = p.shape
    out = np.zeros(rows, dtype=fmt.dtype)
    undecided = np.ones(rows, dtype=np.bool_)
    if n == 0 or rows == 0:
        return out, np.flatnonzero(undecided)
    step = max(1, TILE // n)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        tp, tq = p[r0:r1], q[r0:r1]
        ok = _regular(kind, tp, tq)
        if not ok.any():
            continue
        pos = np.flatnonzero(ok) + r0
        if not ok.all():
            tp, tq = tp[ok], tq[ok]
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            v, r, zero = _estimate(kind, tp, tq)
            vals, dec = decided_rounding(v, r, fmt)
        vals[zero] = 0.0
        dec |= zero
        out[pos] = vals
        undecided[pos] = ~dec
    out[undecided] = 0.0
    return out, np.flatnonzero(undecided)
