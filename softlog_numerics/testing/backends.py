"""The named implementations the audit knows, and how each is called.

**Named backends** (:data:`BACKENDS`, :func:`get_backend`, :func:`resolve`): for each of
``numpy-naive``, ``scipy``, ``torch``, ``jax`` and ``softlog_numerics``, the exact call that is
audited for every function of the contract, and which array library it takes. A backend whose
package is missing raises :class:`BackendNotInstalled` naming the package to install. Any
importable callable can be audited as ``module:attr`` (``module:attr@torch`` to hand it torch
tensors). Functions that have no counterpart in a library (the softlog and the divergences) are
audited as the textbook formula written in that library's own operations, and say so.

The exact conversions between libraries (:func:`to_numpy`, :func:`from_numpy`) and the Array-API
wrapper of the production functions (:func:`array_api`) live in
:mod:`softlog_numerics._core.interop` and are re-exported here.

Every backend function is called positionally with arrays whose last axis is the one reduced:
``f(x)`` for ``softlog``, ``logsumexp``, ``log_softmax``, ``softmax``; ``f(p)`` for
``softlog_entropy``; ``f(p, q)`` for ``softlog_cross_entropy``, ``sld`` and ``sld_sym``.

The backward pass (:data:`GRAD_FUNCTIONS`): ``f(x, g)`` returns the vector-Jacobian product of
``log_softmax``, ``softmax`` (``g`` of ``x``'s shape) or ``logsumexp`` (``g`` of the reduction's
shape) at ``x``: PyTorch's through ``torch.autograd.grad``, JAX's through ``jax.vjp`` (under
``jax.jit``), SciPy's and the textbook's as the formula ``g - softmax(x) sum(g)`` and kin evaluated
in the input's dtype, this library's as ``softlog_numerics.grad``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from softlog_numerics import functions
from softlog_numerics._core import constants as _c
from softlog_numerics._core.interop import (
    LIBRARIES,
    BackendError,
    BackendNotInstalled,
    UnknownBackend,
    array_api,
    from_numpy,
    jax_numpy,
    library_of,
    require,
    to_numpy,
)
from softlog_numerics.functions import grad
from softlog_numerics.testing import textbook
from softlog_numerics.testing.contract import ULP_BOUNDS

__all__ = [
    "BACKENDS",
    "GRAD_FUNCTIONS",
    "LIBRARIES",
    "Backend",
    "BackendError",
    "BackendNotInstalled",
    "Resolved",
    "UnknownBackend",
    "array_api",
    "from_numpy",
    "get_backend",
    "library_of",
    "resolve",
    "to_numpy",
]

GRAD_FUNCTIONS = ("grad.log_softmax", "grad.softmax", "grad.logsumexp", "grad.cross_entropy")
"""The VJPs an audit can measure (against :mod:`softlog_numerics.oracle.grad`); ``grad.cross_entropy``
is called as ``f(logits, target, g)`` with a class index (int64, ``-100`` ignored) or a probability
target, and ``g`` the cotangent of the per-example loss."""
IGNORE_INDEX = -100
FUNCTIONS = tuple(ULP_BOUNDS) + GRAD_FUNCTIONS
LOGIT_FUNCTIONS = ("logsumexp", "log_softmax", "softmax")

_A = math.e - 1.0 / math.e  # softlog slope, rounded to float64 (used by the textbook formulas only)
_B = 1.0 / math.e


# ---------------------------------------------------------------------------------------------
# Textbook formulas, written once over a tiny set of operations


class NativeOps:
    """A library's own arithmetic in the input's dtype: the native implementation of the protocol
    of :mod:`softlog_numerics.testing.textbook` (operators ``+ - * /`` and unary ``-`` on the
    library's arrays, its ``exp``, ``log``, ``log1p``, ``max`` and ``sum`` over the last axis, and
    the constants as Python floats, which the library rounds to the array's dtype)."""

    _CONSTANTS = {"a": _A, "b": _B, "c": _c.K0[0], "one": 1.0, "half": 0.5, "quarter": 0.25}
    """Each the float64 nearest the constant (``a`` and ``b`` are rounded correctly by ``math``;
    ``c = e**2 - 1`` is the head of the exact pair ``K0`` of :mod:`softlog_numerics._core.constants`)."""

    def __init__(self, exp, log, log1p, rowmax, rowsum):
        self.exp, self.log, self.log1p, self.max, self.sum = exp, log, log1p, rowmax, rowsum

    def const(self, name: str) -> float:
        return self._CONSTANTS[name]

    @staticmethod
    def add(a, b):
        return a + b

    @staticmethod
    def sub(a, b):
        return a - b

    @staticmethod
    def mul(a, b):
        return a * b

    @staticmethod
    def div(a, b):
        return a / b

    @staticmethod
    def neg(a):
        return -a


_TEXTBOOK: dict[str, Callable[..., Any]] = {
    "softlog": textbook.softlog,
    "softlog_inverse": textbook.softlog_inverse,
    "logsumexp": textbook.logsumexp,
    "log_softmax": textbook.log_softmax,
    "softmax": textbook.softmax,
    "softlog_entropy": textbook.softlog_entropy,
    "softlog_cross_entropy": textbook.softlog_cross_entropy,
    "sld": textbook.sld,
    "sld_sym": textbook.sld_sym,
}


def _textbook(ops: NativeOps) -> dict[str, Callable]:
    """The formulas as printed (:mod:`softlog_numerics.testing.textbook`), in the input's dtype,
    with no max shift and no compensation."""
    return {name: functools.partial(formula, ops) for name, formula in _TEXTBOOK.items()}


_TEXTBOOK_CALLS = {
    "softlog": "log((e - 1/e)*x + 1/e)",
    "softlog_inverse": "(exp(y) - 1/e) / (e - 1/e)",
    "logsumexp": "log(sum(exp(x)))",
    "log_softmax": "x - log(sum(exp(x)))",
    "softmax": "exp(x) / sum(exp(x))",
    "softlog_entropy": "-sum(p * log((e - 1/e)*p + 1/e))",
    "softlog_cross_entropy": "-sum(p * log((e - 1/e)*q + 1/e))",
    "sld": "sum(p * (L(p) - L(q))) / 2 with L(x) = log((e - 1/e)*x + 1/e)",
    "sld_sym": "sum((p - q) * (L(p) - L(q))) / 4 with L(x) = log((e - 1/e)*x + 1/e)",
}


def _textbook_vjps(softmax: Callable, rowsum: Callable, expand: Callable) -> dict[str, Callable]:
    """The VJPs as usually written, from a forward softmax, in the input's dtype: ``g - y sum(g)``,
    ``y (g - sum(g y))``, ``g y``, and for the fused loss ``g (y - t)`` (NumPy arrays)."""
    return {
        "grad.log_softmax": lambda x, g: g - softmax(x) * expand(rowsum(g)),
        "grad.softmax": lambda x, g: (lambda y: y * (g - expand(rowsum(g * y))))(softmax(x)),
        "grad.logsumexp": lambda x, g: expand(g) * softmax(x),
        "grad.cross_entropy": lambda x, t, g: _np_loss_vjp(softmax(x), t, g),
    }


def _np_loss_vjp(y, t, g):
    """``g (y - t)`` in ``y``'s dtype, ``t`` a class index (one-hot; ``-100``: a zero gradient) or
    a probability target."""
    g = np.asarray(g, dtype=y.dtype)
    if np.issubdtype(np.asarray(t).dtype, np.integer):
        live = t != IGNORE_INDEX
        onehot = (np.arange(y.shape[-1]) == np.where(live, t, 0)[..., None]).astype(y.dtype)
        return np.where(np.expand_dims(live, -1), np.expand_dims(g, -1) * (y - onehot), y.dtype.type(0))
    return np.expand_dims(g, -1) * (y - t)


_GRAD_CALLS = {
    "grad.log_softmax": "g - y * sum(g)",
    "grad.softmax": "y * (g - sum(g * y))",
    "grad.logsumexp": "g * y",
    "grad.cross_entropy": "g * (y - t), t the one-hot target or the probabilities",
}


def _numpy_ops() -> NativeOps:
    return NativeOps(np.exp, np.log, np.log1p, lambda x: np.max(x, axis=-1), lambda x: np.sum(x, axis=-1))


def _torch_ops() -> NativeOps:
    import torch

    return NativeOps(torch.exp, torch.log, torch.log1p, lambda x: torch.amax(x, dim=-1), lambda x: torch.sum(x, dim=-1))


def _jax_ops() -> NativeOps:
    _, jnp = jax_numpy()
    return NativeOps(jnp.exp, jnp.log, jnp.log1p, lambda x: jnp.max(x, axis=-1), lambda x: jnp.sum(x, axis=-1))


# ---------------------------------------------------------------------------------------------
# Named backends


@dataclass(frozen=True)
class Backend:
    """A named implementation of the contract's functions, as the audit calls it.

    Attributes
    ----------
    name : str
        What the CLI and :func:`get_backend` accept.
    library : str
        The array library its functions take and return (inputs are converted to it exactly).
    requires : tuple of str
        Modules that must be importable.
    calls : dict
        For every function of the contract, the exact call that is audited.
    native : tuple of str
        The functions that call the library's own implementation (the rest are textbook formulas
        in the library's operations); the CLI audits these by default.
    """

    name: str
    library: str
    requires: tuple[str, ...]
    calls: dict[str, str]
    native: tuple[str, ...]
    summary: str
    _factory: Callable[[], dict[str, Callable]] = field(repr=False, compare=False)

    def available(self) -> bool:
        """Whether every required module can be imported."""
        return all(importlib.util.find_spec(m) is not None for m in self.requires)

    def check_available(self) -> None:
        """BackendNotInstalled naming the package to install, if a required module is missing."""
        for m in self.requires:
            require(m, f"backend {self.name!r}")

    def functions(self) -> dict[str, Callable]:
        """Every function of the contract, as callables taking arrays of :attr:`library`."""
        self.check_available()
        return self._factory()

    def function(self, name: str) -> Callable:
        """One function of the contract (see :attr:`calls` for what it is)."""
        return _getter(self.functions())(name)


def _np_expand(v):
    return np.expand_dims(v, -1)


def _numpy_naive():
    fns = _textbook(_numpy_ops())
    fns.update(_textbook_vjps(fns["softmax"], lambda v: np.sum(v, axis=-1), _np_expand))
    return fns


def _scipy():
    import scipy.special as sp

    fns = _textbook(_numpy_ops())
    fns["logsumexp"] = lambda x: sp.logsumexp(x, axis=-1)
    fns["log_softmax"] = lambda x: sp.log_softmax(x, axis=-1)
    fns["softmax"] = lambda x: sp.softmax(x, axis=-1)
    fns.update(_textbook_vjps(fns["softmax"], lambda v: np.sum(v, axis=-1), _np_expand))
    return fns


def _torch_vjp(forward: Callable) -> Callable:
    """``(x, g) -> torch.autograd.grad(forward(x), x, g)``."""
    import torch

    def vjp(x, g):
        xx = x.detach().clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(forward(xx), xx, g)
        return gx

    return vjp


def _torch():
    import torch
    import torch.nn.functional as F

    fns = _textbook(_torch_ops())
    fns["logsumexp"] = lambda x: torch.logsumexp(x, dim=-1)
    fns["log_softmax"] = lambda x: F.log_softmax(x, dim=-1)
    fns["softmax"] = lambda x: F.softmax(x, dim=-1)
    for name in LOGIT_FUNCTIONS:
        fns[f"grad.{name}"] = _torch_vjp(fns[name])

    def loss_vjp(x, t, g):  # the fused kernel: F.cross_entropy, unbatched, ignore_index=-100
        xx = x.detach().clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(F.cross_entropy(xx, t, reduction="none"), xx, g)
        return gx

    fns["grad.cross_entropy"] = loss_vjp
    return fns


def _jax_fns():
    jax, jnp = jax_numpy()
    import jax.scipy.special as jss

    fns = _textbook(_jax_ops())
    fns["logsumexp"] = lambda x: jss.logsumexp(x, axis=-1)
    fns["log_softmax"] = lambda x: jax.nn.log_softmax(x, axis=-1)
    fns["softmax"] = lambda x: jax.nn.softmax(x, axis=-1)
    for name in LOGIT_FUNCTIONS:
        fns[f"grad.{name}"] = (lambda f: lambda x, g: jax.vjp(f, x)[1](g)[0])(fns[name])

    def loss(x, t):  # -sum t log_softmax(x), t one-hot (masked where ignored) or probabilities
        if jnp.issubdtype(t.dtype, jnp.integer):
            live = t != IGNORE_INDEX
            t = jax.nn.one_hot(jnp.where(live, t, 0), x.shape[-1], dtype=x.dtype) * live[..., None]
        return -jnp.sum(t * jax.nn.log_softmax(x, axis=-1), axis=-1)

    fns["grad.cross_entropy"] = lambda x, t, g: jax.vjp(lambda v: loss(v, t), x)[1](g)[0]
    # Under jax.jit, as JAX code usually runs (and one compilation per shape instead of one per
    # operation: eager JAX would take minutes over the audit's many shapes).
    return {name: jax.jit(f) for name, f in fns.items()}




def _library_function(name: str) -> Callable:
    """``softlog_numerics.<name>`` (the public function; ``grad.<f>`` from ``softlog_numerics.grad``)."""
    if name.startswith("grad."):
        return getattr(grad, name[5:])
    return getattr(functions, name)


def _softlog_numerics_fns():
    out = {}
    for name in FUNCTIONS:
        try:
            out[name] = _library_function(name)
        except (ImportError, AttributeError) as e:
            out[name] = _missing(name, e)
    return out


def _missing(name: str, error: Exception) -> Callable:
    def missing(*args):
        raise BackendNotInstalled(f"softlog_numerics.{name} is not available in this installation ({error})")

    missing.missing = True  # type: ignore[attr-defined]  # a marker on the function object
    return missing


def _getter(fns: dict[str, Callable]) -> Callable[[str], Callable]:
    def get(name: str) -> Callable:
        if name not in fns:
            raise ValueError(f"unknown function {name!r}; choose from {', '.join(FUNCTIONS)}")
        fn = fns[name]
        if getattr(fn, "missing", False):
            fn()  # raises BackendNotInstalled with the reason
        return fn

    return get


def _call_text(native: dict[str, str], lib_ops: str) -> dict[str, str]:
    calls = {}
    for f in FUNCTIONS:
        if f in native:
            calls[f] = native[f]
        elif f in _GRAD_CALLS:
            calls[f] = f"VJP formula in {lib_ops}, y the softmax above: {_GRAD_CALLS[f]}"
        else:
            calls[f] = f"textbook formula in {lib_ops}: {_TEXTBOOK_CALLS[f]}"
    return calls


_SCIPY_NATIVE = {
    "logsumexp": "scipy.special.logsumexp(x, axis=-1)",
    "log_softmax": "scipy.special.log_softmax(x, axis=-1)",
    "softmax": "scipy.special.softmax(x, axis=-1)",
}
_TORCH_NATIVE = {
    "logsumexp": "torch.logsumexp(x, dim=-1)  (same kernel as torch.special.logsumexp), CPU",
    "log_softmax": "torch.nn.functional.log_softmax(x, dim=-1), CPU",
    "softmax": "torch.nn.functional.softmax(x, dim=-1), CPU",
    "grad.logsumexp": "torch.autograd.grad(torch.logsumexp(x, dim=-1), x, g), CPU",
    "grad.log_softmax": "torch.autograd.grad(torch.nn.functional.log_softmax(x, dim=-1), x, g), CPU",
    "grad.softmax": "torch.autograd.grad(torch.nn.functional.softmax(x, dim=-1), x, g), CPU",
    "grad.cross_entropy": "torch.autograd.grad(torch.nn.functional.cross_entropy(x, t, reduction='none'), x, g), CPU",
}
_JAX_NATIVE = {
    "logsumexp": "jax.jit(lambda x: jax.scipy.special.logsumexp(x, axis=-1)), x64 enabled, default device",
    "log_softmax": "jax.jit(lambda x: jax.nn.log_softmax(x, axis=-1)), x64 enabled, default device",
    "softmax": "jax.jit(lambda x: jax.nn.softmax(x, axis=-1)), x64 enabled, default device",
    "grad.logsumexp": "jax.jit(jax.vjp(lambda x: jax.scipy.special.logsumexp(x, axis=-1), x)[1](g))",
    "grad.log_softmax": "jax.jit(jax.vjp(lambda x: jax.nn.log_softmax(x, axis=-1), x)[1](g))",
    "grad.softmax": "jax.jit(jax.vjp(lambda x: jax.nn.softmax(x, axis=-1), x)[1](g))",
    "grad.cross_entropy": "jax.jit(jax.vjp(lambda x: -sum(t * jax.nn.log_softmax(x)), x)[1](g)), t one-hot",
}

BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend(
            "numpy-naive", "numpy", ("numpy",),
            {f: f"NumPy, in the input dtype: {_TEXTBOOK_CALLS.get(f) or _GRAD_CALLS[f]}" for f in FUNCTIONS},
            LOGIT_FUNCTIONS,
            "the textbook formulas in NumPy, no max shift: the control that must fail",
            _numpy_naive,
        ),
        Backend(
            "scipy", "numpy", ("scipy",),
            _call_text(_SCIPY_NATIVE, "NumPy"), LOGIT_FUNCTIONS,
            "scipy.special on NumPy arrays", _scipy,
        ),
        Backend(
            "torch", "torch", ("torch",),
            _call_text(_TORCH_NATIVE, "torch ops on CPU tensors"), LOGIT_FUNCTIONS,
            "PyTorch on CPU tensors of the same dtype (bfloat16 as torch.bfloat16)", _torch,
        ),
        Backend(
            "jax", "jax", ("jax",),
            _call_text(_JAX_NATIVE, "jax.numpy under jax.jit"), LOGIT_FUNCTIONS,
            "JAX with 64-bit types enabled, arrays of the same dtype", _jax_fns,
        ),
        Backend(
            "softlog_numerics", "numpy", ("numpy",),
            {f: f"softlog_numerics.{f}(*args)  (NumPy)" for f in FUNCTIONS}, tuple(ULP_BOUNDS),
            "this library's own functions", _softlog_numerics_fns,
        ),
    )
}
"""The named backends. ``softlog_numerics@torch`` / ``@jax`` audit :func:`array_api`-wrapped
library functions on that library's arrays."""


