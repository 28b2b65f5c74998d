# Type-checker view of the public path softlog_numerics.regions: at run time softlog_numerics/__init__.py
# registers softlog_numerics.analysis.regions under this name in sys.modules (no .py file here).
from softlog_numerics.analysis.regions import *
from softlog_numerics.analysis.regions import __all__ as __all__
