"""The certified fast oracle for the VJPs of logsumexp, log_softmax and softmax and for the
cross-entropy gradient (proofs/fast_oracle.md, Theorem F8).

Bit-identity with the interval loop (``method="mpmath"``) on every logit × cotangent family of
``strategies``, on special rows and on random rows (targets with and without label smoothing,
masked logits, extreme cotangents); the error bound of the float64 estimate against mpmath; the
fallback, exercised by a bound made artificially loose.
"""

from __future__ import annotations

import math
import zlib

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics.oracle import fast_grad, fast_softmax, grad
from softlog_numerics.testing.strategies import (
    COTANGENT_FAMILIES,
    LOGIT_FAMILIES,
    cotangents,
    logit_vectors,
)

NARROW = ("float16", "bfloat16", "float32")
VJPS = ("logsumexp", "log_softmax", "softmax", "softmax_jvp")


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(format_of(a.dtype).uint)


def _assert_identical(f, *args, **kw) -> None:
    fast, slow = f(*args, **kw), f(*args, method="mpmath", **kw)
    assert fast.dtype == slow.dtype and fast.shape == slow.shape
    bad = np.flatnonzero(_bits(fast).ravel() != _bits(slow).ravel())
    assert bad.size == 0, f"{f.__name__}: fast {fast.ravel()[bad[:3]]} vs mpmath {slow.ravel()[bad[:3]]} for {args!r}"


def _vjp(name: str, x: np.ndarray, g: np.ndarray) -> None:
    if name == "logsumexp":
        _assert_identical(grad.logsumexp, x, g[..., 0])
    else:
        _assert_identical(getattr(grad, name), x, g)


@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", VJPS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_identical_to_mpmath_on_every_family(dtype, name, data):
    """Rows of 1-3 logit vectors of one family with cotangents of one family: the fast path returns
    the interval loop's bits (the cancelling families ``near_softmax`` and ``near_constant`` too)."""
    family = data.draw(st.sampled_from([f for f in LOGIT_FAMILIES if f != "wide"]))
    n = data.draw(st.integers(1, 24))
    x = np.stack([data.draw(logit_vectors(dtype, n, n, families=[family])) for _ in range(data.draw(st.integers(1, 3)))])
    g = data.draw(cotangents(dtype, x, families=[data.draw(st.sampled_from(COTANGENT_FAMILIES))]))
    _vjp(name, x, g)


@pytest.mark.parametrize("dtype", NARROW)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_cross_entropy_identical_on_every_family(dtype, data):
    """Class-index targets with label smoothing 0, 0.1 or 1/3 (not dyadic), and probability targets."""
    family = data.draw(st.sampled_from([f for f in LOGIT_FAMILIES if f != "wide"]))
    n = data.draw(st.integers(2, 24))
    rows = data.draw(st.integers(1, 3))
    x = np.stack([data.draw(logit_vectors(dtype, n, n, families=[family])) for _ in range(rows)])
    x64 = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        if np.isnan(x64).any() or (x64 == np.inf).any():
            x = np.where(np.isfinite(x64), x64, 0.0).astype(x.dtype)
    smoothing = data.draw(st.sampled_from([0.0, 0.1, 1 / 3]))
    g = np.array(data.draw(st.lists(st.floats(-4.0, 4.0, width=32), min_size=rows, max_size=rows)), dtype=x.dtype)
    if data.draw(st.booleans()):
        target = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=rows, max_size=rows)))
    else:
        w = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=rows * n, max_size=rows * n))).reshape(rows, n) + 1e-3
        target = (w / w.sum(axis=1, keepdims=True)).astype(x.dtype)
    finite = np.isfinite(x.astype(np.float64))
    if isinstance(target, np.ndarray) and target.dtype.kind == "i":
        target = np.where(finite[np.arange(rows), target], target, np.argmax(finite, axis=1))
    _assert_identical(grad.cross_entropy, x, target, g, label_smoothing=smoothing, validate=False)


