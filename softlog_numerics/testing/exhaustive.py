"""Exhaustive verification: every representable input of a range, production against the oracle.

A sweep walks the inputs of one format in ``[start, stop]`` by their position in the ordered set of
the format (:func:`softlog_numerics.ulp.ordinal`; ``-0`` and ``+0`` share position 0, so ``+0`` is
walked once). The positions are cut into *shards*, independent half-open ranges of bit patterns.
Each shard compares the production function with the certified fast oracle
(:mod:`softlog_numerics.oracle.fast`; its undecided inputs are settled by the mpmath oracle) and
returns a small summary; summaries merge exactly (sums, a maximum, and lists kept in a fixed order),
so the totals do not depend on the order in which shards finish, on the executor, or on whether the
sweep was interrupted and resumed.

* Executors: any :class:`concurrent.futures.Executor` -- a process pool (the default), a thread pool,
  or a Dask cluster through ``dask.distributed.Client(...).get_executor()``. A shard whose future
  fails is submitted again (``retries`` times); Dask itself re-runs the task of a lost worker.
* Checkpoints: after every finished shard the merged state is written to a JSON file atomically
  (a temporary file in the same folder, then :func:`os.replace`); a later sweep with the same
  parameters skips the shards already recorded.

Example::

    from softlog_numerics.testing.exhaustive import sweep
    r = sweep("softlog", "float32", 0.0, 1.0, workers=2, checkpoint="softlog-f32.json")
    r["count"], r["max_ulp"], r["not_correctly_rounded"]
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from softlog_numerics import oracle
from softlog_numerics._core.formats import FORMATS, format_of
from softlog_numerics._core.interop import from_numpy, to_numpy
from softlog_numerics.functions import grad, log_softmax, softlog, softmax
from softlog_numerics.oracle import fast as fast_oracle
from softlog_numerics.oracle import fast_grad, fast_softmax
from softlog_numerics.testing.backends import resolve
from softlog_numerics.testing.ulp import ulp_distance

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "FUNCTIONS",
    "PAIR_FUNCTIONS",
    "closest_to_midpoints",
    "float64_domain_sample",
    "float64_hard_cases",
    "inputs",
    "merge",
    "ordinal_range",
    "pair_values",
    "run_shard",
    "shards",
    "sweep",
]

DEFAULT_SHARD_SIZE = 1 << 23
_CHUNK = 1 << 20
CHECKPOINT_VERSION = 1

PAIR_FUNCTIONS = ("log_softmax", "softmax", "grad.cross_entropy")
"""Functions swept over every *pair* of inputs: two-class rows ``[a, b]`` (reduced along the row);
for ``grad.cross_entropy`` the row is the logits, the target class 0 and the cotangent 1, so the
result is ``softmax([a, b]) - [1, 0]`` (the rows ``[b, a]`` cover target class 1)."""

FUNCTIONS = ("softlog",) + PAIR_FUNCTIONS
"""Functions a sweep can check: the elementwise softlog over every input of a range, and the
two-class functions of :data:`PAIR_FUNCTIONS` over every pair of finite inputs of a range; each with
a certified fast oracle (proofs/fast_oracle.md, Theorems F2, F6 and F8)."""


# ---------------------------------------------------------------------------------------------
# Positions and ranges


def _inf_ordinal(fmt) -> int:
    return int(np.array(np.inf).astype(fmt.dtype).view(fmt.uint).astype(np.int64))


def ordinal_range(dtype, start: float, stop: float) -> tuple[int, int]:
    """Half-open range ``[lo, hi)`` of positions of the numbers of ``dtype`` in ``[start, stop]``.

    ``start`` and ``stop`` are real numbers (floats or ``±inf``); the range holds exactly the
    representable numbers ``v`` with ``start <= v <= stop`` (``±0`` counted once).
    """
    fmt = format_of(dtype)
    start, stop = float(start), float(stop)
    if math.isnan(start) or math.isnan(stop) or start > stop:
        raise ValueError(f"need start <= stop, got [{start}, {stop}]")
    top = _inf_ordinal(fmt)

    def first_at_least(v: float) -> int:
        # smallest position whose value is >= v
        lo, hi = -top, top + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if _value(fmt, mid) >= v:
                hi = mid
            else:
                lo = mid + 1
        return lo

    lo = first_at_least(start)
    hi = first_at_least(stop)
    if hi <= top and _value(fmt, hi) == stop:
        hi += 1
    return lo, max(lo, hi)


def _value(fmt, o: int) -> float:
    return float(_from_ordinals(np.array([o], dtype=np.int64), fmt).astype(np.float64)[0])


def _from_ordinals(o: np.ndarray, fmt) -> np.ndarray:
    sign = np.uint64(1) << np.uint64(fmt.bits - 1)
    mag = np.abs(o).astype(np.uint64)
    bits = np.where(o < 0, mag | sign, mag).astype(fmt.uint)
    return bits.view(fmt.dtype)


def inputs(dtype, lo: int, hi: int) -> np.ndarray:
    """The numbers of ``dtype`` at positions ``lo .. hi-1``, in increasing order."""
    fmt = format_of(dtype)
    return _from_ordinals(np.arange(lo, hi, dtype=np.int64), fmt)


def shards(lo: int, hi: int, size: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` cut into consecutive ranges of ``size`` positions (the last may be shorter)."""
    if size <= 0:
        raise ValueError("shard size must be positive")
    return [(a, min(a + size, hi)) for a in range(lo, hi, size)]


