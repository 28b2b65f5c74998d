"""Softlog entropy, cross-entropy and the softlog divergences ``sld`` and ``sld_sym``.

With ``L(x) = ln((e - 1/e) x + 1/e)`` (the softlog), along ``axis``:

* ``softlog_entropy(p)          = -sum_k p_k L(p_k)``
* ``softlog_cross_entropy(p, q) = -sum_k p_k L(q_k)``
* ``sld(p, q)                   = 1/2 sum_k p_k (L(p_k) - L(q_k))``
* ``sld_sym(p, q)               = 1/4 sum_k (p_k - q_k)(L(p_k) - L(q_k))``

One algorithm serves every format (proofs/divergence.md): each term is computed in float64 as a
double-double (an unevaluated sum ``hi + lo``) with a relative error below ``2**-63.9``, the terms of a
row are scaled by a power of two and added with error-free transformations (a pairwise tree of
TwoSum whose rounding errors are kept and added), and the row's sum is rounded once to float64.
For float16/bfloat16/float32 the double-double sum, within ``2**-63.8 sum_k |term_k|``, is
rounded to the format where that interval decides it, and the rare rows it does not decide are
evaluated exactly (:mod:`._divergence_exact`): correctly rounded (Theorem D12).

The double-double softlog ``L(x)`` and the difference ``L(p) - L(q)`` (free of cancellation) are the
kernels of :mod:`softlog_numerics.functions._softlog_dd`, shared with the softlog-softmax layer.

A first stage (:mod:`softlog_numerics.functions._divergence_fast`, proofs/divergence.md, Theorems
D10 and D11) evaluates rows whose entries lie in ``[0, 1]`` in float64 with a proven radius that
also covers the error of this algorithm, and returns a row's result only when both ends of the
interval round to the same bits: then that *is* this algorithm's result and the correctly rounded
one; the other rows are computed as above, in tiles of rows.
With ``validate=True`` the row sums of the check come from the first stage when the layout allows
(:func:`_sums_from_first_stage`; the same float64 numbers, the same errors).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics._core.axes import (
    Axis,
    Rows,
    check_probabilities,
    check_same_shape,
    entries_in_unit_interval,
    normalize_axis,
    prepared_distributions_with_sums,
    sum_tolerance,
)
from softlog_numerics._core.dd import dd_row_sums
from softlog_numerics._core.eft import two_prod, two_sum
from softlog_numerics._core.formats import (
    BFLOAT16,
    as_float_array,
    format_of,
    result_format,
    round_from_float64,
)
from softlog_numerics._core.rounding import decided_dd
from softlog_numerics.functions._divergence_exact import rounded_row
from softlog_numerics.functions._divergence_fast import (
    COLS64,
    TILE,
    fast_rows,
    fast_rows64,
)
from softlog_numerics.functions._softlog_dd import (
    below_branch,
    softlog_dd,
    softlog_diff_dd,
)

__all__ = ["sld", "sld_sym", "softlog_cross_entropy", "softlog_entropy"]


# ---------------------------------------------------------------------------------------------
# Dot products of double-double rows.


_NO_EXP = -(1 << 20)
_E63 = 2.0**-63.8  # the double-double sum's error relative to Sigma (Theorems D5, D6)


def _dot_rows(mh, ml, gh, gl, shift: int):
    """``2**shift * sum_k (mh + ml)(gh + gl)`` per row, rounded to float64 once (``+0`` for zero).

    Each row is scaled by ``2**sigma`` so that its largest term lies in ``[1/4, 1)`` (no overflow,
    and underflow only in terms ``2**-1020`` times smaller than the largest); the scale is removed
    from the float64 sum by one ``ldexp``.
    """
    if mh.shape[1] == 0:
        return np.zeros(mh.shape[0])
    sh, sl, _, sigma = _dot_rows_dd(mh, ml, gh, gl, shift)
    v = (sh + sl) + 0.0
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(v, (-sigma).astype(np.int32))


def _dot_rows_dd(mh, ml, gh, gl, shift: int):
    """The scaled sums of :func:`_dot_rows` before their rounding: ``(sh, sl, mag, sigma)``, the
    double-double ``sh + sl`` (unnormalised) of ``2**(sigma + shift) sum_k (mh + ml)(gh + gl)``
    and ``mag``, the float64 sum of the scaled terms' absolute values (Theorems D5, D6, D12)."""
    em = np.frexp(mh)[1].astype(np.int64)
    eg = np.frexp(gh)[1].astype(np.int64)
    nz = (mh != 0.0) & (gh != 0.0)
    et = np.where(nz, em + eg, _NO_EXP).max(axis=1)
    sigma = np.where(et == _NO_EXP, 0, -et)
    cap = 990 - np.where(nz, em, _NO_EXP).max(axis=1)
    sigma = np.minimum(sigma, cap)
    s = (sigma + shift)[:, None].astype(np.int32)
    with np.errstate(under="ignore"):
        mh2 = np.ldexp(mh, s)
        ml2 = np.ldexp(ml, s)
        th, tl = two_prod(mh2, gh)
        tl = tl + (mh2 * gl + ml2 * gh)
        th = np.where(nz, th, 0.0)
        tl = np.where(nz, tl, 0.0)
    sh, sl = dd_row_sums(th, tl)
    return sh, sl, np.abs(th).sum(axis=1), sigma


