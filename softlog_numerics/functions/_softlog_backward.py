"""The backward pass of the softlog family: vector-Jacobian products of ``softlog``, the softlog
entropy and cross-entropy, and the divergences ``sld`` and ``sld_sym``, NumPy only.

With ``x_b = -1/(e**2 - 1)`` the branch point of ``L(x) = ln((e - 1/e) x + 1/e)``, the derivative is
``L'(x) = 1/(x - x_b)``, and along ``axis`` (``g`` the cotangent of the reduced output):

* ``softlog``:               ``g / (x - x_b)``;
* ``softlog_entropy``:       ``dp_k = -g (L(p_k) + p_k / (p_k - x_b))``;
* ``softlog_cross_entropy``: ``dp_k = -g L(q_k)``, ``dq_k = -g p_k / (q_k - x_b)``;
* ``sld``:                   ``dp_k = g/2 (L(p_k) - L(q_k) + p_k / (p_k - x_b))``,
  ``dq_k = -g/2 p_k / (q_k - x_b)``;
* ``sld_sym``:               ``dp_k = g/4 (L(p_k) - L(q_k) + (p_k - q_k) / (p_k - x_b))``,
  ``dq_k = -g/4 (L(p_k) - L(q_k) + (p_k - q_k) / (q_k - x_b))``.

Every term is a double-double: ``L`` and ``L(p) - L(q)`` from the kernels of
:mod:`._softlog_dd` (relative error ``2**-64``), ``w - x_b`` from the exact split ``w - XB[0]`` and
the low part of ``x_b``, the ratio by a double-double division of normalised operands; the terms
are added in double-double, multiplied by ``g`` (TwoProd) and rounded once to float64, and once
more to a narrow format (proofs/grad.md, Theorem G5).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics._core import constants as _c
from softlog_numerics._core.axes import (
    Axis,
    Rows,
    checked_cotangent,
    prepared_distributions,
)
from softlog_numerics._core.dd import dd_add, dd_div, dd_mul
from softlog_numerics._core.eft import two_sum
from softlog_numerics._core.formats import as_float_array, format_of, round_from_float64
from softlog_numerics.functions._softlog_dd import (
    below_branch,
    softlog_dd,
    softlog_diff_dd,
)

__all__ = [
    "sld_sym_vjp",
    "sld_vjp",
    "softlog_cross_entropy_vjp",
    "softlog_entropy_vjp",
    "softlog_vjp",
]

_XB_HI, _XB_LO = _c.XB


def _ratio(vh, vl, w):
    """``(vh + vl) / (w - x_b)`` as ``2**k (h + l)`` for a finite double-double ``vh + vl`` and a
    finite ``w`` above the branch point: ``w - x_b = (w - XB[0]) - XB[1]`` (TwoSum exact, then one
    double-double addition), both operands normalised by ``frexp`` so that the double-double
    division (one Newton step) works in ``[1/4, 2)``; ``h + l`` within ``2**-100`` relative
    (Theorem G5 (a))."""
    dh, dl = two_sum(w, np.full_like(w, -_XB_HI))
    dh, dl = dd_add(dh, dl, np.full_like(w, -_XB_LO), np.zeros_like(w))
    mv, ev = np.frexp(vh)
    md, ed = np.frexp(dh)
    h, l = dd_div(mv, np.ldexp(vl, -ev), md, np.ldexp(dl, -ed))
    return h, l, (ev - ed).astype(np.int64)


def _unscaled(h, l, k):
    """``2**k (h + l)`` as a double-double of float64 (exact while it is normal)."""
    hh = np.ldexp(h, k)
    ll = np.where(np.isfinite(hh), np.ldexp(l, k), 0.0)
    return hh, ll


# ---------------------------------------------------------------------------------------------
# softlog


def softlog_vjp(x: ArrayLike, g: ArrayLike) -> np.ndarray:
    """Vector-Jacobian product of :func:`softlog_numerics.softlog`: ``g L'(x) = g / (x - x_b)``.

    Parameters
    ----------
    x : array_like
        The forward input (float16, bfloat16, float32 or float64).
    g : array_like
        The cotangent, of ``x``'s shape.

    Returns
    -------
    numpy.ndarray
        ``g / (x - x_b)`` in the dtype of ``x``, ``x_b = -1/(e**2 - 1)`` the branch point.

    Raises
    ------
    TypeError
        For unsupported dtypes.
    ValueError
        When ``g``'s shape is not ``x``'s (the message names both).

    Notes
    -----
    Domain: ``x`` above the branch point (``L(x)`` finite); below it, and for NaN, the result is
    NaN. ``x = +inf`` gives ``+0`` (``L'(+inf) = 0``; NaN for an infinite ``g``); an infinite ``g``
    gives an infinity of its sign; exact zeros are ``+0``. ``L' > 0``, so the result has the sign of ``g``.

    Algorithm: ``x - x_b`` as a double-double (exact split, then the low part of ``x_b``), ``g``
    divided by it in double-double on normalised operands, one rounding to float64 and, for a
    narrow format, one to the format.

    Accuracy: at most 1 ULP in every format (``LOSS_GRAD_BOUNDS["grad.softlog"]``),
    proofs/grad.md, Theorem G5.
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    G = checked_cotangent(g, x.shape)
    X = x.astype(np.float64).ravel()
    G = G.ravel()
    out = np.full(X.shape, np.nan)
    with np.errstate(all="ignore"):
        live = np.isfinite(X) & ~below_branch(np.where(np.isfinite(X), X, 0.0))
        fin = live & np.isfinite(G)
        if fin.any():
            ones = np.ones(int(fin.sum()))
            h, l, k = _ratio(ones, 0.0 * ones, X[fin])
            out[fin] = np.where(G[fin] == 0.0, 0.0, _scaled_product(h, l, k, G[fin]))  # +0 for g = -0
        ginf = live & np.isinf(G)
        out[ginf] = G[ginf]
        top = X == np.inf
        out[top] = np.where(np.isfinite(G[top]), 0.0, np.nan)  # L'(+inf) = 0: +0 (NaN for g = +-inf)
    return round_from_float64(out, fmt).reshape(x.shape)


def _scaled_product(h, l, k, g):
    """``g 2**k (h + l)`` rounded once to float64 for ``h + l`` in ``[1/4, 2)`` (or 0): the
    product of the normalised parts in double-double, then one ``ldexp`` of the rounded sum."""
    e = np.frexp(g)[1]
    m = np.ldexp(g, -e)
    ph, pl = dd_mul(h, l, m, np.zeros_like(m))
    return np.ldexp(ph + pl, k + e)


# ---------------------------------------------------------------------------------------------
# The entropies and divergences


def _terms(kind: str, wrt: str, p, q):
    """The double-double ``(h, l)`` that ``g`` multiplies in the component of ``kind`` with
    respect to ``wrt``, for finite ``p``, ``q`` above the branch point (1-D float64)."""
    zero = np.zeros_like(p)
    if kind == "softlog_cross_entropy" and wrt == "p":  # -L(q)
        h, l = softlog_dd(q)
        return -h, -l
    if wrt == "q" and kind in ("softlog_cross_entropy", "sld"):  # -c p / (q - x_b)
        h, l = _unscaled(*_ratio(p, zero, q))
        c = 1.0 if kind == "softlog_cross_entropy" else 0.5
        return -c * h, -c * l
    if kind == "softlog_entropy":  # -(L(p) + p / (p - x_b))
        Lh, Ll = softlog_dd(p)
        rh, rl = _unscaled(*_ratio(p, zero, p))
        h, l = dd_add(Lh, Ll, rh, rl)
        return -h, -l
    # sld (p) and sld_sym: D = L(p) - L(q) (0 when p == q) plus a ratio
    Dh, Dl = np.zeros_like(p), np.zeros_like(p)
    ne = p != q
    if ne.any():
        Dh[ne], Dl[ne] = softlog_diff_dd(p[ne], q[ne])
    if kind == "sld":  # (D + p / (p - x_b)) / 2
        rh, rl = _unscaled(*_ratio(p, zero, p))
        h, l = dd_add(Dh, Dl, rh, rl)
        return 0.5 * h, 0.5 * l
    vh, vl = two_sum(p, -q)  # p - q, exact
    w = p if wrt == "p" else q
    rh, rl = _unscaled(*_ratio(vh, vl, w))
    h, l = dd_add(Dh, Dl, rh, rl)
    c = 0.25 if wrt == "p" else -0.25
    return c * h, c * l


def _unary_kind(kind: str) -> bool:
    return kind == "softlog_entropy"


def _divergence_vjp(kind: str, args, g, axis, keepdims: bool, validate: bool):
    names = ("p",) if _unary_kind(kind) else ("p", "q")
    fmt, arrays = prepared_distributions(args, names, axis, validate)
    rows = [Rows(a, axis) for a in arrays]
    R, n = rows[0].rows.shape
    G = checked_cotangent(g, rows[0].reduced(np.zeros(R), keepdims).shape).reshape(R)
    P = rows[0].rows.astype(np.float64).ravel()
    Q = rows[-1].rows.astype(np.float64).ravel()
    Gb = np.repeat(G, n)
    outs = []
    with np.errstate(all="ignore"):
        live = np.isfinite(P) & np.isfinite(Q)
        live &= ~below_branch(np.where(live, P, 0.0)) & ~below_branch(np.where(live, Q, 0.0))
        for wrt in names:
            out = np.full(P.shape, np.nan)
            if live.any():
                h, l = _terms(kind, wrt, P[live], Q[live])
                gl = Gb[live]
                fin = np.isfinite(gl)
                val = gl * h  # infinite cotangents: +-inf, or NaN on a zero term
                e = np.frexp(np.where(fin, gl, 1.0))[1]
                m = np.ldexp(np.where(fin, gl, 1.0), -e)
                ph, pl = dd_mul(h, l, m, np.zeros_like(m))
                val = np.where(fin, np.ldexp(ph + pl, e), val)
                val = np.where(fin & ((gl == 0.0) | (h == 0.0)), 0.0, val)  # exact zeros are +0
                out[live] = val
            res = round_from_float64(out, fmt).reshape(R, n)
            outs.append(rows[0].elementwise(res))
    return outs[0] if len(outs) == 1 else tuple(outs)


_F = TypeVar("_F", bound=Callable[..., Any])


def _with_notes(f: _F) -> _F:
    """Append the shared Notes section (domain, algorithm, accuracy) to ``f``'s docstring."""
    if f.__doc__ is not None:  # python -OO strips docstrings
        f.__doc__ = f.__doc__.rstrip() + "\n" + _NOTES
    return f


_NOTES = """
    Notes
    -----
    Domain: distributions along ``axis`` when ``validate`` (as the forward function); a component
    whose ``p_k`` or ``q_k`` is NaN, infinite or below the softlog's branch point is NaN, and an
    infinite cotangent gives an infinity (NaN where the derivative is 0).

    Algorithm: the double-double terms of the module docstring (:mod:`._softlog_backward`), added
    in double-double, times ``g`` (exact products of normalised parts), rounded once to float64
    and once to a narrow format.

    Accuracy: each component is within 1 ULP of the correctly rounded value in every format, or,
    where its terms cancel, within ``CANCELLATION[f] * 2**-53 * tau`` with ``tau`` the sum of the
    magnitudes of its terms times ``|g|`` (``LOSS_GRAD_BOUNDS``, ``CANCELLATION``,
    :func:`softlog_numerics.testing.contract.softlog_grad_term_scale`); proofs/grad.md, Theorem G5.
"""


@_with_notes
def softlog_entropy_vjp(
    p: ArrayLike, g: ArrayLike, axis: Axis = -1, keepdims: bool = False, *, validate: bool = True
) -> np.ndarray:
    """VJP of :func:`softlog_numerics.softlog_entropy`: ``-g (L(p_k) + p_k / (p_k - x_b))``.

    Parameters
    ----------
    p : array_like
        The forward input.
    g : array_like
        The cotangent, of the forward output's shape (``p``'s without ``axis``, or with length-1
        axes for ``keepdims``).
    axis, keepdims, validate
        As for the forward function.

    Returns
    -------
    numpy.ndarray
        The cotangent of ``p``, in ``p``'s dtype.
"""
    return _divergence_vjp("softlog_entropy", (p,), g, axis, keepdims, validate)


@_with_notes
def softlog_cross_entropy_vjp(
    p: ArrayLike, q: ArrayLike, g: ArrayLike, axis: Axis = -1, keepdims: bool = False, *, validate: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """VJP of :func:`softlog_numerics.softlog_cross_entropy`: ``(-g L(q_k), -g p_k / (q_k - x_b))``.

    Parameters
    ----------
    p, q : array_like
        The forward inputs.
    g : array_like
        The cotangent, of the forward output's shape.
    axis, keepdims, validate
        As for the forward function.

    Returns
    -------
    tuple of numpy.ndarray
        The cotangents of ``p`` and ``q``, in the promoted dtype of the inputs.
"""
    return _divergence_vjp("softlog_cross_entropy", (p, q), g, axis, keepdims, validate)


@_with_notes
def sld_vjp(
    p: ArrayLike, q: ArrayLike, g: ArrayLike, axis: Axis = -1, keepdims: bool = False, *, validate: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """VJP of :func:`softlog_numerics.sld`: ``g/2 (L(p_k) - L(q_k) + p_k / (p_k - x_b))`` and
    ``-g/2 p_k / (q_k - x_b)``.

    Parameters
    ----------
    p, q : array_like
        The forward inputs.
    g : array_like
        The cotangent, of the forward output's shape.
    axis, keepdims, validate
        As for the forward function.

    Returns
    -------
    tuple of numpy.ndarray
        The cotangents of ``p`` and ``q``, in the promoted dtype of the inputs.
"""
    return _divergence_vjp("sld", (p, q), g, axis, keepdims, validate)


@_with_notes
def sld_sym_vjp(
    p: ArrayLike, q: ArrayLike, g: ArrayLike, axis: Axis = -1, keepdims: bool = False, *, validate: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """VJP of :func:`softlog_numerics.sld_sym`: ``g/4 (L(p_k) - L(q_k) + (p_k - q_k) / (p_k - x_b))``
    and ``-g/4 (L(p_k) - L(q_k) + (p_k - q_k) / (q_k - x_b))``.

    Parameters
    ----------
    p, q : array_like
        The forward inputs.
    g : array_like
        The cotangent, of the forward output's shape.
    axis, keepdims, validate
        As for the forward function.

    Returns
    -------
    tuple of numpy.ndarray
        The cotangents of ``p`` and ``q``, in the promoted dtype of the inputs.
"""
    return _divergence_vjp("sld_sym", (p, q), g, axis, keepdims, validate)
