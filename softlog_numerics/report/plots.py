"""Figures of the sweeps (matplotlib with the Agg backend, imported only when a figure is drawn).

Every function draws one figure from the data of :mod:`softlog_numerics.analysis.sweeps`, saves it as
``<stem>.png`` and ``<stem>.svg`` in the output folder (stable names, no dates in the files, so a
rerun with the same seed gives the same files) and returns ``(stem, caption)``; the caption is the
line under the figure in ``report.md``.

Conventions shared by all figures: ULP errors are drawn on a *symlog* axis (linear from 0 to 1,
logarithmic above), so a correctly rounded result (0 ULP) is visible at the bottom; every variant
keeps one colour and line style in every figure; the library's production function is black.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "bits_heatmap",
    "gap_figure",
    "precision_bars",
    "softlog_near_x0",
    "softlog_vs_x",
    "width_figure",
]

DTYPES = ("float16", "bfloat16", "float32", "float64")
_STYLE = {
    # name: (colour, line style, marker)
    "naive": ("#d62728", "-", "o"),
    "log1p": ("#ff7f0e", "--", "s"),
    "centred": ("#1f77b4", "-", "^"),
    "centred_wide": ("#17becf", ":", "v"),
    "shifted": ("#ff7f0e", "-", "s"),
    "shifted_log1p": ("#1f77b4", "--", "^"),
    "division_free": ("#9467bd", "--", "D"),
    "online": ("#2ca02c", ":", "v"),
    "two_pass": ("#8c564b", "-.", "P"),
    "shifted_acc32": ("#e377c2", "-", "X"),
    "centred_compensated": ("#2ca02c", "--", "v"),
    "direct_naive": ("#d62728", "-", "o"),
    "direct": ("#ff7f0e", "--", "s"),
    "ratio": ("#1f77b4", "-", "^"),
    "ratio_compensated": ("#2ca02c", "--", "v"),
    "production": ("#000000", "-", "*"),
    "textbook": ("#d62728", "-", "o"),
    "float64 then rounded": ("#1f77b4", "--", "s"),
}
_ULP_LABEL = "error (ULPs of the format, symlog scale)"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "svg.hashsalt": "softlog-numerics",
        "font.size": 9,
        "axes.titlesize": 10,
        "legend.fontsize": 8,
        "axes.grid": True,
        "grid.alpha": 0.3,
    })
    return plt


def style(name: str):
    """(colour, line style, marker) of a variant."""
    return _STYLE.get(name, ("#7f7f7f", "-", "."))


def _save(fig, out, stem: str) -> str:
    import matplotlib.pyplot as plt

    fig.savefig(out / f"{stem}.png", dpi=120, metadata={"Software": None})
    fig.savefig(out / f"{stem}.svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return stem


def _symlog(ax, top: float | None = None):
    """Symlog y axis from 0 with at most ~9 labelled ticks: 0, 1, 10**k."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_yscale("symlog", linthresh=1.0, linscale=0.6)
    lo, hi = ax.get_ylim()
    hi = max(hi, 10.0) if top is None else top
    ax.set_ylim(0.0, hi)
    k_max = max(1, int(math.floor(math.log10(hi))))
    step = 1 if k_max <= 8 else 2 if k_max <= 14 else 3
    ticks = [0.0] + [10.0 ** k for k in range(0, k_max + 1, step)]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(
        lambda v, _: "0" if v == 0 else "1" if v == 1 else "10" if v == 10 else f"$10^{{{int(round(math.log10(v)))}}}$"))