# ---------------------------------------------------------------------------------------------
# The four reductions.


def _terms(kind: str, p, q):
    """``(mh, ml, gh, gl, shift)``: term ``k`` is ``2**shift (mh + ml)(gh + gl)``; zero terms have
    ``mh = 0`` and ``g`` is not evaluated there."""
    if kind in ("entropy", "cross"):
        arg = p if kind == "entropy" else q
        live = p != 0.0
        mh, ml = np.where(live, -p, 0.0), np.zeros_like(p)
        gh, gl = np.zeros_like(p), np.zeros_like(p)
        gh[live], gl[live] = softlog_dd(arg[live])
        return mh, ml, gh, gl, 0
    if kind == "sld":
        live = (p != 0.0) & (p != q)
        mh, ml, shift = np.where(live, p, 0.0), np.zeros_like(p), -1
    else:  # sym
        live = p != q
        mh, ml = two_sum(p, -q)
        mh, ml, shift = np.where(live, mh, 0.0), np.where(live, ml, 0.0), -2
    gh, gl = np.zeros_like(p), np.zeros_like(p)
    gh[live], gl[live] = softlog_diff_dd(p[live], q[live])
    return mh, ml, gh, gl, shift


def _exact_terms(kind: str, p, q):
    """Where every softlog in a term is ``L(0) = -1`` or ``L(1) = 1`` (or the term is zero): the
    term's exact value (a float64: ``±p``, ``±1``, ``1/2`` or 0), else NaN."""
    binary_p = (p == 0.0) | (p == 1.0)
    binary_q = (q == 0.0) | (q == 1.0)
    if kind == "entropy":
        return np.where(p == 0.0, 0.0, np.where(p == 1.0, -1.0, np.nan))
    if kind == "cross":
        v = np.where(q == 0.0, p, -p)
        return np.where(p == 0.0, 0.0, np.where(binary_q, v, np.nan))
    if kind == "sld":
        v = np.where((p == 1.0) & (q == 0.0), 1.0, 0.0)
        return np.where((p == 0.0) | (p == q), 0.0, np.where(binary_p & binary_q, v, np.nan))
    v = np.where(p != q, 0.5, 0.0)
    return np.where(p == q, 0.0, np.where(binary_p & binary_q, v, np.nan))


def _exact_sum(values: list) -> float:
    try:
        return math.fsum(values) + 0.0
    except OverflowError:
        return math.copysign(math.inf, sum(values))


def _unevaluated_rows(kind: str, P, Q) -> np.ndarray:
    """Rows whose result is NaN: a non-finite entry, or a softlog argument below the branch point."""
    bad = ~(np.isfinite(P).all(axis=1) & np.isfinite(Q).all(axis=1))
    for a in {"entropy": [P], "cross": [Q], "sld": [P, Q], "sym": [P, Q]}[kind]:
        bad |= below_branch(np.where(np.isfinite(a), a, 0.0)).any(axis=1)
    return bad


