"""Softlog entropy, cross-entropy and the softlog divergences ``sld`` and ``sld_sym``.

With ``L(x) = ln((e - 1/e) x + 1/e)`` (the softlog), along ``axis``:

* ``softlog_entropy(p)          = -sum_k p_k L(p_k)``
* ``softlog_cross_entropy(p, q) = -sum_k p_k L(q_k)``
* ``sld(p, q)                   = 1/2 sum_k p_k (L(p_k) - L(q_k))``
* ``sld_sym(p, q)               = 1/4 sum_k (p_k - q_k)(L(p_k) - L(q_k))``

One algorithm serves every format (proofs/divergence.md): each term is computed in float64 as a
double-double (an unevaluated sum ``hi + lo``) with a relative error below ``2**-63.9``, the terms of a
row are scaled by a power of two and added with error-free transformations (a pairwise tree of
TwoSum whose rounding errors are kept and added), and the row's sum is rounded once to float64 and,
for float16/bfloat16/float32, once more to the format with :func:`round_from_float64`.

The double-double softlog uses three evaluations, each free of cancellation where it is used:

* near ``x0 = 1/(e + 1)`` (where ``L`` vanishes), ``log1p(a (x - x0))`` with ``a = e - 1/e`` and
  ``a (x - x0) = a (x - X0[0]) - D0`` (constants of :mod:`softlog_numerics._core.constants`), and a
  series for ``log1p``;
* elsewhere ``log(a (x - x_b)) = log(a (x - XB[0]) - DB)`` with ``x_b = -1/(e**2 - 1)`` the branch
  point, by a table of 93 logarithms ``log(j/128)`` and the same series;
* differences ``L(h) - L(l) = log1p(a (h - l) / (a (l - x_b)))`` for ``h > l`` (the larger and
  the smaller of ``p`` and ``q``) with ``h - l`` exact (TwoSum), unless the ratio exceeds ``2**1000``,
  where ``L(h) - L(l)`` itself has no cancellation; ``L(p) - L(q)`` is then ``±`` that.
"""

from __future__ import annotations

import math

import numpy as np

from softlog_numerics._core import constants as _c
from softlog_numerics._core.axes import Rows, prepared_distributions
from softlog_numerics._core.eft import fast_two_sum, two_prod, two_sum
from softlog_numerics._core.formats import round_from_float64

__all__ = ["sld", "sld_sym", "softlog_cross_entropy", "softlog_entropy"]


# ---------------------------------------------------------------------------------------------
# Constants. a = e - 1/e, x0 = 1/(e + 1) and the branch point x_b = -1/(e**2 - 1) are the pairs of
# softlog_numerics._core.constants, with D0 = a (x0 - X0[0]) and DB = a (x_b - XB[0]) so that
# a (x - x0) = a (x - X0[0]) - D0 and a (x - x_b) = a (x - XB[0]) - DB with x - X0[0], x - XB[0]
# exact (TwoSum). ln 2 (_LN2_HI with 42 significant bits: k * _LN2_HI exact for |k| < 2**11) and the
# table log(j/128) for the reduced argument m in [sqrt(1/2), sqrt(2)) are literals of _constants.

_LN2_HI, _LN2_LO = _c.LN2
_J0, _J1 = _c.LOG_J0, _c.LOG_J1
_A_HI, _A_LO = _c.A
_LOGC_HI = np.array([hi for hi, _ in _c.LOG_TABLE])
_LOGC_LO = np.array([lo for _, lo in _c.LOG_TABLE])
_SQRT_HALF = 0.7071067811865476
_TAU = 2.0**-8  # series for log1p(r) when |r| <= _TAU (and |r| <= 0.00553 after the table reduction)
_HUGE = 2.0**990  # softlog arguments at least this large are scaled by 2**-64 first (Dekker's split
# needs its argument below 2**996)
_BIG = 2.0**500  # differences L(p) - L(q) with max(|p|, |q|) at least this large are scaled by 2**-600
# log1p(r) = r - r**2/2 + r**3 * (1/3 - r/4 + ... - r**7/10): the float64 tail coefficients
_TAIL = tuple((-1.0) ** (n + 1) / n for n in range(3, 11))


# ---------------------------------------------------------------------------------------------
# Double-double kernels on 1-D float64 arrays.


def _mul_a(h, l):
    """``(e - 1/e) * (h + l)`` as a double-double."""
    p, e = two_prod(_A_HI, h)
    return fast_two_sum(p, e + (_A_HI * l + _A_LO * h))


