"""`SequentialModule`: modules chained output to input (reference section 7).

When every stage is a `Module` and the stages cut batches the same way (same
devices, work loads and placement), the stages run as a `GroupChain`: stage
i's workers hand their outputs to stage i+1's workers directly (ObjectRefs on
Ray, never through the driver) and input gradients flow back the same way.
Otherwise (a PythonModule stage, a nested SequentialModule, stages on
different devices) arrays pass through the driver exactly as in MXNet.

`micro_batches=k` makes `forward_backward` (hence `fit`) cut each batch into
k micro-batches pipelined through the stages; their gradients add up to the
whole batch's. Loss ops that normalise by the batch (`normalization='batch'`)
and BatchNorm's batch statistics see micro-batches, as in any pipeline.

Deviation from MXNet (Q11): `bind` sets `for_training` and
`inputs_need_grad`, so `get_input_grads` works.
"""
import copy
import logging
import numbers

import numpy as np

from ..base import MXNetError
from ..parallel.chain import GroupChain
from .base_module import BaseModule, _as_nd
from .module import _DEFAULT_INIT, Module


class SequentialModule(BaseModule):
    """A container running modules one after another.

    Parameters
    ----------
    logger : logging.Logger
    micro_batches : int, default 1
        Number of micro-batches each batch is cut into in `forward_backward`.
    """

    META_TAKE_LABELS = "take_labels"
    META_AUTO_WIRING = "auto_wiring"

    def _executor_groups(self):
        return [g for module in self._modules for g in module._executor_groups()]

    def __init__(self, logger=logging, micro_batches=1):
        super().__init__(logger=logger)
        if isinstance(micro_batches, bool) or not isinstance(micro_batches, numbers.Integral) \
                or micro_batches < 1:
            raise ValueError(f"micro_batches must be a positive int, received {micro_batches!r}")
        self._micro_batches = int(micro_batches)
        self._modules = []
        self._metas = []
        self._label_shapes = None
        self._data_shapes = None
        self._meta_keys = {self.META_TAKE_LABELS, self.META_AUTO_WIRING}
        self._chain = None
        self._last_path = None       # 'chain', 'micro' or 'driver': how the last forward ran

    @property
    def micro_batches(self):
        return self._micro_batches

    def add(self, module, **kwargs):
        """Append `module`; metas: take_labels=True, auto_wiring=True. Returns self."""
        for key in kwargs:
            if key not in self._meta_keys:
                raise ValueError(f'Unknown meta "{key}", a typo?')
        if not isinstance(module, BaseModule):
            raise TypeError(f"module must be a BaseModule, received {type(module).__name__}")
        self._modules.append(module)
        self._metas.append(kwargs)
        self._drop_chain()
        self.binded = False
        self.params_initialized = False
        self.optimizer_initialized = False
        return self

    def _drop_chain(self):
        if self._chain is not None:
            self._chain.release()
        self._chain = None
        self._last_path = None

    # ------------------------------------------------------------------ properties
    @property
    def data_names(self):
        return self._modules[0].data_names if self._modules else []

    @property
    def output_names(self):
        return self._modules[-1].output_names if self._modules else []

    @property
    def data_shapes(self):
        self._require(bound=True, call="data_shapes")
        return self._modules[0].data_shapes

    @property
    def label_shapes(self):
        self._require(bound=True, call="label_shapes")
        return self._label_shapes

    @property
    def output_shapes(self):
        self._require(bound=True, call="output_shapes")
        return self._modules[-1].output_shapes

    @property
    def chained(self):
        """True when the stages pass arrays worker to worker (not through the driver)."""
        return self._chain is not None

    def _takes_labels(self, i):
        return bool(self._metas[i].get(self.META_TAKE_LABELS, False))

    # ------------------------------------------------------------------ parameters
    def get_params(self):
        self._require(bound=True, params=True, call="get_params")
        arg_params, aux_params = {}, {}
        for module in self._modules:
            arg, aux = module.get_params()
            arg_params.update(arg)
            aux_params.update(aux)
        return arg_params, aux_params

    def init_params(self, initializer=_DEFAULT_INIT, arg_params=None, aux_params=None,
                    allow_missing=False, force_init=False, allow_extra=False):
        if self.params_initialized and not force_init:
            return                                  # silently (Q14)
        self._require(bound=True, call="init_params")
        for module in self._modules:
            module.init_params(initializer=initializer, arg_params=arg_params,
                               aux_params=aux_params, allow_missing=allow_missing,
                               force_init=force_init, allow_extra=allow_extra)
        arg_owner, aux_owner = {}, {}
        for i, module in enumerate(self._modules):
            arg, aux = module.get_params()
            self._check_names(arg_owner, arg, i)
            self._check_names(aux_owner, aux, i)
        self.params_initialized = True

    def _check_names(self, owner, names, layer):
        for name in names:
            if name in owner:
                first = owner[name]
                raise MXNetError(
                    f'Duplicated parameter names: name "{name}" in layer {layer} '
                    f"({type(self._modules[layer])}) is already used in layer {first} "
                    f"({type(self._modules[first])}).")
            owner[name] = layer

    # ------------------------------------------------------------------ binding
    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req="write"):
        """Bind every module, each one's data shapes being the previous one's outputs."""
        if self.binded and not force_rebind:
            self.logger.warning("Already bound, ignoring bind()")
            return
        if inputs_need_grad and not for_training:
            raise ValueError("inputs_need_grad=True needs for_training=True")
        if shared_module is not None:
            raise ValueError("Shared module is not supported")
        if not self._modules:
            raise MXNetError("Attempting to bind an empty SequentialModule")
        if self._micro_batches > 1:
            reason = self._structure_problem()
            if reason is not None:
                raise MXNetError(f"micro_batches={self._micro_batches} needs stages that "
                                 f"pass arrays worker to worker, but {reason}")
        self._drop_chain()
        self.binded = False
        my_data_shapes = data_shapes
        anybody_takes_labels = False
        for i, module in enumerate(self._modules):
            takes = self._takes_labels(i)
            anybody_takes_labels |= takes
            if self._metas[i].get(self.META_AUTO_WIRING, False):
                names = module.data_names
                if len(names) != len(my_data_shapes):
                    raise ValueError(f"auto_wiring: module {i} takes {len(names)} inputs "
                                     f"{list(names)}, the previous module gives "
                                     f"{len(my_data_shapes)}")
                my_data_shapes = [(name, tuple(shape))
                                  for name, (_, shape) in zip(names, my_data_shapes)]
            module.bind(data_shapes=my_data_shapes, label_shapes=label_shapes if takes else None,
                        for_training=for_training,
                        inputs_need_grad=bool(inputs_need_grad or (for_training and i > 0)),
                        force_rebind=force_rebind, shared_module=None, grad_req=grad_req)
            my_data_shapes = module.output_shapes
        self._label_shapes = label_shapes if anybody_takes_labels else None
        self.for_training = for_training          # Q11: MXNet never sets these two
        self.inputs_need_grad = inputs_need_grad
        self._chain = self._make_chain()
        if self._micro_batches > 1 and self._chain is None:
            raise MXNetError(f"micro_batches={self._micro_batches} needs stages that pass "
                             f"arrays worker to worker, but "
                             f"{GroupChain.incompatibility(self._groups())}")
        self.binded = True

    def _structure_problem(self):
        """Why the stages cannot chain, judged before binding (None when they may)."""
        for i, module in enumerate(self._modules):
            if not isinstance(module, Module):
                return f"module {i} is a {type(module).__name__}, not a Module"
        first = self._modules[0]
        for i, module in enumerate(self._modules):
            if len(module._context) != len(first._context) or \
                    module._work_load_list != first._work_load_list:
                return (f"module {i} runs on {len(module._context)} contexts with work loads "
                        f"{module._work_load_list}, module 0 on {len(first._context)} with "
                        f"{first._work_load_list}")
        return None

    def _groups(self):
        return [m._exec_group for m in self._modules]

    def _make_chain(self):
        if self._structure_problem() is not None:
            return None
        groups = self._groups()
        if GroupChain.incompatibility(groups) is not None:
            return None
        return GroupChain(groups, [self._takes_labels(i) for i in range(len(self._modules))])

    def _reshape_for(self, data_batch):
        """Reshape every stage when the batch's data shapes differ from the bound ones."""
        from ..io import DataDesc
        first = self._modules[0]
        new_shapes = [tuple(a.shape) for a in data_batch.data]
        if new_shapes == [tuple(d.shape) for d in first.data_shapes]:
            return
        data_shapes = getattr(data_batch, "provide_data", None) or \
            [DataDesc(d.name, s, d.dtype, d.layout) for d, s in zip(first.data_shapes, new_shapes)]
        label_shapes = getattr(data_batch, "provide_label", None)
        if not label_shapes and getattr(data_batch, "label", None) and self._label_shapes:
            old = [l if isinstance(l, DataDesc) else DataDesc(*l) for l in self._label_shapes]
            label_shapes = [DataDesc(l.name, tuple(a.shape), l.dtype, l.layout)
                            for l, a in zip(old, data_batch.label)]
        self._drop_chain()
        my_data_shapes = data_shapes
        for i, module in enumerate(self._modules):
            if self._metas[i].get(self.META_AUTO_WIRING, False):
                my_data_shapes = [(name, tuple(shape)) for name, (_, shape)
                                  in zip(module.data_names, my_data_shapes)]
            module.reshape(my_data_shapes, label_shapes if self._takes_labels(i) else None)
            my_data_shapes = module.output_shapes
        self._chain = self._make_chain()

    # ------------------------------------------------------------------ optimizer
    def init_optimizer(self, kvstore="local", optimizer="sgd",
                       optimizer_params=(("learning_rate", 0.01),), force_init=False):
        self._require(bound=True, params=True, call="init_optimizer")
        if self.optimizer_initialized and not force_init:
            self.logger.warning("optimizer already initialized, ignoring.")
            return
        for module in self._modules:
            module.init_optimizer(kvstore=kvstore, optimizer=optimizer,
                                  optimizer_params=optimizer_params, force_init=force_init)
        self.optimizer_initialized = True

    # ------------------------------------------------------------------ compute
    def forward(self, data_batch, is_train=None):
        self._require(bound=True, params=True, call="forward")
        if self._chain is not None and not isinstance(data_batch, list):
            self._reshape_for(data_batch)
        if self._chain is not None and not isinstance(data_batch, list):
            self._chain.forward(data_batch, is_train)
            self._last_path = "chain"
            return
        self._last_path = "driver"
        data_batch = copy.copy(data_batch)
        for i, module in enumerate(self._modules):
            module.forward(data_batch, is_train=is_train)
            if i + 1 == len(self._modules):
                break
            data_batch.data = module.get_outputs()
            if hasattr(data_batch, "provide_data"):
                names = [x[0] for x in module.output_shapes]
                data_batch.provide_data = [(name, tuple(x.shape))
                                           for name, x in zip(names, data_batch.data)]

    def backward(self, out_grads=None):
        self._require(bound=True, params=True, call="backward")
        if self._last_path == "micro":
            raise MXNetError("backward after a micro-batched forward_backward: the "
                             "gradients are already computed")
        if self._last_path == "chain" and self._chain is not None:
            self._chain.backward(out_grads)
            return
        for i in reversed(range(len(self._modules))):
            module = self._modules[i]
            module.backward(out_grads=out_grads)
            if i == 0:
                break
            out_grads = module.get_input_grads()

    def forward_backward(self, data_batch):
        """forward + backward; with micro_batches > 1, as pipelined micro-batches."""
        if self._micro_batches == 1:
            super().forward_backward(data_batch)
            return
        self._require(bound=True, params=True, call="forward_backward")
        if isinstance(data_batch, list):
            raise ValueError("micro_batches needs one DataBatch, not a pre-sliced list")
        self._reshape_for(data_batch)
        if self._chain is None:
            raise MXNetError(f"micro_batches={self._micro_batches}: the stages no longer "
                             f"chain ({GroupChain.incompatibility(self._groups())})")
        self._chain.forward_backward(data_batch, self._micro_batches)
        self._last_path = "micro"

    def update(self):
        self._require(bound=True, params=True, optimizer=True, call="update")
        for module in self._modules:
            module.update()

    def get_outputs(self, merge_multi_context=True):
        self._require(bound=True, params=True, call="get_outputs")
        if self._last_path != "micro":
            return self._modules[-1].get_outputs(merge_multi_context=merge_multi_context)
        if merge_multi_context:
            return [_as_nd(o) for o in self._chain.merged_outputs()]
        return self._per_device(self._chain.micro_outputs(len(self._modules) - 1),
                                self._modules[-1]._exec_group.output_layouts)

    def get_input_grads(self, merge_multi_context=True):
        self._require(bound=True, params=True, input_grads=True, call="get_input_grads")
        if self._last_path != "micro":
            return self._modules[0].get_input_grads(merge_multi_context=merge_multi_context)
        if not merge_multi_context:
            raise MXNetError("after a micro-batched forward_backward, input gradients are "
                             "available merged only (merge_multi_context=True)")
        return [_as_nd(g) for g in self._chain.merged_input_grads()]

    @staticmethod
    def _per_device(per_micro, axes):
        """[micro][device][i] -> [i][device]: each device's rows over the micro-batches."""
        num_devices = len(per_micro[0])
        out = []
        for i, axis in enumerate(axes):
            parts = [[np.asarray(per_micro[j][r][i]) for j in range(len(per_micro))]
                     for r in range(num_devices)]
            out.append([_as_nd(p[0] if axis < 0 else np.concatenate(p, axis=axis))
                        for p in parts])
        return out

    def update_metric(self, eval_metric, labels, pre_sliced=False):
        """Update `eval_metric` with the outputs of every module that takes labels."""
        self._require(bound=True, params=True, call="update_metric")
        for i, module in enumerate(self._modules):
            if not self._takes_labels(i):
                continue
            if self._last_path == "micro":
                if pre_sliced:
                    raise ValueError("pre-sliced labels do not fit micro-batches")
                self._chain.update_metric(eval_metric, labels, i)
            else:
                module.update_metric(eval_metric, labels, pre_sliced)

    def install_monitor(self, mon):
        self._require(bound=True, call="install_monitor")
        for module in self._modules:
            module.install_monitor(mon)
