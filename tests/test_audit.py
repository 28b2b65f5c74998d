"""The auditor: it detects the defects of deliberately naive implementations (an audit that cannot
fail is worthless), passes the library itself and the oracle, reports in the documented JSON and
Markdown shapes with copy-pasteable hex inputs, raises shrunk AssertionErrors for pytest users,
and its command exits 0 / 1 / 2 as documented."""

from __future__ import annotations

import argparse
import json

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softlog_numerics import oracle, strategies
from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics.audit import (
    OracleMismatch,
    assert_matches_oracle,
    audit,
    check_against_oracle,
    families,
    reproducer,
)
from softlog_numerics.cli.audit import register
from softlog_numerics.functions import grad as sn_grad
from softlog_numerics.testing.bulk import has_bulk
from softlog_numerics.testing.contract import ULP_BOUNDS

DTYPES = list(FORMATS)
REQUIRED_KEYS = {"max_ulp", "p99_ulp", "not_correctly_rounded", "nan", "inf_where_finite",
                 "finite_where_inf", "wrong_sign_zero", "worst_input"}


def _rebuild(text: str):
    """Evaluate a reproducer (trusted text made by this library)."""
    return eval(text, {"np": np, "ml_dtypes": ml_dtypes, "float": float})  # noqa: S307


def _bits(a):
    return np.asarray(a).view(format_of(np.asarray(a).dtype).uint)


# ---------------------------------------------------------------------------------------------
# Deliberately naive implementations


def no_max_shift(x):
    """Textbook log_softmax without the max shift: exp overflows."""
    return x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))


