"""Bulk inputs: batches of rows drawn by NumPy, for the cells whose oracle has a certified fast path.

``softlog-numerics accuracy`` measures each cell on its hard cases and on Hypothesis draws (one
input per draw, steered towards large errors). Where the oracle answers tens of millions of
elements per second (float16, bfloat16 and float32, proofs/fast_oracle.md, Theorems F2, F6-F8),
:func:`batches` adds many more inputs at a small cost (and in float64 for the softlog and the
log-softmax family, whose oracle has a double-double fast path, Theorems F5 and F9): rows of one length stacked into one call, so
that the production function and the oracle each run once per batch. The rows come from the same
kinds of input as :mod:`softlog_numerics.testing.strategies`, drawn with a fixed seed:

* logits: normal entries at a log-uniform scale from 1e-3 to 200, some masked (``-inf``), ties of
  the maximum, a dominant class past the collapse gap;
* probabilities: normalised ``exp`` of normal draws at spreads up to 12 (near one-hot), exact
  zeros, uniform rows; pairs independent, equal, or close (``q`` a relative 1e-7 to 1e-1 from ``p``);
* cotangents: normal at scales ``2**-10 .. 2**10``, all ones, one-hot, and ``softmax(x)`` itself
  (the cancelling case of the log_softmax VJP);
* the softlog: the unit interval, its neighbourhood of the zero ``1/(e + 1)``, and ``[-0.156, 8]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from softlog_numerics._core.formats import Format, round_from_float64

__all__ = ["BULK_FUNCTIONS", "BULK_FUNCTIONS_FLOAT64", "batches", "has_bulk"]

BULK_FUNCTIONS = (
    "softlog", "logsumexp", "log_softmax", "softmax",
    "softlog_entropy", "softlog_cross_entropy", "sld", "sld_sym", "cross_entropy",
    "grad.logsumexp", "grad.log_softmax", "grad.softmax", "grad.softmax_jvp", "grad.cross_entropy",
)
"""The functions with bulk inputs (their oracles have a fast path in the narrow formats)."""
BULK_FUNCTIONS_FLOAT64 = ("softlog", "logsumexp", "log_softmax", "softmax")
"""Those of them whose oracle has a float64 fast path too (proofs/fast_oracle.md, Theorems F5, F9)."""


def has_bulk(function: str, fmt: Format) -> bool:
    """Whether ``function`` has bulk inputs in ``fmt`` (a fast oracle there)."""
    if fmt.precision > 24:
        return function in BULK_FUNCTIONS_FLOAT64
    return function in BULK_FUNCTIONS

_BATCH = 512  # rows per batch


def _logits(rng, m: int, n: int, fmt: Format, masked: bool = True) -> np.ndarray:
    scale = float(np.exp(rng.uniform(np.log(1e-3), np.log(200.0))))
    x = rng.standard_normal((m, n)) * scale
    if rng.random() < 0.2:
        x[np.arange(m), rng.integers(0, n, m)] += rng.uniform(20.0, 100.0)  # a dominant class
    if n > 1 and rng.random() < 0.2:
        x[:, 1] = x[:, 0]  # ties of the maximum
    if masked:
        x[:, 1:][rng.random((m, n - 1)) < 0.05] = -np.inf
    return round_from_float64(x, fmt)


def _probabilities(rng, m: int, n: int, fmt: Format) -> np.ndarray:
    kind = rng.integers(0, 4)
    if kind == 0:
        w = np.ones((m, n))
    else:
        w = np.exp(rng.standard_normal((m, n)) * rng.uniform(0.0, 12.0))
        if kind == 2:
            w[:, 1:][rng.random((m, n - 1)) < 0.3] = 0.0
    return round_from_float64(w / w.sum(axis=1, keepdims=True), fmt)


def _pair(rng, p: np.ndarray, fmt: Format) -> np.ndarray:
    kind = rng.integers(0, 3)
    if kind == 0:
        m, n = p.shape
        return _probabilities(rng, m, n, fmt)
    if kind == 1:
        return p.copy()
    c = p.astype(np.float64) * (1.0 + 10.0 ** rng.uniform(-7, -1) * rng.standard_normal(p.shape))
    c = np.abs(c)
    return round_from_float64(c / c.sum(axis=1, keepdims=True), fmt)


def _cotangents(rng, x: np.ndarray, fmt: Format) -> np.ndarray:
    m, n = x.shape
    kind = rng.integers(0, 4)
    if kind == 0:
        g = rng.standard_normal((m, n)) * 2.0 ** int(rng.integers(-10, 11))
    elif kind == 1:
        g = np.ones((m, n))
    elif kind == 2:
        g = np.zeros((m, n))
        g[np.arange(m), rng.integers(0, n, m)] = 1.0
    else:
        with np.errstate(all="ignore"):
            z = x.astype(np.float64)
            e = np.exp(z - z.max(axis=1, keepdims=True))
            g = np.nan_to_num(e / e.sum(axis=1, keepdims=True))
    return round_from_float64(g, fmt)


def _softlog_inputs(rng, m: int, fmt: Format) -> np.ndarray:
    kind = rng.integers(0, 3)
    if kind == 0:
        x = rng.random(m)
    elif kind == 1:
        x = 1.0 / (np.e + 1.0) + rng.standard_normal(m) * 10.0 ** rng.uniform(-8, -2)
    else:
        x = rng.uniform(-0.156, 8.0, m)
    return round_from_float64(x, fmt)


def _arguments(function: str, rng, m: int, n: int, fmt: Format) -> tuple:
    if function == "softlog":
        return (_softlog_inputs(rng, m * n, fmt).reshape(m, n),)
    if function in ("logsumexp", "log_softmax", "softmax"):
        return (_logits(rng, m, n, fmt),)
    if function == "softlog_entropy":
        return (_probabilities(rng, m, n, fmt),)
    if function in ("softlog_cross_entropy", "sld", "sld_sym"):
        p = _probabilities(rng, m, n, fmt)
        return p, _pair(rng, p, fmt)
    if function == "cross_entropy":
        return _logits(rng, m, n, fmt, masked=False), rng.integers(0, n, m)
    if function == "grad.cross_entropy":
        x = _logits(rng, m, n, fmt, masked=False)
        g = round_from_float64(rng.standard_normal(m) * 2.0 ** int(rng.integers(-10, 11)), fmt)
        return x, rng.integers(0, n, m), g
    x = _logits(rng, m, n, fmt)
    if function == "grad.logsumexp":
        return x, round_from_float64(rng.standard_normal(m), fmt)
    return x, _cotangents(rng, x, fmt)


def batches(function: str, fmt: Format, rows: int, seed: int = 0) -> Iterator[tuple]:
    """Argument tuples of ``function`` (one of :data:`BULK_FUNCTIONS`) in ``fmt``, each a batch of
    up to 512 rows of one length (2 to 64; ``softlog``: rows of 32 values), about
    ``rows`` rows in all, the same for a given ``seed``. The first axis of every argument is the
    row (cotangents and class indices of the reductions have one entry per row)."""
    if function not in BULK_FUNCTIONS:
        raise ValueError(f"no bulk inputs for {function!r}; choose from {', '.join(BULK_FUNCTIONS)}")
    rng = np.random.default_rng([seed, BULK_FUNCTIONS.index(function), fmt.bits, fmt.precision])
    done = 0
    while done < rows:
        m = min(_BATCH, rows - done)
        n = 32 if function == "softlog" else int(rng.integers(2, 65))
        with np.errstate(over="ignore"):
            yield _arguments(function, rng, m, n, fmt)
        done += m