# ---------------------------------------------------------------------------------------------
# One shard


_PRODUCTION = {"softlog": softlog, "log_softmax": log_softmax, "softmax": softmax,
               "grad.cross_entropy": grad.cross_entropy}


def _functions(name: str, backend: str | None = None):
    """(the function under test, taking and returning NumPy arrays; the certified oracle)."""
    if name not in FUNCTIONS:
        raise ValueError(f"no exhaustive check for {name!r}; available: {', '.join(FUNCTIONS)}")
    if backend is None:
        return _PRODUCTION[name], fast_oracle.softlog_certified
    r = resolve(backend)
    f = r.get(name)

    def call(*args):
        return to_numpy(f(*(from_numpy(a, r.library) for a in args)))

    return call, fast_oracle.softlog_certified


def pair_values(dtype, start: float = -math.inf, stop: float = math.inf) -> np.ndarray:
    """The finite numbers of ``dtype`` in ``[start, stop]`` in increasing order (``±0`` once): the
    values each entry of a pair sweep takes. A pair sweep walks position ``p`` of ``[0, N**2)`` as
    the row ``[v[p // N], v[p % N]]``."""
    fmt = format_of(dtype)
    lo, hi = ordinal_range(fmt, max(float(start), -fmt.max), min(float(stop), fmt.max))
    return inputs(fmt, lo, hi)


def _entry_key_worst(e):
    return (-e["ulp"], e["ordinal"])


def _entry_key_hard(e):
    return (abs(e["distance"]), e["ordinal"])


