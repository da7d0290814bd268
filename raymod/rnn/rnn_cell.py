"""MXNet's `mxnet.rnn.rnn_cell` path: the cells, re-exported from their modules."""
from .base_cell import BaseRNNCell, RNNParams  # noqa: F401
from .cells import GRUCell, LSTMCell, RNNCell  # noqa: F401
from .composite_cells import BidirectionalCell, SequentialRNNCell  # noqa: F401
from .fused_cell import FusedRNNCell  # noqa: F401
from .modifier_cells import DropoutCell, ModifierCell, ResidualCell, ZoneoutCell  # noqa: F401
