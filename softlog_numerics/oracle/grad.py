"""Correctly rounded derivatives: vector-Jacobian products (VJPs) and Jacobian-vector products (JVPs)
of the log-softmax family and of the fused loss.

The reference for a derivative is the **exact** derivative at the exact floating inputs, rounded
once to the format of ``x`` (not the derivative evaluated from a rounded forward output): the
ideal a backend's autograd is measured against. With ``p = softmax(x)`` along the axis,

* ``log_softmax(x, g)``: ``v_j = g_j - p_j S`` (``S = sum_k g_k``), evaluated as the exact
  ``g_j - S`` plus ``q_j S`` at the argmax (``q_j = 1 - p_j``, so a dominant class keeps its tiny
  ``q_j``) and as the exact ``g_j`` minus ``p_j S`` elsewhere, each sum formed exactly
  (:func:`~softlog_numerics.oracle.enclosures.exact_plus`);
* ``softmax(x, g)``: ``w_j = p_j (g_j - sum_k g_k p_k)``;
* ``logsumexp(x, g)``: ``g p_j`` (``g`` has the shape of the reduction);
* ``cross_entropy(logits, target, g)``: ``g (p_j (1 + 2 z_loss lse) - t_j)``;
* the JVPs ``logsumexp_jvp`` (``sum_k p_k dx_k``), ``log_softmax_jvp`` (``dx_j - sum_k p_k dx_k``),
  ``softmax_jvp`` (``p_j (dx_j - sum_k p_k dx_k)``, the softmax Jacobian is symmetric) and
  ``cross_entropy_jvp`` (``sum_k (p_k (1 + 2 z_loss lse) - t_k) dx_k``).

Exact cases (proofs/grad.md, Theorem G1), settled with fractions: by the Lindemann-Weierstrass
theorem ``p_j`` is rational only when all finite logits of the row are equal (then ``p_j = 1/n``),
and a VJP component is rational only when it is such a case or an exact zero, which is
recognised exactly: ``sum_k g_k = 0`` (log_softmax), ``g_j`` equal to the mean of ``g`` over each
group of equal logits (softmax), ``g = 0``. Everything else is transcendental and decided by
Ziv's loop; with ``z_loss > 0`` the cross-entropy gradient is not covered by that argument, and
an undecided value raises :class:`~softlog_numerics.oracle.enclosures.OracleUndecided`.

The VJPs of the softlog family (``softlog``, ``softlog_entropy``, ``softlog_cross_entropy``,
``sld``, ``sld_sym``) are those of :mod:`~softlog_numerics.oracle.softlog_grad`, re-exported here
(proofs/grad.md, Theorem G5).

Special values: a row of ``x`` holding NaN or ``+inf``, or no finite entry, and a cotangent row
holding NaN or an infinity, give a NaN row (the derivative is not a finite number there). A
``-inf`` (masked) logit has ``p_j = 0`` exactly: its log_softmax VJP is ``g_j``, its softmax and
logsumexp VJPs ``+0``. Exact zeros are ``+0``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from mpmath import libmp
from numpy.typing import ArrayLike

from softlog_numerics._core.axes import (
    Axis,
    Rows,
    checked_cotangent,
    checked_temperature,
)
from softlog_numerics._core.formats import as_float_array, format_of, round_rational
from softlog_numerics._core.targets import IGNORE_INDEX, prepared_targets
from softlog_numerics.oracle import fast_grad
from softlog_numerics.oracle.enclosures import (
    I_ONE,
    INF,
    NAN,
    add,
    as_float64,
    div,
    dyadic,
    enclose_log1p,
    enclose_rational,
    exact_plus,
    mul,
    point,
    sub,
    ziv,
)
from softlog_numerics.oracle.layer_grad import softlog_softmax
from softlog_numerics.oracle.loss import settled_loss_row
from softlog_numerics.oracle.softlog_grad import (
    sld,
    sld_sym,
    softlog,
    softlog_cross_entropy,
    softlog_entropy,
)
from softlog_numerics.oracle.twins import ShiftedRow

__all__ = [
    "cross_entropy",
    "cross_entropy_jvp",
    "log_softmax",
    "log_softmax_jvp",
    "logsumexp",
    "logsumexp_jvp",
    "sld",
    "sld_sym",
    "softlog",
    "softlog_cross_entropy",
    "softlog_entropy",
    "softlog_softmax",
    "softmax",
    "softmax_jvp",
]

_ZERO = libmp.fzero


def _exact(q: Fraction, fmt) -> float:
    return round_rational(q.numerator, q.denominator, fmt)


def _nonfinite_x_row(row: list) -> bool:
    """NaN row: a NaN or ``+inf`` logit, or no finite one."""
    return any(v != v or v == INF for v in row) or all(v == -INF for v in row)


def _nonfinite(vals) -> bool:
    return any(v != v or v in (INF, -INF) for v in vals)


class _Probabilities:
    """``p = softmax`` of one row's finite logits, as enclosures at a working precision.

    ``p_j = e_j / D`` with ``e_j = exp(x_j - m)``, ``D = 1 + s``; ``q_j = 1 - p_j`` is
    ``s / D`` at the argmax ``k`` and ``(1 + (s - e_j)) / D`` elsewhere, both without cancellation.
    """

    def __init__(self, finite_values: list, temperature: float | None = None):
        self.sh = ShiftedRow(finite_values, temperature)
        self.k = self.sh.k
        self.prec: int | None = None

    def at(self, prec: int):
        if self.prec != prec:
            t = self.sh.at(prec)
            self.e, self.s = t.e, t.s
            self.D = add(I_ONE, t.s, prec)
            self.prec = prec
        return self

    def p(self, j: int, prec: int):
        self.at(prec)
        return div(self.e[j], self.D, prec)

    def q(self, j: int, prec: int):
        self.at(prec)
        if j == self.k:
            return div(self.s, self.D, prec)
        rest = sub(self.s, self.e[j], prec)
        rest = (rest[0] if libmp.mpf_ge(rest[0], _ZERO) else _ZERO, rest[1])  # s >= e_j
        return div(add(I_ONE, rest, prec), self.D, prec)

    def tied(self) -> list[int]:
        """Indices (among the finite logits) of the entries equal to the maximum."""
        if self.sh.temperature is None:
            return [i for i, d in enumerate(self.sh.d) if not d[1]]  # d_i == 0 exactly
        return [i for i, q in enumerate(self.sh.q) if q == 0]

    def tie_split(self, prec: int):
        """``(1/k, w)`` with ``p_j = 1/k + w`` for every entry ``j`` tied at the maximum (``k`` of
        them): ``w = -r / (k (k + r)) < 0``, ``r`` the sum of ``e_i`` over the entries below the
        maximum (``r > 0``: rows of equal entries are settled before). The rational part is exact,
        so a result whose rational part is a rounding boundary is decided by the sign of ``w``
        however small ``r`` is (proofs/grad.md, Theorem G1 (c))."""
        self.at(prec)
        tied = set(self.tied())
        r = (_ZERO, _ZERO)
        for i, e in enumerate(self.e):
            if i not in tied:
                r = add(r, e, prec)
        k = libmp.from_int(len(tied))
        den = mul((k, k), add((k, k), r, prec), prec)
        w = div(r, den, prec)
        return Fraction(1, len(tied)), (libmp.mpf_neg(w[1]), libmp.mpf_neg(w[0]))

    def lse(self, prec: int):
        self.at(prec)
        m = (self.sh.m, self.sh.m) if self.sh.temperature is None else enclose_rational(self.sh.mq, prec)
        return add(m, enclose_log1p(self.s, prec), prec)

    def spread(self, vals: list, prec: int):
        """``T = sum_{i != k} (v_k - v_i) p_i`` (``vals`` over the finite logits, ``k`` the argmax),
        with exact differences grouped by the distinct values of ``v`` (a group equal to ``v_k``
        drops out exactly). Then ``u - sum_i p_i v_i = (u - v_k) + T`` for any ``u``: an exact
        number plus one enclosure, tight also when the ``p_i`` are far below ``2**-P``."""
        self.at(prec)
        k = self.k
        vk = libmp.from_float(vals[k])
        groups: dict[float, tuple] = {}
        for i, v in enumerate(vals):
            if i != k and v != vals[k]:
                groups[v] = add(groups.get(v, (_ZERO, _ZERO)), self.e[i], prec)
        acc = (_ZERO, _ZERO)
        for v, E in groups.items():
            d = libmp.mpf_sub(vk, libmp.from_float(v), 0)  # exact
            acc = add(acc, mul((d, d), E, prec), prec)
        return div(acc, self.D, prec)

    def minus_target(self, j: int, t: Fraction, prec: int):
        """``p_j - t`` for a rational ``t`` as ``(c, w)``: a rational ``c`` and an enclosure ``w``
        with ``p_j - t = c + w``: ``(1 - t) - q_j`` when ``t >= 1/2`` (a one-hot target on a
        dominant class gives ``-q_j`` without cancellation), else ``-t + p_j``."""
        if 2 * t >= 1:
            q = self.q(j, prec)
            return 1 - t, (libmp.mpf_neg(q[1]), libmp.mpf_neg(q[0]))
        return -t, self.p(j, prec)


def _row_setup(row: list):
    """(indices of the finite logits, all of them equal)."""
    finite = [i for i, v in enumerate(row) if v != -INF]
    return finite, all(row[i] == row[finite[0]] for i in finite)


# ---------------------------------------------------------------------------------------------
# VJPs


def _log_softmax_row(row: list, g: list, fmt) -> list:
    n = len(row)
    if n == 0:
        return []
    if _nonfinite_x_row(row) or _nonfinite(g):
        return [NAN] * n
    finite, equal = _row_setup(row)
    S = sum((Fraction(v) for v in g), Fraction(0))
    out = [_exact(Fraction(v), fmt) for v in g]  # masked entries: v_j = g_j
    if S == 0:
        return out
    if equal:  # p_j = 1/n'
        share = S / len(finite)
        for j in finite:
            out[j] = _exact(Fraction(g[j]) - share, fmt)
        return out
    pr = _Probabilities([row[i] for i in finite])
    k = pr.k
    Sm = _exact_sum(g)
    c = {i: libmp.mpf_sub(libmp.from_float(g[j]), Sm, 0) if i == k else libmp.from_float(g[j]) for i, j in enumerate(finite)}

    tied = set(pr.tied())
    gf = [Fraction(g[j]) for j in finite]
    split = {i: gf[i] - S / len(tied) for i in tied}  # v_j = (g_j - S/k) - S w at a tie
    split = {i: dyadic(v) for i, v in split.items() if not v.denominator & (v.denominator - 1)}

    def enclose(todo, prec):
        pr.at(prec)
        res = {}
        for i in todo:
            if i in split:
                _, w = pr.tie_split(prec)
                t = mul(w, (Sm, Sm), prec)
                res[i] = exact_plus(split[i], (libmp.mpf_neg(t[1]), libmp.mpf_neg(t[0])), fmt, prec)
                continue
            # v_j = g_j - p_j S: at the argmax (g_k - S) + q_k S, elsewhere g_j + (-p_j S)
            t = mul(pr.q(i, prec), (Sm, Sm), prec) if i == k else mul(pr.p(i, prec), (Sm, Sm), prec)
            if i != k:
                t = (libmp.mpf_neg(t[1]), libmp.mpf_neg(t[0]))
            res[i] = exact_plus(c[i], t, fmt, prec)
        return res

    for i, v in zip(finite, ziv(fmt, len(finite), enclose, {})):
        out[i] = v
    return out


def _exact_sum(vals: list):
    """The exact sum of floats as a raw mpf."""
    total = _ZERO
    for v in vals:
        total = libmp.mpf_add(total, libmp.from_float(v), 0)
    return total


def _softmax_row(row: list, g: list, fmt) -> list:
    """``p_j (g_j - c)``, ``c = sum_k g_k p_k``; also the softmax JVP with ``g = dx``."""
    n = len(row)
    if n == 0:
        return []
    if _nonfinite_x_row(row) or _nonfinite(g):
        return [NAN] * n
    finite, equal = _row_setup(row)
    out = [0.0] * n
    if equal:
        mean = sum((Fraction(g[i]) for i in finite), Fraction(0)) / len(finite)
        for j in finite:
            out[j] = _exact((Fraction(g[j]) - mean) / len(finite), fmt)
        return out
    groups: dict[float, list] = {}
    for i in finite:
        groups.setdefault(row[i], []).append(Fraction(g[i]))
    means = {Fraction(sum(v, Fraction(0)), len(v)) for v in groups.values()}
    fixed = {}
    for i, j in enumerate(finite):  # g_j - c = 0 exactly iff g_j is the mean of every group
        if means == {Fraction(g[j])}:
            fixed[i] = 0.0
    pr = _Probabilities([row[i] for i in finite])
    gv = [g[i] for i in finite]
    gk = libmp.from_float(gv[pr.k])
    c = [libmp.mpf_sub(libmp.from_float(v), gk, 0) for v in gv]  # g_j - g_k, exact
    tied = pr.tied()
    kt = len(tied)
    GT = sum((Fraction(gv[i]) for i in tied), Fraction(0))
    split = {i: (kt * Fraction(gv[i]) - GT) / (kt * kt) for i in tied}  # w_j = c0 + pert at a tie
    split = {i: v for i, v in split.items() if not v.denominator & (v.denominator - 1)}

    def enclose(todo, prec):
        T = pr.spread(gv, prec)
        res = {}
        for i in todo:
            if i in split:
                pert = _tie_perturbation(pr, gv, tied, GT, i, prec)
                if pert is not None:
                    res[i] = exact_plus(dyadic(split[i]), pert, fmt, prec)
                    continue
            res[i] = mul(pr.p(i, prec), add((c[i], c[i]), T, prec), prec)
        return res

    for i, v in zip(finite, ziv(fmt, len(finite), enclose, fixed)):
        out[i] = v
    return out


def _tie_perturbation(pr: _Probabilities, gv: list, tied: list, GT: Fraction, j: int, prec: int):
    """Enclosure of ``w_j - c0`` for the softmax VJP at an entry ``j`` tied at the maximum
    (proofs/grad.md, Theorem G1 (c)): with ``k`` ties, ``r`` and ``R`` the sums of ``e_i`` and
    ``g_i e_i`` below the maximum and ``G`` the sum of ``g`` over the ties,
    ``w_j - (k g_j - G)/k**2 = (r (2 k G - k**2 g_j) - k**2 R + r**2 (G - k g_j)) / (k**2 (k + r)**2)``.
    None when the enclosure holds 0 at this precision (the caller encloses ``w_j`` directly)."""
    pr.at(prec)
    ties = set(tied)
    r = R = (_ZERO, _ZERO)
    for i, e in enumerate(pr.e):
        if i not in ties:
            r = add(r, e, prec)
            gi = point(gv[i])
            R = add(R, mul(gi, e, prec), prec)
    k = len(tied)
    a1 = enclose_rational(2 * k * GT - k * k * Fraction(gv[j]), prec)
    a2 = enclose_rational(GT - k * Fraction(gv[j]), prec)
    kk = point(float(k * k))
    num = sub(mul(r, a1, prec), mul(kk, R, prec), prec)
    num = add(num, mul(mul(r, r, prec), a2, prec), prec)
    kr = add(point(float(k)), r, prec)
    den = mul(kk, mul(kr, kr, prec), prec)
    pert = div(num, den, prec)
    lo, hi = pert
    if (lo[0] == 0 and lo[1]) or (hi[0] == 1 and hi[1]):  # lo > 0 or hi < 0
        return pert
    return None


def _scaled_probabilities_row(row: list, scale: float, fmt) -> list:
    """``scale * p_j`` (the logsumexp VJP with ``g = scale``)."""
    n = len(row)
    if _nonfinite_x_row(row) or _nonfinite([scale]):
        return [NAN] * n
    out = [0.0] * n
    if scale == 0:
        return out
    finite, equal = _row_setup(row)
    if equal:
        for j in finite:
            out[j] = _exact(Fraction(scale) / len(finite), fmt)
        return out
    pr = _Probabilities([row[i] for i in finite])
    sc = point(scale)
    share = Fraction(scale) / len(pr.tied())  # g p_j = g/k + g w at a tie
    split = set(pr.tied()) if not share.denominator & (share.denominator - 1) else set()

    def enclose(todo, prec):
        pr.at(prec)
        res = {}
        for i in todo:
            if i in split:
                res[i] = exact_plus(dyadic(share), mul(sc, pr.tie_split(prec)[1], prec), fmt, prec)
            else:
                res[i] = mul(sc, pr.p(i, prec), prec)
        return res

    for i, v in zip(finite, ziv(fmt, len(finite), enclose, {})):
        out[i] = v
    return out


def _fast(method: str, fmt) -> bool:
    """Whether a call takes the certified fast path (ValueError for an unknown ``method``)."""
    if method not in ("auto", "mpmath"):
        raise ValueError(f"method must be 'auto' or 'mpmath', not {method!r}")
    return method == "auto" and fmt.precision <= 24


def _elementwise(x, g, axis, row_fn, fast_name: str | None = None, method: str = "mpmath"):
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    g64 = checked_cotangent(g, x.shape)
    rx, rg = Rows(as_float64(x), axis), Rows(g64, axis)
    if fast_name is not None and _fast(method, fmt):
        xr, gr = np.ascontiguousarray(rx.rows), np.ascontiguousarray(rg.rows)
        values, todo = fast_grad.vjp_rows(fast_name, xr, gr, fmt)
        out = values.astype(np.float64)
        for r in todo.tolist():
            out[r] = row_fn(xr[r].tolist(), gr[r].tolist(), fmt)
    else:
        out = np.empty(rx.rows.shape, dtype=np.float64)
        for r, (row, gr) in enumerate(zip(rx.rows.tolist(), rg.rows.tolist())):
            out[r] = row_fn(row, gr, fmt)
    return rx.elementwise(out).astype(fmt.dtype)


def log_softmax(x: ArrayLike, g: ArrayLike, axis: Axis = -1, *, method: str = "auto") -> np.ndarray:
    """Correctly rounded VJP of :func:`softlog_numerics.log_softmax`: ``g - softmax(x) sum(g)``
    along ``axis``, in the dtype of ``x`` (``g`` of ``x``'s shape, any float format).

    ``method``: ``"auto"`` takes the certified fast path for float16, bfloat16 and float32 (Theorem
    F8 of proofs/fast_oracle.md; bit-identical), ``"mpmath"`` the interval loop alone.
    """
    return _elementwise(x, g, axis, _log_softmax_row, "log_softmax", method)


def softmax(x: ArrayLike, g: ArrayLike, axis: Axis = -1, *, method: str = "auto") -> np.ndarray:
    """Correctly rounded VJP of :func:`softlog_numerics.softmax`: ``y (g - sum(g y))`` with
    ``y = softmax(x)`` along ``axis``, in the dtype of ``x``.

    ``method``: as in :func:`log_softmax`.
    """
    return _elementwise(x, g, axis, _softmax_row, "softmax", method)


def logsumexp(
    x: ArrayLike, g: ArrayLike, axis: Axis = -1, keepdims: bool = False, *, method: str = "auto"
) -> np.ndarray:
    """Correctly rounded VJP of :func:`softlog_numerics.logsumexp`: ``g softmax(x)``, ``g`` of the
    shape ``logsumexp(x, axis, keepdims)`` returns; the result has ``x``'s shape and dtype.

    ``method``: as in :func:`log_softmax`.
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    rx = Rows(as_float64(x), axis)
    reduced = rx.reduced(np.zeros(rx.rows.shape[0]), keepdims).shape
    g64 = checked_cotangent(g, reduced).reshape(-1)
    xr = np.ascontiguousarray(rx.rows)
    if _fast(method, fmt):
        values, todo = fast_grad.vjp_rows("logsumexp", xr, g64, fmt)
        out = values.astype(np.float64)
        rows = todo.tolist()
    else:
        out = np.empty(rx.rows.shape, dtype=np.float64)
        rows = range(xr.shape[0])
    for r in rows:
        out[r] = _scaled_probabilities_row(xr[r].tolist(), float(g64[r]), fmt)
    return rx.elementwise(out).astype(fmt.dtype)


def _ce_grad_row(row: list, t: list, scale: float, lam: Fraction, fmt, tau: float | None = None) -> list:
    """``scale (p_j (1 + 2 lam lse) - t_j)``, or with a temperature ``T`` ``(scale / T) (p_j (1 +
    2 lam lse) - t_j)`` with ``p`` and ``lse`` those of ``row / T``."""
    n = len(row)
    settled, finite = settled_loss_row(row, t)
    if settled is not None or _nonfinite([scale]):
        return [NAN] * n
    out = [0.0] * n  # masked logits: p_j = 0 and t_j = 0
    if scale == 0:
        return out
    _, equal = _row_setup(row)
    tq = Fraction(1) if tau is None else Fraction(tau)
    sc = Fraction(scale) / tq
    if len(finite) == 1:  # p = 1, lse = m / T
        j = finite[0]
        out[j] = _exact(sc * (1 + 2 * lam * Fraction(row[j]) / tq - t[j]), fmt)
        return out
    if equal and lam == 0:
        for j in finite:
            out[j] = _exact(sc * (Fraction(1, len(finite)) - t[j]), fmt)
        return out
    pr = _Probabilities([row[i] for i in finite], tau)
    tt = [t[i] for i in finite]
    tied = set(pr.tied()) if lam == 0 else set()

    def enclose(todo, prec):
        res = {}
        scp = enclose_rational(sc, prec)  # a point unless T makes it non-dyadic
        for i in todo:
            if i in tied:  # p_j - t_j = (1/k - t_j) + w at a tie
                share, w = pr.tie_split(prec)
                c = share - tt[i]
            else:
                c, w = _weight(pr, i, tt[i], lam, prec)
            cs = sc * c
            w = mul(scp, w, prec)
            if cs.denominator & (cs.denominator - 1):  # not dyadic: not a rounding boundary
                res[i] = add(enclose_rational(cs, prec), w, prec)
            else:
                res[i] = exact_plus(dyadic(cs), w, fmt, prec)
        return res

    for i, v in zip(finite, ziv(fmt, len(finite), enclose, {})):
        out[i] = v
    return out


def _weight(pr: _Probabilities, i: int, t: Fraction, lam: Fraction, prec: int):
    """``p_i (1 + 2 lam lse) - t`` as ``(c, w)``: ``(p_i - t) + 2 lam p_i lse`` with ``p_i - t``
    split by :meth:`_Probabilities.minus_target`."""
    c, w = pr.minus_target(i, t, prec)
    if lam:
        w = add(w, mul(point(float(2 * lam)), mul(pr.p(i, prec), pr.lse(prec), prec), prec), prec)
    return c, w


def cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    g: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    axis: int = -1,
    z_loss: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
    validate: bool = True,
    temperature: float = 1.0,
    method: str = "auto",
) -> np.ndarray:
    """Correctly rounded gradient of :func:`softlog_numerics.cross_entropy` with respect to the
    logits, times the cotangent ``g`` of the loss's shape: ``g (softmax(z) (1 + 2 z_loss lse) - t)``;
    with a ``temperature`` ``T`` that of the loss of ``z / T``, ``(g / T) (softmax(z / T) (...) - t)``.

    Ignored rows give ``+0``; rows whose loss is NaN or ``+inf`` give NaN.

    ``method``: as in :func:`log_softmax` (the fast path takes ``z_loss=0`` and temperature 1).
    """
    tau = checked_temperature(temperature)
    tg = prepared_targets(
        logits, target, label_smoothing=label_smoothing, z_loss=z_loss, axis=axis,
        ignore_index=ignore_index, validate=validate,
    )
    fmt = tg.fmt
    R, K = tg.rows.rows.shape
    g64 = checked_cotangent(g, tg.rows.reduced(np.zeros(R), False).shape).reshape(-1)
    lam = Fraction(tg.z_loss)
    xr = np.ascontiguousarray(as_float64(tg.rows.rows))
    live = np.flatnonzero(~tg.ignored)
    if _fast(method, fmt) and tau is None and lam == 0:
        t_hi, t_lo = tg.float64()
        values, todo = fast_grad.cross_entropy_grad_rows(xr[live], t_hi[live], t_lo[live], g64[live], fmt,
                                                         exact_targets=tg.smoothing == 0)
        out = np.zeros((R, K), dtype=np.float64)
        out[live] = values
        rows = live[todo].tolist()
    else:
        out = np.zeros((R, K), dtype=np.float64)
        rows = live.tolist()
    for r in rows:
        out[r] = _ce_grad_row(xr[r].tolist(), tg.exact(r), float(g64[r]), lam, fmt, tau)
    return tg.rows.elementwise(out).astype(fmt.dtype)


