"""Audit any implementation against the correctly rounded oracle.

A kernel author with a softmax of their own (PyTorch, JAX, CuPy, a wrapped C or Triton kernel)
asks, in one line, how far it is from the truth, where, and in which format::

    from softlog_numerics.audit import audit
    report = audit(torch.nn.functional.log_softmax, "log_softmax")   # or audit("torch", ...)
    print(report.to_markdown())
    assert report.passed(max_ulp=2), report.to_markdown()

The audit draws adversarial inputs (the families of :mod:`softlog_numerics.strategies` plus fixed
hard and special cases), converts them *exactly* to the implementation's array library
(:mod:`softlog_numerics.testing.backends`), calls it, converts the result back, and compares it with
:mod:`softlog_numerics.oracle` in the same format, element by element, with
:func:`softlog_numerics.ulp.ulp_distance`.

For a pytest suite, :func:`assert_matches_oracle` runs the same search under Hypothesis (so a
failure shrinks to a small input) and :func:`check_against_oracle` checks one given input, for use
inside a test of your own ``@given``.

Conventions
-----------
* ``fn`` is called positionally and reduces (or normalises) over the **last axis**: ``fn(x)`` for
  ``softlog``, ``logsumexp``, ``log_softmax``, ``softmax``; ``fn(p)`` for ``softlog_entropy``;
  ``fn(p, q)`` for ``softlog_cross_entropy``, ``sld``, ``sld_sym``. Inputs are 1-D, except in the
  ``batched`` family (2-D, last axis) and the ``axis`` family (3-D, reduced along axis 1 and
  passed as ``fn(x, **{axis_keyword: 1})`` when :func:`audit` is given ``axis_keyword``); wrap
  your function (``lambda x: f(x, dim=-1)``) if it needs other arguments.
* A result of another floating dtype than the input's is rounded once to the input's format and
  the report says so (``output_dtype``) and the cell fails, as in :func:`check_against_oracle`; a
  result of another shape, or an exception, counts as an
  error for that input.
* The special-value conventions are the oracle's (see its docstrings): e.g. ``log_softmax`` of a
  row holding ``+inf`` is NaN there and ``-inf`` elsewhere. A peer that follows another convention
  shows up in the ``special`` family, and nowhere else.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, cast

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from numpy.typing import ArrayLike

from softlog_numerics import oracle
from softlog_numerics._core.formats import (
    FORMATS,
    Format,
    FormatLike,
    format_of,
    result_format,
    round_from_float64,
)
from softlog_numerics.testing import strategies
from softlog_numerics.testing.accuracy import hard_cases
from softlog_numerics.testing.backends import (
    GRAD_FUNCTIONS,
    from_numpy,
    guess_library,
    resolve,
    to_numpy,
)
from softlog_numerics.testing.bulk import BULK_FUNCTIONS, batches, has_bulk
from softlog_numerics.testing.contract import (
    ULP_BOUNDS,
    bound_of,
    dense_target,
    within_contract,
)
from softlog_numerics.testing.record import ErrorStats, Worst
from softlog_numerics.testing.ulp import compare, format_ulp, from_ordinal, ordinal

__all__ = [
    "BULK_FAMILY",
    "FUNCTIONS",
    "AuditReport",
    "OracleMismatch",
    "CellStats",
    "assert_matches_oracle",
    "audit",
    "check_against_oracle",
    "families",
    "reproducer",
]

FUNCTIONS = tuple(ULP_BOUNDS) + GRAD_FUNCTIONS
"""The function names an audit accepts: every function of the contract, and the VJPs ``grad.*``."""
DTYPES = tuple(FORMATS)

_KIND = {
    "softlog": "elementwise",
    "softlog_inverse": "inverse",
    "logsumexp": "logits",
    "log_softmax": "logits",
    "softmax": "logits",
    "softlog_entropy": "probability",
    "softlog_cross_entropy": "pair",
    "sld": "pair",
    "sld_sym": "pair",
    "grad.log_softmax": "vjp",
    "grad.softmax": "vjp",
    "grad.logsumexp": "vjp_reduce",
    "grad.cross_entropy": "vjp_loss",
}
FIXED_FAMILIES = ("hard", "special")
"""Fixed inputs evaluated once per format: ``hard`` (the cases of
:mod:`softlog_numerics.accuracy`: collapse gap, x0, near-one-hot, ...) and ``special`` (zeros of
both signs, infinities, NaN, masked ``-inf`` logits, one-hot vectors, extremes of the format)."""

DRAWN_FAMILIES = {
    "elementwise": ("unit_interval", "near_x0", "negative", "above_one"),
    "inverse": ("near_minus_one", "near_one", "negative", "positive"),
    "logits": strategies.LOGIT_FAMILIES + ("batched", "axis"),
    "probability": strategies.PROBABILITY_FAMILIES + ("batched", "axis"),
    "pair": strategies.PAIR_KINDS + ("batched", "axis"),
    "vjp": strategies.COTANGENT_FAMILIES,
    "vjp_reduce": ("ones", "normal", "scaled"),
    "vjp_loss": ("index", "argmax", "smoothed"),
}
"""Families drawn by Hypothesis, per kind of function. For the logit functions they are those of
:func:`softlog_numerics.strategies.logit_vectors`; ``wide`` (32000+ entries, about a second of
oracle time per input) runs only when named. For the VJPs (``grad.*``) they are the cotangent
families of :func:`softlog_numerics.strategies.cotangents`, each at logits of every logit family;
for ``grad.cross_entropy`` they are target kinds: a random class index, the argmax class (the
dominant class, whose gradient ``p_k - 1`` is tiny), and a smoothed probability target
(``0.9`` on the class, ``0.1`` spread over the unmasked classes); drawn targets avoid masked
(``-inf``) logits, whose loss is infinite (the ``special`` family has them)."""

_X0 = 1.0 / (math.e + 1.0)
_BRANCH = -0.15651764274966565  # -1/(e**2 - 1): below it the softlog is NaN


AXIS_FAMILY_AXIS = 1
"""The ``axis`` family: 3-D inputs ``(a, n, b)`` reduced (or normalised) along axis 1, passed to the
kernel as ``axis_keyword=1`` (e.g. ``dim=1``); ``batched``: 2-D inputs ``(m, n)`` along the last
axis, called as ``fn(x)``. Both exercise the batching and tiling of a kernel that 1-D rows do not."""


BULK_FAMILY = "bulk"
"""NumPy-drawn rows in batches of up to 512 (:mod:`softlog_numerics.testing.bulk`), one call of the
implementation and one of the oracle per batch: for the forward functions whose oracle has a fast
path, in float16, bfloat16 and float32, and in float64 for the softlog and the log-softmax family
(``bulk_rows`` of :func:`audit`; no cell where the oracle has no fast path)."""
_BULK_KINDS = ("elementwise", "logits", "probability", "pair")


def families(function: str, *, include_slow: bool = False, axis_keyword: str | None = None) -> tuple[str, ...]:
    """The input families of ``function``: the fixed ones, then the drawn ones (without ``wide``
    unless ``include_slow``, without ``axis`` unless the kernel takes an ``axis_keyword``), then
    ``bulk`` where it applies."""
    _check_function(function)
    drawn = tuple(f for f in DRAWN_FAMILIES[_KIND[function]]
                  if (include_slow or f != "wide") and (axis_keyword is not None or f != "axis"))
    return FIXED_FAMILIES + drawn + _bulk_family(function)


def _bulk_family(function: str) -> tuple[str, ...]:
    return (BULK_FAMILY,) if _KIND[function] in _BULK_KINDS and function in BULK_FUNCTIONS else ()


_default_families = families  # audit() and assert_matches_oracle() take a parameter of that name


def checked_max_ulp(max_ulp):
    """``max_ulp`` as given (None: the contract), or a ValueError unless it is a number ``>= 0``
    (``inf`` allowed: report without judging)."""
    if max_ulp is None:
        return None
    if isinstance(max_ulp, bool) or not isinstance(max_ulp, (int, float, np.integer, np.floating)):
        raise ValueError(f"max_ulp must be a number >= 0 or None, got {max_ulp!r}")
    if not max_ulp >= 0:  # also NaN
        raise ValueError(f"max_ulp must be >= 0 (or None for the library's contract), got {max_ulp!r}")
    return max_ulp


def _check_function(function: str) -> None:
    if function not in FUNCTIONS:
        raise ValueError(f"unknown function {function!r}; choose from {', '.join(FUNCTIONS)}")


# ---------------------------------------------------------------------------------------------
# Inputs


def _cast(fmt: Format, *arrays) -> tuple:
    with np.errstate(over="ignore"):
        return tuple(round_from_float64(np.asarray(a, dtype=np.float64), fmt) for a in arrays)


_VJP_HARD = [
    ([37.42994775023705, 0.0], [1.0, 0.0]),  # PyTorch float64: exact VJP [5.55e-17, -5.55e-17]
    ([16.94, 0.0], [1.0, 0.0]),  # float32 collapse: 1 - p_0 = 4.4e-8
    ([5.5625, 0.0], [1.0, 0.0]),  # bfloat16 collapse gap
    ([7.625, 0.0], [1.0, 0.0]),  # float16 collapse gap
    ([3.0, 1.0, -2.0, 0.5], [1.0, 1.0, 1.0, 1.0]),  # the sum loss: 1 - n p
    ([1.0, 1.0, 1.0], [0.5, 0.25, 0.25]),  # equal logits: rational
    ([0.0, -1.0, -2.0], [2.0, 2.0, 2.0]),  # constant cotangent: softmax VJP exactly 0
]


def _vjp_fixed(function: str, family: str, fmt: Format) -> list[tuple]:
    inf, nan, big = math.inf, math.nan, fmt.max
    if family == "hard":
        pairs = _VJP_HARD
    else:
        pairs = [([0.0, -inf, 1.0], [1.0, 2.0, -1.0]), ([-inf, -inf], [1.0, 1.0]), ([inf, 0.0], [1.0, 0.0]),
                 ([nan, 1.0], [1.0, 0.0]), ([5.0], [1.0]), ([big, -big], [1.0, 0.0]), ([0.0, 1.0], [big, -big]),
                 ([-inf, 3.0], [1.0, 1.0])]
    out = []
    for x, g in pairs:
        if _KIND[function] == "vjp_reduce":
            g = [g[0]]
            x_, g_ = _cast(fmt, x, g)
            out.append((x_, g_.reshape(())))
        else:
            out.append(_cast(fmt, x, g))
    return out


def _index(y: int):
    return np.array(y, dtype=np.int64)


def _loss_fixed(family: str, fmt: Format) -> list[tuple]:
    """``(logits, target, g)`` rows for ``grad.cross_entropy``: the hard VJP logits with the target
    on the dominant class (gradient ``-q_k`` there), and the special values (masked logits, the
    ignored index ``-100``, NaN, ``+inf``, one finite logit, the format's extremes)."""
    inf, nan, big = math.inf, math.nan, fmt.max
    if family == "hard":
        rows = [(x, 0) for x, _ in _VJP_HARD] + [([1.0, 1.0, 1.0], 2), ([0.0, -1.0, -2.0], 1)]
    else:
        rows = [([0.0, -inf, 1.0], 2), ([0.0, -inf, 1.0], 1), ([-inf, 3.0], 1), ([inf, 0.0], 1),
                ([nan, 1.0], 0), ([5.0], 0), ([big, -big], 1), ([3.0, 1.0], -100), ([big, big], 0)]
    out = []
    for x, y in rows:
        x_, g_ = _cast(fmt, x, [1.0])
        out.append((x_, _index(y), g_.reshape(())))
    return out


def _fixed_inputs(function: str, family: str, fmt: Format) -> list[tuple]:
    if _KIND[function] == "vjp_loss":
        return _loss_fixed(family, fmt)
    if _KIND[function].startswith("vjp"):
        return _vjp_fixed(function, family, fmt)
    if family == "hard":
        return hard_cases(function, fmt)
    inf, nan, big, sub = math.inf, math.nan, fmt.max, fmt.min_subnormal
    kind = _KIND[function]
    if kind == "elementwise":
        vals = [nan, inf, -inf, 0.0, -0.0, 1.0, -1.0, _BRANCH, _X0, big, sub, -sub, fmt.tiny, -0.15]
        return [_cast(fmt, vals)]
    if kind == "inverse":
        vals = [nan, inf, -inf, 0.0, -0.0, 1.0, -1.0, -2.0, -0.25, 0.75, 2.0, big, -big, sub, 700.0, 710.0]
        return [_cast(fmt, vals)]
    if kind == "logits":
        rows = [[0.0, -inf, 1.0], [-inf, -inf], [inf, 0.0], [nan, 1.0], [5.0], [-0.0, 0.0], [inf, inf],
                [-inf, 3.0], [big, big], [-big, -big], [sub, -sub], [-inf, inf], [big, -big]]
        return [_cast(fmt, r) for r in rows]
    vectors = [[1.0], [1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.5, 0.5], [0.25] * 4, [sub, 1.0]]
    if kind == "probability":
        return [_cast(fmt, v) for v in vectors]
    pairs = [([1.0, 0.0], [0.0, 1.0]), ([1.0, 0.0], [1.0, 0.0]), ([0.5, 0.5], [1.0, 0.0]),
             ([1.0, 0.0], [0.5, 0.5]), ([1.0], [1.0]), ([0.0, 1.0, 0.0], [0.0, 0.0, 1.0]),
             ([sub, 1.0], [1.0, sub])]
    return [_cast(fmt, p, q) for p, q in pairs]


def _near(fmt: Format, centre: float, spread: int):
    c = int(ordinal(round_from_float64(np.float64(centre), fmt)))
    return st.integers(c - spread, c + spread).map(lambda o: from_ordinal(np.int64(o), fmt.dtype)[()])


def _vector(elements, fmt: Format, max_size: int = 16):
    return st.lists(elements, min_size=1, max_size=max_size).map(lambda v: (np.array(v, dtype=fmt.dtype),))


def _scalar_cotangent(fmt: Format, family: str):
    if family == "ones":
        return st.just(1.0)
    if family == "normal":
        return st.floats(-4.0, 4.0)
    return st.tuples(st.floats(-4.0, 4.0), st.integers(fmt.emin + fmt.precision, fmt.emax - 8)).map(
        lambda t: math.ldexp(t[0], t[1]))


def _loss_inputs(fmt: Format, family: str):
    """``(logits, target, g)`` for ``grad.cross_entropy``: logits of every logit family, a target of
    kind ``family`` and a cotangent drawn like ``grad.logsumexp``'s ``normal`` family."""

    def build(t):
        x, pick, g = t
        K = x.shape[0]
        x64 = np.where(np.isnan(x.astype(np.float64)), -np.inf, x.astype(np.float64))
        live = np.flatnonzero(x64 > -np.inf)  # targets avoid masked logits (an infinite loss)
        live = live if live.size else np.arange(K)
        y = int(np.argmax(x64)) if family == "argmax" else int(live[pick % live.size])
        gg = _cast(fmt, [g])[0].reshape(())
        if family == "smoothed":  # 0.9 onehot + 0.1 spread over the unmasked classes
            spread = np.isin(np.arange(K), live) * (0.1 / live.size)
            t = _cast(fmt, 0.9 * (np.arange(K) == y) + spread)[0]
            return x, t, gg
        return x, _index(y), gg

    return st.tuples(strategies.logit_vectors(fmt, 1, 48), st.integers(0, 1 << 20), st.floats(-4.0, 4.0)).map(build)


def _rows_of(kind: str, fmt: Format, n: int):
    """One row of length ``n`` (a tuple of arrays) of a logit, probability or pair function."""
    if kind == "logits":
        return strategies.logit_vectors(fmt, n, n).map(lambda x: (x,))
    if kind == "probability":
        return strategies.probability_vectors(fmt, n, n).map(lambda p: (p,))
    return strategies.probability_pairs(fmt, n, n)


def _stacked(kind: str, fmt: Format, family: str):
    """``batched``: ``m`` rows stacked to ``(m, n)``; ``axis``: ``a * b`` rows laid out as
    ``(a, n, b)`` (the reduced axis in the middle)."""

    def build(t):
        rows, shape = t
        arrays = [np.stack([r[i] for r in rows]) for i in range(len(rows[0]))]
        if family == "batched":
            return tuple(arrays)
        a, b = shape
        return tuple(np.ascontiguousarray(np.moveaxis(x.reshape(a, b, -1), 2, AXIS_FAMILY_AXIS)) for x in arrays)

    def draw(n):
        if family == "batched":
            return st.tuples(st.lists(_rows_of(kind, fmt, n), min_size=2, max_size=6), st.just(None))
        return st.tuples(st.integers(1, 3), st.integers(1, 3)).flatmap(
            lambda ab: st.tuples(st.lists(_rows_of(kind, fmt, n), min_size=ab[0] * ab[1], max_size=ab[0] * ab[1]),
                                 st.just(ab)))

    return st.integers(2, 24).flatmap(draw).map(build)  # (the disjoint pairs need two classes)


def _strategy(function: str, family: str, fmt: Format):
    kind = _KIND[function]
    if family in ("batched", "axis"):
        return _stacked(kind, fmt, family)
    if kind == "vjp_loss":
        return _loss_inputs(fmt, family)
    if kind == "vjp":
        return strategies.logit_vectors(fmt, 1, 48).flatmap(
            lambda x: strategies.cotangents(fmt, x, families=(family,)).map(lambda g: (x, g)))
    if kind == "vjp_reduce":
        return st.tuples(strategies.logit_vectors(fmt, 1, 48), _scalar_cotangent(fmt, family)).map(
            lambda t: (t[0], _cast(fmt, [t[1]])[0].reshape(())))
    if kind == "inverse":
        if family == "near_minus_one":
            return _vector(_near(fmt, -1.0, 64), fmt)
        if family == "near_one":
            return _vector(_near(fmt, 1.0, 64), fmt)
        if family == "negative":
            return _vector(strategies.floats(fmt, None, 0.0), fmt)
        return _vector(strategies.floats(fmt, 0.0, None), fmt)  # positive
    if kind == "elementwise":
        if family == "unit_interval":
            return _vector(strategies.unit_interval(fmt), fmt)
        if family == "near_x0":
            return _vector(_near(fmt, _X0, 64), fmt)
        if family == "negative":
            return _vector(strategies.floats(fmt, -0.1565176427, 0.0), fmt)
        return _vector(strategies.floats(fmt, 1.0, None), fmt)  # above_one
    if kind == "logits":
        return strategies.logit_vectors(fmt, 1, 48, families=(family,)).map(lambda x: (x,))
    if kind == "probability":
        return strategies.probability_vectors(fmt, 1, 24, family=family).map(lambda p: (p,))
    return strategies.probability_pairs(fmt, 1, 24, kind=family)


# ---------------------------------------------------------------------------------------------
# Formatting exact values

_DTYPE_EXPR = {"float16": "np.float16", "bfloat16": "ml_dtypes.bfloat16", "float32": "np.float32",
               "float64": "np.float64"}


def _hexlist(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_hexlist(u) for u in v) + "]"
    return f"float.fromhex('{float(v).hex()}')"


def reproducer(*arrays: ArrayLike, limit: int | None = None) -> str:
    """Python source that rebuilds ``arrays`` bit for bit (NaN payloads aside).

    Each array becomes ``np.array([float.fromhex('0x1.0p+4'), ...], dtype=np.float32)``
    (``ml_dtypes.bfloat16`` for bfloat16); several arrays become a tuple. Every value of the four
    formats is a float64, and the cast of an exactly representable float64 is exact, so
    ``eval(reproducer(a))`` has the bits of ``a``. ``limit`` shortens each array to its first
    ``limit`` entries for display (the text then no longer rebuilds the array, and says so).
    """
    parts = []
    for a in arrays:
        a = np.asarray(a)
        if np.issubdtype(a.dtype, np.integer):  # class indices
            parts.append(f"np.array({a.tolist()!r}, dtype=np.int64)")
            continue
        name = format_of(a.dtype).name
        values = a.astype(np.float64)
        note = ""
        if limit is not None and values.ndim == 1 and values.size > limit:
            note = f"  # first {limit} of {values.size} values"
            values = values[:limit]
        parts.append(f"np.array({_hexlist(values.tolist())}, dtype={_DTYPE_EXPR[name]}){note}")
    return parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def _show(v, fmt: Format) -> str:
    """A value in decimal (shortest repr in its format) and exact hex."""
    return f"{str(fmt.dtype.type(v))} ({float(v).hex()})"


def _number(v: float):
    """JSON has no infinity: distances that are infinite are written as the string ``"inf"``."""
    return "inf" if v == math.inf else v


# ---------------------------------------------------------------------------------------------
# Statistics of one cell (function x dtype x family)


def _worst_dict(w: Worst, fmt: Format) -> dict:
    """The worst input of a cell as the JSON report writes it."""
    return {
        "input": reproducer(*w.args),
        "index": list(w.index),
        "expected": str(fmt.dtype.type(w.expected)),
        "expected_hex": float(w.expected).hex(),
        "got": str(fmt.dtype.type(w.got)),
        "got_hex": float(w.got).hex(),
        "ulp": _number(w.ulp),
    }


@dataclass
class CellStats(ErrorStats):
    """What the audit measured for one function, format and input family: an
    :class:`~softlog_numerics.testing.record.ErrorStats` (max and p99 ULP, share not correctly
    rounded, NaN and infinity mismatches, wrong signs of zero, contract failures, the worst input)
    and what only an audit meets.

    ``contract_failures`` counts inputs outside the library's own contract (its ULP bound, or for
    sums that may cancel, the allowance of :mod:`softlog_numerics.testing.contract`); ``errors``
    counts inputs on which the implementation raised or returned another shape (``first_error``
    the first of them), ``skipped`` inputs the oracle refused (outside the function's domain);
    ``output_dtype`` names the dtype of a result of another format than the input's.
    """

    function: str
    dtype: str
    family: str
    errors: int = 0
    first_error: str | None = None
    skipped: int = 0
    output_dtype: str | None = None

    @property
    def bound(self) -> int:
        """The library's own bound for this function and format."""
        return bound_of(self.function, self.dtype)

    def passed(self, max_ulp: float | None = None, *, signed_zeros: bool = False) -> bool:
        """No errors, and within ``max_ulp`` (default: the library's contract, with its
        cancellation allowance). ``signed_zeros=True`` also fails on a wrong sign of zero."""
        max_ulp = checked_max_ulp(max_ulp)
        if self.errors or self.output_dtype is not None:  # a wrong output dtype fails, as in
            return False  # check_against_oracle (the values are still measured, rounded once)
        if signed_zeros and self.wrong_sign_zero:
            return False
        if max_ulp is None:
            return self.contract_failures == 0
        return self.max_ulp <= max_ulp

    def to_dict(self) -> dict:
        fmt = format_of(self.dtype)
        return {
            "max_ulp": _number(self.max_ulp),
            "p99_ulp": _number(self.p99_ulp),
            "not_correctly_rounded": self.not_correctly_rounded,
            "nan": self.nan,
            "inf_where_finite": self.inf_where_finite,
            "finite_where_inf": self.finite_where_inf,
            "wrong_sign_zero": self.wrong_sign_zero,
            "number_where_nan": self.number_where_nan,
            "worst_input": reproducer(*self.worst.args) if self.worst else None,
            "worst": _worst_dict(self.worst, fmt) if self.worst else None,
            "inputs": self.inputs,
            "values": self.values,
            "errors": self.errors,
            "first_error": self.first_error,
            "skipped": self.skipped,
            "output_dtype": self.output_dtype,
            "bound": self.bound,
            "contract_failures": self.contract_failures,
            "passed": self.passed(),
        }


# ---------------------------------------------------------------------------------------------
# Calling the implementation and the oracle


def _key(args) -> tuple:
    return tuple((a.dtype.str, a.shape, a.tobytes()) for a in args)


class _Evaluator:
    """Calls ``fn`` on converted inputs and the oracle (cached) on the NumPy originals."""

    def __init__(self, fn: Callable, function: str, library: str, axis_keyword: str | None = None):
        self.fn, self.function, self.library = fn, function, library
        self.axis_keyword = axis_keyword
        self.axis: int | None = None  # set to AXIS_FAMILY_AXIS while the axis family runs
        self.ref = getattr(oracle.grad, function[5:]) if function.startswith("grad.") else getattr(oracle, function)
        self.cache: dict = {}

    def want(self, args) -> np.ndarray:
        k = _key(args)
        if k not in self.cache:
            kw: dict[str, Any] = {} if self.axis is None else {"axis": self.axis}
            self.cache[k] = np.asarray(self.ref(*args, **kw))
        return self.cache[k]

    def got(self, args, fmt: Format) -> tuple[np.ndarray, str | None]:
        """(result in ``fmt``, the result's dtype name if it was another format)."""
        native = tuple(from_numpy(a, self.library) for a in args)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # audit() refuses the axis family without an axis_keyword
            kw: dict[str, Any] = {} if self.axis is None else {cast(str, self.axis_keyword): self.axis}
            out = self.fn(*native, **kw)
        got = to_numpy(out)
        if got.dtype == fmt.dtype:
            return got, None
        try:
            other = format_of(got.dtype)
        except TypeError:
            raise TypeError(f"returned dtype {got.dtype}, not a floating format") from None
        return round_from_float64(got.astype(np.float64), fmt), other.name


def _hint(ev: _Evaluator) -> str:
    """For a callable that failed on NumPy arrays: how to hand it another library's arrays (the
    library is guessed from the module defining ``fn``, which says nothing for a lambda)."""
    if ev.library != "numpy":
        return ""
    return ("; it was given NumPy arrays: if it takes torch or JAX arrays, pass library='torch' or "
            "library='jax' (CLI: module:attr@torch)")


def _within(function: str, fmt: Format, got, want, args, axis=None) -> bool:
    if axis is not None:  # the contract's term scales reduce the last axis
        args = tuple(np.moveaxis(a, axis, -1) for a in args)
        if got.ndim == args[0].ndim:
            got, want = np.moveaxis(got, axis, -1), np.moveaxis(want, axis, -1)
    if function == "grad.cross_entropy":  # (logits, target, g) -> the term scale's (x, g, t)
        x, t, g = args
        args = (x, g, dense_target(x, t))
    return within_contract(function, fmt, got, want, args)[0]


def _evaluate(ev: _Evaluator, cell: CellStats, args, fmt: Format) -> float:
    """Add one input to ``cell``; return its max ULP (``inf`` for an error), the search target."""
    try:
        want = ev.want(args)
    except ValueError:  # outside the function's domain: the oracle refuses it
        cell.skipped += 1
        return 0.0
    got = _called(ev, cell, args, fmt, want, lambda: f"input {reproducer(*args, limit=16)}")
    if got is None:
        return math.inf
    return cell.add(got, want, args, in_contract=_within(ev.function, fmt, got, want, args, ev.axis))


def _called(ev: _Evaluator, cell: CellStats, args, fmt: Format, want, where) -> np.ndarray | None:
    """The implementation's result on ``args`` (in ``fmt``), or None after recording its failure
    (an exception or another shape than ``want``'s) in ``cell``; ``where()`` names the input."""
    try:
        got, other = ev.got(args, fmt)
        if got.shape != want.shape:
            raise ValueError(f"returned shape {got.shape}, expected {want.shape}")
    except Exception as e:  # noqa: BLE001 - any failure of the audited code is a finding
        cell.inputs += 1
        cell.errors += 1
        if cell.first_error is None:
            cell.first_error = f"{type(e).__name__}: {e} on {where()}{_hint(ev)}"
        return None
    if other is not None:
        cell.output_dtype = other
    return got


def _bits(d: float) -> float:
    return math.log2(1.0 + min(d, 2.0**60))


# ---------------------------------------------------------------------------------------------
# The report


@dataclass
class AuditReport:
    """Per format x input family statistics of one function of one implementation.

    ``cells[(dtype, family)]`` is a :class:`CellStats`. :meth:`to_dict` / :meth:`to_json` give
    ``{function: {dtype: {family: {max_ulp, p99_ulp, not_correctly_rounded, nan,
    inf_where_finite, finite_where_inf, wrong_sign_zero, worst_input, ...}}}}`` (infinite distances
    as the string ``"inf"``); :meth:`to_markdown` a table and the worst inputs.
    """

    function: str
    implementation: str
    library: str
    dtypes: tuple[str, ...]
    families: tuple[str, ...]
    n_examples: int
    seed: int
    cells: dict = field(default_factory=dict)
    seconds: float = 0.0
    calls: str = ""

    def bound(self, dtype) -> int:
        """The library's own ULP bound for this function and ``dtype``."""
        return bound_of(self.function, dtype)

    def failures(self, max_ulp: float | None = None, *, signed_zeros: bool = False) -> list[CellStats]:
        """Cells that do not pass (see :meth:`CellStats.passed`)."""
        return [c for c in self.cells.values() if not c.passed(max_ulp, signed_zeros=signed_zeros)]

    def passed(self, max_ulp: float | None = None, *, signed_zeros: bool = False) -> bool:
        """Every cell passes: no errors, and max ULP at most ``max_ulp`` (default: the library's own
        bound for this function and each format, with its cancellation allowance)."""
        return not self.failures(max_ulp, signed_zeros=signed_zeros)

    def max_ulp(self, dtype=None, family: str | None = None) -> float:
        """The largest ULP distance over the cells of ``dtype`` and/or ``family`` (default all)."""
        name = format_of(dtype).name if dtype is not None else None
        vals = [c.max_ulp for (d, f), c in self.cells.items()
                if (name is None or d == name) and (family is None or f == family)]
        return max(vals, default=0.0)

    def worst(self, dtype=None) -> CellStats | None:
        """The cell with the largest max ULP (of ``dtype`` if given)."""
        name = format_of(dtype).name if dtype is not None else None
        cells = [c for (d, _), c in self.cells.items() if name is None or d == name]
        return max(cells, key=lambda c: c.max_ulp, default=None)

    def to_dict(self) -> dict:
        out: dict = {}
        for (d, f), c in self.cells.items():
            out.setdefault(d, {})[f] = c.to_dict()
        return {self.function: out}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_markdown(self, max_ulp: float | None = None, *, limit: int = 12) -> str:
        """A table per format x family, then the worst input of each failing cell (inputs longer
        than ``limit`` entries are cut; :meth:`to_json` has them whole)."""
        bound_text = (f"at most {max_ulp:g} ULP" if max_ulp is not None else
                      "the library's own bound (" + ", ".join(f"{d} {self.bound(d)}" for d in self.dtypes) + ")")
        lines = [
            f"### {self.function}: {self.implementation}",
            "",
            f"Audited call: `{self.calls}`. {self.n_examples} drawn inputs per family (seed {self.seed}) "
            f"plus the fixed families; pass = no errors and {bound_text}. {self.seconds:.1f} s.",
            "",
            "| dtype | family | inputs | max ULP | p99 ULP | not CR | NaN | inf for finite | finite for inf "
            "| wrong ±0 | errors | pass |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for (d, f), c in self.cells.items():
            note = f" (returns {c.output_dtype})" if c.output_dtype else ""
            lines.append(
                f"| {d}{note} | {f} | {c.inputs} | {format_ulp(c.max_ulp)} | {format_ulp(c.p99_ulp)} | "
                f"{c.not_correctly_rounded:.1%} | {c.nan} | {c.inf_where_finite} | {c.finite_where_inf} | "
                f"{c.wrong_sign_zero} | {c.errors} | {'yes' if c.passed(max_ulp) else '**no**'} |"
            )
        bad = [c for c in self.cells.values() if not c.passed(max_ulp)]
        if bad:
            lines += ["", "Worst inputs of the failing cells:", ""]
            for c in bad:
                fmt = format_of(c.dtype)
                if c.worst is not None:
                    w = c.worst
                    lines.append(
                        f"- {c.dtype} / {c.family}: {format_ulp(w.ulp)} ULP at index {list(w.index)}: "
                        f"expected {_show(w.expected, fmt)}, got {_show(w.got, fmt)}; input "
                        f"`{reproducer(*w.args, limit=limit)}`"
                    )
                if c.first_error:
                    lines.append(f"- {c.dtype} / {c.family}: {c.errors} error(s), first: {c.first_error}")
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# audit()


def _resolve_fn(fn, function: str, library: str | None) -> tuple[Callable, str, str, str]:
    """(callable, library, label, description of the call)."""
    if isinstance(fn, str):
        r = resolve(fn)
        return r.get(function), library or r.library, r.label, r.calls[function]
    label = getattr(fn, "__qualname__", None) or repr(fn)
    module = getattr(fn, "__module__", None)
    if module and label != repr(fn):
        label = f"{module}.{label}"
    lib = library or guess_library(fn)
    return fn, lib, label, f"{label}(*args) on {lib} arrays"


def audit(
    fn: Callable[..., Any] | str,
    function: str = "log_softmax",
    dtypes: Iterable[FormatLike] = ("float16", "bfloat16", "float32", "float64"),
    families: Iterable[str] | None = None,
    n_examples: int = 50,
    seed: int = 0,
    *,
    library: str | None = None,
    axis_keyword: str | None = None,
    bulk_rows: int = 5000,
) -> AuditReport:
    """Measure an implementation of ``function`` against the correctly rounded oracle.

    Parameters
    ----------
    fn : callable or str
        The implementation: a callable taking and returning arrays of its own library, called as
        ``fn(x)`` / ``fn(p)`` / ``fn(p, q)`` over the last axis; or a backend name of
        :func:`softlog_numerics.testing.backends.resolve` (``"torch"``, ``"scipy"``, ``"jax"``,
        ``"numpy-naive"``, ``"softlog_numerics"``, ``"module:attr"``).
    function : str
        Which function of the contract ``fn`` computes (default ``"log_softmax"``).
    dtypes : iterable
        Formats to audit, names or dtypes (default all four).
    families : iterable of str, optional
        Input families (default :func:`families` of ``function``: ``hard``, ``special`` and every
        drawn family but ``wide``).
    n_examples : int
        Inputs drawn by Hypothesis per format x drawn family (default 50); fixed families are
        evaluated whole.
    seed : int
        Seed of the draws; the same seed, arguments and library versions give the same report.
    library : str, optional
        The array library ``fn`` takes (``"numpy"``, ``"torch"``, ``"jax"``, ``"cupy"``); default
        guessed from the module ``fn`` was defined in (NumPy for anything not torch/jax/cupy).
    axis_keyword : str, optional
        The keyword through which ``fn`` takes the axis (``"dim"`` for PyTorch, ``"axis"`` for
        NumPy/JAX); with it the ``axis`` family runs (3-D inputs along axis 1). The ``batched``
        family (2-D inputs, last axis) needs none.
    bulk_rows : int
        Rows of the ``bulk`` family per cell (default 5000), where it applies
        (:data:`BULK_FAMILY`; in float64 only for the softlog and the log-softmax family, whose
        oracle has a fast path there). 0 runs none.

    Returns
    -------
    AuditReport

    Notes
    -----
    Inputs are built in NumPy, converted exactly (bfloat16 by bit pattern) to ``library``, passed
    to ``fn``; the result is converted back exactly and compared element by element with
    :mod:`softlog_numerics.oracle` in the input's format. Drawn families are searched by
    Hypothesis with :func:`hypothesis.target` steering towards larger ULP distances. Oracle
    results are cached within one call. Time is dominated by the oracle: its interval loop takes
    about 1 ms per 48-entry logit vector, its certified fast paths (proofs/fast_oracle.md) tens of
    microseconds; the ``bulk`` family runs only where a fast path exists.
    """
    _check_function(function)
    fams = tuple(families) if families is not None else _default_families(function, axis_keyword=axis_keyword)
    valid = FIXED_FAMILIES + DRAWN_FAMILIES[_KIND[function]] + _bulk_family(function)
    for f in fams:
        if f not in valid:
            raise ValueError(f"unknown family {f!r} for {function}; choose from {', '.join(valid)}")
        if f == "axis" and axis_keyword is None:
            raise ValueError("the axis family passes the axis to fn: give axis_keyword (e.g. 'dim' or 'axis')")
    fmts = [format_of(d) for d in dtypes]
    call, lib, label, calls = _resolve_fn(fn, function, library)
    report = AuditReport(function, label, lib, tuple(f.name for f in fmts), fams, n_examples, seed, calls=calls)
    ev = _Evaluator(call, function, lib, axis_keyword)
    start = time.perf_counter()
    for fmt in fmts:
        for fam in fams:
            if fam == BULK_FAMILY and (not has_bulk(function, fmt) or bulk_rows <= 0):
                continue
            cell = CellStats(function, fmt.name, fam)
            ev.axis = AXIS_FAMILY_AXIS if fam == "axis" else None
            if fam == BULK_FAMILY:
                _bulk(ev, cell, fmt, bulk_rows, seed)
            elif fam in FIXED_FAMILIES:
                for args in _fixed_inputs(function, fam, fmt):
                    _evaluate(ev, cell, args, fmt)
            elif n_examples > 0:
                _search(_strategy(function, fam, fmt), n_examples, seed,
                        lambda args, c=cell, f=fmt: _evaluate(ev, c, args, f))
            cell.finish()
            report.cells[(fmt.name, fam)] = cell
    report.seconds = time.perf_counter() - start
    return report


def _bulk(ev: _Evaluator, cell: CellStats, fmt: Format, rows: int, seed: int) -> None:
    """The ``bulk`` family: each batch in one call; every row added to ``cell`` as an input of
    its own (the contract's cancellation allowance judged row by row where the ULP bound is
    exceeded)."""
    function = ev.function
    bound = bound_of(function, fmt)
    for args in batches(function, fmt, rows, seed):
        want = np.asarray(ev.ref(*args))
        got = _called(ev, cell, args, fmt, want, lambda: f"a batch of shape {args[0].shape}")
        if got is None:
            continue
        d = compare(got, want).distance.reshape(want.shape[0], -1).max(axis=1, initial=0.0)
        for r in range(want.shape[0]):
            row = tuple(a[r] for a in args)  # 1-D rows (reductions: a 0-d result)
            ok = bool(d[r] <= bound) or _within(function, fmt, got[r], want[r], row)
            cell.add(got[r], want[r], row, in_contract=ok)


def _search(strategy, n: int, seed: int, evaluate) -> None:
    @hypothesis_seed(seed)
    @settings(max_examples=n, database=None, deadline=None, derandomize=False,
              phases=(Phase.generate, Phase.target), suppress_health_check=list(HealthCheck),
              verbosity=Verbosity.quiet)
    @given(strategy)
    def run(args):
        target(_bits(evaluate(args)), label="bits of error")

    run()


# ---------------------------------------------------------------------------------------------
# pytest helpers


def _as_args(args: Any) -> tuple[np.ndarray, ...]:
    if isinstance(args, np.ndarray) or np.isscalar(args):
        return (np.asarray(args),)
    return tuple(np.asarray(a) for a in args)


class OracleMismatch(AssertionError):
    """AssertionError raised by :func:`check_against_oracle`; ``.ulp`` is the worst distance."""

    def __init__(self, ulp: float, message: str):
        super().__init__(message)
        self.ulp = ulp


def check_against_oracle(fn: Callable[..., Any] | str, function: str, args: ArrayLike | tuple[ArrayLike, ...], max_ulp: float | None = None, *,
                         library: str | None = None, signed_zeros: bool = False) -> float:
    """Check ``fn`` on one input against the oracle; AssertionError with the evidence if not.

    Use it inside your own ``@given`` test, so that Hypothesis shrinks a failing input::

        @given(strategies.logit_vectors("float32"))
        def test_my_softmax(x):
            check_against_oracle(my_softmax, "softmax", x, max_ulp=2)

    Parameters
    ----------
    fn : callable or str
        As for :func:`audit`.
    function : str
        The contract function ``fn`` computes.
    args : array or tuple of arrays
        NumPy arrays of one of the four formats (``x``, ``(p,)`` or ``(p, q)``).
    max_ulp : float, optional
        Largest ULP distance allowed; default the library's own bound for the function and format
        (with its cancellation allowance).
    library : str, optional
        The array library ``fn`` takes (default guessed, see :func:`audit`).
    signed_zeros : bool
        Also require the oracle's sign of zero (default False).

    Returns
    -------
    float
        The largest ULP distance (for :func:`hypothesis.target`).

    Raises
    ------
    AssertionError
        If the result is farther than allowed, has the wrong shape or dtype, or (with
        ``signed_zeros``) a zero of the wrong sign. The message shows the input as exact hex
        floats, the worst element's index, expected and actual values in decimal and hex, and the
        ULP distance.
    """
    _check_function(function)
    max_ulp = checked_max_ulp(max_ulp)
    args = _as_args(args)
    floating = [a for a in args if not np.issubdtype(a.dtype, np.integer)]  # class indices stay
    fmt = result_format(*floating)
    args = tuple(a if np.issubdtype(a.dtype, np.integer) else a.astype(fmt.dtype) for a in args)
    call, lib, label, _ = _resolve_fn(fn, function, library)
    ev = _Evaluator(call, function, lib)
    want = ev.want(args)
    try:
        got, other = ev.got(args, fmt)
    except Exception as e:  # noqa: BLE001 - re-raised with the input and the hint
        hint = _hint(ev)
        if not hint:
            raise
        try:
            again = type(e)(f"{e} (on input {reproducer(*args, limit=16)}){hint}")
        except Exception:  # noqa: BLE001 - an exception type with another constructor
            raise e from None
        raise again from e
    where = f"{label} as {function} ({fmt.name})"
    if other is not None:
        raise OracleMismatch(math.inf, f"{where} returned {other} for {fmt.name} input; input: {reproducer(*args)}")
    if got.shape != want.shape:
        raise OracleMismatch(math.inf, f"{where} returned shape {got.shape}, expected {want.shape}; input: {reproducer(*args)}")
    c = compare(got, want)
    d, sign_zero = c.distance, c.wrong_sign_zero
    worst = float(d.max()) if d.size else 0.0
    ok = _within(function, fmt, got, want, args) if max_ulp is None else worst <= max_ulp
    g, w = got.astype(np.float64), want.astype(np.float64)
    if signed_zeros and sign_zero.any():
        ok = False
    if ok:
        return worst
    allowed = f"{max_ulp:g}" if max_ulp is not None else f"{bound_of(function, fmt)} (the library's bound)"
    key = np.where(sign_zero, 0.5, d) if worst == 0 else d
    i = np.unravel_index(int(np.argmax(key)), d.shape) if d.ndim else ()
    raise OracleMismatch(
        worst,
        f"{where} is {format_ulp(worst)} ULP from the correctly rounded result (allowed: {allowed})\n"
        f"  input:    {reproducer(*args)}\n"
        f"  at index: {tuple(int(j) for j in i)}\n"
        f"  expected: {_show(w[i], fmt)}\n"
        f"  got:      {_show(g[i], fmt)}\n"
        f"  distance: {format_ulp(float(d[i]))} ULP"
        + ("  (zero of the wrong sign)" if bool(sign_zero[i]) else "")
    )


def assert_matches_oracle(fn: Callable[..., Any] | str, function: str = "log_softmax", dtype: FormatLike = "float32", max_ulp: float | None = None, *,
                          families: Iterable[str] | None = None, n_examples: int = 100,
                          library: str | None = None, signed_zeros: bool = False) -> None:
    """Assert that ``fn`` stays within ``max_ulp`` of the oracle on the audit's inputs in ``dtype``.

    The fixed families are checked first (the worst failing one is reported); then Hypothesis
    draws ``n_examples`` inputs from the drawn families (derandomized: the same inputs every run),
    steers towards larger errors and, on a failure, **shrinks** it to a small input before raising
    the AssertionError of :func:`check_against_oracle` (input as hex floats, index, expected and
    actual values in decimal and hex, ULP distance).

    Call it from a plain pytest test (inside a ``@given`` test of your own, use
    :func:`check_against_oracle`)::

        def test_my_log_softmax():
            assert_matches_oracle(my_log_softmax, "log_softmax", "float32", max_ulp=2)
    """
    _check_function(function)
    max_ulp = checked_max_ulp(max_ulp)
    fmt = format_of(dtype)
    fams = tuple(families) if families is not None else _default_families(function)
    call, lib, label, _ = _resolve_fn(fn, function, library)

    def check(args):
        return check_against_oracle(call, function, args, max_ulp, library=lib, signed_zeros=signed_zeros)

    failures = []
    for fam in (f for f in fams if f in FIXED_FAMILIES):
        for args in _fixed_inputs(function, fam, fmt):
            try:
                check(args)
            except OracleMismatch as e:
                failures.append(e)
    if failures:
        raise max(failures, key=lambda e: e.ulp)
    drawn = [_strategy(function, f, fmt) for f in fams if f not in FIXED_FAMILIES]
    if not drawn or n_examples <= 0:
        return

    @settings(max_examples=n_examples, database=None, deadline=None, derandomize=True,
              phases=(Phase.explicit, Phase.generate, Phase.target, Phase.shrink),
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(drawn))
    def search(args):
        target(_bits(check(args)), label="bits of error")

    search()
