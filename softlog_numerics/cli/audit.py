"""The ``audit`` subcommand: ``softlog-numerics audit BACKEND [--function F ...] [--dtype D ...]``.

Exit status: 0 when every function x format x family is within ``--max-ulp`` (default: the
library's own bound for that function and format) without errors, 1 when not, 2 on usage errors
(unknown backend, backend not installed: the message names the package to install).
"""

from __future__ import annotations

import argparse
import json
import sys

from softlog_numerics._core.formats import FORMATS
from softlog_numerics.testing.audit import FUNCTIONS, audit, families
from softlog_numerics.testing.backends import BackendError, resolve
from softlog_numerics.testing.contract import bound_of
from softlog_numerics.testing.ulp import format_ulp

__all__ = ["register", "run"]

_EPILOG = """\
backends:
  numpy-naive            textbook formulas in NumPy, no max shift (the control: it fails)
  scipy                  scipy.special.logsumexp / log_softmax / softmax
  torch                  torch.logsumexp, torch.nn.functional.log_softmax / softmax on CPU
  jax                    jax.scipy.special.logsumexp, jax.nn.log_softmax / softmax (x64 enabled)
  softlog_numerics       this library (also softlog_numerics@torch, softlog_numerics@jax:
                         the Array-API wrapper on that library's tensors)
  module:attr[@LIB]      any importable callable, called as f(x) (f(p), f(p, q)) over the last
                         axis, with NumPy arrays, or LIB (torch, jax, cupy) arrays
Functions without a counterpart in a backend (softlog, divergences) are audited as the textbook
formula in that backend's operations. Default functions: those the backend implements itself
(logsumexp, log_softmax, softmax for scipy/torch/jax/numpy-naive; all for softlog_numerics;
log_softmax for module:attr).
"""


def register(subparsers) -> None:
    """Add the ``audit`` subcommand to an ``argparse`` subparsers object (sets ``run``)."""
    p = subparsers.add_parser(
        "audit",
        help="measure another implementation (scipy, torch, jax, module:attr) against the oracle",
        description="Measure an implementation against the correctly rounded oracle, per function, "
        "format and adversarial input family.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("backend", help="numpy-naive, scipy, torch, jax, softlog_numerics[@LIB] or module:attr[@LIB]")
    p.add_argument("--function", action="append", choices=list(FUNCTIONS),
                   help="repeatable; grad.log_softmax, grad.softmax, grad.logsumexp audit the backward pass "
                   "(torch.autograd.grad, jax.vjp)")
    p.add_argument("--dtype", action="append", choices=list(FORMATS), help="repeatable; default all four")
    p.add_argument("--family", action="append", help="input family, repeatable; default all but 'wide'")
    p.add_argument("--json", action="store_true",
                   help="print {function: {dtype: {family: {max_ulp, p99_ulp, ...}}}} as JSON")
    p.add_argument("--max-ulp", type=_max_ulp, default=None,
                   help="pass threshold in ULP (default: the library's own bound per function and dtype)")
    p.add_argument("--examples", type=int, default=50, help="drawn inputs per dtype x family (default 50)")
    p.add_argument("--bulk", type=int, default=5000,
                   help="rows of the 'bulk' family per float16/bfloat16/float32 cell of the forward functions "
                   "(NumPy draws in batches of 512; default 5000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    p.add_argument("--axis-keyword", default=None, metavar="NAME",
                   help="the keyword through which a module:attr kernel takes the axis (dim, axis): "
                   "runs the 'axis' family (3-D inputs along axis 1)")
    p.set_defaults(run=run)


def _err(msg: str) -> None:
    print(f"softlog-numerics audit: error: {msg}", file=sys.stderr, flush=True)


def run(args) -> int:
    """Run the audit the parsed ``args`` describe; return the exit status."""
    try:
        backend = resolve(args.backend)
    except BackendError as e:
        _err(str(e))
        return 2
    if args.examples < 0 or args.bulk < 0:
        _err("--examples and --bulk must be >= 0")
        return 2
    functions = args.function or list(backend.native)
    dtypes = args.dtype or list(FORMATS)
    for f in functions:
        valid = families(f, include_slow=True, axis_keyword=args.axis_keyword or "axis")
        bad = [fam for fam in args.family or () if fam not in valid]
        if bad:
            _err(f"unknown family {bad[0]!r} for {f}; choose from {', '.join(valid)}")
            return 2
    reports = []
    for i, f in enumerate(functions, 1):
        if not args.json:
            print(f"[{i}/{len(functions)}] {backend.label}: {f} ...", file=sys.stderr, flush=True)
        try:
            fams = args.family or families(f, axis_keyword=args.axis_keyword)
            reports.append(audit(args.backend, f, dtypes, fams, args.examples, args.seed,
                                 axis_keyword=args.axis_keyword, bulk_rows=args.bulk))
        except (BackendError, ValueError) as e:
            _err(str(e))
            return 2
    passed = all(r.passed(args.max_ulp) for r in reports)
    if args.json:
        out = {}
        for r in reports:
            out.update(r.to_dict())
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        for r in reports:
            print(r.to_markdown(args.max_ulp))
        print(_summary(reports, dtypes, args.max_ulp))
    return 0 if passed else 1


def _max_ulp(text: str) -> float:
    """``--max-ulp``: a number >= 0 (argparse turns the ValueError into a usage error)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return v


def _summary(reports, dtypes, max_ulp) -> str:
    lines = ["### Summary: max ULP over all families (pass threshold)", "",
             "| function | " + " | ".join(dtypes) + " |", "|" + "---|" * (len(dtypes) + 1)]
    for r in reports:
        cells = []
        for d in dtypes:
            limit = max_ulp if max_ulp is not None else bound_of(r.function, d)
            ok = all(c.passed(max_ulp) for (dd, _), c in r.cells.items() if dd == d)
            errors = sum(c.errors for (dd, _), c in r.cells.items() if dd == d)
            note = f" FAIL, {errors} errors" if errors else ("" if ok else " FAIL")
            cells.append(f"{format_ulp(r.max_ulp(d))} ({limit:g}){note}")
        lines.append(f"| {r.function} | " + " | ".join(cells) + " |")
    verdict = "PASS" if all(r.passed(max_ulp) for r in reports) else "FAIL"
    lines += ["", f"{verdict}: {reports[0].implementation if reports else ''}"]
    return "\n".join(lines)
