"""Throughput of the correctly rounded softlog: certified fast path against the plain mpmath path.

Run: ``python benchmarks/bench_oracle.py [--n-fast 4194304] [--n-mpmath 20000] [--repeat 5] [--json]``

One process, one core (the fast path is single-threaded NumPy; the mpmath path is pure Python).
Inputs: float32 values drawn uniformly from [-0.15, 1.2] (the interval the softlog is used on) and,
separately, uniform float32 bit patterns of [0, 1] (the exhaustive sweep's distribution, where most
inputs are tiny). Each path is timed in the same run: the fast path ``oracle.softlog(x)`` (default
``method="auto"``) as the best of ``--repeat`` runs over ``--n-fast`` values, the mpmath path
``oracle.softlog(x, method="mpmath")`` once over ``--n-mpmath`` values (it is slow and steady).
Printed: correctly rounded values per second for each, and the ratio; also the production
``softlog`` for scale. The two paths are checked to agree bit for bit on the mpmath sample.

Targets of the issue: at least 1,000,000 values/s per core on the fast path, and at least 20 times
the mpmath path. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from softlog_numerics import oracle
from softlog_numerics.functions import softlog

TARGET_RATE = 1_000_000
TARGET_RATIO = 20.0


def _best_rate(f, x, repeat: int) -> float:
    f(x[:1000])
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f(x)
        best = min(best, time.perf_counter() - t)
    return x.size / best


def _inputs(kind: str, n: int, rng) -> np.ndarray:
    if kind == "uniform [-0.15, 1.2]":
        return rng.uniform(-0.15, 1.2, n).astype(np.float32)
    return rng.integers(0, 0x3F800001, n, dtype=np.uint32).view(np.float32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-fast", type=int, default=1 << 22)
    ap.add_argument("--n-mpmath", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = []
    ok = True
    for kind in ("uniform [-0.15, 1.2]", "bit patterns of [0, 1]"):
        x = _inputs(kind, args.n_fast, rng)
        fast = _best_rate(oracle.softlog, x, args.repeat)
        prod = _best_rate(softlog, x, args.repeat)
        xs = x[: args.n_mpmath]
        t = time.perf_counter()
        ref = oracle.softlog(xs, method="mpmath")
        mp = xs.size / (time.perf_counter() - t)
        same = bool((ref.view(np.uint32) == oracle.softlog(xs).view(np.uint32)).all())
        ratio = fast / mp
        rows.append({"inputs": kind, "fast_per_s": fast, "mpmath_per_s": mp, "ratio": ratio,
                     "production_per_s": prod, "identical_on_mpmath_sample": same})
        ok &= fast >= TARGET_RATE and ratio >= TARGET_RATIO and same
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print("correctly rounded float32 softlog, values per second on one core\n")
        print("| inputs | fast path | mpmath path | ratio | production softlog (not an oracle) | identical |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['inputs']} | {r['fast_per_s']:.3g} | {r['mpmath_per_s']:.3g} | {r['ratio']:.0f}x | "
                  f"{r['production_per_s']:.3g} | {r['identical_on_mpmath_sample']} |")
        print(f"\ntargets: fast path >= {TARGET_RATE:,}/s and >= {TARGET_RATIO:g}x mpmath: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
