"""Axis handling and input validation shared by the implementations and the oracle.

Every reduction is computed on a 2-D view ``rows x n``: the reduced axes are moved to the end and
flattened. ``Rows`` remembers how to put a per-row result (reduction) or a per-element result
(log_softmax, softmax) back into the caller's shape.
"""

from __future__ import annotations

import math
from typing import TypeAlias

import numpy as np

from softlog_numerics._core.formats import (
    Format,
    as_float_array,
    format_of,
    result_format,
)

Axis: TypeAlias = int | np.integer | tuple[int | np.integer, ...] | list[int | np.integer] | None
"""An ``axis`` argument: one axis, several (a tuple or a list), or ``None`` for all of them."""


def checked_scalar(value, name: str, *, low: float, high: float = math.inf, open_low=False) -> float:
    """``value`` as a float in ``[low, high]`` (``(low, high]`` with ``open_low``), else a
    ValueError (TypeError for a non-number) naming the argument."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    below = v <= low if open_low else v < low
    if not math.isfinite(v) or below or v > high:
        interval = f"{'(' if open_low else '['}{low}, {high}]"
        raise ValueError(f"{name} must be finite and in {interval}, got {value!r}")
    return v


def checked_temperature(temperature) -> float | None:
    """A softmax temperature as a float64 ``T > 0`` (finite), or None for ``T = 1`` (no scaling);
    a ValueError or TypeError naming ``temperature`` otherwise. The float64 value is the exact
    temperature: logits are divided by it as real numbers."""
    t = checked_scalar(temperature, "temperature", low=0.0, open_low=True)
    return None if t == 1.0 else t


def normalize_axis(axis: Axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (int, tuple of ints, or None) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    elif not isinstance(axis, (tuple, list)):
        raise TypeError(f"axis must be an int, a tuple of ints or None, got {axis!r}")
    out = []
    for a in axis:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"axis must be an int, a tuple of ints or None, got {axis!r}")
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(f"axis {a} is out of bounds for an array of dimension {ndim}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis!r}")
    return tuple(sorted(out))


class Rows:
    """A 2-D ``(rows, n)`` view of ``x`` with the reduced axes last, and the way back."""

    def __init__(self, x: np.ndarray, axis):
        self.shape = x.shape
        self.axes = normalize_axis(axis, x.ndim)
        self.kept = tuple(a for a in range(x.ndim) if a not in self.axes)
        moved = np.transpose(x, self.kept + self.axes)
        self.moved_shape = moved.shape
        self.n = int(np.prod([x.shape[a] for a in self.axes], dtype=np.int64))
        self.rows = moved.reshape(-1, self.n) if self.n else np.empty((int(np.prod([x.shape[a] for a in self.kept], dtype=np.int64)), 0), x.dtype)

    def reduced(self, values: np.ndarray, keepdims: bool) -> np.ndarray:
        """Per-row results (length ``rows``) in the shape of a reduction over ``axes``."""
        out = values.reshape([self.shape[a] for a in self.kept])
        if keepdims:
            out = out.reshape([1 if a in self.axes else self.shape[a] for a in range(len(self.shape))])
        return out

    def elementwise(self, values: np.ndarray) -> np.ndarray:
        """A ``rows x n`` array of results back in the input's shape and axis order."""
        out = values.reshape(self.moved_shape)
        order = self.kept + self.axes
        return np.transpose(out, np.argsort(order))


