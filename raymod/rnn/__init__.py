"""`rm.rnn`: MXNet's symbolic RNN cells and the bucketing sentence iterator."""
from .rnn_cell import (BaseRNNCell, BidirectionalCell, DropoutCell, GRUCell,  # noqa: F401
                       LSTMCell, ModifierCell, ResidualCell, RNNCell, RNNParams,
                       SequentialRNNCell, ZoneoutCell)
from .io import BucketSentenceIter, encode_sentences  # noqa: F401
