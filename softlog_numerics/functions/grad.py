"""The backward pass of the production functions: vector-Jacobian products, public as
``softlog_numerics.grad`` (mirrored, correctly rounded, by ``softlog_numerics.oracle.grad``).

Each takes the forward inputs and a cotangent of the forward output's shape and returns the
input cotangent in the input's dtype: :func:`log_softmax` (``g - softmax(x) sum(g)``),
:func:`softmax` (``y (g - sum(g y))``), :func:`logsumexp` (``g softmax(x)``) and
:func:`cross_entropy` (``g (softmax(z)(1 + 2 z_loss lse) - t)``, with respect to the logits).
Implemented in :mod:`._backward`; like the forward functions they accept PyTorch, JAX and CuPy
arrays too.
"""

from softlog_numerics._core.interop import array_api
from softlog_numerics.functions import _backward

cross_entropy = array_api(_backward.cross_entropy_vjp)
log_softmax = array_api(_backward.log_softmax_vjp)
logsumexp = array_api(_backward.logsumexp_vjp)
softmax = array_api(_backward.softmax_vjp)

__all__ = ["cross_entropy", "log_softmax", "logsumexp", "softmax"]
