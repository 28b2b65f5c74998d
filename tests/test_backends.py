"""Backend adapters: exact conversions (every float16/bfloat16 bit pattern survives a round trip to
torch and JAX), the Array-API wrapper, the named backends' documented calls, and audits of torch
and JAX that find the peers' known defects (field-notes §2) and nothing where they are exact.

torch and JAX tests are skipped with a reason when the package is not installed (CI installs the
``torch`` extra)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from softlog_numerics import oracle
from softlog_numerics._core.formats import BFLOAT16, FORMATS, format_of
from softlog_numerics.audit import audit
from softlog_numerics.testing.backends import (
    BACKENDS,
    GRAD_FUNCTIONS,
    BackendNotInstalled,
    UnknownBackend,
    array_api,
    from_numpy,
    get_backend,
    library_of,
    resolve,
    to_numpy,
)
from softlog_numerics.testing.contract import ULP_BOUNDS

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_JAX = importlib.util.find_spec("jax") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch not installed (pip install 'softlog-numerics[torch]')")
needs_jax = pytest.mark.skipif(not HAS_JAX, reason="jax not installed (pip install 'softlog-numerics[jax]')")
LIBS = [pytest.param("torch", marks=needs_torch), pytest.param("jax", marks=needs_jax)]
DTYPES = list(FORMATS)


def _all_16_bit(dtype) -> np.ndarray:
    """Every bit pattern of a 16-bit format (NaNs with every payload, subnormals, ±0, ±inf)."""
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(format_of(dtype).dtype)


def _sample_bits(dtype, n=20000, seed=1) -> np.ndarray:
    """Random bit patterns of float32/float64 plus the format's boundary values."""
    fmt = format_of(dtype)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, np.iinfo(fmt.uint).max, n, dtype=fmt.uint, endpoint=True)
    edges = np.array([0.0, -0.0, fmt.min_subnormal, -fmt.min_subnormal, fmt.tiny, fmt.max, -fmt.max,
                      np.inf, -np.inf, np.nan], dtype=fmt.dtype)
    return np.concatenate([bits.view(fmt.dtype), edges])


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    fmt = format_of(a.dtype)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(fmt.uint), b.view(fmt.uint))


# ---------------------------------------------------------------------------------------------
# Exact conversions


