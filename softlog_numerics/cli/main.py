"""The ``softlog-numerics`` command (also ``python -m softlog_numerics``).

Subcommands:

``accuracy``  max ULP of every function x format against the correctly rounded oracle, next to the
              bound the library promises; exits 1 if a bound is broken.
``audit``     the same question for another backend (torch, jax, scipy, ``module:attr``).
``report``    error-vs-precision sweeps of every algorithm variant, figures and report.md.
``regions``   overflow/underflow/collapse thresholds per format and the range of the divergences.
``exhaustive`` every representable input of a range against the certified oracle (resumable, any executor).
"""

from __future__ import annotations

import argparse
import sys

from softlog_numerics.cli import accuracy, audit, exhaustive, regions, report

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="softlog-numerics", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for command in (accuracy, audit, report, regions, exhaustive):
        command.register(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
