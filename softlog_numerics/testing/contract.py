"""The accuracy contract: maximum ULP distance from the correctly rounded oracle, per function and
format, for every input whose result is not NaN. Each number is proven in ``proofs/`` (the theorem
is named in the function's docstring) and enforced by the tests and by ``softlog-numerics accuracy``.

``CANCELLATION`` lists the functions whose sums can cancel: for them the ULP bound holds, *or* the
absolute error is at most ``CANCELLATION[f] * 2**-53 * sum_k |term_k|`` (the terms of the sum
as defined in the docstring), whichever is larger. :func:`term_scale` computes that scale and
:func:`within_contract` applies the whole rule; accuracy, the audit and the sweeps all judge a result
with it.
"""

from __future__ import annotations

import math

import numpy as np

from softlog_numerics._core.formats import format_of
from softlog_numerics.testing.ulp import ulp_distance

__all__ = ["CANCELLATION", "ULP_BOUNDS", "term_scale", "within_contract"]

ULP_BOUNDS: dict[str, dict[str, int]] = {
    "softlog": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 2},
    "logsumexp": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 2},
    "log_softmax": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 2},
    "softmax": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 3},
    "sld_sym": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 1},
    "softlog_entropy": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 4},
    "softlog_cross_entropy": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 4},
    "sld": {"float16": 1, "bfloat16": 1, "float32": 1, "float64": 4},
}

CANCELLATION: dict[str, float] = {
    "softlog_entropy": 4.0,
    "softlog_cross_entropy": 4.0,
    "sld": 4.0,
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


def within_contract(function: str, dtype, got, want, args) -> tuple[bool, float]:
    """(meets the contract, max ULP) for one evaluation of ``function`` on ``args``.

    Met when every result is within ``ULP_BOUNDS[function][dtype]`` ULPs of the oracle's ``want``,
    or, for a function of ``CANCELLATION``, when each result that is not is within the absolute
    allowance ``CANCELLATION[function] * 2**-53 * term_scale`` of its row.
    """
    fmt = format_of(dtype)
    d = ulp_distance(got, want)
    worst = float(np.max(d)) if d.size else 0.0
    if worst <= ULP_BOUNDS[function][fmt.name]:
        return True, worst
    if function in CANCELLATION:
        allowance = CANCELLATION[function] * 2.0**-53 * term_scale(function, args)
        g, w = np.asarray(got).astype(np.float64), np.asarray(want).astype(np.float64)
        with np.errstate(invalid="ignore"):
            err = np.abs(g - w)
        if np.all((err <= allowance) | (d == 0)):
            return True, worst
    return False, worst
