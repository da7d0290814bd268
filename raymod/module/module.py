"""`Module`: one symbol, data-parallel over contexts (reference section 3)."""
import logging
import warnings

import numpy as np

from ..context import Context, cpu, to_numpy
from ..io.batch_rows import data_shapes
from ..parallel.errors import ModuleStateError
from ..parallel.executor_group import DataParallelExecutorGroup
from .base_module import BaseModule, _as_nd
from .kvstore_rules import create_kvstore, update_params

_PARAM_SUFFIXES = ("_weight", "_bias", "_gamma", "_beta")
_DEFAULT_INIT = object()     # init_params() without an initializer means Uniform(0.01)


def _master_zeros(shape, dtype):
    """A zero-filled host master copy: an NDArray, as MXNet's get_params returns."""
    from ..ndarray import NDArray
    return np.zeros(shape, dtype).view(NDArray)


def _check_input_names(symbol, names, typename, throw):
    args = symbol.list_arguments()
    for name in names:
        if name in args:
            continue
        candidates = [a for a in args if not a.endswith(_PARAM_SUFFIXES)]
        msg = (f"You created Module with Module(..., {typename}_names={names}) but "
               f"input with name '{name}' is not found in symbol.list_arguments(). "
               f"Did you mean one of:\n\t" + "\n\t".join(candidates))
        if throw:
            raise ValueError(msg)
        warnings.warn(msg)


def _parse_data_desc(data_names, label_names, data_shapes, label_shapes):
    """DataDesc lists from descriptors or (name, shape) pairs, checked before any state change."""
    from ..io import DataDesc

    def parse(entries, what):
        descs = []
        for entry in entries:
            if isinstance(entry, DataDesc):
                descs.append(entry)
                continue
            if not (isinstance(entry, (tuple, list)) and len(entry) >= 2
                    and isinstance(entry[0], str)):
                raise TypeError(f"{what} entries must be DataDesc or (name, shape), "
                                f"received {entry!r}")
            shape = entry[1]
            if not (isinstance(shape, (tuple, list))
                    and all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                            for d in shape)):
                raise TypeError(f"{what}: the shape of {entry[0]!r} must be a tuple of ints, "
                                f"received {type(shape).__name__} {shape!r}")
            descs.append(DataDesc(entry[0], tuple(int(d) for d in shape), *entry[2:]))
        return descs

    data_shapes = parse(data_shapes, "data_shapes")
    if sorted(data_names) != sorted(d.name for d in data_shapes):
        raise ValueError(f"Data provided by data_shapes don't match names specified by "
                         f"data_names ({data_shapes} vs. {data_names})")
    label_shapes = parse(label_shapes, "label_shapes") if label_shapes else None
    if sorted(label_names) != sorted(d.name for d in (label_shapes or [])):
        warnings.warn(f"Data provided by label_shapes don't match names specified by "
                      f"label_names ({label_shapes or []} vs. {label_names})")
    return data_shapes, label_shapes