def _reduce_rows64(kind: str, P, Q) -> np.ndarray:
    """The exact algorithm on float64 rows ``P``, ``Q`` (2-D): the float64 value of each row's sum
    (NaN for a row it does not evaluate), before the rounding to a narrower format."""
    out = np.zeros(P.shape[0])
    bad = _unevaluated_rows(kind, P, Q)
    out[bad] = np.nan
    good = np.flatnonzero(~bad)
    if good.size and P.shape[1]:
        p, q = P[good], Q[good]
        exact = _exact_terms(kind, p, q)
        exact_rows = ~np.isnan(exact).any(axis=1)
        for r in np.flatnonzero(exact_rows):
            out[good[r]] = _exact_sum(exact[r].tolist())
        inexact = np.flatnonzero(~exact_rows)
        if inexact.size:
            pi, qi = p[inexact], q[inexact]
            shape = pi.shape
            mh, ml, gh, gl, shift = _terms(kind, pi.ravel(), qi.ravel())
            out[good[inexact]] = _dot_rows(
                mh.reshape(shape), ml.reshape(shape), gh.reshape(shape), gl.reshape(shape), shift
            )
    return out


def _narrow_row_sums(kind: str, P, Q):
    """For float64 rows ``P``, ``Q`` (2-D) of a narrow format: ``(nan, zero, yh, yl, err)``, the
    rows that are NaN, the rows whose terms are all exactly 0 (``S = 0``, result ``+0``), and for
    the others the double-double sum ``yh + yl`` of Theorems D5-D6 within ``err`` of ``S``
    (Theorem D12 (b))."""
    m, n = P.shape
    nan = _unevaluated_rows(kind, P, Q)
    zero = np.zeros(m, dtype=bool)
    yh, yl, err = np.ones(m), np.zeros(m), np.zeros(m)
    good = np.flatnonzero(~nan)
    if not (good.size and n):
        zero[good] = True
        return nan, zero, yh, yl, err
    p, q = P[good], Q[good]
    exact = _exact_terms(kind, p, q)
    exact_rows = ~np.isnan(exact).any(axis=1)
    zero[good[exact_rows]] = (exact[exact_rows] == 0.0).all(axis=1)
    for rows in (np.flatnonzero(exact_rows & ~zero[good]), np.flatnonzero(~exact_rows)):
        if not rows.size:
            continue
        if exact_rows[rows[0]]:  # the exact terms, times 1
            t = exact[rows]
            parts = (t, np.zeros_like(t), np.ones_like(t), np.zeros_like(t), 0)
        else:
            mh, ml, gh, gl, shift = _terms(kind, p[rows].ravel(), q[rows].ravel())
            parts = (*(v.reshape(rows.size, n) for v in (mh, ml, gh, gl)), shift)
        sh, sl, mag, sigma = _dot_rows_dd(*parts)
        idx = good[rows]
        zero[idx] = mag == 0.0  # every term exactly 0 (e.g. p = q)
        h, l = two_sum(sh, sl)
        # D5-D6: 2**-63.8 Sigma (mag is Sigma's float64 sum: relative error below n 2**-53 <= 2**-33),
        # scaled terms below 2**-1022 off by 2**-1074 each; ldexp's roundings below 2**-1022
        e = _E63 * mag * (1.0 + 2.0**-30) + n * 2.0**-1073
        ns = (-sigma).astype(np.int32)
        with np.errstate(under="ignore"):
            yh[idx], yl[idx] = np.ldexp(h, ns), np.ldexp(l, ns)
            err[idx] = np.ldexp(e, ns) + 2.0**-1070
    return nan, zero, yh, yl, err


