"""The ``softlog-numerics`` command: the accuracy job reports the contract and fails when it is broken."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import softlog_numerics
from softlog_numerics.cli import main as cli


def test_accuracy_passes_and_prints_the_table(capsys):
    code = cli.main(["accuracy", "--examples", "5", "--bulk", "0", "--function", "softlog", "--function", "log_softmax"])
    out = capsys.readouterr()
    assert code == 0
    assert "| softlog | 0 / 0 | 0 / 0 | 0 / 0 |" in out.out
    assert "[8/8] log_softmax float64" in out.err  # progress on stderr


def test_accuracy_json_has_one_object_per_cell(capsys):
    assert cli.main(["accuracy", "--examples", "3", "--function", "sld_sym", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["dtype"] for d in data] == ["float16", "bfloat16", "float32", "float64"]
    assert all(d["passed"] and d["max_ulp"] <= d["bound"] and d["examples"] > 3 for d in data)


def test_accuracy_exits_1_and_names_the_input_when_a_bound_breaks(monkeypatch, capsys):
    def naive_softlog(x):
        x = np.asarray(x)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log((math.e - 1 / math.e) * x.astype(x.dtype) + x.dtype.type(1 / math.e)).astype(x.dtype)

    monkeypatch.setattr(softlog_numerics.functions, "softlog", naive_softlog)
    code = cli.main(["accuracy", "--examples", "20", "--bulk", "0", "--function", "softlog", "--dtype", "float32"])
    out = capsys.readouterr().out
    assert code == 1
    assert "BOUND BROKEN: softlog float32" in out and "float32[0x" in out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["accuracy", "--function", "nope"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m_runs_the_command():
    r = subprocess.run([sys.executable, "-m", "softlog_numerics", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for sub in ("accuracy", "audit", "report", "regions", "exhaustive"):
        assert sub in r.stdout


def test_accuracy_measures_the_derivative_rows(capsys):
    """``accuracy`` covers the rows of LOSS_GRAD_BOUNDS (the fused loss, VJPs, JVPs), a pair-valued
    VJP judged on both arrays."""
    code = cli.main(["accuracy", "--examples", "5", "--bulk", "0", "--function", "grad.log_softmax",
                     "--function", "grad.softlog_softmax", "--function", "cross_entropy", "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["function"] for r in rows} == {"grad.log_softmax", "grad.softlog_softmax", "cross_entropy"}
    assert all(r["passed"] and r["examples"] == 5 for r in rows)


def test_accuracy_bulk_rows_are_counted_and_marked(capsys):
    """``--bulk`` adds NumPy-drawn rows to the narrow cells of the functions with a fast oracle."""
    code = cli.main(["accuracy", "--examples", "3", "--bulk", "700", "--function", "sld", "--function",
                     "grad.cross_entropy", "--json"])
    assert code == 0
    rows = {(r["function"], r["dtype"]): r for r in json.loads(capsys.readouterr().out)}
    for f in ("sld", "grad.cross_entropy"):
        for d in ("float16", "bfloat16", "float32"):
            assert rows[f, d]["bulk_rows"] == 700 and rows[f, d]["examples"] >= 703 and rows[f, d]["passed"]
        assert rows[f, "float64"]["bulk_rows"] == 0  # no float64 fast oracle for these
    assert cli.main(["accuracy", "--examples", "3", "--bulk", "50", "--function", "softlog", "--dtype", "float32"]) == 0
    assert "| softlog | 0 / 0* |" in capsys.readouterr().out
