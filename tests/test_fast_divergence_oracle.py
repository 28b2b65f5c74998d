"""The certified fast oracle for the softlog entropy, cross-entropy and divergences
(proofs/fast_oracle.md, Theorem F7).

Bit-identity with the interval loop (``method="mpmath"``) on every pair kind of ``strategies``, on
a table of special rows and on random rows; the error bound of the float64 estimate against
mpmath; exact-zero rows; and the fallback, exercised by a bound made artificially loose.
"""

from __future__ import annotations

import math
import zlib

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics.oracle import fast_divergence
from softlog_numerics.testing.strategies import PAIR_KINDS, probability_pairs

NARROW = ("float16", "bfloat16", "float32")
NAMES = ("softlog_entropy", "softlog_cross_entropy", "sld", "sld_sym")
KIND = dict(zip(NAMES, fast_divergence.KINDS))


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(format_of(a.dtype).uint)


def _call(name: str, p, q, **kw):
    f = getattr(oracle, name)
    return f(p, **kw) if name == "softlog_entropy" else f(p, q, **kw)


def _assert_identical(name: str, p: np.ndarray, q: np.ndarray, **kw) -> None:
    fast, slow = _call(name, p, q, **kw), _call(name, p, q, method="mpmath", **kw)
    assert fast.dtype == slow.dtype and fast.shape == slow.shape
    bad = np.flatnonzero(_bits(fast).ravel() != _bits(slow).ravel())
    assert bad.size == 0, f"{name} {p.dtype}: fast {fast.ravel()[bad[:3]]} vs mpmath {slow.ravel()[bad[:3]]} for p, q = {p!r}, {q!r}"


@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_identical_to_mpmath_on_every_family(dtype, name, data):
    """Rows of 1-3 probability pairs of one kind (close pairs: the cancelling case): the fast path
    returns the interval loop's bits."""
    kind = data.draw(st.sampled_from(PAIR_KINDS))
    n = data.draw(st.integers(1, 24))
    pairs = [data.draw(probability_pairs(dtype, n, n, kind=kind)) for _ in range(data.draw(st.integers(1, 3)))]
    p, q = np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])
    _assert_identical(name, p, q)


def _special_rows(dtype) -> tuple[np.ndarray, np.ndarray]:
    f = FORMATS[dtype]
    big, sub = f.max, f.min_subnormal
    inf, nan = math.inf, math.nan
    below = -0.25  # below the branch point -1/(e**2 - 1) = -0.1565
    table = [
        ([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]),  # p == q: exact zero divergences
        ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]),  # one-hot, disjoint: exact rationals
        ([0.0, 0.0, 0.0], [0.2, 0.3, 0.5]),  # p == 0: exact zero entropy and cross-entropy
        ([-0.0, 1.0, 0.0], [0.0, 1.0, -0.0]),  # signed zeros
        ([sub, 1.0, 0.0], [0.0, 1.0, sub]),  # subnormal entries: tiny divergences
        ([nan, 0.5, 0.5], [0.2, 0.3, 0.5]),
        ([0.2, 0.3, 0.5], [inf, 0.5, 0.5]),
        ([-inf, 0.5, 0.5], [0.2, 0.3, 0.5]),
        ([below, 0.5, 0.5], [0.2, 0.3, 0.5]),  # outside the domain: NaN where evaluated
        ([0.2, 0.3, 0.5], [below, 0.5, 0.5]),
        ([big, -big, 1.0], [1.0, big, 0.0]),  # far outside the simplex
        ([0.2689, 0.7311, 0.0], [0.2689, 0.2689, 0.4622]),  # near the root of L
        ([0.25, 0.25, 0.5], [0.25, 0.25 + 2.0**-10, 0.5 - 2.0**-10]),
    ]
    p = np.array([a for a, _ in table]).astype(f.dtype)
    q = np.array([b for _, b in table]).astype(f.dtype)
    return p, q


