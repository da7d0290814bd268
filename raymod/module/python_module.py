"""`PythonModule` and `PythonLossModule`: modules written in Python (reference section 8).

They run in the driver and have no parameters; the typical use is a loss
written with numpy at the end of a SequentialModule:
`SequentialModule().add(net).add(PythonLossModule(grad_func=f), take_labels=True,
auto_wiring=True)`.

Deviation from MXNet, on purpose: `bind` sets `binded` and `init_params` sets
`params_initialized` (MXNet leaves both False, so a PythonModule cannot be
scored on its own).
"""
import logging

from ..base import MXNetError
from ..parallel.errors import ModuleStateError
from .base_module import BaseModule


class PythonModule(BaseModule):
    """A parameterless module; subclasses give forward, backward and output shapes.

    Parameters
    ----------
    data_names, label_names, output_names : list of str
    logger : logging.Logger
    """

    def __init__(self, data_names, label_names, output_names, logger=logging):
        super().__init__(logger=logger)
        self._data_names = list(data_names)
        self._label_names = list(label_names) if label_names is not None else None
        self._output_names = list(output_names)
        self._data_shapes = None
        self._label_shapes = None
        self._output_shapes = None

    @property
    def data_names(self):
        return self._data_names

    @property
    def output_names(self):
        return self._output_names

    @property
    def data_shapes(self):
        return self._data_shapes

    @property
    def label_shapes(self):
        return self._label_shapes

    @property
    def output_shapes(self):
        return self._output_shapes

    def get_params(self):
        return {}, {}

    def init_params(self, initializer=None, arg_params=None, aux_params=None,
                    allow_missing=False, force_init=False, allow_extra=False):
        self.params_initialized = True          # nothing to initialize

    def update(self):
        """No parameters, nothing to update."""

    def init_optimizer(self, kvstore="local", optimizer="sgd",
                       optimizer_params=(("learning_rate", 0.01),), force_init=False):
        self.optimizer_initialized = True       # nothing to optimize

    def update_metric(self, eval_metric, labels, pre_sliced=False):
        """`eval_metric.update(labels, outputs)`; ignored when bound without labels."""
        if self._label_shapes is None:
            return
        if pre_sliced:
            raise RuntimeError("PythonModule does not support presliced labels")
        eval_metric.update(labels, self.get_outputs())

    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req="write"):
        if self.binded and not force_rebind:
            self.logger.warning("Already bound, ignoring bind()")
            return
        if grad_req != "write":
            raise ValueError(f"Python module only support write gradient, received "
                             f"grad_req={grad_req!r}")
        names = [x[0] for x in data_shapes]
        if names != self._data_names:
            raise ValueError(f"data_shapes {names} do not match data_names {self._data_names}")
        if label_shapes is not None:
            label_names = [x[0] for x in label_shapes]
            if label_names != (self._label_names or []):
                raise ValueError(f"label_shapes {label_names} do not match label_names "
                                 f"{self._label_names}")
        self.for_training = for_training
        self.inputs_need_grad = inputs_need_grad
        self._data_shapes = list(data_shapes)
        self._label_shapes = list(label_shapes) if label_shapes is not None else None
        self._output_shapes = self._compute_output_shapes()
        self.binded = True

    def _compute_output_shapes(self):
        """[(output name, shape)] from `self._data_shapes` / `self._label_shapes`."""
        raise NotImplementedError()

    def install_monitor(self, mon):
        raise NotImplementedError("PythonModule has no executors to monitor")


class PythonLossModule(PythonModule):
    """A loss in Python: output = the input scores, input gradient = `grad_func(scores, labels)`.

    Parameters
    ----------
    name : str, default 'pyloss'
        The output is named `name + '_output'`.
    data_names : one-element list, default ('data',)
    label_names : one-element list, default ('softmax_label',)
    grad_func : callable, optional
        `grad_func(scores, labels) -> gradient of the loss w.r.t. scores`.
    """

    def __init__(self, name="pyloss", data_names=("data",), label_names=("softmax_label",),
                 logger=logging, grad_func=None):
        if len(data_names) != 1 or len(label_names) != 1:
            raise ValueError(f"PythonLossModule takes one data and one label, received "
                             f"data_names={list(data_names)}, label_names={list(label_names)}")
        if grad_func is not None and not callable(grad_func):
            raise TypeError(f"grad_func must be callable, received {type(grad_func).__name__}")
        super().__init__(data_names, label_names, [name + "_output"], logger=logger)
        self._name = name
        self._scores = None
        self._labels = None
        self._scores_grad = None
        self._grad_func = grad_func

    def _compute_output_shapes(self):
        return [(self._name + "_output", tuple(self._data_shapes[0][1]))]

    def forward(self, data_batch, is_train=None):
        self._require(bound=True, call="forward")
        self._scores = data_batch.data[0]
        if is_train is None:
            is_train = self.for_training
        if is_train:
            self._labels = data_batch.label[0]

    def get_outputs(self, merge_multi_context=True):
        if merge_multi_context is not True:
            raise ValueError("PythonLossModule gives merged outputs only")
        return [self._scores]

    def backward(self, out_grads=None):
        if out_grads is not None:
            raise ValueError("For a loss module, out_grads should be None")
        if not self.for_training:
            raise ModuleStateError("re-bind with for_training=True to run backward")
        self._backward_impl()

    def _backward_impl(self):
        from .. import ndarray as nd
        if self._grad_func is None:
            raise MXNetError("PythonLossModule without grad_func: give one, or subclass "
                             "and override _backward_impl")
        grad = self._grad_func(self._scores, self._labels)
        if not isinstance(grad, nd.NDArray):
            grad = nd.array(grad)
        self._scores_grad = grad

    def get_input_grads(self, merge_multi_context=True):
        if merge_multi_context is not True:
            raise ValueError("PythonLossModule gives merged input gradients only")
        return [self._scores_grad]