def _shared_legend(fig, axes, extra=()):
    """One legend under the panels with every variant drawn in any of them (plus ``extra``
    ``(handle, label)`` pairs)."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    for h, lab in extra:
        seen.setdefault(lab, h)
    labels = list(seen)
    fig.legend([seen[k] for k in labels], labels, loc="lower center", ncol=min(len(labels), 6),
               frameon=False, fontsize=9)


def _fmt_ulp(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if math.isinf(v):
        return "inf"
    if v < 1000:
        return f"{v:.0f}"
    return f"{v:.0e}".replace("e+0", "e").replace("e+", "e")


# ---------------------------------------------------------------------------------------------
# Error vs precision


def precision_bars(cells, functions, bounds: dict, out, stem: str, title: str):
    """Grouped bars: max ULP per variant (bar) and p99 (black tick), one group per format, one
    panel per function; the production bound as a red dashed segment."""
    plt = _plt()
    functions = list(functions)
    ncols = 1 if len(functions) == 1 else 2
    nrows = math.ceil(len(functions) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(12 if ncols == 2 else 10, 4.0 * nrows + 0.8), squeeze=False)
    for ax, f in zip(axes.ravel(), functions):
        fc = [c for c in cells if c.function == f and c.ok]
        names = list(dict.fromkeys(c.variant for c in fc))
        width = 0.8 / max(1, len(names))
        for i, name in enumerate(names):
            col, _, _ = style(name)
            xs, mx, p99 = [], [], []
            for j, d in enumerate(DTYPES):
                c = next((c for c in fc if c.variant == name and c.dtype == d), None)
                if c is None:
                    continue
                xs.append(j - 0.4 + width * (i + 0.5))
                mx.append(c.max_ulp)
                p99.append(c.p99_ulp)
            ax.bar(xs, mx, width=width * 0.92, color=col, alpha=0.85, label=name,
                   edgecolor="black" if name == "production" else col, linewidth=0.6)
            ax.scatter(xs, p99, marker="_", s=60, color="black", zorder=3, linewidths=1.5)
            for x, m in zip(xs, mx):
                ax.text(x, m * 1.25 + 0.15, _fmt_ulp(m), ha="center", va="bottom", fontsize=6, rotation=90)
        if f in bounds:
            for j, d in enumerate(DTYPES):
                b = bounds[f][d]
                ax.plot([j - 0.42, j + 0.42], [b, b], color="red", ls="--", lw=1.2)
        ax.set_xticks(range(len(DTYPES)), DTYPES)
        ax.set_xlabel("working format")
        ax.set_ylabel("max error (ULPs, symlog scale)")
        if len(functions) > 1:
            ax.set_title(f)
        ax.autoscale(axis="y")
        top = max([c.max_ulp for c in fc if math.isfinite(c.max_ulp)] + [10.0])
        _symlog(ax, top * 40)
    for ax in axes.ravel()[len(functions):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    extra = [(Line2D([], [], color="black", marker="_", ls="", markersize=10, mew=1.5), "99th percentile"),
             (Line2D([], [], color="red", ls="--"), "production bound")]
    if len(functions) == 1:
        _shared_legend(fig, axes.ravel()[:1], extra=extra)
    else:  # the panels have different variants (same colours): one legend per panel
        for ax in axes.ravel()[:len(functions)]:
            ax.legend(loc="upper left", ncol=3, fontsize=7.5, framealpha=0.9)
        fig.legend([h for h, _ in extra], [lab for _, lab in extra], loc="lower center", ncol=2,
                   frameon=False, fontsize=9)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04 if nrows > 1 else 0.13, 1, 1))
    return _save(fig, out, stem)


def bits_heatmap(cells, out, stem: str = "bits_of_error"):
    """Max and mean bits of error ``log2(1 + ULP)`` of every variant x format, as two heat maps."""
    plt = _plt()
    rows = list(dict.fromkeys((c.function, c.variant) for c in cells))
    by = {(c.function, c.variant, c.dtype): c for c in cells if c.ok}
    mx = np.full((len(rows), len(DTYPES)), np.nan)
    mean = np.full_like(mx, np.nan)
    for i, (f, v) in enumerate(rows):
        for j, d in enumerate(DTYPES):
            c = by.get((f, v, d))
            if c is not None:
                mx[i, j], mean[i, j] = c.max_bits, c.mean_bits
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.24 * len(rows) + 1.8), sharey=True)
    for ax, data, title, fmt in ((axes[0], mx, "max bits of error", "{:.1f}"),
                                 (axes[1], mean, "mean bits of error", "{:.2f}")):
        vmax = 64 if title.startswith("max") else max(1.0, float(np.nanmax(mean)) if np.isfinite(mean).any() else 1.0)
        im = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap="viridis_r", vmin=0, vmax=vmax)
        for i in range(len(rows)):
            for j in range(len(DTYPES)):
                if np.isfinite(data[i, j]):
                    ax.text(j, i, fmt.format(data[i, j]), ha="center", va="center", fontsize=6.5,
                            color="white" if data[i, j] > 0.55 * vmax else "black")
                else:
                    ax.text(j, i, "n/a", ha="center", va="center", fontsize=6, color="grey")
        ax.set_xticks(range(len(DTYPES)), DTYPES)
        ax.set_xlabel("working format")
        ax.set_title(title)
        ax.grid(False)
        fig.colorbar(im, ax=ax, label="bits of error, log2(1 + ULP)", shrink=0.6)
    axes[0].set_yticks(range(len(rows)), [f"{f} / {v}" for f, v in rows])
    for i in range(1, len(rows)):
        if rows[i][0] != rows[i - 1][0]:
            for ax in axes:
                ax.axhline(i - 0.5, color="white", lw=2)
    fig.tight_layout()
    return _save(fig, out, stem)


# ---------------------------------------------------------------------------------------------
# Error vs input


def _panels(plt, sharex=False):
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=sharex)
    return fig, dict(zip(DTYPES, axes.ravel()))


def _finish(fig, ax_by, title: str):
    _shared_legend(fig, ax_by.values())
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))


def _vline(ax, x, text, side="left"):
    """A dotted vertical line with a label inside the axes (to its right, or left if side="right")."""
    ax.axvline(x, color="grey", ls=":", lw=1.2)
    ax.text(x, 0.97, f" {text} ", color="dimgrey", fontsize=7.5, va="top",
            ha="left" if side == "left" else "right", clip_on=True,
            transform=ax.get_xaxis_transform(), bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1))


def _line(ax, x, y, name, **kw):
    col, ls, _ = style(name)
    lw = 2.2 if name == "production" else 1.3
    ax.plot(x, y, color=col, ls=ls, lw=lw, label=name, **kw)


def _binned_max(x, y, edges):
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    out = np.full(len(edges) - 1, np.nan)
    ok = np.isfinite(y)
    np.fmax.at(out, idx[ok], y[ok])
    return out


def softlog_vs_x(data: dict, out, stem: str = "softlog_error_vs_x"):
    """Softlog: max error in each of 200 bins of x in [0, 1], per format and variant."""
    plt = _plt()
    fig, ax_by = _panels(plt)
    edges = np.linspace(0.0, 1.0, 201)
    mids = 0.5 * (edges[1:] + edges[:-1])
    x0 = 1.0 / (math.e + 1.0)
    for d, ax in ax_by.items():
        r = data[d]
        for name, err in r["errors"].items():
            _line(ax, mids, _binned_max(r["x"], err, edges), name, drawstyle="steps-mid")
        _vline(ax, x0, "x0 = 1/(e+1)")
        ax.set_title(f"{d} ({'every number in [0, 1]' if d in ('float16', 'bfloat16') else 'grid + points near x0'})")
        ax.set_xlabel("x")
        ax.set_ylabel(_ULP_LABEL)
        _symlog(ax)
        ax.set_xlim(0, 1)
    _finish(fig, ax_by, "softlog L(x) = ln((e - 1/e) x + 1/e): max error in each 1/200 of [0, 1]")
    return _save(fig, out, stem)


def softlog_near_x0(data: dict, out, stem: str = "softlog_error_near_x0"):
    """Softlog error against the distance from its zero x0, in positions of the format."""
    plt = _plt()
    fig, ax_by = _panels(plt)
    for d, ax in ax_by.items():
        r = data[d]
        dist = np.abs(r["offset"]) + 1.0  # 1 at x0 itself
        # buckets of a quarter binade of the distance
        key = np.floor(4 * np.log2(dist)).astype(int)
        ks = np.unique(key)
        xs = 2.0 ** (ks / 4.0)
        for name, err in r["errors"].items():
            ys = []
            for k in ks:
                e = err[key == k]
                e = e[np.isfinite(e)]
                ys.append(e.max() if e.size else np.nan)
            _line(ax, xs, np.array(ys), name, marker=style(name)[2], markersize=3)
        ax.set_xscale("log", base=2)
        ax.set_xlim(left=0.8)
        ax.set_title(d)
        ax.set_xlabel("1 + number of representable values between x and x0 (log2 scale)")
        ax.set_ylabel(_ULP_LABEL)
        _symlog(ax)
    _finish(fig, ax_by, "softlog near its zero x0 = 1/(e+1): max error at each distance from x0 (both sides)")
    return _save(fig, out, stem)


def gap_figure(data: dict, function: str, out, stem: str, bins: int = 120):
    """log_softmax (rows [g, 0]) or softmax (rows [c, c - g]): max error of the row against g,
    the largest in each of ``bins`` bins of g (an envelope: single rows alternate between 0 and 1
    ULP too fast to read)."""
    plt = _plt()
    fig, ax_by = _panels(plt)
    for d, ax in ax_by.items():
        r = data[d]
        gmax = float(r["gap"].max())
        edges = np.linspace(0.0, gmax, min(bins, len(r["gap"])) + 1)
        mids = 0.5 * (edges[1:] + edges[:-1])
        for name, err in r["errors"].items():
            _line(ax, mids, _binned_max(r["gap"], err, edges), name, drawstyle="steps-mid")
        if function in ("log_softmax", "grad.log_softmax", "grad.cross_entropy"):
            _vline(ax, r["collapse"], f"collapse gap p ln2 = {r['collapse']:.1f}")
        else:
            _vline(ax, r["underflow"], f"exp(-g) < smallest subnormal: g > {r['underflow']:.0f}", side="right")
        ax.set_title(d)
        ax.set_xlabel("logit gap g (nats)")
        ax.set_ylabel(_ULP_LABEL)
        _symlog(ax)
        ax.set_xlim(0, float(r["gap"].max()))
    if function == "log_softmax":
        _finish(fig, ax_by, "log_softmax of the row [g, 0]: max error of the row against the gap g "
                "(largest in each 1/120 of the range)")
    elif function == "grad.log_softmax":
        _finish(fig, ax_by, "log_softmax VJP at [g, 0] with cotangent [1, 0] (exact: [q, -q], q = 1/(1 + e^g)): "
                "max error of the row against g")
    elif function == "grad.cross_entropy":
        _finish(fig, ax_by, "cross-entropy gradient softmax - onehot at [g, 0], target 0 (exact: [-q, q]): "
                "max error of the row against g")
    else:
        _finish(fig, ax_by, "softmax of the row [10.3, 10.3 - g]: max error of the row against the gap g "
                "(largest in each 1/120 of the range)")
    return _save(fig, out, stem)


def width_figure(data: dict, out, stem: str = "log_softmax_error_vs_width"):
    """log_softmax: max error over rows of width n (logits uniform in [-8, 8])."""
    plt = _plt()
    fig, ax_by = _panels(plt)
    for d, ax in ax_by.items():
        r = data[d]
        for name, err in r["errors"].items():
            _line(ax, r["n"], err, name, marker=style(name)[2], markersize=4)
        ax.set_xscale("log")
        ax.set_title(d)
        ax.set_xlabel("row width n (number of logits, log scale)")
        ax.set_ylabel(_ULP_LABEL)
        _symlog(ax)
    _finish(fig, ax_by, "log_softmax of rows of n logits uniform in [-8, 8]: max error against n")
    return _save(fig, out, stem)
