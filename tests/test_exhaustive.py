"""Tests of exhaustive sweeps (proofs/fast_oracle.md, Theorem F3) and of the correctly rounded
production float32 softlog (proofs/fast_oracle.md, Theorem F4).

Every comparison is exact: counts are integers, the production results are compared with the
certified oracle at 0 ULP (``ULP_BOUNDS["softlog"]["float32"] == 0``).
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS
from softlog_numerics.functions import softlog
from softlog_numerics.testing import exhaustive
from softlog_numerics.testing.contract import ULP_BOUNDS
from softlog_numerics.ulp import ulp_distance

softlog_module = importlib.import_module("softlog_numerics.functions._softlog")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "softlog_numerics" / "data" / "hard_cases" / "softlog.json"
TOTALS = ("count", "max_ulp", "not_correctly_rounded", "fallbacks", "worst", "hard")
JSON_KEYS = ("function", "dtype", "start", "stop", "count", "max_ulp", "not_correctly_rounded", "seconds", "worst")

# A float32 range of 2**21 inputs holding the hardest float32 case of the whole line
# (x = 366.61679..., 2**-31.4 ULP from a midpoint), so the sweeps below meet a fallback.
HARD_X = float.fromhex("0x1.6e9de60000000p+8")
RANGE = (HARD_X - 2.0**-15 * 2**20, HARD_X + 2.0**-15 * (2**20 - 1))


def _totals(r):
    return {k: r[k] for k in TOTALS}


def _sweep(**kw):
    kw.setdefault("executor", "thread")
    kw.setdefault("workers", 2)
    kw.setdefault("shard_size", 1 << 18)
    return exhaustive.sweep("softlog", "float32", *RANGE, **kw)


# ---------------------------------------------------------------------------------------------
# Ranges and shards


def test_ordinal_range_counts():
    """Theorem F3 (a): the number of inputs walked is the number of representable values in the
    closed range, ±0 counted once: 1,065,353,217 float32 in [0, 1]; 4,278,190,081 non-NaN float32;
    63,489 float16 and 65,281 bfloat16; and for ranges with non-representable ends, the count of a
    brute-force enumeration of all 16-bit patterns."""
    lo, hi = exhaustive.ordinal_range("float32", 0.0, 1.0)
    assert hi - lo == 1_065_353_217
    lo, hi = exhaustive.ordinal_range("float32", -np.inf, np.inf)
    assert hi - lo == 4_278_190_081
    for dtype, n in (("float16", 63_489), ("bfloat16", 65_281)):
        lo, hi = exhaustive.ordinal_range(dtype, -np.inf, np.inf)
        assert hi - lo == n
        with np.errstate(invalid="ignore"):  # signalling NaN patterns
            allv = np.arange(1 << 16, dtype=np.uint16).view(FORMATS[dtype].dtype).astype(np.float64)
        for a, b in ((0.1, 0.2), (-0.157, 1.0), (-1e-30, 3.0), (1.0, 1.0), (2.5, 2.5001)):
            lo, hi = exhaustive.ordinal_range(dtype, a, b)
            sel = allv[(allv >= a) & (allv <= b) & ~((allv == 0) & np.signbit(allv))]
            assert hi - lo == sel.size, (dtype, a, b)
            xs = exhaustive.inputs(dtype, lo, hi).astype(np.float64)
            assert (np.diff(xs) > 0).all() and (xs >= a).all() and (xs <= b).all()
    with pytest.raises(ValueError):
        exhaustive.ordinal_range("float32", 1.0, 0.0)


def test_shards_cover_the_range_once():
    """Shards are consecutive half-open ranges covering [lo, hi) exactly once."""
    parts = exhaustive.shards(-1000, 12345, 777)
    assert parts[0][0] == -1000 and parts[-1][1] == 12345
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert sum(b - a for a, b in parts) == 13345


def test_whole_16_bit_lines_match_a_direct_comparison():
    """The sweep of every float16 and bfloat16 input (production against the certified oracle)
    gives the totals of a direct comparison with the mpmath oracle: every input, 0 ULP."""
    for dtype in ("float16", "bfloat16"):
        r = exhaustive.sweep("softlog", dtype, -np.inf, np.inf, executor="thread", workers=2, shard_size=5000)
        x = exhaustive.inputs(dtype, *exhaustive.ordinal_range(dtype, -np.inf, np.inf))
        d = ulp_distance(softlog(x), oracle.softlog(x, method="mpmath"))
        assert r["count"] == x.size and r["complete"]
        assert r["not_correctly_rounded"] == int((d > 0).sum()) == 0
        assert r["max_ulp"] == float(d.max()) == 0.0


def test_sweep_finds_planted_errors(monkeypatch):
    """A sweep must be able to fail: with a production function that is one ULP off on every
    1000th input of each call and three ULPs off on one input, the sweep counts them all
    (4 shards x 525 + 1), reports max ULP 3 and lists the worst inputs first."""
    target = np.float32(RANGE[0] + 12345 * 2.0**-15).view(np.uint32)

    def broken(x):
        y = softlog(x)
        bits = y.view(np.uint32).copy()
        bits[::1000] += np.uint32(1)
        bits[x.view(np.uint32) == target] += np.uint32(3)
        return bits.view(np.float32)

    from softlog_numerics.oracle import fast as fast_oracle

    monkeypatch.setattr(exhaustive, "_functions", lambda name, backend=None: (broken, fast_oracle.softlog_certified))
    r = _sweep(executor="thread", shard_size=1 << 19, worst=5)
    assert r["count"] == 1 << 21
    assert r["not_correctly_rounded"] == 4 * 525 + 1
    assert r["max_ulp"] == 3
    assert r["worst"][0]["ulp"] == 3 and r["worst"][0]["x"] == float(target.view(np.float32)).hex()
    assert [w["ulp"] for w in r["worst"]] == [3, 1, 1, 1, 1]


# ---------------------------------------------------------------------------------------------
# Merging, executors, checkpoints


def test_merge_is_independent_of_order_and_grouping():
    """Theorem F3 (b): merging shard summaries is associative and commutative (sums, a maximum, and
    lists sorted by a total order), so any completion order gives the same totals."""
    lo, hi = exhaustive.ordinal_range("float32", *RANGE)
    parts = [exhaustive.run_shard({"function": "softlog", "dtype": "float32", "lo": a, "hi": b, "worst": 3, "hard": 3})
             for a, b in exhaustive.shards(lo, hi, 1 << 18)]
    rng = np.random.default_rng(0)
    one = exhaustive.merge(parts, worst=3, hard=3)
    for _ in range(5):
        p = [parts[i] for i in rng.permutation(len(parts))]
        k = int(rng.integers(1, len(p)))
        two = exhaustive.merge([exhaustive.merge(p[:k], worst=3, hard=3), exhaustive.merge(p[k:], worst=3, hard=3)],
                               worst=3, hard=3)
        assert two == one
    assert one["count"] == hi - lo and one["fallbacks"] >= 1
    assert one["hard"][0]["x"] == HARD_X.hex()


def test_executors_agree():
    """The same sweep on a process pool, a thread pool and a given executor gives identical
    totals (count, max ULP, not correctly rounded, fallbacks, worst inputs, hard cases)."""
    ref = _totals(_sweep(executor="thread", workers=1))
    assert _totals(_sweep(executor="process", workers=2)) == ref
    with cf.ThreadPoolExecutor(3) as ex:
        assert _totals(_sweep(executor=ex)) == ref
    assert ref["count"] == 1 << 21 and ref["not_correctly_rounded"] == 0 and ref["hard"][0]["x"] == HARD_X.hex()


def test_resume_gives_the_same_totals(tmp_path):
    """Theorem F3 (c): a sweep stopped after 3 shards (checkpointed) and resumed gives the totals
    of an uninterrupted sweep; the checkpoint is complete JSON at every step and no temporary file
    is left behind."""
    ref = _totals(_sweep())
    ck = tmp_path / "ck.json"
    part = _sweep(checkpoint=str(ck), max_new_shards=3)
    assert not part["complete"] and part["count"] < ref["count"]
    state = json.loads(ck.read_text())
    assert len(state["done"]) >= 3
    part2 = _sweep(checkpoint=str(ck), max_new_shards=2)
    assert len(json.loads(ck.read_text())["done"]) >= len(state["done"]) + 2 and not part2["complete"]
    full = _sweep(checkpoint=str(ck))
    assert full["complete"] and _totals(full) == ref
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.json"]
    # a finished checkpoint: nothing left to do, same totals
    assert _totals(_sweep(checkpoint=str(ck))) == ref


def test_checkpoint_for_other_parameters_is_refused(tmp_path):
    ck = tmp_path / "ck.json"
    _sweep(checkpoint=str(ck), max_new_shards=1)
    with pytest.raises(ValueError, match="other parameters"):
        _sweep(checkpoint=str(ck), shard_size=1 << 17)


_CLI = """
import argparse, sys
from softlog_numerics.cli.exhaustive import register
p = argparse.ArgumentParser(prog="softlog-numerics")
register(p.add_subparsers(dest="command", required=True))
a = p.parse_args(sys.argv[1:])
sys.exit(a.run(a))
"""


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-c", _CLI, *args], capture_output=True, text=True, cwd=ROOT, check=False, **kw)


def test_resume_after_a_killed_run(tmp_path):
    """Theorem F3 (c) with a real interruption: the command is killed (SIGKILL) once its
    checkpoint records two shards; the resumed command prints the totals of an uninterrupted run."""
    ck = tmp_path / "ck.json"
    start, stop = HARD_X - 96.0, HARD_X + 96.0 - 2.0**-15  # 6,291,456 inputs in 96 shards
    args = ["exhaustive", "softlog", "--dtype", "float32", f"--start={start!r}", f"--stop={stop!r}",
            "--executor", "thread", "--workers", "1", "--shard-size", str(1 << 16), "--json", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-c", _CLI, *args, "--checkpoint", str(ck)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if ck.exists():
            try:
                done = len(json.loads(ck.read_text())["done"])
            except json.JSONDecodeError:  # pragma: no cover - atomic writes make this impossible
                raise AssertionError("checkpoint was read half-written")
            if done >= 2:
                break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(json.loads(ck.read_text())["done"])
    assert 2 <= killed_at < 96, killed_at  # interrupted mid-way
    resumed = _cli(*args, "--checkpoint", str(ck))
    fresh = _cli(*args)
    assert resumed.returncode == 0 and fresh.returncode == 0, resumed.stderr
    a, b = json.loads(resumed.stdout), json.loads(fresh.stdout)
    assert set(a) == set(JSON_KEYS)
    a.pop("seconds"), b.pop("seconds")
    assert a == b and a["count"] == 96 << 16


def test_failed_shard_is_retried(tmp_path):
    """A shard whose future raises is submitted again (``retries``); the totals are unchanged. With
    ``retries=0`` the failure propagates."""
    ref = _totals(_sweep())
    flaky = _Flaky(str(tmp_path))
    assert _totals(_sweep(runner=flaky, retries=1)) == ref
    assert len(list(tmp_path.iterdir())) == 8  # every shard failed once
    with pytest.raises(RuntimeError, match="flaky"):
        _sweep(runner=_Flaky(str(tmp_path / "again")), retries=0)


class _Flaky:
    """A shard runner that fails the first time it sees each shard (state in marker files)."""

    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    def __call__(self, task):
        marker = os.path.join(self.folder, f"{task['lo']}")
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("flaky shard")
        return exhaustive.run_shard(task)


def test_cli_output(tmp_path):
    """The command prints the five JSON keys with --json, and otherwise a summary with the count,
    max ULP, number not correctly rounded and the closest hard case; progress goes to stderr as
    plain lines with a rate when not on a terminal. Exit status 0 when all are correctly rounded."""
    base = ["exhaustive", "softlog", "--dtype", "float16", "--start=-1", "--stop=2", "--executor", "thread",
            "--shard-size", "4000"]
    r = _cli(*base, "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == set(JSON_KEYS)
    assert (out["function"], out["dtype"], out["start"], out["stop"]) == ("softlog", "float16", -1.0, 2.0)
    lo, hi = exhaustive.ordinal_range("float16", -1.0, 2.0)
    assert out["count"] == hi - lo == 31745 and out["max_ulp"] == 0 and out["not_correctly_rounded"] == 0
    hard = tmp_path / "hard.json"
    r = _cli(*base, "--hard-cases", str(hard))
    assert r.returncode == 0
    assert "inputs checked          31,745" in r.stdout and "not correctly rounded   0" in r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines and all("M/s" in ln and "\r" not in ln for ln in lines) and "100.0%" in lines[-1]
    assert json.loads(hard.read_text())["count"] == 31745


# ---------------------------------------------------------------------------------------------
# Dask


def _dying_runner(task):
    """Kills its worker process the first time it meets the shard starting at DYING_SHARD."""
    marker = os.path.join(os.environ["SOFTLOG_TEST_MARKERS"], str(task["lo"]))
    if task["lo"] == int(os.environ["SOFTLOG_TEST_DYING_SHARD"]) and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    return exhaustive.run_shard(task)


def test_dask_local_cluster(tmp_path, monkeypatch):
    """The same sweep on a dask.distributed LocalCluster (two worker processes) through
    ``Client.get_executor()``: identical totals; and when a worker process dies while running a
    shard, Dask runs that shard again on a restarted worker and the totals are still identical."""
    distributed = pytest.importorskip("distributed", reason='needs the "dask[distributed]" extra')
    ref = _totals(_sweep())
    lo, _ = exhaustive.ordinal_range("float32", *RANGE)
    monkeypatch.setenv("SOFTLOG_TEST_MARKERS", str(tmp_path))
    monkeypatch.setenv("SOFTLOG_TEST_DYING_SHARD", str(lo + 3 * (1 << 18)))
    try:
        import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    except (ImportError, ValueError):  # pragma: no cover
        pass
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                                  processes=True, silence_logs=50) as cluster, distributed.Client(cluster) as client:
        ex = client.get_executor(pure=False)
        assert _totals(_sweep(executor=ex)) == ref
        assert _totals(_sweep(executor=ex, runner=_dying_runner, retries=0)) == ref
    assert os.listdir(tmp_path) == [os.environ["SOFTLOG_TEST_DYING_SHARD"]]  # the worker did die once
    # the command line's --executor dask: a LocalCluster made (and closed) by the sweep itself
    assert _totals(_sweep(executor="dask", workers=2)) == ref


# ---------------------------------------------------------------------------------------------
# Theorem F4: production float32 is correctly rounded


def _recorded():
    return json.loads(DATA.read_text())["rounding_hard_cases"]


def test_contract_says_float32_is_correctly_rounded():
    """The contract table follows the exhaustive result: float32 softlog is 0 ULP."""
    assert ULP_BOUNDS["softlog"]["float32"] == 0


def test_production_on_the_hard_cases():
    """Theorem F4: production float32 softlog on the 724 recorded hard cases of the whole float32
    line (within 2**-22 ULP of a midpoint) and on the three inputs it used to round wrongly:
    0 ULP from the recorded correctly rounded values (and from the mpmath oracle)."""
    d = _recorded()
    cases = d["formats"]["float32"]["cases"]
    x = np.array([float.fromhex(c["x"]) for c in cases], dtype=np.float32)
    want = np.array([float.fromhex(c["value"]) for c in cases], dtype=np.float32)
    assert (ulp_distance(softlog(x), want) == 0).all()
    old = d["production_float32_before_correct_rounding"]["cases"]
    assert len(old) == 3
    xo = np.array([float.fromhex(c["x"]) for c in old], dtype=np.float32)
    wo = np.array([float.fromhex(c["want"]) for c in old], dtype=np.float32)
    assert (ulp_distance(softlog(xo), wo) == 0).all()
    assert (ulp_distance(oracle.softlog(xo, method="mpmath"), wo) == 0).all()


def test_exact_path_is_what_fixes_them(monkeypatch):
    """Theorem F4, necessity: the three former failures are flagged by the low-bit test (the exact
    path runs for each), and with the exact path replaced by the plain rounding of the float64 value
    they are 1 ULP off again."""
    old = _recorded()["production_float32_before_correct_rounding"]["cases"]
    x = np.array([float.fromhex(c["x"]) for c in old], dtype=np.float32)
    want = np.array([float.fromhex(c["want"]) for c in old], dtype=np.float32)
    calls = []
    real = softlog_module._softlog_decimal32
    monkeypatch.setattr(softlog_module, "_softlog_decimal32", lambda v: calls.append(v) or real(v))
    assert (ulp_distance(softlog(x), want) == 0).all()
    assert sorted(calls) == sorted(float(v) for v in x)

    def plain(v):
        return softlog_module._narrow(np.array([v], np.float32), FORMATS["float32"], softlog_module._softlog_narrow_block)[0]

    monkeypatch.setattr(softlog_module, "_softlog_decimal32", plain)
    assert (ulp_distance(softlog(x), want) == 1).all()


def test_decimal_path_is_correctly_rounded():
    """Theorem F4 (exact path): the decimal Ziv loop equals the mpmath oracle on 400 random float32
    inputs of the domain (both regimes, near the branch point, near x0, huge) and on the 60 hardest
    recorded cases."""
    rng = np.random.default_rng(9)
    x = np.concatenate([
        rng.uniform(-0.1565, 1.2, 200),
        -0.15651764 + np.abs(rng.normal(0, 1e-6, 50)),
        0.26894142 + rng.normal(0, 1e-6, 50),
        np.exp(rng.uniform(-60, 88, 100)),
    ]).astype(np.float32)
    x = x[x.astype(np.float64) >= -0.15651764274966565]
    hard = [float.fromhex(c["x"]) for c in _recorded()["formats"]["float32"]["cases"][:60]]
    x = np.concatenate([x, np.array(hard, dtype=np.float32)])
    got = np.array([softlog_module._softlog_decimal32(float(v)) for v in x], dtype=np.float32)
    assert (ulp_distance(got, oracle.softlog(x, method="mpmath")) == 0).all()


def test_flag_rate_is_small(monkeypatch):
    """The exact path is rare: on 2**22 consecutive float32 inputs it runs for at most one in 10**6
    (expected about one in 1.6e7)."""
    calls = []
    real = softlog_module._softlog_decimal32
    monkeypatch.setattr(softlog_module, "_softlog_decimal32", lambda v: calls.append(v) or real(v))
    softlog(np.arange(0x3E800000, 0x3E800000 + (1 << 22), dtype=np.uint32).view(np.float32))
    assert len(calls) <= 4


@pytest.mark.slow
def test_whole_unit_interval_float32():
    """The headline result (slow, about 20-60 s on 2 cores): every one of the 1,065,353,217 float32
    inputs in [0, 1] is correctly rounded by production softlog."""
    r = exhaustive.sweep("softlog", "float32", 0.0, 1.0, executor="process")
    assert r["count"] == 1_065_353_217
    assert r["not_correctly_rounded"] == 0 and r["max_ulp"] == 0


# ---------------------------------------------------------------------------------------------
# Two-class pair sweeps (log_softmax, softmax)


def test_pair_sweep_counts_every_pair_once():
    """Every row [a, b] of the range is checked once: N**2 rows for the N values of [0.5, 1]."""
    n = exhaustive.pair_values("float16", 0.5, 1.0).size
    assert n == 1025
    for name in exhaustive.PAIR_FUNCTIONS:
        r = exhaustive.sweep(name, "float16", 0.5, 1.0, executor="thread", workers=1, shard_size=300_000)
        assert r["count"] == n * n and r["complete"] and r["not_correctly_rounded"] == 0, r


def test_pair_sweep_finds_planted_errors(monkeypatch):
    """A log_softmax that is one ULP off on the rows whose first entry is 0.75 is caught: exactly
    those rows' first entries are counted."""
    from softlog_numerics import functions

    def broken(x):
        y = functions.log_softmax(x)
        bad = x[:, 0] == np.float16(0.75)
        y[bad, 0] = np.nextafter(y[bad, 0], np.float16(-np.inf))
        return y

    monkeypatch.setitem(exhaustive._PRODUCTION, "log_softmax", broken)
    r = exhaustive.sweep("log_softmax", "float16", 0.5, 1.0, executor="thread", workers=1)
    n = exhaustive.pair_values("float16", 0.5, 1.0).size
    assert r["not_correctly_rounded"] == n and r["max_ulp"] == 1.0
    assert all(w["x"][0] == (0.75).hex() and w["entry"] == 0 for w in r["worst"])


