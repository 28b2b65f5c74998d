"""The argument-reduction literals of ``softlog_numerics/_core/constants.py`` (``LN2``, ``LOG_TABLE``,
``LN2_64``, ``EXP2_TABLE``) recomputed with mpmath at 320 bits, and ``INV_FACTORIALS`` from exact
rationals: each literal must be exactly the intended rounding or limb split, bit for bit, and the
kernels of ``_core/softlog_dd.py``, ``functions/_layer.py`` and ``functions/_log_softmax.py``
must use them unchanged (those modules import neither mpmath nor build constants at import time)."""

from __future__ import annotations

import ast
import math
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np

from softlog_numerics._core import constants as _c
from softlog_numerics._core import softlog_dd as dv
from softlog_numerics.functions import _layer as ly
from softlog_numerics.functions import _log_softmax as lsm

_BITS = 320
_ROOT = Path(__file__).resolve().parents[1]


def _bits(x: float) -> int:
    return int(np.float64(x).view(np.int64))


def _same(a: float, b: float) -> bool:
    """Bit-identical (distinguishes -0.0 from 0.0)."""
    return type(a) is float and _bits(a) == _bits(b)


def _truncated_split(c, frac_bits: int) -> tuple[float, float]:
    """``c`` truncated to a multiple of ``2**-frac_bits`` (``c > 0``), and the float64 nearest the rest."""
    hi = math.ldexp(math.floor(c * 2**frac_bits), -frac_bits)
    return hi, float(c - mpmath.mpf(hi))


def _nearest_limbs(c) -> tuple[float, float]:
    """The float64 nearest ``c`` and the float64 nearest ``c - hi`` (mpmath's float() rounds once)."""
    hi = float(c)
    return hi, float(c - mpmath.mpf(hi))


def test_ln2_split():
    with mpmath.workprec(_BITS):
        ln2 = mpmath.log(2)
        want = _truncated_split(ln2, 42)
        hi, lo = _c.LN2
        assert _same(hi, want[0]) and _same(lo, want[1]), (hi.hex(), lo.hex(), want[0].hex(), want[1].hex())
        assert mpmath.mpf(hi) <= ln2  # truncated, not rounded up
        assert abs(mpmath.mpf(hi) + lo - ln2) <= math.ulp(lo) / 2 <= 2.0**-96
    assert hi == math.ldexp(math.floor(hi * 2**42), -42)
    assert int(hi * 2**42).bit_length() <= 42  # k * hi exact for |k| < 2**11


def test_log_table():
    assert (_c.LOG_J0, _c.LOG_J1) == (90, 182)
    assert _c.LOG_J0 / 128 < math.sqrt(0.5) and _c.LOG_J1 / 128 >= math.sqrt(2.0)
    assert len(_c.LOG_TABLE) == _c.LOG_J1 - _c.LOG_J0 + 1
    with mpmath.workprec(_BITS):
        for j, (hi, lo) in zip(range(_c.LOG_J0, _c.LOG_J1 + 1), _c.LOG_TABLE):
            v = mpmath.log(mpmath.mpf(j) / 128)
            want = _nearest_limbs(v)
            assert _same(hi, want[0]) and _same(lo, want[1]), (j, hi.hex(), lo.hex(), want[0].hex(), want[1].hex())
            if j != 128:
                assert abs(mpmath.mpf(hi) + lo - v) <= mpmath.ldexp(abs(v), -106), j
    assert _c.LOG_TABLE[128 - _c.LOG_J0] == (0.0, 0.0)


def test_ln2_over_64_split():
    with mpmath.workprec(_BITS):
        c = mpmath.log(2) / 64
        want = _truncated_split(c, 42)
        hi, lo = _c.LN2_64
        assert _same(hi, want[0]) and _same(lo, want[1]), (hi.hex(), lo.hex(), want[0].hex(), want[1].hex())
        assert mpmath.mpf(hi) <= c
        assert abs(mpmath.mpf(hi) + lo - c) <= math.ulp(lo) / 2  # ~2**-99: lo is about 2**-45
    assert int(hi * 2**42).bit_length() <= 36  # n * hi exact for |n| < 2**17


def test_exp2_table():
    assert len(_c.EXP2_TABLE) == 64
    with mpmath.workprec(_BITS):
        for i, (hi, lo) in enumerate(_c.EXP2_TABLE):
            v = mpmath.mpf(2) ** (mpmath.mpf(i) / 64)
            want = _nearest_limbs(v)
            assert _same(hi, want[0]) and _same(lo, want[1]), (i, hi.hex(), lo.hex(), want[0].hex(), want[1].hex())
            assert abs(mpmath.mpf(hi) + lo - v) <= mpmath.ldexp(v, -106), i
    assert _c.EXP2_TABLE[0] == (1.0, 0.0)


def test_inverse_factorials():
    assert len(_c.INV_FACTORIALS) == 11
    for i, (hi, lo) in enumerate(_c.INV_FACTORIALS):
        q = Fraction(1, math.factorial(i))
        assert _same(hi, float(q)), i  # Fraction.__float__ rounds the exact quotient once
        assert _same(lo, float(q - Fraction(hi))), i
        assert abs(Fraction(hi) + Fraction(lo) - q) <= q / 2**106, i


def test_kernels_use_the_literals():
    assert lsm._INV_FACT is _c.INV_FACTORIALS
    assert (_bits(dv._LN2_HI), _bits(dv._LN2_LO)) == tuple(map(_bits, _c.LN2))
    assert (dv._J0, dv._J1) == (_c.LOG_J0, _c.LOG_J1)
    table = np.array(_c.LOG_TABLE, dtype=np.float64)
    assert dv._LOGC_HI.dtype == dv._LOGC_LO.dtype == np.float64
    assert dv._LOGC_HI.tobytes() == np.ascontiguousarray(table[:, 0]).tobytes()
    assert dv._LOGC_LO.tobytes() == np.ascontiguousarray(table[:, 1]).tobytes()
    assert (_bits(ly._C_HI), _bits(ly._C_LO)) == tuple(map(_bits, _c.LN2_64))
    table = np.array(_c.EXP2_TABLE, dtype=np.float64)
    assert ly._T2_HI.dtype == ly._T2_LO.dtype == np.float64
    assert ly._T2_HI.tobytes() == np.ascontiguousarray(table[:, 0]).tobytes()
    assert ly._T2_LO.tobytes() == np.ascontiguousarray(table[:, 1]).tobytes()


def test_production_and_oracle_share_the_kernels():
    """functions/_softlog_dd.py re-exports the core's double-double kernels (the very objects), and
    the float64 fast oracle uses the same softlog_dd (proofs/fast_oracle.md, Theorem F5)."""
    from softlog_numerics.functions import _softlog_dd as prod
    from softlog_numerics.oracle import fast

    for name in prod.__all__:
        assert getattr(prod, name) is getattr(dv, name), name
    assert fast.softlog_dd is dv.softlog_dd


def test_kernel_modules_do_not_import_mpmath():
    for name in (
        "_core/softlog_dd.py", "functions/_divergence.py", "functions/_layer.py",
        "functions/_log_softmax.py", "_core/constants.py", "_core/dd.py",
    ):
        tree = ast.parse((_ROOT / "softlog_numerics" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "mpmath" for a in node.names), name
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "mpmath", name
