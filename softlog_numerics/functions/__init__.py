"""The production functions (NumPy only; results in the input's dtype).

:func:`softlog`, :func:`softlog_inverse` (in :mod:`._softlog`); :func:`logsumexp`,
:func:`log_softmax`, :func:`softmax` (:mod:`._log_softmax`); :func:`softlog_entropy`,
:func:`softlog_cross_entropy`, :func:`sld`, :func:`sld_sym` (:mod:`._divergence`, on the double-double softlog
kernels of :mod:`._softlog_dd`);
:func:`softlog_softmax` (:mod:`._layer`); :func:`cross_entropy`, the fused loss (:mod:`._cross_entropy`); the backward pass
and the forward mode in :mod:`.grad` (implemented in :mod:`._backward`, :mod:`._softlog_backward` and :mod:`._forward_mode`).

The names exported here are the public functions: each NumPy function wrapped by
:func:`softlog_numerics._core.interop.array_api`, so that PyTorch, JAX and CuPy arrays are accepted
too (NumPy input passes straight through). This layer imports :mod:`softlog_numerics._core` only:
never the oracle it is measured against.
"""

from softlog_numerics._core.interop import array_api
from softlog_numerics.functions import (
    _cross_entropy,
    _divergence,
    _layer,
    _log_softmax,
    _softlog,
)

cross_entropy = array_api(_cross_entropy.cross_entropy)

log_softmax = array_api(_log_softmax.log_softmax)
logsumexp = array_api(_log_softmax.logsumexp)
sld = array_api(_divergence.sld)
sld_sym = array_api(_divergence.sld_sym)
softlog = array_api(_softlog.softlog)
softlog_cross_entropy = array_api(_divergence.softlog_cross_entropy)
softlog_entropy = array_api(_divergence.softlog_entropy)
softlog_inverse = array_api(_softlog.softlog_inverse)
softlog_softmax = array_api(_layer.softlog_softmax)
softmax = array_api(_log_softmax.softmax)

__all__ = [
    "cross_entropy",
    "log_softmax",
    "logsumexp",
    "sld",
    "sld_sym",
    "softlog",
    "softlog_cross_entropy",
    "softlog_entropy",
    "softlog_inverse",
    "softlog_softmax",
    "softmax",
]
