"""A certified fast path for the correctly rounded VJPs of logsumexp, log_softmax and softmax and for
the gradient of the cross-entropy (Ziv's strategy, proofs/fast_oracle.md, Theorem F8).

For rows of float16, bfloat16 or float32 logits at temperature 1 (and, for the cross-entropy, no
z-loss) every component is evaluated in float64 from the softmax estimates of Theorem F6, in the
same cancellation-free forms as the interval loop of :mod:`softlog_numerics.oracle.grad`:

* ``logsumexp``:  ``g p_j``;
* ``log_softmax``: ``g_j - p_j S`` (``S = sum g``), at the argmax ``(g_k - S) + q_k S``
  (``q_k = 1 - p_k = s / (1 + s)``, tiny for a dominant class);
* ``softmax``: ``p_j ((g_j - g_k) + T)``, ``T = sum_{i != k} (g_k - g_i) p_i``;
* ``cross_entropy``: ``g (p_j - t_j)``, as ``g ((1 - t_j) - q_j)`` where ``t_j >= 1/2``.

An error bound is computed beside each value and the rounding is decided when both ends of the
error interval round to the same bits (``fast_softmax.decided_rounding``). Rows with an undecided
component, and the rows the special-value table or an exact case settles (non-finite logits or
cotangents, fewer than two finite logits, equal finite logits, whose probabilities are rational),
are returned as undecided rows: the caller computes them with the interval loop, so that every
result is the loop's, bit for bit.
"""

from __future__ import annotations

import numpy as np

from softlog_numerics._core.formats import Format
from softlog_numerics.oracle.fast_softmax import (
    TILE,
    UNIT_ROUNDOFF,
    SoftmaxTile,
    decided_rounding,
    regular_rows,
    sum_error_bound,
    tree_sum,
)

__all__ = [
    "VJPS",
    "cross_entropy_estimate",
    "cross_entropy_grad_rows",
    "cross_entropy_loss_rows",
    "vjp_estimate",
    "vjp_rows",
]

VJPS = ("logsumexp", "log_softmax", "softmax")
"""The VJPs with a fast path (cotangent ``g`` of one entry per row for ``logsumexp``)."""

_U = UNIT_ROUNDOFF
_ABS = 2.0**-1000  # absolute allowance (subnormal range of float64), as in Theorem F6
_SAFE = 1.0 + 2.0**-40  # covers the roundings in computing a bound (Theorem F8, step 5)
_T_REL = 2.0**-104 * 1.01  # relative error of the double-double targets (Targets.float64)


