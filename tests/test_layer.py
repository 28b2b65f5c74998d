"""The softlog-softmax layer against the correctly rounded oracle; shapes, weights, class order,
special values, validation and promotion.

Tolerance (proofs/divergence.md, Theorem D8): with ``Z = max_k sum_b |w[b, k] L(P[..., b, k])|``
and ``rho = 2**-61 (Z + 1)``, the result is within ``1 + floor(2**(p + 1) rho + 2**(p - 51) [p < 53])``
ULP of the oracle (``p`` the format's precision): 1 ULP in float16/bfloat16/float32 for any weights
used here, 1 ULP in float64 for ``Z <= 126``. Theorem D9 (the double-double exp): relative error
below ``2**-64``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from softlog_numerics import oracle
from softlog_numerics._core.formats import BFLOAT16, format_of
from softlog_numerics.functions import _layer as layer
from softlog_numerics.strategies import floats, probability_vectors
from softlog_numerics.ulp import ulp_distance

DTYPES = ["float16", "bfloat16", "float32", "float64"]
A = (math.e - 1 / math.e, 1 / math.e)


def _bound(P, w, dtype) -> float:
    """Theorem D8's ULP bound for these inputs."""
    fmt = format_of(dtype)
    P64 = P.astype(np.float64)
    w64 = w.astype(np.float64)
    w64 = np.broadcast_to(w64[:, None] if w64.ndim == 1 else w64, P64.shape[-2:])
    with np.errstate(divide="ignore", invalid="ignore"):
        L = np.log(A[0] * P64 + A[1])
    Z = float(np.abs(w64 * L).sum(axis=-2).max()) * (1 + 1e-12) if P64.size else 0.0
    rho = 2.0**-61 * (Z + 1)
    return 1 + math.floor(2.0 ** (fmt.precision + 1) * rho + (2.0 ** (fmt.precision - 51) if fmt.precision < 53 else 0))


def test_exp_double_double_relative_error():
    """Theorem D9: |E_dd 2**k - exp(x)| < 2**-64 exp(x) for x in [-1100, 1] (measured 2**-76.3)."""
    rng = np.random.default_rng(8)
    x = np.concatenate([-rng.random(500) * 1100, -rng.random(300) * 2, rng.random(50) - 0.5,
                        [0.0, -745.2, -708.4, -1e-20, 1e-20, -1100.0, 1.0]])
    xl = (rng.random(x.size) - 0.5) * 2.0**-53 * np.maximum(np.abs(x), 1e-300)
    eh, el, k = layer._exp_dd(x, xl)
    worst = 0.0
    with mpmath.workprec(300):
        for xi, li, h, l, ki in zip(x.tolist(), xl.tolist(), eh, el, k):
            exact = mpmath.exp(mpmath.mpf(xi) + mpmath.mpf(li))
            got = (mpmath.mpf(float(h)) + mpmath.mpf(float(l))) * mpmath.mpf(2) ** int(ki)
            worst = max(worst, float(abs(got / exact - 1)))
    assert worst < 2.0**-64, math.log2(worst)
    assert ((eh >= 0.99) & (eh <= 2.0)).all()


