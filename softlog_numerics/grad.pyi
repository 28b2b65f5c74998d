# Type-checker view of the public path softlog_numerics.grad: at run time softlog_numerics/__init__.py
# registers softlog_numerics.functions.grad under this name in sys.modules (no .py file here).
from softlog_numerics.functions.grad import *
from softlog_numerics.functions.grad import __all__ as __all__
