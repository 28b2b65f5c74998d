"""The targets of the cross-entropy loss, as the implementation and the oracle both take them.

A target is either **class indices** (an integer array of the logits' shape without the class
axis) or **probabilities** (a float array of the logits' shape). With label smoothing ``eps`` over
``K`` classes the target distribution of a row is

    ``t_k = (1 - eps) * b_k + eps / K``,

``b`` the one-hot vector of the class index or the given probabilities. A class index equal to
``ignore_index`` (default ``-100``, PyTorch's convention) marks a row that takes no part in the
loss: its loss and its gradient are ``+0`` whatever its logits.

:class:`Targets` holds the validated inputs; :meth:`Targets.exact` gives ``t`` of one row as exact
fractions (for the oracle) and :meth:`Targets.float64` as a double-double ``t_hi + t_lo`` (for the
implementation).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from softlog_numerics._core.axes import (
    Rows,
    check_probabilities,
    checked_scalar,
    normalize_axis,
)
from softlog_numerics._core.eft import fast_two_sum, fraction_dd, two_prod, two_sum
from softlog_numerics._core.formats import Format, as_float_array, format_of

__all__ = ["IGNORE_INDEX", "Targets", "prepared_targets"]

IGNORE_INDEX = -100


class Targets:
    """Validated cross-entropy inputs: the logits' rows and each row's target.

    Attributes
    ----------
    fmt : Format
        The logits' format (the loss and the gradient are returned in it).
    rows : Rows
        The logits as ``rows x K`` with the class axis last (``rows.rows``).
    index : numpy.ndarray or None
        int64 class index per row (index targets; ``-1`` on ignored rows), else None.
    probs : numpy.ndarray or None
        float64 ``rows x K`` probabilities (probability targets; exact copies), else None.
    ignored : numpy.ndarray
        bool per row: the row's index is ``ignore_index``.
    smoothing, z_loss : float
        The label smoothing ``eps`` and the z-loss weight.
    """

    def __init__(self, fmt, rows, index, probs, ignored, smoothing, z_loss):
        self.fmt: Format = fmt
        self.rows: Rows = rows
        self.index = index
        self.probs = probs
        self.ignored = ignored
        self.smoothing = smoothing
        self.z_loss = z_loss
        self.K = rows.n

    def exact(self, r: int) -> list[Fraction]:
        """The smoothed target ``t`` of row ``r`` as exact fractions (zeros on an ignored row)."""
        K = self.K
        if self.ignored[r]:
            return [Fraction(0)] * K
        eps = Fraction(self.smoothing)
        share = eps / K
        if self.probs is None:
            t = [share] * K
            t[int(self.index[r])] += 1 - eps
            return t
        return [(1 - eps) * Fraction(b) + share for b in self.probs[r].tolist()]

    def float64(self, r0: int = 0, r1: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(t_hi, t_lo)`` of rows ``r0:r1``, float64 with ``|t_hi + t_lo - t| <= 2**-104 t +
        2**-1074`` (exact for unsmoothed targets): ``1 - eps`` and ``eps / K`` as exact
        double-doubles, the product by ``b`` by TwoProd, the sum by TwoSum."""
        R, K = self.rows.rows.shape
        r1 = R if r1 is None else r1
        eps = Fraction(self.smoothing)
        keep = 1 - eps
        share = eps / K if K else Fraction(0)
        s_hi, s_lo = fraction_dd(share)
        ignored = self.ignored[r0:r1]
        if self.probs is None:
            m = r1 - r0
            hi = np.full((m, K), s_hi)
            lo = np.full((m, K), s_lo)
            index = self.index[r0:r1]
            live = np.flatnonzero(~ignored)
            on_hi, on_lo = fraction_dd(keep + share)
            hi[live, index[live]] = on_hi
            lo[live, index[live]] = on_lo
            hi[ignored] = 0.0
            lo[ignored] = 0.0
            return hi, lo
        b = self.probs[r0:r1]
        if eps == 0:
            return b.copy(), np.zeros_like(b)
        k_hi, k_lo = fraction_dd(keep)
        p, e = two_prod(np.full_like(b, k_hi), b)
        h, f = two_sum(p, np.full_like(b, s_hi))
        return fast_two_sum(h, f + (e + (k_lo * b + s_lo)))




def prepared_targets(
    logits, target, *, label_smoothing, z_loss, axis, ignore_index, validate: bool = True
) -> Targets:
    """Convert and check the inputs of ``cross_entropy``; errors name the argument and the first
    offending index.

    * ``logits``: a float array (TypeError otherwise); ``axis`` (an int) is the class axis.
    * ``target``: integer class indices of the logits' shape without ``axis``, each in
      ``[0, K)`` or equal to ``ignore_index``; or probabilities of the logits' shape, each
      vector along ``axis`` a distribution (``validate=False`` skips that check).
    * ``label_smoothing`` in ``[0, 1]``; ``z_loss >= 0``, both finite.
    """
    x = as_float_array(logits, "logits")
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"axis must be an int (the class axis), got {axis!r}")
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension (the classes)")
    (ax,) = normalize_axis(axis, x.ndim)
    eps = checked_scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    lam = checked_scalar(z_loss, "z_loss", low=0.0)
    fmt = format_of(x.dtype)
    rows = Rows(x, ax)
    R, K = rows.rows.shape
    t = np.asarray(target)
    reduced = x.shape[:ax] + x.shape[ax + 1 :]
    if t.dtype.kind in "iu":
        if t.shape != reduced:
            raise ValueError(
                f"class-index target must have the logits' shape without axis {axis}, {reduced}; "
                f"got {t.shape} (probability targets have the logits' shape {x.shape})"
            )
        idx = t.astype(np.int64).reshape(-1)
        ignored = idx == int(ignore_index)
        bad = ~ignored & ((idx < 0) | (idx >= K))
        if bad.any():
            where = np.unravel_index(int(np.argmax(bad)), reduced) if reduced else ()
            raise ValueError(
                f"target{list(map(int, where))} = {int(idx[np.argmax(bad)])} is not a class index in "
                f"[0, {K}) nor ignore_index = {ignore_index}"
            )
        index = np.where(ignored, -1, idx)
        return Targets(fmt, rows, index, None, ignored, eps, lam)
    if t.dtype.kind == "b":
        raise TypeError("target must hold integer class indices or float probabilities, not booleans")
    if t.shape == reduced and t.shape != x.shape:
        raise TypeError(
            f"target of shape {t.shape} looks like class indices but has dtype {t.dtype}: class "
            "indices must be integers (e.g. target.astype(np.int64))"
        )
    if t.shape != x.shape:
        raise ValueError(
            f"target must be class indices of shape {reduced} or probabilities of the logits' "
            f"shape {x.shape}; got shape {t.shape}"
        )
    p = as_float_array(t, "target")
    if validate:
        check_probabilities(p, ax, "target")
    with np.errstate(invalid="ignore"):
        probs = Rows(p.astype(np.float64), ax).rows
    return Targets(fmt, rows, None, np.ascontiguousarray(probs), np.zeros(R, dtype=bool), eps, lam)