def _special_rows(dtype) -> np.ndarray:
    f = FORMATS[dtype]
    big, tiny, sub = f.max, f.tiny, f.min_subnormal
    inf, nan = math.inf, math.nan
    table = [
        [0.0, -0.0, 0.0],  # equal entries: rational probabilities (the loop)
        [2.0, -inf, 2.0],
        [2.0, -inf, -inf],  # one finite entry
        [-inf, -inf, -inf],
        [nan, 0.0, 1.0],
        [inf, 0.0, 1.0],
        [big, -big, 0.0],
        [sub, -sub, 0.0],
        [tiny, sub, 0.0],
        [0.0, -1e4, -3e4],  # probabilities underflow
        [50.0, 0.0, -inf],  # a dominant class: q_k tiny
        [3.0, 2.5, -inf],
        [0.0, math.log(0.5), math.log(0.5)],
    ]
    return np.array(table).astype(f.dtype)


@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", VJPS)
def test_identical_on_special_rows(dtype, name):
    with np.errstate(over="ignore"):
        x = _special_rows(dtype)
    fmt = FORMATS[dtype]
    cots = [
        np.ones(x.shape),
        np.zeros(x.shape),
        np.array([[1.0, -1.0, 0.0]] * x.shape[0]),  # sum 0: the log_softmax VJP is g exactly
        np.array([[fmt.max, -fmt.max, fmt.min_subnormal]] * x.shape[0]),
        np.array([[np.nan, 1.0, 0.0]] + [[1.0, np.inf, 0.0]] + [[0.5, 0.25, 0.125]] * (x.shape[0] - 2)),
        np.array([[2.0**-1074, -(2.0**-1060), 1e300]] * x.shape[0]),  # float64 cotangents
    ]
    for g in cots:
        with np.errstate(over="ignore"):
            gg = g if g[0, 0] == 2.0**-1074 else g.astype(fmt.dtype)
        _vjp(name, x, gg)
    _vjp(name, x[:, :0], np.ones((x.shape[0], 0)) if name != "logsumexp" else np.ones((x.shape[0], 1)))


@pytest.mark.parametrize("dtype", NARROW)
def test_cross_entropy_identical_on_special_rows(dtype):
    with np.errstate(over="ignore"):
        x = _special_rows(dtype)
    rows = x.shape[0]
    for target in (np.zeros(rows, dtype=np.int64), np.full(rows, 1), np.full(rows, 2)):
        for smoothing in (0.0, 0.25, 0.1):
            for g in (np.ones(rows), np.zeros(rows), np.full(rows, -3.5), np.full(rows, 2.0**-140)):
                _assert_identical(grad.cross_entropy, x, target, g.astype(x.dtype), label_smoothing=smoothing, validate=False)
    target = np.full(rows, 1)
    target[0] = -100  # ignored row
    _assert_identical(grad.cross_entropy, x, target, np.ones(rows, dtype=x.dtype), validate=False)


@pytest.mark.parametrize("dtype", NARROW)
def test_identical_on_random_rows(dtype):
    rng = np.random.default_rng(20261207)
    fmt = FORMATS[dtype]
    for scale in (0.01, 3.0, 40.0):
        for n in (2, 7, 100):
            x = rng.standard_normal((8, n)) * scale
            x[rng.random(x.shape) < 0.1] = -np.inf
            x[:, 0] = np.maximum(x[:, 0], 0.0)
            x = x.astype(fmt.dtype)
            g = rng.standard_normal((8, n)).astype(fmt.dtype)
            for name in VJPS:
                _vjp(name, x, g)
            xf = np.where(np.isneginf(x.astype(np.float64)), -30.0, x.astype(np.float64)).astype(fmt.dtype)
            target = rng.integers(0, n, 8)
            for smoothing in (0.0, 0.1):
                _assert_identical(grad.cross_entropy, xf, target, g[:, 0], label_smoothing=smoothing)
            _assert_identical(grad.cross_entropy, x, np.zeros(8, dtype=np.int64), g[:, 0])  # class 0 is never masked