def run_shard(task: dict) -> dict:
    """Check one shard; ``task`` holds ``function``, ``dtype``, ``lo``, ``hi`` (positions), ``worst``
    and ``hard`` (how many worst inputs and hard cases to keep).

    Returns a JSON-able summary: ``count``, ``max_ulp``, ``not_correctly_rounded``, ``fallbacks``
    (inputs the fast oracle left to mpmath), ``worst`` (largest ULP errors), ``hard`` (inputs whose
    value lies closest to a rounding midpoint, with the signed distance in ULPs), ``seconds``.
    """
    if task["function"] in PAIR_FUNCTIONS:
        return _run_pair_shard(task)
    t0 = time.perf_counter()
    fmt = format_of(task["dtype"])
    production, certified = _functions(task["function"], task.get("backend"))
    keep_worst, keep_hard = int(task.get("worst", 10)), int(task.get("hard", 64))
    lo, hi = int(task["lo"]), int(task["hi"])
    count = 0
    max_ulp = 0.0
    bad = 0
    fallbacks = 0
    worst: list[dict] = []
    hard: list[dict] = []
    for a in range(lo, hi, _CHUNK):
        b = min(a + _CHUNK, hi)
        x = inputs(fmt, a, b)
        got = production(x)
        ref = certified(x, fallback=False)
        want = ref.values
        idx = ref.fallback
        if idx.size:
            fallbacks += int(idx.size)
            want[idx] = oracle.softlog(x[idx], method="mpmath")
            for i in idx.tolist():
                xv = float(np.asarray(x[i]).astype(np.float64))
                hard.append(
                    {
                        "ordinal": a + i,
                        "x": xv.hex(),
                        "x_repr": repr(xv),
                        "distance": fast_oracle.midpoint_distance(xv, fmt),
                        "value": float(np.asarray(want[i]).astype(np.float64)).hex(),
                    }
                )
            hard.sort(key=_entry_key_hard)
            del hard[keep_hard:]
        n_bad, top, errors = _ulp_errors(got, want, fmt, keep_worst)
        bad += n_bad
        max_ulp = max(max_ulp, top)
        for i, ulp in errors:
            xv = float(np.asarray(x[i]).astype(np.float64))
            worst.append(
                {
                    "ordinal": a + i,
                    "x": xv.hex(),
                    "x_repr": repr(xv),
                    "ulp": ulp,
                    "got": float(np.asarray(got[i]).astype(np.float64)).hex(),
                    "want": float(np.asarray(want[i]).astype(np.float64)).hex(),
                }
            )
        worst.sort(key=_entry_key_worst)
        del worst[keep_worst:]
        count += b - a
    return _summary(lo, hi, count, max_ulp, bad, fallbacks, worst, hard, t0)


def _ulp_errors(got: np.ndarray, want: np.ndarray, fmt, keep: int) -> tuple[int, float, list[tuple[int, float]]]:
    """(how many results are not the correctly rounded ones, their largest ULP error, the flat
    index and ULP error of at most ``keep`` of the worst, worst first and by index). A sign of zero
    alone is no ULP error."""
    diff = np.flatnonzero(got.view(fmt.uint).ravel() != want.view(fmt.uint).ravel())
    if not diff.size:
        return 0, 0.0, []
    d = ulp_distance(got.ravel()[diff], want.ravel()[diff])
    wrong = np.flatnonzero(d > 0)
    if not wrong.size:
        return 0, 0.0, []
    order = wrong[np.lexsort((diff[wrong], -d[wrong]))][:keep]
    return int(wrong.size), float(d[wrong].max()), [(int(diff[k]), float(d[k])) for k in order.tolist()]


def _summary(lo, hi, count, max_ulp, bad, fallbacks, worst, hard, t0) -> dict:
    """A shard's JSON-able summary (the keys :func:`merge` reads)."""
    return {
        "lo": lo,
        "hi": hi,
        "count": count,
        "max_ulp": max_ulp,
        "not_correctly_rounded": bad,
        "fallbacks": fallbacks,
        "worst": worst,
        "hard": hard,
        "seconds": time.perf_counter() - t0,
    }


def _pair_rows(name: str, production, x: np.ndarray, fmt, log: bool):
    """(the function's results on the two-class rows ``x``, the correctly rounded ones, the rows
    the fast oracle left to the interval loop)."""
    x64 = x.astype(np.float64)
    if name == "grad.cross_entropy":
        m = x.shape[0]
        target, g = np.zeros(m, dtype=np.int64), np.ones(m, dtype=fmt.dtype)
        got = np.asarray(production(x, target, g))
        t_hi = np.zeros((m, 2))
        t_hi[:, 0] = 1.0
        want, todo = fast_grad.cross_entropy_grad_rows(x64, t_hi, np.zeros((m, 2)), np.ones(m), fmt, exact_targets=True)
        if todo.size:
            want[todo] = oracle.grad.cross_entropy(x[todo], target[todo], g[todo], method="mpmath")
        return got, want, todo
    got = np.asarray(production(x))
    want, todo = fast_softmax.softmax_rows(x64, fmt, log)
    if todo.size:
        want[todo] = getattr(oracle, name)(x[todo], method="mpmath")
    return got, want, todo


