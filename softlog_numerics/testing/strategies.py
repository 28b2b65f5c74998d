"""Hypothesis strategies for the four formats, including bfloat16 (which Hypothesis lacks).

Every strategy takes the format first (a dtype, or one of the names ``"float16"``, ``"bfloat16"``,
``"float32"``, ``"float64"``) and returns NumPy values of exactly that dtype, so a test can say
``@given(floats("bfloat16"))`` as it would ``@given(st.floats(width=16))``.

Floats are drawn by their position in the ordered set of the format (:func:`~softlog_numerics.ulp.ordinal`),
which gives every binade the same weight; boundary values (zeros, the smallest subnormal and
normal, the largest finite, ±1) are mixed in. Shrinking goes towards ``+0`` and small positions.

Probability vectors and logit vectors come in named *families*, each aimed at a place where
implementations are known to fail (field-notes §2): a dominant logit at a gap near the format's
collapse gap, near ties, magnitudes near the overflow threshold, ``-inf`` masks, subnormal
outputs, all-equal rows, and wide rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from hypothesis import strategies as st
from numpy.typing import ArrayLike

from softlog_numerics._core.formats import FormatLike, format_of, round_from_float64
from softlog_numerics.testing.ulp import from_ordinal, ordinal

__all__ = [
    "COTANGENT_FAMILIES",
    "LOGIT_FAMILIES",
    "PAIR_KINDS",
    "PROBABILITY_FAMILIES",
    "cotangents",
    "floats",
    "logit_vectors",
    "probability_pairs",
    "probability_vectors",
    "unit_interval",
]

LOGIT_FAMILIES = (
    "random", "dominant", "near_tie", "huge", "masked", "subnormal", "all_equal", "range_edge", "wide",
)
"""Logit families drawn by :func:`logit_vectors` (``"wide"`` only when asked for by name)."""

COTANGENT_FAMILIES = ("one_hot", "ones", "normal", "scaled", "near_softmax", "near_constant")
"""Cotangent (and tangent) families drawn by :func:`cotangents`."""

PROBABILITY_FAMILIES = ("random", "near_one_hot", "one_hot", "uniform", "sparse")
"""Families drawn by :func:`probability_vectors`."""

X0 = 1.0 / (math.e + 1.0)  # zero of the softlog, to float64 precision (used only to aim draws)


def _value(o: int, fmt):
    """The value at position ``o`` (a NumPy scalar: compare it as ``float(...)``, since NumPy would
    round a Python float to the scalar's format before comparing)."""
    return from_ordinal(np.int64(o), fmt.dtype)[()]


def _pos(x: float, fmt) -> int:
    return int(ordinal(round_from_float64(np.float64(x), fmt)))


def floats(
    dtype: FormatLike,
    min_value: float | None = None,
    max_value: float | None = None,
    *,
    allow_nan: bool = False,
    allow_infinity: bool = False,
    allow_subnormal: bool = True,
) -> st.SearchStrategy[np.floating]:
    """Scalars of ``dtype`` in ``[min_value, max_value]`` (bounds rounded to the format, inclusive).

    Parameters
    ----------
    dtype : dtype or str
        One of float16, bfloat16, float32, float64.
    min_value, max_value : float, optional
        Inclusive bounds; default the whole finite range.
    allow_nan, allow_infinity : bool
        Mix in NaN and the infinities in range (default False).
    allow_subnormal : bool
        Whether subnormal numbers may be drawn (default True).

    Returns
    -------
    SearchStrategy of NumPy scalars of ``dtype``, uniform over the *positions* of the representable
    values in range (so every binade is equally likely), with the boundary values of the range and
    the format (±0, smallest subnormal and normal, ±1, the bounds) drawn more often.
    """
    fmt = format_of(dtype)
    lo = -_pos(fmt.max, fmt) if min_value is None else _pos(min_value, fmt)
    hi = _pos(fmt.max, fmt) if max_value is None else _pos(max_value, fmt)
    if min_value is not None and float(_value(lo, fmt)) < min_value:
        lo += 1
    if max_value is not None and float(_value(hi, fmt)) > max_value:
        hi -= 1
    if lo > hi:
        raise ValueError(f"no {fmt.name} value lies in [{min_value}, {max_value}]")
    special = [0.0, -0.0, fmt.min_subnormal, fmt.tiny, 1.0, -1.0, fmt.max, -fmt.max, -fmt.tiny]
    special = [s for s in special if float(_value(lo, fmt)) <= s <= float(_value(hi, fmt))]
    if not allow_subnormal:
        special = [s for s in special if s == 0 or abs(s) >= fmt.tiny]
    if allow_subnormal:
        ranges = [(lo, hi)]
    else:  # skip the positions of the subnormals, keep zero
        t = _pos(fmt.tiny, fmt)
        ranges = [(max(lo, t), hi), (lo, min(hi, -t))] + ([(0, 0)] if lo <= 0 <= hi else [])
        ranges = [(a, b) for a, b in ranges if a <= b]
    values = st.one_of([st.integers(a, b) for a, b in ranges]).map(lambda o: _value(o, fmt))
    boundary = [_value(lo, fmt), _value(hi, fmt)] + [
        round_from_float64(np.float64(s), fmt)[()] for s in special
    ]
    extra = []
    if allow_infinity:
        if max_value is None or max_value == math.inf:
            extra.append(fmt.dtype.type(math.inf))
        if min_value is None or min_value == -math.inf:
            extra.append(fmt.dtype.type(-math.inf))
    if allow_nan:
        extra.append(fmt.dtype.type(math.nan))
    return st.one_of(st.sampled_from(boundary + extra), values)


def unit_interval(dtype: FormatLike) -> st.SearchStrategy[np.floating]:
    """Scalars of ``dtype`` in ``[0, 1]``, with extra weight on 0, 1, tiny values and the
    neighbourhood of ``x0 = 1/(e+1)`` where the softlog crosses zero (±64 positions)."""
    fmt = format_of(dtype)
    centre = _pos(X0, fmt)
    near_x0 = st.integers(centre - 64, centre + 64).map(lambda o: _value(o, fmt))
    near_one = st.integers(_pos(1.0, fmt) - 64, _pos(1.0, fmt)).map(lambda o: _value(o, fmt))
    return st.one_of(floats(fmt, 0.0, 1.0), near_x0, near_one)


def _check_arguments(what: str, names, known, min_size: int, max_size: int) -> None:
    """ValueError, at construction time, for an unknown family/kind name or bad sizes."""
    for name in names:
        if name not in known:
            raise ValueError(f"unknown {what} {name!r}; choose from {known}")
    if not 0 <= min_size <= max_size:
        raise ValueError(f"need 0 <= min_size <= max_size, got {min_size}, {max_size}")


def _normalised(weights: np.ndarray, fmt) -> np.ndarray:
    """Weights (float64, >= 0, not all 0) divided by their sum, rounded once to ``fmt``."""
    p = weights / weights.sum()
    return round_from_float64(p, fmt)


def probability_vectors(
    dtype: FormatLike, min_size: int = 1, max_size: int = 16, *, family: str | None = None
) -> st.SearchStrategy[np.ndarray]:
    """Probability vectors of ``dtype``: entries in [0, 1] whose sum is 1 within one rounding per
    entry (at most ``u`` off, well inside :func:`softlog_numerics._core.axes.sum_tolerance`).

    Families (:data:`PROBABILITY_FAMILIES`; one is drawn unless ``family`` names it):
    ``random`` (positions-uniform weights, so entries span many binades), ``near_one_hot``
    (one entry ``1 - s`` with ``s`` tiny, the rest share ``s``), ``one_hot`` (exact), ``uniform``,
    ``sparse`` (random with exact zeros).
    """
    fmt = format_of(dtype)
    _check_arguments("probability family", [family] if family else [], PROBABILITY_FAMILIES, min_size, max_size)
    return _probability_vectors(fmt, min_size, max_size, family)


@st.composite
def _probability_vectors(draw, fmt, min_size, max_size, family):
    k = draw(st.integers(min_size, max_size))
    fam = family or draw(st.sampled_from(PROBABILITY_FAMILIES))
    if k == 0:
        return np.zeros(0, dtype=fmt.dtype)
    if fam == "one_hot" or k == 1:
        p = np.zeros(k)
        p[draw(st.integers(0, k - 1))] = 1.0
        return p.astype(fmt.dtype)
    if fam == "uniform":
        return _normalised(np.ones(k), fmt)
    if fam == "near_one_hot":
        s = float(draw(floats("float64", 2.0**-60, 2.0**-1, allow_subnormal=False)))
        rest = np.array([float(draw(floats("float64", 1e-3, 1.0))) for _ in range(k - 1)])
        p = np.empty(k)
        i = draw(st.integers(0, k - 1))
        p[np.arange(k) != i] = s * rest / rest.sum()
        p[i] = 1.0 - s
        return round_from_float64(p, fmt)
    lo = 2.0**-30 if fam == "random" else 0.0
    w = np.array([float(draw(floats("float64", lo, 1.0, allow_subnormal=False))) for _ in range(k)])
    if fam == "sparse":
        w[np.array(draw(st.lists(st.booleans(), min_size=k, max_size=k)))] = 0.0
    if not w.any():
        w[draw(st.integers(0, k - 1))] = 1.0
    return _normalised(w, fmt)


PAIR_KINDS = ("independent", "equal", "close", "disjoint", "one_hot_q")
"""Kinds of pairs drawn by :func:`probability_pairs`."""


def probability_pairs(
    dtype: FormatLike, min_size: int = 1, max_size: int = 16, *, kind: str | None = None
) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    """Pairs ``(p, q)`` of probability vectors of one length, in ``dtype``.

    Kinds (:data:`PAIR_KINDS`; one is drawn unless ``kind`` names it): ``independent`` draws;
    ``equal`` (``q == p``); ``close`` (``q`` a few positions away from ``p`` entrywise, then
    renormalised, so ``p - q`` is tiny: the cancellation case of the divergences); ``disjoint``
    one-hots (where ``sld`` and ``sld_sym`` reach 1); and ``one_hot_q`` (``q`` one-hot against a
    random ``p``).
    """
    fmt = format_of(dtype)
    _check_arguments("pair kind", [kind] if kind else [], PAIR_KINDS, min_size, max_size)
    return _probability_pairs(fmt, min_size, max_size, kind)


@st.composite
def _probability_pairs(draw, fmt, min_size, max_size, kind):
    kind = kind or draw(st.sampled_from(PAIR_KINDS))
    if kind == "disjoint":
        k = draw(st.integers(max(2, min_size), max(2, max_size)))
        i, j = draw(st.lists(st.integers(0, k - 1), min_size=2, max_size=2, unique=True))
        p, q = np.zeros(k), np.zeros(k)
        p[i], q[j] = 1.0, 1.0
        return p.astype(fmt.dtype), q.astype(fmt.dtype)
    p = draw(probability_vectors(fmt, min_size, max_size))
    k = p.size
    if kind == "equal":
        return p, p.copy()
    if kind == "close":
        steps = np.array(draw(st.lists(st.integers(-4, 4), min_size=k, max_size=k)), dtype=np.int64)
        q = from_ordinal(np.clip(ordinal(p) + steps, 0, ordinal(np.array(1.0, dtype=fmt.dtype))), fmt.dtype)
        q = _normalised(np.maximum(q.astype(np.float64), 0.0) + (q.astype(np.float64).sum() == 0), fmt)
        return p, q
    if kind == "one_hot_q":
        return p, draw(probability_vectors(fmt, k, k, family="one_hot"))
    return p, draw(probability_vectors(fmt, k, k))


def collapse_gap(dtype: FormatLike) -> float:
    """The logit gap ``p ln 2`` beyond which a two-class softmax sum rounds to 1 (field-notes §4)."""
    return format_of(dtype).precision * math.log(2.0)


def logit_vectors(
    dtype: FormatLike, min_size: int = 1, max_size: int = 64, *, families: Iterable[str] | None = None
) -> st.SearchStrategy[np.ndarray]:
    """Logit vectors of ``dtype`` from adversarial families (:data:`LOGIT_FAMILIES`).

    ``families`` restricts the choice (default: all but ``"wide"``). The families:

    ============== ============================================================
    ``random``     entries uniform in ``[-R, R]``, ``R`` drawn over many magnitudes;
    ``dominant``   one logit ahead of the rest by a gap drawn around the collapse gap ``p ln 2``
                   (the zone where 3-pass log_softmax returns 0 for the dominant class);
    ``near_tie``   entries within a few positions of the maximum, which is repeated;
    ``huge``       magnitudes within a factor 2 of the largest finite value (overflow of a naive
                   ``exp``, and of ``x - max``), both signs;
    ``masked``     some entries ``-inf`` (possibly all);
    ``subnormal``  gaps so large that the smaller softmax outputs are subnormal or underflow;
    ``all_equal``  one value repeated (softmax = 1/n exactly up to rounding);
    ``range_edge`` the edges of the format's range mixed in one row: entries within a factor 4 of
                   the largest finite value of both signs (differences that overflow), subnormals,
                   zeros and moderate values next to them, at least one entry huge;
    ``wide``       32000 to 33000 entries (only when named: the oracle needs ~1 s a row).
    ============== ============================================================
    """
    fmt = format_of(dtype)
    allowed = tuple(f for f in LOGIT_FAMILIES if f != "wide") if families is None else tuple(families)
    _check_arguments("logit family", allowed, LOGIT_FAMILIES, min_size, max_size)
    return _logit_vectors(fmt, min_size, max_size, allowed)


@st.composite
def _logit_vectors(draw, fmt, min_size, max_size, allowed):
    fam = draw(st.sampled_from(allowed))
    if fam == "wide":
        n = draw(st.integers(32000, 33000))
    else:
        n = draw(st.integers(min_size, max_size))
    if n == 0:
        return np.zeros(0, dtype=fmt.dtype)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    big = min(fmt.max, 1e4)
    if fam in ("random", "wide"):
        r = float(draw(floats("float64", 2.0**-10, big, allow_subnormal=False)))
        x = rng.uniform(-r, r, n)
    elif fam == "dominant":
        g = collapse_gap(fmt) * float(draw(st.floats(0.25, 2.5)))
        base = float(draw(st.floats(-min(fmt.max / 4, 1e3), min(fmt.max / 4, 1e3))))
        x = base - g - rng.exponential(2.0, n)
        x[draw(st.integers(0, n - 1))] = base
    elif fam == "near_tie":
        centre = float(draw(st.floats(-100.0, 100.0)))
        c = round_from_float64(np.float64(centre), fmt)
        steps = rng.integers(-3, 1, n)
        steps[draw(st.integers(0, n - 1))] = 0
        return from_ordinal(ordinal(c) + steps * (1 if c >= 0 else -1), fmt.dtype)
    elif fam == "huge":
        x = rng.uniform(0.5, 1.0, n) * fmt.max * rng.choice([-1.0, 1.0], n)
        x[draw(st.integers(0, n - 1))] = fmt.max * float(draw(st.floats(0.5, 1.0)))
    elif fam == "masked":
        x = rng.normal(0.0, 4.0, n)
        x[rng.random(n) < float(draw(st.floats(0.0, 1.0)))] = -np.inf
    elif fam == "subnormal":
        depth = -math.log(fmt.min_subnormal) * float(draw(st.floats(0.8, 1.1)))
        x = -rng.uniform(0.0, 1.0, n) * depth
        x[draw(st.integers(0, n - 1))] = 0.0
    elif fam == "range_edge":
        kind = rng.integers(0, 4, n)  # 0 huge, 1 subnormal, 2 zero, 3 moderate
        sign = rng.choice([-1.0, 1.0], n)
        huge = rng.uniform(0.25, 1.0, n) * fmt.max
        tiny = rng.integers(1, 1 << 10, n) * fmt.min_subnormal
        moderate = rng.normal(0.0, 30.0, n)
        x = np.choose(kind, [huge, tiny, np.zeros(n), moderate]) * sign
        x[draw(st.integers(0, n - 1))] = fmt.max * float(draw(st.floats(0.25, 1.0))) * float(draw(st.sampled_from([-1.0, 1.0])))
    else:  # all_equal
        x = np.full(n, float(draw(st.floats(-1e3, 1e3))))
    with np.errstate(over="ignore"):
        return round_from_float64(x, fmt)


def cotangents(
    dtype: FormatLike, x: ArrayLike, *, families: Iterable[str] | None = None
) -> st.SearchStrategy[np.ndarray]:
    """Cotangents ``g`` (or tangents ``dx``) of ``x``'s shape and ``dtype`` for the backward pass of
    the log-softmax family along the last axis, from families aimed at cancellation
    (:data:`COTANGENT_FAMILIES`):

    =================  ============================================================
    ``one_hot``        one 1 per row (the gradient of a cross-entropy term);
    ``ones``           all ones (the sum loss: the log_softmax VJP is ``1 - n p``);
    ``normal``         standard normal entries;
    ``scaled``         normal entries times ``2**k``, ``k`` drawn over most of the exponent range;
    ``near_softmax``   ``softmax(x)`` in float64, rounded to the format: ``g - p sum(g)`` nearly
                       cancels in every component;
    ``near_constant``  a constant plus a few entries one step away: ``g_j - sum(g p)`` nearly
                       cancels (exactly 0 for the softmax VJP where ``g`` is constant).
    =================  ============================================================
    """
    fmt = format_of(dtype)
    x = np.asarray(x)
    allowed = COTANGENT_FAMILIES if families is None else tuple(families)
    _check_arguments("cotangent family", allowed, COTANGENT_FAMILIES, 0, 0)
    return _cotangents(fmt, x, allowed)


@st.composite
def _cotangents(draw, fmt, x, allowed):
    fam = draw(st.sampled_from(allowed))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = x.shape
    n = shape[-1] if x.ndim else 1
    if x.size == 0:
        return np.zeros(shape, dtype=fmt.dtype)
    if fam == "one_hot":
        g = np.zeros(shape)
        idx = rng.integers(0, n, shape[:-1]) if x.ndim > 1 else rng.integers(0, n)
        np.put_along_axis(g.reshape(-1, n), np.reshape(idx, (-1, 1)), 1.0, axis=1)
    elif fam == "ones":
        g = np.ones(shape)
    elif fam == "normal":
        g = rng.normal(0.0, 1.0, shape)
    elif fam == "scaled":
        k = draw(st.integers(fmt.emin + fmt.precision, fmt.emax - 8))
        g = rng.normal(0.0, 1.0, shape) * 2.0**k
    elif fam == "near_softmax":
        with np.errstate(all="ignore"):
            z = x.astype(np.float64)
            z = z - np.max(z, axis=-1, keepdims=True)
            e = np.exp(z)
            g = e / np.sum(e, axis=-1, keepdims=True)
        g = np.nan_to_num(g, nan=0.0)
    else:  # near_constant: one value, some entries a step above it
        c = round_from_float64(np.float64(draw(st.floats(-8.0, 8.0))), fmt)
        steps = (rng.random(shape) < 0.3).astype(np.int64)
        return from_ordinal(ordinal(np.full(shape, c, dtype=fmt.dtype)) + steps, fmt.dtype)
    with np.errstate(over="ignore"):
        return round_from_float64(np.asarray(g, dtype=np.float64), fmt)
