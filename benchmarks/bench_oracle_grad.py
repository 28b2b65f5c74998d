"""Throughput of the correctly rounded VJPs and cross-entropy gradient: fast path against mpmath.

Run: ``python benchmarks/bench_oracle_grad.py [--rows 1000] [--cols 1000] [--mpmath-rows 4] [--repeat 3] [--json]``

One process, one core. For float16, bfloat16 and float32 rows of ``--cols`` logits drawn from
N(0, 5**2) with standard normal cotangents (one per row for logsumexp and the cross-entropy, whose
targets are random class indices with label smoothing 0.1), each derivative of ``oracle.grad`` is
timed in the same run: the certified fast path (``method="auto"``, Theorem F8 of
proofs/fast_oracle.md) as the best of ``--repeat`` runs over ``--rows`` rows, and the interval loop
(``method="mpmath"``) once over ``--mpmath-rows`` rows. Printed: correctly rounded elements per
second, the ratio, and whether the two agree bit for bit on the loop's rows. Exit status 1 if they
do not.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _oracle_bench import arguments, report, seconds

from softlog_numerics._core.formats import FORMATS
from softlog_numerics.oracle import grad

NAMES = ("logsumexp", "log_softmax", "softmax", "cross_entropy")
DTYPES = ("float16", "bfloat16", "float32")


def _call(name: str, x, g, target, **kw):
    if name == "cross_entropy":
        return grad.cross_entropy(x, target, g[:, 0], label_smoothing=0.1, **kw)
    if name == "logsumexp":
        return grad.logsumexp(x, g[:, 0], **kw)
    return getattr(grad, name)(x, g, **kw)


def main(argv=None) -> int:
    args = arguments("Fast derivative oracle against the mpmath path.", argv)
    rng = np.random.default_rng(args.seed)
    results = []
    k = args.mpmath_rows
    for dtype in DTYPES:
        fmt = FORMATS[dtype]
        x = (rng.standard_normal((args.rows, args.cols)) * 5.0).astype(fmt.dtype)
        g = rng.standard_normal((args.rows, args.cols)).astype(fmt.dtype)
        target = rng.integers(0, args.cols, args.rows)
        for name in NAMES:
            _call(name, x[:2], g[:2], target[:2])  # warm-up
            fast = seconds(lambda: _call(name, x, g, target), args.repeat)
            t = time.perf_counter()
            slow_values = _call(name, x[:k], g[:k], target[:k], method="mpmath")
            slow = time.perf_counter() - t
            same = np.array_equal(_call(name, x[:k], g[:k], target[:k]).view(fmt.uint), slow_values.view(fmt.uint))
            rate_fast, rate_slow = x.size / fast, x[:k].size / slow
            results.append({
                "function": name, "dtype": dtype, "fast_per_s": rate_fast, "mpmath_per_s": rate_slow,
                "ratio": rate_fast / rate_slow, "identical": bool(same),
            })
    report(results, f"rows of {args.cols} logits ~ N(0, 25), cotangents ~ N(0, 1); correctly rounded elements per second",
           args.json)
    return 0 if all(r["identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
