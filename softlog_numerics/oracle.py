"""Correctly rounded reference values, computed with mpmath interval arithmetic.

Every function here has the signature of the production function of the same name and returns,
elementwise, the exact mathematical result rounded *once* to the dtype of the input (round to
nearest, ties to even, gradual underflow, overflow to infinity).

How (proofs/oracle.md):

1. Special values (NaN, infinities, empty rows, masked ``-inf`` logits, out-of-domain input) are
   settled by the table in each docstring, outside mpmath.
2. Results that are exactly representable rationals in a way the algebra shows (``softlog(0) = -1``,
   ``softlog(1) = 1``, a single unmasked logit, ``p == q`` terms) are rounded exactly from a
   :class:`fractions.Fraction`.
3. Everything else is enclosed in an interval with ``mpmath.iv`` at working precision ``P`` bits. If
   both endpoints round to the same number of the target format (and the same sign of zero), that is
   the correctly rounded result; otherwise ``P`` is doubled (Ziv's strategy). ``P`` starts at
   ``p + 32`` and the loop gives up with :class:`OracleUndecided` past ``MAX_PRECISION`` bits rather
   than ever return a value it has not proven.

The interval context's precision is set for the duration of one evaluation and restored in a
``finally`` block; nothing global is left changed.
"""

from __future__ import annotations

import contextlib
import math
from fractions import Fraction

import mpmath
import numpy as np
from mpmath import iv
from mpmath import libmp

from ._axes import Rows, check_probabilities, check_same_shape
from ._dtypes import Format, as_float_array, format_of, result_format

__all__ = [
    "MAX_PRECISION",
    "OracleUndecided",
    "log_softmax",
    "logsumexp",
    "round_rational",
    "round_to",
    "sld",
    "sld_sym",
    "softlog",
    "softlog_cross_entropy",
    "softlog_entropy",
    "softlog_softmax",
    "softmax",
]

MAX_PRECISION = 1 << 15
NAN = float("nan")
INF = float("inf")


class OracleUndecided(ArithmeticError):
    """The rounding of a result was not decided below ``MAX_PRECISION`` bits (never silently guessed)."""


# ---------------------------------------------------------------------------------------------
# Rounding an exact binary or rational value to a format, once.


def round_rational(num: int, den: int, fmt) -> float:
    """Round ``num / den`` (integers, ``den > 0``) to ``fmt``, once; returned as the float64 that
    holds the result exactly (every value of the four formats is a float64).

    Ties go to even; values below the smallest normal are rounded on the subnormal grid; a value
    whose rounding is at least ``2**(emax+1)`` becomes ``±inf``. Zero results keep the sign of
    ``num`` (``-0.0`` for a negative value that underflows).
    """
    fmt = format_of(fmt)
    if den <= 0:
        raise ValueError("den must be positive")
    negative = num < 0
    num = abs(num)
    if num == 0:
        return 0.0
    # e = floor(log2(num/den))
    e = num.bit_length() - den.bit_length()
    if (num << max(0, -e)) < (den << max(0, e)):
        e -= 1
    q = max(e, fmt.emin) - (fmt.precision - 1)  # exponent of the last place
    # n = round(num / den / 2**q) to nearest, ties to even
    if q >= 0:
        n, r = divmod(num, den << q)
        twice_r, d = 2 * r, den << q
    else:
        n, r = divmod(num << -q, den)
        twice_r, d = 2 * r, den
    if twice_r > d or (twice_r == d and n & 1):
        n += 1
    if n and n.bit_length() - 1 + q > fmt.emax:
        value = float("inf")
    else:
        value = math.ldexp(float(n), q)  # n <= 2**p and the result is a float64: exact
    return -value if negative else value


def _round_mpf_tuple(t, fmt: Format):
    """Round a raw mpmath value ``(sign, man, exp, bc)`` to ``fmt``; None for NaN."""
    if t == libmp.fnan:
        return None
    if t == libmp.finf:
        return float("inf")
    if t == libmp.fninf:
        return float("-inf")
    sign, man, exp, _ = t
    if not man:
        return 0.0
    num = man << exp if exp >= 0 else man
    den = 1 if exp >= 0 else 1 << -exp
    return round_rational(-num if sign else num, den, fmt)


