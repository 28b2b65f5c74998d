"""One arithmetic protocol, each textbook formula written once: every implementation provides the
protocol, and the same formula evaluated by two implementations that must agree does, bit for bit."""

import inspect

import numpy as np
import pytest

from softlog_numerics.analysis.algorithms import Arith
from softlog_numerics.analysis.format_arithmetic import (
    ExactOps,
    VectorOps,
    log_softmax_variant,
)
from softlog_numerics.testing import textbook
from softlog_numerics.testing.backends import _numpy_ops

PROTOCOL = [n for n, _ in inspect.getmembers(textbook.Arithmetic, inspect.isfunction) if not n.startswith("_")]


def test_the_protocol_is_the_documented_one():
    assert sorted(PROTOCOL) == ["add", "const", "div", "exp", "log", "log1p", "max", "mul", "neg", "sub", "sum"]


@pytest.mark.parametrize("ops", [ExactOps("float16"), VectorOps("bfloat16"), Arith("float32"), _numpy_ops()],
                         ids=["exact", "vectorised", "strict", "native"])
def test_every_arithmetic_implements_the_protocol(ops):
    for name in PROTOCOL:
        assert callable(getattr(ops, name, None)), name
    for name in textbook.CONSTANTS:
        assert np.isfinite(float(ops.const(name))), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_native_numpy_and_strict_emulation_agree_where_both_are_numpy(dtype):
    """For float32/float64, Arith computes with NumPy's own operations in the dtype, as the native
    NumPy arithmetic does: the elementwise formulas give the same bits."""
    rng = np.random.default_rng(7)
    x = rng.uniform(-0.15, 3.0, 2000).astype(dtype)
    A = Arith(dtype)
    for formula in (textbook.softlog, textbook.softlog_log1p):
        strict = A.output(formula(A, A.input(x)), dtype)
        native = formula(_numpy_ops(), x)
        assert native.dtype == dtype
        assert strict.tobytes() == native.tobytes(), formula.__name__


def test_exact_and_vectorised_two_class_log_softmax_agree_away_from_midpoints():
    """The shifted two-class log_softmax in float16, exactly (ExactOps: every step correctly
    rounded) and vectorised (VectorOps: float64 libm then one rounding): they may differ only where
    a float64 ULP decides a float16 rounding, which none of these 64 grid rows is near."""
    g = np.linspace(0.5, 9.0, 64)
    x0 = VectorOps("float16").value(g)
    ex = [log_softmax_variant("shifted", ExactOps("float16"), float(v), 0.0) for v in x0]
    y0, y1 = log_softmax_variant("shifted", VectorOps("float16"), x0, np.zeros_like(x0))
    assert [a for a, _ in ex] == y0.tolist() and [b for _, b in ex] == y1.tolist()
