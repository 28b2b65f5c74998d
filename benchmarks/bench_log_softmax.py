"""Speed and memory of ``softlog_numerics.log_softmax`` against ``scipy.special.log_softmax``.

Run: ``python benchmarks/bench_log_softmax.py [--repeat 15] [--rows 256] [--cols 32000] [--all]``

For float32 and float64 inputs of shape (rows, cols) (logits ~ N(0, 5^2)), the two functions are
timed in the same process, interleaved (scipy, ours, scipy, ours, ...) so that a busy machine
slows both alike; the medians and the ratio ours/scipy are printed, with the targets of the issue
(<= 2.0 for float32, <= 1.0 for float64). A plain ``np.copyto`` of the array gives the scale.

Peak extra memory is measured with :mod:`tracemalloc` (NumPy reports its buffers to it): the
largest traced allocation during one call, minus the output array, against the input's size.
``--all`` also times ``softmax`` and ``logsumexp``. Exit status 1 if a target is missed.

``--short``: the short-rows table of issue 13 instead: ``log_softmax``, ``softmax`` and
``logsumexp`` (last axis) against scipy's, in float16, bfloat16, float32 and float64, on shapes
(4096, 10) and (8192, 128) (``--shapes`` to change them), every ours/scipy pair of one format and
shape timed round-robin in one run; the ratios are printed as a table (target <= 1.5). scipy's
``logsumexp`` rejects bfloat16: its reference there is scipy on the float32 copy, cast back.

``--log-probabilities``: the same logits normalised first (``x - logsumexp(x)``, in float64, then
rounded), the rows on which ``logsumexp`` cancels to about 0 and the narrow formats' correctly
rounded ``logsumexp`` recomputes most rows in double-double (proofs/log_softmax.md, Theorem LSE2 (b)).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc

import numpy as np
import scipy.special

from softlog_numerics.functions import _log_softmax as logsoftmax

TARGETS = {"float32": 2.0, "float64": 1.0}
SHORT_TARGET = 1.5
SHORT_SHAPES = ((4096, 10), (8192, 128))
SHORT_FORMATS = ("float16", "bfloat16", "float32", "float64")
FUNCS = ("log_softmax", "softmax", "logsumexp")


def _interleaved(funcs: dict, repeat: int) -> dict:
    """Median wall time (ms) of each function, run round-robin ``repeat`` times after one warm-up."""
    times = {name: [] for name in funcs}
    for f in funcs.values():
        f()
    for _ in range(repeat):
        for name, f in funcs.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    return {name: 1e3 * statistics.median(v) for name, v in times.items()}


def _peak_extra(f, x) -> tuple[int, int]:
    """(peak traced bytes during f(x) minus the output's bytes, output bytes)."""
    tracemalloc.start()
    try:
        y = f(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out = getattr(y, "nbytes", 0)
    return peak - out, out


def _logits(rng, shape, log_probabilities: bool):
    """N(0, 25) logits in float64, normalised to log-probabilities if asked."""
    x = rng.standard_normal(shape) * 5.0
    return x - scipy.special.logsumexp(x, axis=-1, keepdims=True) if log_probabilities else x


def _short(shapes, repeat: int, log_probabilities: bool = False) -> int:
    """The short-rows table: ours/scipy per function x format x shape, one interleaved run each."""
    import ml_dtypes

    dtypes = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}
    rng = np.random.default_rng(0)
    rows = []
    for shape in shapes:
        x64 = _logits(rng, shape, log_probabilities)
        for name in SHORT_FORMATS:
            x = x64.astype(dtypes[name])
            funcs = {}
            for f in FUNCS:
                ours, ref = getattr(logsoftmax, f), getattr(scipy.special, f)
                funcs["ours " + f] = lambda x=x, g=ours: g(x, axis=-1)
                if name == "bfloat16" and f == "logsumexp":
                    # scipy's logsumexp rejects ml_dtypes' bfloat16: via float32, rounded back
                    def ref(a, axis, dt=x.dtype):
                        return scipy.special.logsumexp(a.astype(np.float32), axis=axis).astype(dt)
                funcs["scipy " + f] = lambda x=x, g=ref: g(x, axis=-1)
            t = _interleaved(funcs, repeat)
            rows.append((shape, name, {f: (t["ours " + f], t["scipy " + f]) for f in FUNCS}))
    print(f"ours / scipy, median of {repeat} interleaved runs (target <= {SHORT_TARGET}); scipy time in ms")
    head = "| function | shape | " + " | ".join(SHORT_FORMATS) + " |"
    print(head)
    print("|" + "---|" * (2 + len(SHORT_FORMATS)))
    ok = True
    for f in FUNCS:
        for shape in shapes:
            cells = []
            for sh, name, t in rows:
                if sh != shape:
                    continue
                ours, ref = t[f]
                ratio = ours / ref
                ok &= ratio <= SHORT_TARGET
                cells.append(f"{ratio:.2f}{'' if ratio <= SHORT_TARGET else ' !'} ({ref:.2f})")
            print(f"| `{f}` | {shape} | " + " | ".join(cells) + " |")
    return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--cols", type=int, default=32000)
    ap.add_argument("--all", action="store_true", help="also time softmax and logsumexp")
    ap.add_argument("--short", action="store_true", help="short-rows table (issue 13): three functions x four formats")
    ap.add_argument("--shapes", type=str, default=None, help="with --short: e.g. 4096x10,8192x128")
    ap.add_argument("--log-probabilities", action="store_true", help="normalise the logits first (logsumexp ~ 0)")
    args = ap.parse_args(argv)
    if args.short:
        shapes = SHORT_SHAPES
        if args.shapes:
            shapes = tuple(tuple(int(v) for v in sp.split("x")) for sp in args.shapes.split(","))
        return _short(shapes, args.repeat, args.log_probabilities)
    rng = np.random.default_rng(0)
    ok = True
    what = "log-probabilities of logits" if args.log_probabilities else "logits"
    print(f"shape ({args.rows}, {args.cols}), {what} N(0, 25), median of {args.repeat} interleaved runs")
    for dtype in ("float32", "float64"):
        x = _logits(rng, (args.rows, args.cols), args.log_probabilities).astype(dtype)
        buf = np.empty_like(x)
        funcs = {
            "copy": lambda x=x, buf=buf: np.copyto(buf, x),
            "scipy": lambda x=x: scipy.special.log_softmax(x, axis=-1),
            "ours": lambda x=x: logsoftmax.log_softmax(x, axis=-1),
        }
        if args.all:
            funcs["ours softmax"] = lambda x=x: logsoftmax.softmax(x, axis=-1)
            funcs["scipy softmax"] = lambda x=x: scipy.special.softmax(x, axis=-1)
            funcs["ours logsumexp"] = lambda x=x: logsoftmax.logsumexp(x, axis=-1)
            funcs["scipy logsumexp"] = lambda x=x: scipy.special.logsumexp(x, axis=-1)
        t = _interleaved(funcs, args.repeat)
        ratio = t["ours"] / t["scipy"]
        target = TARGETS[dtype]
        ok &= ratio <= target
        extra, out = _peak_extra(logsoftmax.log_softmax, x)
        sc_extra, _ = _peak_extra(lambda a: scipy.special.log_softmax(a, axis=-1), x)
        print(
            f"{dtype}: log_softmax ours {t['ours']:.1f} ms, scipy {t['scipy']:.1f} ms, "
            f"ratio {ratio:.2f} (target <= {target}: {'met' if ratio <= target else 'MISSED'}); "
            f"copy {t['copy']:.1f} ms (ours = {t['ours'] / t['copy']:.1f} copies)"
        )
        print(
            f"{dtype}: peak extra memory ours {extra / 2**20:.2f} MiB "
            f"({extra / x.nbytes:.3f} of the input's {x.nbytes / 2**20:.1f} MiB; output {out / 2**20:.1f} MiB "
            f"not counted), scipy {sc_extra / 2**20:.1f} MiB"
        )
        ok &= extra <= x.nbytes
        if args.all:
            for f in ("softmax", "logsumexp"):
                print(f"{dtype}: {f} ours {t['ours ' + f]:.1f} ms, scipy {t['scipy ' + f]:.1f} ms, "
                      f"ratio {t['ours ' + f] / t['scipy ' + f]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
