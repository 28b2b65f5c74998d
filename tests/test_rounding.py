"""The rounding tests of ``_core.rounding`` (proofs/log_softmax.md, Theorem LSE10 (a)-(c)), checked
against exact rational rounding."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from softlog_numerics._core.eft import blocked_row_sums
from softlog_numerics._core.formats import FORMATS, round_rational
from softlog_numerics._core.rounding import (
    decided_dd,
    fraction_bits,
    midpoint_radius_flags,
    round_dd,
)

NARROW = ["float16", "bfloat16", "float32"]


def _boundaries(fmt):
    """Midpoints of adjacent numbers of ``fmt``: in the first normal binade, around 1, across a
    power of two, below the largest finite number, and the overflow threshold."""
    p, h1 = fmt.precision, 2.0 ** (1 - fmt.precision)
    top = fmt.max + 2.0 ** (fmt.emax - p)
    return np.array([fmt.tiny * (1 + 1.5 * h1), 1.0 + h1 / 2, 2.0 - h1 / 2, 3.0 + 3 * h1, fmt.max - 2.0 ** (fmt.emax - p), top])


@pytest.mark.parametrize("name", NARROW)
def test_midpoint_radius_flags_finds_exactly_the_near_boundaries(name):
    """Values k float64 steps from a boundary (either sign, both directions) are flagged exactly
    when ``k <= radius``; values of the format itself never are."""
    fmt = FORMATS[name]
    q = fraction_bits(fmt)
    B = _boundaries(fmt)
    B = np.concatenate([B, -B])
    radius = 6
    for k in range(0, 12):
        for direction in (np.inf, 0.0):
            y = B.copy()
            for _ in range(k):
                y = np.nextafter(y, np.where(direction == 0.0, 0.0, np.copysign(np.inf, y)))
            Y = y[:, None]
            W = np.empty(Y.shape, dtype=np.int64)
            flags = midpoint_radius_flags(Y, W, np.full(Y.shape[0], radius - (1 << (q - 1))), np.full(Y.shape[0], radius), q)
            assert flags.tolist() == [k <= radius] * y.size, (name, k, direction)
    on_grid = np.array([[1.0, 1.5, fmt.max, fmt.tiny, -3.0]])
    W = np.empty(on_grid.shape, dtype=np.int64)
    assert not midpoint_radius_flags(on_grid, W, np.array([radius - (1 << (q - 1))]), np.array([radius]), q).any()
    assert not midpoint_radius_flags(_boundaries(fmt)[None, :], np.empty((1, 6), dtype=np.int64), np.array([-1 - (1 << (q - 1))]), np.array([-1]), q).any()


def _exact(h, l, name):
    return round_rational(*(Fraction(h) + Fraction(l)).as_integer_ratio(), name)


@pytest.mark.parametrize("name", NARROW)
def test_round_dd_is_the_rounding_of_the_exact_sum(name):
    """On and beside every boundary, with low parts of both signs, zero, and half a step."""
    fmt = FORMATS[name]
    B = _boundaries(fmt)[:-1]  # the overflow threshold: checked below
    h = np.concatenate([B, -B, np.nextafter(B, 0.0), np.nextafter(B, np.inf), [0.75, 2.0**-30]])
    for frac in (0.0, 0.5, -0.5, 1e-9, -1e-9, 0.25):
        l = frac * np.spacing(np.abs(h))
        got = round_dd(h, l, fmt)
        want = np.array([_exact(a, b, name) for a, b in zip(h.tolist(), l.tolist())])
        assert np.array_equal(got, want), (name, frac, h[got != want], got[got != want], want[got != want])
    top = fmt.max + 2.0 ** (fmt.emax - fmt.precision)
    got = round_dd(np.array([top, top]), np.array([-1e-300, 1e-300]), fmt)
    assert got.tolist() == [fmt.max, np.inf]


@pytest.mark.parametrize("name", NARROW)
def test_decided_dd_refuses_an_interval_that_holds_a_boundary(name):
    """An error bound that reaches a boundary is undecided; one that stops short is decided, with
    the rounding of the exact value."""
    fmt = FORMATS[name]
    mid = 1.0 + 2.0 ** -fmt.precision
    d = 2.0**-60
    yh = np.array([mid, mid, mid, mid])
    yl = np.array([d, d, -d, -d])
    err = np.array([2 * d, d / 4, 2 * d, d / 4])
    c, ok = decided_dd(yh, yl, err, fmt)
    assert ok.tolist() == [False, True, False, True]
    assert c[1] == 1.0 + 2.0 ** (1 - fmt.precision) and c[3] == 1.0


def test_blocked_row_sums_bound():
    """``d`` is ``ceil(c/256) + 29`` from 512 columns on (``c - 1`` below), and the sums are within
    ``gamma_d`` of the exact sums on rows built to maximise the rounding error (one large term and
    many that each round away)."""
    rng = np.random.default_rng(0)
    for c in (10, 511, 512, 1000, 32000, 32768):
        E = rng.random((3, c))
        E[1] = 1.0 + 2.0**-53 * 0.75  # every addition rounds
        E[2, 0] = 2.0**30
        s, d = blocked_row_sums(E)
        assert d == (c - 1 if c < 512 else -(-c // 256) + 29)
        for i in range(3):
            exact = sum(map(Fraction, E[i].tolist()))
            g = d * 2.0**-53 / (1 - d * 2.0**-53)
            assert abs(Fraction(float(s[i])) - exact) <= Fraction(g) * exact
