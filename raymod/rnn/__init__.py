"""`rm.rnn`: MXNet's symbolic RNN cells and the bucketing sentence iterator."""
from .rnn_cell import (BaseRNNCell, BidirectionalCell, DropoutCell,  # noqa: F401
                       FusedRNNCell, GRUCell, LSTMCell, ModifierCell, ResidualCell,
                       RNNCell, RNNParams, SequentialRNNCell, ZoneoutCell)
from .io import BucketSentenceIter, encode_sentences  # noqa: F401