# ---------------------------------------------------------------------------------------------
# JVPs


def _group_means(row: list, finite: list, d: list) -> set:
    """The means of ``d`` over each group of equal finite logits."""
    groups: dict[float, list] = {}
    for i, v in zip(finite, d):
        groups.setdefault(row[i], []).append(v)
    return {sum(v, Fraction(0)) / len(v) for v in groups.values()}


def _dot_row(row: list, dx: list, fmt, weights=None) -> float:
    """``sum_k w_k dx_k`` for one row with ``w = p``, or ``w_k = p_k (1 + 2 lam lse) - t_k`` when
    ``weights = (t, lam)``.

    Exact when ``lam = 0`` and ``dx`` has one mean over every group of equal logits, ``mu``: then
    ``sum_k p_k dx_k = mu`` (and otherwise it is irrational, Theorem G1).
    """
    if _nonfinite_x_row(row) or _nonfinite(dx):
        return NAN
    finite, _ = _row_setup(row)
    d = [Fraction(dx[i]) for i in finite]
    t, lam = weights if weights is not None else ([Fraction(0)] * len(row), Fraction(0))
    target_part = sum((t[i] * di for i, di in zip(finite, d)), Fraction(0))
    if len(finite) == 1:  # p = 1, lse = m
        return _exact((1 + 2 * lam * Fraction(row[finite[0]])) * d[0] - target_part, fmt)
    means = _group_means(row, finite, d)
    if lam == 0 and len(means) == 1:
        return _exact(next(iter(means)) - target_part, fmt)
    pr = _Probabilities([row[i] for i in finite])
    dv = [dx[i] for i in finite]
    # sum_k p_k dx_k = dx_m - T with T = sum_{i != m} (dx_m - dx_i) p_i (m the argmax): the
    # rational C = dx_m - sum_k t_k dx_k is formed exactly and W = -T + 2 lam lse (dx_m - T) is
    # enclosed, so that a C on a rounding boundary plus a tiny W is decided (exact_plus)
    dm = d[pr.k]
    C = dm - target_part
    c_exact = None if C.denominator & (C.denominator - 1) else dyadic(C)

    def enclose(todo, prec):
        T = pr.spread(dv, prec)
        W = (libmp.mpf_neg(T[1]), libmp.mpf_neg(T[0]))
        if lam:
            mean = sub(enclose_rational(dm, prec), T, prec)
            W = add(W, mul(point(float(2 * lam)), mul(pr.lse(prec), mean, prec), prec), prec)
        if c_exact is None:  # not dyadic: not a rounding boundary
            return {0: add(enclose_rational(C, prec), W, prec)}
        return {0: exact_plus(c_exact, W, fmt, prec)}

    return ziv(fmt, 1, enclose, {})[0]