@st.composite
def layer_inputs(draw, dtype, max_b=3, max_k=12, scales=(1.0, 8.0, 64.0, 1000.0)):
    fmt = format_of(dtype)
    k = draw(st.integers(1, max_k))
    b = draw(st.integers(0, max_b))
    lead = draw(st.sampled_from([(), (2,)]))
    n = int(np.prod(lead, dtype=int)) * b
    vecs = [draw(probability_vectors(dtype, k, k)) for _ in range(n)]
    P = (np.stack(vecs) if vecs else np.zeros((0, k), dtype=fmt.dtype)).reshape(lead + (b, k))
    s = draw(st.sampled_from(scales))
    shape = draw(st.sampled_from([(b, k), (b,)]))
    size = int(np.prod(shape, dtype=int))
    w = np.array([draw(floats(dtype, -s, s, allow_subnormal=False)) for _ in range(size)], dtype=fmt.dtype)
    return P, w.reshape(shape)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_accuracy_against_oracle(dtype, log, data):
    P, w = data.draw(layer_inputs(dtype))
    got = layer.softlog_softmax(P, w, log=log)
    want = oracle.softlog_softmax(P, w, log=log)
    assert got.shape == want.shape == P.shape[:-2] + (P.shape[-1],) and got.dtype == want.dtype
    bound = _bound(P, w, dtype)
    d = ulp_distance(got, want)
    assert (d <= bound).all(), (d.max(), bound, P, w, got, want)
    zeros = (got == 0) & (want == 0)
    assert (np.signbit(got[zeros]) == np.signbit(want[zeros])).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_accuracy_large_weights_and_subnormal_outputs(dtype):
    """Weights that push probabilities into the subnormal range and log-probabilities near -0."""
    dt = format_of(dtype).dtype
    P = np.array([[[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]], [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]], dtype=dt)
    for w in ([[400.0, 1.0, 1.0], [0.5, 0.5, 0.5]], [60.0, -3.0], [[-200.0, 0.0, 300.0], [1.0, 2.0, 3.0]]):
        w = np.array(w, dtype=dt)
        for log in (False, True):
            got = layer.softlog_softmax(P, w, log=log)
            want = oracle.softlog_softmax(P, w, log=log)
            assert (ulp_distance(got, want) <= _bound(P, w, dtype)).all(), (w, log, got, want)
            zeros = (got == 0) & (want == 0)
            assert (np.signbit(got[zeros]) == np.signbit(want[zeros])).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_shapes_and_weight_forms(dtype):
    dt = format_of(dtype).dtype
    rng = np.random.default_rng(4)
    B, K = 3, 5
    for lead in [(), (4,), (2, 3)]:
        P = rng.dirichlet(np.ones(K), size=lead + (B,)).astype(dt)
        wb = rng.uniform(-2, 2, B).astype(dt)
        wbk = np.repeat(wb[:, None], K, axis=1)
        for log in (False, True):
            a = layer.softlog_softmax(P, wb, log=log)
            b = layer.softlog_softmax(P, wbk, log=log)
            assert a.shape == lead + (K,) and a.dtype == dt
            assert a.tobytes() == b.tobytes()  # (B,) weights are (B, K) weights, bit for bit
            assert (ulp_distance(a, oracle.softlog_softmax(P, wb, log=log)) <= _bound(P, wb, dtype)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_unit_weights_keep_class_order(dtype, data):
    """One member, unit weight: softmax(L(p)) is increasing in p (L is); the float result keeps
    the order up to one ULP (Theorem D8 (order)): p_i > p_j gives out_i >= pred(out_j), and
    p_i == p_j gives equal outputs bit for bit."""
    p = data.draw(probability_vectors(dtype, 1, 32))
    P = p.reshape(1, -1)
    w = np.ones(1, dtype=p.dtype)
    for log in (False, True):
        res = layer.softlog_softmax(P, w, log=log)
        out = res.astype(np.float64)
        pred = np.nextafter(res, np.array(-np.inf, dtype=res.dtype)).astype(np.float64)
        p64 = p.astype(np.float64)
        gt = p64[:, None] > p64[None, :]
        eq = p64[:, None] == p64[None, :]
        assert (out[:, None] >= pred[None, :])[gt].all()
        assert (out[:, None] == out[None, :])[eq].all()
        if not log:
            assert abs(out.sum() - 1) <= 2 * p.size * format_of(dtype).eps


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(dtype):
    dt = format_of(dtype).dtype
    one = np.ones(1, dtype=dt)
    cases = [
        (np.array([[1.0]]), [2.0], False, [1.0]),  # K = 1
        (np.array([[1.0]]), [2.0], True, [0.0]),  # +0
        (np.zeros((0, 4)), np.zeros(0), False, [0.25] * 4),  # B = 0: uniform
        (np.array([[0.25] * 4]), [3.0], False, [0.25] * 4),  # equal logits: 1/K
        (np.array([[0.5, 0.5], [0.3, 0.7]]), [[1.0, 1.0], [0.0, 0.0]], False, [0.5, 0.5]),
        (np.array([[np.nan, 1.0]]), [1.0], False, [np.nan, np.nan]),
        (np.array([[np.inf, 0.0]]), [1.0], True, [np.nan, np.nan]),
        (np.array([[-0.2, 1.2]]), [0.0], False, [np.nan, np.nan]),  # below the branch point, weight 0
        (np.array([[0.5, 0.5]]), [np.inf], False, [np.nan, np.nan]),
    ]
    for P, w, log, expected in cases:
        P = P.astype(dt)
        w = np.array(w, dtype=np.float64).astype(dt)
        got = layer.softlog_softmax(P, w, log=log, validate=False)
        want = np.array(expected, dtype=np.float64).astype(dt)
        assert (ulp_distance(got, want) == 0).all() and (np.signbit(got) == np.signbit(want)).all(), (P, w, got)
        assert (ulp_distance(got, oracle.softlog_softmax(P, w, log=log, validate=False)) == 0).all()
    # one third: 1/K rounded once
    got = layer.softlog_softmax(np.full((1, 3), 1 / 3).astype(dt), one, validate=False)
    assert (ulp_distance(got, oracle.round_to(Fraction(1, 3), dtype)) == 0).all()
    # K = 0 and no rows
    assert layer.softlog_softmax(np.zeros((2, 3, 0), dtype=dt), one.repeat(3), validate=False).shape == (2, 0)
    assert layer.softlog_softmax(np.zeros((0, 1, 2), dtype=dt), one).shape == (0, 2)
    # the dominant class of a log-softmax whose other classes are beyond exp's range: -0
    P = np.array([[1.0, 0.0]], dtype=dt)
    w = np.array([1000.0 if dtype != "float16" else 60000.0], dtype=dt)
    got = layer.softlog_softmax(P, w, log=True)
    want = oracle.softlog_softmax(P, w, log=True)
    assert got[0] == 0 and np.signbit(got[0]) == np.signbit(want[0]) and ulp_distance(got, want)[1] <= 1


def _message(f, *args, **kw):
    with pytest.raises(ValueError) as info:
        f(*args, **kw)
    return str(info.value)


def test_validation_messages_match_the_oracle():
    P = np.array([[[0.5, 0.5], [0.2, 0.8]], [[0.5, 0.5], [1.5, -0.5]]])
    w = np.ones(2)
    for args in [
        (P, w),
        (np.array([[[0.5, 0.5], [0.2, 0.7]]]), w),
        (P[:1], np.array([1.0, np.nan])),
        (np.array([0.5, 0.5]), np.ones(1)),
        (P, np.ones(3)),
        (P, np.ones((2, 3))),
    ]:
        msg = _message(layer.softlog_softmax, *args)
        assert msg == _message(oracle.softlog_softmax, *args)
    assert "P[1, 1, 0]" in _message(layer.softlog_softmax, P, w)
    msg = _message(layer.softlog_softmax, P, np.ones(3))
    assert "(3,)" in msg and "(2, 2, 2)" in msg
    with pytest.raises(TypeError):
        layer.softlog_softmax(P, np.ones(2, dtype=complex))


@pytest.mark.parametrize(
    "a, b, result",
    [("float16", "bfloat16", "float32"), ("bfloat16", "float16", "float32"), ("float16", "float64", "float64"),
     ("bfloat16", "float32", "float32"), ("float32", "int64", "float64"), ("bfloat16", "bfloat16", "bfloat16")],
)
def test_dtype_promotion(a, b, result):
    dta = BFLOAT16 if a == "bfloat16" else np.dtype(a)
    dtb = BFLOAT16 if b == "bfloat16" else np.dtype(b)
    P = np.array([[0.25, 0.75], [0.5, 0.5]]).astype(dta)
    w = np.array([1, 2]).astype(dtb)
    got = layer.softlog_softmax(P, w)
    assert got.dtype == format_of(result).dtype
    assert (ulp_distance(got, oracle.softlog_softmax(P, w)) <= 1).all()
