"""The accuracy contract: maximum ULP distance from the correctly rounded oracle, per function and
format, for every input whose result is not NaN. Each number is proven in ``proofs/`` (the theorem
is named in the function's docstring) and enforced by the tests and by ``softlog-numerics accuracy``.

``CANCELLATION`` lists the functions whose sums can cancel: for them the ULP bound holds, *or* the
absolute error is at most ``CANCELLATION[f] * 2**-53 * sum_k |term_k|`` (the terms of the sum
as defined in the docstring), whichever is larger.
"""

from __future__ import annotations

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