def _reduce_rows_narrow(kind: str, P, Q, rows, fmt, tile: int) -> np.ndarray:
    """The correctly rounded results in ``fmt`` (float16, bfloat16, float32) of the rows ``rows``
    of ``P``, ``Q`` (2-D, the format's dtype), as float64 numbers that hold them (NaN for a row
    that is not evaluated; Theorem D12): :func:`_narrow_row_sums` in tiles of ``tile`` rows, one
    :func:`decided_dd` for all of them; the rows it leaves (a boundary within the radius, a sum
    that cancels to 0 or lies below ``2**-960``) go to :func:`rounded_row`."""
    m = rows.size
    nan, zero = np.zeros(m, dtype=bool), np.zeros(m, dtype=bool)
    yh, yl, err = np.ones(m), np.zeros(m), np.zeros(m)
    for i in range(0, m, tile):
        j = min(i + tile, m)
        nan[i:j], zero[i:j], yh[i:j], yl[i:j], err[i:j] = _narrow_row_sums(
            kind, P[rows[i:j]].astype(np.float64), Q[rows[i:j]].astype(np.float64)
        )
    ok = ~(nan | zero) & (np.abs(yh) >= 2.0**-960)
    c, decided = decided_dd(np.where(ok, yh, 1.0), np.where(ok, yl, 0.0), err, fmt)
    out = np.where(nan, np.nan, np.where(zero, 0.0, c))
    for r in np.flatnonzero(~(decided & ok) & ~nan & ~zero):
        p, q = P[rows[r]].astype(np.float64).tolist(), Q[rows[r]].astype(np.float64).tolist()
        out[r] = rounded_row(kind, p, q, fmt)
    return out


def _sums_from_first_stage(kind: str, args, axis) -> bool:
    """Whether the validation's row sums can come from the first stage: every input is a C-contiguous
    float array (float16, bfloat16, float32; float64 too, of one format then, rows of at most
    ``COLS64`` entries) with ``axis`` its trailing axes, rows of ``1..TILE`` entries,
    and every entry in ``[0, 1]`` (checked here)."""
    if not all(isinstance(a, np.ndarray) and a.dtype in _FLOATS and a.flags.c_contiguous for a in args):
        return False
    if len({a.shape for a in args}) != 1:
        return False
    wide = result_format(*args).name == "float64"
    if wide and any(a.dtype != np.float64 for a in args):
        return False
    a0 = args[0]
    try:
        axes = normalize_axis(axis, a0.ndim)
    except Exception:
        return False
    if axes != tuple(range(a0.ndim - len(axes), a0.ndim)):
        return False
    n = int(np.prod([a0.shape[i] for i in axes], dtype=np.int64))
    if not 0 < n <= (COLS64 if wide else TILE):
        return False
    return all(entries_in_unit_interval(a, format_of(a.dtype)) for a in args)


_FLOATS = (np.dtype(np.float16), BFLOAT16, np.dtype(np.float32), np.dtype(np.float64))
_SLOW_TILE = 1 << 12  # entries per tile of the exact algorithm (every step is row by row)
_DECIDE_ROWS = 1 << 15  # rows per chunk (and per rounding decision of the narrow formats)


