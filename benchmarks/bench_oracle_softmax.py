"""Throughput of the correctly rounded logsumexp, log_softmax and softmax: fast path against mpmath.

Run: ``python benchmarks/bench_oracle_softmax.py [--rows 1000] [--cols 1000] [--mpmath-rows 4] [--repeat 3] [--json]``

One process, one core. For float16, bfloat16, float32 and float64 rows of ``--cols`` logits drawn
from N(0, 5**2) and rounded to the format, each function of the oracle is timed in the same run: the
certified fast path (``oracle.<name>(x)``, ``method="auto"``, Theorems F6 and F9 (float64) of
proofs/fast_oracle.md)
as the best of ``--repeat`` runs over ``--rows`` rows, and the interval loop
(``oracle.<name>(x, method="mpmath")``) once over ``--mpmath-rows`` rows. Printed: correctly rounded
results per second (elements for log_softmax and softmax, rows for logsumexp, times the row length
so that the figures compare) and the ratio; the two paths are checked to agree bit for bit on the
mpmath rows.

Targets (issue 12): at least 5,000,000 correctly rounded elements/s per core for log_softmax and
softmax (float64: 1,000,000), and at least 50 times the mpmath path. Exit status 1 if a target is
missed.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _oracle_bench import arguments, report, seconds

from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS

TARGET_RATE = 5_000_000
TARGET_RATIO = 50.0
NAMES = ("log_softmax", "softmax", "logsumexp")
DTYPES = ("float16", "bfloat16", "float32", "float64")
TARGET_RATE64 = 1_000_000


def main(argv=None) -> int:
    args = arguments(__doc__.splitlines()[0] if __doc__ else "", argv)
    rng = np.random.default_rng(args.seed)
    results = []
    ok = True
    for dtype in DTYPES:
        fmt = FORMATS[dtype]
        x = (rng.standard_normal((args.rows, args.cols)) * 5.0).astype(fmt.dtype)
        for name in NAMES:
            f = getattr(oracle, name)
            f(x[:2])  # warm-up
            fast = seconds(lambda: f(x), args.repeat)
            small = x[: args.mpmath_rows]
            t = time.perf_counter()
            slow_values = f(small, method="mpmath")
            slow = time.perf_counter() - t
            same = np.array_equal(np.asarray(f(small)).view(fmt.uint), np.asarray(slow_values).view(fmt.uint))
            rate_fast = x.size / fast
            rate_slow = small.size / slow
            row = {
                "function": name,
                "dtype": dtype,
                "fast_per_s": rate_fast,
                "mpmath_per_s": rate_slow,
                "ratio": rate_fast / rate_slow,
                "identical": bool(same),
            }
            results.append(row)
            if not same:
                ok = False
            target = TARGET_RATE64 if dtype == "float64" else TARGET_RATE
            if name != "logsumexp" and (rate_fast < target or row["ratio"] < TARGET_RATIO):
                ok = False
    report(results, f"rows of {args.cols} logits ~ N(0, 25); results per second (elements; logsumexp: rows x {args.cols})",
           args.json)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
