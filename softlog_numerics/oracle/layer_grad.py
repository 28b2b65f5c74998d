"""The correctly rounded VJP of the softlog-softmax layer with respect to ``P`` and ``w``
(re-exported by :mod:`softlog_numerics.oracle.grad`; proofs/grad.md, Theorem G6).

With ``z_k = sum_b w[b, k] L(P[r, b, k])``, ``p = softmax(z)`` and the cotangent ``g`` of row ``r``:
``v_k = p_k sum_j (g_k - g_j) p_j`` (softmax) or ``v_k = g_k - p_k S``, ``S = sum_j g_j`` (log),
at the largest logit ``m`` as ``(g_m - S) + S s / (1 + s)`` (``s = sum_{j != m} exp(z_j - z_m)``)
so that a dominant class costs no precision; ``dP[r, b, k] = v_k w[b, k] a / (a P[r, b, k] + b)``;
``dw[b, k] = sum_r v_{r k} L(P[r, b, k])`` and, for ``w`` of shape ``(B,)``,
``dw[b] = sum_r sum_k v_{r k} (L(P[r, b, k]) - L(P[r, b, 0]))`` (equal because ``sum_k v_k = 0``).

Exact cases, settled with fractions: the logits are compared as exact forms (rational part plus
rational multiples of ``L(v)`` over distinct ``v`` outside ``{0, 1}``: two logits are equal only when
their forms are, because the ``a v + b`` are pairwise coprime linear polynomials in the
transcendental ``e**2``, Theorem G6). ``v = 0`` when ``g`` is zero, ``K == 1``, or (softmax) the sum
of ``g_k - g_j`` over each class of equal logits vanishes; ``v = g`` (log) when ``S = 0``; all
logits equal give ``p = 1/K``. A ``dP`` component is zero exactly when ``v`` or ``w`` is. A ``dw``
entry is gathered over the rows whose logits agree up to a shift and an order of the classes
(the same probabilities, permuted) and over the distinct softlog arguments: ``L(x)`` times
``sum_k v_k(h_k)``, ``h_k`` the sum of the cotangent rows that meet ``x`` at class ``k`` (``v`` is
linear in the cotangent); such a combination is recognised as 0 when it vanishes as a polynomial
in the probabilities of the classes of equal logits (so ``sum_k v_k = 0``, mirrored rows and
cancelling cotangents need no precision). Other values are
decided by Ziv's loop; where the remaining terms vanish or are rational through a relation that
is not recognised here (such relations exist among ``exp(z_j)``, e.g. ``p = 1/3`` for the logits
``(L(1/2), L(1), L(0))``), :class:`~softlog_numerics.oracle.enclosures.OracleUndecided` is raised
rather than a guess returned.

Special values: a row whose forward value is NaN (NaN or ``±inf`` in ``P`` or ``w``, an entry
below the branch point), or whose cotangent is not finite, gives a NaN row of ``dP`` and an
all-NaN ``dw``. Exact zeros are ``+0``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from mpmath import libmp
from numpy.typing import ArrayLike

from softlog_numerics._core.axes import checked_cotangent, prepared_layer
from softlog_numerics._core.formats import as_float_array, format_of, round_rational
from softlog_numerics.oracle.enclosures import (
    EXACT_SOFTLOG,
    I_ONE,
    I_ZERO,
    NAN,
    add,
    as_float64,
    below_branch,
    div,
    enclose_exp,
    enclose_rational,
    enclose_softlog,
    mul,
    point,
    softlog_constants,
    sub,
    ziv,
)
from softlog_numerics.oracle.twins import softlog_sum, sum_enclosure

__all__ = ["softlog_softmax"]

_ZERO = Fraction(0)


class _Row:
    """One row ``r``: its logit forms, cotangent, and the cotangent ``v`` of its logits, exact
    (a Fraction) where recognised, else enclosed at a working precision on demand."""

    def __init__(self, Pr: list, w2: list, g: list, log: bool):
        B, K = len(Pr), len(g)
        self.P, self.g, self.log, self.K = Pr, [Fraction(x) for x in g], log, K
        self.forms = [softlog_sum((Pr[b][k], Fraction(w2[b][k])) for b in range(B)) for k in range(K)]
        self.exact: list[Fraction | None] = [None] * K
        self._cache: dict[int, list] = {}
        self._exps: dict[int, tuple] = {}
        G, S = self.g, sum(self.g, _ZERO)
        # Rows whose logits agree up to a shift and an order of the classes have the same
        # probabilities, permuted: the key is the sorted multiset of the logits relative to the
        # reference class that makes it smallest, and pos[k] the place of class k in that order.
        best = None
        for i in range(K):
            ci, wi = self.forms[i]
            rel = [(c - ci, tuple(sorted(_minus(ws, wi).items()))) for c, ws in self.forms]
            cand = tuple(sorted(rel))
            if best is None or cand < best[0]:
                best = (cand, rel)
        self.p_key = best[0] if best else ()
        order = sorted(range(K), key=lambda k: best[1][k]) if best else []
        self.pos = [0] * K
        for place, k in enumerate(order):
            self.pos[k] = place
        self.perm = order  # perm[place] = k
        groups: dict = {}
        for k, (c, ws) in enumerate(self.forms):
            groups.setdefault((c, tuple(sorted(ws.items()))), []).append(k)
        self.group_of = [0] * K
        for i, members in enumerate(groups.values()):
            for k in members:
                self.group_of[k] = i
        self.n_groups = len(groups)
        if K == 1 or not any(G):
            self.exact = [_ZERO] * K
            return
        if len(groups) == 1:  # equal logits: p = 1/K
            if log:
                self.exact = [gk - S / K for gk in G]
            else:
                self.exact = [(gk - S / K) / K for gk in G]
            return
        if log:
            if S == 0:
                self.exact = list(G)
            return
        for k in range(K):
            if all(sum((G[k] - G[j] for j in members), _ZERO) == 0 for members in groups.values()):
                self.exact[k] = _ZERO

    def exps_at(self, prec: int):
        """``(e, s, D, m)`` at ``prec``: ``e_j = exp(z_j - z_m)``, ``s = sum_{j != m} e_j``,
        ``D = 1 + s``, ``m`` the largest logit (by the enclosures' upper ends)."""
        got = self._exps.get(prec)
        if got is None:
            K = self.K
            cache: dict = {}
            z = [sum_enclosure(c, ws, prec, cache) for c, ws in self.forms]
            m = max(range(K), key=lambda j: libmp.to_float(z[j][1]))
            e = [I_ONE if j == m else enclose_exp(sub(z[j], z[m], prec), prec) for j in range(K)]
            s = I_ZERO
            for j in range(K):
                if j != m:
                    s = add(s, e[j], prec)
            got = (e, s, add(I_ONE, s, prec), m)
            self._exps = {prec: got}
        return got

    def combination_is_zero(self, h: dict) -> bool:
        """Whether ``sum_k v_k(h[k])`` (``v_k`` of the cotangent vector ``h[k]``, all Fractions) is 0
        for every value of the class probabilities: the polynomial in the probabilities ``pi_C``
        of the classes ``C`` of equal logits (homogenised by ``sum_C n_C pi_C = 1``) has no nonzero
        coefficient (Theorem G6 (b))."""
        K, gid, n = self.K, self.group_of, self.n_groups
        if self.log:  # sum_k h_k^k sum_j pi_G(j) - sum_k pi_G(k) sum_j h_j^k
            coef = [_ZERO] * n
            for k, hk in h.items():
                for j in range(K):
                    coef[gid[j]] += hk[k]
                coef[gid[k]] -= sum(hk, _ZERO)
            return not any(coef)
        M = [[_ZERO] * n for _ in range(n)]  # pi_G(k) pi_G(j) (h_k^k - h_j^k)
        for k, hk in h.items():
            for j in range(K):
                M[gid[k]][gid[j]] += hk[k] - hk[j]
        return all(M[a][b] + M[b][a] == 0 for a in range(n) for b in range(a, n))

    def combination_exact(self, h: dict) -> Fraction | None:
        """``sum_k v_k(h[k])`` when all logits are equal (``p = 1/K``), else None."""
        if self.n_groups != 1:
            return None
        K = self.K
        total = _ZERO
        for k, hk in h.items():
            H = sum(hk, _ZERO)
            total += hk[k] - H / K if self.log else (hk[k] - H / K) / K
        return total

    def v_of(self, k: int, h: list, prec: int):
        """Enclosure of ``v_k`` for the cotangent vector ``h`` (Fractions): ``p_k sum_j (h_k - h_j)
        p_j`` (softmax), or ``h_k - p_k H`` (``H = sum h``; at the largest logit ``m`` as
        ``(h_m - H) + H s / D``, so that a dominant class needs no extra precision)."""
        e, s, D, m = self.exps_at(prec)
        if self.log:
            H = sum(h, _ZERO)
            He = enclose_rational(H, prec)
            if k == m:
                return add(enclose_rational(h[m] - H, prec), mul(He, div(s, D, prec), prec), prec)
            return sub(enclose_rational(h[k], prec), mul(He, div(e[k], D, prec), prec), prec)
        inner = I_ZERO
        for j in range(self.K):
            if h[k] != h[j]:
                inner = add(inner, mul(enclose_rational(h[k] - h[j], prec), e[j], prec), prec)
        return div(mul(e[k], inner, prec), mul(D, D, prec), prec)

    def combination_at(self, h: dict, prec: int):
        """Enclosure of ``sum_k v_k(h[k])``."""
        acc = I_ZERO
        for k, hk in h.items():
            acc = add(acc, self.v_of(k, hk, prec), prec)
        return acc

    def v_at(self, prec: int) -> list:
        """Enclosures of ``v_k`` (points where exact)."""
        got = self._cache.get(prec)
        if got is not None:
            return got
        out: list = [None] * self.K
        for k, q in enumerate(self.exact):
            out[k] = enclose_rational(q, prec) if q is not None else self.v_of(k, self.g, prec)
        self._cache = {prec: out}
        return out


def softlog_softmax(
    P: ArrayLike, w: ArrayLike, g: ArrayLike, *, log: bool = False, validate: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Correctly rounded VJP of :func:`softlog_numerics.softlog_softmax`: the pair ``(dP, dw)``,
    ``dP[..., b, k] = v_k w[b, k] / (P[..., b, k] - x_b)`` and ``dw`` the sum over the leading
    indices (and over ``k`` for ``w`` of shape ``(B,)``) of ``v_k L(P[..., b, k])``, in the dtypes
    of ``P`` and ``w``; ``g`` of the layer output's shape (module docstring)."""
    P_in, w_in = as_float_array(P, "P"), as_float_array(w, "w")
    fmt_P, fmt_w = format_of(P_in.dtype), format_of(w_in.dtype)
    _, P2, wv = prepared_layer(P_in, w_in, validate)
    B, K = P2.shape[-2:]
    lead = P2.shape[:-2]
    G = checked_cotangent(g, lead + (K,)).reshape(-1, K)
    R = G.shape[0]
    w64 = as_float64(wv)
    w2 = np.broadcast_to(w64[:, None] if w64.ndim == 1 else w64, (B, K)).tolist()
    flat = as_float64(P2).reshape(R, B, K)
    dP = np.zeros((R, B, K))
    n_w = B if w64.ndim == 1 else B * K
    if R == 0 or K == 0 or B == 0:
        return _result(dP, P2.shape, fmt_P), _result(np.zeros(n_w), w64.shape, fmt_w)
    rows: list[_Row | None] = []
    for r in range(R):
        Pr = flat[r]
        bad = not (np.isfinite(Pr).all() and np.isfinite(w64).all() and np.isfinite(G[r]).all())
        bad = bad or any(below_branch(x) for x in set(Pr.ravel().tolist()))
        rows.append(None if bad else _Row(Pr.tolist(), w2, G[r].tolist(), log))
    for r, row in enumerate(rows):
        if row is None:
            dP[r] = NAN
        else:
            dP[r] = np.array(_dP_row(row, w2, fmt_P)).reshape(B, K)
    if any(row is None for row in rows):
        dw = np.full(n_w, NAN)
    else:
        dw = np.array(_dw(rows, B, K, w64.ndim == 1, fmt_w))
    return _result(dP, P2.shape, fmt_P), _result(dw, w64.shape, fmt_w)


def _result(values, shape, fmt):
    return np.asarray(values, dtype=np.float64).reshape(shape).astype(fmt.dtype)


def _dP_row(row: _Row, w2: list, fmt) -> list:
    B, K = len(w2), row.K
    fixed = {}
    for b in range(B):
        for k in range(K):
            if w2[b][k] == 0 or row.exact[k] == 0:
                fixed[b * K + k] = 0.0

    def enclose(todo, prec):
        a, c = softlog_constants(prec)
        v = row.v_at(prec)
        out = {}
        for i in todo:
            b, k = divmod(i, K)
            den = add(mul(a, point(row.P[b][k]), prec), c, prec)
            out[i] = div(mul(mul(v[k], point(w2[b][k]), prec), a, prec), den, prec)
        return out

    return ziv(fmt, B * K, enclose, fixed)


def _dw(rows: list, B: int, K: int, per_member: bool, fmt) -> list:
    """Each ``dw`` entry as a sum over classes of rows with the same probabilities (equal logit
    forms up to a shift) and over the distinct softlog arguments ``x`` of ``L(x)`` times a
    combination ``sum_k v_k(h_k)``, ``h_k`` the sum of the cotangent rows meeting ``x`` at class
    ``k`` (``v`` is linear in the cotangent; ``L(0)``, ``L(1)`` are folded in as rational weights).
    Combinations that vanish identically are dropped (Theorem G6 (b)); with ``w`` of shape
    ``(B,)`` the sum over ``k`` needs no reference term (``sum_k v_k = 0`` is such a vanishing)."""
    reps: dict = {}
    for row in rows:
        reps.setdefault(row.p_key, row)
    entries = []  # per output: [(rep row, x or None, h in the rep's class indices)]
    for b in range(B):
        for kk in ([None] if per_member else range(K)):
            combos: dict = {}  # h in canonical places
            for row in rows:
                if not any(row.g):
                    continue
                for k in (range(K) if per_member else [kk]):
                    x = row.P[b][k]
                    lx = EXACT_SOFTLOG.get(x)
                    key = (row.p_key, None if lx is not None else x)
                    h = combos.setdefault(key, {}).setdefault(row.pos[k], [_ZERO] * K)
                    scale = Fraction(lx) if lx is not None else Fraction(1)
                    for j in range(K):
                        h[row.pos[j]] += scale * row.g[j]
            kept = []
            for (pk, x), hc in combos.items():
                rep = reps[pk]
                h = {rep.perm[c]: [vec[rep.pos[j]] for j in range(K)] for c, vec in hc.items()}
                if not rep.combination_is_zero(h):
                    kept.append((rep, x, h))
            entries.append(kept)
    fixed = {}
    for i, kept in enumerate(entries):
        if not kept:
            fixed[i] = 0.0
        elif all(x is None for _, x, _ in kept):
            vals = [rep.combination_exact(h) for rep, _, h in kept]
            if all(v is not None for v in vals):
                q = sum(vals, _ZERO)
                fixed[i] = round_rational(q.numerator, q.denominator, fmt) if q else 0.0

    def enclose(todo, prec):
        cache: dict = {}
        out = {}
        for i in todo:
            acc = I_ZERO
            for rep, x, h in entries[i]:
                term = rep.combination_at(h, prec)
                if x is not None:
                    lx = cache.get(x)
                    if lx is None:
                        lx = cache[x] = enclose_softlog(x, prec)
                    term = mul(term, lx, prec)
                acc = add(acc, term, prec)
            out[i] = acc
        return out

    return ziv(fmt, len(entries), enclose, fixed)


def _minus(a: dict, b: dict) -> dict:
    """``a - b`` of two ``{v: weight}`` forms, zero weights dropped."""
    out = dict(a)
    for v, c in b.items():
        out[v] = out.get(v, _ZERO) - c
    return {v: c for v, c in out.items() if c}
