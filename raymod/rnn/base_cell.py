"""The RNN cell base: `RNNParams` (shared weight variables) and `BaseRNNCell`.

MXNet's `mx.rnn` builds recurrent graphs symbolically: a cell is called once per
time step and returns new symbols; `unroll` calls it `length` times. Every
name (weights, begin states, per-step nodes) is MXNet's, so parameters line up
with MXNet checkpoints (python/mxnet/rnn/rnn_cell.py, MXNet 1.x).
"""
import numbers

import numpy as np

from .. import ndarray, symbol
from ..base import MXNetError
from ..context import array_module


class RNNParams:
    """Container of weight variables, shared between cells.

    Parameters
    ----------
    prefix : str
        Prepended to the name of every variable the container creates.
    """

    def __init__(self, prefix=''):
        self._prefix = prefix
        self._params = {}

    def get(self, name, **kwargs):
        """The variable `prefix + name`, created on first request.

        Parameters
        ----------
        name : str
            Name of the variable, without the prefix.
        **kwargs
            Passed to `rm.sym.Variable` when the variable is created (e.g. `init`).
        """
        name = self._prefix + name
        if name not in self._params:
            self._params[name] = symbol.Variable(name, **kwargs)
        return self._params[name]


def _check_not_modified(cell):
    if cell._modified:
        raise MXNetError("After applying modifier cells (e.g. DropoutCell) the base "
                         "cell cannot be called directly. Call the modifier cell instead.")


class BaseRNNCell:
    """Abstract base class of RNN cells.

    Parameters
    ----------
    prefix : str, default ''
        Prefix of the names of the cell's nodes, and of its weights when `params`
        is None.
    params : RNNParams or None
        Container for weight sharing between cells; a new one with `prefix` is
        created when None.
    """

    def __init__(self, prefix='', params=None):
        if params is None:
            params = RNNParams(prefix)
            self._own_params = True
        else:
            if not isinstance(params, RNNParams):
                raise TypeError(f"params must be an RNNParams or None, received "
                                f"{type(params).__name__}")
            self._own_params = False
        self._prefix = prefix
        self._params = params
        self._modified = False
        self.reset()

    def reset(self):
        """Reset the step counters before re-using the cell for another graph."""
        self._init_counter = -1
        self._counter = -1
        for cell in getattr(self, '_cells', ()):
            cell.reset()

    def __call__(self, inputs, states):
        """Build one time step.

        Parameters
        ----------
        inputs : Symbol
            The step's input, 2-D (batch, features).
        states : list of Symbol
            The states of the previous step, or `begin_state()`.

        Returns
        -------
        output : Symbol
            The step's output.
        states : list of Symbol
            The states for the next step, structured as `begin_state()`.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement a step")

    @property
    def params(self):
        """The cell's RNNParams (asking for it marks the params as shared)."""
        self._own_params = False
        return self._params

    @property
    def state_info(self):
        """Shape and layout of each state: a list of dicts (or None)."""
        raise NotImplementedError(f"{type(self).__name__} does not define state_info")

    @property
    def state_shape(self):
        """Shape of each state (0 = batch dimension, inferred at bind)."""
        return [ele['shape'] for ele in self.state_info]

    @property
    def _gate_names(self):
        return ()

    def begin_state(self, func=symbol.zeros, **kwargs):
        """Initial states, one symbol per state named `<prefix>begin_state_<n>`.

        Parameters
        ----------
        func : callable, default rm.sym.zeros
            Builds each state: `rm.sym.zeros`, `rm.sym.Variable` (to feed the states
            as inputs), ...
        **kwargs
            More keyword arguments for `func`; each state's `shape` and
            `__layout__` from `state_info` are added.

        Returns
        -------
        list of Symbol
        """
        _check_not_modified(self)
        states = []
        for info in self.state_info:
            self._init_counter += 1
            name = '%sbegin_state_%d' % (self._prefix, self._init_counter)
            if info is not None:
                kwargs.update(info)     # as MXNet: later states see earlier info too
            states.append(func(name=name, **kwargs))
        return states

    def unpack_weights(self, args):
        """Split the fused `i2h`/`h2h` weights and biases into one array per gate.

        Parameters
        ----------
        args : dict of str to array
            Parameters, e.g. `Module.get_params()[0]`.

        Returns
        -------
        dict of str to array
            A copy of `args` in which `<prefix>i2h_weight` becomes
            `<prefix>i2h<gate>_weight` for each gate (`_i _f _c _o` for LSTM,
            `_r _z _o` for GRU, `''` for RNN), and likewise biases and `h2h`.
        """
        args = dict(args)
        if not self._gate_names:
            return args
        h = self._num_hidden
        for group in ('i2h', 'h2h'):
            weight = _pop(args, '%s%s_weight' % (self._prefix, group))
            bias = _pop(args, '%s%s_bias' % (self._prefix, group))
            _check_gate_rows(weight, len(self._gate_names) * h, self._prefix + group)
            for j, gate in enumerate(self._gate_names):
                args['%s%s%s_weight' % (self._prefix, group, gate)] = \
                    weight[j * h:(j + 1) * h].copy()
                args['%s%s%s_bias' % (self._prefix, group, gate)] = \
                    bias[j * h:(j + 1) * h].copy()
        return args

    def pack_weights(self, args):
        """Concatenate per-gate weights and biases back into the fused ones.

        The inverse of `unpack_weights`.
        """
        args = dict(args)
        if not self._gate_names:
            return args
        for group in ('i2h', 'h2h'):
            weight, bias = [], []
            for gate in self._gate_names:
                weight.append(_pop(args, '%s%s%s_weight' % (self._prefix, group, gate)))
                bias.append(_pop(args, '%s%s%s_bias' % (self._prefix, group, gate)))
            args['%s%s_weight' % (self._prefix, group)] = _concatenate(weight)
            args['%s%s_bias' % (self._prefix, group)] = _concatenate(bias)
        return args

    def unroll(self, length, inputs, begin_state=None, layout='NTC', merge_outputs=None):
        """Unroll the cell over `length` time steps.

        Parameters
        ----------
        length : int
            Number of steps.
        inputs : Symbol or list of Symbol
            One symbol of shape (batch, length, ...) for layout 'NTC' or
            (length, batch, ...) for 'TNC' (split along T), or a list of `length`
            symbols of shape (batch, ...).
        begin_state : list of Symbol, optional
            Initial states; `begin_state()` when None.
        layout : str, default 'NTC'
            Layout of `inputs` when it is one symbol, and of merged outputs.
        merge_outputs : bool or None
            True: one symbol (outputs expanded on the T axis and concatenated);
            False or None: a list of per-step symbols.

        Returns
        -------
        outputs : Symbol or list of Symbol
        states : list of Symbol
            The states after the last step, structured as `begin_state()`.
        """
        self.reset()
        _check_length(length)
        inputs, _ = _normalize_sequence(length, inputs, layout, False)
        if begin_state is None:
            begin_state = self.begin_state()
        states = begin_state
        outputs = []
        for i in range(length):
            output, states = self(inputs[i], states)
            outputs.append(output)
        outputs, _ = _normalize_sequence(length, outputs, layout, merge_outputs)
        return outputs, states

    def _get_activation(self, inputs, activation, **kwargs):
        """`Activation(act_type=activation)` for a string, else `activation(inputs)`."""
        if isinstance(activation, str):
            return symbol.Activation(inputs, act_type=activation, **kwargs)
        if not callable(activation):
            raise TypeError(f"activation must be a string or a callable, received "
                            f"{type(activation).__name__}")
        return activation(inputs, **kwargs)