def _centred(x, centre, d, scale=1.0):
    """``a (x - c)`` as a double-double, for the centre ``c`` with float64 part ``centre[0]`` and
    ``d = a (c - centre[0])`` (a pair): ``a (x - centre[0]) - d`` with ``x - centre[0]`` exact.
    ``scale`` (a power of two, per element) multiplies ``x`` and the constants first."""
    sh, sl = two_sum(x * scale, -centre[0] * scale)
    th, tl = _mul_a(sh, sl)
    s, e = two_sum(th, -d[0] * scale)
    return fast_two_sum(s, (e + tl) - d[1] * scale)


def _div_dd(nh, nl, dh, dl):
    """``(nh + nl) / (dh + dl)`` as a double-double (one Newton correction of ``nh / dh``)."""
    q = nh / dh
    p, e = two_prod(q, dh)
    rem = (((nh - p) - e) + nl) - q * dl
    return fast_two_sum(q, rem / dh)


def _log1p_series(rh, rl):
    """``log1p(rh + rl)`` for ``|rh| <= 0.00553``: ``r - r**2/2`` in double-double, the rest in float64."""
    qh, ql = two_prod(rh, rh)
    ql = ql + 2.0 * rh * rl
    s, e = two_sum(rh, -0.5 * qh)
    poly = _TAIL[-1]
    for c in _TAIL[-2::-1]:
        poly = poly * rh + c
    tail = (rh * qh) * poly
    lo = (e + (rl - 0.5 * ql)) + tail
    return fast_two_sum(s, lo)


def _log_dd(ah, al, k0):
    """``log(ah + al) + k0 * ln 2`` for ``ah > 0`` normal: ``ah = 2**k m``, ``m = c (1 + r)`` with
    ``c = j/128`` the nearest table point, so ``log = k ln2 + log c + log1p(r)``, ``|r| <= 0.00553``."""
    m, k = np.frexp(ah)
    low = m < _SQRT_HALF
    m = np.where(low, 2.0 * m, m)
    k = np.where(low, k - 1, k)
    ml = np.ldexp(al, -k)
    j = np.rint(m * 128.0)
    c = j / 128.0
    dh, dl = two_sum(m - c, ml)  # m - c is exact (Sterbenz)
    rh = dh / c
    ph, pl = two_prod(rh, c)
    rl = (((dh - ph) - pl) + dl) / c
    rh, rl = fast_two_sum(rh, rl)
    sh, sl = _log1p_series(rh, rl)
    idx = j.astype(np.intp) - _J0
    kf = (k + k0).astype(np.float64)
    s1, e1 = two_sum(kf * _LN2_HI, _LOGC_HI[idx])
    s2, e2 = two_sum(s1, sh)
    lo = ((e1 + e2) + (kf * _LN2_LO + _LOGC_LO[idx])) + sl
    return fast_two_sum(s2, lo)


def _log1p_dd(rh, rl):
    """``log1p(rh + rl)`` as a double-double for ``rh + rl > -1`` (finite)."""
    hi = np.empty_like(rh)
    lo = np.empty_like(rh)
    small = np.abs(rh) <= _TAU
    if small.any():
        hi[small], lo[small] = _log1p_series(rh[small], rl[small])
    big = ~small
    if big.any():
        ah, al = two_sum(1.0, rh[big])
        ah, al = fast_two_sum(ah, al + rl[big])
        hi[big], lo[big] = _log_dd(ah, al, 0)
    return hi, lo


def _softlog_arg(x):
    """``A(x)/2**k0 = a (x - x_b) / 2**k0`` as a double-double and ``k0`` (64 for ``|x| >= 2**1000``)."""
    huge = np.abs(x) >= _HUGE
    k0 = np.where(huge, 64, 0)
    ah, al = _centred(x, _c.XB, _c.DB, np.where(huge, 2.0**-64, 1.0))
    return ah, al, k0


def _softlog_dd(x):
    """``L(x)`` as a double-double for finite ``x`` above the branch point; ``L(0) = -1`` and
    ``L(1) = 1`` exactly. Relative error below ``2**-64`` (proofs/divergence.md, Theorem D3)."""
    x = np.asarray(x, dtype=np.float64)
    hi = np.empty_like(x)
    lo = np.zeros_like(x)
    zero, one = x == 0.0, x == 1.0
    hi[zero], hi[one] = -1.0, 1.0
    todo = ~(zero | one)
    near = todo & (np.abs(x - _c.X0[0]) <= 2.0**-9)
    if near.any():
        th, tl = _centred(x[near], _c.X0, _c.D0)
        centred = np.abs(th) <= _TAU
        idx = np.flatnonzero(near)[centred]
        hi[idx], lo[idx] = _log1p_series(th[centred], tl[centred])
        todo[idx] = False
    if todo.any():
        ah, al, k0 = _softlog_arg(x[todo])
        hi[todo], lo[todo] = _log_dd(ah, al, k0)
    return hi, lo


