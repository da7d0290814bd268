"""`BaseModule`: the state flags, and fit/score/predict written on the intermediate API.

Every module type (Module, BucketingModule, SequentialModule) inherits these
loops unchanged; they only call bind, init_params, init_optimizer, forward,
backward, update, update_metric, get_outputs and get_params.
"""
import inspect
import logging
import time
import warnings

import numpy as np

from ..history import EpochRecord, TrainingHistory
from ..parallel.errors import ModuleStateError
from .fit_params import FitParams

class _Unset:
    """fit's default marker: "not given", so `params=FitParams(...)` can supply the value.

    help(fit) shows the real defaults instead (fit's ``__signature__``).
    """

    def __repr__(self):
        return "<FitParams default>"


_UNSET = _Unset()


def _as_list(obj):
    if obj is None:
        return []
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]


def _floats(name_value):
    """A metric's [(name, value)] as {name: float} for the history."""
    return {name: float(value) for name, value in name_value}


def _call_batch_end(callbacks, epoch, nbatch, eval_metric, local_vars):
    if not callbacks:
        return
    from ..callback import BatchEndParam
    param = BatchEndParam(epoch=epoch, nbatch=nbatch, eval_metric=eval_metric,
                          locals=local_vars)
    for callback in _as_list(callbacks):
        callback(param)


def _as_nd(array):
    """Outputs reach users as rm.nd.NDArray views (asnumpy() works, no copy)."""
    from ..ndarray import NDArray
    if isinstance(array, np.ndarray) and not isinstance(array, NDArray):
        return array.view(NDArray)
    return array


