"""Speed and memory of the entropies and divergences against the naive NumPy formula, as ratios in one run.

Run: ``python benchmarks/bench_divergence.py [--rows 4096] [--cols 1000] [--repeat 5] [--formats ...]``

For each format (float16, bfloat16, float32, float64) and each of ``softlog_entropy``,
``softlog_cross_entropy``, ``sld`` and ``sld_sym`` on distributions of shape (rows, cols) (softmax
of N(0, 2²) logits, rounded to the format; ``p`` and ``q`` independent), times, interleaved in
one process (after one warm-up each), median of ``--repeat``:

* ``ours``: the library function with its defaults (``validate=True``: the inputs are checked);
* ``ours_nv``: the same with ``validate=False``;
* ``naive``: the formula in the input's format, ``L(x) = np.log((e - 1/e) x + 1/e)`` and e.g.
  ``-(p * L(p)).sum(-1)``, ``(p * (L(p) - L(q))).sum(-1) / 2`` (no checks, no accuracy).

Prints one table of ratios ours/naive (and ours_nv/naive), the naive time, and the peak extra
memory of one ``ours`` call measured with ``tracemalloc`` (NumPy reports its allocations to it):
the peak during the call minus the output array, in MiB. Targets (issue 13): ratio <= 3 in
float16/bfloat16/float32, <= 8 in float64, extra memory <= 4 MiB.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np

import softlog_numerics as sn
from softlog_numerics._core.formats import BFLOAT16

E = np.e
DTYPES = {"float16": np.dtype(np.float16), "bfloat16": BFLOAT16, "float32": np.dtype(np.float32),
          "float64": np.dtype(np.float64)}
TARGET = {"float16": 3.0, "bfloat16": 3.0, "float32": 3.0, "float64": 8.0}


def naive(kind, p, q):
    t = p.dtype.type
    a, b = t(E - 1 / E), t(1 / E)

    def L(x):
        return np.log(a * x + b)

    if kind == "entropy":
        return -(p * L(p)).sum(-1)
    if kind == "cross":
        return -(p * L(q)).sum(-1)
    if kind == "sld":
        return (p * (L(p) - L(q))).sum(-1) * t(0.5)
    return ((p - q) * (L(p) - L(q))).sum(-1) * t(0.25)


OURS = {
    "entropy": lambda p, q, **k: sn.softlog_entropy(p, **k),
    "cross": lambda p, q, **k: sn.softlog_cross_entropy(p, q, **k),
    "sld": lambda p, q, **k: sn.sld(p, q, **k),
    "sym": lambda p, q, **k: sn.sld_sym(p, q, **k),
}
NAMES = {"entropy": "softlog_entropy", "cross": "softlog_cross_entropy", "sld": "sld", "sym": "sld_sym"}


def _interleaved(funcs: dict, repeat: int) -> dict:
    times = {name: [] for name in funcs}
    for f in funcs.values():
        f()
    for _ in range(repeat):
        for name, f in funcs.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) for name, v in times.items()}


def _peak_mib(f) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = f()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base - np.asarray(out).nbytes) / 2**20


def _distributions(rng, shape, dtype):
    z = rng.standard_normal(shape) * 2.0
    e = np.exp(z - z.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(dtype)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--formats", nargs="*", default=list(DTYPES))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    shape = (args.rows, args.cols)
    print(f"{shape}, median of {args.repeat} interleaved runs, NumPy {np.__version__}")
    print(f"{'function':22s} {'format':9s} {'ours/naive':>10s} {'nv/naive':>9s} {'naive ms':>9s} "
          f"{'ours ms':>9s} {'peak MiB':>9s} target")
    for fname in args.formats:
        dt = DTYPES[fname]
        p, q = _distributions(rng, shape, dt), _distributions(rng, shape, dt)
        for kind, f in OURS.items():
            funcs = {
                "ours": lambda: f(p, q),
                "ours_nv": lambda: f(p, q, validate=False),
                "naive": lambda: naive(kind, p, q),
            }
            t = _interleaved(funcs, args.repeat)
            peak = _peak_mib(lambda: f(p, q))
            r, rnv = t["ours"] / t["naive"], t["ours_nv"] / t["naive"]
            mark = "ok" if r <= TARGET[fname] and peak <= 4.0 else "MISSED"
            print(f"{NAMES[kind]:22s} {fname:9s} {r:10.2f} {rnv:9.2f} {1e3 * t['naive']:9.1f} "
                  f"{1e3 * t['ours']:9.1f} {peak:9.2f} <= {TARGET[fname]:g} {mark}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
