"""The ``exhaustive`` subcommand: every input of a range, production against the certified oracle.

``softlog-numerics exhaustive softlog --dtype float32 [--start A --stop B] [--workers N]
[--executor process|thread|dask] [--scheduler ADDRESS] [--json] [--checkpoint PATH]``

``softlog-numerics exhaustive log_softmax --dtype float16 [--backend torch]``: every two-class row
``[a, b]`` of finite inputs (the whole format unless ``--start``/``--stop`` say otherwise).
"""

from __future__ import annotations

import json
import math
import sys
import time

from softlog_numerics.testing.exhaustive import (
    DEFAULT_SHARD_SIZE,
    FUNCTIONS,
    PAIR_FUNCTIONS,
    known_dtypes,
    sweep,
)

__all__ = ["register"]


def _fmt_count(n: int) -> str:
    return f"{n:,}"


def _fmt_duration(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = round(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _Progress:
    """A progress bar on a terminal; plain lines (every 10 % or 30 s) otherwise."""

    def __init__(self, stream, label: str):
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.label = label
        self.last_line = -1.0
        self.last_decile = -1

    def __call__(self, p: dict) -> None:
        frac = p["count"] / p["total_count"] if p["total_count"] else 1.0
        rate = p["rate"]
        left = p["total_count"] - p["count"]
        eta = left / rate if rate > 0 and frac >= 0.01 else float("inf")  # "?" until 1 % is done
        text = (
            f"{self.label}: {frac * 100:5.1f}%  {_fmt_count(p['count'])}/{_fmt_count(p['total_count'])}  "
            f"shards {p['done']}/{p['total']}  {rate / 1e6:.2f} M/s  ETA {_fmt_duration(eta)}"
        )
        if self.tty:
            width = 24
            filled = int(frac * width)
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r[{bar}] {text}")
            if p["done"] == p["total"]:
                self.stream.write("\n")
            self.stream.flush()
            return
        now = time.monotonic()
        decile = int(frac * 10)
        if decile != self.last_decile or now - self.last_line >= 30 or p["done"] == p["total"]:
            self.stream.write(text + "\n")
            self.stream.flush()
            self.last_line, self.last_decile = now, decile


def _run(args) -> int:
    pairs = args.function in PAIR_FUNCTIONS
    default = ("-inf", "inf") if pairs else ("0", "1")
    start = float(args.start if args.start is not None else default[0])
    stop = float(args.stop if args.stop is not None else default[1])
    label = f"{args.function} {args.dtype}" + (f" ({args.backend})" if args.backend else "")
    progress = None if args.quiet else _Progress(sys.stderr, label)
    r = sweep(
        args.function,
        args.dtype,
        start,
        stop,
        executor=args.executor if args.executor != "dask" or not args.scheduler else _dask(args),
        workers=args.workers,
        shard_size=args.shard_size,
        checkpoint=args.checkpoint,
        progress=progress,
        worst=args.worst,
        hard=args.hard,
        backend=args.backend,
    )
    if args.hard_cases:
        with open(args.hard_cases, "w") as f:
            json.dump({k: r[k] for k in ("function", "dtype", "start", "stop", "count", "fallbacks", "hard")}, f, indent=1)
    if args.json:
        keys = ("function", "dtype", "start", "stop", "count", "max_ulp", "not_correctly_rounded", "seconds", "worst")
        out = {k: r[k] for k in keys}
        if args.backend:
            out["backend"] = args.backend
        print(json.dumps(out, indent=2))
    else:
        what = "every two-class row [a, b] of finite inputs" if pairs else "every representable input"
        print(f"{label} on [{start!r}, {stop!r}]: {what}")
        noun = "rows checked" if pairs else "inputs checked"
        print(f"  {noun:<24}{_fmt_count(r['count'])}")
        print(f"  max ULP                 {r['max_ulp']:g}")
        print(f"  not correctly rounded   {_fmt_count(r['not_correctly_rounded'])}")
        print(f"  oracle fallbacks        {_fmt_count(r['fallbacks'])} (settled by mpmath)")
        print(f"  time                    {r['seconds']:.1f} s ({r['count'] / max(r['seconds'], 1e-9) / 1e6:.2f} M {noun.split()[0]}/s)")
        if r["worst"]:
            print("  worst inputs:")
            for w in r["worst"]:
                print(f"    x = {w['x_repr']} ({w['x']}): {w['ulp']:g} ULP, got {w['got']}, want {w['want']}")
        if r["hard"]:
            h = r["hard"][0]
            print(f"  closest to a rounding midpoint: x = {h['x_repr']} ({h['x']}), {h['distance']:.3e} ULP")
    return 0 if r["not_correctly_rounded"] == 0 else 1


def _dask(args):
    """An executor on an existing Dask scheduler (the sweep does not close it)."""
    from dask.distributed import Client

    return Client(args.scheduler).get_executor(pure=False)


def register(subparsers) -> None:
    """Add the ``exhaustive`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "exhaustive",
        help="every input of a range: production against the certified oracle",
        description=(
            "Walk every representable input in [start, stop] (for log_softmax and softmax: every "
            "two-class row [a, b] of finite inputs), compare the production function (or --backend) "
            "with the certified fast oracle, print count, max ULP, results not correctly rounded and "
            "the worst inputs. Exits 1 if any result is not correctly rounded."
        ),
    )
    p.add_argument("function", choices=list(FUNCTIONS))
    p.add_argument("--dtype", default="float32", choices=known_dtypes())
    p.add_argument("--start", default=None, help="lower end of the range (default 0; -inf for the two-class functions)")
    p.add_argument("--stop", default=None, help="upper end of the range (default 1; inf for the two-class functions)")
    p.add_argument(
        "--backend",
        default=None,
        help="check this implementation instead of softlog_numerics: torch, jax, scipy, module:attr[@library] (as in audit)",
    )
    p.add_argument("--workers", type=int, default=None, help="worker processes/threads (default: CPU count)")
    p.add_argument("--executor", choices=["process", "thread", "dask"], default="process")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a LocalCluster)")
    p.add_argument("--checkpoint", default=None, help="JSON progress file (atomic writes; resumes if present)")
    p.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="inputs per shard")
    p.add_argument("--worst", type=int, default=10, help="worst inputs to keep (default 10)")
    p.add_argument("--hard", type=int, default=64, help="hard cases to keep (default 64)")
    p.add_argument("--hard-cases", default=None, help="write the hard cases found to this JSON file")
    p.add_argument("--json", action="store_true", help='print {"function", "dtype", "start", "stop", "count", "max_ulp", "not_correctly_rounded", "seconds", "worst"} (and "backend" with --backend)')
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=_run)