_RATIO_HIGH = 2.0**1000


def _softlog_diff_dd(p, q):
    """``L(p) - L(q)`` as a double-double for ``p != q`` finite above the branch point.

    With ``h = max(p, q)``, ``l = min(p, q)``: ``L(h) - L(l) = log1p(r)``, ``r = a (h - l) / A(l) >= 0``
    with ``h - l`` exact, where ``r <= 2**1000``; ``L(h) - L(l)`` from two double-double softlogs
    otherwise (then it exceeds 693 while ``|L(l)| < 40``); negated when ``p < q``. So ``D(q, p) = -D(p, q)`` exactly, the
    sign of ``D`` is the sign of ``p - q``, and ``{p, q} = {0, 1}`` gives ``±2`` exactly
    (proofs/divergence.md, Theorem D4).
    Arguments of ``2**500`` and more are scaled by ``2**-600`` first (``r`` does not change).
    """
    swap = p < q
    h, l = np.where(swap, q, p), np.where(swap, p, q)
    hi = np.empty_like(p)
    lo = np.zeros_like(p)
    exact = (h == 1.0) & (l == 0.0)
    hi[exact] = 2.0
    todo = ~exact
    ratio = np.zeros_like(todo)
    if todo.any():
        # r is invariant under scaling h, l and x_b by one power of two: keep a (h - l) and A(l)
        # below Dekker's limit
        scale = np.where(np.abs(h[todo]) >= _BIG, 2.0**-600, 1.0)
        ht, lt = h[todo] * scale, l[todo] * scale
        dh, dl = two_sum(ht, -lt)
        nh, nl = _mul_a(dh, dl)
        ah, al = _centred(l[todo], _c.XB, _c.DB, scale)
        with np.errstate(over="ignore", invalid="ignore"):
            rh, rl = _div_dd(nh, nl, ah, al)
            ok = rh <= _RATIO_HIGH
        idx = np.flatnonzero(todo)[ok]
        ratio[idx] = True
        hi[idx], lo[idx] = _log1p_dd(rh[ok], rl[ok])
    direct = ~(exact | ratio)
    if direct.any():
        ph, pl = _softlog_dd(h[direct])
        qh, ql = _softlog_dd(l[direct])
        s, e = two_sum(ph, -qh)
        hi[direct], lo[direct] = fast_two_sum(s, e + (pl - ql))
    return np.where(swap, -hi, hi), np.where(swap, -lo, lo)


def _below_branch(x):
    """``a x + 1/e < 0`` (``L(x)`` is NaN), decided exactly for float64 ``x`` (NaN gives False)."""
    x = np.asarray(x, dtype=np.float64)
    out = x < -0.16
    mid = (x >= -0.16) & (x <= -0.15)
    if mid.any():
        h, _ = _centred(x[mid], _c.XB, _c.DB)
        out[mid] = h < 0.0
    return out


# ---------------------------------------------------------------------------------------------
# Sums of double-double terms, row by row.


def _sum_rows(hi, lo):
    """Row sums of ``hi + lo`` (2-D) as ``(s, err)``: a pairwise tree of TwoSum over ``hi`` whose
    rounding errors are collected, with the ``lo`` parts, in ``err``."""
    err = lo.sum(axis=1)
    while hi.shape[1] > 1:
        if hi.shape[1] % 2:
            hi = np.concatenate([hi, np.zeros((hi.shape[0], 1))], axis=1)
        s, e = two_sum(hi[:, 0::2], hi[:, 1::2])
        err = err + e.sum(axis=1)
        hi = s
    s = hi[:, 0] if hi.shape[1] else np.zeros(hi.shape[0])
    return s, err


_NO_EXP = -(1 << 20)


