"""softlog-numerics: the softlog, log-softmax and softlog divergences, correct in every float format.

Implementations (NumPy only; results in the input's dtype: float16, bfloat16, float32, float64):
:func:`softlog`, :func:`softlog_inverse`, :func:`logsumexp`, :func:`log_softmax`, :func:`softmax`,
:func:`softlog_entropy`, :func:`softlog_cross_entropy`, :func:`sld`, :func:`sld_sym`,
:func:`softlog_softmax`. Each accepts NumPy arrays, and PyTorch, JAX or CuPy arrays too (they are
copied to NumPy exactly and the result is returned in the caller's library, device and dtype).

Verification: :mod:`~softlog_numerics.oracle` (correctly rounded twins of every function),
:mod:`~softlog_numerics.ulp` (the error metric), :mod:`~softlog_numerics.strategies` (Hypothesis
strategies taking a dtype), :mod:`~softlog_numerics.accuracy`, :mod:`~softlog_numerics.audit`
(audit another backend), :mod:`~softlog_numerics.algorithms`, :mod:`~softlog_numerics.regions`.
"""

import importlib

from . import oracle, strategies, ulp
from .backends import array_api as _array_api
from .divergence import sld as _sld
from .divergence import sld_sym as _sld_sym
from .divergence import softlog_cross_entropy as _softlog_cross_entropy
from .divergence import softlog_entropy as _softlog_entropy
from .layer import softlog_softmax as _softlog_softmax
from .logsoftmax import log_softmax as _log_softmax
from .logsoftmax import logsumexp as _logsumexp
from .logsoftmax import softmax as _softmax
from .softlog import softlog as _softlog
from .softlog import softlog_inverse as _softlog_inverse

__version__ = "0.1.0"

log_softmax = _array_api(_log_softmax)
logsumexp = _array_api(_logsumexp)
sld = _array_api(_sld)
sld_sym = _array_api(_sld_sym)
softlog = _array_api(_softlog)
softlog_cross_entropy = _array_api(_softlog_cross_entropy)
softlog_entropy = _array_api(_softlog_entropy)
softlog_inverse = _array_api(_softlog_inverse)
softlog_softmax = _array_api(_softlog_softmax)
softmax = _array_api(_softmax)

_LAZY_MODULES = ("accuracy", "algorithms", "audit", "regions")


def __getattr__(name):
    """Import the heavier analysis modules on first use (``softlog_numerics.audit`` etc.)."""
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__",
    "accuracy",
    "algorithms",
    "audit",
    "log_softmax",
    "logsumexp",
    "oracle",
    "regions",
    "sld",
    "sld_sym",
    "softlog",
    "softlog_cross_entropy",
    "softlog_entropy",
    "softlog_inverse",
    "softlog_softmax",
    "softmax",
    "strategies",
    "ulp",
]
