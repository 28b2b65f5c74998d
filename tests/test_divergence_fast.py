"""The first stage of the entropies and divergences (proofs/divergence.md, Theorems D10 and D11):
where it decides a row, the value is the exact algorithm's, bit for bit; its softlog kernels are
within the errors the proofs use."""

from __future__ import annotations

import numpy as np
import pytest

from softlog_numerics._core.formats import BFLOAT16, format_of, round_from_float64
from softlog_numerics.functions import _divergence as D
from softlog_numerics.functions import _divergence_fast as F
from softlog_numerics.functions._softlog_dd import softlog_dd

KINDS = ("entropy", "cross", "sld", "sym")
DTYPES = (np.float16, BFLOAT16, np.float32, np.float64)


def _dist(rng, shape, conc, dtype):
    g = rng.gamma(conc, size=shape)
    return (g / g.sum(-1, keepdims=True)).astype(dtype)


def _exact(kind, p, q, fmt):
    out = D._reduce_rows64(kind, p.astype(np.float64), q.astype(np.float64))
    return out if fmt.name == "float64" else round_from_float64(out, fmt)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", KINDS)
def test_first_stage_decides_the_exact_result(kind, dtype):
    rng = np.random.default_rng(20261207)
    fmt = format_of(dtype)
    for shape, conc in (((300, 7), 1.0), ((200, 100), 0.3), ((40, 1000), 2.0), ((50, 33), 20.0)):
        p, q = _dist(rng, shape, conc, dtype), _dist(rng, shape, conc, dtype)
        if kind == "sym":
            q[:10] = p[:10]  # p = q: never decided (a zero result)
        stage = F.fast_rows64 if fmt.name == "float64" else lambda *a, **k: F.fast_rows(*a[:3], fmt, **k)
        decided, values = stage(kind, p, q, in_unit=False)
        exact = _exact(kind, p, q, fmt)
        if conc <= 1.0:  # near-uniform p and q: sld and sld_sym are small, float64 leaves them
            assert decided.mean() > 0.5
        np.testing.assert_array_equal(values[decided].view(fmt.uint), exact[decided].view(fmt.uint))
        if kind == "sym":
            assert not decided[:10].any()
    # entries outside [0, 1] or not finite: not decided
    bad = _dist(rng, (4, 5), 1.0, dtype)
    bad[0, 0], bad[1, 1], bad[2, 2] = 1.5, np.nan, -0.25
    stage = F.fast_rows64 if fmt.name == "float64" else lambda *a, **k: F.fast_rows(*a[:3], fmt, **k)
    decided, _ = stage(kind, bad, bad[::-1].copy(), in_unit=False)
    assert not decided[:3].any()


def test_first_stage_softlog_kernels():
    rng = np.random.default_rng(5)
    x32 = np.concatenate([rng.random(20000), rng.random(2000) * 1e-3, 10.0 ** rng.uniform(-40, 0, 2000),
                          [0.0, 1.0, 0.2689414213699951, 2.0**-149]]).astype(np.float32)
    x = x32.astype(np.float64)
    h, l = softlog_dd(x)
    ref = h + l  # within 2**-64.8 |L| of L (Theorem D3)
    out = np.empty((1, x.size))
    tmp, tt = np.empty_like(out), np.empty_like(out)
    ib = np.empty(out.shape, dtype=np.intp)
    F._unit_softlog(x32[None], out, tmp, tt, ib)
    assert np.max(np.abs(out[0] - ref)) <= 2.0**-44.4 - 2.0**-52
    A, lo = np.empty_like(out), np.empty_like(out)
    F._unit_softlog64(x[None], A, lo, tmp, tt, ib)
    err = np.abs((A[0] - h) + (lo[0] - l))
    assert np.max(err) <= 2.0**-63.7 - 2.0**-64.7
    for name, dtype in (("float16", np.float16), ("bfloat16", BFLOAT16)):
        X, L = F._bit_tables(name, np.dtype(dtype))
        ok = ~np.isnan(X)
        hh, ll = softlog_dd(X[ok])
        np.testing.assert_array_equal(L[ok], hh + ll)
        assert np.isnan(L[~ok]).all()
