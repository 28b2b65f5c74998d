"""The double-double softlog kernels of the production functions: a re-export of
:mod:`softlog_numerics._core.softlog_dd` (where they live so that the oracle can share them;
proofs/divergence.md, Theorems D3 and D4).
"""

from __future__ import annotations

from softlog_numerics._core.softlog_dd import (
    below_branch,
    centred,
    log1p_dd,
    softlog_arg,
    softlog_dd,
    softlog_diff_dd,
)

__all__ = ["below_branch", "centred", "log1p_dd", "softlog_arg", "softlog_diff_dd", "softlog_dd"]