def round_to(value, dtype) -> np.ndarray:
    """Round an mpmath number, Fraction, int or float to ``dtype``, once (a 0-d array)."""
    fmt = format_of(dtype)
    if isinstance(value, Fraction):
        r = round_rational(value.numerator, value.denominator, fmt)
    elif isinstance(value, int):
        r = round_rational(value, 1, fmt)
    else:
        r = _round_mpf_tuple(mpmath.mpf(value)._mpf_, fmt)
        r = float("nan") if r is None else r
    return np.array(r, dtype=np.float64).astype(fmt.dtype)


# ---------------------------------------------------------------------------------------------
# Ziv loop over interval enclosures.


@contextlib.contextmanager
def _interval_precision(bits: int):
    saved = iv.prec
    try:
        iv.prec = bits
        yield
    finally:
        iv.prec = saved


class _ProvenNaN:
    """Returned by an enclosure to say the result is NaN (e.g. log of an interval below zero)."""


PROVEN_NAN = _ProvenNaN()


def _decide(interval, fmt: Format):
    """The common rounding of both endpoints of ``interval``, or None if they differ."""
    if interval is PROVEN_NAN:
        return NAN
    lo, hi = interval._mpi_
    a, b = _round_mpf_tuple(lo, fmt), _round_mpf_tuple(hi, fmt)
    if a is None or b is None or a != b:
        return None
    if a == 0.0:
        if lo == libmp.fzero and hi == libmp.fzero:
            return 0.0
        if lo[0] == 0 and lo != libmp.fzero:  # lo > 0
            return 0.0
        if hi[0] == 1:  # hi < 0
            return -0.0
        return None
    return a


def _ziv(fmt: Format, count: int, enclose, fixed: dict) -> list:
    """Correctly rounded values ``0..count-1``: ``fixed`` holds the settled ones, ``enclose(todo)``
    returns ``{i: interval}`` at the current interval precision for the others."""
    out = [fixed.get(i) for i in range(count)]
    todo = [i for i in range(count) if i not in fixed]
    bits = fmt.precision + 32
    while todo:
        if bits > MAX_PRECISION:
            raise OracleUndecided(
                f"rounding to {fmt.name} not decided at {bits // 2} bits for {len(todo)} value(s); "
                "the exact value may be a rounding boundary the oracle does not recognise as exact"
            )
        with _interval_precision(bits):
            enclosures = enclose(todo)
        undecided = []
        for i in todo:
            r = _decide(enclosures[i], fmt)
            if r is None:
                undecided.append(i)
            else:
                out[i] = r
        todo = undecided
        bits *= 2
    return out


def _softlog_constants():
    """``a = e - 1/e`` and ``b = 1/e`` as intervals at the current interval precision."""
    b = 1 / iv.e
    return iv.e - b, b


def _softlog_iv(x: float, consts):
    """Enclosure of L(x), or PROVEN_NAN when (e - 1/e) x + 1/e < 0 for certain."""
    a, b = consts
    arg = a * iv.mpf(x) + b
    if arg.b < 0:
        return PROVEN_NAN
    if arg.a <= 0:  # straddles the branch point: not decided at this precision
        return iv.mpf([-np.inf, np.inf])
    return iv.log(arg)


def _as_result(values: list, fmt: Format, shape) -> np.ndarray:
    return np.array(values, dtype=np.float64).reshape(shape).astype(fmt.dtype)



# ---------------------------------------------------------------------------------------------
# softlog


# ---------------------------------------------------------------------------------------------
# softlog

_BRANCH_POINT = Fraction(-1565176427496657, 10**16)  # -1/(e**2 - 1) = -0.15651764274966565...


def _softlog_settled(x: float):
    """L(x) where it needs no mpmath (special values and exact cases), else None."""
    if x != x or x == -INF:
        return NAN
    if x == INF:
        return INF
    if x == 0.0:
        return -1.0
    if x == 1.0:
        return 1.0
    return None