def log_of_softmax(x):
    """Shifted softmax, then log: -inf where the probability underflows, 0 at a dominant class."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return np.log(e / np.sum(e, axis=-1, keepdims=True))


def float16_accumulation(x):
    """Shifted log_softmax whose sum of exponentials is accumulated in float16 (a half-precision
    accumulator on float32/float64 input)."""
    z = x - np.max(x, axis=-1, keepdims=True)
    s = np.cumsum(np.exp(z).astype(np.float16), axis=-1)[..., -1:]
    return (z - np.log(s.astype(x.dtype))).astype(x.dtype)


# ---------------------------------------------------------------------------------------------
# Detection


def test_detects_overflow_without_the_max_shift():
    r = audit(no_max_shift, "log_softmax", dtypes=["float16", "float32"], families=["huge", "all_equal"],
              n_examples=15)
    for d in ("float16", "float32"):
        huge = r.cells[(d, "huge")]
        assert huge.nan + huge.inf_where_finite > 0, d
        assert not np.isfinite(huge.worst.got), d  # the worst element is the non-finite one
        assert huge.max_ulp > 1e4, d  # float16: 0 to -inf is 31744 positions; NaN is inf
    assert not r.passed() and not r.passed(max_ulp=1e4)
    # the worst input, rebuilt from its hex text, reproduces the non-finite result
    w = r.cells[("float32", "huge")].worst
    x = _rebuild(reproducer(*w.args))
    with np.errstate(all="ignore"):
        assert not np.isfinite(no_max_shift(x)[w.index])


def test_detects_log_of_softmax_at_the_dominant_class_and_in_underflow():
    r = audit(log_of_softmax, "log_softmax", dtypes=["float32", "float64"], families=["dominant", "subnormal"],
              n_examples=15)
    for d in ("float32", "float64"):
        dom = r.cells[(d, "dominant")]
        w = dom.worst
        assert dom.max_ulp > 1e8, d  # 0 for a tiny negative number: ~2**30 (float32) positions
        assert w.index == (int(np.argmax(w.args[0])),), "the worst element is the dominant class"
        assert w.got == 0.0 and w.expected < 0
        assert r.cells[(d, "subnormal")].inf_where_finite > 0, "log(0) = -inf where the truth is finite"
    assert not r.passed()


def test_detects_float16_accumulation():
    """A float16 accumulator is found: large ULP errors on near ties and masked rows, and many
    near-tie values not correctly rounded. The fraction depends on the inputs Hypothesis draws,
    and those differ with the process's history: run alone, float64 gives 0.74 (379 values); in
    the full parallel run, 0.37 (273 values), the same in two runs on two clean clones (cause not
    found: the search is seeded and has no database). The threshold, 0.25, is below both."""
    r = audit(float16_accumulation, "log_softmax", dtypes=["float32", "float64"], families=["near_tie", "masked"],
              n_examples=15)
    for d in ("float32", "float64"):
        assert r.cells[(d, "near_tie")].max_ulp > 10, d
        assert r.cells[(d, "masked")].max_ulp > 1000, d
        assert r.cells[(d, "near_tie")].not_correctly_rounded > 0.25
    assert not r.passed()


def test_the_numpy_naive_control_fails():
    r = audit("numpy-naive", "softmax", dtypes=["float32"], families=["hard", "huge"], n_examples=10)
    assert not r.passed()
    assert r.cells[("float32", "huge")].nan > 0


# ---------------------------------------------------------------------------------------------
# Passing what is right


@pytest.mark.parametrize("function", list(ULP_BOUNDS))
def test_the_oracle_audits_itself_at_zero_ulp(function):
    """Plumbing check: the oracle against itself is at 0 ULP with the right signs of zero in every
    format and family (this fails if an input, a conversion or a comparison is mishandled)."""
    r = audit(getattr(oracle, function), function, n_examples=3)
    assert set(r.cells) == {(d, f) for d in DTYPES for f in families(function)
                            if f != "bulk" or has_bulk(function, FORMATS[d])}
    assert all(c.inputs > 0 for c in r.cells.values())
    assert r.passed(max_ulp=0, signed_zeros=True), r.to_markdown()


@pytest.mark.parametrize("function", ["softlog", "log_softmax", "softmax", "logsumexp", "sld_sym"])
def test_the_library_passes_its_own_bounds(function):
    """softlog_numerics audited like any peer meets _bounds.ULP_BOUNDS (with the cancellation
    allowance where documented) in every format and family."""
    r = audit("softlog_numerics", function, n_examples=10)
    assert all(c.errors == 0 for c in r.cells.values()), r.to_markdown()
    assert r.passed(), r.to_markdown()


def test_audits_are_reproducible():
    a = audit("numpy-naive", "log_softmax", dtypes=["bfloat16"], families=["random", "dominant"], n_examples=10)
    b = audit("numpy-naive", "log_softmax", dtypes=["bfloat16"], families=["random", "dominant"], n_examples=10)
    assert a.to_json() == b.to_json()


def test_errors_and_wrong_shapes_are_counted_not_raised():
    def broken(x):
        if x.size > 2:
            raise RuntimeError("kernel does not support n > 2")
        return np.zeros(x.size + 1, dtype=x.dtype)

    r = audit(broken, "log_softmax", dtypes=["float32"], families=["hard"])
    cell = r.cells[("float32", "hard")]
    assert cell.errors == cell.inputs > 0
    assert "returned shape (3,), expected (2,)" in cell.first_error  # the first input has n = 2
    assert not r.passed(max_ulp=1e300)


def test_unknown_family_or_function_is_refused():
    with pytest.raises(ValueError, match="unknown family"):
        audit(oracle.softmax, "softmax", families=["nope"])
    with pytest.raises(ValueError, match="unknown function"):
        audit(oracle.softmax, "softmaxx")


# ---------------------------------------------------------------------------------------------
# Report shapes


def test_json_shape_and_infinities():
    r = audit(no_max_shift, "log_softmax", dtypes=["float16", "float64"], families=["hard", "huge"], n_examples=5)
    data = json.loads(r.to_json())  # strict JSON: no Infinity/NaN literals
    assert list(data) == ["log_softmax"]
    assert set(data["log_softmax"]) == {"float16", "float64"}
    for d, by_family in data["log_softmax"].items():
        assert set(by_family) == {"hard", "huge"}
        for fam, stats in by_family.items():
            assert REQUIRED_KEYS <= set(stats), (d, fam)
            assert stats["max_ulp"] == "inf" or isinstance(stats["max_ulp"], float)
            assert 0 <= stats["not_correctly_rounded"] <= 1
            assert stats["bound"] == ULP_BOUNDS["log_softmax"][d]
    huge = data["log_softmax"]["float64"]["huge"]
    assert huge["worst"]["input"] == huge["worst_input"]
    assert huge["passed"] is False


def test_markdown_has_a_row_per_cell_and_the_worst_inputs():
    r = audit(log_of_softmax, "log_softmax", dtypes=["float32", "bfloat16"], families=["hard", "near_tie"],
              n_examples=5)
    md = r.to_markdown()
    rows = [ln for ln in md.splitlines() if ln.startswith("| float32") or ln.startswith("| bfloat16")]
    assert len(rows) == 4
    assert "| dtype | family |" in md and "**no**" in md
    assert "float.fromhex(" in md and "dtype=np.float32" in md and "expected" in md


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25)
@given(data=st.data())
def test_reproducer_round_trips_bit_for_bit(dtype, data):
    vals = data.draw(st.lists(strategies.floats(dtype, allow_nan=True, allow_infinity=True), min_size=0, max_size=8))
    a = np.array(vals, dtype=format_of(dtype).dtype)
    b = _rebuild(reproducer(a))
    assert b.dtype == a.dtype and b.shape == a.shape
    nan = np.isnan(a.astype(np.float64))
    assert np.array_equal(_bits(a)[~nan], _bits(b)[~nan])  # -0.0, subnormals, infinities exact
    assert np.isnan(b.astype(np.float64)[nan]).all()
    pair = _rebuild(reproducer(a, a[::-1]))
    assert isinstance(pair, tuple) and np.array_equal(_bits(pair[1]), _bits(a[::-1]))


def test_worst_input_of_a_report_round_trips():
    r = audit(log_of_softmax, "log_softmax", dtypes=DTYPES, families=["hard"])
    for d in DTYPES:
        w = r.cells[(d, "hard")].worst
        rebuilt = _rebuild(r.to_dict()["log_softmax"][d]["hard"]["worst_input"])
        assert np.array_equal(_bits(rebuilt), _bits(w.args[0]))
        with np.errstate(divide="ignore"):
            got = log_of_softmax(rebuilt)[w.index]
        assert float(got) == w.got


# ---------------------------------------------------------------------------------------------
# pytest helpers


def test_assert_matches_oracle_passes_a_correct_implementation():
    assert_matches_oracle(oracle.softmax, "softmax", "bfloat16", max_ulp=0, n_examples=10,
                          families=["hard", "special", "near_tie"])


def test_assert_matches_oracle_fails_with_the_evidence_and_a_shrunk_input():
    with pytest.raises(AssertionError) as info:
        assert_matches_oracle(no_max_shift, "log_softmax", "float32", max_ulp=4, n_examples=40,
                              families=["random", "huge"])
    msg = str(info.value)
    for part in ("input:", "at index:", "expected:", "got:", "distance:", "ULP", "0x", "float.fromhex("):
        assert part in msg, part
    line = next(ln for ln in msg.splitlines() if "input:" in ln)
    x = _rebuild(line.split("input:", 1)[1].strip())
    assert x.dtype == np.float32 and x.size <= 4, "Hypothesis shrank the failing vector"
    with pytest.raises(AssertionError):
        check_against_oracle(no_max_shift, "log_softmax", x, max_ulp=4)


def test_assert_matches_oracle_reports_the_worst_fixed_case():
    with pytest.raises(OracleMismatch) as info:
        assert_matches_oracle(log_of_softmax, "log_softmax", "float64", families=["hard", "special"])
    assert info.value.ulp > 1e15


def test_check_against_oracle_inside_a_users_given_test():
    """Inside someone's own @given test the failure shrinks to the smallest dominant gap."""

    @settings(max_examples=30, database=None, derandomize=True)
    @given(strategies.logit_vectors("float32", 2, 6, families=("dominant",)))
    def users_test(x):
        check_against_oracle(log_of_softmax, "log_softmax", x, max_ulp=2)

    with pytest.raises(OracleMismatch) as info:
        users_test()
    assert "log_softmax (float32)" in str(info.value)

    @settings(max_examples=10, database=None, derandomize=True)
    @given(strategies.logit_vectors("float32", 1, 6))
    def passing(x):
        assert check_against_oracle(oracle.log_softmax, "log_softmax", x, max_ulp=0) == 0

    passing()


