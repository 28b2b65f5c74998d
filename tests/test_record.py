"""The one record of a measurement (``testing/record.py``): what :meth:`ErrorStats.add` counts,
the order statistics of :meth:`ErrorStats.finish`, the worst input, and the two options
(``numbers_only`` for the sweeps, ``keep_latest`` for the accuracy command)."""

import math

import numpy as np

from softlog_numerics.testing.record import ErrorStats
from softlog_numerics.testing.ulp import ulp_distance


def _f32(*v):
    return np.array(v, dtype=np.float32)


def test_counts_and_order_statistics():
    s = ErrorStats()
    one = np.nextafter(np.float32(1), np.float32(2))
    want = _f32(1.0, 2.0, 0.0, 5.0, np.inf, np.nan)
    got = _f32(one, 2.0, -0.0, np.nan, 3.0, 1.0)
    assert s.add(got, want, (want,), in_contract=False) == math.inf
    s.add(_f32(np.inf), _f32(1.0), (_f32(1.0),))
    s.finish()
    assert (s.inputs, s.values, s.compared) == (2, 7, 7)
    assert (s.nan, s.number_where_nan, s.inf_where_finite, s.finite_where_inf) == (1, 1, 1, 1)
    assert (s.wrong_sign_zero, s.contract_failures) == (1, 1)
    assert s.max_ulp == math.inf and s.max_bits == math.inf
    assert s.not_correctly_rounded == 6 / 7  # all but 2.0 = 2.0
    d = np.concatenate([ulp_distance(got, want), ulp_distance(_f32(np.inf), _f32(1.0))])
    assert s.p99_ulp == float(np.quantile(d, 0.99, method="higher"))
    assert s.worst.index == (3,) and s.worst.expected == 5.0 and math.isnan(s.worst.got)


def test_numbers_only_leaves_nan_mismatches_out_of_the_distances():
    s = ErrorStats(numbers_only=True)
    x = _f32(1.0, 2.0)
    s.add(_f32(np.nan, np.nextafter(np.float32(2), np.float32(3))), x, (x,))
    s.finish()
    assert (s.values, s.compared, s.nan) == (2, 1, 1)
    assert s.max_ulp == 1.0 and s.mean_bits == 1.0 and s.not_correctly_rounded == 1.0
    assert s.worst.index == (1,)


def test_worst_is_the_first_largest_and_a_wrong_zero_counts_as_half():
    s = ErrorStats()
    s.add(_f32(0.0), _f32(0.0), (_f32(0.0),))
    assert s.worst is None  # correctly rounded: nothing to show
    s.add(_f32(-0.0), _f32(0.0), (_f32(1.0),))
    assert s.worst.args[0][0] == 1.0 and s.worst.ulp == 0.0
    s.add(_f32(-0.0), _f32(0.0), (_f32(2.0),))
    assert s.worst.args[0][0] == 1.0  # a tie keeps the first


def test_keep_latest_names_the_last_of_equal_inputs():
    s = ErrorStats(keep_latest=True)
    for v in (1.0, 2.0, 3.0):
        s.add(_f32(v), _f32(v), (_f32(v),))
    s.finish()
    assert s.worst.args[0][0] == 3.0 and s.max_ulp == 0.0
