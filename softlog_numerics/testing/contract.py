"""The accuracy contract: maximum ULP distance from the correctly rounded oracle, per function and
format, for every input whose result is not NaN. Each number is proven in ``proofs/`` (the theorem
is named in the function's docstring) and enforced by the tests and by ``softlog-numerics accuracy``.

``CANCELLATION`` lists the functions whose sums can cancel: for them, in a format whose bound is
not 0, the ULP bound holds, *or* the absolute error is at most ``CANCELLATION[f] * 2**-53 * sum_k |term_k|`` (the terms of the sum
as defined in the docstring), whichever is larger. :func:`term_scale` computes that scale and
:func:`within_contract` applies the whole rule; accuracy, the audit and the sweeps all judge a result
with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics._core.formats import FormatLike, format_of
from softlog_numerics._core.targets import IGNORE_INDEX
from softlog_numerics.testing.ulp import ulp_distance

__all__ = [
    "CANCELLATION",
    "LOSS_GRAD_BOUNDS",
    "ULP_BOUNDS",
    "bound_of",
    "dense_target",
    "derivative_term_scales",
    "grad_term_scale",
    "layer_grad_term_scale",
    "softlog_grad_term_scale",
    "term_scale",
    "within_contract",
    "within_derivative_contract",
]

ULP_BOUNDS: dict[str, dict[str, int]] = {
    "softlog": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 2},
    "softlog_inverse": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 4},
    "logsumexp": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 2},
    "log_softmax": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 2},
    "softmax": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 3},
    "sld_sym": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 1},
    "softlog_entropy": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 4},
    "softlog_cross_entropy": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 4},
    "sld": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 4},
}

LOSS_GRAD_BOUNDS: dict[str, dict[str, int]] = {
    "cross_entropy": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 2},
    "grad.log_softmax": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 2},
    "grad.softmax": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 2},
    "grad.logsumexp": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 3},
    "grad.cross_entropy": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 2},
    "grad.softlog": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 1},
    "grad.softlog_entropy": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 1},
    "grad.softlog_cross_entropy": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 1},
    "grad.sld": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 1},
    "grad.sld_sym": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 1},
    "grad.softlog_softmax": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 2},
    "grad.logsumexp_jvp": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 2},
    "grad.log_softmax_jvp": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 2},
    "grad.softmax_jvp": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 2},
    "grad.cross_entropy_jvp": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 2},
}
"""The fused loss, the backward pass and the forward mode (proofs/grad.md, Theorems G2, G3, G4, G5,
G6; G7 and G8 make the narrow-format loss and log_softmax VJP correctly rounded), enforced by tests/test_backward.py, tests/test_forward_mode.py,
tests/test_softlog_backward.py and tests/test_layer_backward.py; ``accuracy`` and ``audit`` measure the forward table
:data:`ULP_BOUNDS`."""

CANCELLATION: dict[str, float] = {
    "softlog_entropy": 4.0,
    "softlog_cross_entropy": 4.0,
    "sld": 4.0,
    "grad.log_softmax": 25.0,
    "grad.softmax": 25.0,
    "grad.cross_entropy": 45.0,
    "grad.logsumexp": 25.0,
    "grad.softlog_entropy": 1.0,
    "grad.sld": 1.0,
    "grad.sld_sym": 1.0,
    "grad.softlog_softmax": 25.0,
    "grad.logsumexp_jvp": 25.0,
    "grad.log_softmax_jvp": 25.0,
    "grad.softmax_jvp": 25.0,
    "grad.cross_entropy_jvp": 45.0,
}

_A = math.e - 1.0 / math.e
_X0 = 1.0 / (math.e + 1.0)  # L(x) = log1p(a (x - x0))


def term_scale(function: str, args) -> np.ndarray:
    """``sum_k |term_k|`` of each row of a divergence's sum along the last axis, in float64 (an
    error scale, accurate to a few float64 ULPs, not a value that needs to be exact).

    The terms: ``p_k L(p_k)`` (``softlog_entropy``), ``p_k L(q_k)`` (``softlog_cross_entropy``),
    ``p_k (L(p_k) - L(q_k)) / 2`` (``sld``), ``(p_k - q_k) (L(p_k) - L(q_k)) / 4`` (``sld_sym``);
    ``args`` is ``(p,)`` or ``(p, q)``. NaN terms are left out.
    """
    p = args[0].astype(np.float64)
    q = args[-1].astype(np.float64)
    with np.errstate(all="ignore"):
        if function == "softlog_entropy":
            t = p * np.log1p(_A * (p - _X0))
        elif function == "softlog_cross_entropy":
            t = p * np.log1p(_A * (q - _X0))
        else:
            diff = np.log1p(_A * (p - q) / (_A * q + 1.0 / math.e))
            t = 0.5 * p * diff if function == "sld" else 0.25 * (p - q) * diff
    return np.nansum(np.abs(t), axis=-1)


def bound_of(function: str, dtype) -> int:
    """The ULP bound of ``function`` (a row of :data:`ULP_BOUNDS` or :data:`LOSS_GRAD_BOUNDS`)."""
    table = ULP_BOUNDS if function in ULP_BOUNDS else LOSS_GRAD_BOUNDS
    return table[function][format_of(dtype).name]


def _softmax64(x):
    with np.errstate(all="ignore"):
        z = x - np.max(np.where(np.isnan(x), -np.inf, x), axis=-1, keepdims=True)
        e = np.exp(z)
        return np.nan_to_num(e / np.sum(e, axis=-1, keepdims=True))


def grad_term_scale(function: str, x, g, t=None, z_loss: float = 0.0, temperature: float = 1.0) -> np.ndarray:
    """``tau_j`` of every component of a VJP or JVP along the last axis (float64, accurate to a few
    ULPs): the sum of the magnitudes of the terms the component is formed from (proofs/grad.md,
    Theorems G3 and G4), plus ``2**-1020 sum_i |g_i|`` for the absolute errors of subnormal
    softmax entries (``2**-1020 n sum_i |g_i|`` for ``grad.log_softmax_jvp`` and
    ``grad.logsumexp_jvp``, ``n`` the row length; ``2**-1020 (1 + 2 z_loss |lse|) sum_i |g_i|``
    for ``grad.cross_entropy_jvp``).

    ``grad.log_softmax``: ``|g_j| + p_j sum|g|``, at the argmax ``sum_{i != k}|g_i| + q_k sum|g|``;
    ``grad.softmax`` and ``grad.softmax_jvp``: ``p_j (|g_j - g_k| + A)`` with ``A = sum_{i != k}
    |g_k - g_i| p_i``; ``grad.log_softmax_jvp`` (``g`` the tangent): ``|g_j - g_k| + A``;
    ``grad.logsumexp_jvp`` (one per row): ``|g_k| + A``;
    ``grad.logsumexp`` (``g`` one cotangent per row): ``|g| p_j``;
    ``grad.cross_entropy`` (``g`` one cotangent per row, ``t`` the target distribution):
    ``|g| sigma_j`` with ``sigma_j = p_j + t_j + 2 z_loss |lse| p_j``, at the argmax with ``t_k >=
    1/2`` ``q_k + (1 - t_k) + 2 z_loss |lse| p_k``; ``grad.cross_entropy_jvp`` (``g`` the tangent
    of the logits, one result per row): ``sum_j |g_j| sigma_j``. With a ``temperature`` ``T`` the
    scale is that of ``x / T`` and ``g / T`` (the derivative of ``f(x / T)``).
    """
    x = np.asarray(x).astype(np.float64) / temperature
    g = np.asarray(g, dtype=np.float64) / temperature
    p = _softmax64(x)
    with np.errstate(all="ignore"):
        k = np.argmax(np.where(np.isnan(x), -np.inf, x), axis=-1)[..., None]
        onehot = np.zeros_like(p, dtype=bool)
        np.put_along_axis(onehot, k, True, axis=-1)
        q = np.sum(np.where(onehot, 0.0, p), axis=-1, keepdims=True)
        if function in ("grad.cross_entropy", "grad.cross_entropy_jvp"):
            lse = np.log(np.sum(np.exp(x - np.max(x, axis=-1, keepdims=True)), axis=-1, keepdims=True)) + np.max(x, axis=-1, keepdims=True)
            zl = 2.0 * z_loss * np.abs(lse) * p
            tk = np.take_along_axis(t, k, axis=-1)
            top = onehot & (tk >= 0.5)
            sigma = np.where(top, q + (1.0 - t), p + t) + zl
            if function == "grad.cross_entropy_jvp":  # g: the tangent of the logits
                ad = np.abs(np.asarray(g, dtype=np.float64))
                sub = 2.0**-1020 * np.sum(ad, axis=-1) * (1.0 + 2.0 * z_loss * np.abs(lse[..., 0]))
                return np.sum(np.nan_to_num(ad * sigma), axis=-1) + np.nan_to_num(sub)
            gam = np.abs(np.asarray(g, dtype=np.float64))[..., None]
            return gam * sigma + 2.0**-1020 * gam
        if function == "grad.logsumexp":  # g: one cotangent per row
            gam = np.abs(np.asarray(g, dtype=np.float64))[..., None]
            return gam * p + 2.0**-1020 * gam
        g = np.asarray(g).astype(np.float64)
        ag = np.abs(g)
        total = np.sum(ag, axis=-1, keepdims=True)
        gk = np.take_along_axis(g, k, axis=-1)
        A = np.sum(np.where(onehot, 0.0, np.abs(gk - g) * p), axis=-1, keepdims=True)
        if function == "grad.log_softmax":
            tau = np.where(onehot, total - ag + q * total, ag + p * total)
        elif function in ("grad.softmax", "grad.softmax_jvp"):
            tau = p * (np.abs(g - gk) + A)
        elif function == "grad.log_softmax_jvp":  # T's subnormal p_i: n times the VJP's term
            return np.nan_to_num(np.abs(g - gk) + A) + 2.0**-1020 * g.shape[-1] * total
        elif function == "grad.logsumexp_jvp":  # one result per row
            return (np.nan_to_num(np.abs(gk) + A) + 2.0**-1020 * g.shape[-1] * total)[..., 0]
        else:
            raise ValueError(f"no term scale for {function!r}")
        return np.nan_to_num(tau) + 2.0**-1020 * total


_XB = -0.15651764274966565  # the branch point -1/(e**2 - 1), to float64


def softlog_grad_term_scale(function: str, wrt: str, p, q, g) -> np.ndarray:
    """``tau`` of every component of a softlog-family VJP (float64, accurate to a few ULPs): ``|g|``
    (broadcast along the last axis) times the sum of the magnitudes of the double-double terms the
    component is formed from (proofs/grad.md, Theorem G5): ``grad.softlog_entropy``
    ``|L(p)| + p/(p - x_b)``; ``grad.sld`` (``p``) ``(|L(p) - L(q)| + p/(p - x_b))/2``;
    ``grad.sld_sym`` ``(|L(p) - L(q)| + |p - q|/(w - x_b))/4`` with ``w`` the argument ``wrt``;
    the others (no cancellation) the magnitude of the component itself; plus ``2**-1015 |g|``
    for the absolute errors of subnormal intermediate terms (``L(p) - L(q)`` for entries within
    ``2**-1000`` of each other errs by up to ``2**-1071`` absolutely)."""
    p = np.asarray(p).astype(np.float64)
    q = np.asarray(q).astype(np.float64)
    gam = np.abs(np.asarray(g, dtype=np.float64))[..., None]
    a, b = math.e - 1.0 / math.e, 1.0 / math.e
    with np.errstate(all="ignore"):
        Lp, Lq = np.log(a * p + b), np.log(a * q + b)
        D = np.abs(np.log1p(a * (p - q) / (a * q + b)))
        if function == "grad.softlog_entropy":
            tau = np.abs(Lp) + p / (p - _XB)
        elif function == "grad.softlog_cross_entropy":
            tau = np.abs(Lq) if wrt == "p" else p / (q - _XB)
        elif function == "grad.sld":
            tau = (D + p / (p - _XB)) / 2 if wrt == "p" else p / (q - _XB) / 2
        elif function == "grad.sld_sym":
            tau = (D + np.abs(p - q) / ((p if wrt == "p" else q) - _XB)) / 4
        else:
            raise ValueError(f"no term scale for {function!r}")
        return gam * (np.nan_to_num(tau) + 2.0**-1015)


def layer_grad_term_scale(wrt: str, P, w, g, log: bool = False) -> np.ndarray:
    """``tau`` of every component of ``grad.softlog_softmax`` (float64, accurate to a few ULPs;
    proofs/grad.md, Theorem G6), of the shape of ``P`` (``wrt="P"``) or of ``w`` (``wrt="w"``).

    With the layer's logits ``z_k = sum_b w[b, k] L(P[..., b, k])``, ``p = softmax(z)``, ``m`` the
    largest logit of each row and ``tau_k`` the term scale of the logits' cotangent (that of
    ``grad.softmax``, or of ``grad.log_softmax`` with ``log``, at ``z``, including its
    ``2**-1020 sum|g|``), times the layer's conditioning ``1 + (Z + 1)/1024``,
    ``Z = max_k sum_b |w[b, k] L(P[..., b, k])|`` over the row: ``P``: ``|w[b, k]| tau_k /
    (P[..., b, k] - x_b)``; ``w`` of shape ``(B, K)``: the sum over the leading indices of
    ``|L(P[..., b, k])| tau_k``; ``w`` of shape ``(B,)``: the sum over the leading indices and
    ``k`` of ``|L(P[..., b, k]) - L(P[..., b, m])| tau_k``.
    """
    P = np.asarray(P).astype(np.float64)
    w = np.asarray(w).astype(np.float64)
    shape = P.shape
    B, K = shape[-2:]
    P = P.reshape((-1, B, K))
    w2 = np.broadcast_to(w[:, None] if w.ndim == 1 else w, (B, K))
    G = np.asarray(g).astype(np.float64).reshape(-1, K)
    a, b = math.e - 1.0 / math.e, 1.0 / math.e
    with np.errstate(all="ignore"):
        L = np.log(a * P + b)
        z = np.sum(w2[None] * L, axis=1)
        Z = np.max(np.sum(np.abs(w2[None] * L), axis=1), axis=1, initial=0.0)
        tau = grad_term_scale("grad.log_softmax" if log else "grad.softmax", z, G)
        tau = tau * (1.0 + (Z[:, None] + 1.0) / 1024)
        if wrt == "P":
            return np.nan_to_num(np.abs(w2)[None] * tau[:, None, :] / (P - _XB)).reshape(shape)
        if w.ndim == 1:
            m = np.argmax(z, axis=1)
            ref = np.take_along_axis(L, m[:, None, None].repeat(B, axis=1), axis=2)
            return np.nan_to_num(np.sum(np.abs(L - ref) * tau[:, None, :], axis=(0, 2)))
        return np.nan_to_num(np.sum(np.abs(L) * tau[:, None, :], axis=0))


def within_contract(
    function: str, dtype: FormatLike, got: ArrayLike, want: ArrayLike, args: Sequence[Any]
) -> tuple[bool, float]:
    """(meets the contract, max ULP) for one evaluation of ``function`` on ``args``.

    Met when every result is within ``ULP_BOUNDS[function][dtype]`` (or ``LOSS_GRAD_BOUNDS``) ULPs
    of the oracle's ``want``, or, for a function of ``CANCELLATION`` whose bound in ``dtype`` is not
    0 (a bound of 0 is correct rounding, with no allowance), when each result that is not
    is within the absolute allowance ``CANCELLATION[function] * 2**-53 * scale`` (of its row:
    :func:`term_scale`; of its component for a VJP or JVP: :func:`grad_term_scale` with ``args = (x, g)``
    or ``(x, g, t, z_loss)``).
    """
    fmt = format_of(dtype)
    d = ulp_distance(got, want)
    worst = float(np.max(d)) if d.size else 0.0
    if worst <= bound_of(function, fmt):
        return True, worst
    if function in CANCELLATION and bound_of(function, fmt) > 0:
        if function.startswith("grad."):
            scale = grad_term_scale(function, *args)
        else:
            scale = term_scale(function, args)
        allowance = CANCELLATION[function] * 2.0**-53 * scale
        g, w = np.asarray(got).astype(np.float64), np.asarray(want).astype(np.float64)
        with np.errstate(invalid="ignore"):
            err = np.abs(g - w)
        if np.all((err <= allowance) | (d <= bound_of(function, fmt))):
            return True, worst
    return False, worst


_SOFTLOG_VJPS = ("grad.softlog_entropy", "grad.softlog_cross_entropy", "grad.sld", "grad.sld_sym")


def dense_target(logits, target, label_smoothing: float = 0.0) -> np.ndarray:
    """A target of ``cross_entropy`` as the distribution ``t`` of the logits' shape (class indices
    one-hot, smoothed; ``-100`` rows zero)."""
    x = np.asarray(logits)
    t = np.asarray(target)
    K = x.shape[-1]
    if np.issubdtype(t.dtype, np.integer):
        onehot = (np.arange(K) == t[..., None]).astype(np.float64)
        dense = (1.0 - label_smoothing) * onehot + label_smoothing / K
        return dense * (t[..., None] != IGNORE_INDEX)
    return t.astype(np.float64)


def derivative_term_scales(function: str, args, kwargs=None) -> list:
    """The term scale ``tau`` of each array a derivative (a row of :data:`LOSS_GRAD_BOUNDS` with
    an entry in :data:`CANCELLATION`) returns, from the arguments it was called with
    (``args`` positional, ``kwargs`` keywords): one array per returned array, of its shape.

    ``grad.cross_entropy`` and ``grad.cross_entropy_jvp`` take ``(logits, target, g)`` (the target
    as class indices or a distribution; ``label_smoothing``, ``z_loss`` and ``temperature`` from
    ``kwargs``); the other log-softmax rows ``(x, g)``; the softlog family ``(p, g)`` or
    ``(p, q, g)`` (:func:`softlog_grad_term_scale`); ``grad.softlog_softmax`` ``(P, w, g)`` with
    ``log`` from ``kwargs`` (:func:`layer_grad_term_scale`)."""
    kw = dict(kwargs or {})
    if function in ("grad.cross_entropy", "grad.cross_entropy_jvp"):
        logits, target, g = args
        t = dense_target(logits, target, kw.get("label_smoothing", 0.0))
        return [grad_term_scale(function, logits, g, t, kw.get("z_loss", 0.0), kw.get("temperature", 1.0))]
    if function in _SOFTLOG_VJPS:
        if function == "grad.softlog_entropy":
            p, g = args
            return [softlog_grad_term_scale(function, "p", p, p, g)]
        p, q, g = args
        return [softlog_grad_term_scale(function, wrt, p, q, g) for wrt in ("p", "q")]
    if function == "grad.softlog_softmax":
        P, w, g = args
        log = kw.get("log", False)
        return [layer_grad_term_scale("P", P, w, g, log), layer_grad_term_scale("w", P, w, g, log)]
    x, g = args
    return [grad_term_scale(function, x, g, temperature=kw.get("temperature", 1.0))]


def within_derivative_contract(function: str, got, want, args, kwargs=None) -> tuple[bool, float]:
    """(meets the contract, max ULP) for one call of a derivative or of the fused loss (a row of
    :data:`LOSS_GRAD_BOUNDS`), judged from its call arguments: every component of every returned
    array (a pair for the softlog family and the layer) within the row's ULP bound for the format
    of that array, or, for a row of :data:`CANCELLATION`, within ``CANCELLATION * 2**-53 * tau``
    (:func:`derivative_term_scales`)."""
    gots = got if isinstance(got, tuple) else (got,)
    wants = want if isinstance(want, tuple) else (want,)
    scales = None
    ok_all, worst_all = True, 0.0
    for i, (g_, w_) in enumerate(zip(gots, wants)):
        g_, w_ = np.asarray(g_), np.asarray(w_)
        bound = LOSS_GRAD_BOUNDS[function][format_of(w_.dtype).name]
        d = ulp_distance(g_, w_)
        worst = float(np.max(d)) if d.size else 0.0
        worst_all = max(worst_all, worst)
        if worst <= bound:
            continue
        if function not in CANCELLATION:
            ok_all = False
            continue
        if scales is None:
            scales = derivative_term_scales(function, args, kwargs)
        with np.errstate(invalid="ignore"):
            err = np.abs(g_.astype(np.float64) - w_.astype(np.float64))
        allowance = CANCELLATION[function] * 2.0**-53 * np.broadcast_to(scales[i], err.shape)
        ok_all &= bool(np.all((err <= allowance) | (d <= bound)))
    return ok_all, worst_all