def checked_cotangent(g, shape, name: str = "g") -> np.ndarray:
    """A cotangent (or tangent) ``g`` of the output's ``shape``, as exact float64 (every value of the
    four formats is a float64); TypeError for unsupported dtypes, ValueError naming both shapes."""
    g = as_float_array(g, name)
    if g.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} (the output's), got {g.shape}")
    with np.errstate(invalid="ignore"):  # signalling NaNs stay NaN, quietly
        return g.astype(np.float64)


def check_same_shape(p: np.ndarray, q: np.ndarray, pname: str = "p", qname: str = "q") -> None:
    if p.shape != q.shape:
        raise ValueError(f"{pname} and {qname} must have the same shape, got {p.shape} and {q.shape}")


def sum_tolerance(fmt) -> float:
    """How far a probability vector's sum may be from 1: ``sqrt(eps)`` of its format.

    float16 0.03125, bfloat16 0.0884, float32 3.45e-4, float64 1.49e-8: loose enough for a softmax
    computed in the format by any reasonable method, tight enough to reject logits or counts.
    """
    return float(np.sqrt(format_of(fmt).eps))


_ONE_BITS = {"float16": 0x3C00, "bfloat16": 0x3F80}
_SUM_TILE = 1 << 15  # entries per tile of the row sums in checked_row_sums


def entries_in_unit_interval(p: np.ndarray, fmt) -> bool:
    """True only if every entry of ``p`` is in ``[0, 1]`` (no NaN); False may also mean "not
    decided here" (a 16-bit ``-0.0``). One or two reductions in the input's own format."""
    if p.size == 0:
        return True
    if fmt.name in _ONE_BITS:  # sign bit clear and at most the bits of 1.0: [+0, 1], no NaN
        return int(p.view(np.uint16).max()) <= _ONE_BITS[fmt.name]
    if fmt.name in ("float32", "float64") and p.flags.c_contiguous:  # the same, on the bit patterns
        u = np.uint32 if fmt.name == "float32" else np.uint64
        return int(p.view(u).max()) <= int(np.array(1.0, dtype=p.dtype).view(u))
    with np.errstate(invalid="ignore"):
        return bool(p.min() >= 0) and bool(p.max() <= 1)


def checked_row_sums(p: np.ndarray, axis, name: str = "p", atol: float | None = None):
    """:func:`check_probabilities`, returning the float64 row sums of the ``Rows(p, axis)`` view
    (the very numbers it compares with 1) when they were computed tile by tile, else None.

    The tiles: when ``p`` is C-contiguous and ``axis`` names its trailing axes, row ``i`` of the
    view is contiguous and its sum is ``p_i.astype(float64).sum()`` whatever tile holds it (NumPy's
    pairwise summation of one contiguous row), so the sums, hence the decision and any message, are
    those of :func:`check_probabilities`; the extra memory is a tile (``2**15`` entries, or one
    row). In any other case, or when a check fails, :func:`check_probabilities` itself runs.
    """
    fmt = format_of(p.dtype)
    axes = normalize_axis(axis, p.ndim)
    trailing = axes == tuple(range(p.ndim - len(axes), p.ndim))
    if not (trailing and p.flags.c_contiguous and entries_in_unit_interval(p, fmt)):
        check_probabilities(p, axis, name, atol)
        return None
    tol = sum_tolerance(fmt) if atol is None else float(atol)
    rows = Rows(p, axis)
    if rows.n == 0:
        return np.zeros(rows.rows.shape[0])
    R = rows.rows
    step = max(1, _SUM_TILE // rows.n)
    s = np.empty(R.shape[0])
    for r0 in range(0, R.shape[0], step):
        s[r0 : r0 + step] = R[r0 : r0 + step].astype(np.float64).sum(axis=1)
    if (np.abs(s - 1.0) > tol).any():
        check_probabilities(p, axis, name, atol)  # raises, with the message it always gave
    return s


def check_probabilities(p: np.ndarray, axis, name: str = "p", atol: float | None = None) -> None:
    """ValueError naming the first offending index unless every vector along ``axis`` is a distribution.

    A distribution here: no NaN, every entry in [0, 1], and ``|sum - 1| <= atol`` (default
    :func:`sum_tolerance`; the sum is taken in float64). Vectors of length 0 are accepted: the
    entropies and divergences of them are empty sums, ``+0`` (as ``logsumexp`` of an empty row
    is ``log 0 = -inf``).
    """
    fmt = format_of(p.dtype)
    tol = sum_tolerance(fmt) if atol is None else float(atol)
    with np.errstate(invalid="ignore"):  # a signalling NaN must reach the ValueError below
        p64 = p.astype(np.float64)
    bad = np.isnan(p64) | (p64 < 0) | (p64 > 1)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must hold probabilities in [0, 1]; {name}[{', '.join(map(str, idx))}] = {p64[idx]!r}"
            " (pass validate=False to evaluate the formula anyway)"
        )
    rows = Rows(p64, axis)
    if rows.n == 0:  # distributions over no class: every sum over them is the empty sum, 0
        return
    s = rows.rows.sum(axis=1)
    off = np.abs(s - 1.0) > tol
    if off.any():
        r = int(np.argmax(off))
        kept_shape = [p.shape[a] for a in rows.kept]
        where = np.unravel_index(r, kept_shape) if kept_shape else ()
        label = ", ".join([str(int(i)) for i in where])
        axes = rows.axes if len(rows.axes) != 1 else rows.axes[0]
        raise ValueError(
            f"{name} must sum to 1 along axis {axes}: the sum at index ({label}) is {s[r]!r}, "
            f"off by {abs(s[r] - 1.0):.3g} > tolerance {tol:.3g} (sqrt(eps) of {fmt.name}); "
            "normalise it, or pass validate=False"
        )


def prepared_distributions(args, names, axis, validate: bool) -> tuple[Format, list[np.ndarray]]:
    """The inputs of an entropy or divergence, as the implementations and the oracle both take them:
    converted (TypeError for unsupported dtypes), of one shape (ValueError naming both shapes),
    if ``validate`` checked to be distributions along ``axis`` (each with the sum tolerance of its
    own format), then promoted to one format."""
    arrays = [as_float_array(a, n) for a, n in zip(args, names)]
    if len(arrays) == 2:
        check_same_shape(arrays[0], arrays[1], *names)
    if validate:  # each in its own format: a float16 p keeps float16's tolerance beside a float64 q
        for a, n in zip(arrays, names):
            check_probabilities(a, axis, n)
    fmt = result_format(*arrays)
    return fmt, [a.astype(fmt.dtype) for a in arrays]


def prepared_distributions_with_sums(args, names, axis, validate: bool):
    """:func:`prepared_distributions` (the same checks, errors and format), also returning, when
    ``validate`` computed them tile by tile, the float64 row sums of each input along ``axis``
    (:func:`checked_row_sums`; None otherwise). The arrays are not copied when already in the format."""
    arrays = [as_float_array(a, n) for a, n in zip(args, names)]
    if len(arrays) == 2:
        check_same_shape(arrays[0], arrays[1], names[0], names[1])
    sums = [None] * len(arrays)
    if validate:
        sums = [checked_row_sums(a, axis, n) for a, n in zip(arrays, names)]
    fmt = result_format(*arrays)
    return fmt, [a.astype(fmt.dtype, copy=False) for a in arrays], sums


def prepared_layer(P, w, validate: bool) -> tuple[Format, np.ndarray, np.ndarray]:
    """The inputs of the softlog-softmax layer: ``P`` of shape ``(..., B, K)`` and ``w`` of shape
    ``(B, K)`` or ``(B,)`` in one format; if ``validate``, ``P`` distributions along its last axis
    and ``w`` finite."""
    P = as_float_array(P, "P")
    w = as_float_array(w, "w")
    if P.ndim < 2:
        raise ValueError(f"P must have shape (..., B, K), got {P.shape}")
    B, K = P.shape[-2:]
    if w.shape not in ((B, K), (B,)):
        raise ValueError(
            f"w must have shape (B, K) = {(B, K)} or (B,) = {(B,)}, got {w.shape} (P has shape {P.shape})"
        )
    if validate:  # P in its own format, before promotion with w
        check_probabilities(P, -1, "P")
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(w.astype(np.float64)).all()
        if not finite:
            raise ValueError("w must be finite (pass validate=False to evaluate anyway)")
    fmt = result_format(P, w)
    P, w = P.astype(fmt.dtype), w.astype(fmt.dtype)
    return fmt, P, w