def test_check_against_oracle_signed_zeros():
    x = np.array([40.0, 0.0], dtype=np.float64)  # log p_max = -4.2e-18: correctly rounded, not zero

    def plus_zero(v):
        out = oracle.log_softmax(v)
        out[np.argmax(v)] = 0.0
        return out

    assert check_against_oracle(plus_zero, "log_softmax", x, max_ulp=1e30) > 1
    y = np.array([3.0], dtype=np.float32)  # single entry: the oracle says +0

    def minus_zero(v):
        return np.array([-0.0], dtype=v.dtype)

    assert check_against_oracle(minus_zero, "log_softmax", y, max_ulp=0) == 0
    with pytest.raises(OracleMismatch, match="wrong sign"):
        check_against_oracle(minus_zero, "log_softmax", y, max_ulp=0, signed_zeros=True)


# ---------------------------------------------------------------------------------------------
# The command


def _run(argv, capsys):
    parser = argparse.ArgumentParser(prog="softlog-numerics")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    code = args.run(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_json_and_exit_1_for_a_failing_backend(capsys):
    code, out, _ = _run(["audit", "numpy-naive", "--function", "log_softmax", "--dtype", "float32", "--json",
                         "--examples", "5"], capsys)
    assert code == 1
    data = json.loads(out)
    assert set(data) == {"log_softmax"} and set(data["log_softmax"]) == {"float32"}
    assert set(data["log_softmax"]["float32"]) == set(families("log_softmax"))
    for stats in data["log_softmax"]["float32"].values():
        assert REQUIRED_KEYS <= set(stats)


def test_cli_exit_0_within_the_bound_and_max_ulp_threshold(capsys):
    code, out, _ = _run(["audit", "softlog_numerics.oracle:log_softmax", "--dtype", "float16", "--examples", "3"],
                        capsys)
    assert code == 0 and "| float16 |" in out and "PASS" in out
    # scipy's collapse: 8.6e8 ULP in the hard family (float32); passes only a threshold above that
    args = ["audit", "scipy", "--function", "log_softmax", "--dtype", "float32", "--family", "hard"]
    assert _run(args, capsys)[0] == 1
    assert _run(args + ["--max-ulp", "1e10"], capsys)[0] == 0


def test_cli_usage_errors_exit_2_and_name_the_package(capsys, monkeypatch):
    code, _, err = _run(["audit", "no-such-backend"], capsys)
    assert code == 2 and "unknown backend" in err
    code, _, err = _run(["audit", "softlog_numerics.oracle:nope"], capsys)
    assert code == 2 and "no attribute" in err
    code, _, err = _run(["audit", "scipy", "--family", "wide-ish"], capsys)
    assert code == 2 and "unknown family" in err
    import softlog_numerics.testing.backends as bk

    real = bk.importlib.util.find_spec
    monkeypatch.setattr(bk.importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a))
    code, _, err = _run(["audit", "jax"], capsys)
    assert code == 2 and "pip install" in err and "jax" in err
    with pytest.raises(SystemExit) as e:
        _run(["audit", "scipy", "--dtype", "float128"], capsys)
    assert e.value.code == 2


