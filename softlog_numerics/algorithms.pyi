# Type-checker view of the public path softlog_numerics.algorithms: at run time softlog_numerics/__init__.py
# registers softlog_numerics.analysis.algorithms under this name in sys.modules (no .py file here).
from softlog_numerics.analysis.algorithms import *
from softlog_numerics.analysis.algorithms import __all__ as __all__
