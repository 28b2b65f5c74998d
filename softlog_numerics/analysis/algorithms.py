"""The algorithm zoo: named ways of computing each function, evaluated strictly in a working format.

Users come to this module to see how the textbook and the published ways of computing softlog,
logsumexp, log_softmax, softmax and the softlog divergences behave in float16, bfloat16, float32
and float64. Every variant in :data:`REGISTRY` has a one-line description and a reference, and is
measured against the correctly rounded oracle by :mod:`softlog_numerics.analysis.sweeps` (nothing here is
assumed accurate).

Strict evaluation
-----------------
A variant is written once, against the small arithmetic of :class:`Arith`, and evaluated in one
*working format*: every intermediate value is a number of that format, and every operation rounds
its exact result to it (round to nearest, ties to even, gradual underflow, overflow to infinity).

* float16 and bfloat16 have no arithmetic of their own on a CPU. Each operation is computed in
  float64 and rounded once with :func:`softlog_numerics._core.formats.round_from_float64`. For ``+``,
  ``-``, ``*``, ``/`` and ``sqrt`` this is an *exact* emulation of the format's correctly rounded
  operation: float64 has ``53 >= 2p + 2`` bits for ``p = 11`` and ``p = 8``, so the double
  rounding is innocuous (Figueroa 1995), and float64's range contains both formats' subnormals.
  For ``exp``, ``log``, ``log1p`` and ``expm1`` the float64 libm value (within 1 float64 ULP,
  measured at 0.47 to 0.67 ULP here) is rounded once: this emulates a libm of the format that is
  correctly rounded except when the exact value lies within one float64 ULP of a rounding
  boundary, i.e. a libm accurate to within 1 ULP of the format (and almost always to 0.5).
* float32 uses NumPy's float32 operations directly (no upcast: every result is checked to be
  float32). NumPy's float32 ``exp``/``log``/``log1p``/``expm1`` are not correctly rounded (their
  measured maximum errors are in ``tests/test_algorithms.py``); that is what a float32 NumPy user
  gets, so it is what the zoo measures.
* float64 uses NumPy's float64 operations.

No variant ever upcasts silently. A variant that *calls for* wider arithmetic says so: it has a
declared ``accumulate`` rule (e.g. float32 accumulation for 16-bit input, as PyTorch does on the
CPU), and any variant can be evaluated with an explicit ``accumulate_dtype=`` (the input is
widened exactly, the whole computation runs in that format, and the result is rounded once to the
input's format). ``check=True`` makes every operation verify that its operands are members of the
working format, which catches an unrounded intermediate leaking into the computation.

The ``production`` variants call the library's own functions (:mod:`softlog_numerics.softlog`,
:mod:`softlog_numerics.functions._log_softmax`, :mod:`softlog_numerics.functions._divergence`), imported when first
used; they are black boxes here (``strict=False``) and may use any internal precision.

Summation order
---------------
Plain sums are pairwise (a balanced tree over the row: the order NumPy uses for float32/float64
blocks, with error growth ``log2(n) u`` instead of ``n u``). Compensated sums run the same tree
with TwoSum at every node and add the tree-summed rounding errors back at the end.

Example
-------
>>> import numpy as np
>>> from softlog_numerics import algorithms
>>> x = np.array([8.0, 0.0], dtype=np.float16)
>>> algorithms.evaluate("log_softmax", "shifted", x)[0]       # collapsed: exactly 0
np.float16(0.0)
>>> algorithms.evaluate("log_softmax", "shifted_log1p", x)[0]  # -exp(-8) to fp16 precision
np.float16(-0.0003355)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import mpmath
import numpy as np
from numpy.typing import ArrayLike

from softlog_numerics import functions
from softlog_numerics._core.formats import (
    FORMATS,
    Format,
    FormatLike,
    as_float_array,
    format_of,
    result_format,
    round_from_float64,
)
from softlog_numerics.analysis.format_arithmetic import pairwise_sum
from softlog_numerics.oracle import round_to
from softlog_numerics.testing import textbook

__all__ = [
    "FUNCTIONS",
    "REGISTRY",
    "Arith",
    "Variant",
    "evaluate",
    "get",
    "variants",
]

FUNCTIONS = (
    "softlog",
    "logsumexp",
    "log_softmax",
    "softmax",
    "softlog_entropy",
    "softlog_cross_entropy",
    "sld",
    "sld_sym",
)
"""The functions that have variants (the same names as the library's public functions)."""

ALL_DTYPES = tuple(FORMATS)
NARROW = ("float16", "bfloat16")
WIDER = {"float16": "float32", "bfloat16": "float32", "float32": "float64"}


# ---------------------------------------------------------------------------------------------
# Constants of the working format, each rounded once from a 200-bit value.


@functools.lru_cache(maxsize=None)
def _constants(fmt_name: str) -> dict[str, float]:
    """The constants the variants use, rounded once to ``fmt_name`` (returned as float64 values).

    ``x0_lo`` is the rounded remainder ``x0 - x0_hi`` (so ``x0_hi + x0_lo`` carries about ``2p``
    bits of ``x0 = 1/(e+1)``); ``ln2_hi`` keeps ``max(2, p // 2 - 1)`` significant bits, so that ``n * ln2_hi``
    is exact for ``|n| < 2**(p - hi_bits)`` (Cody and Waite): logits up to about 88 (float16), 11
    (bfloat16), 5,700 (float32) and 1.9e8 (float64) are reduced without error in the product.
    """
    fmt = FORMATS[fmt_name]
    with mpmath.workprec(256):
        e = mpmath.e
        exact = {
            "a": e - 1 / e,
            "b": 1 / e,
            "c": e * e - 1,
            "x0": 1 / (e + 1),
            "ln2": mpmath.log(2),
            "log2e": 1 / mpmath.log(2),
            "one": mpmath.mpf(1),
            "half": mpmath.mpf(0.5),
            "quarter": mpmath.mpf(0.25),
        }
        out = {k: float(round_to(v, fmt.dtype)) for k, v in exact.items()}
        out["x0_hi"] = out["x0"]
        out["x0_lo"] = float(round_to(exact["x0"] - mpmath.mpf(out["x0_hi"]), fmt.dtype))
        hi_bits = max(2, fmt.precision // 2 - 1)  # n * ln2_hi exact for |n| < 2**(p - hi_bits)
        ln2 = exact["ln2"]
        scale = mpmath.mpf(2) ** (hi_bits - 1)  # ln2 in [0.5, 1): keep hi_bits significant bits
        hi = mpmath.floor(ln2 * scale * 2) / (scale * 2)
        out["ln2_hi"] = float(round_to(hi, fmt.dtype))
        out["ln2_lo"] = float(round_to(ln2 - mpmath.mpf(out["ln2_hi"]), fmt.dtype))
    return out


# ---------------------------------------------------------------------------------------------
# Arithmetic of one format.


class Arith:
    """Correctly rounded arithmetic of one format on NumPy arrays ("carriers").

    For float16/bfloat16 the carrier is a float64 array whose every value is a number of the format
    (each operation computes in float64 and rounds once); for float32/float64 the carrier is an
    array of that dtype and NumPy's own operations are used. See the module docstring for which
    operations are exact emulations and which emulate a libm within 1 ULP.

    Parameters
    ----------
    fmt : dtype, str or Format
        The working format.
    check : bool
        Verify, at every operation, that the operands are members of the format (float16/bfloat16)
        or of the right dtype (float32/float64): an unrounded or upcast intermediate raises
        AssertionError. Used by the tests; costs one extra rounding per operand.
    """

    def __init__(self, fmt, *, check: bool = False):
        self.fmt: Format = format_of(fmt)
        self.emulated = self.fmt.name in NARROW
        self.carrier = np.dtype(np.float64) if self.emulated else self.fmt.dtype
        self.check = check
        self.ops = 0
        self._c = _constants(self.fmt.name)

    # -- conversion ------------------------------------------------------------------------
    def _round(self, v) -> np.ndarray:
        v = np.asarray(v)
        if self.emulated:
            if v.dtype != np.float64:
                raise AssertionError(f"emulated {self.fmt.name} op produced {v.dtype}, expected float64")
            return round_from_float64(v, self.fmt).astype(np.float64)
        if v.dtype != self.carrier:
            raise AssertionError(f"{self.fmt.name} op produced {v.dtype}: silent upcast")
        return v

    def _chk(self, *arrays) -> None:
        self.ops += 1
        if not self.check:
            return
        for a in arrays:
            a = np.asarray(a)
            if a.dtype != self.carrier:
                raise AssertionError(f"operand of dtype {a.dtype} in {self.fmt.name} arithmetic")
            if self.emulated:
                r = round_from_float64(a, self.fmt).astype(np.float64)
                same = (r == a) | (np.isnan(r) & np.isnan(a))
                if not np.all(same):
                    bad = a[~same].ravel()[:3]
                    raise AssertionError(f"operand not a {self.fmt.name} number: {bad.tolist()}")

    def input(self, x) -> np.ndarray:
        """``x`` (of a format this one contains) as a carrier, exactly."""
        x = as_float_array(x)
        src = format_of(x.dtype)
        if (src.precision > self.fmt.precision or src.emax > self.fmt.emax
                or src.emin - src.precision < self.fmt.emin - self.fmt.precision):
            raise ValueError(f"cannot evaluate {src.name} input in {self.fmt.name}: it does not contain {src.name}")
        return x.astype(np.float64).astype(self.carrier)

    def output(self, v, fmt) -> np.ndarray:
        """A carrier rounded once to ``fmt`` (an array of ``fmt``'s dtype)."""
        fmt = format_of(fmt)
        v = np.asarray(v)
        if v.dtype == fmt.dtype:
            return v
        return round_from_float64(v.astype(np.float64), fmt)

    def const(self, name_or_value) -> np.ndarray:
        """A named constant (see :func:`_constants`) or a float, rounded once to the format."""
        if isinstance(name_or_value, str):
            v = self._c[name_or_value]
        else:
            v = float(round_from_float64(np.float64(name_or_value), self.fmt).astype(np.float64))
        return np.asarray(v, dtype=np.float64).astype(self.carrier)

    def _apply(self, ufunc, *args):
        """``ufunc(*args)`` rounded to the format; IEEE exceptions give inf/NaN, never a warning."""
        self._chk(*args)
        with np.errstate(all="ignore"):
            return self._round(ufunc(*args))

    # -- correctly rounded operations (exact emulation) -------------------------------------
    def add(self, a, b):
        return self._apply(np.add, a, b)

    def sub(self, a, b):
        return self._apply(np.subtract, a, b)

    def mul(self, a, b):
        return self._apply(np.multiply, a, b)

    def div(self, a, b):
        return self._apply(np.divide, a, b)

    def sqrt(self, a):
        return self._apply(np.sqrt, a)

    def neg(self, a):
        return self._apply(np.negative, a)

    def rint(self, a):
        return self._apply(np.rint, a)

    def ldexp(self, a, k):
        """``a * 2**k`` for integer arrays ``k`` (exact unless it under/overflows; then rounded)."""
        self._chk(a)
        with np.errstate(all="ignore"):
            k = np.clip(np.nan_to_num(np.asarray(k, dtype=np.float64), nan=0.0), -4000, 4000).astype(np.int32)
            return self._round(np.ldexp(a, k))

    def maximum(self, a, b):
        self._chk(a, b)
        return np.maximum(a, b)

    def max(self, a):
        """Row maximum along the last axis (exact; NaN propagates; an empty row gives ``-inf``)."""
        self._chk(a)
        return np.max(a, axis=-1, initial=-np.inf)

    # -- elementary functions (libm of the format; see the module docstring) ----------------
    def exp(self, a):
        return self._apply(np.exp, a)

    def log(self, a):
        return self._apply(np.log, a)

    def log1p(self, a):
        return self._apply(np.log1p, a)

    def expm1(self, a):
        return self._apply(np.expm1, a)

    # -- sums along the last axis ----------------------------------------------------------
    def sum(self, a):
        """Pairwise (balanced tree) sum along the last axis, each addition rounded; empty -> +0."""
        return pairwise_sum(self.add, np.asarray(a), self.carrier)

    def two_sum(self, a, b):
        """Knuth's TwoSum in the format: ``s = fl(a + b)`` and ``t`` with ``s + t = a + b`` exactly."""
        s = self.add(a, b)
        bb = self.sub(s, a)
        t = self.add(self.sub(a, self.sub(s, bb)), self.sub(b, bb))
        return s, t

    def compensated_sum(self, a):
        """Pairwise sum with TwoSum at every node; the rounding errors (tree-summed in the format)
        are added to the result at the end. Error ``<= u|s| + O(log2(n)**2 u**2) sum|a|``."""
        a = np.asarray(a)
        if a.shape[-1] == 0:
            return np.zeros(a.shape[:-1], dtype=self.carrier)
        errors = []
        while a.shape[-1] > 1:
            n = a.shape[-1]
            h = n // 2
            s, t = self.two_sum(a[..., 0:2 * h:2], a[..., 1:2 * h:2])
            errors.append(t)
            a = np.concatenate([s, a[..., 2 * h:]], axis=-1) if n % 2 else s
        if not errors:
            return a[..., 0]
        # TwoSum of infinities gives NaN errors: an infinite sum gets no correction
        e = self.sum(np.concatenate(errors, axis=-1))
        e = np.where(np.isfinite(a[..., 0]), e, 0.0).astype(self.carrier)
        return self.add(a[..., 0], e)


# ---------------------------------------------------------------------------------------------
# The variants. Each implementation takes the Arith and carriers of shape (rows, n) (elementwise
# functions: any shape) and returns a carrier.


def _softlog_centred(A: Arith, x):
    d = A.sub(A.sub(x, A.const("x0_hi")), A.const("x0_lo"))
    return A.log1p(A.mul(A.const("a"), d))


# logsumexp -------------------------------------------------------------------------------


def _online_state(A: Arith, x, lanes: int = 32):
    """Online normalizer (m, d) of each row: ``lanes`` sequential streams merged by a tree.

    Stream update: ``m' = max(m, x_j)``, ``d' = d * exp(m - m') + exp(x_j - m')``, with the shift
    guarded as in FlashAttention (a ``-inf`` maximum shifts by 0, so masked prefixes stay 0 instead
    of NaN). Merge: ``m = max(m1, m2)``, ``d = d1 exp(m1 - m) + d2 exp(m2 - m)``.
    """
    R, n = x.shape
    L = max(1, min(lanes, n))
    pad = (-n) % L
    if pad:
        x = np.concatenate([x, np.full((R, pad), -np.inf, dtype=x.dtype)], axis=1)
    m = np.full((R, L), -np.inf, dtype=A.carrier)
    d = np.zeros((R, L), dtype=A.carrier)
    for j in range(0, x.shape[1], L):
        xj = x[:, j:j + L]
        m_new = A.maximum(m, xj)
        sh = textbook.safe_shift(m_new)
        d = A.add(A.mul(d, A.exp(A.sub(m, sh))), A.exp(A.sub(xj, sh)))
        m = m_new
    while m.shape[1] > 1:
        h = m.shape[1] // 2
        m1, m2, d1, d2 = m[:, 0:2 * h:2], m[:, 1:2 * h:2], d[:, 0:2 * h:2], d[:, 1:2 * h:2]
        mm = A.maximum(m1, m2)
        sh = textbook.safe_shift(mm)
        dd = A.add(A.mul(d1, A.exp(A.sub(m1, sh))), A.mul(d2, A.exp(A.sub(m2, sh))))
        if m.shape[1] % 2:
            mm = np.concatenate([mm, m[:, -1:]], axis=1)
            dd = np.concatenate([dd, d[:, -1:]], axis=1)
        m, d = mm, dd
    return m[:, 0], d[:, 0]


def _lse_online(A, x):
    m, d = _online_state(A, x)
    return A.add(textbook.safe_shift(m), A.log(d))


def _me_terms(A: Arith, x):
    """Dukhan-Ablavatski: ``exp(x_i) = m_i 2**n_i`` with ``n_i = rint(x_i log2 e)`` and
    ``m_i = exp((x_i - n_i ln2_hi) - n_i ln2_lo)``; returns (N = row max of n_i, scaled terms
    ``m_i 2**(n_i - N)``)."""
    n = A.rint(A.mul(x, A.const("log2e")))
    r = A.sub(A.sub(x, A.mul(n, A.const("ln2_hi"))), A.mul(n, A.const("ln2_lo")))
    # a masked logit (-inf) contributes an exact 0 (its reduction x - n ln2 would be NaN)
    mant = np.where(x == -np.inf, 0.0, A.exp(r)).astype(A.carrier)
    N = A.max(n)
    Nsafe = textbook.safe_shift(N)
    k = A.sub(n, Nsafe[..., None])  # differences of integers of the format: exact
    return Nsafe, A.ldexp(mant, k)


def _lse_two_pass(A, x):
    N, t = _me_terms(A, x)
    return A.add(A.mul(N, A.const("ln2")), A.log(A.sum(t)))


# log_softmax -----------------------------------------------------------------------------


def _lsm_online(A, x):
    m, dsum = _online_state(A, x)
    return A.sub(A.sub(x, textbook.safe_shift(m)[..., None]), A.log(dsum)[..., None])


def _lsm_two_pass(A, x):
    N, t = _me_terms(A, x)
    Nc = N[..., None]
    y = A.sub(A.sub(x, A.mul(Nc, A.const("ln2_hi"))), A.mul(Nc, A.const("ln2_lo")))
    return A.sub(y, A.log(A.sum(t))[..., None])


# softmax ---------------------------------------------------------------------------------


def _sm_division_free(A, x):
    return A.exp(A.sub(x, textbook.logsumexp_shifted_log1p(A, x)[..., None]))


def _sm_online(A, x):
    m, dsum = _online_state(A, x)
    return A.div(A.exp(A.sub(x, textbook.safe_shift(m)[..., None])), dsum[..., None])


def _sm_two_pass(A, x):
    _, t = _me_terms(A, x)
    return A.div(t, A.sum(t)[..., None])


# divergences -----------------------------------------------------------------------------


def _entropy(L, compensated):
    def impl(A, p):
        terms = A.mul(p, L(A, p))
        s = A.compensated_sum(terms) if compensated else A.sum(terms)
        return A.neg(s)
    return impl


def _cross(L, compensated):
    def impl(A, p, q):
        terms = A.mul(p, L(A, q))
        s = A.compensated_sum(terms) if compensated else A.sum(terms)
        return A.neg(s)
    return impl


def _softlog_ratio_difference(A, p, q):
    """``L(p) - L(q) = log1p(a (p - q) / (a q + b))``: no cancellation between two logarithms."""
    num = A.mul(A.const("a"), A.sub(p, q))
    den = A.add(A.mul(A.const("a"), q), A.const("b"))
    return A.log1p(A.div(num, den))


def _direct_difference(L):
    def diff(A, p, q):
        return A.sub(L(A, p), L(A, q))
    return diff


def _sld(diff, compensated):
    def impl(A, p, q):
        terms = A.mul(p, diff(A, p, q))
        s = A.compensated_sum(terms) if compensated else A.sum(terms)
        return A.mul(A.const("half"), s)
    return impl


def _sld_sym(diff, compensated):
    def impl(A, p, q):
        terms = A.mul(A.sub(p, q), diff(A, p, q))
        s = A.compensated_sum(terms) if compensated else A.sum(terms)
        return A.mul(A.const("quarter"), s)
    return impl


# ---------------------------------------------------------------------------------------------
# The registry


_KIND = {
    "softlog": "elementwise",
    "logsumexp": "reduce",
    "log_softmax": "rowwise",
    "softmax": "rowwise",
    "softlog_entropy": "reduce",
    "softlog_cross_entropy": "reduce",
    "sld": "reduce",
    "sld_sym": "reduce",
}
_DIVERGENCES = ("softlog_entropy", "softlog_cross_entropy", "sld", "sld_sym")


@dataclass(frozen=True)
class Variant:
    """One named way of computing ``function``.

    Attributes
    ----------
    function, name : str
        What it computes, and its name in the registry.
    description : str
        One line: the formula and how it is evaluated.
    reference : str
        Where it comes from (paper, library), or "this library".
    impl : callable
        ``impl(A, *carriers)`` for strict variants; the production function otherwise.
    dtypes : tuple of str
        Formats of the input the variant applies to.
    accumulate : dict
        Declared working format per input format (e.g. float32 for float16 input); absent means
        the input's own format.
    strict : bool
        True: every intermediate is in the working format (evaluated by :class:`Arith`). False: a
        black box (the production functions).
    """

    function: str
    name: str
    description: str
    reference: str
    impl: Callable[..., Any] | None = field(repr=False)  # None: the production variant
    dtypes: tuple = ALL_DTYPES
    accumulate: dict = field(default_factory=dict)
    strict: bool = True

    @property
    def kind(self) -> str:
        """``"elementwise"``, ``"rowwise"`` (log_softmax, softmax) or ``"reduce"``."""
        return _KIND[self.function]

    def working_format(self, input_dtype, accumulate_dtype=None) -> Format:
        fmt = format_of(input_dtype)
        if accumulate_dtype is not None:
            return format_of(accumulate_dtype)
        return FORMATS[self.accumulate.get(fmt.name, fmt.name)]

    def available(self) -> bool:
        """False if the production module is not importable yet."""
        if self.strict:
            return True
        try:
            self._production()
        except (ImportError, AttributeError):
            return False
        return True

    def _production(self):
        return getattr(functions, self.function)

    def __call__(self, *args, accumulate_dtype=None, check: bool = False) -> np.ndarray:
        """Evaluate on ``args`` (arrays of one format; rows along the last axis).

        Returns an array of the input's format: elementwise functions keep the shape, ``log_softmax``
        and ``softmax`` too, reductions drop the last axis.
        """
        names = ("p", "q") if len(args) == 2 else ("x",)
        arrays = [as_float_array(a, n) for a, n in zip(args, names)]
        fmt = result_format(*arrays)
        arrays = [a.astype(fmt.dtype) for a in arrays]
        if len(arrays) == 2 and arrays[0].shape != arrays[1].shape:
            raise ValueError(f"p and q must have the same shape, got {arrays[0].shape} and {arrays[1].shape}")
        if fmt.name not in self.dtypes:
            raise ValueError(f"variant {self.function}/{self.name} is defined for {', '.join(self.dtypes)}, not {fmt.name}")
        if not self.strict:
            if accumulate_dtype is not None:
                raise ValueError("the production variant has no accumulate_dtype option")
            f = self._production()
            kw = {"validate": False} if self.function in _DIVERGENCES else {}
            with np.errstate(all="ignore"):
                return np.asarray(f(*arrays, **kw))
        work = self.working_format(fmt, accumulate_dtype)
        A = Arith(work, check=check)
        if self.kind == "elementwise":
            xs = [A.input(a) for a in arrays]
        else:
            if arrays[0].ndim == 0:
                raise ValueError(f"{self.function} needs at least 1-D input")
            lead, n = arrays[0].shape[:-1], arrays[0].shape[-1]
            xs = [A.input(a.reshape(-1, n)) for a in arrays]
        assert self.impl is not None  # every strict variant has an impl
        with np.errstate(all="ignore"):
            v = self.impl(A, *xs)
            out = A.output(v, fmt)
        if self.kind == "reduce":
            return out.reshape(lead)
        if self.kind == "rowwise":
            return out.reshape(arrays[0].shape)
        return out


BHM = "Blanchard, Higham & Mary, IMA J. Numer. Anal. 41(4), 2021"
MG = "Milakov & Gimelshein, arXiv:1805.02867, 2018"
DA = "Dukhan & Ablavatski, arXiv:2001.04438, 2020 (XNNPACK)"
PEERS = "scipy.special, torch, jax.nn (field-notes §2)"
PAPER = "Atto et al., arXiv:2506.04297, 2025 (definition)"
PROD = "this library (see its docstring and proofs/)"


def _production_variant(function: str) -> Variant:
    return Variant(function, "production", "the library's own function (black box, any internal precision)",
                   PROD, impl=None, strict=False)


def _lse_family(function: str, impls: dict) -> list[Variant]:
    descr = {
        "logsumexp": ("log(sum(exp(x)))", "m + log(sum(exp(x - m))), m = max x",
                      "m + log1p(sum_{i != argmax} exp(x_i - m))", "m + log(d), (m, d) by the online normalizer",
                      "N ln2 + log(sum m_i 2^(n_i - N)) with exp(x_i) = m_i 2^n_i"),
        "log_softmax": ("x - log(sum(exp(x)))", "(x - m) - log(sum(exp(x - m)))",
                        "(x - m) - log1p(sum_{i != argmax} exp(x_i - m))", "(x - m) - log(d), online normalizer",
                        "(x - N ln2) - log(sum m_i 2^(n_i - N)), mantissa/exponent sum"),
        "softmax": ("exp(x) / sum(exp(x))", "exp(x - m) / sum(exp(x - m))",
                    "exp(x - LSE), LSE = m + log1p(...) (division-free)", "exp(x - m) / d, online normalizer",
                    "m_i 2^(n_i - N) / sum_j m_j 2^(n_j - N), mantissa/exponent"),
    }[function]
    names = ("naive", "shifted", "shifted_log1p" if function != "softmax" else "division_free", "online", "two_pass")
    refs = ("textbook; " + BHM + " ('basic')", PEERS + "; " + BHM, BHM, MG + " (32 lanes, tree merge)", DA)
    out = [Variant(function, nm, d + " in the working format", ref, impls[nm])
           for nm, d, ref in zip(names, descr, refs)]
    out.append(Variant(function, "shifted_acc32", descr[1] + ", accumulated in float32, rounded once",
                       "torch CPU half/bfloat16 kernels (upcast to float32)", impls["shifted"],
                       dtypes=NARROW, accumulate={"float16": "float32", "bfloat16": "float32"}))
    out.append(_production_variant(function))
    return out


def _build() -> dict[str, dict[str, Variant]]:
    reg: dict[str, list[Variant]] = {}
    reg["softlog"] = [
        Variant("softlog", "naive", "log(a*x + b), a = e - 1/e, b = 1/e", PAPER, textbook.softlog),
        Variant("softlog", "log1p", "-1 + log1p((e^2 - 1)*x)", "field-notes §1 identity", textbook.softlog_log1p),
        Variant("softlog", "centred", "log1p(a*((x - x0_hi) - x0_lo)), x0 = 1/(e+1) split hi+lo",
                "field-notes §1 identity; hi+lo constant (Dekker)", _softlog_centred),
        Variant("softlog", "centred_wide", "centred form evaluated in the next wider format, rounded once",
                "field-notes §2 (wider internal precision)", _softlog_centred,
                dtypes=("float16", "bfloat16", "float32"), accumulate=dict(WIDER)),
        _production_variant("softlog"),
    ]
    reg["logsumexp"] = _lse_family("logsumexp", {
        "naive": textbook.logsumexp, "shifted": textbook.logsumexp_shifted, "shifted_log1p": textbook.logsumexp_shifted_log1p,
        "online": _lse_online, "two_pass": _lse_two_pass})
    reg["log_softmax"] = _lse_family("log_softmax", {
        "naive": textbook.log_softmax, "shifted": textbook.log_softmax_shifted, "shifted_log1p": textbook.log_softmax_shifted_log1p,
        "online": _lsm_online, "two_pass": _lsm_two_pass})
    reg["softmax"] = _lse_family("softmax", {
        "naive": textbook.softmax, "shifted": textbook.softmax_shifted, "division_free": _sm_division_free,
        "online": _sm_online, "two_pass": _sm_two_pass})

    lc = _softlog_centred
    naive: dict[str, Callable[..., Any]] = {"softlog_entropy": textbook.softlog_entropy, "softlog_cross_entropy": textbook.softlog_cross_entropy,
             "sld": textbook.sld, "sld_sym": textbook.sld_sym}
    for fname, build, what in (("softlog_entropy", _entropy, "-sum p L(p)"),
                               ("softlog_cross_entropy", _cross, "-sum p L(q)")):
        reg[fname] = [
            Variant(fname, "naive", f"{what}, L = log(a x + b), pairwise sum", PAPER, naive[fname]),
            Variant(fname, "centred", f"{what}, L centred at x0, pairwise sum", "field-notes §1 identity",
                    build(lc, False)),
            Variant(fname, "centred_compensated", f"{what}, L centred, compensated (TwoSum) pairwise sum",
                    "Ogita, Rump & Oishi, SIAM J. Sci. Comput. 26(6), 2005", build(lc, True)),
            _production_variant(fname),
        ]
    for fname, build, what in (("sld", _sld, "1/2 sum p (L(p) - L(q))"),
                               ("sld_sym", _sld_sym, "1/4 sum (p - q)(L(p) - L(q))")):
        reg[fname] = [
            Variant(fname, "direct_naive", f"{what}, L(p) - L(q) as a difference of naive logs, pairwise sum",
                    PAPER, naive[fname]),
            Variant(fname, "direct", f"{what}, L(p) - L(q) as a difference of centred softlogs, pairwise sum",
                    "field-notes §1 identity", build(_direct_difference(lc), False)),
            Variant(fname, "ratio", f"{what}, L(p) - L(q) = log1p(a(p - q)/(a q + b)), pairwise sum",
                    "field-notes §1 identity", build(_softlog_ratio_difference, False)),
            Variant(fname, "ratio_compensated", f"{what}, ratio form, compensated (TwoSum) pairwise sum",
                    "Ogita, Rump & Oishi, SIAM J. Sci. Comput. 26(6), 2005", build(_softlog_ratio_difference, True)),
            _production_variant(fname),
        ]
    return {f: {v.name: v for v in vs} for f, vs in reg.items()}


REGISTRY: dict[str, dict[str, Variant]] = _build()
"""``REGISTRY[function][name]``: every variant, in display order."""


def variants(function: str, dtype: FormatLike | None = None) -> list[Variant]:
    """The variants of ``function`` (those that apply to ``dtype`` if given), in display order."""
    if function not in REGISTRY:
        raise ValueError(f"unknown function {function!r}; choose from {', '.join(FUNCTIONS)}")
    vs = list(REGISTRY[function].values())
    if dtype is not None:
        name = format_of(dtype).name
        vs = [v for v in vs if name in v.dtypes]
    return vs


def get(function: str, name: str) -> Variant:
    """``REGISTRY[function][name]`` with a clear error."""
    vs = {v.name: v for v in variants(function)}
    if name not in vs:
        raise ValueError(f"unknown variant {name!r} of {function}; choose from {', '.join(vs)}")
    return vs[name]


def evaluate(
    function: str, name: str, *args: ArrayLike, accumulate_dtype: FormatLike | None = None, check: bool = False
) -> np.ndarray:
    """Evaluate variant ``name`` of ``function`` on ``args`` (see :meth:`Variant.__call__`)."""
    return get(function, name)(*args, accumulate_dtype=accumulate_dtype, check=check)
