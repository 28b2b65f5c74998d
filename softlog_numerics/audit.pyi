# Type-checker view of the public path softlog_numerics.audit: at run time softlog_numerics/__init__.py
# registers softlog_numerics.testing.audit under this name in sys.modules (no .py file here).
from softlog_numerics.testing.audit import *
from softlog_numerics.testing.audit import __all__ as __all__
