"""Verification tools for users and for this library's own suite: the measure of a function
against the oracle.

:mod:`.ulp` (the error metric and :func:`~.ulp.compare`), :mod:`.record` (one record of a
measurement, :class:`~.record.ErrorStats`, kept by the accuracy, the audit and the sweeps),
:mod:`.contract` (the proven bounds and the one test of them), :mod:`.strategies` (Hypothesis strategies that take a dtype),
:mod:`.textbook` (the textbook formulas over one arithmetic protocol), :mod:`.backends` (how other
libraries are called), :mod:`.audit` (audit any backend; ``assert_matches_oracle`` for pytest),
:mod:`.bulk` (NumPy-drawn batches of rows for the cells whose oracle is fast), :mod:`.accuracy`
(this library's own contract, measured), :mod:`.exhaustive` (every input of a range). Imports :mod:`softlog_numerics._core`, :mod:`softlog_numerics.functions` and
:mod:`softlog_numerics.oracle` only.
"""