def test_method_is_honoured():
    x = np.array([[1.0, 2.0, 4.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="method must be 'auto' or 'mpmath'"):
        grad.softmax(x, x, method="fast")
    with pytest.raises(ValueError, match="name must be one of"):
        fast_grad.vjp_rows("sld", x.astype(np.float64), x.astype(np.float64), FORMATS["float32"])
    # the loop on both sides: z-loss and temperature have no fast path
    _assert_identical(grad.cross_entropy, x, np.array([1]), np.ones(1, dtype=np.float32), z_loss=1e-4)
    _assert_identical(grad.cross_entropy, x, np.array([1]), np.ones(1, dtype=np.float32), temperature=0.3)


# ---------------------------------------------------------------------------------------------
# Theorem F8: the bound and the fallback


def _exact_vjp(name, row, g):
    e = [mpmath.exp(mpmath.mpf(t)) for t in row]
    total = mpmath.fsum(e)
    p = [v / total for v in e]
    gm = [mpmath.mpf(v) for v in g]
    if name == "logsumexp":
        return [gm[0] * v for v in p]
    if name == "log_softmax":
        S = mpmath.fsum(gm)
        return [gj - pj * S for gj, pj in zip(gm, p)]
    c = mpmath.fsum(gj * pj for gj, pj in zip(gm, p))
    return [pj * (gj - c) for gj, pj in zip(gm, p)]


@pytest.mark.parametrize("name", ("logsumexp", "log_softmax", "softmax"))
def test_estimate_error_bound(name):
    """``|exact - v| <= r`` against a 400-bit mpmath evaluation (``g_j - sum g p`` cancels by up
    to 90 bits for a dominant class, so 120 bits would not do), on long rows, wide spreads, a
    dominant class, and cotangents spanning many binades."""
    rng = np.random.default_rng(7)
    rows = [
        (rng.standard_normal((3, 100)) * 30, rng.standard_normal((3, 100))),
        (rng.standard_normal((3, 2000)), rng.standard_normal((3, 2000)) * 2.0 ** rng.integers(-40, 40, (3, 2000))),
        (np.array([[60.0, 0.0, -1.0, 2.0**-126]]), np.array([[1.0, 1.0, 1.0, 1.0]])),
        (np.array([[60.0, 0.0, -1.0, 2.0]]), np.array([[1.0, 0.0, 0.0, 0.0]])),
    ]
    for x, g in rows:
        x = x.astype(np.float32).astype(np.float64)
        g = g.astype(np.float32).astype(np.float64)
        gg = g[:, 0].copy() if name == "logsumexp" else g
        v, r = fast_grad.vjp_estimate(name, x, gg)
        with mpmath.workprec(400):
            for i in range(x.shape[0]):
                exact = _exact_vjp(name, x[i].tolist(), g[i].tolist())
                for j in range(0, x.shape[1], max(1, x.shape[1] // 40)):
                    err = abs(mpmath.mpf(v[i, j]) - exact[j])
                    assert err <= r[i, j], f"{name} row {i} entry {j}: error {float(err):.3e} > bound {r[i, j]:.3e}"


def test_cross_entropy_estimate_error_bound():
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((4, 300)) * 8).astype(np.float32).astype(np.float64)
    x[0, 5] = 80.0  # a dominant class with the target on it
    tgt = np.array([5, 7, 0, 299])
    for smoothing in (0.0, 0.1):
        eps = smoothing / x.shape[1]
        t = np.full(x.shape, eps)
        t[np.arange(4), tgt] += 1 - smoothing
        g = np.array([1.0, -2.5, 1e-3, 3.0])
        v, r = fast_grad.cross_entropy_estimate(x, t, np.zeros_like(t), g)
        with mpmath.workprec(400):
            for i in range(4):
                e = [mpmath.exp(mpmath.mpf(z)) for z in x[i].tolist()]
                total = mpmath.fsum(e)
                for j in list(range(0, 300, 10)) + [int(tgt[i])]:
                    exact = mpmath.mpf(g[i]) * (e[j] / total - mpmath.mpf(t[i, j]))
                    assert abs(mpmath.mpf(v[i, j]) - exact) <= r[i, j]


def test_complement_at_the_argmax():
    """``q_k = s / (1 + s)`` with its bound (Theorem F8, step 1), tiny for a dominant class."""
    x = np.array([[80.0, 0.0, -3.0], [0.5, 0.25, 0.0]])
    tile = fast_softmax.SoftmaxTile(x, x.max(axis=1), x.min(axis=1))
    v, r = tile.complement()
    with mpmath.workprec(120):
        for i in range(2):
            k = int(np.argmax(x[i]))
            s = mpmath.fsum(mpmath.exp(mpmath.mpf(z - x[i, k])) for j, z in enumerate(x[i]) if j != k)
            assert abs(mpmath.mpf(v[i]) - s / (1 + s)) <= r[i] and r[i] <= 2.0**-44 * v[i] + 2.0**-990


@pytest.mark.parametrize("dtype", NARROW)
def test_fallback_rows_are_the_mpmath_ones(dtype, monkeypatch):
    """With the libm bound made 2**-12 (so that many roundings are undecided), the undecided rows go
    to the interval loop and the result is still bit-identical."""
    monkeypatch.setattr(fast_softmax, "_W", 2.0**-12)
    rng = np.random.default_rng(3)
    fmt = FORMATS[dtype]
    x = (rng.standard_normal((40, 5)) * 4).astype(fmt.dtype)
    g = rng.standard_normal((40, 5)).astype(fmt.dtype)
    _, todo = fast_grad.vjp_rows("log_softmax", x.astype(np.float64), g.astype(np.float64), fmt)
    assert todo.size > 0
    for name in VJPS:
        _vjp(name, x, g)
    _assert_identical(grad.cross_entropy, x, rng.integers(0, 5, 40), g[:, 0], label_smoothing=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", VJPS + ("cross_entropy",))
def test_million_random_entries_identical(dtype, name):
    """10**6 entries per function and format (rows of 2 to 64 logits over many scales, masked
    entries, ties of the maximum, cotangents of every magnitude), fast path against the loop."""
    fmt = FORMATS[dtype]
    rng = np.random.default_rng(zlib.crc32(f"grad {dtype} {name}".encode()))
    total = 0
    while total < 10**6:
        n = int(rng.integers(2, 65))
        rows = max(1, 4096 // n)
        scale = float(np.exp(rng.uniform(np.log(1e-3), np.log(200.0))))
        x = rng.standard_normal((rows, n)) * scale
        if name != "cross_entropy":
            x[rng.random(x.shape) < 0.05] = -np.inf
        if rng.random() < 0.2:
            x[:, 1] = x[:, 0]
        x = x.astype(fmt.dtype)
        g = (rng.standard_normal((rows, n)) * 2.0 ** rng.integers(-10, 10)).astype(fmt.dtype)  # no float16 overflow
        if name == "cross_entropy":
            _assert_identical(grad.cross_entropy, x, rng.integers(0, n, rows), g[:, 0], label_smoothing=float(rng.choice([0.0, 0.1])))
        else:
            _vjp(name, x, g)
        total += x.size


@pytest.mark.parametrize("dtype", NARROW)
def test_cross_entropy_signs_of_underflowing_results(dtype):
    """Theorem F8, step 5': with targets exactly 0 and 1 the signs are known, so results that
    underflow (a dominant class: ``p_0 - 1 = -q_0`` far below the smallest subnormal) are decided
    without the loop: ``-0`` on the target, ``+0`` elsewhere, and for ``g < 0`` the other way."""
    fmt = FORMATS[dtype]
    x = np.array([[0.0, -float(fmt.max)], [1.0, -6e4]]).astype(fmt.dtype).astype(np.float64)
    t = np.array([[1.0, 0.0], [1.0, 0.0]])
    for g in (1.0, -2.0):
        vals, todo = fast_grad.cross_entropy_grad_rows(x, t, np.zeros_like(t), np.full(2, g), fmt, exact_targets=True)
        assert todo.size == 0
        assert np.all(vals == 0) and np.all(np.signbit(vals[:, 0]) == (g > 0)) and np.all(np.signbit(vals[:, 1]) == (g < 0))
    xx = x.astype(fmt.dtype)
    _assert_identical(grad.cross_entropy, xx, np.zeros(2, dtype=np.int64), np.full(2, -2.0).astype(fmt.dtype))


# ---------------------------------------------------------------------------------------------
# Theorem F8, step 8: the loss


@pytest.mark.parametrize("dtype", NARROW)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_loss_identical_on_every_family(dtype, data):
    """``oracle.cross_entropy``: class indices with label smoothing 0, 0.1 or 1/3, and probability
    targets (some rows all zero), on every logit family."""
    from softlog_numerics import oracle

    family = data.draw(st.sampled_from([f for f in LOGIT_FAMILIES if f != "wide"]))
    n = data.draw(st.integers(1, 24))
    rows = data.draw(st.integers(1, 3))
    x = np.stack([data.draw(logit_vectors(dtype, n, n, families=[family])) for _ in range(rows)])
    smoothing = data.draw(st.sampled_from([0.0, 0.1, 1 / 3]))
    if data.draw(st.booleans()):
        target = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=rows, max_size=rows)))
    else:
        w = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=rows * n, max_size=rows * n))).reshape(rows, n)
        target = w.astype(x.dtype)
    _assert_identical(oracle.cross_entropy, x, target, label_smoothing=smoothing, validate=False)


