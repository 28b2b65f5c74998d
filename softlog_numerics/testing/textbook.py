"""The textbook formulas, each written once, over one arithmetic protocol.

A formula here is a function ``f(A, *args)`` of an *arithmetic* ``A`` and arrays (rows along the
last axis). It performs every operation through ``A``, so the same text is evaluated

* **exactly**, every operation's exact result rounded once to the format
  (:class:`softlog_numerics.analysis.format_arithmetic.ExactOps`);
* **emulated**, every operation rounded to the format, strictly (:class:`softlog_numerics.algorithms.Arith`,
  pairwise sums, an optional wider accumulator) or vectorised over grids
  (:class:`softlog_numerics.analysis.format_arithmetic.VectorOps`);
* **natively**, by a library's own operations in the input's dtype
  (:class:`softlog_numerics.testing.backends.NativeOps`: NumPy, PyTorch, JAX), which is what the
  audit's textbook baselines are.

The protocol (:class:`Arithmetic`): ``const(name)`` for ``name`` in :data:`CONSTANTS`, the binary
``add``, ``sub``, ``mul``, ``div``, the unary ``neg``, ``exp``, ``log``, ``log1p``, and the row
reductions ``max`` and ``sum`` along the last axis. The shifted formulas also use
:func:`safe_shift` and :func:`without_argmax`, which are NumPy selections (exact in any format), so
they take NumPy carriers only.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = [
    "CONSTANTS",
    "Arithmetic",
    "log_softmax",
    "log_softmax_shifted",
    "log_softmax_shifted_log1p",
    "logsumexp",
    "logsumexp_shifted",
    "logsumexp_shifted_log1p",
    "safe_shift",
    "shifted_terms",
    "sld",
    "sld_sym",
    "softlog",
    "softlog_cross_entropy",
    "softlog_entropy",
    "softlog_inverse",
    "softlog_log1p",
    "softmax",
    "softmax_shifted",
    "without_argmax",
]

CONSTANTS = {
    "a": "e - 1/e",
    "b": "1/e",
    "c": "e**2 - 1",
    "one": "1",
    "half": "1/2",
    "quarter": "1/4",
}
"""The constants a formula may ask for, by name: each is rounded once to the arithmetic's format
(natively: the float64 constant, which the library then rounds to the input's dtype)."""


class Arithmetic(Protocol):
    """What a formula needs of an arithmetic (see the module docstring)."""

    def const(self, name: str): ...
    def add(self, a, b): ...
    def sub(self, a, b): ...
    def mul(self, a, b): ...
    def div(self, a, b): ...
    def neg(self, a): ...
    def exp(self, a): ...
    def log(self, a): ...
    def log1p(self, a): ...
    def max(self, a): ...
    def sum(self, a): ...


# ---------------------------------------------------------------------------------------------
# softlog


def softlog(A, x):
    """``log(a x + b)``, ``a = e - 1/e``, ``b = 1/e`` (the paper's definition, as printed)."""
    return A.log(A.add(A.mul(A.const("a"), x), A.const("b")))


def softlog_inverse(A, y):
    """``(exp(y) - b) / a``, the inverse of :func:`softlog` as printed."""
    return A.div(A.sub(A.exp(y), A.const("b")), A.const("a"))


def softlog_log1p(A, x):
    """``-1 + log1p((e**2 - 1) x)`` (the same function: ``a x + b = (1 + c x) / e``)."""
    return A.add(A.neg(A.const("one")), A.log1p(A.mul(A.const("c"), x)))


# ---------------------------------------------------------------------------------------------
# logsumexp, log_softmax, softmax


def logsumexp(A, x):
    """``log(sum(exp(x)))``, no shift."""
    return A.log(A.sum(A.exp(x)))


def log_softmax(A, x):
    """``x - log(sum(exp(x)))``, no shift."""
    return A.sub(x, A.log(A.sum(A.exp(x)))[..., None])


def softmax(A, x):
    """``exp(x) / sum(exp(x))``, no shift."""
    e = A.exp(x)
    return A.div(e, A.sum(e)[..., None])


def safe_shift(m):
    """The shift scipy, torch and jax use: the row maximum, or 0 where it is not finite."""
    return np.where(np.isfinite(m), m, 0.0).astype(np.asarray(m).dtype)


def shifted_terms(A, x):
    """``(shift, d = x - shift, exp(d))`` with the shift of :func:`safe_shift`."""
    sh = safe_shift(A.max(x))[..., None]
    d = A.sub(x, sh)
    return sh, d, A.exp(d)


def without_argmax(x, e):
    """``e`` with the entry at each row's (first) argmax of ``x`` replaced by +0."""
    if x.shape[-1] == 0:
        return e
    k = np.argmax(x, axis=-1)
    e = np.array(e, copy=True)
    np.put_along_axis(e, np.asarray(k)[..., None], 0.0, axis=-1)
    return e


def logsumexp_shifted(A, x):
    """``m + log(sum(exp(x - m)))``, ``m`` the row maximum (three passes, as scipy, torch, jax)."""
    sh, _, e = shifted_terms(A, x)
    return A.add(sh[..., 0], A.log(A.sum(e)))


def logsumexp_shifted_log1p(A, x):
    """``m + log1p(sum_{i != argmax} exp(x_i - m))`` (the unguarded maximum: an all-masked row
    gives ``-inf + log1p(0) = -inf``)."""
    _, _, e = shifted_terms(A, x)
    return A.add(A.max(x), A.log1p(A.sum(without_argmax(x, e))))


def log_softmax_shifted(A, x):
    """``(x - m) - log(sum(exp(x - m)))``."""
    _, d, e = shifted_terms(A, x)
    return A.sub(d, A.log(A.sum(e))[..., None])


def log_softmax_shifted_log1p(A, x):
    """``(x - m) - log1p(sum_{i != argmax} exp(x_i - m))``."""
    _, d, e = shifted_terms(A, x)
    return A.sub(d, A.log1p(A.sum(without_argmax(x, e)))[..., None])


def softmax_shifted(A, x):
    """``exp(x - m) / sum(exp(x - m))``."""
    _, _, e = shifted_terms(A, x)
    return A.div(e, A.sum(e)[..., None])


# ---------------------------------------------------------------------------------------------
# The entropies and divergences, with the printed softlog


def softlog_entropy(A, p):
    """``-sum p L(p)``."""
    return A.neg(A.sum(A.mul(p, softlog(A, p))))


def softlog_cross_entropy(A, p, q):
    """``-sum p L(q)``."""
    return A.neg(A.sum(A.mul(p, softlog(A, q))))


def sld(A, p, q):
    """``sum p (L(p) - L(q)) / 2``."""
    return A.mul(A.const("half"), A.sum(A.mul(p, A.sub(softlog(A, p), softlog(A, q)))))


def sld_sym(A, p, q):
    """``sum (p - q)(L(p) - L(q)) / 4``."""
    return A.mul(A.const("quarter"), A.sum(A.mul(A.sub(p, q), A.sub(softlog(A, p), softlog(A, q)))))