def _tile_rows(x: np.ndarray, extra: list[np.ndarray]):
    """Yield ``(positions, logits, extra rows, tile)`` over tiles of the regular rows of ``x`` whose
    ``extra`` rows (cotangents) are finite."""
    rows, n = x.shape
    step = max(1, TILE // max(n, 1))
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        t = x[r0:r1]
        ok, m, lo = regular_rows(t, False)
        for a in extra:
            ar = a[r0:r1]
            ok &= np.isfinite(ar).reshape(r1 - r0, -1).all(axis=1)
        if not ok.any():
            continue
        pos = np.flatnonzero(ok) + r0
        if not ok.all():
            t, m, lo = t[ok], m[ok], lo[ok]
        yield pos, t, [a[pos] for a in extra], SoftmaxTile(t, m, lo)


def _masked_entries(t: np.ndarray) -> np.ndarray:
    return np.isneginf(t)


def _logsumexp_vjp(t, g, q):
    """``g p_j`` (Theorem F8, step 2)."""
    p, rp = q.probabilities()
    ga = np.abs(g)[:, None]
    v = p * g[:, None]
    r = rp * ga
    r += np.abs(v) * _U
    r += 2.0 * _ABS
    zero = _masked_entries(t) | (g == 0.0)[:, None]  # p_j = 0 or g = 0: exactly +0
    v[zero] = 0.0
    r[zero] = 0.0
    return v, r


def _log_softmax_vjp(t, g, q):
    """``g_j - p_j S``, at the argmax ``(g_k - S) + q_k S`` (Theorem F8, step 3)."""
    n = t.shape[1]
    p, rp = q.probabilities()
    S = tree_sum(g.copy())
    es = tree_sum(np.abs(g)) * (sum_error_bound(n) * _SAFE)  # |S^ - S| <= es
    Sa = np.abs(S)
    prod = p * S[:, None]
    v = g - prod
    # |p^ S^ - p S| <= rp |S^| + p es, p <= p^ + rp
    r = rp * Sa[:, None]
    r += (p + rp) * es[:, None]
    r += np.abs(prod) * _U
    # the argmax: (g_k - S^) + q^ S^
    qk, rq = q.complement()
    idx, k = q.idx, q.k
    a = g[idx, k] - S
    b = qk * S
    vk = a + b
    rk = es * (1.0 + qk + rq) + rq * Sa + (np.abs(a) + np.abs(b)) * _U
    v[idx, k] = vk
    r[idx, k] = rk
    r += np.abs(v) * _U
    r += 4.0 * _ABS
    masked = _masked_entries(t)
    v[masked] = g[masked]
    r[masked] = 0.0
    return v, r


def _softmax_vjp(t, g, q):
    """``p_j ((g_j - g_k) + T)``, ``T = sum_{i != k} (g_k - g_i) p_i`` (Theorem F8, step 4)."""
    n = t.shape[1]
    p, rp = q.probabilities()
    idx, k = q.idx, q.k
    gk = g[idx, k]
    dg = gk[:, None] - g  # fl(g_k - g_i), relative error u
    masked = _masked_entries(t)
    dg[masked] = 0.0
    dg[idx, k] = 0.0
    w = dg * p
    wa = np.abs(w)
    T = tree_sum(w)
    # |T^ - T| <= sum |dg|(rp + 2u p^ ...) + gamma_h sum |w|
    rT = tree_sum(np.abs(dg) * (rp + 2.0 * _U * p))
    rT += tree_sum(wa) * (sum_error_bound(n) + 2.0 * _U)
    rT *= _SAFE
    c = g - gk[:, None]  # fl(g_j - g_k)
    y = c + T[:, None]
    ry = np.abs(c) * _U + rT[:, None] + np.abs(y) * _U
    v = p * y
    r = rp * (np.abs(y) + ry) + p * ry
    r += np.abs(v) * _U
    r += 4.0 * _ABS
    v[masked] = 0.0
    r[masked] = 0.0
    return v, r


_VJP = {"logsumexp": _logsumexp_vjp, "log_softmax": _log_softmax_vjp, "softmax": _softmax_vjp}


def vjp_estimate(name: str, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float64 values ``v`` and bounds ``r`` of Theorem F8 for the VJP ``name`` of each row of
    the float64 logits ``x`` (regular rows: at least two finite logits, not all equal, no NaN or
    ``+inf``) with finite cotangents ``g``: ``|exact - v| <= r``. For the tests."""
    m, lo = x.max(axis=1), x.min(axis=1)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return _VJP[name](x, g, SoftmaxTile(x, m, lo))


def vjp_rows(name: str, x: np.ndarray, g: np.ndarray, fmt: Format) -> tuple[np.ndarray, np.ndarray]:
    """The VJP ``name`` (one of :data:`VJPS`) of each row of the float64 logits ``x`` (numbers of
    ``fmt``) with the float64 cotangents ``g`` (``x``'s shape, or one per row for logsumexp), fast.

    Returns the results in ``fmt.dtype`` (``x``'s shape) and the indices of the rows left to the
    exact path (their values in the first array are 0).
    """
    if name not in VJPS:
        raise ValueError(f"name must be one of {VJPS}, not {name!r}")
    rows, n = x.shape
    out = np.zeros((rows, n), dtype=fmt.dtype)
    undecided = np.ones(rows, dtype=np.bool_)
    if n == 0 or rows == 0:
        return out, np.flatnonzero(undecided)
    for pos, t, (gt,), q in _tile_rows(x, [g]):
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            v, r = _VJP[name](t, gt, q)
            vals, dec = decided_rounding(v, r, fmt)
        zero = (v == 0.0) & (r == 0.0)  # exact zeros (masked entries, g = 0) are +0
        vals[zero] = 0.0
        dec |= zero
        ok = dec.all(axis=1)
        out[pos[ok]] = vals[ok]
        undecided[pos[ok]] = False
    return out, np.flatnonzero(undecided)


def cross_entropy_grad_rows(x: np.ndarray, t_hi: np.ndarray, t_lo: np.ndarray, g: np.ndarray, fmt: Format,
                            exact_targets: bool = False):
    """``g (softmax(x) - t)`` of each row of the float64 logits ``x`` (numbers of ``fmt``) with the
    double-double targets ``t_hi + t_lo`` (``Targets.float64``) and the float64 cotangent ``g`` (one
    per row), fast (Theorem F8, step 5; no z-loss, temperature 1).

    ``exact_targets``: ``t_hi + t_lo`` is the target exactly (no label smoothing), so it brings no
    error term. Returns the results in ``fmt.dtype`` and the indices of the rows left to the exact
    path (among them every row with a masked logit whose target is not 0: its loss is ``+inf``).
    """
    rows, n = x.shape
    out = np.zeros((rows, n), dtype=fmt.dtype)
    undecided = np.ones(rows, dtype=np.bool_)
    if n == 0 or rows == 0:
        return out, np.flatnonzero(undecided)
    for pos, t, (th, tl, gt), q in _tile_rows(x, [t_hi, t_lo, g]):
        masked = _masked_entries(t)
        live = ~(masked & ((th != 0.0) | (tl != 0.0))).any(axis=1)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            v, r = _cross_entropy_grad(t, th, tl, gt, q, exact_targets)
            vals, dec = decided_rounding(v, r, fmt)
            _signed_targets(v, r, th, tl, gt, fmt, vals, dec)
        zero = (v == 0.0) & (r == 0.0)  # masked entries, and every entry of a row with g = 0
        vals[zero] = 0.0
        dec |= zero
        ok = dec.all(axis=1) & live
        out[pos[ok]] = vals[ok]
        undecided[pos[ok]] = False
    return out, np.flatnonzero(undecided)


def _signed_targets(v, r, th, tl, g, fmt: Format, vals, dec) -> None:
    """Theorem F8, step 5': where the target is exactly 0 or 1 the sign of ``g (p_j - t_j)`` is
    known (``0 < p_j < 1``): the undecided entries are decided again with the interval clipped to
    that side of zero, so that a result that underflows gets its sign. In place."""
    sign = np.where(th == 1.0, -1.0, 1.0) * np.sign(g)[:, None]
    known = ~dec & (tl == 0.0) & ((th == 0.0) | (th == 1.0)) & (sign != 0)
    for s in (-1, 1):
        idx = np.nonzero(known & (sign == s))
        if idx[0].size:
            a, d = decided_rounding(v[idx], r[idx], fmt, sign=s)
            vals[idx] = a
            dec[idx] = d


def cross_entropy_estimate(x: np.ndarray, t_hi: np.ndarray, t_lo: np.ndarray, g: np.ndarray):
    """The float64 values ``v`` and bounds ``r`` of Theorem F8, step 5, for the cross-entropy
    gradient of each regular row of ``x`` (no masked entry) with targets ``t_hi + t_lo`` and one
    cotangent per row: ``|exact - v| <= r``. For the tests."""
    m, lo = x.max(axis=1), x.min(axis=1)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return _cross_entropy_grad(x, t_hi, t_lo, g, SoftmaxTile(x, m, lo))


def _cross_entropy_grad(t, th, tl, g, q, exact_targets: bool = False):
    """``g ((p_j - t_hi) - t_lo)``, or ``g (((1 - t_hi) - q_j) - t_lo)`` where ``t_hi >= 1/2``."""
    qk, rq = q.complement()
    p, rp = q.probabilities()
    idx, k = q.idx, q.k
    # q_j = 1 - p_j: s/(1 + s) at the argmax, fl(1 - p^_j) elsewhere (p_j <= 1/2 there)
    qj = 1.0 - p
    rqj = rp + qj * _U
    qj[idx, k] = qk
    rqj[idx, k] = rq
    high = (th >= 0.5) & (th <= 2.0)
    a = np.where(high, 1.0 - th, -th)  # exact: 1 - t_hi by Sterbenz for t_hi in [1/2, 2]
    w = np.where(high, -qj, p)
    rw = np.where(high, rqj, rp)
    b = a + w
    y = b - tl
    ry = rw + (np.abs(b) + np.abs(y)) * _U
    if not exact_targets:
        ry += _T_REL * np.abs(th) + 2.0**-1074
    ga = np.abs(g)[:, None]
    v = y * g[:, None]
    r = ry * ga
    r += np.abs(v) * _U
    r += 4.0 * _ABS
    masked = _masked_entries(t)  # p_j = 0 and t_j = 0 (other rows are left out): exactly +0
    v[masked] = 0.0
    r[masked] = 0.0
    zero_g = g == 0.0
    v[zero_g] = 0.0
    r[zero_g] = 0.0
    return v, r


def cross_entropy_loss_rows(x: np.ndarray, t_hi: np.ndarray, t_lo: np.ndarray, fmt: Format,
                            exact_targets: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The cross-entropy ``loss = C + T L`` of each row of the float64 logits ``x`` (numbers of
    ``fmt``) with targets ``t_hi + t_lo``: ``C = sum_i t_i (m - x_i)``, ``T = sum_i t_i`` over the
    finite logits, ``L = log1p(s)`` (Theorem F8, step 8; no z-loss, temperature 1), fast.

    Returns the results in ``fmt.dtype`` (one per row) and the indices of the rows left to the
    exact path: rows the special-value table settles (NaN, ``+inf``, no finite logit, a masked logit
    with a nonzero target), rows with one finite logit or with ``T = 0`` (exact rationals), and
    undecided rows.
    """
    rows, n = x.shape
    out = np.zeros(rows, dtype=fmt.dtype)
    undecided = np.ones(rows, dtype=np.bool_)
    if n == 0 or rows == 0:
        return out, np.flatnonzero(undecided)
    for pos, t, (th, tl), q in _tile_rows(x, [t_hi, t_lo]):
        masked = _masked_entries(t)
        live = ~(masked & ((th != 0.0) | (tl != 0.0))).any(axis=1)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            v, r, positive = _loss(t, th, tl, q, masked, exact_targets)
            live &= (np.abs(v) > 0) & np.isfinite(v)
            vals, dec = decided_rounding(v, r, fmt)
            idx = np.flatnonzero(~dec & positive)
            if idx.size:
                vals[idx], dec[idx] = decided_rounding(v[idx], r[idx], fmt, sign=1)
        ok = dec & live
        out[pos[ok]] = vals[ok]
        undecided[pos[ok]] = False
    return out, np.flatnonzero(undecided)


def _loss(t, th, tl, q, masked, exact_targets: bool):
    """``(v, r, positive)``: ``v = fl(C + fl(T L))`` with ``|loss - v| <= r``; ``positive`` where the
    loss is known to be positive (all targets >= 0 and ``T > 0``)."""
    n = t.shape[1]
    gamma = sum_error_bound(n) * _SAFE
    d = q.m[:, None] - t  # fl(m - x_i) >= 0, relative error u
    d[masked] = 0.0  # a masked logit has target 0 here: its term is 0
    w = np.where(masked, 0.0, th)
    terms = w * d
    mags = np.abs(terms)
    C = tree_sum(terms.copy())
    Cm = tree_sum(mags.copy())
    T = tree_sum(w.copy())
    Tm = tree_sum(np.abs(w))
    # target error: |t - t_hi| <= |t_lo| + (2**-104 |t_hi| + 2**-1074 unless exact)
    te = np.abs(np.where(masked, 0.0, tl))
    if not exact_targets:
        te += _T_REL * np.abs(w) + 2.0**-1074
    rC = Cm * (3.0 * _U + gamma) + tree_sum(te * d)
    rT = Tm * gamma + tree_sum(te.copy())
    L = q.l
    rL = L * q.eta_l + 2.0 * _ABS
    TL = T * L
    v = C + TL
    r = rC + rT * (L + rL) + np.abs(T) * rL + np.abs(TL) * _U + np.abs(v) * _U
    r *= _SAFE
    r += 4.0 * _ABS
    positive = (np.where(masked, 0.0, th) >= 0).all(axis=1) & (T > rT)  # t_hi >= 0 gives t >= 0
    return v, r, positive
