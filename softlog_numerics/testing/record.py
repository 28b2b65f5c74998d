"""One record of a measurement: how far results are from the correctly rounded oracle.

Every measurement of the package -- the accuracy of this library (:mod:`.accuracy`), the audit of
another one (:mod:`.audit`), the sweeps of the algorithm variants
(:mod:`softlog_numerics.analysis.sweeps`) -- compares results ``got`` with the oracle's ``want``
over a set of inputs, for one function and format (and input family or variant), and keeps the
same numbers: an :class:`ErrorStats`. Each input is added with :meth:`ErrorStats.add`, which
compares element by element with :func:`softlog_numerics.ulp.compare`; :meth:`ErrorStats.finish`
then computes the order statistics (max, p99) over every element added.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from softlog_numerics.testing.ulp import compare

__all__ = ["ErrorStats", "Worst"]


@dataclass
class Worst:
    """The input with the largest ULP distance in a record, and its worst element.

    Attributes
    ----------
    args : tuple of numpy.ndarray
        The input (copies of the arrays passed to :meth:`ErrorStats.add`).
    index : tuple of int
        The worst element of the result.
    expected, got : float
        The oracle's value and the result there.
    ulp : float
        The largest ULP distance of that input.
    """

    args: tuple
    index: tuple
    expected: float
    got: float
    ulp: float


@dataclass(kw_only=True)
class ErrorStats:
    """What a set of results was found to be, against the correctly rounded oracle.

    Attributes
    ----------
    inputs : int
        Inputs added.
    values : int
        Result elements compared.
    max_ulp, p99_ulp : float
        Largest and 99th-percentile (``method="higher"``) ULP distance; NaN against NaN is 0, NaN
        against a number ``inf`` (with ``numbers_only``: the elements where got and want disagree
        on NaN-ness are left out). Set by :meth:`finish`.
    mean_bits, max_bits : float
        Mean and largest ``log2(1 + ULP)`` over the same elements; set by :meth:`finish`.
    compared : int
        Elements that enter the distance statistics (``values`` unless ``numbers_only``).
    not_correctly_rounded : float
        Share of those elements at a distance > 0 or with the wrong sign of zero; set by
        :meth:`finish`.
    nan, number_where_nan : int
        NaN results where the oracle's is a number; numbers where it is NaN.
    inf_where_finite, finite_where_inf : int
        Infinite results where the oracle's is finite; the reverse.
    wrong_sign_zero : int
        ``-0`` for ``+0`` and vice versa.
    contract_failures : int
        Inputs added with ``in_contract=False`` (outside the library's contract, as judged by
        :func:`softlog_numerics.testing.contract.within_contract`).
    worst : Worst or None
        The first input with the largest distance (a wrong sign of zero counts as half a ULP
        here, so that it is shown where nothing is farther); None if every element is correctly
        rounded.
    numbers_only : bool
        Leave NaN mismatches out of the distance statistics (they are counted in ``nan`` and
        ``number_where_nan`` only).
    keep_latest : bool
        On a tie, the latest input becomes :attr:`worst`, by its ULP distance alone (so that
        ``worst`` names an input as soon as one is added, even when every element is correctly
        rounded).
    """

    inputs: int = 0
    values: int = 0
    max_ulp: float = 0.0
    p99_ulp: float = 0.0
    mean_bits: float = 0.0
    max_bits: float = 0.0
    compared: int = 0
    not_correctly_rounded: float = 0.0
    nan: int = 0
    number_where_nan: int = 0
    inf_where_finite: int = 0
    finite_where_inf: int = 0
    wrong_sign_zero: int = 0
    contract_failures: int = 0
    worst: Worst | None = None
    numbers_only: bool = field(default=False, repr=False)
    keep_latest: bool = field(default=False, repr=False)
    _distances: list = field(default_factory=list, repr=False)
    _incorrect: int = field(default=0, repr=False)
    _worst_score: float = field(default=0.0, repr=False)

    def add(self, got, want, args: tuple = (), *, in_contract: bool = True) -> float:
        """Add the results ``got`` of one input ``args`` against the oracle's ``want``.

        Parameters
        ----------
        got, want : numpy.ndarray
            Arrays of one format and shape.
        args : tuple of numpy.ndarray
            The input, kept (copied) if it becomes :attr:`worst`.
        in_contract : bool
            Whether the input meets the library's contract (else it counts in
            ``contract_failures``).

        Returns
        -------
        float
            The largest distance of this input (0 if no element is compared).
        """
        got, want = np.asarray(got), np.asarray(want)
        c = compare(got, want)
        d, sign_zero = c.distance, c.wrong_sign_zero
        keep = ~c.nan_mismatch if self.numbers_only else np.ones(d.shape, dtype=bool)
        self.inputs += 1
        self.values += d.size
        self.nan += int(np.sum(c.nan))
        self.number_where_nan += int(np.sum(c.number_where_nan))
        self.inf_where_finite += int(np.sum(c.inf_where_finite))
        self.finite_where_inf += int(np.sum(c.finite_where_inf))
        self.wrong_sign_zero += int(np.sum(sign_zero))
        self.contract_failures += not in_contract
        self._incorrect += int(np.sum(c.incorrect & keep))
        kept = d[keep]
        self.compared += kept.size
        self._distances.append(kept.ravel())
        d = np.where(keep, d, 0.0)
        worst = float(kept.max()) if kept.size else 0.0
        score = worst if worst > 0 or self.keep_latest else (0.5 if sign_zero.any() else 0.0)
        if score > self._worst_score or (self.keep_latest and score == self._worst_score):
            self._worst_score = score
            key = np.where(sign_zero, 0.5, d) if worst == 0 else d
            i = np.unravel_index(int(np.argmax(key)), d.shape) if d.ndim else ()
            with np.errstate(invalid="ignore"):
                g, w = got.astype(np.float64), want.astype(np.float64)
            self.worst = Worst(tuple(np.array(a, copy=True) for a in args), tuple(int(j) for j in i),
                               float(w[i]), float(g[i]), worst)
        return worst

    def finish(self) -> None:
        """Compute the order statistics over every element added (and free the distances)."""
        if self._distances:
            d = np.concatenate(self._distances)
            if d.size:
                bits = np.log2(1.0 + d)
                self.max_ulp = float(d.max())
                self.p99_ulp = float(np.quantile(d, 0.99, method="higher"))
                self.mean_bits = float(bits.mean())
                self.max_bits = float(bits.max())
                self.not_correctly_rounded = self._incorrect / d.size
        self._distances = []