@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", NAMES)
def test_identical_on_special_rows(dtype, name):
    with np.errstate(over="ignore"):
        p, q = _special_rows(dtype)
    kw = {"validate": False}
    _assert_identical(name, p, q, **kw)
    _assert_identical(name, p.T.copy(), q.T.copy(), axis=0, **kw)  # along another axis
    _assert_identical(name, p[:, :0], q[:, :0], **kw)  # empty rows
    _assert_identical(name, p[:, :1], q[:, :1], **kw)  # one entry per row
    _assert_identical(name, p, q, keepdims=True, **kw)


@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", NAMES)
def test_identical_on_random_rows(dtype, name):
    """Random distributions of mixed lengths and spreads, and close pairs (``q`` a relative 1e-3 or
    1e-6 from ``p``, where sld cancels)."""
    rng = np.random.default_rng(20261207)
    fmt = FORMATS[dtype]
    for n in (2, 7, 100):
        for spread in (0.1, 3.0, 12.0):
            w = np.exp(rng.standard_normal((8, n)) * spread)
            p = (w / w.sum(axis=1, keepdims=True)).astype(fmt.dtype)
            v = np.exp(rng.standard_normal((8, n)) * spread)
            q = (v / v.sum(axis=1, keepdims=True)).astype(fmt.dtype)
            _assert_identical(name, p, q)
            for eps in (1e-3, 1e-6):
                c = p.astype(np.float64) * (1 + eps * rng.standard_normal((8, n)))
                _assert_identical(name, p, (c / c.sum(axis=1, keepdims=True)).astype(fmt.dtype))


def test_method_is_honoured():
    p = np.array([[0.25, 0.75]], dtype=np.float32)
    with pytest.raises(ValueError, match="method must be 'auto' or 'mpmath'"):
        oracle.sld(p, p, method="fast")
    with pytest.raises(ValueError, match="kind must be one of"):
        fast_divergence.divergence_rows("kl", p.astype(np.float64), p.astype(np.float64), FORMATS["float32"])


# ---------------------------------------------------------------------------------------------
# Theorem F7: the bound, exact zeros, the fallback


@pytest.mark.parametrize("name", NAMES)
def test_estimate_error_bound(name):
    """``|exact - v| <= r`` against a 120-bit mpmath evaluation, on rows whose errors are largest:
    long rows (the tree sum), entries over many binades, far outside the simplex (``validate=False``),
    and close pairs. The bound is not vacuous: ``r <= 2**-42`` times the sum of the terms' magnitudes."""
    rng = np.random.default_rng(17)
    w = np.exp(rng.standard_normal((3, 4000)) * 4)
    rows = [
        (w, np.exp(rng.standard_normal((3, 4000)) * 4)),
        (w, w * (1 + 1e-4 * rng.standard_normal(w.shape))),
        (rng.uniform(-0.15, 1e4, (3, 50)), rng.uniform(-0.15, 1e4, (3, 50))),
        (np.array([[2.0**-149, 1.0, 0.0, 0.2689]]), np.array([[0.0, 2.0**-126, 1.0, 0.2690]])),
    ]
    kind = KIND[name]
    for p, q in rows:
        p = p.astype(np.float32).astype(np.float64)
        q = q.astype(np.float32).astype(np.float64)
        v, r = fast_divergence.divergence_estimate(kind, p, q)
        with mpmath.workprec(120):
            a, b = mpmath.e - 1 / mpmath.e, 1 / mpmath.e

            def L(x):
                return mpmath.log(a * mpmath.mpf(x) + b)

            for i in range(p.shape[0]):
                terms, mags = [], []
                for pi, qi in zip(p[i], q[i]):
                    lp, lq = L(pi), L(qi)
                    if kind == "entropy":
                        c, t = mpmath.mpf(pi), -mpmath.mpf(pi) * lp
                    elif kind == "cross":
                        c, t = mpmath.mpf(pi), -mpmath.mpf(pi) * lq
                    elif kind == "sld":
                        c = mpmath.mpf(pi) / 2
                        t = c * (lp - lq)
                    else:
                        c = (mpmath.mpf(pi) - mpmath.mpf(qi)) / 4
                        t = c * (lp - lq)
                    terms.append(t)
                    mags.append(abs(c) * (abs(lp) + abs(lq)))
                err = abs(mpmath.mpf(v[i]) - mpmath.fsum(terms))
                assert err <= r[i], f"{name} row {i}: error {float(err):.3e} > bound {r[i]:.3e}"
                assert r[i] <= 2.0**-44 * float(mpmath.fsum(mags)) + p.shape[1] * 2.0**-999