def get_backend(name: str) -> Backend:
    """The named backend (UnknownBackend for other names; BackendNotInstalled if its package is
    missing)."""
    if name not in BACKENDS:
        raise UnknownBackend(
            f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}, "
            "softlog_numerics@torch, softlog_numerics@jax, or module:attr[@library]"
        )
    b = BACKENDS[name]
    b.check_available()
    return b


@dataclass(frozen=True)
class Resolved:
    """What :func:`resolve` makes of a backend name: how to call each function, and with which
    arrays."""

    label: str
    library: str
    calls: dict[str, str]
    native: tuple[str, ...]
    get: Callable[[str], Callable]


def _split_library(spec: str) -> tuple[str, str | None]:
    if "@" in spec:
        base, lib = spec.rsplit("@", 1)
        if lib not in LIBRARIES:
            raise UnknownBackend(f"unknown array library {lib!r} in {spec!r}; known: {', '.join(LIBRARIES)}")
        return base, lib
    return spec, None


def _import_callable(spec: str) -> Callable:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UnknownBackend(f"{spec!r} is not of the form module:attr")
    root = module_name.split(".")[0]
    if importlib.util.find_spec(root) is None:
        raise BackendNotInstalled(f"{spec!r}: module {root!r} is not installed (pip install {root})")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise UnknownBackend(f"{spec!r}: cannot import {module_name!r}: {e}") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UnknownBackend(f"{spec!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UnknownBackend(f"{spec!r} is not callable")
    return obj


def guess_library(fn) -> str:
    """The array library a callable most likely takes, from the module it was defined in
    (``torch...`` -> torch, ``jax...``/``jaxlib...`` -> jax, ``cupy...`` -> cupy, else numpy)."""
    module = getattr(fn, "__module__", None) or ""
    if not module and hasattr(fn, "func"):  # functools.partial
        return guess_library(fn.func)
    root = module.split(".")[0]
    if root in ("torch", "cupy"):
        return root
    if root in ("jax", "jaxlib"):
        return "jax"
    return "numpy"


def resolve(spec: str) -> Resolved:
    """Turn a backend name as typed on the command line into callables.

    ``NAME`` (one of :data:`BACKENDS`), ``softlog_numerics@LIB`` (the library's functions through
    :func:`array_api` on ``LIB`` arrays), ``module:attr`` (one callable, audited as whichever
    function is asked for; it receives arrays of the library its module belongs to, NumPy by
    default) or ``module:attr@LIB`` (it receives ``LIB`` arrays).
    """
    base, lib = _split_library(spec)
    if ":" in base:
        fn = _import_callable(base)
        library = lib or guess_library(fn)
        if library != "numpy":
            require(library, f"{spec!r}")
        text = f"{base}(*args) on {library} arrays"
        return Resolved(spec, library, {f: text for f in FUNCTIONS}, ("log_softmax",), lambda f: fn)
    b = get_backend(base)
    if lib is None or lib == b.library:
        fns = b.functions()
        return Resolved(b.name, b.library, dict(b.calls), b.native, _getter(fns))
    if b.name != "softlog_numerics":
        raise UnknownBackend(f"only softlog_numerics (and module:attr) take @library, not {b.name!r}")
    require(lib, f"{spec!r}")
    fns = {f: g if getattr(g, "missing", False) else array_api(g) for f, g in b.functions().items()}
    calls = {f: f"softlog_numerics._core.interop.array_api(softlog_numerics.{f})(*args) on {lib} arrays"
             for f in FUNCTIONS}
    return Resolved(spec, lib, calls, b.native, _getter(fns))

