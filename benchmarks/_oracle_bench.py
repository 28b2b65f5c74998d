"""What the oracle benchmarks share: their command line, the timer, and the printed table.

``bench_oracle_softmax.py``, ``bench_oracle_divergence.py`` and ``bench_oracle_grad.py`` time a
certified fast path of the oracle against its interval loop in one run; each result is a dict with
``function``, ``dtype``, ``fast_per_s``, ``mpmath_per_s``, ``ratio``, ``identical`` (and optional
extra integer columns).
"""

from __future__ import annotations

import argparse
import json
import time

__all__ = ["arguments", "report", "seconds"]


def seconds(f, repeat: int) -> float:
    """The best of ``repeat`` timings of ``f()``."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def arguments(description: str, argv=None) -> argparse.Namespace:
    """``--rows --cols --mpmath-rows --repeat --seed --json``, with the benchmarks' defaults."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--cols", type=int, default=1000)
    ap.add_argument("--mpmath-rows", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    return ap.parse_args(argv)


def report(results: list, title: str, as_json: bool, extra: tuple[str, ...] = ()) -> None:
    """Print ``results`` as JSON or as a table under ``title`` (``extra``: more integer columns)."""
    if as_json:
        print(json.dumps(results, indent=2))
        return
    width = max(len(r["function"]) for r in results) + 1
    print(title)
    print(f"{'function':{width}s} {'format':9s} {'fast':>12s} {'mpmath':>10s} {'ratio':>8s}"
          + "".join(f" {c:>9s}" for c in extra) + "  identical")
    for r in results:
        print(f"{r['function']:{width}s} {r['dtype']:9s} {r['fast_per_s'] / 1e6:9.2f} M/s "
              f"{r['mpmath_per_s'] / 1e3:7.1f} k/s {r['ratio']:8.0f}"
              + "".join(f" {r[c]:9d}" for c in extra) + f"  {r['identical']}")
