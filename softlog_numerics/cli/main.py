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
import json
import sys

from ._bounds import ULP_BOUNDS
from ._dtypes import FORMATS


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cmd_accuracy(args) -> int:
    from .accuracy import measure

    functions = args.function or list(ULP_BOUNDS)
    dtypes = args.dtype or list(FORMATS)
    results = []
    total = len(functions) * len(dtypes)
    for i, f in enumerate(functions):
        for j, d in enumerate(dtypes):
            k = i * len(dtypes) + j + 1
            if not args.json:
                _progress(f"[{k}/{total}] {f} {d} ...")
            m = measure(f, d, examples=args.examples)
            results.append(m)
    broken = [m for m in results if not m.passed]
    if args.json:
        print(json.dumps([m.to_dict() for m in results], indent=2))
    else:
        _print_table(results, dtypes, args.examples)
        for m in broken:
            print(f"\nBOUND BROKEN: {m.function} {m.dtype}: max {m.max_ulp:g} ULP > {m.bound}; inputs:")
            for f in m.failures:
                print(f"  {f}")
    return 1 if broken else 0


def _fmt_ulp(v: float) -> str:
    if v == float("inf"):
        return "inf"
    return f"{v:.0f}" if v < 1e6 else f"{v:.2e}"


def _print_table(results, dtypes, examples) -> None:
    by = {(m.function, m.dtype): m for m in results}
    functions = list(dict.fromkeys(m.function for m in results))
    head = "| function | " + " | ".join(dtypes) + " |"
    print(f"Max ULP against the correctly rounded oracle (measured / bound), {examples} Hypothesis examples "
          "+ hard cases per cell, fixed seed:\n")
    print(head)
    print("|" + "---|" * (len(dtypes) + 1))
    for f in functions:
        cells = []
        for d in dtypes:
            m = by[(f, d)]
            mark = "" if m.passed else " BROKEN"
            cancel = f" (+{m.cancelling} Σ)" if m.cancelling else ""
            cells.append(f"{_fmt_ulp(m.max_ulp)} / {m.bound}{cancel}{mark}")
        print(f"| {f} | " + " | ".join(cells) + " |")
    secs = sum(m.seconds for m in results)
    print(f"\n{sum(m.examples for m in results)} evaluations in {secs:.1f} s. "
          "(+N Σ): N examples whose sums cancel (softlog_entropy, softlog_cross_entropy, sld) were beyond "
          "the ULP bound but within the documented allowance of 4·2^-53·Σ|terms| absolute; they pass and are "
          "left out of the maximum.")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="softlog-numerics", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("accuracy", help="max ULP of every function x format against the oracle")
    a.add_argument("--examples", type=int, default=300, help="Hypothesis examples per cell (default 300)")
    a.add_argument("--function", action="append", choices=list(ULP_BOUNDS), help="repeatable; default all")
    a.add_argument("--dtype", action="append", choices=list(FORMATS), help="repeatable; default all four")
    a.add_argument("--json", action="store_true", help="print the results as JSON")
    a.set_defaults(run=_cmd_accuracy)
    from ._cli_audit import register as register_audit

    register_audit(sub)
    from .report import register as register_report

    register_report(sub)
    from ._cli_regions import register as register_regions

    register_regions(sub)
    from ._cli_exhaustive import register as register_exhaustive

    register_exhaustive(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
