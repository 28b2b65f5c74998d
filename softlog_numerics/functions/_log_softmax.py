"""``logsumexp``, ``log_softmax`` and ``softmax`` along an axis, in float16, bfloat16, float32 and
float64, NumPy only.

Algorithm (Blanchard, Higham & Mary 2021, shifted form with the maximum pulled out of the sum):
for a row ``x`` with maximum ``a = x[k]``,

* ``s = sum_{i != k} exp(x_i - a)`` (one maximal entry ``k`` is excluded; ties add ``exp(0) = 1``),
* ``logsumexp = a + log1p(s)``, ``log_softmax_j = (x_j - a) - log1p(s)``,
  ``softmax_j = exp(x_j - a) / (1 + s)``.

``log1p`` at the argmax removes the cancellation of ``log(1 + s)`` when one class dominates (the
three-pass ``(x - a) - log(sum exp(x - a))`` returns 0 there), and ``(x_j - a) - log1p(s)`` adds
two non-positive terms: log_softmax never cancels. The rest is about rounding errors
(proofs/log_softmax.md):

* **float16, bfloat16, float32** (log_softmax, softmax): float64 evaluation and one final rounding
  (``round_from_float64`` for bfloat16); every float64 error is below ``2**-36`` relative, so the
  result is faithful (Theorem LSE5 there), and a rounding test on each value with a proven radius
  makes it correctly rounded: the rare undecided elements are recomputed (Theorems LSE10, LSE11).
* **float64**: ``s`` comes from ``exp(x_i)`` times a double-double ``exp(-a)`` when the row
  maxima are at most 650 ("direct mode": the argument of ``exp`` is exact), else from
  ``exp(t_i) (1 + t_lo_i)`` with ``x_i - a = t_i + t_lo_i`` split exactly ("shifted mode"). The
  sum is error-free in its high part (Rump-Ogita-Oishi extraction on a power-of-two grid) in tiles
  that stay in cache, ``log1p(s)`` is a double-double (a Newton step on a double-double
  ``expm1``), log_softmax rounds ``x_j - A`` with ``A = a + log1p(s)`` a double-double, and
  softmax multiplies ``exp`` by a double-double row factor with exact partial products and one
  final rounding (:func:`scaled_softmax` folds a factor per row into it, for the logsumexp VJP).
* **logsumexp** in the narrow formats first tries the float64 evaluation of narrow log_softmax,
  with its proven bound and a rounding test (Theorem LSE2 (c)).
* **logsumexp** (every format) can cancel (``a < 0`` and ``a + log1p(s) ~ 0``): a row's result is
  returned only when a rigorous error bound proves it within the contract (Ziv's test; in the
  narrow formats the contract is correct rounding: both ends of the error interval must round to
  the same value); otherwise the row is recomputed with double-double exponentials and, if still
  undecided, exactly with :mod:`decimal`.

Rows are processed in tiles of at most ``_TILE`` elements with preallocated buffers (``_SUB_TILE``
elements for short rows: cache-resident, below malloc's mmap threshold): besides the output, the
extra memory is at most about 4 MiB whatever the input size.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics._core import constants as _c
from softlog_numerics._core.axes import Axis, Rows, checked_temperature
from softlog_numerics._core.dd import dd_div_scalar, dd_mul
from softlog_numerics._core.eft import (
    SHORT_ROW,
    blocked_row_sums,
    fast_two_sum,
    grid_split_sums,
    nonnegative_row_sums,
    short_row_sums,
    split,
    two_prod,
    two_sum,
)
from softlog_numerics._core.exp_dd import (
    INV_LN2,
    LN2_1,
    LN2_2,
    LN2_3,
    dd_add_const_into,
    dd_mul_into,
    exp_dd,
    expm1_core,
    expm1_dd,
    log1p_dd,
    reduce_ln2,
)
from softlog_numerics._core.formats import (
    Format,
    as_float_array,
    format_of,
    round_from_float64,
)
from softlog_numerics._core.rounding import (
    decided_dd,
    fraction_bits,
    midpoint_radius_flags,
    rounded_fraction,
    rounded_if_decided,
    rounds_once,
)

__all__ = ["log_softmax", "logsumexp", "softmax"]

# ---------------------------------------------------------------------------------------------
# Constants. Every threshold here is analysed in proofs/log_softmax.md (section "Thresholds").

_U = 2.0**-53  # unit roundoff of float64
_LAMBDA_EXP = 1.25  # hypothesis H_exp: |np.exp(x) / e**x - 1| <= 1.25 u for normal results
#                     (measured 1.146 u, i.e. 0.72 ULP at most; Theorem LSE0)
_C1 = _LAMBDA_EXP + 0.1  # relative error of s in units of u (Theorem LSE1)
_TAU_TERMS = 2.0**-92  # a temperature: extra relative error of s from the offsets (x_i - a)/T (LSE9)
_TAU_DIV = 2.0**-102  # ... and of the double-double a/T, relative (Theorem LSE9 (a))
_DD_REL = 2.0**-97  # relative error bound of the double-double exp/log1p (measured 2**-103.6)
_TINY_S = 2.0**-900  # below: s is recomputed without float64 underflow (Theorem LSE1 (c))
_DIRECT_MAX = 650.0  # direct mode (exp(x_i), then times exp(-a)) for row maxima up to this
_DIRECT_MIN = 2.0**-1010  # ... and only if sum_{i != k} exp(x_i) >= n * _DIRECT_MIN
_DIRECT_MIN_COLS = 24  # ... and only for rows of at least this many entries (shorter: shifted)
_NUDGE_L = 2.0**-20  # narrow log_softmax: rows with log1p(s) below this get T (1 + 2**-52)
_NUDGE = 1.0 + 2.0**-52
_C_MAX = 1 << 15  # columns per chunk: the error-free sum's bound needs c <= 2**15
_TILE = 1 << 17  # elements per block of rows (the unit of the direct/shifted decision)
_SUB_TILE = 15 << 10  # short rows: elements per sub-tile (scratch of 120 KiB per buffer: below
#                       malloc's mmap threshold, so no fresh pages per call, and cache-resident)
_SHORT_N = 2048  # rows of at most this many columns are processed in sub-tiles
_GROUP = 1 << 24  # elements per group of rows whose row scalars are computed together
_SPLITTER = 134217729.0  # 2**27 + 1
_SOFTMAX_SCALE = 2.0**100  # float64 softmax works 2**100 times too large (Theorem LSE4 (c))
_INV_LN2, _LN2_1, _LN2_2, _LN2_3 = INV_LN2, LN2_1, LN2_2, LN2_3  # (in _core/exp_dd.py)
_INV_FACT = _c.INV_FACTORIALS  # 1/i! as double-doubles, i = 0 .. 10

_NORMAL, _SINGLE, _TINY, _NAN, _PINF, _NINF = 0, 1, 2, 3, 4, 5

# ---------------------------------------------------------------------------------------------
# Double-double arithmetic on float64 arrays (row scalars, and the rare rows of the slow paths).


# The kernels live in softlog_numerics._core.exp_dd (the oracle uses them too); their names here:
_expm1_core, _dd_mul_into, _dd_add_const_into = expm1_core, dd_mul_into, dd_add_const_into
_reduce_ln2, _exp_dd, _expm1_dd, _log1p_dd = reduce_ln2, exp_dd, expm1_dd, log1p_dd


# ---------------------------------------------------------------------------------------------
# Correct rounding of an exact rational (for the decimal fallback).


# ---------------------------------------------------------------------------------------------
# Tiling.


class _Plan:
    """Row groups, row blocks and column chunks of an ``R x n`` array (``n >= 1``)."""

    def __init__(self, R: int, n: int, narrow: bool, extra: int = 0, tau: float | None = None):
        self.R, self.n = R, n
        self.tau = tau  # the temperature (None: 1); with one, direct mode is never used
        self.direct = tau is None and n >= _DIRECT_MIN_COLS
        self.cw = min(n, _C_MAX)
        self.single = n <= _C_MAX
        self.rb = max(1, _TILE // self.cw)
        # rows per sub-tile: blocks (decisions per block) are processed in sub-tiles of srb rows
        self.srb = self.rb if n > _SHORT_N else max(1, min(self.rb, _SUB_TILE // self.cw))
        self.G = max(self.rb, (_GROUP // n) // self.rb * self.rb)
        size = min(self.srb, R) * self.cw  # no sub-tile has more rows than R
        self._qr = np.empty(2 * size)  # T and LO, adjacent so that one reduction sums both
        self._bufs = [np.empty(size) for _ in range(1 + extra + (1 if narrow else 0))]
        self.narrow = narrow
        self._views: dict[tuple[int, int], tuple[np.ndarray, tuple[np.ndarray, ...]]] = {}
        self._ar = np.arange(max(self.rb, self.srb))

    def groups(self):
        for g0 in range(0, self.R, self.G):
            yield g0, min(self.R, g0 + self.G)

    def blocks(self, g0, g1):
        for r0 in range(g0, g1, self.rb):
            yield r0, min(g1, r0 + self.rb)

    def subs(self, r0, r1):
        """Sub-tiles of the block ``r0:r1`` (the scratch buffers hold one)."""
        for s0 in range(r0, r1, self.srb):
            yield s0, min(r1, s0 + self.srb)

    def sub_blocks(self, g0, g1):
        for r0, r1 in self.blocks(g0, g1):
            yield from self.subs(r0, r1)

    def chunks(self):
        for c0 in range(0, self.n, self.cw):
            yield c0, min(self.n, c0 + self.cw)

    def bufs(self, m: int, c: int):
        """Scratch views of shape ``(m, c)``: ``(T, LO, E, [extra...], [X64 for narrow input])``;
        ``qr(m, c)`` is ``T`` and ``LO`` stacked as one ``(2, m, c)`` array."""
        key = (m, c)
        if key not in self._views:
            QR = self._qr[: 2 * m * c].reshape(2, m, c)
            self._views[key] = (QR, (QR[0], QR[1]) + tuple(b[: m * c].reshape(m, c) for b in self._bufs))
        return self._views[key][1]

    def qr(self, m: int, c: int):
        self.bufs(m, c)
        return self._views[(m, c)][0]

    def ar(self, m: int):
        return self._ar[:m]

    def tile(self, X, r0, r1, c0, c1):
        """``X[r0:r1, c0:c1]`` as float64 (a view for float64 input, a converted copy otherwise)."""
        t = X[r0:r1, c0:c1]
        if not self.narrow:
            return t
        buf = self._bufs[-1][: t.size].reshape(t.shape)
        np.copyto(buf, t, casting="unsafe")  # exact: every narrow value is a float64
        return buf


def _argmax_rows(plan: _Plan, X, r0, r1):
    """``(a, k)``: row maximum (NaN if the row holds a NaN) and one column where it is reached."""
    m = r1 - r0
    ar = np.arange(m)
    a = np.full(m, -np.inf)
    k = np.zeros(m, dtype=np.int64)
    for c0, c1 in plan.chunks():
        xt = plan.tile(X, r0, r1, c0, c1)
        kc = xt.argmax(axis=1)
        vc = xt[ar, kc]
        better = (vc > a) | (np.isnan(vc) & ~np.isnan(a))
        a[better] = vc[better]
        k[better] = kc[better] + c0
    return a, k


# ---------------------------------------------------------------------------------------------
# The temperature: offsets divided by T in double-double (_core.dd.dd_div_scalar).


def _divided_offsets(x, a, th, tl, tau: float):
    """``(x - a) / tau`` as a double-double from the exact split ``th + tl = x - a`` (``th`` infinite
    where ``x - a`` overflows float64 though ``x`` and ``a`` are finite: those are recomputed from
    ``x/2 - a/2``, exact halves, so that ``T > 1`` brings them back into range)."""
    over = np.isinf(th) & np.isfinite(x)
    h, l = dd_div_scalar(th, tl, tau)
    if over.any():
        aa = np.broadcast_to(a, x.shape)[over]
        hh, ll = dd_div_scalar(*two_sum(0.5 * x[over], -0.5 * aa), tau)
        hh = 2.0 * hh
        h[over] = hh
        l[over] = np.where(np.isinf(hh), 0.0, 2.0 * ll)
    return h, l


def _shift_tile(xt, a2, T, tau):
    """``T = fl(x - a)``, then divided by the temperature in float64 when there is one (the narrow
    formats' evaluation, Theorem LSE9 (c))."""
    np.subtract(xt, a2, out=T)
    if tau is not None:
        T /= tau


# ---------------------------------------------------------------------------------------------
# float64 kernels. They run under np.errstate(all="ignore"): rows holding NaN or infinities
# produce garbage that is overwritten by the special-value table.


def _two_sum_tile(xt, a2, T, LO, E):
    """``T = fl(x - a)`` and ``LO = (x - a) - T`` exactly (0 where ``T`` is not finite).

    Fast2Sum(-a, x) when every ``|x| < 2**(e_a + 1)`` (exponent of x <= exponent of a), Fast2Sum(x, -a)
    when ``a <= 0`` (then ``|x| >= |a|``), Knuth's TwoSum otherwise (Theorem LSE1 (a)).
    """
    np.subtract(xt, a2, out=T)
    af = a2[:, 0].tolist()
    mn = float(xt.min())
    clean = math.isfinite(mn) and all(map(math.isfinite, af))
    amin, amax = (min(af), max(af)) if clean else (0.0, 0.0)
    if clean and amax <= 0.0:
        np.subtract(T, xt, out=LO)
        np.add(LO, a2, out=LO)
        np.negative(LO, out=LO)  # (-a) - (T - x)
        return
    if clean and amin > 0.0 and amax < 2.0**1021 and mn > -math.ldexp(1.0, math.frexp(amin)[1]):
        np.add(T, a2, out=LO)
        np.subtract(xt, LO, out=LO)  # x - (T + a)
        return
    np.subtract(T, xt, out=LO)  # bb = T - x
    np.subtract(T, LO, out=E)  # T - bb
    np.subtract(xt, E, out=E)  # x - (T - bb)
    np.add(LO, a2, out=LO)  # bb + a
    np.subtract(E, LO, out=LO)  # (x - (T - bb)) + ((-a) - bb)
    np.copyto(LO, 0.0, where=~np.isfinite(LO))


def _exact_sum_tile(E, QR, LO=None):
    """Per row ``(q, r)``: ``q`` the exact sum of the high parts of ``E`` on a power-of-two grid
    and ``r`` the float64 sum of the low parts (:func:`grid_split_sums`), plus ``sum(E * LO)``
    (the first-order exp correction) when ``LO`` is given. ``QR`` (shape ``(2,) + E.shape``) is
    scratch and may hold ``LO`` in ``QR[1]``: it is read first (Theorem LSE1 (b))."""
    corr = np.einsum("ij,ij->i", E, LO) if LO is not None else None
    q, r = grid_split_sums(E, QR)
    if corr is not None:
        r += corr
    return q, r


def _direct_ok(ab) -> bool:
    """Direct mode for a tile: no finite row maximum above _DIRECT_MAX (so exp(x) stays finite and
    the sums far from overflow)."""
    return not bool(((ab > _DIRECT_MAX) & (ab < math.inf)).any())


def _stats_tile(plan: _Plan, xt, ab, kb, inside, direct: bool):
    """``(q, r)`` of one tile: the sum over its columns, except the argmax, of ``exp(x_i)`` (direct
    mode) or of ``exp(x_i - a)`` (shifted mode, with the exact split of ``x_i - a``). ``inside``
    selects the rows whose argmax column ``kb`` lies in the tile (None: all)."""
    m, c = xt.shape
    T, LO, E = plan.bufs(m, c)[:3]
    if direct:
        np.exp(xt, out=E)
    else:
        _two_sum_tile(xt, ab[:, None], T, LO, E)
        if plan.tau is not None:
            T[...], LO[...] = _divided_offsets(xt, ab[:, None], T, LO, plan.tau)
        np.exp(T, out=E)
    if inside is None:
        E[plan.ar(m), kb] = 0.0
    else:
        rows = np.flatnonzero(inside)
        E[rows, kb[rows]] = 0.0
    return _exact_sum_tile(E, plan.qr(m, c), None if direct else LO)


def _stats_accurate(
    plan: _Plan, X, g0, g1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row maxima ``a``, argmax ``k``, a flag ``direct`` and a double-double ``sh + sl``: in direct
    mode ``sum_{i != k} exp(x_i)``, in shifted mode ``s = sum_{i != k} exp(x_i - a)``."""
    G = g1 - g0
    a = np.empty(G)
    k = np.empty(G, dtype=np.int64)
    direct = np.empty(G, dtype=bool)
    sh = np.zeros(G)
    sl = np.zeros(G)
    for r0, r1 in plan.blocks(g0, g1):
        m = r1 - r0
        i0, i1 = r0 - g0, r1 - g0
        if plan.single:
            # the argmax of every row of the block first (the direct mode is decided per block),
            # then the sums, sub-tile by sub-tile (the same row-wise operations)
            kb = np.empty(m, dtype=np.int64)
            ab = np.empty(m)
            subs = list(plan.subs(r0, r1))
            for s0, s1 in subs:
                xt = plan.tile(X, s0, s1, 0, plan.n)
                ks = xt.argmax(axis=1)
                kb[s0 - r0 : s1 - r0] = ks
                ab[s0 - r0 : s1 - r0] = xt[plan.ar(s1 - s0), ks]
            d = plan.direct and _direct_ok(ab)
            for s0, s1 in subs:
                if len(subs) > 1:
                    xt = plan.tile(X, s0, s1, 0, plan.n)
                j0, j1 = s0 - r0, s1 - r0
                sh[i0 + j0 : i0 + j1], sl[i0 + j0 : i0 + j1] = _stats_tile(plan, xt, ab[j0:j1], kb[j0:j1], None, d)
        else:
            ab, kb = _argmax_rows(plan, X, r0, r1)
            d = plan.direct and _direct_ok(ab)
            qh = np.zeros(m)
            ql = np.zeros(m)
            for c0, c1 in plan.chunks():
                xt = plan.tile(X, r0, r1, c0, c1)
                inside = (kb >= c0) & (kb < c1)
                q, r = _stats_tile(plan, xt, ab, kb - c0, inside, d)
                qh, e = two_sum(qh, q)
                ql += e + r
            sh[i0:i1], sl[i0:i1] = qh, ql
        a[i0:i1] = ab
        k[i0:i1] = kb
        direct[i0:i1] = d
    sh, sl = two_sum(sh, sl)
    return a, k, direct, sh, sl


def _scaled_sum_row(row, a: float, k: int, tau: float | None = None):
    """``sum_{i != k, x_i finite} exp((x_i - a) / T)`` as ``2**K (Sh + Sl)`` with double-double
    exponentials and an exact sum (math.fsum): no underflow, relative error ``< 2**-100``
    (``< 2**-91`` with a temperature ``T``, Theorem LSE9 (b))."""
    keep = np.isfinite(row)
    keep[k] = False
    xs = row[keep]
    th, tl = two_sum(xs, np.full(xs.shape, -a))
    if tau is not None:
        th, tl = _divided_offsets(xs, a, th, tl, tau)
    ok = np.isfinite(th) & (th > -(2.0**20))  # below: exp < 2**-1.5e6, far below every bound
    th, tl = th[ok], tl[ok]
    if th.size == 0:
        return 0, 0.0, 0.0
    kk, mh, ml = _exp_dd(th, tl)
    K = int(kk.max())
    terms = np.concatenate([np.ldexp(mh, kk - K), np.ldexp(ml, kk - K)]).tolist()
    Sh = math.fsum(terms)
    Sl = math.fsum(terms + [-Sh])
    return K, Sh, Sl


def _kept_offsets(rows, a, k, tau: float | None = None):
    """``x_i - a = th + tl`` exactly (TwoSum, per row of ``rows``; with a temperature ``tau``, the
    double-double quotient of :func:`_divided_offsets`) and the mask of the terms that count:
    finite, not the argmax ``k``, and ``th > -2**20`` (below, ``exp`` is under ``2**-1.5e6``, far
    below every bound; as :func:`_scaled_sum_row`)."""
    th, tl = two_sum(rows, -a[:, None])
    if tau is not None:
        th, tl = _divided_offsets(rows, a[:, None], th, tl, tau)
    keep = np.isfinite(rows) & np.isfinite(th) & (th > -(2.0**20))
    keep[np.arange(rows.shape[0]), k] = False
    return th, tl, keep


def _one_term_rows(X, g0, a, k, redo, kind, sh, sl, recomputed) -> None:
    """:func:`_scaled_sum_row` for the rows to redo whose sum has one term or none (two-class rows
    with a gap beyond the underflow, the common case), vectorised: the same bits, as
    ``fsum([mh, ml])`` and its residual are ``two_sum(mh, ml)`` and ``K`` is the term's exponent.
    In place; marks those rows in ``recomputed`` (and ``kind``)."""
    r = np.flatnonzero(redo)
    rows = np.asarray(X[g0 + r], dtype=np.float64)
    fin = np.isfinite(rows)
    th, tl, keep = _kept_offsets(rows, a[r], k[r])
    count = keep.sum(axis=1)
    many = fin.sum(axis=1) > 1  # else the loop marks the row _SINGLE
    none = np.flatnonzero(many & (count == 0))
    sh[r[none]] = sl[r[none]] = 0.0
    kind[r[none]] = _TINY
    recomputed[r[none]] = True
    one = np.flatnonzero(many & (count == 1))
    if one.size:
        j = keep[one].argmax(axis=1)
        kk, mh, ml = _exp_dd(th[one, j], tl[one, j])
        Sh, Sl = two_sum(mh, ml)
        i = r[one]
        sh[i], sl[i] = np.ldexp(Sh, kk), np.ldexp(Sl, kk)
        recomputed[i] = True
        kind[i[~(sh[i] >= _TINY_S)]] = _TINY


class _RowState:
    """Row scalars of one group: kind, max ``a``, argmax ``k``, ``s = sum_{i != k} exp(x_i - a)``,
    ``L = log1p(s)`` and ``A = a + L`` as double-doubles; ``recomputed`` marks the rows whose ``s``
    comes from :func:`_scaled_sum_row` (Theorem LSE1 (c)). With ``log=False`` (softmax) ``L`` and
    ``A`` are not computed."""

    def __init__(self, plan: _Plan, X, g0, g1, a, k, direct, sh, sl, fmt: Format, log: bool = True):
        G = g1 - g0
        n = plan.n
        kind = np.full(G, _NORMAL, dtype=np.int8)
        kind[np.isnan(a)] = _NAN
        kind[a == np.inf] = _PINF
        kind[a == -np.inf] = _NINF
        normal = kind == _NORMAL
        # direct rows hold sum' = sum_{i != k} exp(x_i): s = sum' exp(-a) when sum' is far above
        # the subnormal range, else the row is recomputed.
        redo = normal & direct & ~(sh >= n * _DIRECT_MIN)
        d = np.flatnonzero(normal & direct & ~redo)
        # exp(-a) of those rows, kept for the softmax output (the same double-double it would compute)
        self.exp_neg_a = (np.zeros(G, dtype=bool), np.zeros(G, dtype=np.int64), np.ones(G), np.zeros(G))
        if d.size:
            kk, mh, ml = _exp_dd(-a[d], np.zeros(d.size))
            have, ek, emh, eml = self.exp_neg_a
            have[d], ek[d], emh[d], eml[d] = True, kk, mh, ml
            ph, pl = dd_mul(sh[d], sl[d], mh, ml)
            sh[d], sl[d] = np.ldexp(ph, kk), np.ldexp(pl, kk)
        redo |= normal & ~(sh >= _TINY_S)
        recomputed = np.zeros(G, dtype=bool)
        if plan.tau is None and redo.any():
            _one_term_rows(X, g0, a, k, redo, kind, sh, sl, recomputed)
        for i in np.flatnonzero(redo & ~recomputed & (kind == _NORMAL)):
            row = np.asarray(X[g0 + i], dtype=np.float64)
            if np.isfinite(row).sum() <= 1:
                kind[i] = _SINGLE
                sh[i] = sl[i] = 0.0
                continue
            K, Sh, Sl = _scaled_sum_row(row, float(a[i]), int(k[i]), plan.tau)
            sh[i], sl[i] = math.ldexp(Sh, K), math.ldexp(Sl, K)
            recomputed[i] = True
            if not sh[i] >= _TINY_S:
                kind[i] = _TINY
        self.kind, self.a, self.k, self.sh, self.sl, self.recomputed = kind, a, k, sh, sl, recomputed
        live = (kind == _NORMAL) | (kind == _SINGLE) | (kind == _TINY)
        self.a_eff = np.where(live, a, 0.0)
        self.live = live
        if not log:  # softmax: no L, no A (the float64 softmax output needs s and a only)
            return
        Lh = np.zeros(G)
        Ll = np.zeros(G)
        ok = kind == _NORMAL
        if ok.any():
            Lh[ok], Ll[ok] = _log1p_dd(sh[ok], sl[ok])
        tiny = kind == _TINY  # log1p(s) = s (1 - s/2 + ...), s < 2**-900
        Lh[tiny], Ll[tiny] = sh[tiny], sl[tiny]
        self.Lh, self.Ll = Lh, Ll
        if plan.tau is None:
            self.a_hi, self.a_lo = self.a_eff, np.zeros(G)
            Ah, Al = two_sum(self.a_eff, Lh)
            self.Ah, self.Al = fast_two_sum(Ah, Al + Ll)
        else:  # A = a/T + L, a/T as a double-double
            self.a_hi, self.a_lo = dd_div_scalar(self.a_eff, np.zeros(G), plan.tau)
            Ah, Al = two_sum(self.a_hi, Lh)
            Ah, Al = fast_two_sum(Ah, Al + (Ll + self.a_lo))
            over = np.isinf(self.a_hi)  # |a/T| beyond float64: so is the result
            self.Ah, self.Al = np.where(over, self.a_hi, Ah), np.where(over, 0.0, Al)


# ---------------------------------------------------------------------------------------------
# logsumexp


def _accept(yh, yl, err, fmt: Format, slack: int):
    """True where rounding ``yh + yl`` to ``fmt`` is proven within ``slack`` ULPs of the correctly
    rounded exact value ``y``, given ``|yh + yl - y| <= err`` (Theorem LSE0 (a)).

    The value rounded is ``z = yh + yl`` in float64 (its rounding is ``yh``), and the float64 ``yh``
    for a narrow format (so ``|yl|`` joins the error). With ``m`` a lower bound of ``|z|`` and ``|y|``
    and ``h`` the spacing of ``fmt`` at ``m``, ``err < slack * h`` gives at most ``slack`` ULPs.
    """
    et = err + (np.abs(yl) if fmt.name != "float64" else 0.0)
    et = et * (1.0 + 2.0**-40) + 2.0**-1074  # covers the float64 evaluation of this test
    m = (np.abs(yh) - np.abs(yl) - err * (1.0 + 2.0**-40)) * (1.0 - 2.0**-50)  # <= |z|, |y|
    e = np.clip(np.frexp(m)[1] - 1, fmt.emin, fmt.emax)  # floor(log2 m), within the exponent range
    h = np.ldexp(1.0, e - fmt.precision + 1)
    return (m > 0.0) & (et < slack * h)


_RETRY_TILE = 1 << 15  # elements per batch of the vectorised stage 2 of narrow logsumexp


def _lse_retry_narrow(X, g0, rows, a, k, fmt: Format, y) -> np.ndarray:
    """Stage 2 of narrow logsumexp, vectorised over the rows ``rows`` (of kind normal, no
    temperature): double-double exponentials, their high parts summed by
    :func:`nonnegative_row_sums`, ``log1p`` in double-double, then :func:`rounds_once`. Writes the
    decided rows into ``y`` and returns their mask (over ``rows``); the others go to the row-wise
    stage 2 (Theorem LSE2 (b)). Batches of at most ``_RETRY_TILE`` elements bound the memory."""
    n = X.shape[1]
    done = np.zeros(rows.size, dtype=bool)
    step = max(1, _RETRY_TILE // max(1, n))
    # relative error of s: the sum (2**-58), the exponentials (_DD_REL), the float64 sum of the low
    # parts (n 2**-104), the subnormal terms (n 2**-1073 against s >= 2**-900)
    rho = (2.0**-58 + _DD_REL + n * 2.0**-104 + n * 2.0**-173) * (1.0 + 2.0**-20)
    for b0 in range(0, rows.size, step):
        idx = rows[b0 : b0 + step]
        m = idx.size
        th, tl, keep = _kept_offsets(np.asarray(X[g0 + idx], dtype=np.float64), a[idx], k[idx])
        th = np.where(keep, th, 0.0)
        tl = np.where(keep, tl, 0.0)
        kk, mh, ml = _exp_dd(th, tl)
        Eh = np.where(keep, np.ldexp(mh, kk), 0.0)
        El = np.where(keep, np.ldexp(ml, kk), 0.0)
        h, l = nonnegative_row_sums(Eh)
        sh, sl = fast_two_sum(h, l + El.sum(axis=1))
        Lh, Ll = _log1p_dd(sh, sl)
        Ah, Al = two_sum(a[idx], Lh)
        Ah, Al = fast_two_sum(Ah, Al + Ll)
        err = rho * (sh / (1.0 + sh)) + _DD_REL * (np.abs(Lh) + np.abs(Ah)) + 2.0**-1073
        c, ok = rounds_once(Ah, Al, err, fmt)
        ok &= sh >= _TINY_S
        y[idx[ok]] = c[ok]
        done[b0 : b0 + m] = ok
    return done


def _lse_decimal(
    row, fmt: Format, tau: float | None = None, entry: float | None = None, softmax: bool = False
) -> float:
    """Correctly rounded logsumexp of a row of finite float64 values (at least two), divided by the
    temperature ``tau`` (None: 1), with :mod:`decimal` at increasing precision until the rounding is
    decided (Ziv). With ``entry`` (an element ``x_j`` of the row): its log-softmax value
    ``(x_j - a)/T - log1p(s)`` instead (Theorem LSE10 (e)), or with ``softmax`` its softmax value,
    the exponential of that (Theorem LSE11 (c)). :func:`_lse_decimal_entries` does this for
    several entries of one row at once."""
    return _lse_decimal_entries(row, fmt, tau, None if entry is None else [entry], softmax)[0]


def _lse_decimal_entries(row, fmt: Format, tau: float | None, entries, softmax: bool = False) -> list:
    """:func:`_lse_decimal` for the ``entries`` of one row (``None``: the row's logsumexp, one
    result), the row's sum ``s`` evaluated once per precision for all of them."""
    vals = [Decimal(v) for v in row]
    tq = Decimal(1.0 if tau is None else tau)  # exact
    n = len(vals)
    a = max(vals)
    k = vals.index(a)
    others = vals[:k] + vals[k + 1 :]
    todo = [None] if entries is None else list(entries)
    out: list = [None] * len(todo)
    open_ = list(range(len(todo)))
    prec = 60
    while open_:
        ctx = Context(prec=prec, rounding=ROUND_HALF_EVEN, Emin=-(10**9), Emax=10**9)
        s = Decimal(0)
        for v in others:
            t = ctx.subtract(v, a) if tau is None else ctx.divide(ctx.subtract(v, a), tq)
            if t > -3000:
                s = ctx.add(s, ctx.exp(t))
        # each operation errs by at most 10**(1 - prec) relative (half of that, to nearest); the
        # division by the temperature doubles the error of each exponent t (|t| <= 3000)
        rho = Fraction(1, 10 ** (prec - 1))
        big = 3010 if tau is None else 6010
        logs: list = []  # log1p(s) at this precision, computed once if an entry needs it

        def log1p_s(ctx=ctx, s=s, logs=logs):
            if not logs:
                logs.append(ctx.ln(ctx.add(1, s)))
            return logs[0]

        for i in list(open_):
            r = _lse_decimal_decide(ctx, s, log1p_s, a, tq, tau, n, rho, big, todo[i], fmt, softmax, prec)
            if r is not None:
                out[i] = r
                open_.remove(i)
        prec *= 2
    return out


def _lse_decimal_decide(ctx, s, log1p_s, a, tq, tau, n, rho, big, entry, fmt: Format, softmax: bool, prec: int):
    """One entry (``None``: the logsumexp) at one precision of :func:`_lse_decimal_entries`: the
    rounded result, or ``None`` if it is not decided at this precision."""
    if softmax and s == 0:
        # every other term is below e**-3000: the argmax gets 1/(1 + s), within e**-2990 of 1,
        # and an entry t_j <= -3000 (it is one of the others) less than e**-3000 (LSE11 (c))
        assert entry is not None
        return 1.0 if Decimal(entry) == a else 0.0  # (a tie with a would make s >= 1)
    if entry is not None and s == 0:
        # 0 < L < n e**-3000 < 2**-4300, and an offset t_j that is not a rounding boundary is
        # farther than 2**-1344 from every one: the rounding of t_j - L is that of t_j minus any
        # smaller positive amount (Theorem LSE10 (e))
        t_exact = (Fraction(entry) - Fraction(a)) / Fraction(1.0 if tau is None else tau)
        return rounded_fraction(t_exact - Fraction(1, 2**1400), fmt)
    if not softmax:
        # one-sided: 0 < L = log1p(S) <= S <= s_hi, and the offset (or a/T) is exact, so the
        # result lies between base -+ s_hi and base -+ 2**-1400 (LSE10 (e)); this decides at
        # once the entries whose s is far below the offset's distance to a boundary, even when the
        # offset is a boundary itself (the exact value is then just inside it)
        s_hi = Fraction(s) * (1 + 4 * (big + n) * rho) + n * Fraction(1, 10**1300)
        sign = 1 if entry is None else -1
        top = Fraction(a) if entry is None else Fraction(entry) - Fraction(a)
        base = top / Fraction(1.0 if tau is None else tau)
        r = rounded_if_decided(base + sign * Fraction(1, 2**1400), base + sign * s_hi, fmt)
        if r is not None:
            return r
    L = log1p_s()
    if entry is None:
        y = ctx.add(a if tau is None else ctx.divide(a, tq), L)
        err = rho * (big + n + abs(Fraction(L)) + abs(Fraction(y))) * 2 + n * Fraction(1, 10**1300)
        # y >= a/T exactly (s >= 0): the lower end never goes below a/T (this also settles the
        # sign of a zero result when a = 0 and every other term is far below the precision)
        floor = Fraction(a) if tau is None else Fraction(a) / Fraction(tau)
        lo = max(Fraction(y) - err, floor)
    else:  # t_j - L, t_j = (x_j - a)/T with one or two roundings (relative error 2 rho)
        xj = Decimal(entry)
        tj = ctx.subtract(xj, a) if tau is None else ctx.divide(ctx.subtract(xj, a), tq)
        y = ctx.subtract(tj, L)
        err = rho * (big + n + abs(Fraction(L)) + 2 * abs(Fraction(tj)) + abs(Fraction(y))) * 2
        err += n * Fraction(1, 10**1300)
        if softmax:  # e**y within e**y (2 err + rho): |e**d - 1| <= 2|d| for |d| <= 1
            y = ctx.exp(y)
            err = abs(Fraction(y)) * (2 * err + rho)
        lo = Fraction(y) - err
    r = rounded_if_decided(lo, Fraction(y) + err, fmt)
    if r is not None:
        return r
    if prec > 20000:  # never reached: the exact value is transcendental (proof, Theorem LSE2)
        return rounded_fraction(Fraction(y), fmt)
    return None


def _lse_narrow_float64(X, fmt: Format, tau: float | None, out) -> np.ndarray:
    """Stage 0 of narrow logsumexp (Theorem LSE2 (c)): the float64 sum of :func:`_narrow_tile_sums`
    with the bound of Theorem LSE10 (d), ``A = a + log1p(s)`` (``a/T`` a double-double with a
    temperature), and :func:`rounds_once`. Writes the decided rows into ``out`` and returns their
    mask; rows of kind other than normal, with ``s < 2**-900`` or undecided are left to the
    double-double stages."""
    R, n = X.shape
    plan = _Plan(R, n, narrow=True, tau=tau)
    done = np.zeros(R, dtype=bool)
    for r0, r1 in plan.sub_blocks(0, R):
        ab, kb, s, d = _narrow_tile_sums(plan, X, r0, r1)
        ok = np.isfinite(ab) & (s >= _TINY_S)  # finite a and s > 0: kind normal
        if not ok.any():
            continue
        theta, _ = _narrow_radius(d, n, ab, fmt, tau, None if ok.all() else ok)
        L = np.log1p(s)
        err = theta * _U * (1.0 + 2.0**-20) * (s / (1.0 + s)) + 2.0**-51.9 * L
        if tau is None:
            Ah, Al = two_sum(ab, L)  # exact
        else:
            # a/T = h + l (relative 2**-102, LSE9 (a)); A = TwoSum(h, L) + l, the last addition
            # rounded (at most 2**-104 (|A_h| + |h|)); 2**-1070 covers a quotient below the normal range
            h, l = dd_div_scalar(ab, np.zeros(ab.size), tau)
            Ah, e = two_sum(h, L)
            Al = e + l
            ah = np.abs(h)
            err = err + _TAU_DIV * ah + 2.0**-104 * (np.abs(Ah) + ah) + 2.0**-1070
            ok &= np.isfinite(Ah)
        c, acc = rounds_once(Ah, Al, err, fmt)
        acc &= ok
        out[r0:r1][acc] = c[acc]
        done[r0:r1] = acc
    return done


def _lse_rows(X, fmt: Format, tau: float | None = None) -> np.ndarray:
    R, n = X.shape
    out = np.empty(R, dtype=np.float64)
    if n == 0:
        out[:] = -np.inf
        return out
    if fmt.name == "float64":
        return _lse_rows_accurate(X, fmt, tau, out)
    with np.errstate(all="ignore"):
        done = _lse_narrow_float64(X, fmt, tau, out)
    rest = np.flatnonzero(~done)
    if rest.size == R:
        return _lse_rows_accurate(X, fmt, tau, out)
    if rest.size:
        out[rest] = _lse_rows_accurate(X[rest], fmt, tau, np.empty(rest.size))
    return out


def _lse_rows_accurate(X, fmt: Format, tau: float | None, out) -> np.ndarray:
    """The double-double stages of logsumexp (Theorem LSE2 (a), (b)) for every row of ``X``."""
    R, n = X.shape
    narrow = fmt.name != "float64"
    plan = _Plan(R, n, narrow=narrow, tau=tau)
    slack = 2  # float64's contract; the narrow formats are correctly rounded
    for g0, g1 in plan.groups():
        st = _RowState(plan, X, g0, g1, *_stats_accurate(plan, X, g0, g1), fmt)
        a, k = st.a, st.k
        y = st.Ah.copy()
        # Stage 1 (Theorem LSE2): |y - exact| <= err1. The rows whose s comes from float64
        # exponentials may also carry up to 2**-1074 of absolute error per subnormal term.
        err1 = _C1 * _U * (st.sh / (1.0 + st.sh)) + _DD_REL * (np.abs(st.Lh) + np.abs(st.Ah)) + 2.0**-1074
        err1 = err1 + np.where(st.recomputed, 0.0, n * 2.0**-1073)
        if tau is not None:  # Theorem LSE9 (b)
            err1 = err1 + _TAU_TERMS * (st.sh / (1.0 + st.sh)) + _TAU_DIV * np.abs(st.a_hi) + n * 2.0**-1072
        todo = st.live & (st.kind != _SINGLE)
        if narrow:  # correctly rounded (Theorem LSE2 (b)): y is the rounded value where decided
            c, acc = rounds_once(st.Ah, st.Al, err1, fmt)
            y = np.where(todo & acc, c, y)
        else:
            acc = _accept(st.Ah, st.Al, err1, fmt, slack)
        if tau is not None:
            acc |= ~np.isfinite(st.Ah)  # |a/T| beyond float64's range: the result is that infinity
        retry = np.flatnonzero(todo & ~acc)
        if narrow and tau is None and retry.size:
            normal = retry[st.kind[retry] == _NORMAL]
            done = _lse_retry_narrow(X, g0, normal, a, k, fmt, y)
            retry = np.setdiff1d(retry, normal[done])
        for i in retry:
            row = np.asarray(X[g0 + i], dtype=np.float64)
            # Stage 2: double-double exponentials, exact sum.
            K, Sh, Sl = _scaled_sum_row(row, float(a[i]), int(k[i]), tau)
            s_h, s_l = math.ldexp(Sh, K), math.ldexp(Sl, K)
            Lh, Ll = _log1p_dd(np.array([s_h]), np.array([s_l]))
            if tau is None:
                Ah, Al = two_sum(np.array([a[i]]), Lh)
                Ah, Al = fast_two_sum(Ah, Al + Ll)
            else:
                Ah, Al = two_sum(st.a_hi[i : i + 1], Lh)
                Ah, Al = fast_two_sum(Ah, Al + (Ll + st.a_lo[i : i + 1]))
            err2 = _DD_REL * (s_h / (1.0 + s_h) + abs(Lh[0]) + abs(Ah[0])) + 2.0**-1073
            if tau is not None:
                err2 += _TAU_TERMS * (s_h / (1.0 + s_h)) + _TAU_DIV * abs(st.a_hi[i]) + n * 2.0**-1072
            if narrow:
                c, ok = rounds_once(Ah, Al, np.array([err2]), fmt)
                if ok[0]:
                    y[i] = c[0]
                    continue
            elif _accept(Ah, Al, np.array([err2]), fmt, slack)[0]:
                y[i] = Ah[0]
                continue
            # Stage 3: decimal, correctly rounded.
            y[i] = _lse_decimal(row[np.isfinite(row)].tolist(), fmt, tau)
        kind = st.kind
        if tau is not None:  # one finite entry: x/T, rounded once
            one = np.flatnonzero(kind == _SINGLE)
            y[one] = [rounded_fraction(Fraction(float(v)) / Fraction(tau), fmt) for v in a[one]]
        y[kind == _NAN] = np.nan
        y[kind == _PINF] = np.inf
        y[kind == _NINF] = -np.inf
        out[g0:g1] = y
    return out


def logsumexp(x: ArrayLike, axis: Axis = -1, keepdims: bool = False, *, temperature: float = 1.0) -> np.ndarray:
    """``log(sum(exp(x)))`` along ``axis``, in the dtype of ``x``.

    Parameters
    ----------
    x : array_like
        float16, bfloat16, float32 or float64 (integers and booleans become float64).
    axis : int, tuple of ints or None, optional
        Axes to reduce (default the last; ``None`` reduces all), as in ``scipy.special.logsumexp``.
    keepdims : bool, optional
        Keep the reduced axes with length 1.
    temperature : float, optional
        ``T > 0`` (finite): the function of ``x / T``, the division done exactly (as in the reals),
        not ``x / T`` rounded first. The float64 value of ``T`` is the temperature. Default 1.

    Returns
    -------
    numpy.ndarray
        The reduction, in the dtype of ``x``.

    Raises
    ------
    TypeError
        For complex, string, object or other unsupported dtypes, or a temperature that is not a
        real number.
    ValueError
        For a temperature that is not positive and finite.

    Notes
    -----
    Domain: any real input. Special values (as :func:`softlog_numerics.oracle.logsumexp`): a NaN
    in the row gives NaN; else a ``+inf`` gives ``+inf``; ``-inf`` entries are masked out; an
    empty or all ``-inf`` row gives ``-inf``; a row with one finite entry returns it (``+0`` for
    ``-0``). A result beyond the format's range is ``+inf``.

    Algorithm: ``a + log1p(s)`` with ``a`` the row maximum and ``s`` the other ``exp(x_i - a)``.
    In float16, bfloat16 and float32 a float64 evaluation with a proven bound (that of narrow
    log_softmax) decides almost every row first (Theorem LSE2 (c)); the others, and every float64
    row, have ``s`` summed error-free in its high part (float64 internally for every format; ``exp(x_i)`` times
    a double-double ``exp(-a)``, or ``exp`` of the exactly split ``x_i - a``), ``log1p`` in
    double-double. The sum ``a + log1p(s)`` cancels when ``a < 0``; a result is returned only when
    a rigorous error bound proves it within the contract (Ziv's test: for float16, bfloat16 and
    float32, that both ends of the error interval round to the same value), otherwise the row is
    recomputed with double-double exponentials (vectorised over the rows, narrow formats without
    a temperature; then row by row) and, if still undecided, exactly (``decimal``). Rows without
    cancellation (e.g. ``max(x) >= 0``) never need that; rows of log-probabilities (``LSE ~ 0``)
    do: about 20 µs per entry in float64, about 6 µs per row of 10 in float32
    (``benchmarks/bench_log_softmax.py --short --log-probabilities``).

    Accuracy: correctly rounded in float16, bfloat16 and float32, and at most 2 ULP in float64
    (``ULP_BOUNDS["logsumexp"]``), proofs/log_softmax.md, Theorem LSE2 (b) and (a); the same
    with a temperature (proofs/log_softmax.md, Theorem LSE9: the offsets ``(x_i - a)/T`` and
    ``a/T`` in double-double).
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    tau = checked_temperature(temperature)
    rows = Rows(x, axis)
    with np.errstate(all="ignore"):
        y = _lse_rows(rows.rows, fmt, tau)
        res = round_from_float64(y, fmt)
    return rows.reduced(res, keepdims)


# ---------------------------------------------------------------------------------------------
# log_softmax and softmax


def _special_rows(out2d, X, g0, kind, log: bool):
    """Overwrite the rows whose value is set by the special-value table."""
    masked = -np.inf if log else 0.0
    for i in np.flatnonzero(kind >= _NAN):
        r = g0 + i
        if kind[i] == _PINF:
            row = np.asarray(X[r], dtype=np.float64)
            out2d[r] = np.where(row == np.inf, np.nan, masked)
        else:
            out2d[r] = np.nan


_STORE_SLICE = 1 << 14


def _store(dst, src64, fmt: Format):
    """Round float64 ``src64`` once into ``dst`` (of ``fmt``)."""
    if fmt.name == "bfloat16":
        # a few rows at a time (dst may be a column chunk: views, never reshaped copies), so
        # that round_from_float64's temporaries (9 bytes per element) stay small
        cols = dst.shape[-1]
        step, width = max(1, _STORE_SLICE // max(1, cols)), min(cols, _STORE_SLICE)
        for i in range(0, dst.shape[0], step):
            for c in range(0, cols, max(1, width)):
                dst[i : i + step, c : c + width] = round_from_float64(src64[i : i + step, c : c + width], fmt)
    else:
        np.copyto(dst, src64, casting="unsafe")


_H_SUB = 2.0**-14  # float16: below it the output is subnormal (or 0), on the grid 2**-24


def _narrow_tile_sums(plan: _Plan, X, r0: int, r1: int):
    """float16/bfloat16/float32, rows ``r0:r1``: ``(a, k, s, d)``, the row maxima, one argmax column
    each, ``s = sum_{i != k} exp(T_i)`` in float64 with ``T_i = fl(x_i - a)`` (divided by the
    temperature in float64 when there is one, Theorem LSE9 (c)), and ``d``, the largest number of
    roundings a term meets in ``s`` (:func:`blocked_row_sums` on long rows, for the rounding tests
    of Theorems LSE10 (d), LSE11 (a) and LSE2 (c)). For rows of one chunk the offsets ``T_i`` are
    left in the plan's first buffer."""
    m, n, tau = r1 - r0, plan.n, plan.tau
    ar = plan.ar(m)
    if plan.single:
        T, _, E = plan.bufs(m, n)[:3]
        xt = plan.tile(X, r0, r1, 0, n)
        kb = xt.argmax(axis=1)
        ab = xt[ar, kb]
        _shift_tile(xt, ab[:, None], T, tau)
        np.exp(T, out=E)
        E[ar, kb] = 0.0
        d = n - 1
        if n <= SHORT_ROW:
            s = short_row_sums(E)
        else:
            s, d = blocked_row_sums(E)
        return ab, kb, s, d
    ab, kb = _argmax_rows(plan, X, r0, r1)
    s = np.zeros(m)
    d = 0  # each term reaches s through at most d roundings (Theorem LSE10 (d))
    for c0, c1 in plan.chunks():
        T, _, E = plan.bufs(m, c1 - c0)[:3]
        xt = plan.tile(X, r0, r1, c0, c1)
        _shift_tile(xt, ab[:, None], T, tau)
        np.exp(T, out=E)
        inside = (kb >= c0) & (kb < c1)
        E[ar[inside], kb[inside] - c0] = 0.0
        sc, dc = blocked_row_sums(E)
        s += sc
        d = max(d, dc) + 1
    return ab, kb, s, d


def _softmax_narrow(X, fmt: Format, out2d, log: bool, tau: float | None = None):
    """float16/bfloat16/float32: float64 evaluation and one final rounding (Theorem LSE5; with a
    temperature, LSE9 (c)), correctly rounded: a blocked sum, the bit test of each value (softmax:
    also on the subnormal grid) and the later stages for the undecided ones (Theorems LSE10,
    LSE11)."""
    R, n = X.shape
    plan = _Plan(R, n, narrow=True, tau=tau)
    direct = fmt.name != "bfloat16"
    q = fraction_bits(fmt)
    half = 1 << (q - 1)
    sub_exp = fmt.precision - 1 - fmt.emin  # fmt's subnormals are the multiples of 2**-sub_exp
    sub_top = 2.0 ** (fmt.emin + 1)
    undecided: list[tuple[int, np.ndarray]] = []  # (row, columns) whose rounding stage 1 left open
    # log: per row theta (the relative error of s in units of u), s, tested, the argmax
    rows_state = (np.zeros(R), np.zeros(R), np.zeros(R, dtype=bool), np.zeros(R, dtype=np.int64))
    for g0, g1 in plan.groups():
        for r0, r1 in plan.sub_blocks(g0, g1):
            m = r1 - r0
            ar = np.arange(m)
            ab, kb, s, d = _narrow_tile_sums(plan, X, r0, r1)
            # a clean sub-tile (every row maximum finite, every s >= 2**-900: the common case) has
            # every row _NORMAL and tested, and needs none of the per-row special cases below
            clean = math.isfinite(float(ab.sum())) and float(s.min()) >= _TINY_S
            if clean:
                kind = None
            else:
                kind = np.full(m, _NORMAL, dtype=np.int8)
                kind[np.isnan(ab)] = _NAN
                kind[ab == np.inf] = _PINF
                kind[ab == -np.inf] = _NINF
                zero = np.flatnonzero((kind == _NORMAL) & (s == 0.0))
                if zero.size:
                    finite = np.isfinite(X[r0 + zero].astype(np.float64)).sum(axis=1)
                    kind[zero[finite <= 1]] = _SINGLE
            tested: bool | np.ndarray
            if clean:
                tested = True
                theta, radius = _narrow_radius(d, n, ab, fmt, tau, None, log)
            else:
                tested = (kind == _NORMAL) & (s >= _TINY_S)
                theta, r = _narrow_radius(d, n, ab, fmt, tau, tested, log)
                radius = np.where(tested, r, -1)
            if log:
                L = np.log1p(s)
                val = -L  # the argmax entry: -log1p(s), -0.0 when s underflows
                if not clean:
                    val[kind == _SINGLE] = 0.0
                    if tau is not None:
                        # s < 2**-900: L is below a float64 step of every other value, but the
                        # offsets are inexact and the nudge of LSE5 (c) may go the wrong way
                        # (Theorem LSE10 (f))
                        radius[(kind == _NORMAL) & ~tested] = 13
                rows_state[0][r0:r1], rows_state[1][r0:r1], rows_state[2][r0:r1] = theta, s, tested
                rows_state[3][r0:r1] = kb
                Lc = L[:, None]
                # Rows with a tiny L: T - L rounds to T in float64, and T may be a midpoint of the
                # narrow format; moving T one float64 ULP away from 0 sends the final rounding the
                # way the exact T - L goes (Theorem LSE5 (c)).
                nudge = () if clean and float(L.min()) >= _NUDGE_L else np.flatnonzero(L < _NUDGE_L)
            else:
                val = 1.0 / (1.0 + s)
                qc = val[:, None]
                # results below 2**(emin + 1) are tested on the grid of fmt's subnormals (LSE11 (b))
                err_z = (int(np.max(radius)) + 1) * 2.0 ** (fmt.precision - 53) + 2.0 ** (sub_exp - 1070)
            shift = radius - half
            for c0, c1 in plan.chunks():
                dst = out2d[r0:r1, c0:c1]
                if plan.single:
                    T, LO, E = plan.bufs(m, n)[:3]
                    if not log:
                        E[ar, kb] = 1.0
                else:
                    T, LO, E = plan.bufs(m, c1 - c0)[:3]
                    xt = plan.tile(X, r0, r1, c0, c1)
                    _shift_tile(xt, ab[:, None], T, tau)
                    if not log:
                        np.exp(T, out=E)
                if log:
                    if len(nudge):
                        T[nudge] *= _NUDGE
                    np.subtract(T, Lc, out=T)
                else:
                    np.multiply(E, qc, out=T)  # the float64 softmax values
                    if fmt.name == "float16" or (T < sub_top).any():
                        # Z = y 2**sub_exp on the grid of fmt's subnormals (exact), R = rint(Z)
                        np.multiply(T, 2.0**sub_exp, out=E)
                        np.rint(E, out=LO)
                        for i in np.flatnonzero(_subnormal_flags(T, E, LO, sub_top, err_z, tested)):
                            undecided.append((r0 + i, _subnormal_cols(T[i], sub_top, err_z, sub_exp) + c0))
                # Ziv's test on the bits of the float64 values (Theorem LSE10 (a), (d); LSE11 (a))
                W = E.view(np.int64)
                for i in np.flatnonzero(midpoint_radius_flags(T, W, shift, radius, q)):
                    ri = radius if clean else radius[i]
                    undecided.append((r0 + i, np.flatnonzero(W[i] <= 2 * ri) + c0))
                if not log and fmt.name == "float16":
                    # the values below 2**-14 rounded on float16's subnormal grid first (LO = rint(Z)):
                    # NumPy's cast of them is slow, and the cast of the rounded value is exact (LSE5 (d))
                    np.multiply(LO, 2.0**-sub_exp, out=T, where=T < _H_SUB)
                if direct:
                    np.copyto(dst, T, casting="same_kind")
                else:
                    _store(dst, T, fmt)
            if clean:
                out2d[r0 + ar, kb] = round_from_float64(val, fmt)
            else:
                assert kind is not None
                rows_live = np.flatnonzero(kind <= _TINY)
                out2d[r0 + rows_live, kb[rows_live]] = round_from_float64(val[rows_live], fmt)
                _special_rows(out2d, X, r0, kind, log)
    # the argmax entries -L whose L is subnormal in fmt (the bit test in the tile covers the others:
    # there T_k = 0), rounded from float64 (Theorem LSE10 (d))
    small = rows_state[2] & (rows_state[1] < 2.0 * fmt.tiny)  # log1p(s) <= s
    if log and small.any():
        theta, s, tested, kb = (v[small] for v in rows_state)
        L = np.log1p(s)
        errL = theta * _U * (1.0 + 2.0**-20) * (s / (1.0 + s)) + 2.0**-51.9 * L
        _, acc = rounds_once(-L, np.zeros(L.size), errL, fmt)
        rows = np.flatnonzero(small)
        undecided.extend((int(rows[i]), kb[i : i + 1]) for i in np.flatnonzero(~acc))
    if undecided:
        (_log_softmax_retry if log else _softmax_retry)(X, fmt, tau, out2d, undecided)


def _subnormal_flags(Y, Z, R, top: float, err_z: float, tested) -> np.ndarray:
    """Rows of the tile ``Y`` (float64 softmax values; ``Z = Y 2**sub_exp`` and ``R = rint(Z)``) with
    a value below ``top = 2**(emin + 1)`` within ``err_z`` of a rounding boundary of fmt's
    subnormal grid (a half-integer of ``Z``), among the ``tested`` rows (Theorem LSE11 (b)).
    Overwrites ``Z`` with ``|Z - R|``; ``R`` is kept."""
    np.subtract(Z, R, out=Z)  # exact
    np.abs(Z, out=Z)
    flag = (Z >= 0.5 - err_z) & (Y < top)
    return flag.any(axis=1) & tested


def _subnormal_cols(y, top: float, err_z: float, sub_exp: int) -> np.ndarray:
    """The columns of one row that :func:`_subnormal_flags` flags."""
    z = y * 2.0**sub_exp
    return np.flatnonzero((np.abs(z - np.rint(z)) >= 0.5 - err_z) & (y < top))


def _narrow_radius(d: int, n: int, a, fmt: Format, tau: float | None, tested, log: bool = True):
    """Stage 1 of narrow log_softmax (Theorem LSE10 (d)): ``(theta, radius)``, one pair for the
    ``tested`` rows of a tile (None: all of them). ``theta u`` bounds the relative error of the
    float64 sum ``s`` (each term rounded at most ``d`` times; ``n`` columns, row maxima ``a``);
    ``radius`` is the number of float64 steps (of the integer view) around each ``fl(T - L)`` that
    holds the exact value (the caller gives the other rows ``-1``: nothing flagged)."""
    g = d / (1.0 - d * _U)  # gamma_d / u
    if tau is not None:
        t_exp = 1490.5  # |T_i| <= 745.2, relative error 2u + u^2 of the offsets (LSE9 (c))
    elif fmt.name == "float16":
        t_exp = 0.0  # float16 offsets are exact (LSE5 (b))
    else:
        # an inexact offset T_i has |x_i| < 2**-27 |a| (then |T_i| <= |a| (1 + 2**-27)) or
        # |a| < 2**-27 |x_i| (then |a| < 2**-17.4 for the terms that count, |T_i| <= 745.2); the
        # factor 1.0001 and 745.3 cover exp(T_i eps) - 1 <= |T_i| u (1 + |T_i| u)
        # (one value for the tile, from the largest and smallest |a| of its tested rows: fewer
        # operations on short arrays, a radius at least each row's own)
        aa = np.abs(a if tested is None else a[tested])
        lo, hi = (float(aa.min()), float(aa.max())) if aa.size else (1.0, 1.0)
        t_exp = 745.3 if lo < 2.0**-17 else min(hi * 1.0001, 745.3)
    # theta = theta0 + theta1 t_exp (the operations on short arrays are the cost here)
    theta0 = g + _LAMBDA_EXP * (1.0 + g * _U) + (n * 2.0**-119 + 2.0**-47)
    theta1 = 1.0 + g * _U
    theta = theta0 + theta1 * t_exp
    # |L - log1p(S)| / L <= theta u (1 + 2**-20) s / ((1 + s) L) + 2**-51.9 and s/((1 + s) L) <= 1
    # (1 + 2**-51 for the computed L): in float64 steps of L (ulp(L) > 2**-53 L), theta (1 + 2**-19)
    # + 2.2; plus the offsets' rounding, the subtraction's and the nudge of LSE5 (c): 1/2 + 1/2 + 2
    # steps (with a temperature 2.0001 + 1/2 + 2)
    K = theta * (1.0 + 2.0**-19) + (7.2 if tau is not None else 5.2)
    if not log:
        # softmax: exp(T_j) (at most (lambda + t) u <= theta u), q = 1/(1 + s) (theta u s/(1 + s)
        # and two roundings), the product (one): relative (2 theta + 3) u, in steps of the
        # computed value (Theorem LSE11 (a))
        K = (2.0 * theta + 3.0) * (1.0 + 2.0**-19) + 1.0
    q = fraction_bits(fmt)
    # 2 ceil(K) + 1 (2x: a binade crossed); a radius of 2**(q-1) flags every element (rows beyond
    # about 2**36 columns), never a radius that would not cover K
    r = 2 * int(K) + 3 if K < 2.0 ** (q - 3) else 1 << (q - 1)
    return theta, r


def _log_softmax_exact_sum(
    X, fmt: Format, tau: float | None, out2d, rows, cols, log: bool = True
) -> np.ndarray:
    """Stage 2 of narrow log_softmax (Theorem LSE10 (e)) and of narrow softmax (Theorem LSE11
    (c)), vectorised over the rows of the cells ``(rows, cols)``: exact offsets
    ``x_i - a = th + tl`` (TwoSum; with a temperature the double-double quotient),
    ``E_i = exp(th)`` with the first-order correction ``E_i tl``, the sum by
    :func:`nonnegative_row_sums`, float64 ``log1p``; the values ``th_j - L + tl_j`` as
    double-doubles and :func:`decided_dd` (softmax: :func:`_exp_decided` of them). Writes the
    decided cells, returns their mask. Batches of at most ``_RETRY_TILE`` elements bound the
    memory."""
    n = X.shape[1]
    urows, inv = np.unique(rows, return_inverse=True)
    YH, YL, ERR = np.zeros(rows.size), np.zeros(rows.size), np.zeros(rows.size)
    valid = np.zeros(rows.size, dtype=bool)
    step = max(1, _RETRY_TILE // max(1, n))
    # relative error of s: exp (lambda u), the rounding of h + (l + c) (u + u^2), the grid sum
    # (2**-58), the second-order term of the correction (2**-85), the subnormal terms, the offsets
    delta = (_LAMBDA_EXP + 1.0) * _U + 2.0**-57 + n * 2.0**-172 + (2.0**-93 if tau is not None else 0.0)
    for b0 in range(0, urows.size, step):
        ids = urows[b0 : b0 + step]
        m = ids.size
        R = np.asarray(X[ids], dtype=np.float64)
        k = R.argmax(axis=1)
        a = R[np.arange(m), k]
        th, tl, keep = _kept_offsets(R, a, k, tau)
        E = np.exp(np.where(keep, th, -np.inf))
        h, lo = nonnegative_row_sums(E)
        S = h + (lo + (E * np.where(keep, tl, 0.0)).sum(axis=1))
        L = np.log1p(S)
        errL = delta * (1.0 + 2.0**-20) * (S / (1.0 + S)) + 2.0**-51.9 * L
        ci = np.flatnonzero((inv >= b0) & (inv < b0 + m))
        ri, cj = inv[ci] - b0, cols[ci]
        t_h, t_l = th[ri, cj], tl[ri, cj]
        yh, e1 = two_sum(t_h, -L[ri])
        yl = e1 + t_l
        err = errL[ri] + 2.0**-51 * (np.abs(e1) + np.abs(t_l)) + 2.0**-1073
        if tau is not None:
            err = err + 2.0**-102 * np.abs(t_h)
        YH[ci], YL[ci], ERR[ci], valid[ci] = yh, yl, err, S[ri] >= _TINY_S
    # one decision for all batches (the double-double exponential has a fixed cost per call)
    c, done = decided_dd(YH, YL, ERR, fmt) if log else _exp_decided(YH, YL, ERR, fmt)
    done &= valid
    out2d[rows[done], cols[done]] = c[done]
    return done


def _log_softmax_retry(X, fmt: Format, tau: float | None, out2d, undecided) -> None:
    """Stages 2 and 3 of narrow log_softmax (Theorem LSE10 (e)) for the elements that stage 1 left
    undecided: :func:`_log_softmax_exact_sum`; then the row's ``L`` in double-double with a proven
    bound (logsumexp's row scalars, Theorem LSE1), the value ``(x_j - a) - L`` as a double-double
    and :func:`decided_dd`; what is still open goes to :func:`_lse_decimal`."""
    rows = np.concatenate([np.full(c.size, r, dtype=np.int64) for r, c in undecided])
    cols = np.concatenate([c for _, c in undecided]).astype(np.int64)
    done = _log_softmax_exact_sum(X, fmt, tau, out2d, rows, cols)
    if done.all():
        return
    rows, cols = rows[~done], cols[~done]
    Xs, inv, x, yh, yl, err, normal = _log_softmax_dd(X, fmt, tau, rows, cols)
    c, ok = decided_dd(yh, yl, err, fmt)
    ok &= normal[inv]
    out2d[rows[ok], cols[ok]] = c[ok]
    left = np.flatnonzero(~ok)
    for u in np.unique(inv[left]):  # the decimal row sum once per row
        ids = left[inv[left] == u]
        row = Xs[u].astype(np.float64)
        vals = _lse_decimal_entries(row[np.isfinite(row)].tolist(), fmt, tau, x[ids].tolist())
        out2d[rows[ids], cols[ids]] = vals


def _log_softmax_dd(X, fmt: Format, tau: float | None, rows, cols, exact_rows: bool = False):
    """The log-softmax values of the cells ``(rows, cols)`` as double-doubles ``yh + yl`` within
    ``err``: the row's ``L`` from logsumexp's row scalars (Theorem LSE1; with ``exact_rows``, from
    :func:`_scaled_sum_row` and ``_log1p_dd``, as LSE2's stage 2), the exact offset (Theorem LSE10
    (e), stage 3). Returns ``(Xs, inv, x, yh, yl, err, normal)``: the distinct rows ``Xs``
    (``Xs[inv]`` is each cell's row), the entries ``x``, and ``normal`` per distinct row (the bound
    holds there)."""
    n = X.shape[1]
    urows, inv = np.unique(rows, return_inverse=True)
    Xs = np.ascontiguousarray(X[urows])
    m = urows.size
    a, Lh, Ll, errL = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)
    normal = np.zeros(m, dtype=bool)
    plan = _Plan(m, n, narrow=True, tau=tau)
    for g0, g1 in () if exact_rows else plan.groups():
        st = _RowState(plan, Xs, g0, g1, *_stats_accurate(plan, Xs, g0, g1), fmt)
        c = st.sh / (1.0 + st.sh)
        e = _C1 * _U * c + _DD_REL * np.abs(st.Lh) + 2.0**-1074
        e = e + np.where(st.recomputed, 0.0, n * 2.0**-1073)
        if tau is not None:
            e = e + _TAU_TERMS * c + n * 2.0**-1072
        a[g0:g1], Lh[g0:g1], Ll[g0:g1], errL[g0:g1] = st.a, st.Lh, st.Ll, e
        normal[g0:g1] = st.kind == _NORMAL
    if exact_rows:
        sh, sl = np.zeros(m), np.zeros(m)
        for i in range(m):
            row = Xs[i].astype(np.float64)
            k = int(np.argmax(row))
            a[i] = row[k]
            normal[i] = bool(np.isfinite(row).sum() >= 2) and math.isfinite(a[i])
            if normal[i]:
                K, Sh, Sl = _scaled_sum_row(row, float(a[i]), k, tau)
                sh[i], sl[i] = math.ldexp(Sh, K), math.ldexp(Sl, K)
        normal &= sh >= _TINY_S
        Lh, Ll = _log1p_dd(np.where(normal, sh, 0.0), np.where(normal, sl, 0.0))
        c = sh / (1.0 + sh)
        # _scaled_sum_row: 2**-100 relative (2**-91 with a temperature, LSE9 (b)); _log1p_dd H_dd
        errL = _DD_REL * (c + np.abs(Lh)) + 2.0**-1073
        if tau is not None:  # as LSE2's stage 2 with a temperature
            errL = errL + _TAU_TERMS * c + n * 2.0**-1072
    x = Xs[inv, cols].astype(np.float64)
    ar = a[inv]
    th, tl = two_sum(x, -ar)
    if tau is not None:
        th, tl = _divided_offsets(x, ar, th, tl, tau)
    yh, e1 = two_sum(th, -Lh[inv])
    yl = e1 + (tl - Ll[inv])
    # the two roundings in yl, and (with a temperature) the offsets' relative error (LSE9 (a))
    err = errL[inv] + 2.0**-51 * (np.abs(e1) + np.abs(tl) + np.abs(Ll[inv])) + 2.0**-1073
    if tau is not None:
        err = err + 2.0**-102 * np.abs(th)
    return Xs, inv, x, yh, yl, err, normal


def _exp_decided(yh, yl, err, fmt: Format):
    """``e**y`` rounded to ``fmt`` for log-softmax values ``y`` within ``err`` of ``yh + yl``
    (Theorem LSE11 (c)): +0 where ``e**y`` lies below half of fmt's smallest subnormal,
    ``2**(emin - p)``; elsewhere ``_exp_dd`` and :func:`decided_dd`. Returns ``(c, ok)`` as
    :func:`decided_dd` does; only ``err < 2**-20`` is used."""
    ok = err < 2.0**-20
    with np.errstate(invalid="ignore"):
        zero = ok & (yh + np.abs(yl) < (fmt.emin - fmt.precision) * math.log(2.0) - 1.0)
        ok &= ~zero & (yh > -(2.0**20))  # (_exp_dd's range)
    kk, mh, ml = _exp_dd(np.where(ok, yh, 0.0), np.where(ok, yl, 0.0))
    ph, pl = np.ldexp(mh, kk), np.ldexp(ml, kk)
    # |e**(y + d) - e**y| <= 2 |d| e**y for |d| <= 1; the kernel 2**-97; ldexp's underflow
    c, dec = decided_dd(ph, pl, ph * (2.0 * err + 2.0**-96) + 2.0**-1072, fmt)
    return np.where(zero, 0.0, c), (ok & dec) | zero


def _softmax_retry(X, fmt: Format, tau: float | None, out2d, undecided) -> None:
    """Stages 2 to 4 of narrow softmax (Theorem LSE11 (c)) for the elements that stage 1 left
    undecided: the exact float64 sum (:func:`_log_softmax_exact_sum`, vectorised over the rows);
    then :func:`_exp_decided` of the double-double log-softmax value of :func:`_log_softmax_dd`
    (row scalars, then exact rows); what is still open goes to :func:`_lse_decimal`."""
    rows = np.concatenate([np.full(c.size, r, dtype=np.int64) for r, c in undecided])
    cols = np.concatenate([c for _, c in undecided]).astype(np.int64)
    done = _log_softmax_exact_sum(X, fmt, tau, out2d, rows, cols, log=False)
    if done.all():
        return
    rows, cols = rows[~done], cols[~done]
    # batches of at most 2 _RETRY_TILE elements of distinct rows bound the memory
    urows = np.unique(rows)
    step = max(1, (_RETRY_TILE << 1) // max(1, X.shape[1]))
    for b0 in range(0, urows.size, step):
        sel = np.isin(rows, urows[b0 : b0 + step])
        _softmax_retry_batch(X, fmt, tau, out2d, rows[sel], cols[sel])


def _softmax_retry_batch(X, fmt: Format, tau: float | None, out2d, rows, cols) -> None:
    """:func:`_softmax_retry` for the cells ``(rows, cols)`` of a few rows."""
    for exact_rows in (False, True):
        Xs, inv, x, yh, yl, err, normal = _log_softmax_dd(X, fmt, tau, rows, cols, exact_rows)
        c, ok = _exp_decided(yh, yl, err, fmt)
        ok &= normal[inv]
        out2d[rows[ok], cols[ok]] = c[ok]
        if ok.all():
            return
        rows, cols = rows[~ok], cols[~ok]
    for r in np.unique(rows):  # the decimal row sum once per row
        js = cols[rows == r]
        row = np.asarray(X[r], dtype=np.float64)
        vals = _lse_decimal_entries(row[np.isfinite(row)].tolist(), fmt, tau, row[js].tolist(), softmax=True)
        out2d[r, js] = vals


def _split26(h, l):
    """``h + l`` as ``s + r`` with ``s`` of 26 significant bits (Dekker) and ``r = fl((h - s) + l)``."""
    s, t = split(h)
    return s, t + l


def _times_mantissa(h, l, m):
    """``(h + l) m`` as ``(ph, pe + l m)`` with ``ph + pe = h m`` exactly (TwoProd): for ``|l| <=
    2.01 u |h|`` (``u = 2**-53``) the relative error is below ``2**-103`` (Theorem LSE4 (d))."""
    ph, pe = two_prod(h, m)
    return ph, pe + l * m


def _unscale(dst, c):
    """``dst * 2**c`` rounded once (``c`` an integer column, one exponent per row): a product by
    the power of two when every ``2**c`` is a float64, else :func:`numpy.ldexp`."""
    if int(c.min()) >= -1074:
        dst *= np.ldexp(1.0, c)
    else:
        np.ldexp(dst, c, out=dst)


def _softmax_float64_output(plan: _Plan, X, g0, g1, st: _RowState, out2d, row_scale=None):
    """``g_j = exp(x_j - a) / (1 + s)`` with one final rounding: ``exp(.)`` times a double-double
    row factor ``F = Fs + Fr`` (``Fs`` of 26 bits), as ``E_hi Fs + (E_lo Fs + E Fr)`` where both
    products by ``Fs`` are exact (Theorem LSE4).

    Direct mode (tiles whose maxima lie in ``[0, _DIRECT_MAX]``): ``E = exp(x_j)`` and
    ``F = exp(-a) / (1 + s)``. Shifted mode: ``E = exp(t_j)`` with ``x_j - a = t_j + lo_j`` exactly and
    ``F = (1 + lo_j) / (1 + s)`` folded in as ``E (Fr + lo_j Fs)``.

    ``row_scale`` (finite float64, one per row of the group, or None): ``gamma g_j`` instead, with
    ``gamma = m 2**e`` (:func:`numpy.frexp`, ``1/2 <= |m| < 1``): ``F`` becomes the double-double
    ``F m`` and the final scaling ``2**-100`` becomes ``2**(e - 100)``, one rounding (LSE4 (d)).
    """
    a_eff = st.a_eff
    # q = 1 / (1 + s) as a double-double
    Dh, Dl = two_sum(np.ones_like(st.sh), st.sh)
    Dh, Dl = fast_two_sum(Dh, Dl + st.sl)
    qh = 1.0 / Dh
    p, e = two_prod(qh, Dh)
    ql = (((1.0 - p) - e) - qh * Dl) * qh
    # exp(-a) q for the direct mode (rows with 0 <= a <= _DIRECT_MAX; others unused)
    dir_rows = (a_eff >= 0.0) & (a_eff <= _DIRECT_MAX) & plan.direct
    # exp(-a) for those rows: the row state's where it has it (the direct rows of the statistics),
    # computed here for the others; the rows outside dir_rows are never used (non-direct tiles)
    if dir_rows.any():
        have, ek, emh, eml = st.exp_neg_a
        need = np.flatnonzero(dir_rows & ~have)
        kk, mh, ml = ek.copy(), emh.copy(), eml.copy()
        if need.size:
            kk[need], mh[need], ml[need] = _exp_dd(-a_eff[need], np.zeros(need.size))
        Fh, Fl = dd_mul(mh, ml, qh, ql)
        Fh, Fl = np.ldexp(Fh, kk), np.ldexp(Fl, kk)
    else:  # no direct rows: F is not used
        Fh, Fl = qh, ql
    if row_scale is not None:
        mant, ex = np.frexp(row_scale)
        qh, ql = _times_mantissa(qh, ql, mant)
        Fh, Fl = _times_mantissa(Fh, Fl, mant)
        back = (ex.astype(np.int64) - 100)[:, None]  # 2**-100 = 1 / _SOFTMAX_SCALE
        sign = mant[:, None]
    qs, qr = _split26(qh, ql)
    Fs, Fr = _split26(Fh, Fl)
    # Everything is computed 2**100 times too large, so that no partial product of a normal result
    # underflows; the final exact scaling by 2**-100 is a second rounding only for subnormal results.
    Fs, Fr, qs, qr = (v * _SOFTMAX_SCALE for v in (Fs, Fr, qs, qr))
    with np.errstate(invalid="ignore"):
        big_rows = np.abs(a_eff) > 2.0**900  # see the shifted branch below
    # the mode is decided per block (as the statistics), the work done per sub-tile
    blk_direct = np.empty(g1 - g0, dtype=bool)
    blk_big = np.empty(g1 - g0, dtype=bool)
    for b0, b1 in plan.blocks(g0, g1):
        blk_direct[b0 - g0 : b1 - g0] = dir_rows[b0 - g0 : b1 - g0].all()
        blk_big[b0 - g0 : b1 - g0] = big_rows[b0 - g0 : b1 - g0].any()
    for r0, r1 in plan.sub_blocks(g0, g1):
        m = r1 - r0
        i0, i1 = r0 - g0, r1 - g0
        direct, big = bool(blk_direct[i0]), bool(blk_big[i0])
        fs = (Fs if direct else qs)[i0:i1, None]
        fr = (Fr if direct else qr)[i0:i1, None]
        for c0, c1 in plan.chunks():
            T, LO, E, U = plan.bufs(m, c1 - c0)
            xt = X[r0:r1, c0:c1]
            if direct:
                np.exp(xt, out=E)
                np.multiply(E, fr, out=LO)  # E Fr
            else:
                _two_sum_tile(xt, a_eff[i0:i1, None], T, LO, E)
                if plan.tau is not None:
                    T[...], LO[...] = _divided_offsets(xt, a_eff[i0:i1, None], T, LO, plan.tau)
                    np.copyto(LO, 0.0, where=T < -2048.0)  # exp(T) = 0: lo is not needed
                elif big:
                    # |x - a| beyond 2**900 has a rounding error lo up to 2**970, and lo Fs (Fs
                    # up to 2**100) would overflow: where exp(T) = 0 the correction is not needed
                    np.copyto(LO, 0.0, where=T < -2048.0)
                np.exp(T, out=E)
                LO *= fs
                LO += fr
                LO *= E  # E (Fr + lo Fs)
            np.multiply(E, _SPLITTER, out=T)
            np.subtract(T, E, out=U)
            np.subtract(T, U, out=T)  # E_hi (26 bits)
            np.subtract(E, T, out=U)  # E_lo
            U *= fs  # exact
            T *= fs  # exact
            U += LO
            dst = out2d[r0:r1, c0:c1]
            np.add(T, U, out=dst)
            if row_scale is None:
                dst *= 1.0 / _SOFTMAX_SCALE
            else:
                _unscale(dst, back[i0:i1])
                np.copysign(dst, sign[i0:i1], out=dst)  # a zero takes the sign of gamma p_j


def _softmax_float64(X, out2d, log: bool, tau: float | None = None, row_scale=None):
    """float64: double-double row scalars, error-free sums, single or double final rounding
    (Theorems LSE3, LSE4; with a temperature, LSE9 (d)). ``row_scale`` (softmax only, no
    temperature; finite float64, one per row): ``row_scale[r] * softmax(X[r])`` rounded once
    (Theorem LSE4 (d)); the special-value rows are softmax's, times ``row_scale``."""
    R, n = X.shape
    fmt = format_of("float64")
    plan = _Plan(R, n, narrow=False, extra=0 if log else 1, tau=tau)
    for g0, g1 in plan.groups():
        st = _RowState(plan, X, g0, g1, *_stats_accurate(plan, X, g0, g1), fmt, log=log)
        k = st.k
        if log:
            for r0, r1 in plan.sub_blocks(g0, g1):
                Ah = st.Ah[r0 - g0 : r1 - g0, None]
                Al = st.Al[r0 - g0 : r1 - g0, None]
                for c0, c1 in plan.chunks():
                    dst = out2d[r0:r1, c0:c1]
                    if tau is None:
                        np.subtract(X[r0:r1, c0:c1], Ah, out=dst)
                        np.subtract(dst, Al, out=dst)
                        continue
                    # (x - a)/T - L = (h - L_h) + (l - L_l) with (x - a)/T = h + l (two roundings)
                    T, LO, E = plan.bufs(r1 - r0, c1 - c0)[:3]
                    xt, a2 = X[r0:r1, c0:c1], st.a_eff[r0 - g0 : r1 - g0, None]
                    _two_sum_tile(xt, a2, T, LO, E)
                    h, lo = _divided_offsets(xt, a2, T, LO, tau)
                    Lh = st.Lh[r0 - g0 : r1 - g0, None]
                    Ll = st.Ll[r0 - g0 : r1 - g0, None]
                    np.add(h - Lh, lo - Ll, out=dst)
            rows_fix = np.flatnonzero((st.kind == _NORMAL) | (st.kind == _TINY))
            out2d[g0 + rows_fix, k[rows_fix]] = -st.Lh[rows_fix]  # one rounding; -0.0 if s underflows
            rows_one = np.flatnonzero(st.kind == _SINGLE)
            out2d[g0 + rows_one, k[rows_one]] = 0.0
        else:
            gam = None if row_scale is None else row_scale[g0:g1]
            _softmax_float64_output(plan, X, g0, g1, st, out2d, gam)
            rows_one = np.flatnonzero(st.kind == _SINGLE)  # one finite entry: exactly 1
            out2d[g0 + rows_one, k[rows_one]] = 1.0 if gam is None else gam[rows_one]
        _special_rows(out2d, X, g0, st.kind, log)
        if row_scale is not None:
            rows_sp = np.flatnonzero(st.kind >= _NAN)
            out2d[g0 + rows_sp] *= row_scale[g0 + rows_sp, None]


def _softmax_common(x, axis, log: bool, temperature=1.0) -> np.ndarray:
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    tau = checked_temperature(temperature)
    rows = Rows(x, axis)
    X = rows.rows
    out2d = np.empty(X.shape, dtype=fmt.dtype)
    if X.size:
        with np.errstate(all="ignore"):
            if fmt.name == "float64":
                _softmax_float64(X, out2d, log, tau)
            else:
                _softmax_narrow(X, fmt, out2d, log, tau)
    return rows.elementwise(out2d)


def log_softmax(x: ArrayLike, axis: Axis = -1, *, temperature: float = 1.0) -> np.ndarray:
    """``x - logsumexp(x)`` along ``axis``, in the dtype of ``x``.

    Parameters
    ----------
    x : array_like
        float16, bfloat16, float32 or float64 (integers and booleans become float64).
    axis : int, tuple of ints or None, optional
        Axes over which the normalisation runs (default the last; ``None``: all), as in
        ``scipy.special.log_softmax``.
    temperature : float, optional
        ``T > 0`` (finite): the function of ``x / T``, the division done exactly (as in the reals),
        not ``x / T`` rounded first. The float64 value of ``T`` is the temperature. Default 1.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``.

    Raises
    ------
    TypeError
        For complex, string, object or other unsupported dtypes, or a temperature that is not a
        real number.
    ValueError
        For a temperature that is not positive and finite.

    Notes
    -----
    Domain: any real input. Special values (as :func:`softlog_numerics.oracle.log_softmax`): a row
    holding NaN, or only ``-inf``, is all NaN; in a row holding ``+inf`` the ``+inf`` entries are
    NaN and the others ``-inf``; ``-inf`` entries give ``-inf``; the only finite entry of a row
    gives ``+0``; the maximal entry of any other row is ``-log1p(s) <= -0``.

    Algorithm (Blanchard-Higham-Mary with the argmax pulled out): ``(x_j - a) - log1p(s)``,
    ``s = sum_{i != argmax} exp(x_i - a)``; at the argmax ``-log1p(s)``, so a dominant class gets
    its tiny negative value instead of 0. float16/bfloat16/float32 are evaluated in float64 and
    rounded once; float64 uses ``exp(x_i) exp(-a)`` (or an exactly split ``x - a``), an
    error-free tiled sum of ``s`` and a double-double ``log1p``; no step cancels (both terms are
    ``<= 0``). Memory: a few buffers of ``2**17`` elements besides the output.

    Accuracy: correctly rounded in float16, bfloat16 and float32, and at most 2 ULP in float64
    (``ULP_BOUNDS["log_softmax"]``), with or without a temperature. float64:
    proofs/log_softmax.md, Theorem LSE3, resting on NumPy's ``exp`` being within 1.25 u relative (measured 1.15 u;
    hypothesis H_exp, checked by the tests); with a temperature the offsets ``(x_j - a)/T`` are
    formed from the exact split of ``x_j - a`` by a double-double division (Theorem LSE9). Narrow
    formats (proofs/log_softmax.md, Theorem LSE10): the float64 value of every element is tested for correct rounding on
    its bits, against a proven error bound (the row sum is a blocked sum with a known number of
    roundings); the rare undecided elements are recomputed from an exact row sum, then from
    double-double row scalars, then in :mod:`decimal`. Cost: about 1.26x the faithful evaluation for
    (256, 32000) float32 (``benchmarks/README.md``).
    """
    return _softmax_common(x, axis, True, temperature)


def softmax(x: ArrayLike, axis: Axis = -1, *, temperature: float = 1.0) -> np.ndarray:
    """``exp(x - logsumexp(x))`` along ``axis``, in the dtype of ``x``.

    Parameters
    ----------
    x : array_like
        float16, bfloat16, float32 or float64 (integers and booleans become float64).
    axis : int, tuple of ints or None, optional
        Axes over which the normalisation runs (default the last; ``None``: all), as in
        ``scipy.special.softmax``.
    temperature : float, optional
        ``T > 0`` (finite): the function of ``x / T``, the division done exactly (as in the reals),
        not ``x / T`` rounded first. The float64 value of ``T`` is the temperature. Default 1.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``.

    Raises
    ------
    TypeError
        For complex, string, object or other unsupported dtypes, or a temperature that is not a
        real number.
    ValueError
        For a temperature that is not positive and finite.

    Notes
    -----
    Domain: any real input. Special values (as :func:`softlog_numerics.oracle.softmax`): as
    :func:`log_softmax` with ``0`` in place of ``-inf`` and ``1`` in place of ``0``; subnormal
    outputs are computed to their absolute precision.

    Algorithm: ``exp(x_j - a) / (1 + s)`` (division form, Blanchard-Higham-Mary). float64: the
    argument of ``exp`` is split exactly (``x_j - a = t + t_lo``) and ``exp(t)(1 + t_lo)`` is
    multiplied by the double-double ``1/(1 + s)`` with Dekker's exact partial products, so that
    one rounding ends the computation. Narrow formats: float64 evaluation with a proven relative
    error bound, a rounding test on each value (on its bits; on the grid of the format's
    subnormals below ``2**(emin + 1)``), and the rare undecided elements recomputed in
    double-double, then exactly (``decimal``).

    Accuracy: correctly rounded in float16, bfloat16 and float32, and at most 3 ULP in float64
    (``ULP_BOUNDS["softmax"]``), proofs/log_softmax.md, Theorem LSE11 (narrow formats) and
    Theorem LSE4 (float64), under the hypothesis H_exp; the same with a temperature (Theorems
    LSE9, LSE11).
    """
    return _softmax_common(x, axis, False, temperature)


# ---------------------------------------------------------------------------------------------
# Row statistics for the fused loss and the backward pass


def row_statistics(X, fmt: Format, tau: float | None = None):
    """Yield ``(g0, g1, state)`` over groups of rows of the 2-D ``X`` (``n >= 1`` columns): the
    row scalars of rows ``g0:g1`` as logsumexp computes them. ``state`` has, per row, the maximum
    ``a``, an argmax ``k``, ``live`` (a finite maximum: not NaN, no ``+inf``, not all ``-inf``)
    and ``L = log1p(s) = Lh + Ll`` with ``|Lh + Ll - L| <= 1.28 u L + 2**-1075`` (``u = 2**-53``;
    proofs/log_softmax.md, Theorem LSE1 (d); exactly 0 for a row with one finite entry). With a
    temperature ``tau`` the statistics are those of ``X / tau`` (``s`` of the offsets
    ``(x_i - a)/tau``, relative error ``2**-92`` more, and ``a/tau = a_hi + a_lo``; Theorem LSE9).
    Run it under ``np.errstate(all="ignore")``."""
    R, n = X.shape
    plan = _Plan(R, n, narrow=fmt.name != "float64", tau=tau)
    for g0, g1 in plan.groups():
        yield g0, g1, _RowState(plan, X, g0, g1, *_stats_accurate(plan, X, g0, g1), fmt)


def scaled_softmax(X, gamma) -> np.ndarray:
    """``gamma[r] * softmax(X[r])`` for each row of a 2-D float64 array, rounded once (the
    logsumexp VJP of :mod:`._backward`).

    Parameters
    ----------
    X : numpy.ndarray
        float64 logits, shape ``(R, n)``.
    gamma : numpy.ndarray
        Finite float64 row factors, shape ``(R,)``.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(R, n)``: within 3 ULP of ``RN(gamma p_j)`` where ``p_j >= 2**-1022`` (2
        ULP for a subnormal result); below, ``RN(w)`` with ``|w - gamma p_j| <= 2**-1074 |gamma|
        (1 + 2**-90) + 3.6 u |gamma p_j|`` (proofs/log_softmax.md, Theorem LSE4 (d)). A zero has
        the sign of ``gamma``. Rows with a NaN, a ``+inf`` or no finite entry hold softmax's
        special values times ``gamma``.

    Notes
    -----
    The float64 softmax kernel with the row factor ``F = 1/(1 + s)`` (or ``exp(-a)/(1 + s)``)
    multiplied by the mantissa ``m`` of ``gamma = m 2**e`` (TwoProd: to ``2**-103``) and the
    final scaling by ``2**(e - 100)`` instead of ``2**-100``: ``gamma p_j`` is rounded once when
    it is normal, twice when subnormal. Run it under ``np.errstate(all="ignore")``.
    """
    R, n = X.shape
    out = np.empty((R, n))
    if out.size:
        _softmax_float64(X, out, False, None, np.asarray(gamma, dtype=np.float64))
    return out