# --------------------------------------------------------------------------- helpers

def _pop(args, name):
    if name not in args:
        raise KeyError(f"parameter {name!r} is missing; received {sorted(args)}")
    return args.pop(name)


def _concatenate(arrays):
    """Join along axis 0: an NDArray for host arrays (as MXNet), else on the device."""
    xp = array_module(*arrays)
    if xp is np:
        return ndarray.concatenate(arrays)
    return xp.concatenate(arrays)


def _check_gate_rows(weight, rows, what):
    if weight.shape[0] != rows:
        raise ValueError(f"{what}: expected {rows} rows (gates x num_hidden), received "
                         f"shape {tuple(weight.shape)}")


def _cells_state_info(cells):
    return sum([c.state_info for c in cells], [])


def _cells_begin_state(cells, **kwargs):
    return sum([c.begin_state(**kwargs) for c in cells], [])


def _cells_unpack_weights(cells, args):
    for cell in cells:
        args = cell.unpack_weights(args)
    return args


def _cells_pack_weights(cells, args):
    for cell in cells:
        args = cell.pack_weights(args)
    return args


def _positive_int(value, what):
    """`value` as an int, or ValueError naming `what` when it is not a positive int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive int, received {value!r}")
    return int(value)


def _check_length(length):
    _positive_int(length, 'unroll: length')


def _time_axis(layout, what='layout'):
    if not isinstance(layout, str) or 'T' not in layout:
        raise ValueError(f"{what} must be a string with a 'T' axis such as 'NTC' or "
                         f"'TNC', received {layout!r}")
    return layout.find('T')


def _normalize_sequence(length, inputs, layout, merge, in_layout=None):
    """Turn `inputs` into a list of steps (merge False) or one symbol (merge True).

    A single symbol is split along its T axis with `split(..., squeeze_axis=1)`
    when a list is wanted; a list is merged with `expand_dims` + `Concat` when
    one symbol is wanted; `merge=None` keeps what was given. Returns
    `(inputs, axis)`, `axis` being the T axis of `layout`.
    """
    if inputs is None:
        raise ValueError("unroll(inputs=None) has been deprecated. "
                         "Please create input variables outside unroll.")
    axis = _time_axis(layout)
    in_axis = _time_axis(in_layout, 'in_layout') if in_layout is not None else axis
    if isinstance(inputs, symbol.Symbol):
        if merge is False:
            if len(inputs.list_outputs()) != 1:
                raise ValueError("unroll doesn't allow grouped symbol as input. Please "
                                 "convert to list with list(inputs) first or let unroll "
                                 "handle splitting.")
            inputs = list(symbol.split(inputs, axis=in_axis, num_outputs=length,
                                       squeeze_axis=1))
    else:
        inputs = list(inputs)
        if length is not None and len(inputs) != length:
            raise ValueError(f"unroll: expected {length} input symbols (one per step), "
                             f"received {len(inputs)}")
        for i, s in enumerate(inputs):
            if not isinstance(s, symbol.Symbol):
                raise TypeError(f"unroll: input {i} must be a Symbol, received "
                                f"{type(s).__name__}")
        if merge is True:
            inputs = [symbol.expand_dims(i, axis=axis) for i in inputs]
            inputs = symbol.Concat(*inputs, dim=axis)
            in_axis = axis
    if isinstance(inputs, symbol.Symbol) and axis != in_axis:
        inputs = symbol.swapaxes(inputs, dim1=axis, dim2=in_axis)
    return inputs, axis