def logsumexp_jvp(x: ArrayLike, dx: ArrayLike, axis: Axis = -1, keepdims: bool = False) -> np.ndarray:
    """Correctly rounded JVP of :func:`softlog_numerics.logsumexp`: ``sum softmax(x) dx`` along
    ``axis`` (``dx`` of ``x``'s shape), in the dtype of ``x``."""
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    d64 = checked_cotangent(dx, x.shape, "dx")
    rx, rd = Rows(as_float64(x), axis), Rows(d64, axis)
    out = [_dot_row(row, dr, fmt) if row else 0.0 for row, dr in zip(rx.rows.tolist(), rd.rows.tolist())]
    return rx.reduced(np.array(out, dtype=np.float64), keepdims).astype(fmt.dtype)


def _log_softmax_jvp_row(row: list, dx: list, fmt) -> list:
    """``dx_j - c`` with ``c = sum_k p_k dx_k``, exact when ``dx`` has one mean ``mu`` over every
    group of equal logits (then ``c = mu``; otherwise ``c`` is irrational, Theorem G1)."""
    n = len(row)
    if n == 0:
        return []
    if _nonfinite_x_row(row) or _nonfinite(dx):
        return [NAN] * n
    finite, _ = _row_setup(row)
    means = _group_means(row, finite, [Fraction(dx[i]) for i in finite])
    if len(means) == 1:
        mu = next(iter(means))
        return [_exact(Fraction(v) - mu, fmt) for v in dx]
    pr = _Probabilities([row[i] for i in finite])
    dv = [dx[i] for i in finite]
    dk = libmp.from_float(dv[pr.k])
    c = [libmp.mpf_sub(libmp.from_float(v), dk, 0) for v in dx]  # dx_j - dx_k, exact

    def enclose(todo, prec):
        T = pr.spread(dv, prec)
        return {j: exact_plus(c[j], T, fmt, prec) for j in todo}

    return ziv(fmt, n, enclose, {})


