"""`FitParams`: fit's arguments as one dataclass, with MXNet's Python defaults."""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional


def _default_initializer():
    from ..initializer import Uniform
    return Uniform(0.01)


@dataclass
class FitParams:
    """Everything `BaseModule.fit` takes besides the data.

    ``mod.fit(train, eval_data=val, params=FitParams(num_epoch=3))`` is the
    same as passing the fields as keywords; a keyword given to `fit` as well
    overrides the field. Defaults are MXNet's Python `fit` defaults (not the
    Scala FitParams ones, whose kvstore setter did nothing).

    Attributes
    ----------
    eval_metric : str, EvalMetric or list, default 'acc'
        The training metric, logged as ``Epoch[k] Train-<name>=<value>`` after
        each epoch (a name for `rm.metric.create`, a metric, or a list of them).
    epoch_end_callback : callable or list of callables, default None
        Called as ``cb(epoch, symbol, arg_params, aux_params)`` after each
        epoch, before validation (`rm.callback.do_checkpoint`, ...).
    batch_end_callback : callable or list of callables, default None
        Called with a `BatchEndParam` after each batch (`rm.callback.Speedometer`, ...).
    kvstore : str or KVStore, default 'local'
        How gradients of several devices meet: 'local', 'device', 'dist_sync',
        'dist_async' or None (see the kvstore table in docs/).
    optimizer : str or Optimizer, default 'sgd'
    optimizer_params : dict or tuple of pairs, default (('learning_rate', 0.01),)
        Keyword arguments of the optimizer when `optimizer` is a name.
    eval_end_callback : callable or list of callables, default None
        Called with a `BatchEndParam` after each validation pass.
    eval_batch_end_callback : callable or list of callables, default None
        Called with a `BatchEndParam` after each validation batch.
    initializer : Initializer, default Uniform(scale=0.01)
        Fills the parameters `arg_params`/`aux_params` do not give.
    arg_params, aux_params : dict of str to array, default None
        Starting parameter values (e.g. from `rm.model.load_checkpoint`).
    allow_missing : bool, default False
        Let `arg_params`/`aux_params` miss names, which `initializer` then fills.
    force_rebind : bool, default False
        Bind again even if the module is already bound.
    force_init : bool, default False
        Initialise parameters (and the optimizer) again even if already done.
    begin_epoch : int, default 0
        The first epoch's number; resume a run with the checkpoint's number.
    num_epoch : int
        Train until this epoch number (exclusive). Required.
    validation_metric : str or EvalMetric, default None
        The metric for `eval_data`; None means `eval_metric`.
    monitor : Monitor, default None
        Installed on the executors to print intermediate values.
    sparse_row_id_fn : callable, default None
        MXNet's sparse row-id hook; raymod has no sparse arrays, so only
        modules that override `prepare` use it.
    callbacks : list of FitCallback, default None
        raymod's callbacks that follow the whole fit (hooks at train, epoch
        and batch begin/end, the epoch's end coming after validation):
        `rm.callback.TrainingProgress`, `rm.callback.HistoryWriter`,
        `rm.contrib.tensorboard.LogMetricsCallback`, the Ray Tune reporter.
    max_worker_restarts : int, default 3
        On Ray workers, how many times a lost worker is replaced and the
        batches since the last snapshot replayed; 0: a lost worker ends fit.
    """

    eval_metric: Any = "acc"
    epoch_end_callback: Any = None
    batch_end_callback: Any = None
    kvstore: Any = "local"
    optimizer: Any = "sgd"
    optimizer_params: Any = (("learning_rate", 0.01),)
    eval_end_callback: Any = None
    eval_batch_end_callback: Any = None
    initializer: Any = field(default_factory=_default_initializer)
    arg_params: Optional[dict] = None
    aux_params: Optional[dict] = None
    allow_missing: bool = False
    force_rebind: bool = False
    force_init: bool = False
    begin_epoch: int = 0
    num_epoch: Optional[int] = None
    validation_metric: Any = None
    monitor: Any = None
    sparse_row_id_fn: Any = None
    callbacks: Any = None
    max_worker_restarts: int = 3

    def __post_init__(self):
        if isinstance(self.max_worker_restarts, bool) or \
                not isinstance(self.max_worker_restarts, int) or self.max_worker_restarts < 0:
            raise ValueError(f"max_worker_restarts must be an int >= 0, received "
                             f"{self.max_worker_restarts!r}")
        if not isinstance(self.begin_epoch, int) or self.begin_epoch < 0:
            raise ValueError(f"begin_epoch must be an int >= 0, received {self.begin_epoch!r}")
        if self.num_epoch is not None and (not isinstance(self.num_epoch, int)
                                           or self.num_epoch < 0):
            raise ValueError(f"num_epoch must be an int >= 0, received {self.num_epoch!r}")

    def replace(self, **changes):
        """A copy with `changes` applied (dataclasses.replace)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls):
        """The field names, in fit's argument order."""
        return [f.name for f in dataclasses.fields(cls)]