@pytest.mark.parametrize("library", LIBS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_16_bit_pattern_survives_a_round_trip(library, dtype):
    a = _all_16_bit(dtype)
    native = from_numpy(a, library)
    assert library_of(native) == library
    assert _same_bits(a, to_numpy(native))  # NaN payloads included


@pytest.mark.parametrize("library", LIBS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float32_and_float64_bits_survive_a_round_trip(library, dtype):
    a = _sample_bits(dtype)
    back = to_numpy(from_numpy(a, library))
    nan = np.isnan(a)
    assert _same_bits(a[~nan], back[~nan])
    assert np.isnan(back[nan]).all()


@needs_torch
def test_bfloat16_maps_to_torch_bfloat16_by_bits_not_by_rounding():
    import torch

    # 1 + 2**-8 is a bfloat16 tie; a rounding path through float32 would still keep it, so use a
    # value whose bits alone identify it: the largest bfloat16 below 1 and the smallest subnormal.
    a = np.array([1 - 2.0**-8, 2.0**-133, -0.0], dtype=np.float64).astype(np.float32).astype(BFLOAT16)
    t = from_numpy(a, "torch")
    assert t.dtype == torch.bfloat16
    assert t.view(torch.int16).numpy().tolist() == a.view(np.int16).tolist()
    assert [float(v) for v in t.float()] == [float(v) for v in a.astype(np.float32)]


@needs_torch
def test_zero_dimensional_arrays_convert():
    for d in DTYPES:
        a = np.array(1.5, dtype=format_of(d).dtype)
        back = to_numpy(from_numpy(a, "torch"))
        assert back.shape == () and _same_bits(a, back)


# ---------------------------------------------------------------------------------------------
# The Array-API wrapper


def test_array_api_passes_numpy_through_unchanged():
    f = array_api(oracle.log_softmax)
    x = np.array([16.94, 0.0], dtype=np.float32)
    assert _same_bits(f(x), oracle.log_softmax(x))


@pytest.mark.parametrize("library", LIBS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_array_api_returns_the_callers_library_and_dtype_with_the_same_bits(library, dtype):
    fmt = format_of(dtype)
    x = np.array([16.94, 0.0, -3.5, -np.inf], dtype=np.float64).astype(np.float32).astype(fmt.dtype)
    f = array_api(oracle.log_softmax)
    out = f(from_numpy(x, library), axis=-1)
    assert library_of(out) == library
    got = to_numpy(out)
    assert _same_bits(got, oracle.log_softmax(x))


@pytest.mark.parametrize("library", LIBS)
def test_array_api_converts_keyword_arguments_and_pairs(library):
    p = np.array([0.916, 0.084], dtype=np.float32)
    q = np.array([1.0, 0.0], dtype=np.float32)
    f = array_api(oracle.sld)
    out = f(from_numpy(p, library), q=from_numpy(q, library))
    assert library_of(out) == library
    assert _same_bits(to_numpy(out), oracle.sld(p, q))


@needs_torch
@needs_jax
def test_array_api_refuses_arrays_of_two_libraries():
    a = np.array([0.5, 0.5], dtype=np.float32)
    with pytest.raises(TypeError, match="several libraries"):
        array_api(oracle.sld)(from_numpy(a, "torch"), from_numpy(a, "jax"))


# ---------------------------------------------------------------------------------------------
# Named backends


def test_every_backend_documents_the_call_for_every_function():
    for b in BACKENDS.values():
        assert set(b.calls) == set(ULP_BOUNDS) | set(GRAD_FUNCTIONS), b.name
        assert all(isinstance(c, str) and c for c in b.calls.values())
        assert set(b.native) <= set(ULP_BOUNDS)
    assert "torch.autograd.grad" in BACKENDS["torch"].calls["grad.log_softmax"]
    assert "jax.vjp" in BACKENDS["jax"].calls["grad.softmax"]
    assert "scipy.special.log_softmax" in BACKENDS["scipy"].calls["log_softmax"]
    assert "torch.nn.functional.log_softmax" in BACKENDS["torch"].calls["log_softmax"]
    assert "torch.logsumexp" in BACKENDS["torch"].calls["logsumexp"]
    assert "jax.nn.softmax" in BACKENDS["jax"].calls["softmax"]
    assert "jax.scipy.special.logsumexp" in BACKENDS["jax"].calls["logsumexp"]
    assert "textbook" in BACKENDS["torch"].calls["softlog"]


def test_unknown_backends_and_missing_packages_say_what_to_do(monkeypatch):
    with pytest.raises(UnknownBackend, match="choose from"):
        resolve("tensorflowish")
    with pytest.raises(UnknownBackend, match="module:attr"):
        resolve("numpy:")
    with pytest.raises(UnknownBackend, match="no attribute"):
        resolve("numpy:no_such_function")
    import softlog_numerics.testing.backends as bk

    real = importlib.util.find_spec
    monkeypatch.setattr(bk.importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(BackendNotInstalled, match=r"torch==2\.13\.0"):
        get_backend("torch")


def test_module_attr_guesses_the_library_from_the_module():
    assert resolve("softlog_numerics.oracle:log_softmax").library == "numpy"
    if HAS_TORCH:
        assert resolve("torch.nn.functional:softmax").library == "torch"
    assert resolve("softlog_numerics.oracle:log_softmax@numpy").library == "numpy"
    with pytest.raises(UnknownBackend, match="array library"):
        resolve("softlog_numerics.oracle:log_softmax@tensorflow")


def test_textbook_formulas_are_the_printed_ones():
    fns = get_backend("numpy-naive").functions()
    x = np.array([0.0, 0.0])
    assert fns["logsumexp"](x) == math.log(2)
    assert np.array_equal(fns["softmax"](x), [0.5, 0.5])
    with np.errstate(over="ignore", invalid="ignore"):
        # no max shift: exp(1000) = inf, so 1000 - log(inf) = -inf where the truth is -0
        assert fns["log_softmax"](np.array([1000.0, 0.0]))[0] == -np.inf
    assert fns["softlog"](np.array([1.0]))[0] == pytest.approx(1.0, abs=1e-15)
    p, q = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert fns["sld_sym"](p, q) == pytest.approx(1.0, abs=1e-15)


# ---------------------------------------------------------------------------------------------
# Audits of the peers (what field-notes §2 measured is found again; where they are exact, 0 ULP)


def _collapse_input(dtype):
    """[p ln 2 * 1.02, 0]: the dominant class's log-probability is tiny and negative; 3-pass
    implementations return 0 (field-notes §2)."""
    fmt = format_of(dtype)
    return (np.array([fmt.precision * math.log(2) * 1.02, 0.0]).astype(np.float32).astype(fmt.dtype),)


@pytest.mark.parametrize("backend", [pytest.param("torch", marks=needs_torch), pytest.param("jax", marks=needs_jax),
                                     "scipy"])
def test_peer_log_softmax_returns_zero_for_the_dominant_class_and_the_audit_says_so(backend):
    """Past the collapse gap the peers give log p_max = 0 where the truth is -2**-p or so: the
    audit must report millions of ULP in float32 (field-notes: about 1e9) at index 0."""
    r = audit(backend, "log_softmax", dtypes=["float32"], families=["hard"])
    cell = r.cells[("float32", "hard")]
    assert cell.max_ulp > 1e8
    assert cell.worst.index == (0,) and cell.worst.got == 0.0 and cell.worst.expected < 0
    assert not r.passed()


@needs_torch
def test_torch_audit_covers_all_four_dtypes_and_keeps_them():
    """Every format reaches torch as its own dtype (no error, no dtype change); near ties are
    within 1 ULP in every format (|truth| >= ln 2 there, where the 3-pass formula is accurate)."""
    r = audit("torch", "log_softmax", families=["near_tie", "dominant"], n_examples=12)
    for d in DTYPES:
        tie = r.cells[(d, "near_tie")]
        assert tie.errors == 0 and tie.output_dtype is None and tie.inputs > 0
        assert tie.max_ulp <= 1, (d, tie.worst)
        assert r.cells[(d, "dominant")].max_ulp > 100, d


@needs_torch
def test_torch_softmax_special_values_differ_from_the_oracles_convention():
    """torch.softmax([inf, 0]) is [nan, nan]; the oracle's convention is [nan, 0]: counted as NaN."""
    r = audit("torch", "softmax", dtypes=["float32"], families=["special"])
    cell = r.cells[("float32", "special")]
    assert cell.nan >= 1 and cell.max_ulp == math.inf


@needs_jax
def test_jax_audit_runs_in_64_bit_and_finds_the_collapse():
    r = audit("jax", "logsumexp", dtypes=["float64", "bfloat16"], families=["hard", "near_tie"], n_examples=6)
    assert all(c.errors == 0 and c.output_dtype is None for c in r.cells.values())
    assert r.cells[("float64", "near_tie")].max_ulp <= 2


def test_scipy_audit_reports_a_changed_output_dtype_instead_of_failing():
    """A result in another float format is rounded once to the input's and reported as such."""
    r = audit(lambda x: oracle.log_softmax(x.astype(np.float64)), "log_softmax", dtypes=["float32"],
              families=["hard"])
    cell = r.cells[("float32", "hard")]
    assert cell.output_dtype == "float64" and cell.errors == 0
    assert cell.max_ulp <= 1  # correctly rounded float64, rounded again: at most one double rounding


@needs_torch
def test_the_library_on_torch_tensors_passes_its_own_bounds():
    """softlog_numerics through the Array-API wrapper on torch tensors: same bits as on NumPy,
    so the contract of _bounds.ULP_BOUNDS holds (the auditor audits the wrapper)."""
    for f in ("log_softmax", "softlog"):
        r = audit("softlog_numerics@torch", f, n_examples=8)
        assert all(c.errors == 0 for c in r.cells.values()), r.to_markdown()
        assert r.passed(), r.to_markdown()


@pytest.mark.parametrize("library", LIBS)
def test_the_oracle_through_the_wrapper_is_at_zero_ulp(library):
    """The conversions lose nothing: the oracle audited through ``array_api`` on torch/JAX arrays
    is correctly rounded in every format and family, signs of zero included."""
    r = audit(array_api(oracle.softmax), "softmax", families=["hard", "special", "subnormal"], n_examples=4,
              library=library)
    assert r.passed(max_ulp=0, signed_zeros=True), r.to_markdown()
