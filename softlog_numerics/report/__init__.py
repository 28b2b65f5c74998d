"""The report: :mod:`.plots` and :mod:`.region_plots` draw the figures (matplotlib, imported when a
figure is drawn), :mod:`.build` runs the sweeps and writes ``report.md``. Imports
:mod:`softlog_numerics.analysis` and the layers below only.
"""
