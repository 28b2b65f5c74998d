"""The derivatives of the production functions, public as ``softlog_numerics.grad`` (mirrored,
correctly rounded, by ``softlog_numerics.oracle.grad``).

Vector-Jacobian products (the backward pass), each taking the forward inputs and a cotangent of
the forward output's shape and returning the input cotangent in the input's dtype:
:func:`log_softmax` (``g - softmax(x) sum(g)``), :func:`softmax` (``y (g - sum(g y))``),
:func:`logsumexp` (``g softmax(x)``) and :func:`cross_entropy` (``g (softmax(z)(1 + 2 z_loss lse)
- t)``, with respect to the logits), implemented in :mod:`._backward`; and the softlog family,
:func:`softlog` (``g / (x - x_b)``), :func:`softlog_entropy`, :func:`softlog_cross_entropy`,
:func:`sld` and :func:`sld_sym` (with respect to ``p`` and, for the last three, ``q``: a pair),
implemented in :mod:`._softlog_backward`; and the softlog-softmax layer, :func:`softlog_softmax`
(the pair ``(dP, dw)``: ``v_k w[b, k] / (P - x_b)`` and the sum of ``v_k L(P)``, ``v`` the softmax or
log-softmax VJP at the layer's logits), implemented in :mod:`._layer_backward`.

Jacobian-vector products (forward mode), each taking the forward inputs and a tangent ``dx`` of
the logits' shape and returning the tangent of the forward output in the input's dtype:
:func:`logsumexp_jvp` (``sum softmax(x) dx``), :func:`log_softmax_jvp` (``dx - sum(softmax(x)
dx)``), :func:`softmax_jvp` (``y (dx - sum(y dx))``) and :func:`cross_entropy_jvp` (``sum
(softmax(z)(1 + 2 z_loss lse) - t) dx`` per row); implemented in :mod:`._forward_mode`.

Like the forward functions they accept PyTorch, JAX and CuPy arrays too.
"""

from softlog_numerics._core.interop import array_api
from softlog_numerics.functions import (
    _backward,
    _forward_mode,
    _layer_backward,
    _softlog_backward,
)

cross_entropy = array_api(_backward.cross_entropy_vjp)
cross_entropy_jvp = array_api(_forward_mode.cross_entropy_jvp)
log_softmax = array_api(_backward.log_softmax_vjp)
log_softmax_jvp = array_api(_forward_mode.log_softmax_jvp)
logsumexp = array_api(_backward.logsumexp_vjp)
logsumexp_jvp = array_api(_forward_mode.logsumexp_jvp)
sld = array_api(_softlog_backward.sld_vjp)
sld_sym = array_api(_softlog_backward.sld_sym_vjp)
softlog = array_api(_softlog_backward.softlog_vjp)
softlog_cross_entropy = array_api(_softlog_backward.softlog_cross_entropy_vjp)
softlog_entropy = array_api(_softlog_backward.softlog_entropy_vjp)
softlog_softmax = array_api(_layer_backward.softlog_softmax_vjp)
softmax = array_api(_backward.softmax_vjp)
softmax_jvp = array_api(_forward_mode.softmax_jvp)

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
