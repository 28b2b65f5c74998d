"""Speed of the fused loss and the backward pass against PyTorch's, as ratios in one run.

Run: ``python benchmarks/bench_cross_entropy.py [--rows 4096] [--cols 32000] [--repeat 5]``

On float32 logits of shape (rows, cols) (~ N(0, 5^2)) with random class indices, times, in the
same process and interleaved:

* ``torch``: ``torch.nn.functional.cross_entropy(z, y, reduction="sum")`` forward and
  ``backward()`` (the gradient of the summed loss: ``softmax - onehot``), CPU, the machine's
  default thread count;
* ``ours``: ``softlog_numerics.cross_entropy(z, y)`` followed by
  ``softlog_numerics.grad.cross_entropy(z, y, ones)`` (the same two quantities);
* ``ours_ls_vjp``: ``softlog_numerics.grad.log_softmax(z, g)`` with a one-hot ``g``;
* ``copy``: one ``np.copyto`` of the logits (the scale).

Prints the medians (ms) and the ratios to torch. Needs torch.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import softlog_numerics as sn


def _interleaved(funcs: dict, repeat: int) -> dict:
    times = {name: [] for name in funcs}
    for f in funcs.values():
        f()
    for _ in range(repeat):
        for name, f in funcs.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    return {name: 1e3 * statistics.median(v) for name, v in times.items()}


def main(argv=None) -> int:
    import torch
    import torch.nn.functional as F

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=32000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((args.rows, args.cols)) * 5).astype(np.float32)
    y = rng.integers(0, args.cols, args.rows)
    ones = np.ones(args.rows, np.float32)
    g = np.zeros_like(z)
    g[np.arange(args.rows), y] = 1.0
    zt, yt = torch.from_numpy(z), torch.from_numpy(y)
    buf = np.empty_like(z)

    def torch_fb():
        x = zt.detach().clone().requires_grad_(True)
        F.cross_entropy(x, yt, reduction="sum").backward()
        return x.grad

    funcs = {
        "torch": torch_fb,
        "ours": lambda: (sn.cross_entropy(z, y), sn.grad.cross_entropy(z, y, ones)),
        "ours_ls_vjp": lambda: sn.grad.log_softmax(z, g),
        "copy": lambda: np.copyto(buf, z),
    }
    t = _interleaved(funcs, args.repeat)
    print(f"({args.rows}, {args.cols}) float32, median of {args.repeat}, torch {torch.__version__} "
          f"with {torch.get_num_threads()} threads")
    for name, ms in t.items():
        print(f"  {name:12s} {ms:9.1f} ms   {ms / t['torch']:6.2f}x torch   {ms / t['copy']:7.1f}x copy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
