"""Sweeps: every variant of :mod:`softlog_numerics.algorithms` measured against the oracle.

Two kinds of measurement, both deterministic for a given seed (inputs come from
``numpy.random.default_rng`` seeded with ``(seed, tag...)``, so changing one sweep's size does not
change another's inputs), both using the on-disk oracle cache of :mod:`softlog_numerics.oracle.cache`:

**Error vs precision** (:func:`precision_sweep`): for each function and format, inputs from the
adversarial families of :mod:`softlog_numerics.strategies` (:data:`~softlog_numerics.strategies.LOGIT_FAMILIES`,
:data:`~softlog_numerics.strategies.PROBABILITY_FAMILIES` and the kinds of probability pairs),
drawn here with NumPy, with the same meaning as the Hypothesis strategies. For each variant:
max and 99th-percentile ULP distance, mean and max "bits of error" ``log2(1 + ULP)``, and the
counts of NaN mismatches (NaN where the oracle is a number, or the reverse) and of spurious
infinities (``±inf`` where the oracle is finite). NaN mismatches are counted, not folded into the
ULP statistics (``ulp_distance`` would make them ``inf``).

**Error vs input**: softlog over ``x`` in [0, 1] (every number of the format for float16 and
bfloat16; a grid plus points at ``x0 ± 2**k`` ULPs for float32/float64), log_softmax against the
logit gap of a dominant class, softmax against the gap between two logits, and log_softmax against
the row width ``n`` (up to 128,000 in the full run).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from softlog_numerics import functions
from softlog_numerics import oracle as _oracle
from softlog_numerics._core.formats import FORMATS, format_of, round_from_float64
from softlog_numerics.analysis import algorithms
from softlog_numerics.testing.contract import ULP_BOUNDS, term_scale, within_contract
from softlog_numerics.testing.record import ErrorStats
from softlog_numerics.testing.strategies import LOGIT_FAMILIES, PROBABILITY_FAMILIES
from softlog_numerics.testing.ulp import compare as ulp_compare
from softlog_numerics.testing.ulp import from_ordinal, ordinal, ulp_distance

__all__ = [
    "Cell",
    "PAIR_KINDS",
    "Sizes",
    "collapse_gap",
    "compare",
    "contract_violations",
    "gap_sweep",
    "inputs",
    "logit_blocks",
    "oracle",
    "pair_blocks",
    "precision_cells",
    "precision_sweep",
    "probability_blocks",
    "scaled_error",
    "sizes",
    "softlog_inputs",
    "softlog_vs_x",
    "width_sweep",
]

DTYPES = tuple(FORMATS)
X0 = 1.0 / (math.e + 1.0)
_DIVERGENCES = ("softlog_entropy", "softlog_cross_entropy", "sld", "sld_sym")
_FUNCTION_TAG = {f: i for i, f in enumerate(algorithms.FUNCTIONS)}
_DTYPE_TAG = {d: i for i, d in enumerate(DTYPES)}


@dataclass(frozen=True)
class Sizes:
    """How much each sweep draws (``--quick`` or the full run)."""

    softlog_points: int          # per format, precision sweep
    logit_widths: tuple          # row widths of the logit families
    logit_rows: int              # rows per (family, width); width >= 1000 uses a quarter
    wide_rows: int               # rows of the "wide" family (32,000 to 33,000 entries)
    prob_widths: tuple
    prob_rows: int
    x_grid: int                  # softlog vs x grid for float32/float64
    gap_points: int
    widths: tuple                # log_softmax vs n


QUICK = Sizes(softlog_points=1500, logit_widths=(2, 7, 64), logit_rows=6, wide_rows=0,
              prob_widths=(2, 10, 100), prob_rows=5, x_grid=1000, gap_points=160,
              widths=(2, 8, 32, 128, 512, 2048, 8192))
FULL = Sizes(softlog_points=20000, logit_widths=(2, 3, 10, 64, 1000), logit_rows=24, wide_rows=1,
             prob_widths=(2, 3, 10, 100, 1000), prob_rows=24, x_grid=4000, gap_points=600,
             widths=(2, 8, 32, 128, 512, 2048, 8192, 32000, 128000))


def sizes(quick: bool) -> Sizes:
    return QUICK if quick else FULL


def _rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *[int(t) for t in tags]])


# ---------------------------------------------------------------------------------------------
# The oracle, cached


def oracle(cache, function: str, *args) -> np.ndarray:
    """The correctly rounded value of ``function(*args)`` along the last axis, from ``cache``
    (an :class:`~softlog_numerics.oracle.cache.OracleCache`, or None for no cache)."""
    f = getattr(_oracle, function)
    kw = {"validate": False} if function in _DIVERGENCES else {}

    def compute():
        return f(*args, **kw)

    if cache is None:
        return np.asarray(compute())
    return cache.get_or_compute(function, args, compute, params=kw)


# ---------------------------------------------------------------------------------------------
# Inputs: the adversarial families, drawn with NumPy


def _round(x, fmt) -> np.ndarray:
    with np.errstate(over="ignore"):
        return round_from_float64(np.asarray(x, dtype=np.float64), fmt)


def softlog_inputs(fmt, rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """Softlog arguments by family: ``unit`` (uniform over the positions of [0, 1], so every
    binade counts), ``linear`` (uniform in x), ``near_x0`` (within ±64 positions of the zero
    x0 = 1/(e+1)), ``near_one`` (the 64 numbers below 1), ``outside`` (the rest of the domain,
    [-1/(e^2-1), 10])."""
    fmt = format_of(fmt)
    k = max(1, count // 5)
    one = int(ordinal(np.array(1.0, dtype=fmt.dtype)))
    c = int(ordinal(_round(X0, fmt)))
    fams = {
        "unit": from_ordinal(rng.integers(0, one + 1, k), fmt.dtype),
        "linear": _round(rng.uniform(0.0, 1.0, k), fmt),
        "near_x0": from_ordinal(c + rng.integers(-64, 65, k), fmt.dtype),
        "near_one": from_ordinal(one - rng.integers(0, 65, k), fmt.dtype),
        "outside": _round(np.concatenate([rng.uniform(-0.1565, 0.0, k // 2), rng.uniform(1.0, 10.0, k - k // 2)]), fmt),
    }
    return fams


def collapse_gap(fmt) -> float:
    """The logit gap ``p ln 2`` beyond which a two-class softmax sum rounds to 1."""
    return format_of(fmt).precision * math.log(2.0)


def logit_blocks(fmt, rng: np.random.Generator, family: str, rows: int, n: int) -> np.ndarray:
    """``rows x n`` logits of one family of :data:`softlog_numerics.strategies.LOGIT_FAMILIES`
    (same meaning as :func:`softlog_numerics.strategies.logit_vectors`)."""
    fmt = format_of(fmt)
    big = min(fmt.max, 1e4)
    out = np.empty((rows, n))
    for r in range(rows):
        if family in ("random", "wide"):
            R = 2.0 ** rng.uniform(-10, math.log2(big))
            x = rng.uniform(-R, R, n)
        elif family == "dominant":
            g = collapse_gap(fmt) * rng.uniform(0.25, 2.5)
            lim = min(fmt.max / 4, 1e3)
            base = rng.uniform(-lim, lim)
            x = base - g - rng.exponential(2.0, n)
            x[rng.integers(0, n)] = base
        elif family == "near_tie":
            centre = _round(rng.uniform(-100.0, 100.0), fmt)
            steps = rng.integers(-3, 1, n)
            steps[rng.integers(0, n)] = 0
            x = from_ordinal(ordinal(centre) + steps * (1 if centre >= 0 else -1), fmt.dtype).astype(np.float64)
        elif family == "huge":
            x = rng.uniform(0.5, 1.0, n) * fmt.max * rng.choice([-1.0, 1.0], n)
            x[rng.integers(0, n)] = fmt.max * rng.uniform(0.5, 1.0)
        elif family == "masked":
            x = rng.normal(0.0, 4.0, n)
            x[rng.random(n) < rng.uniform(0.0, 1.0)] = -np.inf
        elif family == "subnormal":
            depth = -math.log(fmt.min_subnormal) * rng.uniform(0.8, 1.1)
            x = -rng.uniform(0.0, 1.0, n) * depth
            x[rng.integers(0, n)] = 0.0
        elif family == "all_equal":
            x = np.full(n, rng.uniform(-1e3, 1e3))
        elif family == "range_edge":
            kind = rng.integers(0, 4, n)  # huge, subnormal, zero, moderate
            parts = [rng.uniform(0.25, 1.0, n) * fmt.max, rng.integers(1, 1 << 10, n) * fmt.min_subnormal,
                     np.zeros(n), rng.normal(0.0, 30.0, n)]
            x = np.choose(kind, parts) * rng.choice([-1.0, 1.0], n)
            x[rng.integers(0, n)] = fmt.max * rng.uniform(0.25, 1.0) * rng.choice([-1.0, 1.0])
        else:
            raise ValueError(f"unknown logit family {family!r}")
        out[r] = x
    return _round(out, fmt)


def probability_blocks(fmt, rng: np.random.Generator, family: str, rows: int, k: int) -> np.ndarray:
    """``rows x k`` probability vectors of one family of
    :data:`softlog_numerics.strategies.PROBABILITY_FAMILIES`, each rounded once to ``fmt``."""
    fmt = format_of(fmt)
    out = np.zeros((rows, k))
    for r in range(rows):
        if family == "one_hot" or k == 1:
            out[r, rng.integers(0, k)] = 1.0
            continue
        if family == "uniform":
            out[r] = 1.0 / k
            continue
        if family == "near_one_hot":
            s = 2.0 ** rng.uniform(-60, -1)
            rest = rng.uniform(1e-3, 1.0, k - 1)
            i = rng.integers(0, k)
            p = np.empty(k)
            p[np.arange(k) != i] = s * rest / rest.sum()
            p[i] = 1.0 - s
            out[r] = p
            continue
        if family not in ("random", "sparse"):
            raise ValueError(f"unknown probability family {family!r}")
        w = 2.0 ** rng.uniform(-30, 0, k)
        if family == "sparse":
            w[rng.random(k) < 0.5] = 0.0
            if not w.any():
                w[rng.integers(0, k)] = 1.0
        out[r] = w / w.sum()
    return _round(out, fmt)


PAIR_KINDS = ("independent", "equal", "close", "disjoint", "one_hot_q")
"""Kinds of ``(p, q)`` pairs (as :func:`softlog_numerics.strategies.probability_pairs`)."""


def pair_blocks(fmt, rng: np.random.Generator, kind: str, rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(p, q)``, each ``rows x k``, of one kind of :data:`PAIR_KINDS`; the rows of ``p`` cycle
    through the probability families."""
    fmt = format_of(fmt)
    k = max(k, 2) if kind == "disjoint" else k
    p = np.concatenate([probability_blocks(fmt, rng, PROBABILITY_FAMILIES[r % len(PROBABILITY_FAMILIES)], 1, k)
                        for r in range(rows)])
    if kind == "disjoint":
        p = np.zeros((rows, k))
        q = np.zeros((rows, k))
        for r in range(rows):
            i, j = rng.choice(k, 2, replace=False)
            p[r, i], q[r, j] = 1.0, 1.0
        return p.astype(fmt.dtype), q.astype(fmt.dtype)
    if kind == "equal":
        return p, p.copy()
    if kind == "close":
        one = ordinal(np.array(1.0, dtype=fmt.dtype))
        q = from_ordinal(np.clip(ordinal(p) + rng.integers(-4, 5, p.shape), 0, one), fmt.dtype).astype(np.float64)
        q[q.sum(axis=1) == 0, 0] = 1.0
        return p, _round(q / q.sum(axis=1, keepdims=True), fmt)
    if kind == "one_hot_q":
        return p, probability_blocks(fmt, rng, "one_hot", rows, k)
    if kind == "independent":
        q = np.concatenate([probability_blocks(fmt, rng, PROBABILITY_FAMILIES[(r + 2) % len(PROBABILITY_FAMILIES)], 1, k)
                            for r in range(rows)])
        return p, q
    raise ValueError(f"unknown pair kind {kind!r}")


