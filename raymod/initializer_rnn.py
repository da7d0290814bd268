"""`FusedRNN`: MXNet's initializer of a fused RNN's flat `parameters` vector.

Registered with the other initializers (`rm.init.FusedRNN`, name
"fusedrnn"), so the `__init__` attribute `FusedRNNCell` puts on its
parameters variable, and MXNet checkpoints carrying it, resolve to this.
"""
import json

from .initializer import InitDesc, Initializer, create, register


@register
class FusedRNN(Initializer):
    """Initialise a fused RNN's flat vector gate by gate.

    The vector is split into MXNet's per-gate weights and biases (as
    `FusedRNNCell.unpack_weights`); each is initialised by `init`, or by
    the global initializer when `init` is None, except that every LSTM
    forget-gate bias (`*_f_bias`, i2h and h2h alike, as MXNet) is set to
    `forget_bias`; then the pieces are packed back.

    Parameters
    ----------
    init : Initializer, str or None
        Initializer of the unpacked pieces (an instance or its JSON); None
        falls back to the global initializer.
    num_hidden : int
        As passed to FusedRNNCell.
    num_layers : int
        As passed to FusedRNNCell.
    mode : str
        As passed to FusedRNNCell.
    bidirectional : bool, default False
        As passed to FusedRNNCell.
    forget_bias : float, default 1.0
        As passed to FusedRNNCell.
    """

    def __init__(self, init, num_hidden, num_layers, mode, bidirectional=False,
                 forget_bias=1.0):
        if isinstance(init, str):
            klass, kwargs = json.loads(init)
            init = create(klass, **kwargs)
        if init is not None and not isinstance(init, Initializer):
            raise TypeError(f"FusedRNN: init must be an Initializer, its JSON string or "
                            f"None, received {type(init).__name__}")
        super().__init__(init=init.dumps() if init is not None else None,
                         num_hidden=num_hidden, num_layers=num_layers, mode=mode,
                         bidirectional=bidirectional, forget_bias=forget_bias)
        self._init = init
        self._num_hidden = num_hidden
        self._num_layers = num_layers
        self._mode = mode
        self._bidirectional = bidirectional
        self._forget_bias = forget_bias

    def _init_weight(self, desc, arr):
        from .rnn.fused_cell import FusedRNNCell
        fallback = getattr(desc, "global_init", None)
        if self._init is None and fallback is None:
            raise ValueError(f"FusedRNN({desc}): init is None and no global initializer was "
                             f"given; call it through another initializer, e.g. "
                             f"rm.init.Xavier()(rm.init.InitDesc(name, attrs), arr), or "
                             f"pass init=")
        cell = FusedRNNCell(self._num_hidden, self._num_layers, self._mode,
                            self._bidirectional, forget_bias=self._forget_bias, prefix='')
        args = cell.unpack_weights({'parameters': arr})
        for name, piece in args.items():
            piece_desc = InitDesc(name, global_init=fallback)
            if self._mode == 'lstm' and name.endswith('_f_bias'):
                piece[...] = self._forget_bias
            elif self._init is None:
                fallback(piece_desc, piece)
            else:
                self._init(piece_desc, piece)
        arr[...] = cell.pack_weights(args)['parameters']
