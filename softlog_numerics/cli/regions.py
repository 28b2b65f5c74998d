"""The ``regions`` subcommand: ``softlog-numerics regions [--json] [--verify] [--no-softlog]``.

Prints, for float16, bfloat16, float32 and float64, the exact thresholds of
:mod:`softlog_numerics.regions` (overflow and underflow of ``exp``, the softmax collapse gap, the
gap at which the three-pass log_softmax returns 0 for the dominant class, and the widths of the
softlog regions without a correct bit), and the certified minima of ``sld`` from
:mod:`softlog_numerics.analysis.sld_bounds`.

``--json`` prints ``{"float16": {"exp_overflow": 11.09375, ...}, ..., "sld_infimum": {"2": ...,
"3": ..., "10": ..., "100": ..., "limit": ...}}``. Thresholds are JSON numbers written with
Python's ``repr`` of the float64 that holds them exactly (every number of the four formats is a
float64), so ``float(text)`` and a cast to the format give back the exact number; widths are
integers. The SLD minima are JSON numbers too (the float64 nearest to the certified value); the
key ``"sld_infimum_certified"`` adds, per ``K``, the enclosure ``[lo, hi]`` of the minimum and
``[a_lo, a_hi]`` of the minimiser's large entry as decimal strings with 25 digits after the point,
rounded outwards (so they are still enclosures), and the small entry ``c``.

Exit status 0; 1 if ``--verify`` finds a formula and a bisection that disagree.
"""

from __future__ import annotations

import json
from fractions import Fraction

from softlog_numerics._core.formats import FORMATS
from softlog_numerics.analysis.regions import EXP_KEYS, SOFTLOG_KEYS, regions_table
from softlog_numerics.analysis.sld_bounds import sld_infimum_table

__all__ = ["register", "run"]


def register(subparsers) -> None:
    """Add the ``regions`` subcommand to an ``argparse`` subparsers object (sets ``run``)."""
    p = subparsers.add_parser(
        "regions",
        help="exact overflow/underflow/collapse thresholds per format and the certified range of SLD",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument(
        "--verify",
        action="store_true",
        help="also find every threshold by bisection over the format's numbers and check it equals the formula",
    )
    p.add_argument("--no-softlog", action="store_true", help="skip the softlog widths (they need softlog_numerics.softlog)")
    p.set_defaults(run=run)


def _decimal(x, digits: int, up: bool) -> str:
    """``x`` (an mpf) rounded up or down to ``digits`` digits after the point, as fixed decimal
    (exact: the mpf is converted to a Fraction first)."""
    sign, man, exp, _ = x._mpf_
    v = Fraction(int(man)) * Fraction(2) ** int(exp) if man else Fraction(0)
    v = -v if sign else v
    scaled = v * 10**digits
    n = -((-scaled.numerator) // scaled.denominator) if up else scaled.numerator // scaled.denominator
    sign = "-" if n < 0 else ""
    s = str(abs(n)).rjust(digits + 1, "0")
    return f"{sign}{s[:-digits]}.{s[-digits:]}"


def _certified(digits: int = 25):
    out = {}
    for k, v in sld_infimum_table().items():
        out[k] = {
            "lo": _decimal(v.value_lo, digits, up=False),
            "hi": _decimal(v.value_hi, digits, up=True),
            "a_lo": _decimal(v.a_lo, digits, up=False),
            "a_hi": _decimal(v.a_hi, digits, up=True),
            "c": _decimal(v.c_mid, digits, up=False),
        }
    return out


def run(args) -> int:
    try:
        table = regions_table(verify=args.verify, softlog=not args.no_softlog)
    except AssertionError as e:  # formula != bisection
        print(f"VERIFY FAILED: {e}")
        return 1
    if args.json:
        cert = _certified()
        table["sld_infimum_certified"] = cert
        print(json.dumps(table, indent=2))
        return 0
    keys = list(EXP_KEYS) + ([] if args.no_softlog else list(SOFTLOG_KEYS))
    names = list(FORMATS)
    print("Exact thresholds per format" + (" (formula = bisection, verified)" if args.verify else " (closed formulas)") + ":\n")
    print("| threshold | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for k in keys:
        cells = [repr(table[n][k]) for n in names]
        print(f"| {k} | " + " | ".join(cells) + " |")
    print("\nx: exp(x) rounds to +inf from exp_overflow up, to 0 up to exp_underflow_zero, to a subnormal up to exp_subnormal;")
    print("g: logit gap; softlog widths are in ULPs of x around x0 = 1/(e+1) (no correct bit).\n")
    print("Minimum of sld(p, q) = 1/2 sum p_k (L(p_k) - L(q_k)) over K classes (certified enclosure, attained at")
    print("q = e_1, p = (a, c, ..., c)):\n")
    print("| K | min sld: enclosure | a: enclosure | c |")
    print("|---|---|---|---|")
    for k, v in _certified(18).items():
        print(f"| {k} | [{v['lo']}, {v['hi']}] | [{v['a_lo']}, {v['a_hi']}] | {v['c']} |")
    return 0