class Module(BaseModule):
    """A symbol bound on one or more contexts, trained data-parallel.

    Parameters are MXNet's; `placement` ('ray' or 'in_process', default from
    `raymod.parallel.set_default_placement`) says where the device workers run.
    """

    _batches_reach_groups_unchanged = True

    def __init__(self, symbol, data_names=("data",), label_names=("softmax_label",),
                 logger=logging, context=None, work_load_list=None, fixed_param_names=None,
                 state_names=None, group2ctxs=None, compression_params=None, placement=None):
        super().__init__(logger=logger)
        context = cpu() if context is None else context
        if isinstance(context, Context):
            context = [context]
        self._context = list(context)
        work_load_list = [1] * len(self._context) if work_load_list is None else work_load_list
        if len(work_load_list) != len(self._context):
            raise ValueError(f"work_load_list has {len(work_load_list)} entries for "
                             f"{len(self._context)} contexts")
        self._work_load_list = list(work_load_list)
        if group2ctxs is not None:
            raise NotImplementedError("group2ctxs (model parallelism) is not supported")
        self._symbol = symbol
        self._data_names = list(data_names or [])
        self._label_names = list(label_names or [])
        self._state_names = list(state_names or [])
        self._fixed_param_names = list(fixed_param_names or [])
        _check_input_names(symbol, self._data_names, "data", True)
        _check_input_names(symbol, self._label_names, "label", False)
        _check_input_names(symbol, self._state_names, "state", True)
        _check_input_names(symbol, self._fixed_param_names, "fixed_param", True)
        inputs = self._data_names + self._label_names + self._state_names
        self._param_names = [a for a in symbol.list_arguments() if a not in inputs]
        self._aux_names = symbol.list_auxiliary_states()
        self._output_names = symbol.list_outputs()
        self._compression_params = compression_params
        self._placement = placement
        self._arg_params = self._aux_params = None
        self._optimizer = self._kvstore = self._update_on_kvstore = self._updater = None
        self._preload_opt_states = None
        self._grad_req = None
        self._exec_group = None
        self._data_shapes = self._label_shapes = None
        self._params_dirty = False

    # ------------------------------------------------------------------ checkpoints
    @staticmethod
    def load(prefix, epoch, load_optimizer_states=False, **kwargs):
        """A Module with the symbol and parameters of checkpoint `prefix`-`epoch`.

        Parameters
        ----------
        prefix : str
            Checkpoint prefix: a local path or an fsspec URL (``s3://bucket/run/mlp``).
        epoch : int
            The checkpoint's number; a missing one raises FileNotFoundError
            listing the saved epochs.
        load_optimizer_states : bool, default False
            Also load `prefix-%04d.states` when `init_optimizer` runs.
        **kwargs
            Passed to `Module` (context, data_names, placement, ...).
        """
        from ..model import load_checkpoint
        sym, args, auxs = load_checkpoint(prefix, epoch)
        mod = Module(symbol=sym, **kwargs)
        mod._arg_params, mod._aux_params = args, auxs
        mod.params_initialized = True
        if load_optimizer_states:
            mod._preload_opt_states = f"{prefix}-{epoch:04d}.states"
        return mod

    def save_checkpoint(self, prefix, epoch, save_optimizer_states=False,
                        remove_amp_cast=True):
        """Write `prefix-symbol.json`, `prefix-%04d.params` (and `.states`), each atomically.

        Parameters
        ----------
        prefix : str
            A local path prefix or an fsspec URL (``s3://bucket/run/mlp``).
        epoch : int
        save_optimizer_states : bool, default False
        remove_amp_cast : bool, default True
            Accepted for MXNet compatibility.
        """
        self._symbol.save(f"{prefix}-symbol.json")
        # The .states first: a .params on disk then means a whole checkpoint, even if
        # the process dies between the two writes.
        if save_optimizer_states:
            state_name = f"{prefix}-{epoch:04d}.states"
            self.save_optimizer_states(state_name)
        param_name = f"{prefix}-{epoch:04d}.params"
        self.save_params(param_name)
        logging.info('Saved checkpoint to "%s"', param_name)
        if save_optimizer_states:
            logging.info('Saved optimizer state to "%s"', state_name)

    # ------------------------------------------------------------------ properties
    @property
    def data_names(self):
        return self._data_names

    @property
    def label_names(self):
        return self._label_names

    @property
    def output_names(self):
        return self._output_names

    @property
    def data_shapes(self):
        self._require(bound=True, call="data_shapes")
        return self._data_shapes

    @property
    def label_shapes(self):
        self._require(bound=True, call="label_shapes")
        return self._label_shapes

    @property
    def output_shapes(self):
        self._require(bound=True, call="output_shapes")
        return self._exec_group.get_output_shapes()

    # ------------------------------------------------------------------ parameters
    def get_params(self):
        self._require(params=True, call="get_params")
        if self._params_dirty:
            self._sync_params_from_devices()
        return self._arg_params, self._aux_params

    def init_params(self, initializer=_DEFAULT_INIT, arg_params=None, aux_params=None,
                    allow_missing=False, force_init=False, allow_extra=False):
        """Initialize parameters (MXNet's default initializer is Uniform(0.01))."""
        if initializer is _DEFAULT_INIT:
            from ..initializer import Uniform
            initializer = Uniform(0.01)
        if self.params_initialized and not force_init:
            warnings.warn("Parameters already initialized and force_init=False. "
                          "init_params call ignored.", stacklevel=2)
            return
        self._require(bound=True, call="init_params")
        from ..initializer import InitDesc
        attrs = self._symbol.attr_dict()
        work = [(name, arr, arg_params) for name, arr in sorted(self._arg_params.items())]
        work += [(name, arr, aux_params) for name, arr in sorted(self._aux_params.items())]
        # Check every given value first, so a bad call leaves the parameters untouched.
        for name, arr, cache in work:
            if cache is None:
                continue
            if name not in cache:
                if not allow_missing:
                    raise RuntimeError(f"{name} is not presented")
            elif tuple(cache[name].shape) != arr.shape:
                raise ValueError(f"init_params: {name!r} has shape {tuple(cache[name].shape)}, "
                                 f"the module expects {arr.shape}")
        for name, arr, cache in work:
            if cache is not None and name in cache:
                if cache[name] is not arr:
                    arr[...] = to_numpy(cache[name]).astype(arr.dtype, copy=False)
            elif initializer is not None:
                initializer(InitDesc(name, attrs.get(name)), arr)
            # else: no value and no initializer (set_params(arg, None)): keep the value
        self.params_initialized = True
        self._params_dirty = False
        self._exec_group.set_params(self._arg_params, self._aux_params, allow_extra=allow_extra)

    def set_params(self, arg_params, aux_params, allow_missing=False, force_init=True,
                   allow_extra=False):
        if not allow_missing:
            self.init_params(initializer=None, arg_params=arg_params, aux_params=aux_params,
                             allow_missing=allow_missing, force_init=force_init,
                             allow_extra=allow_extra)
            return
        if self.params_initialized and not force_init:
            warnings.warn("Parameters already initialized and force_init=False. "
                          "set_params call ignored.", stacklevel=2)
            return
        self._require(bound=True, call="set_params")
        self._exec_group.set_params(arg_params, aux_params, allow_extra=allow_extra)
        self._params_dirty = True
        self.params_initialized = True

    def _sync_params_from_devices(self):
        self._exec_group.get_params(self._arg_params, self._aux_params)
        self._params_dirty = False

    # ------------------------------------------------------------------ binding
    def _reset_bind(self):
        self.binded = False
        if self._exec_group is not None:
            self._exec_group.release()
        self._exec_group = None
        self._data_shapes = self._label_shapes = None

    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req="write"):
        if force_rebind:
            self._reset_bind()
        if self.binded:
            self.logger.warning("Already bound, ignoring bind()")
            return
        if not for_training and inputs_need_grad:
            raise ValueError("inputs_need_grad=True needs for_training=True")
        data_shapes, label_shapes = _parse_data_desc(self._data_names, self._label_names,
                                                     data_shapes, label_shapes)
        if shared_module is None and self.params_initialized:
            self._check_params_present()
        shared_group = None
        if shared_module is not None:
            if not (isinstance(shared_module, Module) and shared_module.binded
                    and shared_module.params_initialized):
                raise ModuleStateError("shared_module must be a bound Module with "
                                       "initialized parameters")
            shared_group = shared_module._exec_group
            if len(shared_group.contexts) < len(self._context):
                raise ValueError("shared_module has fewer contexts than this module")
        workers = None
        if shared_group is None:
            from ..parallel.placement import create_worker_group
            workers = create_worker_group(self._context, self._placement)
        group = DataParallelExecutorGroup(
            self._symbol, self._context, self._work_load_list, data_shapes, label_shapes,
            self._param_names, for_training, inputs_need_grad, shared_group,
            logger=self.logger, fixed_param_names=self._fixed_param_names, grad_req=grad_req,
            state_names=self._state_names, workers=workers)
        if shared_module is None and self.params_initialized:
            try:     # re-bind or Module.load: the kept values go to the new executors
                group.set_params(self._arg_params, self._aux_params)
            except BaseException:
                group.release()      # a failed bind leaves no executors (or actors) behind
                raise
        # Only a successful bind changes the module's state.
        self.for_training = for_training
        self.inputs_need_grad = inputs_need_grad
        self._grad_req = grad_req
        self._exec_group = group
        self._data_shapes, self._label_shapes = data_shapes, label_shapes
        self._total_exec_bytes = group._total_exec_bytes
        if shared_module is not None:
            self.params_initialized = True
            self._arg_params = shared_module._arg_params
            self._aux_params = shared_module._aux_params
        elif not self.params_initialized:
            self._arg_params, self._aux_params = self._zero_master_params()
        if shared_module is not None and shared_module.optimizer_initialized:
            self.borrow_optimizer(shared_module)
        self.binded = True

    def _check_params_present(self):
        """Parameters set before bind (Module.load) must cover the symbol, checked up front."""
        for names, given, what in ((self._param_names, self._arg_params, "arg"),
                                   (self._aux_names, self._aux_params, "aux")):
            missing = [n for n in names if n not in (given or {})]
            if missing:
                raise RuntimeError(f"{missing[0]} is not presented: the {what} parameters "
                                   f"set before bind (e.g. by Module.load) lack {missing}")

    def _zero_master_params(self):
        """Host ("master") copies of every parameter and aux state, zero-filled."""
        shapes = {d.name: d.shape for d in self._data_shapes + (self._label_shapes or [])}
        arg_shapes, _, aux_shapes = self._symbol.infer_shape(**shapes)
        arg_types, _, aux_types = self._symbol.infer_type(
            **{d.name: d.dtype for d in self._data_shapes + (self._label_shapes or [])})
        names = self._symbol.list_arguments()
        arg_types = arg_types or [np.float32] * len(names)
        aux_types = aux_types or [np.float32] * len(self._aux_names)
        info = {n: (s, t) for n, s, t in zip(names, arg_shapes, arg_types)}
        arg_params = {n: _master_zeros(*info[n]) for n in self._param_names}
        aux_params = {n: _master_zeros(s, t)
                      for n, s, t in zip(self._aux_names, aux_shapes, aux_types)}
        return arg_params, aux_params

    def reshape(self, data_shapes, label_shapes=None):
        self._require(bound=True, call="reshape")
        data_shapes, label_shapes = _parse_data_desc(self._data_names, self._label_names,
                                                     data_shapes, label_shapes)
        self._data_shapes, self._label_shapes = data_shapes, label_shapes
        self._exec_group.reshape(data_shapes, label_shapes)

    # ------------------------------------------------------------------ optimizer
    def init_optimizer(self, kvstore="local", optimizer="sgd",
                       optimizer_params=(("learning_rate", 0.01),), force_init=False):
        self._require(bound=True, params=True, call="init_optimizer")
        if self.optimizer_initialized and not force_init:
            self.logger.warning("optimizer already initialized, ignoring...")
            return
        from .. import optimizer as opt
        if self._params_dirty:
            self._sync_params_from_devices()
        kvstore, update_on_kvstore = create_kvstore(kvstore, len(self._context),
                                                    self._arg_params)
        batch_size = self._exec_group.batch_size
        if kvstore is not None and "dist" in kvstore.type and "_sync" in kvstore.type:
            batch_size *= kvstore.num_workers
        rescale_grad = 1.0 / batch_size
        idx2name = {i: n for i, n in enumerate(self._param_names)}
        if isinstance(optimizer, str):
            optimizer_params = dict(optimizer_params)
            optimizer_params.setdefault("rescale_grad", rescale_grad)
            optimizer = opt.create(optimizer, sym=self.symbol, param_idx2name=idx2name,
                                   **optimizer_params)
        elif isinstance(optimizer, opt.Optimizer):
            if optimizer.rescale_grad != rescale_grad:
                warnings.warn(
                    "Optimizer created manually outside Module but rescale_grad is not "
                    f"normalized to 1.0/batch_size/num_workers ({optimizer.rescale_grad} vs. "
                    f"{rescale_grad}). Is this intended?", stacklevel=2)
            if not optimizer.idx2name:
                optimizer.idx2name = dict(idx2name)
        else:
            raise TypeError(f"optimizer must be a name or an Optimizer, received "
                            f"{type(optimizer).__name__}")
        self._optimizer, self._kvstore = optimizer, kvstore
        self._update_on_kvstore, self._updater = update_on_kvstore, None
        if kvstore is not None:
            if self._compression_params:
                kvstore.set_gradient_compression(self._compression_params)
            if update_on_kvstore:
                kvstore.set_optimizer(optimizer)
            for name in self._param_names:
                kvstore.init(name, self._arg_params[name])
        if not update_on_kvstore:
            # Each device worker holds an Updater (states keyed by parameter name).
            self._exec_group.init_updater(optimizer)
        self.optimizer_initialized = True
        if self._preload_opt_states is not None:
            self.load_optimizer_states(self._preload_opt_states)
            self._preload_opt_states = None

    def borrow_optimizer(self, shared_module):
        if not shared_module.optimizer_initialized:
            raise ModuleStateError("the shared module has no optimizer: call its "
                                   "init_optimizer() first")
        self._optimizer = shared_module._optimizer
        self._kvstore = shared_module._kvstore
        self._update_on_kvstore = shared_module._update_on_kvstore
        self._updater = shared_module._updater
        self.optimizer_initialized = True

    def save_optimizer_states(self, fname):
        """Write the optimizer states to `fname` (path or fsspec URL), atomically."""
        from ..fileio import atomic_write_bytes
        self._require(optimizer=True, call="save_optimizer_states")
        if self._update_on_kvstore:
            self._exec_group.wait_all()      # deferred updates reach the store's states
            self._kvstore.save_optimizer_states(fname)
        else:
            atomic_write_bytes(fname, self._exec_group.get_updater_states())

    def load_optimizer_states(self, fname):
        """Load optimizer states saved by `save_optimizer_states` (path or fsspec URL)."""
        self._require(optimizer=True, call="load_optimizer_states")
        if self._update_on_kvstore:
            self._exec_group.wait_all()      # no deferred update may apply after the load
            self._kvstore.load_optimizer_states(fname)
        else:
            from ..fileio import read_bytes
            self._exec_group.set_updater_states(read_bytes(fname))

    # ------------------------------------------------------------------ compute
    def forward(self, data_batch, is_train=None):
        self._require(bound=True, params=True, call="forward")
        if isinstance(data_batch, list):
            shapes = [tuple(a.shape) for a in data_batch[0].data]
            for b in data_batch[1:]:
                if [tuple(a.shape) for a in b.data] != shapes:
                    raise ValueError("All data batches in a list need to have the same shape")
            new_shapes = tuple((len(data_batch) * s[0],) + s[1:] for s in shapes)
        else:
            # (an in-memory iterator's batch not yet gathered stays so: the
            # workers gather its rows themselves, on either placement)
            new_shapes = tuple(data_shapes(data_batch))
        if new_shapes != tuple(d.shape for d in self._data_shapes):
            self._reshape_for(data_batch, new_shapes)
        self._exec_group.forward(data_batch, is_train)

    def _reshape_for(self, data_batch, new_shapes):
        from ..io import DataDesc
        if isinstance(data_batch, list):
            # Pre-sliced batches: each one's provide_data is one device's share, so the
            # new descriptors are the whole batch (len(list) x each batch's rows).
            new_dshape = [DataDesc(d.name, s, d.dtype, d.layout)
                          for d, s in zip(self._data_shapes, new_shapes)]
            label = getattr(data_batch[0], "label", None)
            new_lshape = None
            if label and self._label_shapes:
                new_lshape = [DataDesc(desc.name, (len(data_batch) * a.shape[0],) + a.shape[1:],
                                       desc.dtype, desc.layout)
                              for desc, a in zip(self._label_shapes, label)]
            self.reshape(new_dshape, new_lshape)
            return
        if getattr(data_batch, "provide_data", None):
            new_dshape = data_batch.provide_data
        else:
            new_dshape = [DataDesc(d.name, s, d.dtype, d.layout)
                          for d, s in zip(self._data_shapes, new_shapes)]
        new_lshape = None
        if getattr(data_batch, "provide_label", None):
            new_lshape = data_batch.provide_label
        elif getattr(data_batch, "label", None) and self._label_shapes:
            new_lshape = [DataDesc(l.name, tuple(a.shape), l.dtype, l.layout)
                          for l, a in zip(self._label_shapes, data_batch.label)]
        self.reshape(new_dshape, new_lshape)

    def backward(self, out_grads=None):
        self._require(bound=True, params=True, call="backward")
        self._exec_group.backward(out_grads=out_grads)

    def update(self):
        self._require(bound=True, params=True, optimizer=True, call="update")
        self._params_dirty = True
        update_params(self._exec_group, self._kvstore, self._update_on_kvstore)

    def get_outputs(self, merge_multi_context=True):
        self._require(bound=True, params=True, call="get_outputs")
        outputs = self._exec_group.get_outputs(merge_multi_context=merge_multi_context)
        if merge_multi_context:
            return [_as_nd(o) for o in outputs]
        return [[_as_nd(o) for o in per_output] for per_output in outputs]

    def get_input_grads(self, merge_multi_context=True):
        self._require(bound=True, params=True, input_grads=True, call="get_input_grads")
        grads = self._exec_group.get_input_grads(merge_multi_context=merge_multi_context)
        if merge_multi_context:
            return [_as_nd(g) for g in grads]
        return [[_as_nd(g) for g in per_input] for per_input in grads]

    def get_states(self, merge_multi_context=True):
        self._require(bound=True, params=True, call="get_states")
        return self._exec_group.get_states(merge_multi_context=merge_multi_context)

    def set_states(self, states=None, value=None):
        self._require(bound=True, params=True, call="set_states")
        self._exec_group.set_states(states, value)

    def update_metric(self, eval_metric, labels, pre_sliced=False):
        self._exec_group.update_metric(eval_metric, labels, pre_sliced)

    def install_monitor(self, mon):
        self._require(bound=True, call="install_monitor")
        self._exec_group.install_monitor(mon)

    def prepare(self, data_batch, sparse_row_id_fn=None):
        self._require(bound=True, call="prepare")
        if sparse_row_id_fn is not None:
            warnings.warn("Parameters are not updated in the KVStore. "
                          "No need to call sparse_row_id_fn.", stacklevel=2)
