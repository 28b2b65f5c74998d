"""Measure the library's functions against the oracle: the engine behind ``softlog-numerics accuracy``.

For one function and one format, :func:`measure` evaluates the production function and the
oracle on

1. a fixed list of hard cases (the places where textbook formulas fail: the softlog's zero
   ``x0 = 1/(e+1)``, a dominant logit past the collapse gap, near-one-hot and equal
   distributions, ...), then
2. ``examples`` inputs drawn by Hypothesis from :mod:`softlog_numerics.strategies` with a fixed
   seed (``derandomize``), steered by :func:`hypothesis.target` towards larger errors,

and reports the largest ULP distance, the input that produced it (as exact hex floats), and
whether every example met the contract of :mod:`softlog_numerics.testing.contract`.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import asdict, dataclass, field
from importlib import resources

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings, target
from hypothesis import strategies as st

from softlog_numerics import functions, oracle
from softlog_numerics._core.formats import (
    FORMATS,
    FormatLike,
    format_of,
    round_from_float64,
)
from softlog_numerics.testing import strategies
from softlog_numerics.testing.bulk import batches, has_bulk
from softlog_numerics.testing.contract import (
    LOSS_GRAD_BOUNDS,
    ULP_BOUNDS,
    within_contract,
    within_derivative_contract,
)
from softlog_numerics.testing.record import ErrorStats
from softlog_numerics.testing.ulp import compare

__all__ = [
    "DERIVATIVES",
    "FUNCTIONS",
    "HARD_CASES",
    "Measurement",
    "hard_cases",
    "measure",
    "within_contract",
]

FUNCTIONS = tuple(ULP_BOUNDS)
"""The functions measured, those with a row in the contract (``ULP_BOUNDS``)."""
DERIVATIVES = tuple(LOSS_GRAD_BOUNDS)
"""The rows of :data:`~softlog_numerics.testing.contract.LOSS_GRAD_BOUNDS` (the fused loss, the
VJPs and the JVPs), measured like :data:`FUNCTIONS` from drawn inputs (no hard-case files)."""
DTYPES = tuple(FORMATS)


def _hex(a) -> str:
    a = np.asarray(a)
    vals = [float(v).hex() for v in a.astype(np.float64).ravel()[:64]]
    more = f", ... ({a.size} values)" if a.size > 64 else ""
    return f"{a.dtype.name}[{', '.join(vals)}{more}]"


HARD_CASES = resources.files("softlog_numerics") / "data" / "hard_cases"
"""One JSON file per function (``<function>.json``): hand-picked inputs with the reason for each."""


@functools.lru_cache(maxsize=None)
def _hard_case_file(function: str) -> dict:
    return json.loads((HARD_CASES / f"{function}.json").read_text())


def hard_cases(function: str, fmt: FormatLike) -> list[tuple]:
    """The hand-picked inputs of ``function`` (``data/hard_cases/<function>.json``), each rounded
    once to ``fmt``: the argument tuples that :func:`measure` and the audit's ``hard`` family
    evaluate before any drawn example."""
    fmt = format_of(fmt)
    data = _hard_case_file(function)
    cases = data["cases_by_format"][fmt.name] if "cases_by_format" in data else data["cases"]
    return [
        tuple(round_from_float64(np.array([float.fromhex(v) for v in arg], dtype=np.float64), fmt) for arg in c["args"])
        for c in cases
    ]


def _vector(elements, fmt, max_size=24):
    return st.lists(elements, min_size=1, max_size=max_size).map(lambda v: np.array(v, dtype=fmt.dtype))


def _scalar(fmt):
    return strategies.floats(fmt, -4.0, 4.0).map(lambda v: np.array(v, dtype=fmt.dtype))


def _class_of(x, pick: int) -> np.ndarray:
    """A class index of the row ``x`` among its unmasked logits (an infinite loss otherwise)."""
    x64 = x.astype(np.float64)
    live = np.flatnonzero(x64 > -np.inf)
    live = live if live.size else np.arange(x.shape[-1])
    return np.array([int(live[pick % live.size])])


def _derivative_strategy(function: str, fmt):
    """Call arguments for a row of ``LOSS_GRAD_BOUNDS``."""
    logits = strategies.logit_vectors(fmt, 1, 48)
    if function in ("cross_entropy", "grad.cross_entropy", "grad.cross_entropy_jvp"):
        def build(t):
            x, pick, g = t
            X = x[None, :]
            y = _class_of(x, pick)
            return (X, y) if function == "cross_entropy" else (X, y, g.reshape(1))
        if function == "grad.cross_entropy_jvp":
            return logits.flatmap(lambda x: st.tuples(st.just(x), st.integers(0, 1 << 20),
                                                      strategies.cotangents(fmt, x))).map(
                lambda t: (t[0][None, :], _class_of(t[0], t[1]), t[2][None, :]))
        return st.tuples(logits, st.integers(0, 1 << 20), _scalar(fmt)).map(build)
    if function == "grad.logsumexp":
        return st.tuples(logits, _scalar(fmt))
    if function in ("grad.log_softmax", "grad.softmax", "grad.log_softmax_jvp", "grad.softmax_jvp",
                    "grad.logsumexp_jvp"):
        return logits.flatmap(lambda x: strategies.cotangents(fmt, x).map(lambda g: (x, g)))
    if function == "grad.softlog":
        return _vector(st.one_of(strategies.unit_interval(fmt), strategies.floats(fmt, -0.156, None)), fmt).flatmap(
            lambda x: _vector(strategies.floats(fmt, -4.0, 4.0), fmt).map(
                lambda g: (x, np.resize(g, x.shape).astype(fmt.dtype))))
    if function == "grad.softlog_entropy":
        return st.tuples(strategies.probability_vectors(fmt, 1, 24), _scalar(fmt))
    if function == "grad.softlog_softmax":
        def layer(t):
            vecs, w, g, per_member = t
            P = np.stack(vecs)
            B, K = P.shape
            w = np.resize(w, B if per_member else B * K).reshape((B,) if per_member else (B, K))
            return (P, w.astype(fmt.dtype), np.resize(g, K).astype(fmt.dtype))
        return st.integers(1, 8).flatmap(lambda k: st.tuples(
            st.lists(strategies.probability_vectors(fmt, k, k), min_size=1, max_size=3),
            _vector(strategies.floats(fmt, -8.0, 8.0, allow_subnormal=False), fmt, 24),
            _vector(strategies.floats(fmt, -4.0, 4.0), fmt, 8), st.booleans())).map(layer)
    return st.tuples(strategies.probability_pairs(fmt, 1, 24), _scalar(fmt)).map(lambda t: (*t[0], t[1]))


def _implementations(function: str):
    """``(production, oracle)`` callables of a row of either table."""
    if function.startswith("grad."):
        name = function[len("grad."):]
        return getattr(functions.grad, name), getattr(oracle.grad, name)
    return getattr(functions, function), getattr(oracle, function)


def _strategy(function: str, fmt):
    if function == "softlog_inverse":  # all of the real line; the regime boundaries -2, -1/4, 3/4, 2
        return st.lists(strategies.floats(fmt, allow_infinity=True), min_size=1, max_size=32).map(
            lambda v: (np.array(v, dtype=fmt.dtype),))
    if function == "softlog":
        return st.lists(st.one_of(strategies.unit_interval(fmt), strategies.floats(fmt, -0.156, None)),
                        min_size=1, max_size=32).map(lambda v: (np.array(v, dtype=fmt.dtype),))
    if function in ("logsumexp", "log_softmax", "softmax"):
        return strategies.logit_vectors(fmt, 1, 48).map(lambda x: (x,))
    if function == "softlog_entropy":
        return strategies.probability_vectors(fmt, 1, 24).map(lambda p: (p,))
    return strategies.probability_pairs(fmt, 1, 24)


@dataclass
class Measurement:
    """What :func:`measure` found for one function and format: the fields of its
    :class:`~softlog_numerics.testing.record.ErrorStats` that ``softlog-numerics accuracy`` prints
    (``max_ulp``; ``examples`` the inputs evaluated; ``passed`` no contract failure; the worst
    input as exact hex floats), the first failing inputs, and the time taken."""

    function: str
    dtype: str
    bound: int
    max_ulp: float
    examples: int
    passed: bool
    worst_input: str
    seconds: float
    failures: list = field(default_factory=list)
    cancelling: int = 0
    """Examples beyond the ULP bound whose sums cancel, within the Σ|terms| allowance (not in max_ulp)."""
    bulk_rows: int = 0
    """Rows of NumPy draws among ``examples`` (:mod:`softlog_numerics.testing.bulk`)."""

    def to_dict(self) -> dict:
        return asdict(self)


def _row_of(args: tuple, r: int) -> tuple:
    """Row ``r`` of a bulk batch, keeping the leading axis."""
    return tuple(a[r : r + 1] for a in args)


def _within_allowance(function: str, fmt, derivative: bool, got, want, args, rows) -> bool:
    """Whether the bulk ``rows`` all meet the contract, judged in one call on the sub-batch (the
    contract's scales are per row along the last axis); False sends them to be judged one by one."""
    sub = tuple(a[rows] for a in args)
    if derivative:
        return within_derivative_contract(function, got[rows], want[rows], sub)[0]
    return within_contract(function, fmt, got[rows], want[rows], sub)[0]


def measure(function: str, dtype: FormatLike, examples: int = 200, bulk: int = 0) -> Measurement:
    """Max ULP of ``softlog_numerics.<function>`` against the oracle for ``dtype``.

    Deterministic: the hard cases, then ``examples`` Hypothesis draws with a fixed seed, then,
    where :func:`~softlog_numerics.testing.bulk.has_bulk` (a fast oracle: the functions of
    :data:`~softlog_numerics.testing.bulk.BULK_FUNCTIONS` in float16, bfloat16 and float32, and the
    softlog and the log-softmax family in float64), about ``bulk`` rows of NumPy draws in batches (:func:`~softlog_numerics.testing.bulk.batches`,
    each batch one call of the function and one of the oracle; ``examples`` counts every row).
    """
    derivative = function in LOSS_GRAD_BOUNDS
    if function not in ULP_BOUNDS and not derivative:
        raise ValueError(f"unknown function {function!r}; choose from {', '.join(FUNCTIONS + DERIVATIVES)}")
    fmt = format_of(dtype)
    impl, ref = _implementations(function)
    bound = (LOSS_GRAD_BOUNDS if derivative else ULP_BOUNDS)[function][fmt.name]
    stats = ErrorStats(keep_latest=True)
    failures: list[str] = []
    cancelling = evaluated = 0

    def check(args):
        with np.errstate(all="ignore"):
            got = impl(*args)
        return judge(args, got, ref(*args))

    def judge(args, got, want):
        nonlocal cancelling, evaluated
        evaluated += 1
        if derivative:
            ok, worst = within_derivative_contract(function, got, want, args)
        else:
            ok, worst = within_contract(function, fmt, np.asarray(got), np.asarray(want), args)
        if ok and worst > bound:  # met through the cancellation allowance, not the ULP bound
            cancelling += 1
        else:
            gots = got if isinstance(got, tuple) else (got,)
            wants = want if isinstance(want, tuple) else (want,)
            for g_, w_ in zip(gots, wants):
                stats.add(g_, w_, args, in_contract=ok)
        if not ok and len(failures) < 5:
            failures.append(" ; ".join(_hex(a) for a in args))
        return worst

    start = time.perf_counter()
    for args in ([] if derivative else hard_cases(function, fmt)):
        check(args)

    if examples > 0:
        @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                  phases=(Phase.explicit, Phase.generate, Phase.target),
                  suppress_health_check=list(HealthCheck))
        @given(_derivative_strategy(function, fmt) if derivative else _strategy(function, fmt))
        def search(args):
            target(math.log2(1.0 + min(check(args), 2.0**60)), label="bits of error")

        search()
    bulk_rows = 0
    if bulk > 0 and has_bulk(function, fmt):
        before = evaluated
        for args in batches(function, fmt, bulk):
            with np.errstate(all="ignore"):
                got = np.asarray(impl(*args))
            want = np.asarray(ref(*args))
            m = got.shape[0]
            d = compare(got, want).distance.reshape(m, -1).max(axis=1, initial=0.0)
            over = np.flatnonzero(d > bound)
            if over.size and _within_allowance(function, fmt, derivative, got, want, args, over):
                cancelling += over.size  # all of them met through the allowance, as judge counts
                evaluated += over.size
            else:
                for r in over.tolist():  # the contract's allowance for sums that cancel, row by row
                    judge(_row_of(args, r), got[r : r + 1], want[r : r + 1])
            keep = np.ones(m, dtype=bool)
            keep[over] = False
            if keep.any():
                worst = int(np.flatnonzero(keep)[np.argmax(d[keep])])
                stats.add(got[keep], want[keep], _row_of(args, worst))
                evaluated += int(keep.sum())
        bulk_rows = evaluated - before
    stats.finish()
    return Measurement(
        function=function, dtype=fmt.name, bound=bound, max_ulp=stats.max_ulp,
        examples=evaluated, passed=stats.contract_failures == 0,
        worst_input=" ; ".join(_hex(a) for a in stats.worst.args) if stats.worst else "",
        seconds=time.perf_counter() - start, failures=failures, cancelling=cancelling, bulk_rows=bulk_rows,
    )
