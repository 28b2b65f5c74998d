# Type-checker view of the public path softlog_numerics.ulp: at run time softlog_numerics/__init__.py
# registers softlog_numerics.testing.ulp under this name in sys.modules (no .py file here).
from softlog_numerics.testing.ulp import *
from softlog_numerics.testing.ulp import __all__ as __all__