def _run_pair_shard(task: dict) -> dict:
    """:func:`run_shard` for a function of :data:`PAIR_FUNCTIONS`: positions ``p`` of the pairs
    (:func:`pair_values`), one two-class row each; counts are rows, ``not_correctly_rounded``
    counts entries (two per row), ``fallbacks`` the rows the fast oracle left to the interval loop
    (equal pairs for softmax among them: their result is the rational 1/2)."""
    t0 = time.perf_counter()
    fmt = format_of(task["dtype"])
    name = task["function"]
    production, _ = _functions(name, task.get("backend"))
    log = name == "log_softmax"
    keep_worst = int(task.get("worst", 10))
    values = pair_values(fmt, task.get("start", -math.inf), task.get("stop", math.inf))
    n = values.size
    lo, hi = int(task["lo"]), int(task["hi"])
    count = bad = fallbacks = 0
    max_ulp = 0.0
    worst: list[dict] = []
    step = _CHUNK // 2
    for a in range(lo, hi, step):
        b = min(a + step, hi)
        p = np.arange(a, b, dtype=np.int64)
        x = np.empty((b - a, 2), dtype=fmt.dtype)
        x[:, 0] = values[p // n]
        x[:, 1] = values[p % n]
        got, want, todo = _pair_rows(name, production, x, fmt, log)
        fallbacks += int(todo.size)
        if got.dtype != want.dtype or got.shape != want.shape:
            raise TypeError(f"{name} returned {got.dtype} {got.shape} for {fmt.name} {x.shape} input")
        n_bad, top, errors = _ulp_errors(got, want, fmt, keep_worst)
        bad += n_bad
        max_ulp = max(max_ulp, top)
        for i, ulp in errors:
            row, entry = divmod(i, 2)
            xs = [float(v) for v in x[row].astype(np.float64)]
            worst.append(
                {
                    "ordinal": a + row,
                    "entry": entry,
                    "x": [v.hex() for v in xs],
                    "x_repr": repr(xs),
                    "ulp": ulp,
                    "got": float(got[row, entry].astype(np.float64)).hex(),
                    "want": float(want[row, entry].astype(np.float64)).hex(),
                }
            )
        worst.sort(key=_entry_key_worst)
        del worst[keep_worst:]
        count += b - a
    return _summary(lo, hi, count, max_ulp, bad, fallbacks, worst, [], t0)


def merge(parts, *, worst: int = 10, hard: int = 64) -> dict:
    """Merge shard summaries (any order, any grouping): the same totals as one big shard."""
    out: dict[str, Any] = {"count": 0, "max_ulp": 0.0, "not_correctly_rounded": 0, "fallbacks": 0, "worst": [], "hard": []}
    for p in parts:
        out["count"] += p["count"]
        out["max_ulp"] = max(out["max_ulp"], p["max_ulp"])
        out["not_correctly_rounded"] += p["not_correctly_rounded"]
        out["fallbacks"] += p["fallbacks"]
        out["worst"].extend(p["worst"])
        out["hard"].extend(p["hard"])
    out["worst"] = sorted(out["worst"], key=_entry_key_worst)[:worst]
    out["hard"] = sorted(out["hard"], key=_entry_key_hard)[:hard]
    return out


# ---------------------------------------------------------------------------------------------
# Checkpoints


def _write_atomic(path: str, data: dict) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load_checkpoint(path: str, params: dict) -> dict:
    with open(path) as f:
        data = json.load(f)
    if data.get("version") != CHECKPOINT_VERSION or data.get("params") != params:
        raise ValueError(
            f"checkpoint {path} was written for other parameters: {data.get('params')} != {params}; "
            "remove it or pass another path"
        )
    return data


# ---------------------------------------------------------------------------------------------
# Executors


def make_executor(
    kind: str = "process", workers: int | None = None, *, scheduler: str | None = None
) -> tuple[cf.Executor, Callable[[], None]]:
    """An executor by name and a function that releases it: ``(executor, close)``.

    ``"process"``: :class:`~concurrent.futures.ProcessPoolExecutor` (worker processes started by
    ``forkserver`` where available, else ``spawn``); ``"thread"``:
    :class:`~concurrent.futures.ThreadPoolExecutor` (NumPy releases the GIL in its loops);
    ``"dask"``: ``dask.distributed.Client(scheduler).get_executor()``, or, without ``scheduler``, a
    ``LocalCluster`` of ``workers`` single-threaded worker processes.
    """
    workers = workers or os.cpu_count() or 1
    if kind == "process":
        # fresh interpreters (forkserver, or spawn): forking a process that runs threads (JAX,
        # PyTorch, a Dask client) can deadlock
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        ex: cf.Executor = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))
        return ex, lambda: ex.shutdown(wait=True, cancel_futures=True)
    if kind == "thread":
        ex = cf.ThreadPoolExecutor(max_workers=workers)
        return ex, lambda: ex.shutdown(wait=True, cancel_futures=True)
    if kind == "dask":
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise RuntimeError('the dask executor needs "dask[distributed]" (pip install "dask[distributed]")') from err
        if scheduler:
            client = Client(scheduler)
            cluster = None
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)
            client = Client(cluster)

        def close():
            client.close()
            if cluster is not None:
                cluster.close()

        return client.get_executor(pure=False), close
    raise ValueError(f"unknown executor {kind!r}: process, thread or dask")


