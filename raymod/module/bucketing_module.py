"""`BucketingModule`: one Module per bucket key, all sharing one set of weights (section 6).

Every bucket's Module binds with `shared_module`, so its executors live in
the same device workers as the default bucket's and use the very same
parameter and gradient buffers: switching buckets moves no weights, and
grad_req 'add' accumulates across buckets (Q22). Input buffers of a new
bucket are views of the largest bucket bound so far where they fit. There is
one optimizer (and one kvstore) for all buckets.

Deviations from MXNet, on purpose: `sym_gen` is always called in a fresh
NameManager, also when saving (Q12); a batch with a new bucket key but no
`provide_data` is a clear ValueError (Q13); a batch whose `bucket_key` is
None runs in the default bucket (MXNet would call `sym_gen(None)`).
"""
import logging
import numbers
import warnings

import numpy as np

from ..base import MXNetError
from ..name import NameManager
from ..parallel.errors import ModuleStateError
from .base_module import BaseModule
from .module import _DEFAULT_INIT, Module, _check_input_names


class BucketingModule(BaseModule):
    """A module that binds one executor set per bucket key, all sharing parameters.

    Parameters
    ----------
    sym_gen : callable
        `sym_gen(bucket_key) -> (symbol, data_names, label_names)`;
        `label_names` may be None.
    default_bucket_key : hashable
        The key of the bucket bound by `bind`; ideally the largest bucket,
        so that every other bucket's inputs fit in its buffers.
    logger, context, work_load_list, fixed_param_names, state_names,
    group2ctxs, compression_params
        As for `Module`; every bucket's Module gets them.
    placement : {'ray', 'in_process'}, optional
        Where the device workers run (see `Module`).
    """

    _batches_reach_groups_unchanged = True

    def __init__(self, sym_gen, default_bucket_key=None, logger=logging, context=None,
                 work_load_list=None, fixed_param_names=None, state_names=None,
                 group2ctxs=None, compression_params=None, placement=None):
        super().__init__(logger=logger)
        if default_bucket_key is None:
            raise ValueError("BucketingModule needs a default_bucket_key, received None")
        if not callable(sym_gen):
            raise TypeError(f"sym_gen must be callable, received {type(sym_gen).__name__}")
        self._default_bucket_key = default_bucket_key
        self._sym_gen = sym_gen
        symbol, data_names, label_names = self._call_sym_gen(default_bucket_key)
        data_names = list(data_names) if data_names is not None else []
        label_names = list(label_names) if label_names is not None else []
        state_names = list(state_names) if state_names is not None else []
        fixed_param_names = list(fixed_param_names) if fixed_param_names is not None else []
        _check_input_names(symbol, data_names, "data", True)
        _check_input_names(symbol, label_names, "label", False)
        _check_input_names(symbol, state_names, "state", True)
        _check_input_names(symbol, fixed_param_names, "fixed_param", True)
        self._module_kwargs = dict(logger=logger, context=context,
                                   work_load_list=work_load_list,
                                   fixed_param_names=fixed_param_names,
                                   state_names=state_names, group2ctxs=group2ctxs,
                                   compression_params=compression_params,
                                   placement=placement)
        self._buckets = {}
        self._curr_module = None
        self._curr_bucket_key = None
        self._params_dirty = False
        self._monitor = None
        self._grad_req = None

    def _call_sym_gen(self, bucket_key):
        """sym_gen in a fresh name scope: auto-names restart at 0 for every bucket."""
        with NameManager():
            return self._sym_gen(bucket_key)

    def _new_module(self, bucket_key, symbol=None):
        gen_symbol, data_names, label_names = self._call_sym_gen(bucket_key)
        return Module(gen_symbol if symbol is None else symbol, data_names, label_names,
                      **self._module_kwargs)

    def _reset_bind(self):
        """Unbind: every bucket is dropped (its executors freed on the workers)."""
        self.binded = False
        default = self._buckets.get(self._default_bucket_key)
        # Other buckets first: the default bucket's group owns the workers.
        for module in list(self._buckets.values()):
            if module is not default and module.binded:
                module._reset_bind()
        if default is not None and default.binded:
            default._reset_bind()
        self._buckets = {}
        self._curr_module = None
        self._curr_bucket_key = None

    # ------------------------------------------------------------------ properties
    @property
    def default_bucket_key(self):
        return self._default_bucket_key

    @property
    def data_names(self):
        if self.binded:
            return self._curr_module.data_names
        return self._call_sym_gen(self._default_bucket_key)[1]

    @property
    def output_names(self):
        if self.binded:
            return self._curr_module.output_names
        return self._call_sym_gen(self._default_bucket_key)[0].list_outputs()

    @property
    def data_shapes(self):
        self._require(bound=True, call="data_shapes")
        return self._curr_module.data_shapes

    @property
    def label_shapes(self):
        self._require(bound=True, call="label_shapes")
        return self._curr_module.label_shapes

    @property
    def output_shapes(self):
        self._require(bound=True, call="output_shapes")
        return self._curr_module.output_shapes

    @property
    def symbol(self):
        self._require(bound=True, call="symbol")
        return self._curr_module.symbol

    def bucket_memory(self):
        """{bucket key: bytes its executors allocated} for every bound bucket.

        The default bucket holds the parameters, gradients and its buffers;
        every other bucket reports only what it adds: its intermediate
        buffers, and inputs that did not fit in an existing bucket's.
        """
        return {key: mod._total_exec_bytes for key, mod in self._buckets.items()
                if mod.binded}

    # ------------------------------------------------------------------ parameters
    def get_params(self):
        self._require(params=True, call="get_params")
        self._curr_module._params_dirty = self._params_dirty
        params = self._curr_module.get_params()
        self._params_dirty = False
        return params

    def init_params(self, initializer=_DEFAULT_INIT, arg_params=None, aux_params=None,
                    allow_missing=False, force_init=False, allow_extra=False):
        if self.params_initialized and not force_init:
            return                                  # silently, unlike Module (Q14)
        self._require(bound=True, call="init_params")
        self._curr_module.init_params(initializer=initializer, arg_params=arg_params,
                                      aux_params=aux_params, allow_missing=allow_missing,
                                      force_init=force_init, allow_extra=allow_extra)
        self._params_dirty = False
        self.params_initialized = True

    def set_params(self, arg_params, aux_params, allow_missing=False, force_init=True,
                   allow_extra=False):
        if not allow_missing:
            # MXNet drops allow_extra on this path; extras are ignored there anyway.
            self.init_params(initializer=None, arg_params=arg_params, aux_params=aux_params,
                             allow_missing=allow_missing, force_init=force_init)
            return
        if self.params_initialized and not force_init:
            warnings.warn("Parameters already initialized and force_init=False. "
                          "set_params call ignored.", stacklevel=2)
            return
        self._curr_module.set_params(arg_params, aux_params, allow_missing=allow_missing,
                                     force_init=force_init, allow_extra=allow_extra)
        self._params_dirty = True
        self.params_initialized = True

    # ------------------------------------------------------------------ binding
    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req="write"):
        """Bind the default bucket; the other buckets bind when first switched to."""
        if shared_module is not None:
            raise ValueError("shared_module for BucketingModule is not supported")
        arg_params = aux_params = None
        if self.params_initialized:
            arg_params, aux_params = self.get_params()
        if force_rebind:
            self._reset_bind()
        if self.binded:
            self.logger.warning("Already bound, ignoring bind()")
            return
        module = self._buckets.get(self._default_bucket_key)
        if module is None:
            module = self._new_module(self._default_bucket_key)
        module.bind(data_shapes, label_shapes, for_training, inputs_need_grad,
                    force_rebind=False, shared_module=None, grad_req=grad_req)
        self.for_training = for_training
        self.inputs_need_grad = inputs_need_grad
        self._grad_req = grad_req
        self._curr_module = module
        self._curr_bucket_key = self._default_bucket_key
        self._buckets[self._default_bucket_key] = module
        self.binded = True
        if arg_params is not None:
            self.set_params(arg_params, aux_params)

    def switch_bucket(self, bucket_key, data_shapes, label_shapes=None):
        """Make `bucket_key` current, binding its Module first if it is new.

        Parameters
        ----------
        bucket_key : hashable
        data_shapes, label_shapes : list of DataDesc or (name, shape)
            Needed only when the bucket is not bound yet.
        """
        self._require(bound=True, call="switch_bucket")
        module = self._buckets.get(bucket_key)
        if module is None or not module.binded:
            if data_shapes is None:
                raise ValueError(
                    f"bucket {bucket_key!r} is not bound yet and no data shapes were given "
                    f"(a batch for a new bucket needs provide_data and, with labels, "
                    f"provide_label)")
            if module is None:
                module = self._new_module(bucket_key)
            self._check_no_new_parameters(bucket_key, module)
            source = self._share_source(data_shapes, label_shapes)
            curr = self._curr_module
            module.bind(data_shapes, label_shapes, curr.for_training, curr.inputs_need_grad,
                        force_rebind=False, shared_module=source, grad_req=self._grad_req)
            if self._monitor is not None:
                module.install_monitor(self._monitor)
            self._buckets[bucket_key] = module
        self._curr_module = module
        self._curr_bucket_key = bucket_key

    def _executor_groups(self):
        # The buckets share one worker group (and its scheduler): any bucket's will do.
        return self._curr_module._executor_groups() if self._curr_module else []

    def _check_no_new_parameters(self, bucket_key, module):
        """Every bucket computes with the default bucket's parameters: one that has
        others would train weights nobody initialised (MXNet crashed there)."""
        default = self._buckets[self._default_bucket_key]
        new = [n for n in module._param_names if n not in default._param_names]
        new += [n for n in module._aux_names if n not in default._aux_names]
        if new:
            raise ValueError(
                f"bucket {bucket_key!r}: sym_gen's symbol has parameters the default bucket "
                f"({self._default_bucket_key!r}) lacks: {new}. Every bucket shares the "
                f"default bucket's parameters; give each parameter the same name in every "
                f"bucket (name= on the layer), and make the default bucket the one with all "
                f"of them")

    def _share_source(self, data_shapes, label_shapes):
        """The bound bucket with the largest inputs: the new bucket's inputs are views of its.

        Every bucket's parameters and gradients are the default bucket's
        arrays, so sharing with any bound bucket shares those too. MXNet's
        warning is logged for inputs that fit in no bucket.
        """
        default = self._buckets[self._default_bucket_key]
        if not default.params_initialized:
            raise ModuleStateError("call init_params (or set_params) before switching to "
                                   "a new bucket: its parameters are the default bucket's")
        bound = [m for m in self._buckets.values() if m.binded]
        source = max(bound, key=lambda m: (_input_size(m), m is default))
        have = {d.name: d.shape for d in source.data_shapes + (source.label_shapes or [])}
        for entry in list(data_shapes) + list(label_shapes or []):
            name, shape = entry[0], tuple(entry[1])
            if name in have and int(np.prod(shape)) > int(np.prod(have[name])):
                self.logger.warning(
                    "Bucketing: data %s has a shape %s, which is larger than already "
                    "allocated shape %s. Need to re-allocate. Consider putting "
                    "default_bucket_key to be the bucket taking the largest input for "
                    "better memory sharing.", name, shape, have[name])
        return source

    # ------------------------------------------------------------------ optimizer
    def init_optimizer(self, kvstore="local", optimizer="sgd",
                       optimizer_params=(("learning_rate", 0.01),), force_init=False):
        self._require(bound=True, params=True, call="init_optimizer")
        if self.optimizer_initialized and not force_init:
            self.logger.warning("optimizer already initialized, ignoring.")
            return
        self._curr_module.init_optimizer(kvstore, optimizer, optimizer_params,
                                         force_init=force_init)
        for module in self._buckets.values():
            if module is not self._curr_module and module.binded:
                module.borrow_optimizer(self._curr_module)
        self.optimizer_initialized = True

    # ------------------------------------------------------------------ compute
    def _batch_key(self, data_batch):
        key = getattr(data_batch, "bucket_key", None)
        return self._default_bucket_key if key is None else key

    def prepare(self, data_batch, sparse_row_id_fn=None):
        """Bind the batch's bucket ahead of time (fit calls this for the next batch)."""
        self._require(bound=True, params=True, call="prepare")
        original_key = self._curr_bucket_key
        self.switch_bucket(self._batch_key(data_batch),
                           getattr(data_batch, "provide_data", None),
                           getattr(data_batch, "provide_label", None))
        self._curr_module.prepare(data_batch, sparse_row_id_fn=sparse_row_id_fn)
        self.switch_bucket(original_key, None, None)

    def forward(self, data_batch, is_train=None):
        self._require(bound=True, params=True, call="forward")
        self.switch_bucket(self._batch_key(data_batch),
                           getattr(data_batch, "provide_data", None),
                           getattr(data_batch, "provide_label", None))
        self._curr_module.forward(data_batch, is_train=is_train)

    def backward(self, out_grads=None):
        self._require(bound=True, params=True, call="backward")
        self._curr_module.backward(out_grads=out_grads)

    def update(self):
        self._require(bound=True, params=True, optimizer=True, call="update")
        self._params_dirty = True
        self._curr_module.update()

    def get_outputs(self, merge_multi_context=True):
        self._require(bound=True, params=True, call="get_outputs")
        return self._curr_module.get_outputs(merge_multi_context=merge_multi_context)

    def get_input_grads(self, merge_multi_context=True):
        self._require(bound=True, params=True, input_grads=True, call="get_input_grads")
        return self._curr_module.get_input_grads(merge_multi_context=merge_multi_context)

    def get_states(self, merge_multi_context=True):
        self._require(bound=True, params=True, call="get_states")
        return self._curr_module.get_states(merge_multi_context)

    def set_states(self, states=None, value=None):
        self._require(bound=True, params=True, call="set_states")
        self._curr_module.set_states(states, value)

    def update_metric(self, eval_metric, labels, pre_sliced=False):
        self._require(bound=True, params=True, call="update_metric")
        self._curr_module.update_metric(eval_metric, labels, pre_sliced)

    def install_monitor(self, mon):
        self._require(bound=True, call="install_monitor")
        self._monitor = mon
        for module in self._buckets.values():
            if module.binded:
                module.install_monitor(mon)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, prefix, epoch, remove_amp_cast=False):
        """Write prefix-%04d.params, prefix-<key>-symbol.json per bucket and prefix.buckets."""
        from .. import ndarray as nd
        if not self._buckets:
            raise MXNetError("Empty BucketingModule cannot be saved")
        for key in self._buckets:
            if isinstance(key, bool) or not isinstance(key, numbers.Integral):
                raise TypeError(f"save_checkpoint needs integer bucket keys (MXNet's "
                                f".buckets file holds int32), received {key!r}")
        self.save_params(f"{prefix}-{epoch:04d}.params")
        for key in self._buckets:
            self._call_sym_gen(key)[0].save(f"{prefix}-{key}-symbol.json",
                                            remove_amp_cast=remove_amp_cast)
        nd.save(f"{prefix}.buckets", nd.array(list(self._buckets), dtype="int32"))

    @staticmethod
    def load(prefix, epoch, sym_gen=None, default_bucket_key=None, **kwargs):
        """A BucketingModule with the buckets and parameters of checkpoint `prefix`-`epoch`.

        Reads `prefix.buckets`, `prefix-<key>-symbol.json` for each key and
        `prefix-%04d.params` (files written by MXNet included). The buckets
        are unbound; `bind` and later switches bind them.
        """
        from .. import ndarray as nd
        from ..model import load_params
        from ..symbol import load as load_symbol
        if sym_gen is None:
            raise ValueError("sym_gen is required for loading BucketingModule")
        if default_bucket_key is None:
            raise ValueError("default_bucket_key is required for loading BucketingModule")
        keys = [int(k) for k in nd.load(f"{prefix}.buckets")[0].asnumpy().astype("int32")]
        if default_bucket_key not in keys:
            raise ValueError(f"default_bucket_key {default_bucket_key!r} is not among the "
                             f"saved buckets {keys} of {prefix}.buckets")
        mod = BucketingModule(sym_gen, default_bucket_key, **kwargs)
        for key in keys:
            mod._buckets[key] = mod._new_module(key, load_symbol(f"{prefix}-{key}-symbol.json"))
        arg_params, aux_params = load_params(prefix, epoch)
        mod._install_loaded(arg_params, aux_params)
        return mod

    @staticmethod
    def load_dict(sym_dict=None, sym_gen=None, default_bucket_key=None, arg_params=None,
                  aux_params=None, **kwargs):
        """A BucketingModule from in-memory symbols `{key: symbol}` and parameters."""
        for name, value in (("sym_dict", sym_dict), ("sym_gen", sym_gen),
                            ("default_bucket_key", default_bucket_key),
                            ("arg_params", arg_params), ("aux_params", aux_params)):
            if value is None:
                raise ValueError(f"{name} is required for loading BucketingModule")
        if default_bucket_key not in sym_dict:
            raise ValueError(f"default_bucket_key {default_bucket_key!r} is not a key of "
                             f"sym_dict {list(sym_dict)}")
        mod = BucketingModule(sym_gen, default_bucket_key, **kwargs)
        _, data_names, label_names = mod._call_sym_gen(default_bucket_key)
        for key, symbol in sym_dict.items():
            mod._buckets[key] = Module(symbol, data_names, label_names, **mod._module_kwargs)
        mod._install_loaded(arg_params, aux_params)
        return mod

    def _install_loaded(self, arg_params, aux_params):
        module = self._buckets[self._default_bucket_key]
        self._curr_module = module
        self._curr_bucket_key = self._default_bucket_key
        module._arg_params, module._aux_params = arg_params, aux_params
        module.params_initialized = True
        self.params_initialized = True


def _input_size(module):
    return sum(int(np.prod(d.shape)) for d in module.data_shapes + (module.label_shapes or []))
