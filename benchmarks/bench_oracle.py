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

float64 (proofs/fast_oracle.md, Theorem F5), timed the same way on three input families: uniform on
[-0.15, 1.2], uniform positive float64 bit patterns (most of them huge or tiny), and
``exhaustive.float64_domain_sample`` (every part of the domain); also printed: the fraction of inputs
left to the mpmath fallback. ``--n-mpmath`` values for the mpmath path, ``--n-fast`` for the fast.

Targets of the issue: at least 1,000,000 float32 values/s per core on the fast path, and at least
20 times the mpmath path; for float64 (issue 12) at least 10,000,000 values/s per core and 20 times
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
from softlog_numerics.oracle import fast
from softlog_numerics.testing.exhaustive import float64_domain_sample

TARGET_RATE = 1_000_000
TARGET_RATIO = 20.0
TARGET_RATE_64 = 10_000_000


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


def _inputs64(kind: str, n: int, rng) -> np.ndarray:
    if kind == "uniform [-0.15, 1.2]":
        return rng.uniform(-0.15, 1.2, n)
    if kind == "bit patterns > 0":
        return rng.integers(0, 0x7FF0000000000000, n, dtype=np.int64).view(np.float64)
    return float64_domain_sample(rng, n)


def _float64_rows(args, rng) -> list[dict]:
    rows = []
    for kind in ("uniform [-0.15, 1.2]", "bit patterns > 0", "whole domain (float64_domain_sample)"):
        x = _inputs64(kind, args.n_fast, rng)
        rate = _best_rate(oracle.softlog, x, args.repeat)
        fallback = fast.softlog_certified64(x, fallback=False).fallback.size / x.size
        xs = x[: args.n_mpmath]
        t = time.perf_counter()
        ref = oracle.softlog(xs, method="mpmath")
        mp = xs.size / (time.perf_counter() - t)
        got = oracle.softlog(xs)
        same = bool(((ref.view(np.int64) == got.view(np.int64)) | (np.isnan(ref) & np.isnan(got))).all())
        rows.append({"inputs": kind, "fast_per_s": rate, "mpmath_per_s": mp, "ratio": rate / mp,
                     "fallback_fraction": fallback, "identical_on_mpmath_sample": same})
    return rows


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
    rows64 = _float64_rows(args, rng)
    for r in rows64:
        ok &= r["fast_per_s"] >= TARGET_RATE_64 and r["ratio"] >= TARGET_RATIO and r["identical_on_mpmath_sample"]
    if args.json:
        print(json.dumps({"float32": rows, "float64": rows64}, indent=2))
    else:
        print("correctly rounded float32 softlog, values per second on one core\n")
        print("| inputs | fast path | mpmath path | ratio | production softlog (not an oracle) | identical |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['inputs']} | {r['fast_per_s']:.3g} | {r['mpmath_per_s']:.3g} | {r['ratio']:.0f}x | "
                  f"{r['production_per_s']:.3g} | {r['identical_on_mpmath_sample']} |")
        print("\ncorrectly rounded float64 softlog, values per second on one core\n")
        print("| inputs | fast path | mpmath path | ratio | fallback fraction | identical |")
        print("|---|---|---|---|---|---|")
        for r in rows64:
            print(f"| {r['inputs']} | {r['fast_per_s']:.3g} | {r['mpmath_per_s']:.3g} | {r['ratio']:.0f}x | "
                  f"{r['fallback_fraction']:.2e} | {r['identical_on_mpmath_sample']} |")
        print(f"\ntargets: float32 fast path >= {TARGET_RATE:,}/s, float64 >= {TARGET_RATE_64:,}/s, both >= "
              f"{TARGET_RATIO:g}x mpmath: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