# ---------------------------------------------------------------------------------------------
# The backward pass


@pytest.mark.parametrize("function", ["grad.log_softmax", "grad.softmax", "grad.logsumexp", "grad.cross_entropy"])
def test_the_library_backward_pass_passes_its_own_contract(function):
    """softlog_numerics.grad against oracle.grad: within LOSS_GRAD_BOUNDS or the cancellation
    allowance (proofs/grad.md, Theorem G3) on every cotangent family, in every format."""
    rep = audit("softlog_numerics", function, n_examples=8)
    assert rep.passed(), rep.to_markdown()
    assert {f for _, f in rep.cells} == set(families(function))


def test_the_audit_finds_pytorchs_float64_log_softmax_vjp_defect():
    """Field notes section 9: torch.autograd.grad of log_softmax at [37.43, 0] with cotangent
    [1, 0] returns 0 where the exact VJP is 5.55e-17 (4.4e18 ULP: 0 against a normal number)."""
    pytest.importorskip("torch")
    rep = audit("torch", "grad.log_softmax", dtypes=["float64"], families=["hard"])
    cell = rep.cells[("float64", "hard")]
    assert cell.max_ulp > 1e18 and not rep.passed()
    assert cell.worst.expected == 5.551115123125776e-17 and cell.worst.got == 0.0
    assert "0x1.2b708872320e2p+5" in reproducer(*cell.worst.args)


