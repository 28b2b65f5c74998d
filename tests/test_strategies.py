"""The public Hypothesis strategies draw what their docstrings promise, in every format."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softlog_numerics._core.axes import sum_tolerance
from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics.strategies import (
    LOGIT_FAMILIES,
    PROBABILITY_FAMILIES,
    floats,
    logit_vectors,
    probability_pairs,
    probability_vectors,
    unit_interval,
)

DTYPES = list(FORMATS)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_floats_respect_bounds_and_dtype(dtype, data):
    fmt = format_of(dtype)
    lo = data.draw(st.floats(-10.0, 10.0))
    hi = lo + data.draw(st.floats(0.1, 10.0))  # wider than the bfloat16 spacing (1/16) near 10
    x = data.draw(floats(dtype, lo, hi))
    assert np.asarray(x).dtype == fmt.dtype
    assert lo <= float(x) <= hi


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_floats_without_subnormals(dtype, data):
    fmt = format_of(dtype)
    x = float(data.draw(floats(dtype, allow_subnormal=False)))
    assert x == 0.0 or abs(x) >= fmt.tiny
    assert math.isfinite(x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_floats_reach_specials_and_extremes(dtype):
    fmt = format_of(dtype)
    seen = set()

    @settings(max_examples=300, database=None)
    @given(floats(dtype, allow_nan=True, allow_infinity=True))
    def collect(x):
        v = float(x)
        if math.isnan(v):
            seen.add("nan")
        elif math.isinf(v):
            seen.add("inf")
        elif 0 < abs(v) < fmt.tiny:
            seen.add("subnormal")
        elif abs(v) == fmt.max:
            seen.add("max")

    collect()
    assert seen == {"nan", "inf", "subnormal", "max"}


def test_floats_empty_range_is_an_error():
    with pytest.raises(ValueError, match="no float16 value"):
        floats("float16", 1.0001, 1.0002)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_unit_interval(dtype, data):
    x = data.draw(unit_interval(dtype))
    assert np.asarray(x).dtype == format_of(dtype).dtype
    assert 0.0 <= float(x) <= 1.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", PROBABILITY_FAMILIES)
@given(data=st.data())
def test_probability_vectors_are_distributions(dtype, family, data):
    fmt = format_of(dtype)
    p = data.draw(probability_vectors(dtype, 1, 12, family=family))
    assert p.dtype == fmt.dtype and 1 <= p.size <= 12
    p64 = p.astype(np.float64)
    assert np.all((p64 >= 0) & (p64 <= 1))
    # one rounding per entry: |sum - 1| <= u * sum(p) plus the float64 normalisation
    assert abs(p64.sum() - 1.0) <= fmt.unit_roundoff * 1.01 + 1e-15
    assert abs(p64.sum() - 1.0) <= sum_tolerance(fmt)
    if family == "one_hot":
        assert sorted(p64.tolist())[-1] == 1.0 and np.count_nonzero(p64) == 1


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_probability_pairs_share_shape(dtype, data):
    p, q = data.draw(probability_pairs(dtype, 1, 10))
    assert p.shape == q.shape and p.dtype == q.dtype == format_of(dtype).dtype
    for v in (p, q):
        assert abs(v.astype(np.float64).sum() - 1.0) <= sum_tolerance(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", [f for f in LOGIT_FAMILIES if f != "wide"])
@given(data=st.data())
def test_logit_families(dtype, family, data):
    fmt = format_of(dtype)
    x = data.draw(logit_vectors(dtype, 2, 20, families=[family]))
    assert x.dtype == fmt.dtype and 2 <= x.size <= 20
    x64 = x.astype(np.float64)
    assert not np.isnan(x64).any() and not (x64 == np.inf).any()
    finite = x64[np.isfinite(x64)]
    if family != "masked":
        assert finite.size == x.size
    if family == "dominant":
        top = np.sort(x64)[::-1]
        gap = top[0] - top[1]
        assert gap >= 0.25 * fmt.precision * math.log(2) * 0.9 or top[0] == top[1]
    if family == "huge":
        assert np.abs(x64).max() >= fmt.max / 2
    if family == "all_equal":
        assert np.all(x64 == x64[0])


@settings(max_examples=2, database=None)
@given(logit_vectors("float32", families=["wide"]))
def test_wide_family_is_wide(x):
    assert 32000 <= x.size <= 33000


def test_bad_arguments_are_errors_at_construction():
    with pytest.raises(ValueError, match="unknown logit family"):
        logit_vectors("float32", families=["nope"])
    with pytest.raises(ValueError, match="unknown probability family"):
        probability_vectors("float32", family="nope")
    with pytest.raises(ValueError, match="min_size"):
        logit_vectors("float32", 5, 2)
    with pytest.raises(TypeError, match="unsupported"):
        floats("float128")
