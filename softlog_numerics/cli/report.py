"""``softlog-numerics report``: run the sweeps, draw the figures, write ``report.md``.

The work is :func:`softlog_numerics.report.build.build`; this module reads the options, reports
progress and turns failures into exit statuses. ``python -m softlog_numerics.cli.report [options]``
runs the subcommand on its own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from softlog_numerics.oracle.cache import OracleCache
from softlog_numerics.report.build import Progress, build, steps

__all__ = ["main", "register", "run"]


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be a non-negative integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"--seed must be a non-negative integer, got {v}")
    return v


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "report",
        help="measure every algorithm variant in every format; write figures and report.md",
        description=__doc__.split("\n\n")[0] + " Writes report.md, results.json and PNG+SVG figures into DIR.",
    )
    p.add_argument("--out", default="figures", metavar="DIR", help="output folder (default: figures/)")
    p.add_argument("--quick", action="store_true", help="fewer inputs: under a minute on two cores")
    p.add_argument("--seed", type=_seed, default=0, metavar="N", help="seed of the input draws (default 0)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the oracle cache")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="oracle cache folder (default $SOFTLOG_NUMERICS_CACHE or ~/.cache/softlog-numerics)")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    """Run the ``report`` subcommand; returns the exit status."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"softlog-numerics report: error: --out {str(out)!r} exists and is not a directory", file=sys.stderr)
        return 2
    cache = OracleCache(args.cache_dir, enabled=not args.no_cache)
    progress = Progress(steps(args.quick))
    try:
        summary = build(out, quick=args.quick, seed=args.seed, cache=cache, progress=progress)
    except OSError as exc:
        print(f"softlog-numerics report: error: cannot write to {str(out)!r}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out / 'report.md'} and {len(summary['figures'])} figures (PNG + SVG) in {summary['seconds']:.1f} s "
          f"(oracle cache: {cache.hits} hits, {cache.misses} misses, {cache.stale} stale, {cache.corrupt} corrupt)",
          file=sys.stderr)
    return 0


def main(argv=None) -> int:
    """``python -m softlog_numerics.cli.report [options]``: the subcommand on its own."""
    parser = argparse.ArgumentParser(prog="softlog-numerics")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["report", *(sys.argv[1:] if argv is None else argv)])
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
