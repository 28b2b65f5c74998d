"""Bulk inputs of ``accuracy`` (softlog_numerics.testing.bulk): deterministic, well formed, and able
to fail a cell."""

from __future__ import annotations

import numpy as np
import pytest

from softlog_numerics import functions, oracle
from softlog_numerics._core.formats import FORMATS
from softlog_numerics.testing import accuracy
from softlog_numerics.testing.bulk import BULK_FUNCTIONS, batches


@pytest.mark.parametrize("function", BULK_FUNCTIONS)
def test_batches_are_deterministic_and_well_formed(function):
    fmt = FORMATS["bfloat16"]
    a = list(batches(function, fmt, 1100, seed=3))
    b = list(batches(function, fmt, 1100, seed=3))
    rows = 0
    for xa, xb in zip(a, b, strict=True):
        assert all(np.array_equal(np.asarray(u).view(np.uint8), np.asarray(v).view(np.uint8)) for u, v in zip(xa, xb))
        m = xa[0].shape[0]
        assert all(np.asarray(t).shape[0] == m for t in xa)
        assert xa[0].dtype == fmt.dtype
        rows += m
    assert rows == 1100
    # the production function accepts every batch (validated distributions, class indices, shapes)
    impl, _ = accuracy._implementations(function)
    with np.errstate(all="ignore"):
        impl(*a[0])


def test_unknown_function_is_refused():
    with pytest.raises(ValueError, match="no bulk inputs for 'softlog_inverse'"):
        next(batches("softlog_inverse", FORMATS["float32"], 10))


def test_bulk_rows_can_fail_a_cell(monkeypatch):
    """A production log_softmax 1 ULP off on 1 row in 1000 of the bulk (and never on the few
    Hypothesis examples drawn here) breaks the float32 cell, whose bound is 1: shown at 2 ULP."""
    real = functions.log_softmax

    def off(x, *args, **kw):
        y = np.array(real(x, *args, **kw))
        if y.ndim == 2 and y.shape[0] > 100:
            i = np.flatnonzero(np.isfinite(y.ravel()) & (y.ravel() != 0))[7]
            y.reshape(-1).view(np.uint32)[i] += 2  # two steps: 2 ULP away from the correctly rounded value
        return y

    monkeypatch.setattr(functions, "log_softmax", off)
    m = accuracy.measure("log_softmax", "float32", examples=1, bulk=2000)
    assert not m.passed and m.max_ulp == 2 and m.bulk_rows == 2000


def test_the_allowance_on_a_sub_batch_is_the_rows_allowance():
    """The bulk phase judges the rows beyond the ULP bound in one call; that call agrees with the
    row-by-row judgement, and one row far outside the allowance makes it fail. The production
    VJPs are now within 1 ULP (or correctly rounded) on NumPy-drawn batches, so the rows are built
    here: softmax VJPs of nearly uniform logits and nearly constant cotangents (``v_j`` about
    ``2**-30`` of ``tau_j``), evaluated with an error of ``20 * 2**-53 tau_j`` put in (inside the
    allowance of 25, far beyond 1 ULP)."""
    from softlog_numerics.testing.contract import (
        grad_term_scale,
        within_derivative_contract,
    )

    fmt = FORMATS["float32"]
    _, ref = accuracy._implementations("grad.softmax")
    rng = np.random.default_rng(1)
    R = 40
    x = (rng.integers(-2, 3, (R, 3)) * 2.0**-30).astype(np.float32)
    g = (1.0 + rng.integers(-2, 3, (R, 3)) * 2.0**-23).astype(np.float32)
    args = (x, g)
    v = np.asarray(oracle.grad.softmax(x.astype(np.float64), g.astype(np.float64)))
    got = (v + 20 * 2.0**-53 * grad_term_scale("grad.softmax", x, g)).astype(np.float32)
    want = np.asarray(ref(*args))
    d = accuracy.compare(got, want).distance.max(axis=1)
    over = np.flatnonzero(d > 1)
    assert over.size >= 2
    rows = [within_derivative_contract("grad.softmax", got[r : r + 1], want[r : r + 1],
                                       tuple(a[r : r + 1] for a in args))[0] for r in over]
    assert all(rows)  # the error put in is inside the allowance
    assert accuracy._within_allowance("grad.softmax", fmt, True, got, want, args, over)
    bad = got.copy()
    bad[over[0]] = -want[over[0]] * 3 + 1
    assert not accuracy._within_allowance("grad.softmax", fmt, True, bad, want, args, over)

