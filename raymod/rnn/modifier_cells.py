"""Cells that change another cell or the sequence: Dropout, Zoneout, Residual."""
import numbers

from .. import symbol
from ..base import MXNetError
from .base_cell import BaseRNNCell, _check_length, _normalize_sequence
from .composite_cells import BidirectionalCell, SequentialRNNCell


def _check_probability(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} probability must be a number, received "
                        f"{type(value).__name__}")
    if not 0 <= value <= 1:
        raise ValueError(f"{what} probability must be in [0, 1], received {value!r}")
    return value


class DropoutCell(BaseRNNCell):
    """Applies `Dropout(p=dropout)` to its input; has no state.

    Parameters
    ----------
    dropout : float
        Fraction of the input elements dropped (1 - keep probability).
    prefix : str, default 'dropout_'
        Prefix of names (and of weights if `params` is None; it has none).
    params : RNNParams or None
        Container for weight sharing; created when None.
    """

    def __init__(self, dropout, prefix='dropout_', params=None):
        super().__init__(prefix, params)
        self.dropout = _check_probability(dropout, 'dropout')

    @property
    def state_info(self):
        return []

    def __call__(self, inputs, states):
        if self.dropout > 0:
            inputs = symbol.Dropout(data=inputs, p=self.dropout)
        return inputs, states

    def unroll(self, length, inputs, begin_state=None, layout='NTC', merge_outputs=None):
        """As `BaseRNNCell.unroll`; a merged input is dropped out in one node."""
        self.reset()
        _check_length(length)
        inputs, _ = _normalize_sequence(length, inputs, layout, merge_outputs)
        if isinstance(inputs, symbol.Symbol):
            return self(inputs, [])
        return super().unroll(length, inputs, begin_state=begin_state, layout=layout,
                              merge_outputs=merge_outputs)


class ModifierCell(BaseRNNCell):
    """Base of cells that wrap `base_cell` and change what it computes.

    Once wrapped, the base cell must not be used directly (its `begin_state`
    raises); use the modifier. Parameters and states are the base cell's.
    """

    def __init__(self, base_cell):
        if not isinstance(base_cell, BaseRNNCell):
            raise TypeError(f"base_cell must be an RNN cell (BaseRNNCell), received "
                            f"{type(base_cell).__name__}")
        self.base_cell = base_cell
        super().__init__()
        base_cell._modified = True

    def reset(self):
        # MXNet leaves the base cell's counters alone here, so a second unroll of
        # a modifier names the base cell's steps and begin states from where the
        # first stopped; raymod resets them so every unroll names the same.
        super().reset()
        self.base_cell.reset()

    @property
    def params(self):
        self._own_params = False
        return self.base_cell.params

    @property
    def state_info(self):
        return self.base_cell.state_info

    def begin_state(self, init_sym=symbol.zeros, **kwargs):  # pylint: disable=arguments-differ
        """The base cell's begin states (`init_sym` plays `func`'s part)."""
        if self._modified:
            raise MXNetError("After applying modifier cells (e.g. DropoutCell) the base "
                             "cell cannot be called directly. Call the modifier cell "
                             "instead.")
        if 'func' in kwargs:        # containers pass the state builder as `func`
            init_sym = kwargs.pop('func')
        self.base_cell._modified = False
        try:
            begin = self.base_cell.begin_state(init_sym, **kwargs)
        finally:
            self.base_cell._modified = True
        return begin

    def unpack_weights(self, args):
        return self.base_cell.unpack_weights(args)

    def pack_weights(self, args):
        return self.base_cell.pack_weights(args)

    def __call__(self, inputs, states):
        raise NotImplementedError(f"{type(self).__name__} does not implement a step")


def _holds_bidirectional(cell):
    if isinstance(cell, BidirectionalCell):
        return True
    return isinstance(cell, SequentialRNNCell) and any(
        _holds_bidirectional(c) for c in cell._cells)


class ZoneoutCell(ModifierCell):
    """Zoneout (Krueger et al. 2016) on the base cell's outputs and states.

    In training, each output (state) element keeps its previous value with
    probability `zoneout_outputs` (`zoneout_states`) instead of taking the new
    one; the previous output of the first step is 0.

    Parameters
    ----------
    base_cell : BaseRNNCell
        Cell on whose outputs and states to apply zoneout.
    zoneout_outputs : float, default 0.
        Probability of keeping the previous output.
    zoneout_states : float, default 0.
        Probability of keeping the previous state.
    """

    def __init__(self, base_cell, zoneout_outputs=0., zoneout_states=0.):
        if _holds_bidirectional(base_cell):
            raise MXNetError("BidirectionalCell doesn't support zoneout since it doesn't "
                             "support step. Please add ZoneoutCell to the cells "
                             "underneath instead.")
        super().__init__(base_cell)
        self.zoneout_outputs = _check_probability(zoneout_outputs, 'zoneout_outputs')
        self.zoneout_states = _check_probability(zoneout_states, 'zoneout_states')
        self.prev_output = None

    def reset(self):
        super().reset()
        self.prev_output = None

    def __call__(self, inputs, states):
        cell, p_outputs, p_states = self.base_cell, self.zoneout_outputs, self.zoneout_states
        next_output, next_states = cell(inputs, states)

        def mask(p, like):
            # Dropout of ones: 0 with probability p, 1/(1-p) otherwise; `where`
            # only looks at non-zero, so it picks the new value with prob 1-p.
            return symbol.Dropout(symbol.ones_like(like), p=p)

        prev_output = self.prev_output if self.prev_output is not None \
            else symbol.zeros(shape=(0, 0))
        output = (symbol.where(mask(p_outputs, next_output), next_output, prev_output)
                  if p_outputs != 0. else next_output)
        states = ([symbol.where(mask(p_states, new_s), new_s, old_s)
                   for new_s, old_s in zip(next_states, states, strict=True)]
                  if p_states != 0. else next_states)
        self.prev_output = output
        return output, states


class ResidualCell(ModifierCell):
    """Adds the input to the base cell's output (Wu et al. 2016).

    Parameters
    ----------
    base_cell : BaseRNNCell
        Cell whose output gets the residual connection; its output size must
        equal its input size.
    """

    def __call__(self, inputs, states):
        output, states = self.base_cell(inputs, states)
        output = symbol.elemwise_add(output, inputs, name='%s_plus_residual' % output.name)
        return output, states

    def unroll(self, length, inputs, begin_state=None, layout='NTC', merge_outputs=None):
        """As `BaseRNNCell.unroll`, each output plus its step's input."""
        self.reset()
        _check_length(length)
        self.base_cell._modified = False
        try:
            outputs, states = self.base_cell.unroll(length, inputs=inputs,
                                                    begin_state=begin_state, layout=layout,
                                                    merge_outputs=merge_outputs)
        finally:
            self.base_cell._modified = True
        if merge_outputs is None:
            merge_outputs = isinstance(outputs, symbol.Symbol)
        inputs, _ = _normalize_sequence(length, inputs, layout, merge_outputs)
        if merge_outputs:
            return symbol.elemwise_add(outputs, inputs,
                                       name='%s_plus_residual' % outputs.name), states
        outputs = [symbol.elemwise_add(o, i, name='%s_plus_residual' % o.name)
                   for o, i in zip(outputs, inputs, strict=True)]
        return outputs, states
