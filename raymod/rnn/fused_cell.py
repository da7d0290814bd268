"""`FusedRNNCell`: a whole stack of RNN layers as one `RNN` operator (MXNet's).

All weights live in one flat variable `<prefix>parameters` in the `RNN`
operator's layout (see `raymod.ops.rnn`). `unpack_weights` splits it into
MXNet's per-gate names (`<prefix>l0_i2h_i_weight`, `<prefix>r1_h2h_o_bias`,
...) and `pack_weights` joins them back; `unfuse()` builds the equivalent
stack of LSTM/GRU/RNN cells, which reads those per-gate weights after its
own `pack_weights`. MXNet ran this cell on cuDNN only; raymod runs it on
numpy and cupy alike.
"""
import numbers

import numpy as np

from .. import ndarray, symbol
from ..context import array_module
from ..ops.rnn import NUM_GATES, rnn_param_layout, rnn_param_size
from .base_cell import BaseRNNCell, _normalize_sequence, _positive_int
from .cells import GRUCell, LSTMCell, RNNCell
from .composite_cells import BidirectionalCell, SequentialRNNCell
from .modifier_cells import DropoutCell

GATE_NAMES = {"rnn_relu": [""], "rnn_tanh": [""], "lstm": ["_i", "_f", "_c", "_o"],
              "gru": ["_r", "_z", "_o"]}


