"""raymod: MXNet's Module API on numpy, cupy and Ray.

`import raymod as rm` gives MXNet's short names: rm.sym, rm.cpu(), rm.gpu(), ...
"""
from .base import MXNetError
from .context import Context, cpu, gpu, current_context
from . import ops
from . import symbol
from . import symbol as sym
from .symbol import AttrScope
from . import name
from .executor import Executor
from . import test_utils

__version__ = "0.1.0"