def _dot_rows(mh, ml, gh, gl, shift: int):
    """``2**shift * sum_k (mh + ml)(gh + gl)`` per row, rounded to float64 once (``+0`` for zero).

    Each row is scaled by ``2**sigma`` so that its largest term lies in ``[1/4, 1)`` (no overflow,
    and underflow only in terms ``2**-1020`` times smaller than the largest); the scale is removed
    from the float64 sum by one ``ldexp``.
    """
    rows = mh.shape[0]
    if mh.shape[1] == 0:
        return np.zeros(rows)
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
    sh, sl = _sum_rows(th, tl)
    v = (sh + sl) + 0.0
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(v, (-sigma).astype(np.int32))


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
        gh[live], gl[live] = _softlog_dd(arg[live])
        return mh, ml, gh, gl, 0
    if kind == "sld":
        live = (p != 0.0) & (p != q)
        mh, ml, shift = np.where(live, p, 0.0), np.zeros_like(p), -1
    else:  # sym
        live = p != q
        mh, ml = two_sum(p, -q)
        mh, ml, shift = np.where(live, mh, 0.0), np.where(live, ml, 0.0), -2
    gh, gl = np.zeros_like(p), np.zeros_like(p)
    gh[live], gl[live] = _softlog_diff_dd(p[live], q[live])
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


def _reduce(kind: str, args, names, axis, keepdims: bool, validate: bool) -> np.ndarray:
    fmt, arrays = prepared_distributions(args, names, axis, validate)
    rows = [Rows(a.astype(np.float64), axis) for a in arrays]
    P = rows[0].rows
    Q = rows[-1].rows
    out = np.zeros(P.shape[0])
    finite = np.isfinite(P).all(axis=1) & np.isfinite(Q).all(axis=1)
    evaluated = {"entropy": [P], "cross": [Q], "sld": [P, Q], "sym": [P, Q]}[kind]
    bad = ~finite
    for a in evaluated:
        bad |= _below_branch(np.where(np.isfinite(a), a, 0.0)).any(axis=1)
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
    result = out if fmt.name == "float64" else round_from_float64(out, fmt)
    return np.asarray(rows[0].reduced(np.asarray(result, dtype=fmt.dtype), keepdims))


_NOTES_COMMON = """
    Special values follow :mod:`softlog_numerics.oracle`: with ``validate=False`` a row holding NaN
    or ``±inf`` gives NaN, and so does a softlog argument below the branch point ``-1/(e**2 - 1)``;
    an exact zero result (and an empty row) is ``+0``; rows whose softlogs are all ``L(0) = -1`` or
    ``L(1) = 1`` are summed exactly (:func:`math.fsum`) and rounded once.
"""


def softlog_entropy(p, axis=-1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
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
    (relative error below ``2**-63.9``), a scaled error-free row sum, one rounding to float64 and
    one to the format. Accuracy: at most ``ULP_BOUNDS["softlog_entropy"]`` = 1, 1, 1, 4 ULP
    (float16, bfloat16, float32, float64), or, where the terms cancel, an absolute error at most
    ``4 * 2**-53 * sum_k |p_k L(p_k)|``, whichever is larger; proven in proofs/divergence.md,
    Theorem D6 (the proof gives 1 ULP in every format outside cancellation).
    """
    return _reduce("entropy", (p,), ("p",), axis, keepdims, validate)


def softlog_cross_entropy(p, q, axis=-1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
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
    :func:`softlog_entropy`. Accuracy: at most ``ULP_BOUNDS["softlog_cross_entropy"]`` = 1, 1, 1, 4
    ULP, or an absolute error at most ``4 * 2**-53 * sum_k |p_k L(q_k)|``, whichever is larger;
    proven in proofs/divergence.md, Theorem D6.
    """
    return _reduce("cross", (p, q), ("p", "q"), axis, keepdims, validate)


def sld(p, q, axis=-1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
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
    Accuracy: at most ``ULP_BOUNDS["sld"]`` = 1, 1, 1, 4 ULP, or an absolute error at most
    ``4 * 2**-53 * sum_k |p_k (L(p_k) - L(q_k))| / 2``, whichever is larger; proven in
    proofs/divergence.md, Theorem D6.
    """
    return _reduce("sld", (p, q), ("p", "q"), axis, keepdims, validate)


def sld_sym(p, q, axis=-1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
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
    ``p - q`` kept exactly as a double-double factor. Accuracy: at most ``ULP_BOUNDS["sld_sym"]``
    = 1 ULP in every format (no cancellation is possible: a pure ULP bound); proven in
    proofs/divergence.md, Theorem D5.
    """
    return _reduce("sym", (p, q), ("p", "q"), axis, keepdims, validate)


for _f in (softlog_entropy, softlog_cross_entropy, sld, sld_sym):
    _f.__doc__ = _f.__doc__.replace("    Notes\n    -----\n", "    Notes\n    -----" + _NOTES_COMMON, 1)
del _f
