"""softlog-numerics: the softlog, log-softmax and softlog divergences, correct in every float format.

Implementations (NumPy only; results in the input's dtype: float16, bfloat16, float32, float64):
:func:`softlog`, :func:`softlog_inverse`, :func:`logsumexp`, :func:`log_softmax`, :func:`softmax`,
:func:`softlog_entropy`, :func:`softlog_cross_entropy`, :func:`sld`, :func:`sld_sym`,
:func:`softlog_softmax`, and the fused loss :func:`cross_entropy`. Each accepts NumPy arrays, and PyTorch, JAX or CuPy arrays too (they are
copied to NumPy exactly and the result is returned in the caller's library, device and dtype).

Verification: :mod:`~softlog_numerics.oracle` (correctly rounded twins of every function),
:mod:`~softlog_numerics.ulp` (the error metric), :mod:`~softlog_numerics.strategies` (Hypothesis
strategies taking a dtype), :mod:`~softlog_numerics.accuracy`, :mod:`~softlog_numerics.audit`
(audit another backend), :mod:`~softlog_numerics.algorithms`, :mod:`~softlog_numerics.regions`.

Layers (subpackages), each importing only the layers before it in this list, and checked by
``tests/test_layers.py``:

1. :mod:`._core`: formats, error-free transformations, constants, axes, conversions, the contract;
2. :mod:`.functions` (the production functions) and :mod:`.oracle` (the truth), side by side and
   independent of each other;
3. :mod:`.testing`: the error metric, Hypothesis strategies, backends, audit, accuracy, exhaustive
   sweeps: the tools that measure a function against the oracle;
4. :mod:`.analysis`: the algorithm zoo, sweeps, the breakdown regions and the SLD bounds;
5. :mod:`.report`: figures and the report;
6. :mod:`.cli`: the ``softlog-numerics`` command, one module per subcommand.

Imports are absolute and at the top of each module. The one exception: matplotlib, torch, jax,
dask, scipy, array_api_compat and cupy are imported inside the functions that use them, so that
``import softlog_numerics`` needs none of them and stays light.

The public module paths (``softlog_numerics.ulp``, ``.strategies``, ``.audit``, ``.accuracy``,
``.algorithms``, ``.regions``, and ``.grad``, the backward pass) name the modules of their layer: each is registered
under its public name below, so ``from softlog_numerics.audit import audit`` keeps working.
"""

import sys as _sys

from softlog_numerics import oracle
from softlog_numerics.analysis import algorithms, regions
from softlog_numerics.functions import (
    cross_entropy,
    grad,
    log_softmax,
    logsumexp,
    sld,
    sld_sym,
    softlog,
    softlog_cross_entropy,
    softlog_entropy,
    softlog_inverse,
    softlog_softmax,
    softmax,
)
from softlog_numerics.testing import accuracy, audit, strategies, ulp

__version__ = "0.1.0"

for _name, _module in {
    "accuracy": accuracy,
    "algorithms": algorithms,
    "audit": audit,
    "grad": grad,
    "regions": regions,
    "strategies": strategies,
    "ulp": ulp,
}.items():
    _sys.modules[f"{__name__}.{_name}"] = _module
del _name, _module

__all__ = [
    "__version__",
    "accuracy",
    "algorithms",
    "audit",
    "cross_entropy",
    "grad",
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