def _reduce(kind: str, args, names, axis, keepdims: bool, validate: bool) -> np.ndarray:
    deferred = validate and _sums_from_first_stage(kind, args, axis)
    if deferred:  # the entries are checked now, the sums by the first stage (the same numbers)
        arrays = [as_float_array(a, n) for a, n in zip(args, names)]
        if len(arrays) == 2:
            check_same_shape(arrays[0], arrays[1], names[0], names[1])
        fmt = result_format(*arrays)
        arrays = [a.astype(fmt.dtype, copy=False) for a in arrays]
    else:
        fmt, arrays, sums = prepared_distributions_with_sums(args, names, axis, validate)
    rows = [Rows(a, axis) for a in arrays]
    P = rows[0].rows
    Q = rows[-1].rows
    result = np.zeros(P.shape[0], dtype=fmt.dtype)
    mass = None  # float64 row sums of p (of p and q for sld_sym), from the validation
    if not deferred and all(s is not None for s in sums):
        mass = sums[0] + sums[-1] if kind == "sym" else sums[0]
    step = max(1, _SLOW_TILE // max(P.shape[1], 1))
    # chunks of rows: every per-row scratch array (masks, values, indices) has a chunk's length
    for c0 in range(0, P.shape[0], _DECIDE_ROWS):
        c1 = min(P.shape[0], c0 + _DECIDE_ROWS)
        Pc, Qc = P[c0:c1], Q[c0:c1]
        if deferred:
            stage = fast_rows64 if fmt.name == "float64" else functools.partial(fast_rows, fmt=fmt)
            decided, values, sp, sq = stage(kind, Pc, Qc, in_unit=True, sums=True)
            for a, s in zip(args, (sp, sq)):
                if (np.abs(s - 1.0) > sum_tolerance(a.dtype)).any():
                    for a2, n in zip(args, names):  # the first failing check raises, as it always did
                        check_probabilities(a2, axis, n)
        else:
            mc = None if mass is None else mass[c0:c1]
            if fmt.name == "float64":
                decided, values = fast_rows64(kind, Pc, Qc, in_unit=validate, mass=mc)
            else:
                decided, values = fast_rows(kind, Pc, Qc, fmt, in_unit=validate, mass=mc)
        out = result[c0:c1]
        out[decided] = values[decided]
        todo = np.flatnonzero(~decided)
        if fmt.name != "float64" and todo.size:  # one decision for the chunk; the values are in fmt
            out[todo] = round_from_float64(_reduce_rows_narrow(kind, Pc, Qc, todo, fmt, step), fmt)
            continue
        for i in range(0, todo.size, step):
            idx = todo[i : i + step]
            out[idx] = _reduce_rows64(kind, Pc[idx].astype(np.float64), Qc[idx].astype(np.float64))
    return np.asarray(rows[0].reduced(result, keepdims))


_NOTES_COMMON = """
    Special values follow :mod:`softlog_numerics.oracle`: with ``validate=False`` a row holding NaN
    or ``±inf`` gives NaN, and so does a softlog argument below the branch point ``-1/(e**2 - 1)``;
    an exact zero result (and an empty row) is ``+0``; rows whose softlogs are all ``L(0) = -1`` or
    ``L(1) = 1`` are summed exactly (:func:`math.fsum`) and rounded once. Rows in ``[0, 1]`` are
    usually decided by a faster first stage that returns the same bits (proofs/divergence.md,
    Theorems D10, D11).
"""


def softlog_entropy(p: ArrayLike, axis: Axis = -1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
    """Softlog entropy ``-sum_k p_k L(p_k)`` along ``axis``.

    Parameters
    ----------
    p : array_like
        Probability vectors along ``axis`` (float16, bfloat16, float32, float64; int/bool -> float64).
    axis : int, tuple of ints or None
        Axes reduced (default the last).
    keepdims : bool
        Keep the reduced axes with length one.
    validate : bool, keyword-only
        Check that ``p`` holds distributions (ValueError naming the first offending index).

    Returns
    -------
    numpy.ndarray
        In the dtype of ``p``. For a distribution over ``K`` classes the value lies in
        ``[-1, -L(1/K)]`` (proofs/divergence.md, Theorem D1).

    Notes
    -----
    Domain: finite ``p`` above ``-1/(e**2 - 1)``. Algorithm: double-double terms ``-p_k L(p_k)``
    (relative error below ``2**-63.9``), a scaled error-free row sum; float64: one rounding;
    float16, bfloat16, float32: a rounding test on the double-double sum and, for the rare rows
    it leaves, an exact decimal evaluation. Accuracy: ``ULP_BOUNDS["softlog_entropy"]`` = 0, 0,
    0 ULP in float16, bfloat16, float32 (correctly rounded, proofs/divergence.md, Theorem D12);
    float64 at most 4 ULP or, where the terms cancel, an absolute error at most
    ``4 * 2**-53 * sum_k |p_k L(p_k)|``, whichever is larger (Theorem D6; 1 ULP outside
    cancellation).
    """
    return _reduce("entropy", (p,), ("p",), axis, keepdims, validate)


def softlog_cross_entropy(
    p: ArrayLike, q: ArrayLike, axis: Axis = -1, keepdims: bool = False, *, validate: bool = True
) -> np.ndarray:
    """Softlog cross-entropy ``-sum_k p_k L(q_k)`` along ``axis``.

    Parameters
    ----------
    p, q : array_like
        Probability vectors of one shape; the result has their common format (NumPy promotion,
        float16 with bfloat16 gives float32).
    axis, keepdims, validate
        As for :func:`softlog_entropy` (both ``p`` and ``q`` are validated).

    Returns
    -------
    numpy.ndarray
        For distributions the value lies in ``[-1, 1]`` (proofs/divergence.md, Theorem D1).

    Notes
    -----
    Domain: finite ``p``; finite ``q`` above ``-1/(e**2 - 1)``. Algorithm as for
    :func:`softlog_entropy`. Accuracy: ``ULP_BOUNDS["softlog_cross_entropy"]``: correctly
    rounded in float16, bfloat16, float32 (proofs/divergence.md, Theorem D12); float64 at most 4
    ULP or an absolute error at most ``4 * 2**-53 * sum_k |p_k L(q_k)|``, whichever is larger
    (Theorem D6).
    """
    return _reduce("cross", (p, q), ("p", "q"), axis, keepdims, validate)


def sld(
    p: ArrayLike, q: ArrayLike, axis: Axis = -1, keepdims: bool = False, *, validate: bool = True
) -> np.ndarray:
    """Directed softlog divergence ``1/2 sum_k p_k (L(p_k) - L(q_k))`` along ``axis``.

    The softlog analogue of the Kullback-Leibler divergence. It is at most 1 (one-hot ``p`` on a
    class where ``q`` is 0) but it is *not* non-negative: for two classes its minimum is
    ``-0.0165...`` (proofs/divergence.md, Theorem D2).

    Parameters
    ----------
    p, q : array_like
        Probability vectors of one shape (common format as for :func:`softlog_cross_entropy`).
    axis, keepdims, validate
        As for :func:`softlog_entropy`.

    Returns
    -------
    numpy.ndarray

    Notes
    -----
    Domain: finite ``p`` and ``q`` above ``-1/(e**2 - 1)``. Algorithm: the difference
    ``L(p) - L(q) = log1p((e - 1/e)(p - q) / ((e - 1/e) q + 1/e))`` in double-double with ``p - q``
    exact, so nearly equal ``p`` and ``q`` lose nothing; then as :func:`softlog_entropy`.
    Accuracy: ``ULP_BOUNDS["sld"]``: correctly rounded in float16, bfloat16, float32
    (proofs/divergence.md, Theorem D12); float64 at most 4 ULP or an absolute error at most
    ``4 * 2**-53 * sum_k |p_k (L(p_k) - L(q_k))| / 2``, whichever is larger (Theorem D6).
    """
    return _reduce("sld", (p, q), ("p", "q"), axis, keepdims, validate)


def sld_sym(
    p: ArrayLike, q: ArrayLike, axis: Axis = -1, keepdims: bool = False, *, validate: bool = True
) -> np.ndarray:
    """Symmetric softlog divergence ``1/4 sum_k (p_k - q_k)(L(p_k) - L(q_k))`` along ``axis``.

    Every term is non-negative (``L`` is increasing). For distributions the value lies in
    ``[0, 1]``: 0 exactly when ``p == q``, 1 exactly for one-hots on different classes
    (proofs/divergence.md, Theorem D1); the floating-point result keeps these properties
    (Theorem D7): it is ``+0`` exactly when ``p == q``, never negative, and at most 1 whenever the
    entries of ``p`` and of ``q`` each sum to at most 1.

    Parameters
    ----------
    p, q : array_like
        Probability vectors of one shape (common format as for :func:`softlog_cross_entropy`).
    axis, keepdims, validate
        As for :func:`softlog_entropy`.

    Returns
    -------
    numpy.ndarray

    Notes
    -----
    Domain: finite ``p`` and ``q`` above ``-1/(e**2 - 1)``. Algorithm as for :func:`sld`, with
    ``p - q`` kept exactly as a double-double factor. Accuracy: ``ULP_BOUNDS["sld_sym"]``:
    correctly rounded in float16, bfloat16, float32 (proofs/divergence.md, Theorem D12); at most
    1 ULP in float64 (no cancellation is possible: a pure ULP bound; Theorem D5).
    """
    return _reduce("sym", (p, q), ("p", "q"), axis, keepdims, validate)


for _f in (softlog_entropy, softlog_cross_entropy, sld, sld_sym):
    if _f.__doc__ is None:  # python -OO strips docstrings
        continue
    _f.__doc__ = _f.__doc__.replace("    Notes\n    -----\n", "    Notes\n    -----" + _NOTES_COMMON, 1)
del _f
