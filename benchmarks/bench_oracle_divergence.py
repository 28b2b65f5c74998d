"""Throughput of the correctly rounded softlog entropy, cross-entropy and divergences: fast path against mpmath.

Run: ``python benchmarks/bench_oracle_divergence.py [--rows 1000] [--cols 1000] [--mpmath-rows 4] [--repeat 3] [--json]``

One process, one core. For float16, bfloat16 and float32 rows of ``--cols`` probabilities
(``exp`` of N(0, 2**2) draws, normalised and rounded to the format; ``q`` drawn independently of
``p``), each function of the oracle is timed in the same run: the certified fast path
(``oracle.<name>(p, q)``, ``method="auto"``, Theorem F7 of proofs/fast_oracle.md) as the best of
``--repeat`` runs over ``--rows`` rows, and the interval loop (``method="mpmath"``) once over
``--mpmath-rows`` rows. Printed: input entries per second (row length times rows per second, one
correctly rounded result per row), the ratio, the share of rows the fast path left to the loop, and
whether both paths agree bit for bit on the mpmath rows. Exit status 1 if they do not.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _oracle_bench import arguments, report, seconds

from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS
from softlog_numerics.oracle import fast_divergence

NAMES = ("softlog_entropy", "softlog_cross_entropy", "sld", "sld_sym")
DTYPES = ("float16", "bfloat16", "float32")


def _distributions(rng, shape, fmt) -> np.ndarray:
    w = np.exp(rng.standard_normal(shape) * 2.0)
    return (w / w.sum(axis=1, keepdims=True)).astype(fmt.dtype)


def _measure(name: str, kind: str, p: np.ndarray, q: np.ndarray, fmt, args) -> dict:
    f = getattr(oracle, name)
    def call(a, b, **kw):
        return f(a, **kw) if kind == "entropy" else f(a, b, **kw)
    call(p[:2], q[:2])  # warm-up
    fast = seconds(lambda: call(p, q), args.repeat)
    k = args.mpmath_rows
    t = time.perf_counter()
    slow_values = call(p[:k], q[:k], method="mpmath")
    slow = time.perf_counter() - t
    same = np.array_equal(np.asarray(call(p[:k], q[:k])).view(fmt.uint), np.asarray(slow_values).view(fmt.uint))
    _, todo = fast_divergence.divergence_rows(kind, p.astype(np.float64), q.astype(np.float64), fmt)
    rate_fast, rate_slow = p.size / fast, p[:k].size / slow
    return {
        "function": name,
        "dtype": fmt.name,
        "fast_per_s": rate_fast,
        "mpmath_per_s": rate_slow,
        "ratio": rate_fast / rate_slow,
        "fallback_rows": int(todo.size),
        "identical": bool(same),
    }


def main(argv=None) -> int:
    args = arguments("Fast divergence oracle against the mpmath path.", argv)
    rng = np.random.default_rng(args.seed)
    results = []
    for dtype in DTYPES:
        fmt = FORMATS[dtype]
        p = _distributions(rng, (args.rows, args.cols), fmt)
        q = _distributions(rng, (args.rows, args.cols), fmt)
        for name, kind in zip(NAMES, fast_divergence.KINDS):
            results.append(_measure(name, kind, p, q, fmt, args))
    report(results, f"rows of {args.cols} probabilities; input entries per second (one result per row)", args.json,
           extra=("fallback_rows",))
    return 0 if all(r["identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