@pytest.mark.parametrize("dtype", NARROW)
def test_exact_zero_rows(dtype):
    """Rows whose terms are all exactly zero are decided as +0 without the loop (Theorem F7, step 2)."""
    fmt = FORMATS[dtype]
    p = np.array([[0.5, 0.5, 0.0], [0.25, 0.75, 0.0], [0.0, 0.0, 0.0]])
    for kind in fast_divergence.KINDS:
        q = p.copy() if kind in ("sld", "sym") else np.array([[0.2, 0.3, 0.5]] * 3)
        if kind == "cross":
            p0 = np.zeros_like(p)
            vals, todo = fast_divergence.divergence_rows(kind, p0, q, fmt)
        elif kind == "entropy":
            vals, todo = fast_divergence.divergence_rows(kind, p[2:], p[2:], fmt)
        else:
            vals, todo = fast_divergence.divergence_rows(kind, p, q, fmt)
        assert todo.size == 0 and not _bits(vals).any(), kind


@pytest.mark.parametrize("dtype", NARROW)
def test_fallback_rows_are_the_mpmath_ones(dtype, monkeypatch):
    """With the softlog bound made 2**-10 (so that many roundings are undecided), the undecided rows
    go to the interval loop and the result is still bit-identical."""
    monkeypatch.setattr(fast_divergence, "RELATIVE_ERROR", 2.0**-10)
    rng = np.random.default_rng(3)
    fmt = FORMATS[dtype]
    w = rng.random((40, 5))
    p = (w / w.sum(axis=1, keepdims=True)).astype(fmt.dtype)
    v = rng.random((40, 5))
    q = (v / v.sum(axis=1, keepdims=True)).astype(fmt.dtype)
    _, todo = fast_divergence.divergence_rows("sld", p.astype(np.float64), q.astype(np.float64), fmt)
    assert todo.size > 0
    for name in NAMES:
        _assert_identical(name, p, q)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("name", NAMES)
def test_million_random_entries_identical(dtype, name):
    """10**6 entries per function and format (rows of 2 to 64 entries, spreads from uniform to
    near one-hot, exact zeros, close pairs), fast path against the interval loop."""
    fmt = FORMATS[dtype]
    rng = np.random.default_rng(zlib.crc32(f"{dtype} {name}".encode()))
    total = 0
    while total < 10**6:
        n = int(rng.integers(2, 65))
        rows = max(1, 4096 // n)
        w = np.exp(rng.standard_normal((rows, n)) * rng.uniform(0, 10))
        w[rng.random(w.shape) < 0.05] = 0.0
        w[:, 0] += 1e-30
        p = (w / w.sum(axis=1, keepdims=True)).astype(fmt.dtype)
        if rng.random() < 0.3:
            c = p.astype(np.float64) * (1 + 10.0 ** rng.uniform(-7, -1) * rng.standard_normal(p.shape))
        else:
            c = np.exp(rng.standard_normal((rows, n)) * rng.uniform(0, 10))
        q = (np.abs(c) / np.abs(c).sum(axis=1, keepdims=True)).astype(fmt.dtype)
        _assert_identical(name, p, q, validate=False)
        total += p.size


def test_quotient_form_condition_number():
    """Theorem F7, step 1': ``kappa(y) = (y - 1) / (y ln y)`` decreases on (0, inf) and is
    ``1/ln 2`` at ``y = 1/2``, so ``log1p`` amplifies the quotient's relative error at most 1.4427
    times where ``1 + z > 1/2``."""
    with mpmath.workprec(80):
        ys = [mpmath.mpf(k) / 64 for k in range(1, 64 * 64) if k != 64]
        kappa = [(y - 1) / (y * mpmath.log(y)) for y in ys]
        assert all(a > b for a, b in zip(kappa, kappa[1:]))
        assert abs(kappa[31] - 1 / mpmath.log(2)) < 1e-20 and ys[31] == mpmath.mpf(1) / 2