# ---------------------------------------------------------------------------------------------
# The sweep


def sweep(
    function: str = "softlog",
    dtype="float32",
    start: float = 0.0,
    stop: float = 1.0,
    *,
    executor: cf.Executor | str | None = None,
    workers: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    checkpoint: str | None = None,
    progress: Callable[[dict], None] | None = None,
    worst: int = 10,
    hard: int = 64,
    retries: int = 2,
    max_new_shards: int | None = None,
    runner: Callable[[dict], dict] = run_shard,
    backend: str | None = None,
) -> dict:
    """Compare production and oracle on every input of ``dtype`` in ``[start, stop]``.

    Parameters
    ----------
    function : str
        One of :data:`FUNCTIONS`. For the two-class functions (:data:`PAIR_FUNCTIONS`) every pair
        ``[a, b]`` of finite inputs in the range is one row: ``N**2`` rows for ``N`` inputs.
    dtype : str or dtype
        float16, bfloat16 or float32 (float64 ranges work too but have no fast oracle).
    start, stop : float
        The closed range of inputs (of each entry, for pairs).
    executor : Executor, "process", "thread", "dask" or None
        Where shards run; a name makes (and afterwards closes) one with ``workers`` workers, None
        means "process". A given executor is used as is and left open.
    shard_size : int
        Positions per shard (the unit of work, of retry and of checkpointing).
    checkpoint : str, optional
        JSON file of progress, written atomically after every shard and read on start.
    progress : callable, optional
        Called after every shard with ``{"done", "total", "count", "seconds", "rate"}``.
    worst, hard : int
        How many worst inputs and hard cases to keep.
    retries : int
        How many times a shard whose future raised is submitted again.
    max_new_shards : int, optional
        Stop (as an interruption would) after this many newly finished shards.
    runner : callable
        The shard function (picklable); :func:`run_shard` unless testing.
    backend : str, optional
        Check another implementation instead of this library's production function: any name
        :func:`softlog_numerics.testing.backends.resolve` takes (``"torch"``, ``"jax"``,
        ``"module:attr@torch"``, ...).

    Returns
    -------
    dict
        ``count``, ``max_ulp``, ``not_correctly_rounded``, ``seconds`` (wall time of all runs that
        built the checkpoint), ``worst`` and also ``fallbacks``, ``hard``, ``complete``,
        ``shards``, ``function``, ``dtype``, ``start``, ``stop``.
    """
    fmt = format_of(dtype)
    if function not in FUNCTIONS:
        raise ValueError(f"no exhaustive check for {function!r}; available: {', '.join(FUNCTIONS)}")
    if backend is not None:
        resolve(backend).get(function)  # fail early, here, on an unknown or missing backend
    if function in PAIR_FUNCTIONS:
        lo, hi = 0, pair_values(fmt, start, stop).size ** 2
    else:
        lo, hi = ordinal_range(fmt, start, stop)
    plan = shards(lo, hi, shard_size)
    params = {
        "function": function,
        "dtype": fmt.name,
        "lo": lo,
        "hi": hi,
        "shard_size": int(shard_size),
        "worst": int(worst),
        "hard": int(hard),
    }
    if function in PAIR_FUNCTIONS:
        params.update(start=float(start), stop=float(stop))
    if backend is not None:
        params["backend"] = backend
    done: dict[str, dict] = {}
    past_seconds = 0.0
    if checkpoint and os.path.exists(checkpoint):
        data = _load_checkpoint(checkpoint, params)
        done = data["done"]
        past_seconds = float(data.get("seconds", 0.0))
    todo = [i for i in range(len(plan)) if str(i) not in done]
    t0 = time.perf_counter()

    def state() -> dict:
        return {
            "version": CHECKPOINT_VERSION,
            "params": params,
            "seconds": past_seconds + time.perf_counter() - t0,
            "done": done,
        }

    def report():
        if progress is not None:
            secs = time.perf_counter() - t0
            new = sum(done[str(i)]["count"] for i in finished_now)
            progress(
                {
                    "done": len(done),
                    "total": len(plan),
                    "count": sum(p["count"] for p in done.values()),
                    "total_count": hi - lo,
                    "seconds": secs,
                    "rate": new / secs if secs > 0 else 0.0,
                }
            )

    finished_now: list[int] = []
    close = None
    if executor is None or isinstance(executor, str):
        executor, close = make_executor(executor or "process", workers)
    window = max(2, 2 * (workers or os.cpu_count() or 1))
    try:
        pending: dict = {}
        attempts: dict[int, int] = {}
        queue = list(todo)
        stop_now = False

        def submit(i):
            a, b = plan[i]
            task = dict(params, lo=a, hi=b)
            task.pop("shard_size")
            pending[executor.submit(runner, task)] = i

        while (queue or pending) and not stop_now:
            while queue and len(pending) < window:
                submit(queue.pop(0))
            finished, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                i = pending.pop(fut)
                try:
                    result = fut.result()
                except (cf.CancelledError, KeyboardInterrupt):
                    raise
                except Exception:
                    attempts[i] = attempts.get(i, 0) + 1
                    if attempts[i] > retries:
                        raise
                    queue.insert(0, i)
                    continue
                done[str(i)] = result
                finished_now.append(i)
                if checkpoint:
                    _write_atomic(checkpoint, state())
                report()
                if max_new_shards is not None and len(finished_now) >= max_new_shards:
                    stop_now = True
        if stop_now:
            for fut in pending:
                fut.cancel()
    finally:
        if close is not None:
            close()
    total = merge(done.values(), worst=worst, hard=hard)
    total.update(
        seconds=past_seconds + time.perf_counter() - t0,
        complete=len(done) == len(plan),
        shards=len(plan),
        function=function,
        dtype=fmt.name,
        start=float(start),
        stop=float(stop),
    )
    return total


