# Type-checker view of the public path softlog_numerics.accuracy: at run time softlog_numerics/__init__.py
# registers softlog_numerics.testing.accuracy under this name in sys.modules (no .py file here).
from softlog_numerics.testing.accuracy import *
from softlog_numerics.testing.accuracy import __all__ as __all__
