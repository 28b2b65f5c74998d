"""Exact conversions between NumPy and other array libraries, and Array-API input for the functions.

* :func:`to_numpy` and :func:`from_numpy` convert arrays of the four formats between NumPy and
  PyTorch, JAX or CuPy exactly: bfloat16 travels as its 16-bit pattern (NumPy's
  ``ml_dtypes.bfloat16`` <-> ``torch.bfloat16``), never through a cast that could round; JAX shares
  ``ml_dtypes`` with NumPy, so its bfloat16 arrays convert as they are.
* :func:`array_api` wraps a NumPy-only production function so that it accepts the arrays of any
  library known to ``array-api-compat`` (and to the converters) and returns an array of the same
  library, device and dtype.
* :class:`BackendError` and its kinds: what goes wrong when a library is missing or unknown.

torch, jax, cupy and array_api_compat are imported only when an array of theirs is seen, so that
``import softlog_numerics`` stays light.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from typing import Any, Callable, ParamSpec

import numpy as np

from softlog_numerics._core.formats import BFLOAT16

_P = ParamSpec("_P")
__all__ = [
    "LIBRARIES",
    "BackendError",
    "BackendNotInstalled",
    "UnknownBackend",
    "array_api",
    "from_numpy",
    "jax_numpy",
    "library_of",
    "require",
    "to_numpy",
]


class BackendError(Exception):
    """A backend cannot be used (the CLI turns this into exit status 2)."""


class UnknownBackend(BackendError, ValueError):
    """The name is neither a named backend nor an importable ``module:attr``."""


class BackendNotInstalled(BackendError, ImportError):
    """The backend's package is not installed; the message names what to install."""


# ---------------------------------------------------------------------------------------------
# Array libraries and exact conversions


LIBRARIES = ("numpy", "torch", "jax", "cupy")
"""Array libraries whose arrays :func:`to_numpy` and :func:`from_numpy` convert exactly."""

_INSTALL = {
    "torch": "torch (pip install 'softlog-numerics[torch]', which pins the CPU build torch==2.13.0)",
    "jax": "jax (pip install 'softlog-numerics[jax]')",
    "cupy": "cupy (a CUDA build matching your GPU, e.g. pip install cupy-cuda12x)",
    "scipy": "scipy (pip install scipy)",
    "array_api_compat": "array-api-compat (pip install array-api-compat)",
}


def require(module: str, what: str) -> Any:
    if importlib.util.find_spec(module) is None:
        raise BackendNotInstalled(f"{what} needs the package {_INSTALL.get(module, module)}")
    return importlib.import_module(module)


def library_of(x: object) -> str:
    """The array library an array belongs to: ``"numpy"``, ``"torch"``, ``"jax"``, ``"cupy"``,
    or the top-level module name of its type for anything else."""
    if isinstance(x, (np.ndarray, np.generic)):
        return "numpy"
    root = type(x).__module__.split(".")[0]
    if root in ("jaxlib", "jax"):
        return "jax"
    return root