def test_the_textbook_vjp_control_fails():
    rep = audit("numpy-naive", "grad.log_softmax", dtypes=["float32"], families=["hard", "one_hot"], n_examples=10)
    assert not rep.passed() and rep.max_ulp("float32") > 1e6


def test_assert_matches_oracle_takes_a_vjp():
    """The pytest helper works for backward passes: a correct VJP passes, the textbook one
    (``g - exp(log_softmax) sum(g)`` in the input's dtype) fails with the evidence."""
    assert_matches_oracle(sn_grad.log_softmax, "grad.log_softmax", "float32", n_examples=10)

    def textbook_vjp(x, g):
        return g - np.exp(x - np.log(np.sum(np.exp(x)))) * np.sum(g)

    with pytest.raises(OracleMismatch):
        assert_matches_oracle(textbook_vjp, "grad.log_softmax", "float32", n_examples=10)


def test_the_audit_finds_pytorchs_fused_loss_gradient_defect():
    """torch.nn.functional.cross_entropy's gradient at logits [37.43, 0] with target 0 (the
    dominant class) is ``p_0 - 1``, which PyTorch returns as 0: the exact value is -5.55e-17."""
    pytest.importorskip("torch")
    rep = audit("torch", "grad.cross_entropy", dtypes=["float64"], families=["hard"])
    cell = rep.cells[("float64", "hard")]
    assert cell.max_ulp > 1e18 and not rep.passed()
    assert cell.worst.expected == -5.551115123125776e-17 and cell.worst.got == 0.0
    text = reproducer(*cell.worst.args)
    assert "0x1.2b708872320e2p+5" in text and "np.array(0, dtype=np.int64)" in text


def test_the_textbook_loss_gradient_control_fails_and_targets_reproduce():
    """``g (softmax(x) - onehot)`` in the input's dtype loses the dominant class; the reproducer of
    a (logits, class index, cotangent) input rebuilds it exactly."""
    rep = audit("numpy-naive", "grad.cross_entropy", dtypes=["float32"], families=["hard", "argmax"], n_examples=10)
    assert not rep.passed() and rep.max_ulp("float32") > 1e6
    x, y, g = np.array([1.5, -2.0], dtype=np.float32), np.array(1, dtype=np.int64), np.array(2.0, dtype=np.float32)
    rebuilt = eval(reproducer(x, y, g), {"np": np, "ml_dtypes": ml_dtypes})
    assert all(a.dtype == b.dtype and (a == b).all() for a, b in zip(rebuilt, (x, y, g)))


def test_assert_matches_oracle_takes_the_loss_gradient():
    y = np.array(0, dtype=np.int64)
    x = np.array([16.94, 0.0], dtype=np.float32)
    g = np.array(1.0, dtype=np.float32)
    assert check_against_oracle(sn_grad.cross_entropy, "grad.cross_entropy", (x, y, g)) <= 1

    def textbook(x, t, g):
        p = np.exp(x - np.max(x)) / np.sum(np.exp(x - np.max(x)))
        return g * (p - (np.arange(x.shape[-1]) == t))

    with pytest.raises(OracleMismatch):
        check_against_oracle(textbook, "grad.cross_entropy", (x, y, g))


