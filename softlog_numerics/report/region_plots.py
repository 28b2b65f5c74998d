"""Figures of the exact regions: where log_softmax, softlog and the softlog divergences break down.

:func:`make_figures` draws every figure into a folder and returns ``[(stem, caption), ...]``; each
figure is saved as ``<stem>.png`` and ``<stem>.svg`` with stable names and no dates in the files.
matplotlib is imported only when a figure is drawn, with the Agg backend.

* ``regions_log_softmax_<dtype>`` (one per format): a two-class input ``[m, RN(m - g)]`` over a
  grid of the max logit ``m`` and the gap ``g``, each cell classified by comparing four algorithms
  (naive, shifted three-pass, shifted with log1p, the library's production log_softmax), evaluated
  in the format, with the correctly rounded oracle; the derived thresholds of
  :mod:`softlog_numerics.regions` are drawn over the cells.
* ``regions_softlog_x0``: relative error of each softlog algorithm at every number of the format
  within 64 ULPs of ``x0 = 1/(e+1)``, with the points without a correct bit shaded.
* ``regions_sld_k2``: the ``(a, b)`` plane of two-class distributions ``p = (a, 1-a)``,
  ``q = (b, 1-b)``: where ``sld`` is negative, and where the textbook formulas evaluated in
  float16/bfloat16 fail, from an exhaustive sweep of every pair of numbers of the format in
  ``[0, 1]`` (:func:`softlog_numerics.analysis.sld_bounds.sweep_naive_k2`; the picture pools the pairs
  into pixels, the counts in the caption are over all pairs).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import mpmath
import numpy as np

from softlog_numerics import oracle
from softlog_numerics._core.formats import format_of, round_from_float64
from softlog_numerics.analysis.format_arithmetic import (
    LOG_SOFTMAX_VARIANTS,
    SOFTLOG_VARIANTS,
    ExactOps,
    VectorOps,
    log_softmax_variant,
    ordinal_of,
    softlog_variant,
    value_at,
)
from softlog_numerics.analysis.regions import (
    formula_thresholds,
    softlog_region,
    x0_nearest,
)
from softlog_numerics.analysis.sld_bounds import (
    NAIVE_CLASSES,
    sld_infimum,
    sweep_naive_k2,
    unit_interval_values,
)
from softlog_numerics.testing.contract import ULP_BOUNDS
from softlog_numerics.testing.ulp import ulp_distance

__all__ = [
    "CELL_CLASSES",
    "classify_cells",
    "log_softmax_region_data",
    "make_figures",
    "plot_log_softmax_regions",
    "plot_sld_plane",
    "plot_softlog_x0",
    "softlog_x0_data",
]

DTYPES = ("float16", "bfloat16", "float32", "float64")

CELL_CLASSES = ("exact", "accurate", "inaccurate", "zero where nonzero", "±inf", "NaN")
"""Classes of a region-map cell, in increasing severity (a cell takes the worst of its outputs)."""

_CELL_COLOURS = ("#c7e9c0", "#41ab5d", "#fdae6b", "#d7301f", "#6a51a3", "#000000")
_NAIVE_COLOURS = ("#f0f0f0", "#fd8d3c", "#d7301f", "#6a51a3", "#2171b5", "#000000")
_VARIANT_TITLES = {
    "naive": "naive: x - log(exp(x0) + exp(x1))",
    "shifted": "shifted 3-pass: (x - m) - log(sum exp(x - m))",
    "shifted_log1p": "shifted + log1p: (x - m) - log1p(exp(-g))",
    "production": "library: softlog_numerics.log_softmax",
}
_SOFTLOG_STYLE = {
    "naive_log": ("#d62728", "o", "naive log((e - 1/e) x + 1/e)"),
    "naive_log1p": ("#ff7f0e", "s", "naive -1 + log1p((e² - 1) x)"),
    "production": ("#000000", "*", "library softlog"),
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "svg.hashsalt": "softlog-numerics-regions",
        "font.size": 9,
        "axes.titlesize": 9.5,
        "legend.fontsize": 8,
    })
    return plt


def _save(fig, out: Path, stem: str) -> str:
    import matplotlib.pyplot as plt

    fig.savefig(out / f"{stem}.png", dpi=110, metadata={"Software": None})
    fig.savefig(out / f"{stem}.svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return stem


# ---------------------------------------------------------------------------------------------
# (a) log_softmax region maps


def classify_cells(y, ref, bound: int) -> np.ndarray:
    """Class code (index into :data:`CELL_CLASSES`) of each result ``y`` against the correctly
    rounded ``ref`` (arrays of one format): NaN where ``y`` is NaN and ``ref`` is not; ±inf where
    ``y`` is infinite and ``ref`` finite; zero where ``y == 0 != ref``; else exact (0 ULP),
    accurate (at most ``bound`` ULP) or inaccurate. ``+0`` against ``-0`` counts as exact."""
    y64, r64 = y.astype(np.float64), ref.astype(np.float64)
    d = ulp_distance(y, ref)
    cls = np.where(d == 0, 0, np.where(d <= bound, 1, 2)).astype(np.int8)
    cls[(y64 == 0) & (r64 != 0)] = 3
    cls[np.isinf(y64) & np.isfinite(r64)] = 4
    cls[np.isnan(y64) & ~np.isnan(r64)] = 5
    return cls


def log_softmax_region_data(dtype, n_max: int = 161, n_gap: int = 121, variants=None) -> dict:
    """Evaluate the two-class log_softmax variants on a grid and classify every cell.

    The grid: ``m`` (the larger logit) from ``1.15 * exp_underflow_zero`` to
    ``1.12 * exp_overflow`` and the nominal gap ``g`` from ``2**-4`` to
    ``1.6 * |exp_underflow_zero|`` (log-spaced), both rounded to the format; the input row is
    ``[m, RN(m - g)]`` (so the actual gap can differ from ``g`` by the rounding of ``m - g``).
    Returns the grid, the thresholds and ``classes[variant]`` (shape ``(n_gap, n_max)``).
    """
    fmt = format_of(dtype)
    th = formula_thresholds(fmt)
    variants = LOG_SOFTMAX_VARIANTS if variants is None else variants
    ms = round_from_float64(np.linspace(1.15 * th["exp_underflow_zero"], 1.12 * th["exp_overflow"], n_max), fmt)
    gs = round_from_float64(np.geomspace(2.0**-4, 1.6 * abs(th["exp_underflow_zero"]), n_gap), fmt)
    M, G = np.meshgrid(ms.astype(np.float64), gs.astype(np.float64))
    ops = VectorOps(fmt)
    X1 = ops.sub(M, G)
    rows = np.stack([M.ravel(), X1.ravel()], axis=-1).astype(fmt.dtype)
    ref = oracle.log_softmax(rows, axis=-1)
    bound = ULP_BOUNDS["log_softmax"][fmt.name]
    classes = {}
    for v in variants:
        y0, y1 = log_softmax_variant(v, ops, rows[:, 0].astype(np.float64), rows[:, 1].astype(np.float64))
        y = np.stack([np.asarray(y0, dtype=np.float64), np.asarray(y1, dtype=np.float64)], -1)
        y = round_from_float64(y, fmt)  # already numbers of the format: exact
        c = classify_cells(y, ref, bound).max(axis=-1)
        classes[v] = c.reshape(M.shape)
    return {"dtype": fmt.name, "m": ms.astype(np.float64), "g": gs.astype(np.float64), "thresholds": th,
            "classes": classes, "bound": bound}


def _edges(v, log=False):
    v = np.asarray(v, dtype=np.float64)
    if log:
        lv = np.log(v)
        mid = (lv[1:] + lv[:-1]) / 2
        return np.exp(np.concatenate([[2 * lv[0] - mid[0]], mid, [2 * lv[-1] - mid[-1]]]))
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def plot_log_softmax_regions(data: dict, out: Path) -> tuple[str, str]:
    """Draw the 2 x 2 region map of one format (see :func:`log_softmax_region_data`)."""
    plt = _plt()
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    th, dt = data["thresholds"], data["dtype"]
    cmap = ListedColormap(_CELL_COLOURS)
    norm = BoundaryNorm(np.arange(-0.5, len(CELL_CLASSES)), cmap.N)
    xe, ye = _edges(data["m"]), _edges(data["g"], log=True)
    fig, axes = plt.subplots(2, 2, figsize=(10.5, 8.4), sharex=True, sharey=True)
    present = set()
    g_line = np.geomspace(data["g"][0], data["g"][-1], 400)
    for ax, (v, cls) in zip(axes.ravel(), data["classes"].items()):
        present |= set(np.unique(cls).tolist())
        ax.pcolormesh(xe, ye, cls, cmap=cmap, norm=norm, shading="flat", rasterized=True)
        ax.set_yscale("log")
        ax.set_title(_VARIANT_TITLES.get(v, v))
        kw = {"lw": 1.1}
        ax.axhline(th["softmax_collapse_gap"], color="#08519c", ls="--", **kw)
        if v == "naive":
            ax.axvline(th["exp_overflow"], color="#e31a1c", ls="-", **kw)
            ax.plot(th["exp_overflow"] - np.log1p(np.exp(-g_line)), g_line, color="#e31a1c", ls=":", **kw)
            ax.axvline(th["exp_subnormal"], color="#ff7f00", ls="-.", **kw)
            ax.axvline(th["exp_underflow_zero"], color="#6a3d9a", ls="-", **kw)
        else:
            ax.axhline(-th["exp_subnormal"], color="#ff7f00", ls="-.", **kw)
            ax.axhline(-th["exp_underflow_zero"], color="#6a3d9a", ls="-", **kw)
    for ax in axes[1]:
        ax.set_xlabel("larger logit m (nats)")
    for ax in axes[:, 0]:
        ax.set_ylabel("logit gap g (nats, log scale); input [m, RN(m - g)]")
    handles: list[Any] = [Patch(color=_CELL_COLOURS[c], label=CELL_CLASSES[c] if c != 1 else f"accurate (≤ {data['bound']} ULP)")
               for c in range(len(CELL_CLASSES)) if c in present]
    handles += [
        Line2D([], [], color="#08519c", ls="--", label=f"g = softmax_collapse_gap = {th['softmax_collapse_gap']!r}"),
        Line2D([], [], color="#ff7f00", ls="-.", label=f"exp_subnormal = {th['exp_subnormal']!r} (m, or -g)"),
        Line2D([], [], color="#6a3d9a", ls="-", label=f"exp_underflow_zero = {th['exp_underflow_zero']!r} (m, or -g)"),
        Line2D([], [], color="#e31a1c", ls="-", label=f"m = exp_overflow = {th['exp_overflow']!r}"),
        Line2D([], [], color="#e31a1c", ls=":", label="m + log1p(exp(-g)) = exp_overflow (the sum overflows)"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    fig.suptitle(f"Two-class log_softmax evaluated in {dt}: worst of both outputs vs the correctly rounded oracle")
    fig.tight_layout(rect=(0, 0.1, 1, 0.97))
    stem = _save(fig, out, f"regions_log_softmax_{dt}")
    counts = {v: {CELL_CLASSES[c]: int((cls == c).sum()) for c in range(len(CELL_CLASSES)) if (cls == c).any()}
              for v, cls in data["classes"].items()}
    caption = (f"{dt}: region map of the two-class log_softmax over the larger logit m and the gap g "
               f"({data['classes']['naive'].size} cells per panel); cells per class: {counts}.")
    return stem, caption


# ---------------------------------------------------------------------------------------------
# (b) softlog near x0


def softlog_x0_data(window: int = 64) -> dict:
    """``{dtype: {"offsets", variant: relative errors (float), "bad": {variant: offsets}}}``: the
    exact relative error ``|y - L(x)| / |L(x)|`` (mpmath, 60 digits) of each variant at every
    number within ``window`` ULPs of the number nearest ``x0``."""
    out = {}
    for dt in DTYPES:
        fmt = format_of(dt)
        c = ordinal_of(x0_nearest(fmt), fmt)
        offs = np.arange(-window, window + 1)
        xs = [value_at(c + k, fmt) for k in offs]
        ops = ExactOps(fmt)
        rel = {}
        with mpmath.workdps(60):
            Ls = [mpmath.log((mpmath.e - 1 / mpmath.e) * mpmath.mpf(x) + 1 / mpmath.e) for x in xs]
            for v in SOFTLOG_VARIANTS:
                if v == "production":
                    ys = [float(t) for t in softlog_variant(v, VectorOps(fmt), np.array(xs))]
                else:
                    ys = [softlog_variant(v, ops, x) for x in xs]
                rel[v] = np.array([float(abs((mpmath.mpf(y) - L) / L)) for y, L in zip(ys, Ls)])
        bad = {v: softlog_region(v, fmt, window).offsets for v in SOFTLOG_VARIANTS}
        out[dt] = {"offsets": offs, "rel": rel, "bad": bad, "x_center": value_at(c, fmt), "p": fmt.precision}
    return out


def plot_softlog_x0(data: dict, out: Path) -> tuple[str, str]:
    plt = _plt()
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.8))
    for ax, (dt, d) in zip(axes.ravel(), data.items()):
        offs = d["offsets"]
        floor = 2.0 ** (-d["p"] - 3)
        for v, (colour, marker, label) in _SOFTLOG_STYLE.items():
            r = np.maximum(d["rel"][v], floor)
            ax.plot(offs, r, color=colour, marker=marker, ms=3.2, lw=0.8, label=label)
            for k in d["bad"][v]:
                ax.axvspan(k - 0.5, k + 0.5, color=colour, alpha=0.22, lw=0)
        ax.axhline(1.0, color="#444444", ls="--", lw=0.9)
        ax.axhline(2.0 ** (1 - d["p"]), color="#999999", ls=":", lw=0.9)
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, 10.0)
        ax.set_xlim(offs[0] - 0.5, offs[-1] + 0.5)
        widths = ", ".join(f"{v.replace('production', 'library')} {len(d['bad'][v])}" for v in d["bad"])
        ax.set_title(f"{dt}: x = {d['x_center']!r} + k ULPs\nno correct bit at: {widths} points", fontsize=8.5)
        ax.set_xlabel("k: offset of x from the number nearest x0 = 1/(e+1) (ULPs of x)")
        ax.set_ylabel("relative error |ŷ - L(x)| / |L(x)| (log)")
    handles = [plt.Line2D([], [], color=c, marker=m, ms=4, lw=0.8, label=lab) for c, m, lab in _SOFTLOG_STYLE.values()]
    handles += [
        plt.Line2D([], [], color="#444444", ls="--", label="relative error 1 (no correct bit)"),
        plt.Line2D([], [], color="#999999", ls=":", label="one ULP at 1: 2^(1-p)"),
        Patch(color="#d62728", alpha=0.3, label="points without a correct bit (shaded, colour of the variant)"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    fig.suptitle("Softlog L(x) = ln((e - 1/e) x + 1/e) near its zero x0, evaluated in each format\n"
                 "(exact relative errors; errors below 2^(-p-3) are drawn at that floor)")
    fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    stem = _save(fig, out, "regions_softlog_x0")
    summary = {dt: {v: len(d["bad"][v]) for v in d["bad"]} for dt, d in data.items()}
    caption = ("Relative error of the naive softlog formulas and the library's softlog at every number within "
               f"64 ULPs of x0, per format; points without a correct bit per variant: {summary}.")
    return stem, caption


# ---------------------------------------------------------------------------------------------
# (c) the (p, q) plane for two classes


def _exact_sld_grid(n: int = 401):
    A, B = math.e - 1 / math.e, 1 / math.e
    a = np.linspace(0, 1, n)
    P, Q = np.meshgrid(a, a)  # columns a = p_1, rows b = q_1

    def L(x):
        return np.log(A * x + B)

    sld = 0.5 * (P * (L(P) - L(Q)) + (1 - P) * (L(1 - P) - L(1 - Q)))
    sym = 0.25 * ((P - Q) * (L(P) - L(Q)) + (Q - P) * (L(1 - P) - L(1 - Q)))
    return a, sld, sym


def plot_sld_plane(sweeps: dict, out: Path) -> tuple[str, str]:
    """Draw the K = 2 plane: exact ``sld`` and ``sld_sym`` (top row) and the exhaustive
    float16/bfloat16 sweeps of the textbook formulas (``sweeps[dtype]`` from
    :func:`softlog_numerics.analysis.sld_bounds.sweep_naive_k2`)."""
    plt = _plt()
    from matplotlib.colors import BoundaryNorm, ListedColormap, TwoSlopeNorm
    from matplotlib.patches import Patch

    inf2 = sld_infimum(2)
    a_star = float(inf2.a_mid)
    a, sld, sym = _exact_sld_grid()
    fig, axes = plt.subplots(2, 3, figsize=(13.5, 9.2))
    ax = axes[0, 0]
    im = ax.pcolormesh(a, a, sld, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, vmin=float(inf2.value_lo), vmax=1.0),
                       shading="nearest", rasterized=True)
    ax.contour(a, a, sld, levels=[0.0], colors="k", linewidths=0.9)
    ax.contourf(a, a, sld, levels=[-1, 0], colors="none", hatches=["////"])
    ax.plot([a_star, 1 - a_star], [1, 0], "k*", ms=9, clip_on=False)
    fig.colorbar(im, ax=ax, label="sld(p, q) (exact)")
    ax.set_title(f"exact sld: hatched where sld < 0 (black: sld = 0)\n★ minimum {float(inf2.value_mid):.6f} at "
                 f"(a, b) = ({a_star:.4f}, 1), ({1 - a_star:.4f}, 0)", fontsize=8.5)
    ax = axes[1, 0]
    im = ax.pcolormesh(a, a, sym, cmap="viridis", vmin=0, vmax=1, shading="nearest", rasterized=True)
    ax.contour(a, a, sym, levels=[0.25, 0.5, 0.75, 0.95], colors="w", linewidths=0.6)
    fig.colorbar(im, ax=ax, label="sld_sym(p, q) (exact), in [0, 1]")
    ax.set_title("exact sld_sym: 0 on the diagonal,\n1 at the corners (0, 1) and (1, 0)", fontsize=8.5)
    cmap = ListedColormap(_NAIVE_COLOURS)
    norm = BoundaryNorm(np.arange(-0.5, len(NAIVE_CLASSES)), cmap.N)
    present = set()
    for col, dt in enumerate(("float16", "bfloat16"), start=1):
        s = sweeps[dt]
        ticks, labels = _ordinal_ticks(dt, s.stride, s.images["sld"]["ordinal"].shape[0])
        for row, form in enumerate(("sld", "sld_sym")):
            ax = axes[row, col]
            img = s.images[form]["ordinal"]
            present |= set(np.unique(img).tolist())
            n = img.shape[0]
            ax.pcolormesh(np.arange(n + 1), np.arange(n + 1), img, cmap=cmap, norm=norm, shading="flat", rasterized=True)
            if form == "sld":
                neg = s.images["exact_negative"]["ordinal"]
                ax.contour(np.arange(n) + 0.5, np.arange(n) + 0.5, neg.astype(float), levels=[0.5],
                           colors="#2ca02c", linewidths=0.7)
            c = s.counts[form]["all"]
            bad = {k: v for k, v in c.items() if k != "ok" and v}
            lines = [f"{k}: {v:,}" for k, v in bad.items()] or ["no failures"]
            lines = ["; ".join(lines[i:i + 2]) for i in range(0, len(lines), 2)]
            ax.set_title(f"naive {form} in {dt}: {s.pairs['all']:,} pairs" + (f" (stride {s.stride})" if s.stride > 1 else "")
                         + "\n" + "\n".join(lines), fontsize=8)
            ax.set_xticks(ticks, labels)
            ax.set_yticks(ticks, labels)
            ax.set_xlim(0, n)
            ax.set_ylim(0, n)
            ax.set_aspect("equal")
            ax.set_xlabel(f"a = p₁: the numbers of {dt} in [0, 1], in order")
            ax.set_ylabel(f"b = q₁: the numbers of {dt} in [0, 1], in order")
    for ax in axes[:, 0]:
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("a = p₁ (probability; p = (a, 1 - a))")
        ax.set_ylabel("b = q₁ (probability; q = (b, 1 - b))")
    handles = [Patch(color=_NAIVE_COLOURS[c], label=NAIVE_CLASSES[c]) for c in range(len(NAIVE_CLASSES)) if c in present]
    handles.append(plt.Line2D([], [], color="#2ca02c", lw=0.8, label="boundary of {exact sld < 0} at the float pairs"))
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False)
    fig.suptitle("Two classes: sld = ½ Σ p (L(p) - L(q)) and sld_sym = ¼ Σ (p - q)(L(p) - L(q)), p = (a, RN(1 - a)), q = (b, RN(1 - b))\n"
                 "naive: softlog log((e - 1/e)x + 1/e) and both sums with every operation in the format; "
                 "each pixel shows the worst class of its pairs")
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    stem = _save(fig, out, "regions_sld_k2")
    parts = []
    for dt, s in sweeps.items():
        which = "every number" if s.stride == 1 else f"every {s.stride}th number"
        parts.append(f"{dt}: {s.pairs['all']:,} pairs (a, b {which} of the format in [0, 1], "
                     f"second entries RN(1 - a), RN(1 - b)), exact sld < 0 at {s.exact_negative['all']:,}; "
                     f"naive sld failures {_nonzero(s.counts['sld']['all'])}, naive sld_sym failures "
                     f"{_nonzero(s.counts['sld_sym']['all'])}; on the {s.pairs['normalised']:,} exactly normalised "
                     f"pairs: sld {_nonzero(s.counts['sld']['normalised'])}, sld_sym {_nonzero(s.counts['sld_sym']['normalised'])}")
    caption = ("The (p, q) plane for K = 2. Top left: exact sld, negative in the hatched lens between the diagonal and "
               "the curve through the minimiser. " + ". ".join(parts) + ".")
    return stem, caption


def _ordinal_ticks(dtype, stride: int, pixels: int):
    """Pixel positions and labels of the powers of two on the ordinal grid of :func:`plot_sld_plane`."""
    fmt = format_of(dtype)
    V = unit_interval_values(fmt)[::stride]
    lo = fmt.emin - fmt.precision + 1
    step = 4 if fmt.name == "float16" else 16
    ticks: list[float] = []
    labels: list[str] = []
    for k in range(0, lo - 1, -step):
        i = np.searchsorted(V, 2.0**k)
        t = i * pixels / V.size
        if i < V.size and (not ticks or ticks[-1] - t > 0.04 * pixels):
            ticks.append(t)
            labels.append("1" if k == 0 else f"$2^{{{k}}}$")
    return ticks[::-1], labels[::-1]


def _nonzero(c: dict) -> dict:
    return {k: v for k, v in c.items() if k != "ok" and v}


# ---------------------------------------------------------------------------------------------


def make_figures(outdir, *, stride: int = 1, n_max: int = 161, n_gap: int = 121, progress=None) -> list[tuple[str, str]]:
    """Draw every region figure into ``outdir`` (created if needed); returns ``[(stem, caption)]``.

    ``stride`` thins the float16/bfloat16 sweep of the (p, q) plane (1: every pair, about
    2.4e8 per format, a few minutes); ``n_max`` x ``n_gap`` is the log_softmax grid.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda msg: None)
    made = []
    for dt in DTYPES:
        say(f"regions: log_softmax map {dt}")
        made.append(plot_log_softmax_regions(log_softmax_region_data(dt, n_max, n_gap), out))
    say("regions: softlog near x0")
    made.append(plot_softlog_x0(softlog_x0_data(), out))
    sweeps = {}
    for dt in ("float16", "bfloat16"):
        say(f"regions: (p, q) sweep {dt}, stride {stride}")
        sweeps[dt] = sweep_naive_k2(dt, stride)
    made.append(plot_sld_plane(sweeps, out))
    return made
