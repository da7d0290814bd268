"""Cells made of cells: `SequentialRNNCell` (a stack) and `BidirectionalCell`."""
from .. import symbol
from ..base import MXNetError
from .base_cell import (BaseRNNCell, _cells_begin_state, _cells_pack_weights,
                        _cells_state_info, _cells_unpack_weights, _check_length,
                        _check_not_modified, _normalize_sequence)


def _check_cell(cell, what):
    if not isinstance(cell, BaseRNNCell):
        raise TypeError(f"{what} must be an RNN cell (BaseRNNCell), received "
                        f"{type(cell).__name__}")


def _check_child_params(cell, owner):
    if not cell._own_params:
        raise MXNetError(f"Either specify params for {owner} or child cells, not both.")


class SequentialRNNCell(BaseRNNCell):
    """A stack of cells: each cell's output is the next cell's input.

    The states are the cells' states concatenated in order. `unroll` unrolls
    each cell over the whole sequence in turn.

    Parameters
    ----------
    params : RNNParams or None
        Container for weight sharing. When given, the stack's variables are
        merged into each added child's container, and a child whose container
        was already handed out is refused (as in MXNet; MXNet's weighted cells
        hand theirs out when built, so in practice only weightless cells such
        as DropoutCell can then be added).
    """

    def __init__(self, params=None):
        super().__init__(prefix='', params=params)
        self._override_cell_params = params is not None
        self._cells = []

    def add(self, cell):
        """Append `cell` to the stack (it takes the previous cell's output as input).

        Parameters
        ----------
        cell : BaseRNNCell
        """
        _check_cell(cell, 'cell')
        if self._override_cell_params:
            _check_child_params(cell, 'SequentialRNNCell')
            cell.params._params.update(self.params._params)
        self._cells.append(cell)
        self.params._params.update(cell.params._params)

    @property
    def state_info(self):
        return _cells_state_info(self._cells)

    def begin_state(self, **kwargs):  # pylint: disable=arguments-differ
        """The children's begin states, concatenated (kwargs, e.g. `func`, passed on)."""
        _check_not_modified(self)
        return _cells_begin_state(self._cells, **kwargs)

    def unpack_weights(self, args):
        return _cells_unpack_weights(self._cells, args)

    def pack_weights(self, args):
        return _cells_pack_weights(self._cells, args)

    def __call__(self, inputs, states):
        self._counter += 1
        next_states = []
        p = 0
        for cell in self._cells:
            if isinstance(cell, BidirectionalCell):
                raise NotImplementedError("A SequentialRNNCell holding a BidirectionalCell "
                                          "cannot be stepped. Please use unroll")
            n = len(cell.state_info)
            inputs, state = cell(inputs, states[p:p + n])
            p += n
            next_states.append(state)
        return inputs, sum(next_states, [])

    def unroll(self, length, inputs, begin_state=None, layout='NTC', merge_outputs=None):
        self.reset()
        _check_length(length)
        num_cells = len(self._cells)
        if begin_state is None:
            begin_state = self.begin_state()
        p = 0
        next_states = []
        for i, cell in enumerate(self._cells):
            n = len(cell.state_info)
            states = begin_state[p:p + n]
            p += n
            # Only the last cell honours merge_outputs; the others pass whatever
            # is cheapest on to the next.
            inputs, states = cell.unroll(length, inputs=inputs, begin_state=states,
                                         layout=layout,
                                         merge_outputs=None if i < num_cells - 1
                                         else merge_outputs)
            next_states.extend(states)
        return inputs, next_states

    unroll.__doc__ = BaseRNNCell.unroll.__doc__


class BidirectionalCell(BaseRNNCell):
    """Runs `l_cell` forward and `r_cell` backward in time; concatenates their outputs.

    Parameters
    ----------
    l_cell : BaseRNNCell
        Cell for the forward direction.
    r_cell : BaseRNNCell
        Cell for the backward direction.
    params : RNNParams or None
        Container for weight sharing; created when None.
    output_prefix : str, default 'bi_'
        Prefix of the output nodes (`<output_prefix>t<i>` per step, or
        `<output_prefix>out` when merged).
    """

    def __init__(self, l_cell, r_cell, params=None, output_prefix='bi_'):
        super().__init__('', params=params)
        _check_cell(l_cell, 'l_cell')
        _check_cell(r_cell, 'r_cell')
        self._output_prefix = output_prefix
        self._override_cell_params = params is not None
        if self._override_cell_params:
            _check_child_params(l_cell, 'BidirectionalCell')
            _check_child_params(r_cell, 'BidirectionalCell')
            l_cell.params._params.update(self.params._params)
            r_cell.params._params.update(self.params._params)
        self.params._params.update(l_cell.params._params)
        self.params._params.update(r_cell.params._params)
        self._cells = [l_cell, r_cell]

    def unpack_weights(self, args):
        return _cells_unpack_weights(self._cells, args)

    def pack_weights(self, args):
        return _cells_pack_weights(self._cells, args)

    def __call__(self, inputs, states):
        raise NotImplementedError("Bidirectional cannot be stepped. Please use unroll")

    @property
    def state_info(self):
        return _cells_state_info(self._cells)

    def begin_state(self, **kwargs):  # pylint: disable=arguments-differ
        """Both cells' begin states, concatenated (kwargs, e.g. `func`, passed on)."""
        _check_not_modified(self)
        return _cells_begin_state(self._cells, **kwargs)

    def unroll(self, length, inputs, begin_state=None, layout='NTC', merge_outputs=None):
        """Unroll both directions; see `BaseRNNCell.unroll`.

        Returns the outputs (per step, or merged along T) with the two
        directions concatenated on the feature axis, and the states as
        `[l_states, r_states]` (a nested list, as MXNet).
        """
        self.reset()
        _check_length(length)
        inputs, axis = _normalize_sequence(length, inputs, layout, False)
        if begin_state is None:
            begin_state = self.begin_state()
        states = begin_state
        l_cell, r_cell = self._cells
        n_left = len(l_cell.state_info)
        l_outputs, l_states = l_cell.unroll(length, inputs=inputs,
                                            begin_state=states[:n_left],
                                            layout=layout, merge_outputs=merge_outputs)
        r_outputs, r_states = r_cell.unroll(length, inputs=list(reversed(inputs)),
                                            begin_state=states[n_left:],
                                            layout=layout, merge_outputs=merge_outputs)
        if merge_outputs is None:
            merge_outputs = (isinstance(l_outputs, symbol.Symbol)
                             and isinstance(r_outputs, symbol.Symbol))
            if not merge_outputs:
                if isinstance(l_outputs, symbol.Symbol):
                    l_outputs = list(symbol.SliceChannel(l_outputs, axis=axis,
                                                         num_outputs=length, squeeze_axis=1))
                if isinstance(r_outputs, symbol.Symbol):
                    r_outputs = list(symbol.SliceChannel(r_outputs, axis=axis,
                                                         num_outputs=length, squeeze_axis=1))
        if merge_outputs:
            l_outputs = [l_outputs]
            r_outputs = [symbol.reverse(r_outputs, axis=axis)]
        else:
            r_outputs = list(reversed(r_outputs))
        outputs = [symbol.Concat(l_o, r_o, dim=1 + int(bool(merge_outputs)),
                                 name=('%sout' % self._output_prefix if merge_outputs
                                       else '%st%d' % (self._output_prefix, i)))
                   for i, (l_o, r_o) in enumerate(zip(l_outputs, r_outputs, strict=True))]
        if merge_outputs:
            outputs = outputs[0]
        return outputs, [l_states, r_states]
