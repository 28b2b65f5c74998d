"""``softlog-numerics accuracy``: max ULP of every function x format against the correctly rounded
oracle, next to the bound the library promises; exits 1 if a bound is broken."""

from __future__ import annotations

import argparse
import json
import sys

from softlog_numerics._core.formats import FORMATS
from softlog_numerics.testing.accuracy import DERIVATIVES, FUNCTIONS, measure
from softlog_numerics.testing.ulp import format_ulp

__all__ = ["register", "run"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``accuracy`` subcommand to an ``argparse`` subparsers object."""
    a = subparsers.add_parser("accuracy", help="max ULP of every function x format against the oracle")
    a.add_argument("--examples", type=int, default=300, help="Hypothesis examples per cell (default 300)")
    a.add_argument("--bulk", type=int, default=30000,
                   help="NumPy-drawn rows per cell where the oracle has a fast path (float16, bfloat16, "
                        "float32 cells of the functions in softlog_numerics.testing.bulk; default 30000)")
    a.add_argument("--function", action="append", choices=list(FUNCTIONS + DERIVATIVES),
                   help="repeatable; default all: the functions, the fused loss, the VJPs (grad.*) and the JVPs")
    a.add_argument("--dtype", action="append", choices=list(FORMATS), help="repeatable; default all four")
    a.add_argument("--json", action="store_true", help="print the results as JSON")
    a.set_defaults(run=run)
    return a


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args) -> int:
    """Run the ``accuracy`` subcommand; returns the exit status."""
    functions = args.function or list(FUNCTIONS + DERIVATIVES)
    dtypes = args.dtype or list(FORMATS)
    results = []
    total = len(functions) * len(dtypes)
    for i, f in enumerate(functions):
        for j, d in enumerate(dtypes):
            k = i * len(dtypes) + j + 1
            if not args.json:
                _progress(f"[{k}/{total}] {f} {d} ...")
            m = measure(f, d, examples=args.examples, bulk=args.bulk)
            results.append(m)
    broken = [m for m in results if not m.passed]
    if args.json:
        print(json.dumps([m.to_dict() for m in results], indent=2))
    else:
        _print_table(results, dtypes, args.examples, args.bulk)
        for m in broken:
            print(f"\nBOUND BROKEN: {m.function} {m.dtype}: max {m.max_ulp:g} ULP > {m.bound}; inputs:")
            for f in m.failures:
                print(f"  {f}")
    return 1 if broken else 0


def _print_table(results, dtypes, examples, bulk=0) -> None:
    by = {(m.function, m.dtype): m for m in results}
    functions = list(dict.fromkeys(m.function for m in results))
    head = "| function | " + " | ".join(dtypes) + " |"
    extra = (f" + {bulk} NumPy-drawn rows in the cells marked * (those whose oracle has a fast path, "
             "softlog_numerics.testing.bulk)") if bulk > 0 else ""
    print(f"Max ULP against the correctly rounded oracle (measured / bound), {examples} Hypothesis examples "
          f"+ hard cases per cell{extra}, fixed seed:\n")
    print(head)
    print("|" + "---|" * (len(dtypes) + 1))
    for f in functions:
        cells = []
        for d in dtypes:
            m = by[(f, d)]
            mark = "" if m.passed else " BROKEN"
            cancel = f" (+{m.cancelling} Σ)" if m.cancelling else ""
            star = "*" if m.bulk_rows else ""
            cells.append(f"{format_ulp(m.max_ulp)} / {m.bound}{star}{cancel}{mark}")
        print(f"| {f} | " + " | ".join(cells) + " |")
    secs = sum(m.seconds for m in results)
    print(f"\n{sum(m.examples for m in results)} evaluations in {secs:.1f} s. "
          "(+N Σ): N examples whose sums cancel were beyond the ULP bound but within the documented "
          "allowance CANCELLATION[f]·2^-53·Σ|terms| absolute (softlog_numerics.testing.contract); they pass "
          "and are left out of the maximum. A derivative's cell is the max over every array it returns "
          "(dP and dw for grad.softlog_softmax, the pair for grad.sld).")
