"""The report: run the sweeps, draw the figures, write ``report.md`` (``softlog-numerics report``).

The project's main job. For a given seed the output is deterministic: the same inputs, the same
tables, the same figure files (PNG and SVG, no dates inside). Oracle values are cached on disk
(:mod:`softlog_numerics.oracle.cache`), so a rerun spends its time on the variants and the figures only.

Usage::

    softlog-numerics report [--out DIR] [--quick] [--seed N] [--no-cache] [--cache-dir DIR]

``--quick`` draws fewer inputs (under a minute on two cores, cold cache); the full run takes a few
minutes. Progress goes to stderr: a bar on a terminal, plain lines otherwise.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from softlog_numerics.analysis import algorithms, sweeps
from softlog_numerics.analysis.regions import regions_table
from softlog_numerics.report import plots, region_plots
from softlog_numerics.testing.contract import CANCELLATION, ULP_BOUNDS

__all__ = ["Progress", "build", "steps"]

DTYPES = ["float16", "bfloat16", "float32", "float64"]
LSE_FAMILY = ("logsumexp", "log_softmax", "softmax")
DIVERGENCES = ("softlog_entropy", "softlog_cross_entropy", "sld", "sld_sym")


# ---------------------------------------------------------------------------------------------
# Progress


class Progress:
    """A progress bar on a terminal (``\\r``-redrawn), plain ``[k/N] label`` lines otherwise."""

    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.total = max(1, total)
        self.done = 0
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        secs = time.perf_counter() - self.start
        if self.tty:
            width = 30
            fill = int(width * self.done / self.total)
            bar = "#" * fill + "-" * (width - fill)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} {secs:5.0f}s {label[:40]:<40}")
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {label} ({secs:.1f} s)\n")
        self.stream.flush()


# ---------------------------------------------------------------------------------------------
# Formatting


def _ulp(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "inf"
    if v < 1e4:
        return f"{v:.0f}"
    return f"{v:.1e}"


def _cell_text(c) -> str:
    if c is None:
        return "—"
    if c.error:
        return "n/a"
    return f"{_ulp(c.max_ulp)} / {_ulp(c.p99_ulp)}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _outputs(cells, f, d) -> int:
    return max((c.outputs for c in cells if c.function == f and c.dtype == d and c.ok), default=0)


def _best_peer(cells, f, d):
    """The strict variant with the smallest max ULP (ties: fewer NaN mismatches, then the name)."""
    peers = [c for c in cells if c.function == f and c.dtype == d and c.variant != "production" and c.ok]
    if not peers:
        return None
    return min(peers, key=lambda c: (c.max_ulp, c.nan, c.variant))


def _nan_note(c) -> str:
    return f", {c.nan} NaN" if c is not None and c.ok and c.nan else ""


# ---------------------------------------------------------------------------------------------
# The job


def steps(quick: bool) -> int:
    """How many progress steps :func:`build` reports."""
    return len(algorithms.FUNCTIONS) * len(DTYPES) + 4 * len(DTYPES) + 13 + 1 + _REGION_STEPS


_REGION_STEPS = 7  # region_plots.make_figures reports 4 maps, softlog near x0, 2 (p, q) sweeps


def build(out: Path, *, quick: bool, seed: int, cache, progress: Progress) -> dict:
    """Run everything and write the report; returns a summary (figure stems, cells, timings)."""

    out.mkdir(parents=True, exist_ok=True)
    sz = sweeps.sizes(quick)
    t0 = time.perf_counter()
    cells = sweeps.precision_sweep(seed, sz, cache, step=progress.step)
    vs_x, lsm_gap, sm_gap, width, vjp_gap, ce_gap = {}, {}, {}, {}, {}, {}
    for d in DTYPES:
        vs_x[d] = sweeps.softlog_vs_x(d, sz, cache)
        progress.step(f"softlog vs x {d}")
        lsm_gap[d] = sweeps.gap_sweep("log_softmax", d, sz, cache)
        progress.step(f"log_softmax vs gap {d}")
        sm_gap[d] = sweeps.gap_sweep("softmax", d, sz, cache)
        progress.step(f"softmax vs gap {d}")
        width[d] = sweeps.width_sweep(d, seed, sz, cache)
        vjp_gap[d] = sweeps.backward_gap_sweep("grad.log_softmax", d, sz)
        ce_gap[d] = sweeps.backward_gap_sweep("grad.cross_entropy", d, sz)
        progress.step(f"log_softmax vs width, backward vs gap {d}")
    t_sweeps = time.perf_counter() - t0

    figures = []  # (stem, caption)

    def fig(stem, caption):
        figures.append((stem, caption))
        progress.step(f"figure {stem}")

    fig(plots.precision_bars(cells, ["softlog"], ULP_BOUNDS, out, "error_vs_precision_softlog",
                             "softlog: max error per variant and format"),
        "softlog: maximum error (bar, ULPs, symlog) and 99th percentile (black tick) of each variant in "
        "each format over the adversarial families (unit interval by position, near x0, near 1, outside [0, 1]); "
        "red dashes: the production function's bound. The centred form's maxima come from the 'outside' family next "
        "to the branch point -1/(e²-1), where L tends to -inf and its condition number is unbounded; on [0, 1] it "
        "stays within a few ULPs (next figures).")
    for f in LSE_FAMILY:
        fig(plots.precision_bars(cells, [f], ULP_BOUNDS, out, f"error_vs_precision_{f}",
                                 f"{f}: max error per variant and format"),
            f"{f}: maximum error (bar) and 99th percentile (tick) of each variant in each format over the logit "
            "families (random, dominant, near_tie, huge, masked, subnormal, all_equal" +
            (", wide" if not quick else "") + "); NaN mismatches are counted in the table, not here.")
    fig(plots.precision_bars(cells, DIVERGENCES, ULP_BOUNDS, out, "error_vs_precision_divergences",
                             "softlog entropy, cross-entropy and divergences: max error per variant and format"),
        "Softlog entropy, cross-entropy, SLD and symmetric SLD: maximum error (bar) and 99th percentile (tick) "
        "over probability vectors and pairs; results near 0 after cancellation dominate the maxima (see the "
        "cancellation-aware table).")
    fig(plots.bits_heatmap(cells, out),
        "Bits of error log2(1 + ULP) (Herbie style) of every variant in every format: maximum (left) and mean "
        "(right) over all the precision-sweep outputs; n/a: the variant does not apply to that format.")
    fig(plots.softlog_vs_x(vs_x, out),
        "softlog error over x in [0, 1]: for each of 200 bins the largest error of the numbers in it "
        "(every float16/bfloat16 number; a grid plus points near x0 for float32/float64). The spike at "
        "x0 = 1/(e+1) is the cancellation of the naive and log1p forms.")
    fig(plots.softlog_near_x0(vs_x, out),
        "softlog error against the distance from x0 = 1/(e+1) in representable numbers: the naive and "
        "log1p forms lose about one bit each time the distance halves; the centred form does not.")
    fig(plots.gap_figure(lsm_gap, "log_softmax", out, "log_softmax_error_vs_gap"),
        "log_softmax of the two logits [g, 0]: largest error of the row against the gap g (the largest in "
        "each of 120 bins of g). Past the collapse "
        "gap p ln 2 (dotted) the 3-pass algorithm returns exactly 0 for the dominant class, whose true value "
        "is -log1p(exp(-g)).")
    fig(plots.gap_figure(sm_gap, "softmax", out, "softmax_error_vs_gap"),
        "softmax of [10.3, 10.3 - g] (both rounded to the format): largest error of the row against g (the "
        "largest in each of 120 bins of g). "
        "The rounding of x - max is amplified by exp in proportion to g; past the dotted line exp underflows.")
    fig(plots.gap_figure(vjp_gap, "grad.log_softmax", out, "log_softmax_vjp_error_vs_gap"),
        "The backward pass of log_softmax at [g, 0] with the cotangent [1, 0] (the gradient of a "
        "cross-entropy term): the exact VJP is [q, -q] with q = 1/(1 + e^g). The textbook "
        "g - exp(log_softmax) sum(g), in the format or in float64, returns 0 for the dominant class once "
        "exp(log_softmax) rounds to 1 (the defect of PyTorch's and JAX's float64 VJP at g = 37.43); the "
        "production VJP forms -sum_{i != k} g_i + q_k sum(g) with q_k summed from the other probabilities.")
    fig(plots.gap_figure(ce_gap, "grad.cross_entropy", out, "cross_entropy_grad_error_vs_gap"),
        "The cross-entropy gradient softmax - onehot at [g, 0] with target class 0: exact [-q, q]. "
        "softmax - 1 in the format collapses to 0 past the collapse gap; production writes the "
        "dominant component as (1 - t_k) - q_k.")
    fig(plots.width_figure(width, out),
        "log_softmax of rows of n logits uniform in [-8, 8] (one to eight rows per width): largest error "
        "against the row width n, up to " + f"{int(max(sz.widths)):,}" + " logits. The large errors at small n "
        "come from rows where one logit dominates (see the gap figure); pairwise sums keep the error flat in n, "
        "while the online normalizer's 32 sequential lanes let it grow.")

    regions = region_plots.make_figures(out, stride=4 if quick else 1, progress=progress.step)
    figures.extend(regions)
    t_total = time.perf_counter() - t0

    text = _markdown(cells, figures, quick=quick, seed=seed, sz=sz, region_stems=[s for s, _ in regions])
    (out / "report.md").write_text(text)
    (out / "results.json").write_text(json.dumps(
        {"seed": seed, "quick": quick, "cells": [c.to_dict() for c in cells]},
        indent=1, sort_keys=True, allow_nan=True) + "\n")
    progress.step("report.md")
    return {"figures": [s for s, _ in figures], "cells": cells, "seconds_sweeps": t_sweeps,
            "seconds": t_total}


def _markdown(cells, figures, *, quick: bool, seed: int, sz, region_stems=()) -> str:

    cap = dict(figures)
    by = {(c.function, c.variant, c.dtype): c for c in cells}
    L = []
    mode = "quick" if quick else "full"
    L.append("# Accuracy of softlog, log-softmax and the softlog divergences, by algorithm and format\n")
    L.append(f"Generated by `softlog-numerics report{' --quick' if quick else ''} --seed {seed}` ({mode} run). "
             "Every number below is measured against the correctly rounded mpmath oracle "
             "(`softlog_numerics.oracle`); nothing is assumed. Regenerate rather than edit: the same seed gives "
             "the same tables and figures.\n")
    L.append("Error is the distance in ULPs (units in the last place of the working format: 0 = correctly "
             "rounded, 1 = faithful) between a variant's result and the oracle's. *max / p99*: largest and "
             "99th-percentile error over all outputs of the sweep. Every variant except `production` is "
             "evaluated strictly in the working format (see `softlog_numerics.algorithms`).\n")
    n_figs = len(figures)
    L.append(f"Figures ({n_figs}): " + ", ".join(f"[{s}]({s}.png)" for s, _ in figures) + ".\n")

    # Headline
    L.append("## Headline: the library's function against the best other variant\n")
    L.append("Max ULP error, `production` vs the most accurate strict variant (named) in the same sweep; "
             "\"k NaN\": outputs where the variant and the oracle disagree on NaN (not in the max).\n")
    rows = []
    for f in algorithms.FUNCTIONS:
        r = [f"`{f}`"]
        for d in DTYPES:
            p = by.get((f, "production", d))
            b = _best_peer(cells, f, d)
            ptxt = _ulp(p.max_ulp) + _nan_note(p) if p is not None and p.ok else "n/a"
            btxt = f"{_ulp(b.max_ulp)} ({b.variant}{_nan_note(b)})" if b is not None else "n/a"
            r.append(f"{ptxt} vs {btxt}")
        rows.append(r)
    L.append(_table(["function"] + DTYPES, rows) + "\n")

    # Contract
    L.append("## The contract: production bounds (`softlog_numerics.testing.contract`)\n")
    L.append("Measured max ULP / promised bound; *violations*: outputs (rows for reductions) outside the "
             "contract, which for the sums that may cancel (" + ", ".join(f"`{f}`" for f in CANCELLATION) +
             ") also admits an absolute error of `CANCELLATION[f] * 2**-53 * sum|terms|`.\n")
    rows = []
    for f in algorithms.FUNCTIONS:
        r = [f"`{f}`"]
        for d in DTYPES:
            p = by.get((f, "production", d))
            bound = ULP_BOUNDS.get(f, {}).get(d)
            if p is None or not p.ok:
                r.append(f"n/a / {bound}")
            else:
                r.append(f"{_ulp(p.max_ulp)} / {bound}" + (f", {p.violations} violations" if p.violations else ""))
        rows.append(r)
    L.append(_table(["function"] + DTYPES, rows) + "\n")

    # Per function
    L.append("## Error vs precision, per function\n")
    fig_of = {"softlog": "error_vs_precision_softlog", "logsumexp": "error_vs_precision_logsumexp",
              "log_softmax": "error_vs_precision_log_softmax", "softmax": "error_vs_precision_softmax"}
    for f in algorithms.FUNCTIONS:
        L.append(f"### `{f}`\n")
        stem = fig_of.get(f, "error_vs_precision_divergences")
        if f in fig_of or f == DIVERGENCES[0]:
            L.append(f"![{stem}]({stem}.png)\n")
            L.append(f"*{cap[stem]}*\n")
        rows = []
        for v in algorithms.variants(f):
            r = [f"`{v.name}`"] + [_cell_text(by.get((f, v.name, d))) for d in DTYPES]
            worst = {by[(f, v.name, d)].worst_family for d in DTYPES
                     if (f, v.name, d) in by and by[(f, v.name, d)].ok and by[(f, v.name, d)].max_ulp > 0}
            r.append(", ".join(sorted(worst)) or "—")
            rows.append(r)
        L.append("Max / p99 ULP (— : not defined for that format; n/a: not available):\n")
        L.append(_table(["variant"] + DTYPES + ["worst family"], rows) + "\n")
        rows = []
        for v in algorithms.variants(f):
            r = [f"`{v.name}`"]
            for d in DTYPES:
                c = by.get((f, v.name, d))
                r.append("—" if c is None else ("n/a" if not c.ok else f"{c.nan} / {c.inf}"))
            rows.append(r)
        L.append("NaN mismatches (NaN where the oracle is a number, or the reverse) / spurious infinities "
                 "(±inf where the oracle is finite), out of "
                 + ", ".join(f"{_outputs(cells, f, d):,} ({d})" for d in DTYPES) + " outputs:\n")
        L.append(_table(["variant"] + DTYPES, rows) + "\n")
        if f in DIVERGENCES:
            rows = []
            for v in algorithms.variants(f):
                r = [f"`{v.name}`"]
                for d in DTYPES:
                    c = by.get((f, v.name, d))
                    r.append("—" if c is None else ("n/a" if not c.ok else f"{c.max_scaled:.3g}"))
                rows.append(r)
            L.append("Cancellation-aware error: max over rows of `|result - oracle| / (u * sum_k |term_k|)`, "
                     "u the unit roundoff of the format (a backward-stable sum has a small constant here even "
                     "when its ULP error is huge because the sum cancels):\n")
            L.append(_table(["variant"] + DTYPES, rows) + "\n")

    L.append("## Bits of error\n")
    L.append("![bits_of_error](bits_of_error.png)\n")
    L.append(f"*{cap['bits_of_error']}*\n")

    L.append("## Error vs input\n")
    for stem in ("softlog_error_vs_x", "softlog_error_near_x0", "log_softmax_error_vs_gap",
                 "softmax_error_vs_gap", "log_softmax_error_vs_width"):
        L.append(f"![{stem}]({stem}.png)\n")
        L.append(f"*{cap[stem]}*\n")

    if region_stems:
        L.append("## Overflow, underflow and collapse regions; the range of SLD\n")
        L.append("Thresholds derived from each format's precision and exponent range and confirmed by "
                 "bisection against correctly rounded values (`softlog-numerics regions`; proofs/thresholds.md):\n")
        L.append(_regions_table() + "\n")
        for stem in region_stems:
            L.append(f"![{stem}]({stem}.png)\n")
            L.append(f"*{cap[stem]}*\n")

    L.append("## The variants\n")
    rows = []
    for f in algorithms.FUNCTIONS:
        for v in algorithms.variants(f):
            acc = ", ".join(f"{k}→{w}" for k, w in v.accumulate.items()) or "input format"
            rows.append([f"`{f}`", f"`{v.name}`", v.description, "black box" if not v.strict else acc, v.reference])
    L.append(_table(["function", "variant", "description", "working format", "reference"], rows) + "\n")

    L.append("## How this was measured\n")
    L.append(
        f"- Inputs: fixed-seed NumPy draws (seed {seed}) from the adversarial families of "
        "`softlog_numerics.strategies`: softlog arguments by position in [0, 1], within 64 positions of x0, "
        "within 64 positions below 1, and outside [0, 1] down to the branch point -1/(e²-1); logit rows of widths "
        f"{', '.join(map(str, sz.logit_widths))}" + (" and one row of 32,000–33,000 (`wide`)" if sz.wide_rows else "") +
        f", {sz.logit_rows} rows per family and width; probability vectors and pairs of widths "
        f"{', '.join(map(str, sz.prob_widths))}, {sz.prob_rows} rows per family or kind and width.\n"
        "- Strict evaluation: float16 and bfloat16 operations are computed in float64 and rounded once "
        "(exact for + - * / sqrt; exp/log/log1p/expm1 emulate a libm within 1 ULP); float32 and float64 use "
        "NumPy's own operations (NumPy's float32 exp/log are not correctly rounded). Sums are pairwise.\n"
        "- Oracle values are cached on disk (`$SOFTLOG_NUMERICS_CACHE`, default `~/.cache/softlog-numerics`), "
        "checked by checksum and oracle fingerprint on every read.\n"
        "- `results.json` next to this file holds every number of the tables.\n")
    return "\n".join(L)


def _regions_table() -> str:

    data = regions_table()
    names = list(data[DTYPES[0]])
    rows = [[f"`{n}`"] + [repr(data[d][n]) for d in DTYPES] for n in names]
    inf = data["sld_infimum"]
    table = _table(["threshold"] + DTYPES, rows)
    sld = _table(["K"] + list(inf), [["min sld"] + [f"{float(v):.9g}" for v in inf.values()]])
    return table + "\n\nMinimum of the directed `sld` over K classes (certified; proofs/sld_bounds.md):\n\n" + sld