def closest_to_midpoints(dtype, start: float = -math.inf, stop: float = math.inf, k: int = 32) -> list[dict]:
    """The ``k`` inputs of ``dtype`` in ``[start, stop]`` whose softlog lies closest to a rounding
    midpoint, with the signed distance in ULPs from a 200-bit enclosure (for small ranges: every
    input is evaluated in memory).

    Inputs are ranked by the float64 estimate of :func:`fast_oracle.softlog_estimate` (error below
    ``2**-46`` relative, i.e. ``2**(-46 + p)`` ULPs of a ``p``-bit format); the ``4 k`` best are then
    measured exactly and the ``k`` closest returned, sorted by ``|distance|``.
    """
    fmt = format_of(dtype)
    lo, hi = ordinal_range(fmt, start, stop)
    x = inputs(fmt, lo, hi)
    x64 = x.astype(np.float64)
    v = fast_oracle.softlog_estimate(x)
    ok = np.flatnonzero((x64 >= fast_oracle.DOMAIN_START) & np.isfinite(v) & (x64 != 0.0) & (x64 != 1.0))
    shift = 53 - fmt.precision
    low = v[ok].view(np.int64) & np.int64((1 << shift) - 1)
    approx = np.abs(low - np.int64(1 << (shift - 1)))
    take = ok[np.argsort(approx, kind="stable")[: 4 * k]]
    out = []
    for i in take.tolist():
        xv = float(x64[i])
        val = float(oracle.softlog(x[i : i + 1], method="mpmath").astype(np.float64)[0])
        out.append(
            {
                "ordinal": lo + i,
                "x": xv.hex(),
                "x_repr": repr(xv),
                "distance": fast_oracle.midpoint_distance(xv, fmt),
                "value": val.hex(),
            }
        )
    out.sort(key=_entry_key_hard)
    return out[:k]


