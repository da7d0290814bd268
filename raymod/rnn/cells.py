"""The step cells: `RNNCell`, `LSTMCell`, `GRUCell` (MXNet's graphs and names).

Each step t (0-based, counted since the last `reset`) names its nodes
`<prefix>t<t>_<part>`; the weights are `<prefix>i2h_weight`, `<prefix>i2h_bias`,
`<prefix>h2h_weight`, `<prefix>h2h_bias`, with the gates stacked along the rows
of the fused i2h/h2h FullyConnected layers in MXNet's order.
"""
import json
import numbers

from .. import symbol
from .base_cell import BaseRNNCell, _positive_int


def _lstm_bias_init(forget_bias):
    """The i2h bias initializer, `LSTMBias(forget_bias)`, as its JSON string.

    Written as MXNet's `Initializer.dumps()` writes it, so a symbol saved here
    carries the `__init__` MXNet's LSTMCell gives (`["lstmbias", {"forget_bias": 1.0}]`).
    """
    if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real):
        raise TypeError(f"LSTMCell: forget_bias must be a number, received "
                        f"{type(forget_bias).__name__}")
    try:
        from ..initializer import LSTMBias
    except ImportError:
        return json.dumps(["lstmbias", {"forget_bias": forget_bias}])
    return LSTMBias(forget_bias=forget_bias).dumps()


class RNNCell(BaseRNNCell):
    """Simple recurrent cell: `h' = activation(FC(x) + FC(h))`.

    Parameters
    ----------
    num_hidden : int
        Number of units of the output.
    activation : str or callable, default 'tanh'
        An `Activation` act_type, or a function `f(symbol, name=...)`.
    prefix : str, default 'rnn_'
        Prefix of node names (and weight names when `params` is None).
    params : RNNParams or None
        Container for weight sharing between cells; created when None.
    """

    def __init__(self, num_hidden, activation='tanh', prefix='rnn_', params=None):
        super().__init__(prefix=prefix, params=params)
        self._num_hidden = _positive_int(num_hidden, 'RNNCell: num_hidden')
        self._activation = activation
        self._iW = self.params.get('i2h_weight')
        self._iB = self.params.get('i2h_bias')
        self._hW = self.params.get('h2h_weight')
        self._hB = self.params.get('h2h_bias')

    @property
    def state_info(self):
        return [{'shape': (0, self._num_hidden), '__layout__': 'NC'}]

    @property
    def _gate_names(self):
        return ('',)

    def __call__(self, inputs, states):
        self._counter += 1
        name = '%st%d_' % (self._prefix, self._counter)
        i2h = symbol.FullyConnected(data=inputs, weight=self._iW, bias=self._iB,
                                    num_hidden=self._num_hidden, name='%si2h' % name)
        h2h = symbol.FullyConnected(data=states[0], weight=self._hW, bias=self._hB,
                                    num_hidden=self._num_hidden, name='%sh2h' % name)
        output = self._get_activation(i2h + h2h, self._activation, name='%sout' % name)
        return output, [output]


