"""The core every layer stands on: float formats, error-free transformations, constants, axes and
exact array conversions.

Modules: :mod:`.formats` (the four formats and rounding from float64), :mod:`.eft` (two-sum,
two-product, splitting, row sums on a grid), :mod:`.dd` (double-double arithmetic),
:mod:`.constants` (exact float64 constants of the reductions), :mod:`.softlog_dd` (the
double-double softlog kernels), :mod:`.exp_dd` (the double-double exp and log1p kernels),
:mod:`.axes` (axis handling and input validation), :mod:`.targets` (cross-entropy targets and
label smoothing, validated), :mod:`.interop` (NumPy <-> PyTorch/JAX/CuPy), :mod:`.rounding` (deciding a rounding to a narrow
format from float64 or double-double values). They import NumPy, ml_dtypes and
each other only: nothing else of the package.
"""
