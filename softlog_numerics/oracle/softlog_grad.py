"""Correctly rounded VJPs of the softlog family: ``softlog``, the softlog entropy and
cross-entropy, ``sld`` and ``sld_sym`` (re-exported by :mod:`softlog_numerics.oracle.grad`).

With ``L'(x) = 1/(x - x_b) = a/(a x + b)`` (``a = e - 1/e``, ``b = 1/e``, ``x_b = -b/a`` the
branch point) every component is ``g`` times a combination

    ``sum_v c_v L(v) + sum_j d_j n_j / (w_j - x_b)``

with rational coefficients ``c_v`` over the *distinct* arguments ``v``, rational numerators
``n_j`` and float ``w_j`` (proofs/grad.md, Theorem G5). It is rational exactly when every ``L(v)``
with ``c_v != 0`` has ``v`` in ``{0, 1}`` and every ``n_j`` is 0 (then it is computed with
fractions and rounded once); if the ``L`` part is rational and some ``n_j != 0`` it is
irrational (``e**2`` is transcendental), and Ziv's loop decides it. When an ``L(v)`` with ``v``
outside ``{0, 1}`` is combined with a ratio (the entropy's, ``sld``'s and ``sld_sym``'s
``p``-components), no theorem excludes a rational value: an undecided value raises
:class:`~softlog_numerics.oracle.enclosures.OracleUndecided` rather than return a guess.

Special values: NaN, infinite, or below-branch ``p_k``, ``q_k`` (or ``x``) give NaN, except
``softlog`` at ``x = +inf`` (``L' = 0``: ``+0``, NaN for an infinite ``g``); a NaN cotangent gives
NaN; an infinite one an infinity of the component's sign (NaN where the component is 0). Exact
zeros are ``+0``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics._core.axes import (
    Axis,
    Rows,
    checked_cotangent,
    prepared_distributions,
)
from softlog_numerics._core.formats import as_float_array, format_of, round_rational
from softlog_numerics.oracle.enclosures import (
    EXACT_SOFTLOG,
    INF,
    NAN,
    add,
    as_float64,
    below_branch,
    div,
    enclose_rational,
    enclose_softlog,
    mul,
    point,
    softlog_constants,
    ziv,
)

__all__ = ["sld", "sld_sym", "softlog", "softlog_cross_entropy", "softlog_entropy"]


class _Combination:
    """``sum_v c_v L(v) + sum_j d_j n_j / (w_j - x_b)`` (coefficients and numerators Fractions)."""

    def __init__(self):
        self.logs: dict[float, Fraction] = {}
        self.ratios: list[tuple[Fraction, Fraction, float]] = []

    def log(self, c, v: float):
        self.logs[v] = self.logs.get(v, Fraction(0)) + Fraction(c)
        return self

    def ratio(self, d, n: Fraction, w: float):
        self.ratios.append((Fraction(d), n, w))
        return self

    def exact(self) -> Fraction | None:
        """The rational value, or None when the combination has a transcendental part."""
        if any(c and v not in EXACT_SOFTLOG for v, c in self.logs.items()):
            return None
        if any(d and n for d, n, _ in self.ratios):
            return None
        return sum((c * EXACT_SOFTLOG[v] for v, c in self.logs.items() if c), Fraction(0))

    def enclose(self, prec: int):
        a, b = softlog_constants(prec)
        acc = enclose_rational(Fraction(0), prec)
        for v, c in self.logs.items():
            if c:
                acc = add(acc, mul(enclose_rational(c, prec), enclose_softlog(v, prec), prec), prec)
        for d, n, w in self.ratios:
            if d and n:
                den = add(mul(a, point(w), prec), b, prec)
                term = div(mul(enclose_rational(d * n, prec), a, prec), den, prec)
                acc = add(acc, term, prec)
        return acc


def _times_g(comb: _Combination, g: float, fmt) -> float:
    """``g`` times the combination, correctly rounded to ``fmt``."""
    if g != g:
        return NAN
    exact = comb.exact()
    if exact is not None:
        if exact == 0:
            return NAN if g in (INF, -INF) else 0.0
        if g in (INF, -INF):
            return g if exact > 0 else -g
        v = Fraction(g) * exact
        return round_rational(v.numerator, v.denominator, fmt) if v else 0.0
    if g == 0:
        return 0.0
    gp = point(g if g not in (INF, -INF) else 1.0)

    def enclose(todo, prec):
        return {0: mul(gp, comb.enclose(prec), prec)}

    r = ziv(fmt, 1, enclose, {})[0]
    if g in (INF, -INF):  # the sign of the (nonzero) combination, from its rounding
        return g if np.signbit(r) == np.signbit(1.0) else -g
    return r


def _outside(v: float) -> bool:
    """NaN, infinite, or below the branch point: the derivative is not a number there."""
    return v != v or v in (INF, -INF) or below_branch(v)


def softlog(x: ArrayLike, g: ArrayLike) -> np.ndarray:
    """Correctly rounded VJP of :func:`softlog_numerics.softlog`: ``g / (x - x_b)``, in the dtype of
    ``x`` (``g`` of ``x``'s shape)."""
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    g64 = checked_cotangent(g, x.shape).ravel().tolist()
    out = []
    for v, gv in zip(as_float64(x).ravel().tolist(), g64):
        if v == INF:
            out.append(NAN if gv != gv or gv in (INF, -INF) else 0.0)
        elif _outside(v):
            out.append(NAN)
        else:
            out.append(_times_g(_Combination().ratio(1, Fraction(1), v), gv, fmt))
    return np.array(out, dtype=np.float64).reshape(x.shape).astype(fmt.dtype)


def _components(kind: str, wrt: str, p: float, q: float) -> _Combination:
    c = _Combination()
    fp, fq = Fraction(p), Fraction(q)
    if kind == "softlog_entropy":
        return c.log(-1, p).ratio(-1, fp, p)
    if kind == "softlog_cross_entropy":
        return c.log(-1, q) if wrt == "p" else c.ratio(-1, fp, q)
    if kind == "sld":
        if wrt == "p":
            return c.log(Fraction(1, 2), p).log(Fraction(-1, 2), q).ratio(Fraction(1, 2), fp, p)
        return c.ratio(Fraction(-1, 2), fp, q)
    s = Fraction(1, 4) if wrt == "p" else Fraction(-1, 4)  # sld_sym
    return c.log(s, p).log(-s, q).ratio(s, fp - fq, p if wrt == "p" else q)


def _divergence_vjp(kind: str, args, g, axis, keepdims: bool, validate: bool):
    names = ("p",) if kind == "softlog_entropy" else ("p", "q")
    fmt, arrays = prepared_distributions(args, names, axis, validate)
    rows = [Rows(as_float64(a), axis) for a in arrays]
    R, n = rows[0].rows.shape
    G = checked_cotangent(g, rows[0].reduced(np.zeros(R), keepdims).shape).reshape(R).tolist()
    P, Q = rows[0].rows.tolist(), rows[-1].rows.tolist()
    outs = []
    for wrt in names:
        out = np.empty((R, n), dtype=np.float64)
        for r in range(R):
            for k in range(n):
                p, q = P[r][k], Q[r][k]
                if _outside(p) or _outside(q):
                    out[r, k] = NAN
                else:
                    out[r, k] = _times_g(_components(kind, wrt, p, q), G[r], fmt)
        outs.append(rows[0].elementwise(out).astype(fmt.dtype))
    return outs[0] if len(outs) == 1 else tuple(outs)


def softlog_entropy(
    p: ArrayLike,
    g: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    *,
    validate: bool = True,
) -> np.ndarray:
    """Correctly rounded VJP of :func:`softlog_numerics.softlog_entropy`:
    ``-g (L(p_k) + p_k / (p_k - x_b))``, ``g`` of the forward output's shape."""
    return _divergence_vjp("softlog_entropy", (p,), g, axis, keepdims, validate)


def softlog_cross_entropy(
    p: ArrayLike,
    q: ArrayLike,
    g: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    *,
    validate: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Correctly rounded VJP of :func:`softlog_numerics.softlog_cross_entropy`: the pair
    ``(-g L(q_k), -g p_k / (q_k - x_b))``."""
    return _divergence_vjp("softlog_cross_entropy", (p, q), g, axis, keepdims, validate)


def sld(
    p: ArrayLike,
    q: ArrayLike,
    g: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    *,
    validate: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Correctly rounded VJP of :func:`softlog_numerics.sld`: the pair
    ``(g/2 (L(p_k) - L(q_k) + p_k / (p_k - x_b)), -g/2 p_k / (q_k - x_b))``."""
    return _divergence_vjp("sld", (p, q), g, axis, keepdims, validate)


def sld_sym(
    p: ArrayLike,
    q: ArrayLike,
    g: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    *,
    validate: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Correctly rounded VJP of :func:`softlog_numerics.sld_sym`: the pair
    ``(g/4 (L(p_k) - L(q_k) + (p_k - q_k) / (p_k - x_b)), -g/4 (L(p_k) - L(q_k) + (p_k - q_k) / (q_k - x_b)))``."""
    return _divergence_vjp("sld_sym", (p, q), g, axis, keepdims, validate)
