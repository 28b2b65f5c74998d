"""The analysis behind the report: :mod:`.format_arithmetic` (a format's arithmetic, exact or
vectorised), :mod:`.algorithms` (the algorithm zoo, evaluated strictly in the format),
:mod:`.sweeps` (error against precision and input), :mod:`.regions` (where each formula breaks
down, located exactly), :mod:`.sld_bounds` (the range of the divergences). Imports the layers
below (:mod:`softlog_numerics.testing` and down) only.
"""