@pytest.mark.parametrize("dtype", NARROW)
def test_loss_identical_on_special_and_random_rows(dtype):
    from softlog_numerics import oracle

    fmt = FORMATS[dtype]
    with np.errstate(over="ignore"):
        x = _special_rows(dtype)
    for target in (np.zeros(x.shape[0], dtype=np.int64), np.full(x.shape[0], 2)):
        for smoothing in (0.0, 0.25, 0.1):
            _assert_identical(oracle.cross_entropy, x, target, label_smoothing=smoothing, validate=False)
    target = np.full(x.shape[0], 1)
    target[0] = -100
    _assert_identical(oracle.cross_entropy, x, target, validate=False)
    rng = np.random.default_rng(8)
    for scale in (0.01, 3.0, 40.0):
        for n in (2, 7, 100):
            z = (rng.standard_normal((8, n)) * scale).astype(fmt.dtype)
            _assert_identical(oracle.cross_entropy, z, rng.integers(0, n, 8), label_smoothing=0.1)
            p = rng.random((8, n))
            _assert_identical(oracle.cross_entropy, z, (p / p.sum(axis=1, keepdims=True)).astype(fmt.dtype))
    with pytest.raises(ValueError, match="method must be 'auto' or 'mpmath'"):
        oracle.cross_entropy(z, np.zeros(8, dtype=np.int64), method="fast")