def inputs(function: str, dtype, seed: int, sz: Sizes) -> list[tuple[str, tuple]]:
    """``[(family, args), ...]``: the precision sweep's inputs for one function and format."""
    fmt = format_of(dtype)
    ft, dt = _FUNCTION_TAG[function], _DTYPE_TAG[fmt.name]
    out: list[tuple[str, tuple[np.ndarray, ...]]] = []
    if function == "softlog":
        for fam, x in softlog_inputs(fmt, _rng(seed, 1, ft, dt), sz.softlog_points).items():
            out.append((fam, (x,)))
    elif function in ("logsumexp", "log_softmax", "softmax"):
        for i, fam in enumerate(LOGIT_FAMILIES):
            if fam == "wide":
                if sz.wide_rows:
                    rng = _rng(seed, 2, dt, i)
                    out.append((fam, (logit_blocks(fmt, rng, fam, sz.wide_rows, int(rng.integers(32000, 33001))),)))
                continue
            for j, n in enumerate(sz.logit_widths):
                rows = sz.logit_rows if n < 1000 else max(1, sz.logit_rows // 4)
                out.append((fam, (logit_blocks(fmt, _rng(seed, 2, dt, i, j), fam, rows, n),)))
    elif function == "softlog_entropy":
        for i, fam in enumerate(PROBABILITY_FAMILIES):
            for j, k in enumerate(sz.prob_widths):
                rows = sz.prob_rows if k < 1000 else max(1, sz.prob_rows // 4)
                out.append((fam, (probability_blocks(fmt, _rng(seed, 3, dt, i, j), fam, rows, k),)))
    else:
        for i, kind in enumerate(PAIR_KINDS):
            for j, k in enumerate(sz.prob_widths):
                rows = sz.prob_rows if k < 1000 else max(1, sz.prob_rows // 4)
                out.append((kind, pair_blocks(fmt, _rng(seed, 4, dt, i, j), kind, rows, k)))
    return out


# ---------------------------------------------------------------------------------------------
# Error vs precision


@dataclass
class Cell:
    """One variant on one format: what the precision sweep measured, from the
    :class:`~softlog_numerics.testing.record.ErrorStats` of its inputs (``numbers_only``: ``nan``
    counts the NaN mismatches of both directions, left out of the distances; ``inf`` the infinite
    results where the oracle is finite; ``outputs`` every element compared), with the family of
    the worst input, the largest scaled error of a divergence (:func:`scaled_error`) and, for the
    production variant, the contract violations (:func:`contract_violations`; -1 otherwise)."""

    function: str
    variant: str
    dtype: str
    outputs: int
    max_ulp: float
    p99_ulp: float
    mean_bits: float
    max_bits: float
    nan: int
    inf: int
    worst_family: str
    error: str = ""
    max_scaled: float = math.nan
    violations: int = -1

    @property
    def ok(self) -> bool:
        return not self.error

    def to_dict(self) -> dict:
        return asdict(self)


def compare(got: np.ndarray, want: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(ULP distances where got and want agree on NaN-ness, NaN mismatches, spurious infinities)."""
    c = ulp_compare(got, want)
    mismatch = c.nan_mismatch
    return c.distance[~mismatch], int(np.count_nonzero(mismatch)), int(np.count_nonzero(c.inf_where_finite))


def _pointwise_ulp(got, want) -> np.ndarray:
    """The ULP distance of every element (float64), NaN where ``got`` and ``want`` disagree on
    NaN-ness: the error curves of the error-vs-input sweeps."""
    c = ulp_compare(got, want)
    return np.where(c.nan_mismatch, np.nan, c.distance)


def scaled_error(function: str, args, got, want) -> np.ndarray:
    """``|got - want| / (u * sum_k |term_k|)`` per row, ``u`` the unit roundoff of the format: the
    error measure of a sum that may cancel (0 where equal; ``inf`` where the scale is 0 but the
    values differ; NaN mismatches excluded)."""
    u = format_of(np.asarray(got).dtype).unit_roundoff
    g, w = np.asarray(got).astype(np.float64), np.asarray(want).astype(np.float64)
    scale = term_scale(function, args)
    with np.errstate(all="ignore"):
        err = np.abs(g - w)
        r = np.where(err == 0, 0.0, err / (u * scale))
    r[(g == w) | (np.isnan(g) & np.isnan(w))] = 0.0
    return r[~(np.isnan(g) | np.isnan(w))]


def contract_violations(function: str, fmt, args, got, want) -> int:
    """How many outputs (elementwise functions, log_softmax, softmax) or rows (reductions) break
    the contract of :mod:`softlog_numerics.testing.contract`, as judged by
    :func:`softlog_numerics.testing.contract.within_contract` (ULP bound, or the cancellation allowance)."""
    fmt = format_of(fmt)
    got, want = np.asarray(got), np.asarray(want)
    if function not in _DIVERGENCES:
        d = ulp_distance(got, want)
        return int(np.count_nonzero(d > ULP_BOUNDS[function][fmt.name]))
    bad = 0
    for r in range(got.shape[0]):
        ok, _ = within_contract(function, fmt, got[r:r + 1], want[r:r + 1], tuple(a[r] for a in args))
        bad += not ok
    return bad


def _cell(function: str, variant: str, dtype: str, stats: ErrorStats, worst_family: str, scaled) -> Cell:
    """The :class:`Cell` of a finished :class:`~softlog_numerics.testing.record.ErrorStats`
    (``numbers_only``: NaN mismatches counted, not in the distances)."""
    nan = stats.nan + stats.number_where_nan
    if stats.compared == 0:
        return Cell(function, variant, dtype, stats.values, 0.0, 0.0, 0.0, 0.0, nan, stats.inf_where_finite,
                    worst_family)
    ms = math.nan
    if scaled:
        allsc = np.concatenate(scaled)
        ms = float(allsc.max()) if allsc.size else 0.0
    return Cell(function, variant, dtype, stats.values, stats.max_ulp, stats.p99_ulp, stats.mean_bits,
                stats.max_bits, nan, stats.inf_where_finite, worst_family, max_scaled=ms)


def precision_cells(function: str, dtype, seed: int, sz: Sizes, cache) -> list[Cell]:
    """Every variant of ``function`` that applies to ``dtype``, measured on :func:`inputs`."""
    fmt = format_of(dtype)
    blocks = inputs(function, fmt, seed, sz)
    wants = [oracle(cache, function, *args) for _, args in blocks]
    cells = []
    for v in algorithms.variants(function, fmt):
        if not v.available():
            cells.append(Cell(function, v.name, fmt.name, 0, math.nan, math.nan, math.nan, math.nan, 0, 0, "",
                              error="not available (module not importable)"))
            continue
        stats, scaled, violations = ErrorStats(numbers_only=True), [], 0
        worst_family, worst = "", -1.0
        try:
            for (fam, args), want in zip(blocks, wants):
                got = v(*args)
                compared = stats.compared
                d = stats.add(got, want)
                if stats.compared > compared and d > worst:
                    worst, worst_family = d, fam
                if function in _DIVERGENCES:
                    scaled.append(scaled_error(function, args, got, want))
                if v.name == "production":
                    violations += contract_violations(function, fmt, args, got, want)
        except Exception as exc:  # a broken variant is reported, not fatal
            cells.append(Cell(function, v.name, fmt.name, 0, math.nan, math.nan, math.nan, math.nan, 0, 0, "",
                              error=f"{type(exc).__name__}: {exc}"))
            continue
        stats.finish()
        cell = _cell(function, v.name, fmt.name, stats, worst_family, scaled)
        if v.name == "production":
            cell.violations = violations
        cells.append(cell)
    return cells


def precision_sweep(seed: int, sz: Sizes, cache, step: Callable[[str], None] = lambda s: None) -> list[Cell]:
    """:func:`precision_cells` for every function and format (calls ``step`` after each pair)."""
    cells = []
    for f in algorithms.FUNCTIONS:
        for d in DTYPES:
            cells.extend(precision_cells(f, d, seed, sz, cache))
            step(f"{f} {d}")
    return cells


# ---------------------------------------------------------------------------------------------
# Error vs input


def _x0_neighbourhood(fmt, max_exp: int) -> np.ndarray:
    c = int(ordinal(_round(X0, fmt)))
    offs = np.unique(np.round(2.0 ** np.arange(0, max_exp + 0.25, 0.25)).astype(np.int64))
    return from_ordinal(np.concatenate([[c], c + offs, c - offs]), fmt.dtype)


def softlog_vs_x(dtype, sz: Sizes, cache) -> dict:
    """Softlog error of every variant over [0, 1].

    Returns ``{"x": float64 array (sorted), "offset": signed distance from x0 in positions of the
    format, "errors": {variant: ULP array}, "nan": {variant: count}}``. float16/bfloat16: every
    number in [0, 1]; float32/float64: a uniform grid of ``sz.x_grid`` points plus ``x0 ± 2**(k/4)``
    positions for ``k/4 <= p - 3`` (the cancellation zone)."""
    fmt = format_of(dtype)
    one = int(ordinal(np.array(1.0, dtype=fmt.dtype)))
    if fmt.name in ("float16", "bfloat16"):
        x = from_ordinal(np.arange(0, one + 1), fmt.dtype)
    else:
        grid = _round(np.linspace(0.0, 1.0, sz.x_grid + 1), fmt)
        x = np.concatenate([grid, _x0_neighbourhood(fmt, fmt.precision - 3)])
        x = np.unique(x.astype(np.float64))
        x = x[(x >= 0) & (x <= 1)].astype(fmt.dtype)
    want = oracle(cache, "softlog", x)
    c = int(ordinal(_round(X0, fmt)))
    errors, nans = {}, {}
    for v in algorithms.variants("softlog", fmt):
        if not v.available():
            continue
        d = _pointwise_ulp(v(x), want)
        errors[v.name] = d
        nans[v.name] = int(np.count_nonzero(np.isnan(d)))
    return {"x": x.astype(np.float64), "offset": (ordinal(x) - c).astype(np.float64), "errors": errors, "nan": nans}


def gap_sweep(function: str, dtype, sz: Sizes, cache) -> dict:
    """Error against the gap ``g`` between two logits.

    ``log_softmax``: rows ``[g, 0]`` for ``g`` in ``[0, 2.5 p ln 2]`` (the dominant class collapses
    to 0 at ``p ln 2`` in the 3-pass algorithm; for float16/bfloat16 at least up to
    ``1.25 * 24 ln 2``, past the collapse of float32 accumulation). ``softmax``: rows ``[c, c - g]`` with
    ``c = 10.3`` (so ``x - max`` is rounded) for ``g`` up to ``1.05 ln(1/min_subnormal)``.
    Returns ``{"gap": exact gaps, "errors": {variant: max ULP over the row}, "collapse": p ln 2,
    "underflow": ln(1/min_subnormal)}`` (NaN where a variant and the oracle disagree on NaN)."""
    fmt = format_of(dtype)
    n = sz.gap_points
    if function == "log_softmax":
        top = 2.5 * collapse_gap(fmt)
        if fmt.name in ("float16", "bfloat16"):  # also show where float32 accumulation collapses
            top = max(top, 1.25 * collapse_gap("float32"))
        g = _round(np.linspace(0.0, top, n), fmt)
        rows = np.stack([g, np.zeros_like(g)], axis=1)
    elif function == "softmax":
        c = _round(10.3, fmt)
        lo = _round(10.3 - np.linspace(0.0, 1.05 * -math.log(fmt.min_subnormal), n), fmt)
        rows = np.stack([np.full_like(lo, c), lo], axis=1)
    else:
        raise ValueError("gap_sweep is for log_softmax and softmax")
    rows = np.unique(rows.astype(np.float64), axis=0).astype(fmt.dtype)
    gap = rows[:, 0].astype(np.float64) - rows[:, 1].astype(np.float64)
    order = np.argsort(gap)
    rows, gap = rows[order], gap[order]
    want = oracle(cache, function, rows)
    errors = {}
    for v in algorithms.variants(function, fmt):
        if not v.available():
            continue
        errors[v.name] = np.max(_pointwise_ulp(v(rows), want), axis=1)
    return {"gap": gap, "errors": errors, "collapse": collapse_gap(fmt), "underflow": -math.log(fmt.min_subnormal)}


def _in_format(fmt, f):
    """``f`` evaluated in NumPy on arrays of ``fmt`` (every operation rounded to the format; for
    bfloat16 ml_dtypes computes each operation in float32 and rounds it back)."""
    with np.errstate(all="ignore"):
        return f()


def backward_gap_sweep(function: str, dtype, sz: Sizes) -> dict:
    """The backward pass against the gap ``g`` of the rows ``[g, 0]`` (``g`` as in
    :func:`gap_sweep`), dominant class 0.

    ``grad.log_softmax`` with the cotangent ``[1, 0]``: the exact VJP is ``[q, -q]``, ``q =
    1 - softmax_0 = 1/(1 + e**g)``; ``grad.cross_entropy`` with target class 0: the gradient
    ``softmax - onehot`` is ``[-q, q]``. Variants: ``production`` (``softlog_numerics.grad``),
    ``textbook`` (``g - exp(log_softmax) sum(g)`` resp. ``softmax - onehot`` with every operation in
    the format, the 3-pass log_softmax / the max-shifted softmax), ``float64 then rounded`` (the same
    formula in float64, rounded once). Returns ``{"gap", "errors": {variant: max ULP over the row},
    "collapse"}``; the reference is :mod:`softlog_numerics.oracle.grad`."""
    fmt = format_of(dtype)
    top = 2.5 * collapse_gap(fmt)
    if fmt.name in ("float16", "bfloat16"):
        top = max(top, 1.25 * collapse_gap("float32"))
    g = np.unique(_round(np.linspace(0.0, top, sz.gap_points), fmt).astype(np.float64)).astype(fmt.dtype)
    rows = np.stack([g, np.zeros_like(g)], axis=1)
    gap = rows[:, 0].astype(np.float64)
    n = rows.shape[0]
    ones = np.ones(n, fmt.dtype)
    onehot = np.zeros_like(rows)
    onehot[:, 0] = 1

    def textbook(x, dt):
        x = x.astype(dt)
        m = np.max(x, axis=-1, keepdims=True)
        ls = (x - m) - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True)).astype(dt)
        p = np.exp(ls).astype(dt)
        if function == "grad.log_softmax":
            cot = onehot.astype(dt)
            return (cot - p * np.sum(cot, axis=-1, keepdims=True).astype(dt)).astype(dt)
        return (p - onehot.astype(dt)).astype(dt)

    if function == "grad.log_softmax":
        want = _oracle.grad.log_softmax(rows, onehot)
        prod = functions.grad.log_softmax(rows, onehot)
    elif function == "grad.cross_entropy":
        y = np.zeros(n, dtype=np.int64)
        want = _oracle.grad.cross_entropy(rows, y, ones)
        prod = functions.grad.cross_entropy(rows, y, ones)
    else:
        raise ValueError("backward_gap_sweep is for grad.log_softmax and grad.cross_entropy")
    variants = {
        "production": prod,
        "textbook": _in_format(fmt, lambda: textbook(rows, fmt.dtype)),
        "float64 then rounded": round_from_float64(_in_format(fmt, lambda: textbook(rows, np.float64)), fmt),
    }
    errors = {}
    for name, got in variants.items():
        errors[name] = np.max(_pointwise_ulp(got, want), axis=1)
    return {"gap": gap, "errors": errors, "collapse": collapse_gap(fmt)}


def width_sweep(dtype, seed: int, sz: Sizes, cache) -> dict:
    """log_softmax error against the row width ``n``: logits uniform in [-8, 8]; for each width
    ``max(1, min(8, 4096 // n))`` rows. Returns ``{"n": widths, "errors": {variant: max ULP over
    the rows of each width}}``."""
    fmt = format_of(dtype)
    errors: dict[str, list] = {}
    for i, n in enumerate(sz.widths):
        rows = max(1, min(8, 4096 // n))
        x = _round(_rng(seed, 5, _DTYPE_TAG[fmt.name], i).uniform(-8.0, 8.0, (rows, n)), fmt)
        want = oracle(cache, "log_softmax", x)
        for v in algorithms.variants("log_softmax", fmt):
            if not v.available():
                continue
            got = v(x)
            d, nan, _ = compare(got, want)
            errors.setdefault(v.name, []).append(float(d.max()) if nan == 0 and d.size else math.nan)
    return {"n": np.array(sz.widths, dtype=np.float64), "errors": {k: np.array(e) for k, e in errors.items()}}