class LSTMCell(BaseRNNCell):
    """Long short-term memory cell, gates in MXNet's order i, f, c, o.

    `i, f, o = sigmoid(.)`, `c~ = tanh(.)` of the four row blocks of
    `FC(x) + FC(h)`; `c' = f*c + i*c~`; `h' = o*tanh(c')`. States are `[h, c]`.

    Parameters
    ----------
    num_hidden : int
        Number of units of the output.
    prefix : str, default 'lstm_'
        Prefix of node names (and weight names when `params` is None).
    params : RNNParams or None
        Container for weight sharing between cells; created when None.
    forget_bias : float, default 1.0
        Added to the forget gate's part of `i2h_bias` by its initializer
        (`__init__` attribute `LSTMBias(forget_bias)`).
    """

    def __init__(self, num_hidden, prefix='lstm_', params=None, forget_bias=1.0):
        super().__init__(prefix=prefix, params=params)
        self._num_hidden = _positive_int(num_hidden, 'LSTMCell: num_hidden')
        self._iW = self.params.get('i2h_weight')
        self._hW = self.params.get('h2h_weight')
        self._iB = self.params.get('i2h_bias', init=_lstm_bias_init(forget_bias))
        self._hB = self.params.get('h2h_bias')

    @property
    def state_info(self):
        return [{'shape': (0, self._num_hidden), '__layout__': 'NC'},
                {'shape': (0, self._num_hidden), '__layout__': 'NC'}]

    @property
    def _gate_names(self):
        return ['_i', '_f', '_c', '_o']

    def __call__(self, inputs, states):
        self._counter += 1
        name = '%st%d_' % (self._prefix, self._counter)
        i2h = symbol.FullyConnected(data=inputs, weight=self._iW, bias=self._iB,
                                    num_hidden=self._num_hidden * 4, name='%si2h' % name)
        h2h = symbol.FullyConnected(data=states[0], weight=self._hW, bias=self._hB,
                                    num_hidden=self._num_hidden * 4, name='%sh2h' % name)
        gates = i2h + h2h
        slice_gates = symbol.SliceChannel(gates, num_outputs=4, name='%sslice' % name)
        in_gate = symbol.Activation(slice_gates[0], act_type='sigmoid', name='%si' % name)
        forget_gate = symbol.Activation(slice_gates[1], act_type='sigmoid', name='%sf' % name)
        in_transform = symbol.Activation(slice_gates[2], act_type='tanh', name='%sc' % name)
        out_gate = symbol.Activation(slice_gates[3], act_type='sigmoid', name='%so' % name)
        # MXNet's symbol._internal._plus / _mul are aliases of elemwise_add / _mul.
        next_c = symbol.elemwise_add(forget_gate * states[1], in_gate * in_transform,
                                     name='%sstate' % name)
        next_h = symbol.elemwise_mul(out_gate, symbol.Activation(next_c, act_type='tanh'),
                                     name='%sout' % name)
        return next_h, [next_h, next_c]


class GRUCell(BaseRNNCell):
    """Gated recurrent unit, cuDNN's variant (MXNet's), gates r, z, o.

    `r = sigmoid(i_r + h_r)`, `z = sigmoid(i_z + h_z)`,
    `h~ = tanh(i_o + r*h_o)`, `h' = (1 - z)*h~ + z*h`, where `i_*`, `h_*` are the
    three row blocks of `FC(x)` and `FC(h)`.

    Parameters
    ----------
    num_hidden : int
        Number of units of the output.
    prefix : str, default 'gru_'
        Prefix of node names (and weight names when `params` is None).
    params : RNNParams or None
        Container for weight sharing between cells; created when None.
    """

    def __init__(self, num_hidden, prefix='gru_', params=None):
        super().__init__(prefix=prefix, params=params)
        self._num_hidden = _positive_int(num_hidden, 'GRUCell: num_hidden')
        self._iW = self.params.get('i2h_weight')
        self._iB = self.params.get('i2h_bias')
        self._hW = self.params.get('h2h_weight')
        self._hB = self.params.get('h2h_bias')

    @property
    def state_info(self):
        return [{'shape': (0, self._num_hidden), '__layout__': 'NC'}]

    @property
    def _gate_names(self):
        return ['_r', '_z', '_o']

    def __call__(self, inputs, states):
        self._counter += 1
        # MXNet's GRU names carry a double underscore: '<prefix>t0__i2h'.
        name = '%st%d_' % (self._prefix, self._counter)
        prev_state_h = states[0]
        i2h = symbol.FullyConnected(data=inputs, weight=self._iW, bias=self._iB,
                                    num_hidden=self._num_hidden * 3, name='%s_i2h' % name)
        h2h = symbol.FullyConnected(data=prev_state_h, weight=self._hW, bias=self._hB,
                                    num_hidden=self._num_hidden * 3, name='%s_h2h' % name)
        i2h_r, i2h_z, i2h = symbol.SliceChannel(i2h, num_outputs=3, name='%s_i2h_slice' % name)
        h2h_r, h2h_z, h2h = symbol.SliceChannel(h2h, num_outputs=3, name='%s_h2h_slice' % name)
        reset_gate = symbol.Activation(i2h_r + h2h_r, act_type='sigmoid',
                                       name='%s_r_act' % name)
        update_gate = symbol.Activation(i2h_z + h2h_z, act_type='sigmoid',
                                        name='%s_z_act' % name)
        next_h_tmp = symbol.Activation(i2h + reset_gate * h2h, act_type='tanh',
                                       name='%s_h_act' % name)
        next_h = symbol.elemwise_add((1. - update_gate) * next_h_tmp,
                                     update_gate * prev_state_h, name='%sout' % name)
        return next_h, [next_h]