def test_loss_estimate_error_bound():
    """``|loss - v| <= r`` (step 8) against 200-bit mpmath, with smoothed and probability targets
    on long rows and wide spreads; and the bound is not vacuous (below ``2**-40 v``)."""
    rng = np.random.default_rng(12)
    for scale, n in ((30.0, 100), (1.0, 3000), (200.0, 40)):
        x = (rng.standard_normal((3, n)) * scale).astype(np.float32).astype(np.float64)
        t = rng.random((3, n))
        t /= t.sum(axis=1, keepdims=True)
        m = x.max(axis=1)
        q = fast_softmax.SoftmaxTile(x, m, x.min(axis=1))
        v, r, positive = fast_grad._loss(x, t, np.zeros_like(t), q, np.isneginf(x), True)
        assert positive.all()
        with mpmath.workprec(200):
            for i in range(3):
                row = [mpmath.mpf(z) for z in x[i]]
                lse = mpmath.log(mpmath.fsum(mpmath.exp(z - row[0]) for z in row)) + row[0]
                exact = mpmath.fsum(mpmath.mpf(tj) * (lse - z) for tj, z in zip(t[i], row))
                assert abs(mpmath.mpf(v[i]) - exact) <= r[i] <= 2.0**-40 * v[i]


def test_loss_fallback_rows_are_the_loops(monkeypatch):
    """With the libm bound made 2**-20 some rows fall back; the result is still the loop's."""
    from softlog_numerics import oracle

    monkeypatch.setattr(fast_softmax, "_W", 2.0**-20)
    rng = np.random.default_rng(10)
    x = (rng.standard_normal((60, 50)) * 6).astype(np.float32)
    y = rng.integers(0, 50, 60)
    t_hi = np.zeros((60, 50))
    t_hi[np.arange(60), y] = 1.0
    _, todo = fast_grad.cross_entropy_loss_rows(x.astype(np.float64), t_hi, np.zeros_like(t_hi), FORMATS["float32"], True)
    assert 0 < todo.size < 60
    _assert_identical(oracle.cross_entropy, x, y)
