"""The oracle: correctly rounded twins of every production function (the layer of truth).

Each ``oracle.<name>`` takes the arguments of ``softlog_numerics.<name>`` and returns the exact
mathematical result rounded once to the input's format, proven by interval enclosures (Ziv's
strategy; proofs/oracle.md, Theorem O2) or by a certified fast path that is bit-identical to them
(proofs/fast_oracle.md, Theorems F2 and F6-F8; for float64 proofs/fast_oracle.md, Theorems F5 and F9).

Modules, each importing only those above it in this list (and :mod:`softlog_numerics._core`,
NumPy and mpmath; never the production functions):

* :mod:`~softlog_numerics.oracle.enclosures`: rounding once, interval primitives, Ziv's loop;
* :mod:`~softlog_numerics.oracle.fast`: the certified fast softlog (all four formats);
* :mod:`~softlog_numerics.oracle.fast_softmax`: the certified fast logsumexp, log_softmax and
  softmax of narrow rows (proofs/fast_oracle.md, Theorem F6);
* :mod:`~softlog_numerics.oracle.fast_softmax64`: the certified fast logsumexp, log_softmax and
  softmax of float64 rows, in double-double (Theorem F9);
* :mod:`~softlog_numerics.oracle.fast_divergence`: the certified fast entropies and divergences
  of narrow rows (Theorem F7);
* :mod:`~softlog_numerics.oracle.fast_grad`: the certified fast VJPs of the log-softmax family and
  the cross-entropy gradient of narrow rows (Theorem F8);
* :mod:`~softlog_numerics.oracle.twins`: the twins of the production functions;
* :mod:`~softlog_numerics.oracle.loss`: the fused loss, :func:`cross_entropy`;
* :mod:`~softlog_numerics.oracle.softlog_grad`: VJPs of the softlog, the entropies and the
  divergences (proofs/grad.md, Theorem G5);
* :mod:`~softlog_numerics.oracle.layer_grad`: the VJP of the softlog-softmax layer (Theorem G6);
* :mod:`~softlog_numerics.oracle.grad`: derivatives (VJPs and JVPs) of the log-softmax family and
  of the loss, the exact derivative at the exact inputs rounded once (proofs/grad.md, Theorem G1);
* :mod:`~softlog_numerics.oracle.cache`: an on-disk cache of oracle calls (for the report).
"""

from softlog_numerics.oracle import grad
from softlog_numerics.oracle.enclosures import (
    MAX_PRECISION,
    OracleUndecided,
    decide_enclosure,
    round_rational,
    round_to,
)
from softlog_numerics.oracle.loss import cross_entropy
from softlog_numerics.oracle.twins import (
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

__all__ = [
    "MAX_PRECISION",
    "OracleUndecided",
    "cross_entropy",
    "decide_enclosure",
    "grad",
    "log_softmax",
    "logsumexp",
    "round_rational",
    "round_to",
    "sld",
    "sld_sym",
    "softlog",
    "softlog_cross_entropy",
    "softlog_entropy",
    "softlog_inverse",
    "softlog_softmax",
    "softmax",
]