def jax_numpy() -> tuple[Any, Any]:
    """``jax.numpy`` with 64-bit types enabled (without it float64 input silently becomes float32).

    Enabling ``jax_enable_x64`` is global to the process: code that runs JAX after an audit sees
    64-bit defaults too.
    """
    jax = require("jax", "JAX arrays")
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jax, jnp


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of an array of NumPy, PyTorch, JAX or CuPy, with the same bits and dtype.

    torch.bfloat16 becomes ``ml_dtypes.bfloat16`` through its 16-bit pattern; tensors on another
    device are copied to the host first. Other objects go through ``np.asarray`` (the
    ``__array__`` / buffer protocols), which preserves the four float formats exactly.
    """
    lib = library_of(x)
    if lib == "numpy":
        return np.array(x, copy=True)
    if lib == "torch":
        import torch

        t = x.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        t = t.contiguous()
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(BFLOAT16).copy()
        return t.numpy().copy()
    if lib == "cupy":
        return np.array(x.get(), copy=True)
    return np.array(np.asarray(x), copy=True)  # jax, and anything implementing __array__


def from_numpy(a: np.ndarray, library: str, device: Any = None) -> Any:
    """An array of ``library`` with the same bits, dtype and shape as the NumPy array ``a``.

    Parameters
    ----------
    a : numpy.ndarray
        Any dtype NumPy and the target share; bfloat16 is ``ml_dtypes.bfloat16``.
    library : str
        ``"numpy"``, ``"torch"``, ``"jax"`` or ``"cupy"``.
    device : optional
        Where to put the result (a torch device, a JAX device); default the library's default
        (the CPU for torch).

    Notes
    -----
    No rounding happens: float16/float32/float64 are copied, bfloat16 goes to torch as an int16
    bit pattern re-viewed as ``torch.bfloat16``, and to JAX as the same ``ml_dtypes`` type. JAX
    is switched to 64-bit mode first; a result whose dtype differs from ``a``'s raises TypeError
    (CuPy has no bfloat16).
    """
    a = np.array(a, copy=True, order="C")
    if library == "numpy":
        return a
    if library == "torch":
        torch = require("torch", "torch tensors")
        if a.dtype == BFLOAT16:
            t = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
        else:
            t = torch.from_numpy(a)
        return t if device is None else t.to(device)
    if library == "jax":
        jax, jnp = jax_numpy()
        out = jnp.asarray(a) if device is None else jax.device_put(a, device)
        if np.dtype(out.dtype) != a.dtype:
            raise TypeError(f"JAX turned {a.dtype.name} into {np.dtype(out.dtype).name}")
        return out
    if library == "cupy":
        cp = require("cupy", "CuPy arrays")
        if a.dtype == BFLOAT16:
            raise TypeError("CuPy has no bfloat16 arrays")
        if device is None:
            return cp.asarray(a)
        with cp.cuda.Device(device):
            return cp.asarray(a)
    raise ValueError(f"unknown array library {library!r}; known: {', '.join(LIBRARIES)}")


# ---------------------------------------------------------------------------------------------
# Array-API wrapper for NumPy-only functions


def _device_of(x):
    lib = library_of(x)
    if lib == "torch":
        return x.device
    if lib == "jax":
        devs = x.devices() if hasattr(x, "devices") else None
        return next(iter(devs)) if devs else None
    if lib == "cupy":
        return x.device.id
    return None


def _is_foreign_array(v) -> bool:
    if isinstance(v, (np.ndarray, np.generic)):
        return False
    lib = library_of(v)
    if lib in ("torch", "jax", "cupy"):
        return hasattr(v, "shape") and hasattr(v, "dtype")
    try:
        import array_api_compat
    except ImportError:
        return False
    return bool(array_api_compat.is_array_api_obj(v))


def _back(out, library, device, xp):
    if isinstance(out, tuple):
        return tuple(_back(o, library, device, xp) for o in out)
    if not isinstance(out, (np.ndarray, np.generic)):
        return out
    out = np.asarray(out)
    if library in ("torch", "jax", "cupy"):
        return from_numpy(out, library, device)
    return xp.asarray(out)  # another Array-API library: its own asarray (standard dtypes only)


# The wrapper keeps ``fn``'s parameters (array arguments typed ``ArrayLike``, which the arrays of
# PyTorch, JAX and CuPy satisfy through ``__array__``); its result is typed ``Any``, since it is
# an array of the caller's library (a NumPy array only for NumPy input).
def array_api(fn: Callable[_P, Any]) -> Callable[_P, Any]:
    """Let a NumPy-only function take and return the arrays of another library.

    The wrapper finds the array arguments (positional or keyword) that are not NumPy arrays,
    checks with ``array_api_compat.array_namespace`` that they belong to one library, copies them
    to NumPy exactly (:func:`to_numpy`), calls ``fn``, and converts the result (an array or a tuple
    of arrays) back to that library, device and dtype (:func:`from_numpy`). NumPy input passes
    straight through.

    Parameters
    ----------
    fn : callable
        A function of NumPy arrays, e.g. ``softlog_numerics.log_softmax``.

    Returns
    -------
    callable
        ``fn`` for PyTorch, JAX, CuPy (and other Array-API) arrays.

    Notes
    -----
    The computation itself runs in NumPy on the host, so results are bit-for-bit those of ``fn``
    on the same values (the accuracy contract carries over unchanged) at the cost of two copies
    and, for GPU arrays, two transfers. Gradients do not flow through it. Needs the package
    ``array-api-compat`` only for libraries other than PyTorch, JAX and CuPy.

    Examples
    --------
    >>> import torch, softlog_numerics as sn                        # doctest: +SKIP
    >>> array_api(sn.log_softmax)(torch.tensor([16.94, 0.0]))       # doctest: +SKIP
    tensor([-4.4703e-08, -1.6940e+01])
    """

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        arrays = [v for v in list(args) + list(kwargs.values()) if _is_foreign_array(v)]
        if not arrays:
            return fn(*args, **kwargs)
        libs = {library_of(v) for v in arrays}
        if len(libs) > 1:
            raise TypeError(f"arrays of several libraries in one call: {sorted(libs)}")
        xp = None
        try:
            import array_api_compat

            xp = array_api_compat.array_namespace(*arrays)
        except ImportError:
            if libs - {"torch", "jax", "cupy"}:
                require("array_api_compat", f"{libs.pop()} arrays")
        library, device = libs.pop(), _device_of(arrays[0])

        def conv(v):
            return to_numpy(v) if _is_foreign_array(v) else v

        out = fn(*[conv(v) for v in args], **{k: conv(v) for k, v in kwargs.items()})
        return _back(out, library, device, xp)

    wrapped.__wrapped_array_api__ = True  # type: ignore[attr-defined]  # a marker on the function object
    return wrapped