def log_softmax_jvp(x: ArrayLike, dx: ArrayLike, axis: Axis = -1) -> np.ndarray:
    """Correctly rounded JVP of :func:`softlog_numerics.log_softmax`: ``dx - sum(softmax(x) dx)``
    along ``axis``, in the dtype of ``x``."""
    return _elementwise(x, dx, axis, _log_softmax_jvp_row)


def softmax_jvp(x: ArrayLike, dx: ArrayLike, axis: Axis = -1, *, method: str = "auto") -> np.ndarray:
    """Correctly rounded JVP of :func:`softlog_numerics.softmax`: ``y (dx - sum(y dx))``, equal to
    its VJP with ``g = dx`` (the Jacobian ``diag(y) - y y^T`` is symmetric).

    ``method``: as in :func:`log_softmax`.
    """
    return _elementwise(x, dx, axis, _softmax_row, "softmax", method)


def cross_entropy_jvp(
    logits: ArrayLike,
    target: ArrayLike,
    dx: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    axis: int = -1,
    z_loss: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
    validate: bool = True,
) -> np.ndarray:
    """Correctly rounded JVP of :func:`softlog_numerics.cross_entropy` along a logits tangent
    ``dx``: ``sum_k (softmax(z)_k (1 + 2 z_loss lse) - t_k) dx_k`` per row (``+0`` on ignored rows)."""
    tg = prepared_targets(
        logits, target, label_smoothing=label_smoothing, z_loss=z_loss, axis=axis,
        ignore_index=ignore_index, validate=validate,
    )
    fmt = tg.fmt
    d64 = checked_cotangent(dx, tg.rows.shape, "dx")
    rd = Rows(d64, axis)
    lam = Fraction(tg.z_loss)
    out = []
    for r, (row, dr) in enumerate(zip(as_float64(tg.rows.rows).tolist(), rd.rows.tolist())):
        if tg.ignored[r]:
            out.append(0.0)
            continue
        t = tg.exact(r)
        settled, _ = settled_loss_row(row, t)
        out.append(NAN if settled is not None else _dot_row(row, dr, fmt, (t, lam)))
    return tg.rows.reduced(np.array(out, dtype=np.float64), False).astype(fmt.dtype)