def float64_domain_sample(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random float64 inputs spread over the softlog's whole domain, in equal parts: uniform
    positive bit patterns, log-uniform magnitudes (subnormals to 1.8e308), negative values
    log-uniform down to the branch point, uniform on ``[x_b, 1.2]``, and log-uniform offsets next to
    the branch point, to ``x0 = 1/(e + 1)`` and to 1. Values below the branch point are moved to it."""
    m = -(-n // 7)
    xb, x0 = fast_oracle.DOMAIN_START, float(np.float64(1.0) / (np.e + 1.0))
    sign = rng.choice(np.array([-1.0, 1.0]), m)
    x = np.concatenate([
        rng.integers(0, 0x7FF0000000000000, m, dtype=np.int64).view(np.float64),
        np.exp2(rng.uniform(-1074.0, 1024.0, m)),
        -np.exp2(rng.uniform(-1074.0, math.log2(-xb), m)),
        rng.uniform(xb, 1.2, m),
        xb + np.exp2(rng.uniform(-57.0, -3.0, m)),
        x0 + sign * np.exp2(rng.uniform(-56.0, -9.0, m)),
        1.0 + sign * np.exp2(rng.uniform(-53.0, -5.0, m)),
    ])[:n]
    return np.where(x >= xb, x, xb)


def float64_hard_cases(n: int, *, seed: int = 0, k: int = 16, block: int = 1 << 22) -> dict:
    """Search ``n`` random float64 inputs (:func:`float64_domain_sample`) for those whose softlog
    lies closest to a float64 rounding midpoint.

    Every input the certified float64 fast path leaves undecided (``fast_oracle.softlog_certified64``,
    proofs/fast_oracle.md, Theorem F5: ``h + l`` within about ``2**-11`` ULP of a midpoint) is measured
    with a 200-bit enclosure (``fast_oracle.midpoint_distance``); the ``k`` closest are returned with
    their correctly rounded value (the mpmath oracle), with the count of inputs and of undecided ones.
    Not exhaustive: a random search, so the list is not complete below any distance.
    """
    rng = np.random.default_rng(seed)
    found: list[dict] = []
    undecided = 0
    done = 0
    while done < n:
        x = float64_domain_sample(rng, min(block, n - done))
        done += x.size
        idx = fast_oracle.softlog_certified64(x, fallback=False).fallback
        undecided += idx.size
        for xv in x[idx].tolist():
            found.append({"x": xv.hex(), "x_repr": repr(xv), "distance_ulp": fast_oracle.midpoint_distance(xv, "float64")})
        found.sort(key=lambda c: abs(c["distance_ulp"]))
        del found[k:]
    for c in found:
        c["value"] = float(oracle.softlog(np.array([float.fromhex(c["x"])]), method="mpmath")[0]).hex()
    return {"inputs_checked": done, "undecided": undecided, "cases": found}


def known_dtypes() -> list[str]:
    return [n for n in FORMATS if FORMATS[n].precision <= 24]