class BaseModule:
    """The module state machine and the training loops (reference section 2)."""

    def __init__(self, logger=logging):
        self.logger = logger
        self.binded = False
        self.for_training = False
        self.inputs_need_grad = False
        self.params_initialized = False
        self.optimizer_initialized = False
        self._symbol = None
        self._total_exec_bytes = 0

    # ------------------------------------------------------------------ state checks
    def _require(self, bound=False, params=False, optimizer=False, input_grads=False,
                 call="this call"):
        if bound and not self.binded:
            raise ModuleStateError(f"{call} needs a bound module: call bind() first")
        if params and not self.params_initialized:
            raise ModuleStateError(f"{call} needs initialized parameters: call init_params() "
                                   f"or set_params() first")
        if optimizer and not self.optimizer_initialized:
            raise ModuleStateError(f"{call} needs an optimizer: call init_optimizer() first")
        if input_grads and not self.inputs_need_grad:
            raise ModuleStateError(f"{call} needs input gradients: bind with "
                                   f"inputs_need_grad=True")

    # ------------------------------------------------------------------ high level API
    def forward_backward(self, data_batch):
        """`forward(data_batch, is_train=True)`, then `backward()`."""
        self.forward(data_batch, is_train=True)
        self.backward()

    def score(self, eval_data, eval_metric, num_batch=None, batch_end_callback=None,
              score_end_callback=None, reset=True, epoch=0, sparse_row_id_fn=None):
        """Run `eval_data` through the module and return the metric's (name, value) list.

        Parameters
        ----------
        eval_data : DataIter
        eval_metric : str, EvalMetric or list
        num_batch : int, default None
            Stop after this many batches (all by default).
        batch_end_callback, score_end_callback : callable or list, default None
            Called with a `BatchEndParam` after each batch / at the end.
        reset : bool, default True
            Reset `eval_data` first.
        epoch : int, default 0
            The epoch number the callbacks see.
        sparse_row_id_fn : callable, default None
        """
        from .. import metric as metric_mod
        self._require(bound=True, params=True, call="score")
        if reset:
            eval_data.reset()
        if not isinstance(eval_metric, metric_mod.EvalMetric):
            eval_metric = metric_mod.create(eval_metric)
        eval_metric.reset()
        actual_num_batch = 0
        nbatch = 0
        for nbatch, eval_batch in enumerate(eval_data):
            if num_batch is not None and nbatch == num_batch:
                break
            self.prepare(eval_batch, sparse_row_id_fn=sparse_row_id_fn)
            self.forward(self._from_iterator(eval_batch), is_train=False)
            if isinstance(eval_batch, list):
                self.update_metric(eval_metric, [eb.label for eb in eval_batch],
                                   pre_sliced=True)
            else:
                self.update_metric(eval_metric, eval_batch.label)
            _call_batch_end(batch_end_callback, epoch, nbatch, eval_metric, locals())
            actual_num_batch += 1
        _call_batch_end(score_end_callback, epoch, actual_num_batch, eval_metric, locals())
        return eval_metric.get_name_value()

    def iter_predict(self, eval_data, num_batch=None, reset=True, sparse_row_id_fn=None):
        """Yield (outputs without the pad rows, nbatch, batch) for each batch."""
        self._require(bound=True, params=True, call="iter_predict")
        if reset:
            eval_data.reset()
        for nbatch, eval_batch in enumerate(eval_data):
            if num_batch is not None and nbatch == num_batch:
                break
            self.prepare(eval_batch, sparse_row_id_fn=sparse_row_id_fn)
            self.forward(self._from_iterator(eval_batch), is_train=False)
            pad = eval_batch.pad or 0
            outputs = [out[0:out.shape[0] - pad] for out in self.get_outputs()]
            yield outputs, nbatch, eval_batch

    def predict(self, eval_data, num_batch=None, merge_batches=True, reset=True,
                always_output_list=False, sparse_row_id_fn=None):
        """Outputs for every batch of `eval_data` (or for one array), pad rows removed.

        Parameters
        ----------
        eval_data : DataIter or array
        num_batch : int, default None
            Stop after this many batches.
        merge_batches : bool, default True
            Concatenate the batches' outputs (one array per output).
        reset : bool, default True
        always_output_list : bool, default False
            Return a list even for a single output.
        sparse_row_id_fn : callable, default None
        """
        from ..io import DataBatch
        self._require(bound=True, params=True, call="predict")
        if isinstance(eval_data, np.ndarray) or _is_device_array(eval_data):
            from .. import ndarray as nd
            if not isinstance(eval_data, nd.NDArray):
                eval_data = nd.array(eval_data)
            self.forward(DataBatch([eval_data]))      # is_train=None: quirk Q3
            return self.get_outputs()[0]
        if not (hasattr(eval_data, "reset") and hasattr(eval_data, "provide_data")
                and hasattr(eval_data, "__iter__")):
            raise ValueError("eval_data must be of type NDArray or DataIter")
        if reset:
            eval_data.reset()
        output_list = []
        for nbatch, eval_batch in enumerate(eval_data):
            if num_batch is not None and nbatch == num_batch:
                break
            self.prepare(eval_batch, sparse_row_id_fn=sparse_row_id_fn)
            self.forward(self._from_iterator(eval_batch), is_train=False)
            pad = eval_batch.pad or 0
            output_list.append([_as_nd(np.array(out[0:out.shape[0] - pad]))
                                for out in self.get_outputs()])
        if not output_list:
            return output_list
        if merge_batches:
            num_outputs = len(output_list[0])
            for out in output_list:
                if len(out) != num_outputs:
                    raise ValueError("Cannot merge batches, as num of outputs is not the "
                                     "same in mini-batches. Maybe bucketing is used?")
            merged = [_as_nd(np.concatenate([out[i] for out in output_list], axis=0))
                      for i in range(num_outputs)]
            if num_outputs == 1 and not always_output_list:
                return merged[0]
            return merged
        return output_list

    def fit(self, train_data, eval_data=None, eval_metric=_UNSET, epoch_end_callback=_UNSET,
            batch_end_callback=_UNSET, kvstore=_UNSET, optimizer=_UNSET,
            optimizer_params=_UNSET, eval_end_callback=_UNSET,
            eval_batch_end_callback=_UNSET, initializer=_UNSET, arg_params=_UNSET,
            aux_params=_UNSET, allow_missing=_UNSET, force_rebind=_UNSET, force_init=_UNSET,
            begin_epoch=_UNSET, num_epoch=_UNSET, validation_metric=_UNSET, monitor=_UNSET,
            sparse_row_id_fn=_UNSET, callbacks=_UNSET, max_worker_restarts=_UNSET,
            params=None):
        """Train on `train_data` for epochs `begin_epoch` to `num_epoch` - 1 (MXNet's fit).

        Binds the module to the data's shapes, initialises parameters and
        the optimizer, then for each epoch: trains on every batch, logs
        ``Epoch[k] Train-<metric>`` and ``Time cost``, calls the epoch-end
        callbacks, scores `eval_data` (``Epoch[k] Validation-<metric>``) and
        records the epoch in the returned history.

        The arguments after `eval_data` are the fields of `FitParams`, with
        MXNet's defaults; they can also come as one ``params=FitParams(...)``,
        and a keyword given explicitly overrides that field of `params`.

        Parameters
        ----------
        train_data : DataIter
            The training batches (``provide_data``, ``provide_label``, iteration, ``reset``).
        eval_data : DataIter, default None
            Scored after every epoch with `validation_metric`.
        eval_metric : str, EvalMetric or list, default 'acc'
            The training metric.
        epoch_end_callback : callable or list, default None
            ``cb(epoch, symbol, arg_params, aux_params)`` after each epoch
            (before validation), e.g. ``rm.callback.do_checkpoint(prefix)``.
        batch_end_callback : callable or list, default None
            ``cb(BatchEndParam)`` after each batch, e.g. ``rm.callback.Speedometer(batch_size)``.
        kvstore : str or KVStore, default 'local'
            'local', 'device', 'dist_sync', 'dist_async' or None.
        optimizer : str or Optimizer, default 'sgd'
        optimizer_params : dict or tuple of pairs, default (('learning_rate', 0.01),)
        eval_end_callback : callable or list, default None
            ``cb(BatchEndParam)`` after each validation pass.
        eval_batch_end_callback : callable or list, default None
            ``cb(BatchEndParam)`` after each validation batch.
        initializer : Initializer, default Uniform(scale=0.01)
        arg_params, aux_params : dict of str to array, default None
            Starting values (e.g. from a checkpoint).
        allow_missing : bool, default False
            Let `arg_params`/`aux_params` miss names; `initializer` fills them.
        force_rebind : bool, default False
        force_init : bool, default False
        begin_epoch : int, default 0
            The first epoch's number (resume with the checkpoint's number).
        num_epoch : int
            Required: train up to this epoch number, exclusive.
        validation_metric : str or EvalMetric, default None
            The metric for `eval_data`; None means `eval_metric`.
        monitor : Monitor, default None
        sparse_row_id_fn : callable, default None
        callbacks : list of FitCallback, default None
            raymod's whole-fit callbacks: ``rm.callback.TrainingProgress()``
            (a progress bar), ``rm.callback.HistoryWriter(path)`` (the history
            as CSV or JSON lines), TensorBoard and Ray Tune adapters in ``rm.contrib``.
        max_worker_restarts : int, default 3
            On Ray workers: how many times a lost worker (its process killed,
            its node gone) is replaced and the batches since the last
            snapshot replayed, so the fit goes on exactly as it would have;
            0 ends the fit with the error instead.
        params : FitParams, default None
            All of the above as one object.

        Returns
        -------
        TrainingHistory
            Every epoch's train and validation metrics and times; also kept
            as ``self.history``. (MXNet's fit returned None.)
        """
        given = {k: v for k, v in locals().items()
                 if k in FitParams.field_names() and v is not _UNSET}
        if params is None:
            params = FitParams(**given)
        elif not isinstance(params, FitParams):
            raise TypeError(f"params must be a FitParams, received {type(params).__name__}")
        elif given:
            params = params.replace(**given)
        return self._fit(train_data, eval_data, params)

    def _fit(self, train_data, eval_data, p):
        from .. import metric as metric_mod
        from ..fit_callbacks import FitCallbackList
        if p.num_epoch is None:
            raise ValueError("please specify number of epochs (num_epoch)")
        hooks = FitCallbackList(p.callbacks)
        self.bind(data_shapes=train_data.provide_data, label_shapes=train_data.provide_label,
                  for_training=True, force_rebind=p.force_rebind)
        if p.monitor is not None:
            self.install_monitor(p.monitor)
        self.init_params(initializer=p.initializer, arg_params=p.arg_params,
                         aux_params=p.aux_params, allow_missing=p.allow_missing,
                         force_init=p.force_init)
        self.init_optimizer(kvstore=p.kvstore, optimizer=p.optimizer,
                            optimizer_params=p.optimizer_params)
        self._set_max_worker_restarts(p.max_worker_restarts)
        validation_metric = p.validation_metric if p.validation_metric is not None \
            else p.eval_metric
        eval_metric = p.eval_metric
        if not isinstance(eval_metric, metric_mod.EvalMetric):
            eval_metric = metric_mod.create(eval_metric)
        self.history = TrainingHistory()
        hooks.train_begin(self, p)
        p = p.replace(batch_end_callback=_as_list(p.batch_end_callback)
                      + hooks.batch_end_callbacks())
        try:
            for epoch in range(p.begin_epoch, p.num_epoch):
                self._fit_recorded_epoch(train_data, eval_data, eval_metric,
                                         validation_metric, epoch, p, hooks)
        except BaseException as err:
            hooks.train_end(self.history, error=err)
            raise
        hooks.train_end(self.history)
        return self.history

    # Module and BucketingModule hand a batch to their executor groups as they get it;
    # any other module may run code (its own, the user's) that changes it first.
    _batches_reach_groups_unchanged = False

    def _from_iterator(self, batch):
        """A batch the loop hands from its iterator straight to forward: when nothing
        between here and the executor group can write into it, the rows it came from
        (if its iterator says) may stand in for its arrays (Ray workers then gather
        it from data they hold: raymod.io.batch_rows)."""
        rows = getattr(batch, "rows", None)
        if rows is not None and self._batches_reach_groups_unchanged:
            rows.unchanged = True
        return batch

    def _set_max_worker_restarts(self, count):
        """How often this module's Ray workers may be replaced (see fit)."""
        for group in self._executor_groups():
            group.set_max_worker_restarts(count)

    def _executor_groups(self):
        """The executor groups this module runs on (none for a PythonModule)."""
        group = getattr(self, "_exec_group", None)
        return [group] if group is not None else []

    def _fit_recorded_epoch(self, train_data, eval_data, eval_metric, validation_metric,
                            epoch, p, hooks):
        """One epoch of fit (MXNet's order), recorded in `self.history`."""
        hooks.epoch_begin(epoch)
        tic = time.time()
        self._fit_epoch(train_data, eval_metric, epoch, p)
        record = EpochRecord(epoch, train=_floats(eval_metric.get_global_name_value()),
                             train_time=time.time() - tic)
        arg_params, aux_params = self.get_params()
        self.set_params(arg_params, aux_params)
        for callback in _as_list(p.epoch_end_callback):
            callback(epoch, self.symbol, arg_params, aux_params)
        if eval_data is not None:
            tic = time.time()
            res = self.score(eval_data, validation_metric,
                             score_end_callback=p.eval_end_callback,
                             batch_end_callback=p.eval_batch_end_callback, epoch=epoch)
            record.val, record.val_time = _floats(res), time.time() - tic
            for name, val in res:
                self.logger.info("Epoch[%d] Validation-%s=%f", epoch, name, val)
        train_data.reset()
        self.history.append(record)
        hooks.epoch_end(epoch, self.history)

    def _fit_epoch(self, train_data, eval_metric, epoch, p):
        tic = time.time()
        eval_metric.reset()
        nbatch = 0
        data_iter = iter(train_data)
        end_of_batch = False
        next_data_batch = next(data_iter)
        eval_name_vals = []
        while not end_of_batch:
            data_batch = next_data_batch
            if p.monitor is not None:
                p.monitor.tic()
            self.forward_backward(self._from_iterator(data_batch))
            self.update()
            if isinstance(data_batch, list):
                self.update_metric(eval_metric, [db.label for db in data_batch],
                                   pre_sliced=True)
            else:
                self.update_metric(eval_metric, data_batch.label)
            try:
                next_data_batch = next(data_iter)
                self.prepare(next_data_batch, sparse_row_id_fn=p.sparse_row_id_fn)
            except StopIteration:
                end_of_batch = True
            if p.monitor is not None:
                p.monitor.toc_print()
            if end_of_batch:
                eval_name_vals = eval_metric.get_global_name_value()
            _call_batch_end(p.batch_end_callback, epoch, nbatch, eval_metric, locals())
            nbatch += 1
        for name, val in eval_name_vals:
            self.logger.info("Epoch[%d] Train-%s=%f", epoch, name, val)
        self.logger.info("Epoch[%d] Time cost=%.3f", epoch, time.time() - tic)

    # ------------------------------------------------------------------ parameters
    def set_params(self, arg_params, aux_params, allow_missing=False, force_init=True,
                   allow_extra=False):
        """Assign parameter values: `init_params` with these values and no initializer.

        Parameters
        ----------
        arg_params, aux_params : dict of str to array
        allow_missing : bool, default False
            Names absent from the dicts keep their values instead of raising.
        force_init : bool, default True
            Overwrite parameters that are already initialised.
        allow_extra : bool, default False
            Ignore names the symbol does not have instead of raising.
        """
        self.init_params(initializer=None, arg_params=arg_params, aux_params=aux_params,
                         allow_missing=allow_missing, force_init=force_init,
                         allow_extra=allow_extra)

    def save_params(self, fname):
        """Write `arg:`/`aux:` parameters in MXNet's .params format (atomically)."""
        from .. import ndarray as nd
        arg_params, aux_params = self.get_params()
        save_dict = {f"arg:{k}": v for k, v in arg_params.items()}
        save_dict.update({f"aux:{k}": v for k, v in aux_params.items()})
        nd.save(fname, save_dict)

    def load_params(self, fname):
        """Set the parameters from an `arg:`/`aux:` .params file (path or fsspec URL)."""
        from ..model import split_params
        arg_params, aux_params = split_params(fname, strict=True)
        self.set_params(arg_params, aux_params)

    def prepare(self, data_batch, sparse_row_id_fn=None):
        """Prepare for `data_batch` before its forward (MXNet's sparse hook; a no-op here)."""
        if sparse_row_id_fn is not None:
            warnings.warn(UserWarning("sparse_row_id_fn is not invoked for BaseModule."))

    def get_states(self, merge_multi_context=True):
        """The recurrent states of `state_names` (MXNet's; modules without states return [])."""
        self._require(bound=True, params=True, call="get_states")
        if merge_multi_context:
            raise ModuleStateError("merge_multi_context=True is not supported for get_states")
        return []

    def set_states(self, states=None, value=None):
        """Set the recurrent states from arrays (`states`) or one scalar (`value`)."""
        self._require(bound=True, params=True, call="set_states")
        if states or value:
            raise ValueError("this module has no states to set")

    def install_monitor(self, mon):
        """Install a `rm.monitor.Monitor` on the executors (needs a bound module)."""
        raise NotImplementedError()

    # ------------------------------------------------------------------ abstract
    @property
    def symbol(self):
        """The module's Symbol."""
        return self._symbol

    @property
    def data_names(self):
        """Names of the data inputs, in order."""
        raise NotImplementedError()

    @property
    def output_names(self):
        """Names of the outputs, in order."""
        raise NotImplementedError()

    @property
    def data_shapes(self):
        """`DataDesc` of each data input once bound."""
        raise NotImplementedError()

    @property
    def label_shapes(self):
        """`DataDesc` of each label once bound (None or [] when there are none)."""
        raise NotImplementedError()

    @property
    def output_shapes(self):
        """(name, shape) of each output once bound."""
        raise NotImplementedError()

    def get_params(self):
        """(arg_params, aux_params): copies of the parameters as dicts of name to NDArray."""
        raise NotImplementedError()

    def init_params(self, initializer=None, arg_params=None, aux_params=None,
                    allow_missing=False, force_init=False, allow_extra=False):
        """Initialise the parameters (after `bind`).

        Parameters
        ----------
        initializer : Initializer, optional
            Fills what `arg_params`/`aux_params` do not give; Module's default is
            ``Uniform(scale=0.01)``.
        arg_params, aux_params : dict of str to array, default None
            Values to use instead of the initializer.
        allow_missing : bool, default False
            Let the dicts miss names (the initializer fills them).
        force_init : bool, default False
            Initialise again even if already initialised.
        allow_extra : bool, default False
            Ignore names the symbol does not have.
        """
        raise NotImplementedError()

    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req="write"):
        """Allocate executors (on the device workers) for the given input shapes.

        Parameters
        ----------
        data_shapes : list of DataDesc or (name, shape)
        label_shapes : list of DataDesc or (name, shape), default None
        for_training : bool, default True
            Allocate gradients; False binds for inference only.
        inputs_need_grad : bool, default False
            Also compute gradients of the data inputs (`get_input_grads`).
        force_rebind : bool, default False
            Bind again even if already bound.
        shared_module : Module, default None
            Share parameters and memory with this bound module (bucketing).
        grad_req : str, list or dict, default 'write'
            'write', 'add' or 'null', for all arguments or per name.
        """
        raise NotImplementedError()

    def init_optimizer(self, kvstore="local", optimizer="sgd",
                       optimizer_params=(("learning_rate", 0.01),), force_init=False):
        """Create the optimizer and the kvstore (after `init_params`).

        Parameters
        ----------
        kvstore : str or KVStore, default 'local'
            'local', 'device', 'dist_sync', 'dist_async' or None (see docs/kvstores.md).
        optimizer : str or Optimizer, default 'sgd'
        optimizer_params : dict or tuple of pairs, default (('learning_rate', 0.01),)
            The optimizer's arguments when `optimizer` is a name; `rescale_grad`
            defaults to 1 / batch size.
        force_init : bool, default False
            Replace an optimizer that is already installed.
        """
        raise NotImplementedError()

    def forward(self, data_batch, is_train=None):
        """Compute the outputs of `data_batch`.

        Parameters
        ----------
        data_batch : DataBatch
        is_train : bool, optional
            Training mode (dropout, batch statistics); None means `for_training` of `bind`.
        """
        raise NotImplementedError()

    def backward(self, out_grads=None):
        """Gradients after a training forward; `out_grads` only for outputs without a loss."""
        raise NotImplementedError()

    def update(self):
        """Apply one optimizer step with the gradients of the last backward."""
        raise NotImplementedError()

    def get_outputs(self, merge_multi_context=True):
        """The outputs of the last forward (merged over devices by default)."""
        raise NotImplementedError()

    def get_input_grads(self, merge_multi_context=True):
        """Gradients of the data inputs (needs ``bind(inputs_need_grad=True)``)."""
        raise NotImplementedError()

    def update_metric(self, eval_metric, labels, pre_sliced=False):
        """Update `eval_metric` with the last forward's outputs and `labels`."""
        raise NotImplementedError()


def _fit_signature_with_defaults():
    """fit's signature as help() shows it: FitParams' real defaults instead of the marker."""
    sig = inspect.signature(BaseModule.fit)
    defaults = FitParams()
    return sig.replace(parameters=[
        prm.replace(default=getattr(defaults, prm.name)) if prm.default is _UNSET else prm
        for prm in sig.parameters.values()])


BaseModule.fit.__signature__ = _fit_signature_with_defaults()


def _is_device_array(obj):
    return type(obj).__module__.split(".")[0] == "cupy"
