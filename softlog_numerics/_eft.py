"""Error-free transformations on float64 arrays (Knuth, Dekker; see Muller et al., Handbook of
Floating-Point Arithmetic, ch. 4), valid in round-to-nearest without overflow:

* ``two_sum(a, b) -> (s, t)`` with ``s = fl(a + b)`` and ``s + t == a + b`` exactly (6 flops);
* ``fast_two_sum(a, b)``: the same when ``|a| >= |b|`` (or ``a == 0``) (3 flops);
* ``two_prod(a, b) -> (p, t)`` with ``p = fl(a * b)`` and ``p + t == a * b`` exactly, by Dekker's
  split (17 flops), valid while ``|a|, |b| < 2**995`` and ``a * b`` has no underflow.

They work elementwise on NumPy arrays (or scalars) of float64 and allocate their results.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fast_two_sum", "split", "two_prod", "two_sum"]

_SPLITTER = 134217729.0  # 2**27 + 1


def two_sum(a, b):
    s = a + b
    bb = s - a
    t = (a - (s - bb)) + (b - bb)
    return s, t


def fast_two_sum(a, b):
    s = a + b
    t = b - (s - a)
    return s, t


def split(a):
    """``a = hi + lo`` with both halves holding at most 26 significant bits."""
    c = _SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


def two_prod(a, b):
    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    t = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, t
