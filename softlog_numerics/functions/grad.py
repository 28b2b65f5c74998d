"""The backward pass of the production functions: vector-Jacobian products, public as
``softlog_numerics.grad`` (mirrored, correctly rounded, by ``softlog_numerics.oracle.grad``).

Each takes the forward inputs and a cotangent of the forward output's shape and returns the
input cotangent in the input's dtype: :func:`log_softmax` (``g - softmax(x) sum(g)``),
:func:`softmax` (``y (g - sum(g y))``), :func:`logsumexp` (``g softmax(x)``) and
:func:`cross_entropy` (``g (softmax(z)(1 + 2 z_loss lse) - t)``, with respect to the logits),
implemented in :mod:`._backward`; and the softlog family, :func:`softlog` (``g / (x - x_b)``),
:func:`softlog_entropy`, :func:`softlog_cross_entropy`, :func:`sld` and :func:`sld_sym` (with
respect to ``p`` and, for the last three, ``q``: a pair), implemented in
:mod:`._softlog_backward`; like the forward functions they accept PyTorch, JAX and CuPy
arrays too.
"""

from softlog_numerics._core.interop import array_api
from softlog_numerics.functions import _backward, _softlog_backward

cross_entropy = array_api(_backward.cross_entropy_vjp)
log_softmax = array_api(_backward.log_softmax_vjp)
logsumexp = array_api(_backward.logsumexp_vjp)
sld = array_api(_softlog_backward.sld_vjp)
sld_sym = array_api(_softlog_backward.sld_sym_vjp)
softlog = array_api(_softlog_backward.softlog_vjp)
softlog_cross_entropy = array_api(_softlog_backward.softlog_cross_entropy_vjp)
softlog_entropy = array_api(_softlog_backward.softlog_entropy_vjp)
softmax = array_api(_backward.softmax_vjp)

__all__ = [
    "cross_entropy",
    "log_softmax",
    "logsumexp",
    "sld",
    "sld_sym",
    "softlog",
    "softlog_cross_entropy",
    "softlog_entropy",
    "softmax",
]
