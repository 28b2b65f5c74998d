# Type-checker view of the public path softlog_numerics.strategies: at run time softlog_numerics/__init__.py
# registers softlog_numerics.testing.strategies under this name in sys.modules (no .py file here).
from softlog_numerics.testing.strategies import *
from softlog_numerics.testing.strategies import __all__ as __all__