def test_pair_sweep_of_a_backend():
    """``backend="torch"``: PyTorch's float16 log_softmax on the rows of [-65504, -32720] against the
    oracle. Measured: 8 entries 2 ULP off, e.g. [-32768, -32752] gives 0 for the larger class where
    the truth -log1p(exp(-16)) = -1.1e-7 rounds to the subnormal -2**-23; this library's production
    function is correctly rounded on all of them."""
    pytest.importorskip("torch")
    ours = exhaustive.sweep("log_softmax", "float16", -65504.0, -32720.0, executor="thread", workers=1)
    theirs = exhaustive.sweep("log_softmax", "float16", -65504.0, -32720.0, executor="thread", workers=1, backend="torch")
    assert ours["count"] == theirs["count"] == exhaustive.pair_values("float16", -65504.0, -32720.0).size ** 2
    assert ours["not_correctly_rounded"] == 0
    assert theirs["not_correctly_rounded"] > 0 and theirs["max_ulp"] >= 1.0


def test_pair_sweep_cli(tmp_path):
    r = _cli("exhaustive", "softmax", "--dtype", "bfloat16", "--start", "1", "--stop", "2", "--json", "--quiet",
             "--executor", "thread", "--workers", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["count"] == 129**2 and out["not_correctly_rounded"] == 0
    with pytest.raises(Exception, match="unknown backend"):
        exhaustive.sweep("softmax", "float16", 1.0, 2.0, backend="no-such-library")


def test_pair_sweep_of_the_cross_entropy_gradient(monkeypatch):
    """``grad.cross_entropy`` over every two-class row (target class 0, cotangent 1): production is
    checked against the fast gradient oracle, including the rows whose results underflow (their
    signs are known: ``p_0 - 1 < 0 < p_1``); a gradient 1 ULP off where the first logit is 0.75 is
    counted exactly."""
    from softlog_numerics.functions import grad

    r = exhaustive.sweep("grad.cross_entropy", "float16", -65504.0, -65000.0, executor="thread", workers=1)
    n = exhaustive.pair_values("float16", -65504.0, -65000.0).size
    assert r["count"] == n * n and r["not_correctly_rounded"] == 0 and r["fallbacks"] <= n, r

    def broken(x, target, g):
        y = grad.cross_entropy(x, target, g)
        bad = x[:, 0] == np.float16(0.75)
        y[bad, 1] = np.nextafter(y[bad, 1], np.float16(np.inf))
        return y

    monkeypatch.setitem(exhaustive._PRODUCTION, "grad.cross_entropy", broken)
    r = exhaustive.sweep("grad.cross_entropy", "float16", 0.5, 1.0, executor="thread", workers=1)
    n = exhaustive.pair_values("float16", 0.5, 1.0).size
    assert r["not_correctly_rounded"] == n and r["max_ulp"] == 1.0
    assert all(w["x"][0] == (0.75).hex() and w["entry"] == 1 for w in r["worst"])
