"""raymod: MXNet's Module API on numpy, cupy and Ray.

`import raymod as rm` gives MXNet's short names: rm.sym, rm.mod, rm.io,
rm.metric, rm.optimizer, rm.init, rm.callback, rm.kv, rm.rnn, rm.nd,
rm.cpu(), rm.gpu(), rm.model, rm.kvstore, rm.contrib, rm.viz; and raymod's
rm.history (fit's TrainingHistory) and rm.plot (learning curves).
"""
from .base import MXNetError  # noqa: F401
from .context import Context, cpu, gpu, current_context  # noqa: F401
from . import ops  # noqa: F401
from . import symbol  # noqa: F401
from . import symbol as sym  # noqa: F401
from .symbol import AttrScope  # noqa: F401
from . import name  # noqa: F401
from . import attribute  # noqa: F401
from .executor import Executor  # noqa: F401
from . import random  # noqa: F401
from . import io  # noqa: F401
from . import recordio  # noqa: F401
from . import image  # noqa: F401
from . import metric  # noqa: F401
from . import rnn  # noqa: F401
from . import ndarray  # noqa: F401
from . import ndarray as nd  # noqa: F401
from . import initializer  # noqa: F401
from . import initializer as init  # noqa: F401
from . import optimizer  # noqa: F401
from . import lr_scheduler  # noqa: F401
from . import callback  # noqa: F401
from . import history  # noqa: F401  (rm.history.TrainingHistory, what fit returns)
from . import plot  # noqa: F401  (rm.plot.plot_history; matplotlib loads on first use)
from . import model  # noqa: F401
from . import monitor  # noqa: F401
from . import monitor as mon  # noqa: F401
from .parallel import kvstore as kv  # noqa: F401
from . import kvstore  # noqa: F401  (MXNet has both mx.kv and mx.kvstore)
from . import module  # noqa: F401
from . import module as mod  # noqa: F401
from . import test_utils  # noqa: F401
from . import contrib  # noqa: F401  (its submodules load on first use)
from . import viz  # noqa: F401

__version__ = "0.1.0"