def test_a_wrong_output_dtype_fails_the_cell_everywhere():
    """A kernel returning float64 for float32 input is measured (rounded once) but fails its cells,
    as check_against_oracle rejects it: one verdict."""
    def widening(x):
        return oracle.log_softmax(x).astype(np.float64)

    rep = audit(widening, "log_softmax", dtypes=["float32"], families=["hard"])
    cell = rep.cells[("float32", "hard")]
    assert cell.output_dtype == "float64" and cell.max_ulp == 0 and not rep.passed()
    with pytest.raises(OracleMismatch, match="returned float64"):
        check_against_oracle(widening, "log_softmax", np.array([1.0, 2.0], np.float32))


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), "2", True])
def test_max_ulp_must_be_a_number_at_least_zero(bad):
    with pytest.raises(ValueError, match="max_ulp"):
        check_against_oracle(oracle.log_softmax, "log_softmax", np.array([1.0, 2.0]), max_ulp=bad)
    rep = audit("softlog_numerics", "softmax", dtypes=["float64"], families=["special"])
    with pytest.raises(ValueError, match="max_ulp"):
        rep.passed(max_ulp=bad)


def test_cli_rejects_a_negative_max_ulp(capsys):
    with pytest.raises(SystemExit) as e:
        _run(["audit", "softlog_numerics", "--max-ulp", "-5"], capsys)
    assert e.value.code == 2
    assert "must be >= 0" in capsys.readouterr().err


def test_a_lambda_of_another_library_gets_a_hint():
    torch = pytest.importorskip("torch")
    rep = audit(lambda x: torch.log_softmax(x, dim=-1), "log_softmax", dtypes=["float32"], families=["hard"])
    cell = rep.cells[("float32", "hard")]
    assert cell.errors and "library='torch'" in cell.first_error
    with pytest.raises(TypeError, match="library='torch'"):
        check_against_oracle(lambda x: torch.log_softmax(x, dim=-1), "log_softmax", np.ones(3, np.float32))


def test_batched_and_axis_families_reach_the_kernel():
    """``batched`` calls fn on 2-D inputs (last axis), ``axis`` on 3-D inputs with the axis passed
    through ``axis_keyword``; a kernel that ignores the axis fails the axis family."""
    rep = audit("softlog_numerics", "log_softmax", dtypes=["float32"], families=["batched"], n_examples=5)
    assert rep.passed() and rep.cells[("float32", "batched")].values > 5

    def good(x, axis=-1):
        return oracle.log_softmax(x, axis=axis)

    def last_axis_only(x, axis=-1):
        return oracle.log_softmax(np.moveaxis(x, axis, -1), axis=-1).reshape(x.shape)

    ok = audit(good, "log_softmax", dtypes=["float64"], families=["axis"], n_examples=5, axis_keyword="axis")
    assert ok.passed()
    bad = audit(last_axis_only, "log_softmax", dtypes=["float64"], families=["axis"], n_examples=10, axis_keyword="axis")
    assert not bad.passed()
    with pytest.raises(ValueError, match="axis_keyword"):
        audit(good, "log_softmax", families=["axis"])
    assert "axis" in families("sld", axis_keyword="dim") and "axis" not in families("sld")


def test_the_bulk_family_counts_rows_and_finds_defects():
    """``bulk``: NumPy-drawn rows, one call per batch, every row an input of its own with a 1-D
    reproducer; a float64 cell only where the float64 oracle is fast; ``bulk_rows=0`` runs none."""
    r = audit("numpy-naive", "log_softmax", dtypes=["float16", "float64"], families=["bulk"], bulk_rows=1200)
    assert set(r.cells) == {("float16", "bulk"), ("float64", "bulk")}
    assert set(audit("numpy-naive", "sld", dtypes=["float64"], families=["bulk"], bulk_rows=10).cells) == set()
    cell = r.cells[("float16", "bulk")]
    assert cell.inputs == 1200 and not cell.passed() and cell.max_ulp > 100
    assert cell.worst is not None and cell.worst.args[0].ndim == 1
    mine = audit("softlog_numerics", "sld", dtypes=["bfloat16"], families=["bulk"], bulk_rows=700)
    assert mine.passed() and mine.cells[("bfloat16", "bulk")].inputs == 700
    assert not audit("numpy-naive", "softlog", dtypes=["float32"], families=["bulk"], bulk_rows=0).cells