class FusedRNNCell(BaseRNNCell):
    """RNN layers fused across time steps into one `RNN` operator.

    Parameters
    ----------
    num_hidden : int
        Number of units in each layer's output (per direction).
    num_layers : int, default 1
        Number of stacked layers.
    mode : str, default 'lstm'
        'rnn_relu', 'rnn_tanh', 'lstm' or 'gru'.
    bidirectional : bool, default False
        Run every layer in both directions; the output width doubles.
    dropout : float, default 0.
        Dropout on each layer's output except the last, in training.
    get_next_state : bool, default False
        Return the final states from `unroll` (the operator's state outputs).
    forget_bias : float, default 1.0
        Initial value of the LSTM forget gate's biases (through `init.FusedRNN`).
    prefix : str, optional
        Prefix of names; `'<mode>_'` (e.g. `'lstm_'`) when None.
    params : RNNParams or None
        Container for weight sharing between cells; created when None.
    """

    def __init__(self, num_hidden, num_layers=1, mode='lstm', bidirectional=False,
                 dropout=0., get_next_state=False, forget_bias=1.0, prefix=None, params=None):
        if mode not in NUM_GATES:
            raise ValueError(f"FusedRNNCell: mode must be one of {sorted(NUM_GATES)}, "
                             f"received {mode!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) \
                or not 0 <= dropout < 1:
            raise ValueError(f"FusedRNNCell: dropout must be a number in [0, 1), received "
                             f"{dropout!r}")
        if prefix is None:
            prefix = '%s_' % mode
        super().__init__(prefix=prefix, params=params)
        self._num_hidden = _positive_int(num_hidden, 'FusedRNNCell: num_hidden')
        self._num_layers = _positive_int(num_layers, 'FusedRNNCell: num_layers')
        self._mode = mode
        self._bidirectional = bool(bidirectional)
        self._dropout = dropout
        self._get_next_state = bool(get_next_state)
        self._directions = ['l', 'r'] if self._bidirectional else ['l']
        from ..initializer import FusedRNN
        initializer = FusedRNN(None, self._num_hidden, self._num_layers, mode,
                               self._bidirectional, forget_bias)
        self._parameter = self.params.get('parameters', init=initializer)

    @property
    def state_info(self):
        b = self._bidirectional + 1
        n = (self._mode == 'lstm') + 1
        return [{'shape': (b * self._num_layers, 0, self._num_hidden), '__layout__': 'LNC'}
                for _ in range(n)]

    @property
    def _gate_names(self):
        return GATE_NAMES[self._mode]

    def _slice_weights(self, arr, num_input):
        """Views of the flat `arr`, one per gate, under MXNet's per-gate names."""
        size = rnn_param_size(self._mode, self._num_layers, num_input, self._num_hidden,
                              self._bidirectional)
        if arr.shape != (size,):
            raise ValueError(f"FusedRNNCell {self._prefix!r}: parameters must have shape "
                             f"({size},) for input size {num_input}, received "
                             f"{tuple(arr.shape)}")
        h, args = self._num_hidden, {}
        for layer, d, kind, offset, shape in rnn_param_layout(
                self._mode, self._num_layers, num_input, h, self._bidirectional):
            group = 'i2h' if kind in ('wx', 'bx') else 'h2h'
            suffix = 'weight' if kind in ('wx', 'wh') else 'bias'
            cols = shape[1] if len(shape) == 2 else 1
            for j, gate in enumerate(self._gate_names):
                name = '%s%s%d_%s%s_%s' % (self._prefix, self._directions[d], layer, group,
                                          gate, suffix)
                start = offset + j * h * cols
                block = arr[start:start + h * cols]
                args[name] = block.reshape((h, cols)) if suffix == 'weight' else block
        return args

    def _num_input(self, size):
        """The input size that gives a flat vector of `size` elements (MXNet's formula)."""
        b, m, h = len(self._directions), len(self._gate_names), self._num_hidden
        return size // b // h // m - (self._num_layers - 1) * (h + b * h + 2) - h - 2

    def unpack_weights(self, args):
        """Split `<prefix>parameters` into per-gate weights and biases.

        Parameters
        ----------
        args : dict of str to array
            Parameters, e.g. `Module.get_params()[0]`.

        Returns
        -------
        dict of str to array
            A copy of `args` where the flat vector is replaced by copies named
            `<prefix><l|r><layer>_<i2h|h2h><gate>_<weight|bias>`.
        """
        args = dict(args)
        name = self._parameter.name
        if name not in args:
            raise KeyError(f"parameter {name!r} is missing; received {sorted(args)}")
        arr = args.pop(name)
        for key, value in self._slice_weights(arr, self._num_input(arr.size)).items():
            args[key] = value.copy()
        return args

    def pack_weights(self, args):
        """Join per-gate weights and biases into `<prefix>parameters`; the inverse of
        `unpack_weights`."""
        args = dict(args)
        first = '%sl0_i2h%s_weight' % (self._prefix, self._gate_names[0])
        if first not in args:
            raise KeyError(f"parameter {first!r} is missing; received {sorted(args)}")
        w0 = args[first]
        num_input = w0.shape[1]
        size = rnn_param_size(self._mode, self._num_layers, num_input, self._num_hidden,
                              self._bidirectional)
        xp = array_module(w0)
        arr = ndarray.zeros((size,), dtype=w0.dtype) if xp is np \
            else xp.zeros((size,), dtype=w0.dtype)
        for name, view in self._slice_weights(arr, num_input).items():
            if name not in args:
                raise KeyError(f"parameter {name!r} is missing; received {sorted(args)}")
            value = args.pop(name)
            if tuple(value.shape) != view.shape:
                raise ValueError(f"{name}: expected shape {view.shape}, received "
                                 f"{tuple(value.shape)}")
            view[...] = value
        args[self._parameter.name] = arr
        return args

    def __call__(self, inputs, states):
        raise NotImplementedError("FusedRNNCell cannot be stepped. Please use unroll")

    def unroll(self, length, inputs, begin_state=None, layout='NTC', merge_outputs=None):
        """Unroll all layers over `length` steps with one `RNN` operator.

        See `BaseRNNCell.unroll`; a list of per-step inputs is merged first,
        and 'NTC' data is swapped to the operator's 'TNC' and back. The
        states returned are the final states when `get_next_state` is True,
        else an empty list.
        """
        self.reset()
        inputs, axis = _normalize_sequence(length, inputs, layout, True)
        if axis not in (0, 1):
            raise ValueError(f"FusedRNNCell: layout {layout!r} is not supported; use 'TNC' "
                             f"or 'NTC'")
        if axis == 1:
            inputs = symbol.swapaxes(inputs, dim1=0, dim2=1)
        if begin_state is None:
            begin_state = self.begin_state()
        states = {'state': begin_state[0]}
        if self._mode == 'lstm':
            states['state_cell'] = begin_state[1]
        rnn = symbol.RNN(data=inputs, parameters=self._parameter,
                         state_size=self._num_hidden, num_layers=self._num_layers,
                         bidirectional=self._bidirectional, p=self._dropout,
                         state_outputs=self._get_next_state, mode=self._mode,
                         name=self._prefix + 'rnn', **states)
        if not self._get_next_state:
            outputs, states = rnn, []
        else:
            n_states = 2 if self._mode == 'lstm' else 1
            states = [rnn[1 + i] for i in range(n_states)]
            for state in states:
                state._set_attr(__layout__='LNC')
            outputs = rnn[0]
        if axis == 1:
            outputs = symbol.swapaxes(outputs, dim1=0, dim2=1)
        outputs, _ = _normalize_sequence(length, outputs, layout, merge_outputs)
        return outputs, states

    def unfuse(self):
        """The equivalent stack of LSTM/GRU/RNN cells, which can be stepped.

        Returns
        -------
        SequentialRNNCell
            One cell per layer (a BidirectionalCell of two when bidirectional),
            named `<prefix>l<layer>_` / `<prefix>r<layer>_`, with DropoutCells
            between layers when `dropout` > 0.
        """
        make = {'rnn_relu': lambda p: RNNCell(self._num_hidden, activation='relu', prefix=p),
                'rnn_tanh': lambda p: RNNCell(self._num_hidden, activation='tanh', prefix=p),
                'lstm': lambda p: LSTMCell(self._num_hidden, prefix=p),
                'gru': lambda p: GRUCell(self._num_hidden, prefix=p)}[self._mode]
        stack = SequentialRNNCell()
        for i in range(self._num_layers):
            if self._bidirectional:
                stack.add(BidirectionalCell(make('%sl%d_' % (self._prefix, i)),
                                            make('%sr%d_' % (self._prefix, i)),
                                            output_prefix='%sbi_l%d_' % (self._prefix, i)))
            else:
                stack.add(make('%sl%d_' % (self._prefix, i)))
            if self._dropout > 0 and i != self._num_layers - 1:
                stack.add(DropoutCell(self._dropout, prefix='%s_dropout%d_' % (self._prefix, i)))
        return stack
