"""The hard cases are data with provenance: one file per function of the contract, every case with
its reason, every argument an exact float64 (C99 hex) that is rounded once to the format."""

import json

import numpy as np
import pytest

from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics.accuracy import HARD_CASES, hard_cases
from softlog_numerics.testing.contract import ULP_BOUNDS

FILES = sorted(p.name for p in HARD_CASES.iterdir() if p.name.endswith(".json"))


def test_one_file_per_function_of_the_contract():
    assert FILES == sorted(f"{f}.json" for f in ULP_BOUNDS)


@pytest.mark.parametrize("name", FILES)
def test_every_case_says_why_and_is_exact(name):
    data = json.loads((HARD_CASES / name).read_text())
    assert data["function"] == name[: -len(".json")]
    assert data["what"] and data["provenance"]
    groups = data["cases_by_format"] if "cases_by_format" in data else {f: data["cases"] for f in FORMATS}
    assert set(groups) == set(FORMATS)
    for cases in groups.values():
        assert cases
        for c in cases:
            assert c["reason"].strip()
            for arg in c["args"]:
                assert arg and all(float.fromhex(v).hex() == v for v in arg), arg  # canonical hex


@pytest.mark.parametrize("dtype", list(FORMATS))
def test_hard_cases_are_rounded_once_to_the_format(dtype):
    fmt = format_of(dtype)
    for function in ULP_BOUNDS:
        for args in hard_cases(function, dtype):
            assert all(a.dtype == fmt.dtype for a in args), function
    # the largest finite number of each format is among the logit cases, exactly
    big = [a for (a,) in hard_cases("log_softmax", dtype) if a.size == 2 and np.isfinite(a).all()]
    assert any(float(a.astype(np.float64)[0]) == fmt.max for a in big)