def _elementwise(xs: list, fmt: Format, settle, enclose_one) -> list:
    fixed = {}
    for i, x in enumerate(xs):
        v = settle(x)
        if v is not None:
            fixed[i] = v

    def enclose(todo):
        consts = _softlog_constants()
        return {i: enclose_one(xs[i], consts) for i in todo}

    return _ziv(fmt, len(xs), enclose, fixed)


def softlog(x) -> np.ndarray:
    """Correctly rounded ``L(x) = ln((e - 1/e) x + 1/e)`` in the dtype of ``x``.

    Special values: ``L(±0) = -1`` and ``L(1) = 1`` exactly, ``L(+inf) = +inf``; NaN, and every
    ``x < -1/(e**2 - 1)`` (``-inf`` included), give NaN.
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    xs = [float(v) for v in x.astype(np.float64).ravel()]
    return _as_result(_elementwise(xs, fmt, _softlog_settled, _softlog_iv), fmt, x.shape)


# ---------------------------------------------------------------------------------------------
# logsumexp, log_softmax, softmax


def _lse_row_special(row: list):
    """(settled LSE or None, finite entries) for one row."""
    if any(v != v for v in row):
        return NAN, None
    if any(v == INF for v in row):
        return INF, None
    finite = [v for v in row if v != -INF]
    if not finite:
        return -INF, None
    if len(finite) == 1:
        return finite[0], None
    return None, finite


def _lse_iv(finite: list):
    m = max(finite)
    s = iv.mpf(0)
    for v in finite:
        s += iv.exp(iv.mpf(v) - m)
    return m + iv.log(s)


def logsumexp(x, axis=-1, keepdims: bool = False) -> np.ndarray:
    """Correctly rounded ``ln(sum(exp(x)))`` along ``axis`` (int, tuple or None).

    Special values: a NaN in the row gives NaN; else a ``+inf`` gives ``+inf``; ``-inf`` entries
    are masked out (they contribute ``exp(-inf) = 0``); an empty or all ``-inf`` row gives ``-inf``;
    a row with one finite entry returns it exactly. A finite result beyond the format's range is
    ``+inf`` (correct rounding of an overflow).
    """
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    rows = Rows(x.astype(np.float64), axis)
    out = []
    for row in rows.rows.tolist():
        settled, finite = _lse_row_special(row)
        if settled is not None:
            out.append(round_rational(*Fraction(settled).as_integer_ratio(), fmt) if np.isfinite(settled) else settled)
            continue
        out.extend(_ziv(fmt, 1, lambda todo, f=finite: {0: _lse_iv(f)}, {}))
    return rows.reduced(np.array(out, dtype=np.float64), keepdims).astype(fmt.dtype)


def _softmax_rows(x, axis, log: bool) -> np.ndarray:
    x = as_float_array(x)
    fmt = format_of(x.dtype)
    rows = Rows(x.astype(np.float64), axis)
    result = np.empty(rows.rows.shape, dtype=np.float64)
    for r, row in enumerate(rows.rows.tolist()):
        result[r] = _softmax_row(row, fmt, log)
    return rows.elementwise(result).astype(fmt.dtype)


def _softmax_row(row: list, fmt: Format, log: bool) -> list:
    n = len(row)
    if n == 0:
        return []
    masked = -INF if log else 0.0
    if any(v != v for v in row) or all(v == -INF for v in row):
        return [NAN] * n
    if any(v == INF for v in row):
        return [NAN if v == INF else masked for v in row]
    finite = [v for v in row if v != -INF]
    if len(finite) == 1:
        return [masked if v == -INF else (0.0 if log else 1.0) for v in row]
    fixed = {i: masked for i, v in enumerate(row) if v == -INF}

    def enclose(todo):
        lse = _lse_iv(finite)
        if log:
            return {i: iv.mpf(row[i]) - lse for i in todo}
        return {i: iv.exp(iv.mpf(row[i]) - lse) for i in todo}

    return _ziv(fmt, n, enclose, fixed)


def log_softmax(x, axis=-1) -> np.ndarray:
    """Correctly rounded ``x - logsumexp(x)`` along ``axis``, in the dtype of ``x``.

    Special values: a row holding NaN, or only ``-inf``, is all NaN; in a row holding ``+inf`` the
    ``+inf`` entries are NaN and the others ``-inf``; ``-inf`` entries of other rows give ``-inf``;
    the only finite entry of a row gives ``+0``.
    """
    return _softmax_rows(x, axis, log=True)


def softmax(x, axis=-1) -> np.ndarray:
    """Correctly rounded ``exp(x - logsumexp(x))`` along ``axis``, in the dtype of ``x``.

    Special values: as :func:`log_softmax`, with ``0`` in place of ``-inf`` and ``1`` in place of
    ``0``.
    """
    return _softmax_rows(x, axis, log=False)


# ---------------------------------------------------------------------------------------------
# Softlog entropy, cross-entropy and divergences: sums of terms, some exact.

_EXACT_L = {0.0: -1, 1.0: 1}


def _term_entropy(p, q):
    if p == 0.0:
        return Fraction(0), None
    if p in _EXACT_L:
        return Fraction(p) * _EXACT_L[p], None
    return None, lambda c: iv.mpf(p) * _softlog_iv(p, c)


def _term_cross(p, q):
    if p == 0.0 and q > float(_BRANCH_POINT) and q != INF:
        return Fraction(0), None
    if q in _EXACT_L:
        return Fraction(p) * _EXACT_L[q], None
    return None, lambda c: iv.mpf(p) * _softlog_iv(q, c)


def _term_sld(p, q):
    if p == 0.0 or p == q:
        return Fraction(0), None
    if p in _EXACT_L and q in _EXACT_L:
        return Fraction(p) * (_EXACT_L[p] - _EXACT_L[q]), None
    return None, lambda c: iv.mpf(p) * (_softlog_iv(p, c) - _softlog_iv(q, c))


def _term_sym(p, q):
    if p == q:
        return Fraction(0), None
    if p in _EXACT_L and q in _EXACT_L:
        return Fraction(p - q) * (_EXACT_L[p] - _EXACT_L[q]), None
    return None, lambda c: (iv.mpf(p) - iv.mpf(q)) * (_softlog_iv(p, c) - _softlog_iv(q, c))


def _row_sum(terms: list, scale: Fraction, fmt: Format) -> float:
    """Correctly rounded ``scale * sum(terms)``; each term is (Fraction, None) or (None, enclose)."""
    exact = sum((t for t, _ in terms if t is not None), Fraction(0))
    inexact = [f for t, f in terms if t is None]
    if not inexact:
        v = exact * scale
        return round_rational(v.numerator, v.denominator, fmt) + 0.0

    def enclose(todo):
        c = _softlog_constants()
        total = iv.mpf(exact.numerator) / exact.denominator
        for f in inexact:
            t = f(c)
            if t is PROVEN_NAN:
                return {0: PROVEN_NAN}
            total += t
        return {0: total * scale.numerator / scale.denominator}

    return _ziv(fmt, 1, enclose, {})[0]


def _divergence(term, scale, args, names, axis, keepdims, validate):
    arrays = [as_float_array(a, n) for a, n in zip(args, names)]
    fmt = result_format(*arrays)
    arrays = [a.astype(fmt.dtype) for a in arrays]
    if len(arrays) == 2:
        check_same_shape(*arrays, *names)
    if validate:
        for a, n in zip(arrays, names):
            check_probabilities(a, axis, n)
    rows = [Rows(a.astype(np.float64), axis) for a in arrays]
    ps = rows[0].rows.tolist()
    qs = rows[-1].rows.tolist()
    out = []
    for prow, qrow in zip(ps, qs):
        if any(not math.isfinite(v) for v in prow + qrow):
            out.append(NAN)
            continue
        out.append(_row_sum([term(p, q) for p, q in zip(prow, qrow)], scale, fmt))
    return rows[0].reduced(np.array(out, dtype=np.float64), keepdims).astype(fmt.dtype)


def softlog_entropy(p, axis=-1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
    """Correctly rounded ``-sum(p * L(p))`` along ``axis``.

    With ``validate=False`` a row holding NaN or ``±inf`` gives NaN and an entry below
    ``-1/(e**2 - 1)`` gives NaN; an exact zero result is ``+0``.
    """
    return _divergence(_term_entropy, Fraction(-1), (p,), ("p",), axis, keepdims, validate)


def softlog_cross_entropy(p, q, axis=-1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
    """Correctly rounded ``-sum(p * L(q))`` along ``axis``."""
    return _divergence(_term_cross, Fraction(-1), (p, q), ("p", "q"), axis, keepdims, validate)


def sld(p, q, axis=-1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
    """Correctly rounded ``sum(p * (L(p) - L(q))) / 2`` along ``axis``."""
    return _divergence(_term_sld, Fraction(1, 2), (p, q), ("p", "q"), axis, keepdims, validate)


def sld_sym(p, q, axis=-1, keepdims: bool = False, *, validate: bool = True) -> np.ndarray:
    """Correctly rounded ``sum((p - q) * (L(p) - L(q))) / 4`` along ``axis``."""
    return _divergence(_term_sym, Fraction(1, 4), (p, q), ("p", "q"), axis, keepdims, validate)


# ---------------------------------------------------------------------------------------------
# The softlog-softmax layer


def softlog_softmax(P, w, *, log: bool = False, validate: bool = True) -> np.ndarray:
    """Correctly rounded ``softmax_k(sum_b w[b, k] * L(P[..., b, k]))`` (``log_softmax`` if ``log``).

    ``P`` has shape ``(..., B, K)``; ``w`` has shape ``(B, K)`` or ``(B,)``. The result has shape
    ``(..., K)`` and the common dtype of ``P`` and ``w``.
    """
    P = as_float_array(P, "P")
    w = as_float_array(w, "w")
    fmt = result_format(P, w)
    P, w = P.astype(fmt.dtype), w.astype(fmt.dtype)
    _check_layer_shapes(P, w)
    if validate:
        check_probabilities(P, -1, "P")
        if not np.isfinite(w.astype(np.float64)).all():
            raise ValueError("w must be finite (pass validate=False to evaluate anyway)")
    B, K = P.shape[-2:]
    w2 = np.broadcast_to(w.reshape(B, -1), (B, K)).astype(np.float64)
    flat = P.astype(np.float64).reshape(-1, B, K)
    out = np.empty((flat.shape[0], K), dtype=np.float64)
    for r in range(flat.shape[0]):
        out[r] = _layer_row(flat[r], w2, fmt, log)
    return out.reshape(P.shape[:-2] + (K,)).astype(fmt.dtype)


def _check_layer_shapes(P, w):
    if P.ndim < 2:
        raise ValueError(f"P must have shape (..., B, K), got {P.shape}")
    B, K = P.shape[-2:]
    if w.shape not in ((B, K), (B,)):
        raise ValueError(f"w must have shape (B, K) = {(B, K)} or (B,) = {(B,)}, got {w.shape} (P has shape {P.shape})")


def _layer_row(Pr, w2, fmt, log):
    B, K = Pr.shape
    if K == 0:
        return []
    if not (np.isfinite(Pr).all() and np.isfinite(w2).all()):
        return [NAN] * K

    def enclose(todo):
        c = _softlog_constants()
        z = []
        for k in range(K):
            s = iv.mpf(0)
            for b in range(B):
                if w2[b, k] != 0.0:
                    t = _softlog_iv(float(Pr[b, k]), c)
                    if t is PROVEN_NAN:
                        return {i: PROVEN_NAN for i in todo}
                    s += iv.mpf(float(w2[b, k])) * t
            z.append(s)
        m = z[0]
        for v in z[1:]:
            m = iv.mpf([max(m.a, v.a), max(m.b, v.b)])
        ex = [iv.exp(v - m) for v in z]
        tot = iv.mpf(0)
        for v in ex:
            tot += v
        if log:
            lt = iv.log(tot)
            return {i: (z[i] - m) - lt for i in todo}
        return {i: ex[i] / tot for i in todo}

    return _ziv(fmt, K, enclose, {})
