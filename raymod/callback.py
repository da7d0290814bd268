"""Training callbacks (MXNet 1.x's `mx.callback`) and `BatchEndParam`.

Batch-end callbacks receive a `BatchEndParam`; epoch-end callbacks are called
as ``cb(epoch, symbol, arg_params, aux_params)``. Messages go to the root
`logging` module with MXNet's exact formats (configure logging to see them).

raymod's own additions follow a whole fit through ``fit(callbacks=[...])``:
`FitCallback` (the base class), `TrainingProgress` (a progress bar per epoch)
and `HistoryWriter` (the training history as CSV or JSON lines).
"""
import logging
import math
import time
from collections import namedtuple

from .fit_callbacks import FitCallback, HistoryWriter
from .progress import TrainingProgress

__all__ = ["BatchEndParam", "module_checkpoint", "do_checkpoint", "log_train_metric",
           "Speedometer", "ProgressBar", "LogValidationMetricsCallback",
           "FitCallback", "HistoryWriter", "TrainingProgress"]

# MXNet defines it in mx.model (the typename has an "s"); raymod.model re-exports it.
BatchEndParam = namedtuple('BatchEndParams', ['epoch', 'nbatch', 'eval_metric', 'locals'])


def _period(period):
    return int(max(1, period))


def _states_name(prefix, epoch):
    return f"{prefix}-{epoch:04d}.states"


def _require_method(obj, method, what):
    if not callable(getattr(obj, method, None)):
        raise TypeError(f"{what} must be a module with a {method}() method (a Module), "
                        f"received {type(obj).__name__}")


def _save_optimizer_states(module, prefix, epoch):
    state_name = _states_name(prefix, epoch)
    module.save_optimizer_states(state_name)
    logging.info('Saved optimizer state to "%s"', state_name)


def module_checkpoint(mod, prefix, period=1, save_optimizer_states=False):
    """Epoch-end callback: ``mod.save_checkpoint(prefix, epoch + 1)``, optionally with states.

    With `save_optimizer_states` the states go to ``prefix-%04d.states``
    first and the checkpoint (``.params`` last) after, each file written
    atomically: a ``.params`` file on disk means its whole checkpoint is, so a
    driver killed while saving loses at most the epoch it was saving.
    (MXNet passes the flag to ``mod.save_checkpoint``, which writes the
    ``.states`` after the ``.params``; the files are the same.)

    Parameters
    ----------
    mod : BaseModule
        The module to checkpoint (``save_checkpoint``; with
        `save_optimizer_states`, also ``save_optimizer_states``).
    prefix : str
        File prefix (a local path or an fsspec URL).
    period : int, default 1
        Checkpoint after every `period` epochs (values below 1 mean 1).
    save_optimizer_states : bool, default False
        Also save the optimizer states (momentum, Adam's moments, update counts).

    Raises
    ------
    TypeError
        When `mod` cannot save what was asked (a BucketingModule has no
        ``save_optimizer_states``: MXNet silently saved none).
    """
    period = _period(period)
    _require_method(mod, "save_checkpoint", "module_checkpoint: mod")
    if save_optimizer_states:
        _require_method(mod, "save_optimizer_states",
                        "module_checkpoint(save_optimizer_states=True): mod")

    def _callback(iter_no, sym=None, arg=None, aux=None):  # pylint: disable=unused-argument
        if (iter_no + 1) % period == 0:
            if save_optimizer_states:
                _save_optimizer_states(mod, prefix, iter_no + 1)
            mod.save_checkpoint(prefix, iter_no + 1)
    return _callback


def do_checkpoint(prefix, period=1, save_optimizer_states=False, module=None):
    """Epoch-end callback saving ``prefix-symbol.json`` and ``prefix-%04d.params``.

    Checkpoint numbers are 1-based: after epoch 0 the file is ``prefix-0001.params``.
    With `save_optimizer_states` it also saves `module`'s optimizer states to
    ``prefix-%04d.states``, before the ``.params``. Every file is written
    atomically and the ``.params`` comes last, so a ``.params`` file on disk
    means its whole checkpoint is: a driver killed while saving loses at most
    the epoch it was saving, and ``Module.load(prefix, epoch,
    load_optimizer_states=True)`` of any listed epoch works.

    Parameters
    ----------
    prefix : str
        File prefix (a local path or an fsspec URL).
    period : int, default 1
        Checkpoint after every `period` epochs (values below 1 mean 1).
    save_optimizer_states : bool, default False
        Also save the optimizer states (raymod addition; MXNet's callback
        sees only the parameters, so it needs `module`).
    module : Module, default None
        The module being fitted, whose optimizer states are saved; required
        with `save_optimizer_states`.

    Raises
    ------
    ValueError
        `save_optimizer_states` without `module`.
    TypeError
        A `module` that cannot save optimizer states.
    """
    period = _period(period)
    if save_optimizer_states:
        if module is None:
            raise ValueError("do_checkpoint(save_optimizer_states=True) needs module=, the "
                             "module being fitted (whose optimizer states are saved); "
                             "received module=None")
        _require_method(module, "save_optimizer_states", "do_checkpoint: module")

    def _callback(iter_no, sym, arg, aux):
        if (iter_no + 1) % period == 0:
            from .model import save_checkpoint  # model imports this module's BatchEndParam
            if save_optimizer_states:
                _save_optimizer_states(module, prefix, iter_no + 1)
            save_checkpoint(prefix, iter_no + 1, sym, arg, aux)
    return _callback


def log_train_metric(period, auto_reset=False):
    """Batch-end callback logging ``Iter[%d] Batch[%d] Train-%s=%f`` every `period` batches.

    Parameters
    ----------
    period : int
        Log when ``nbatch % period == 0``.
    auto_reset : bool, default False
        Call ``eval_metric.reset_local()`` after each log.
    """
    if int(period) < 1:
        raise ValueError(f"period must be a positive int, received {period!r}")

    def _callback(param):
        if param.nbatch % period == 0 and param.eval_metric is not None:
            name_value = param.eval_metric.get_name_value()
            for name, value in name_value:
                logging.info('Iter[%d] Batch[%d] Train-%s=%f',
                             param.epoch, param.nbatch, name, value)
            if auto_reset:
                param.eval_metric.reset_local()
    return _callback


class Speedometer:
    """Batch-end callback logging speed (and the metric) every `frequent` batches.

    The first call of an epoch (``nbatch`` lower than the previous call's) only
    starts the timer; later calls log when ``nbatch % frequent == 0``, with
    ``speed = frequent * batch_size / elapsed`` (inf when no time elapsed), then
    restart the timer.

    The speed is of finished work on every placement: the metric is read
    before the clock, both when the timer starts and when a line is logged.
    On Ray workers the driver only queues batches, and reading the metric is
    what waits for them (MXNet read the clock first, which there would count
    queued batches as done); without a metric, `raymod.nd.waitall` waits.
    The timer restarts at the clock reading of the line just logged (MXNet:
    after logging), so consecutive intervals cover the epoch's wall time.

    Parameters
    ----------
    batch_size : int
        Samples per batch.
    frequent : int, default 50
        Log every `frequent` batches.
    auto_reset : bool, default True
        Reset the metric's local statistics after each log, so each line shows
        the last `frequent` batches (``Batch [a-b]``); otherwise lines show the
        running epoch statistics (``Batch [0-b]``).
    """

    def __init__(self, batch_size, frequent=50, auto_reset=True):
        if int(frequent) < 1:
            raise ValueError(f"frequent must be a positive int, received {frequent!r}")
        self.batch_size = batch_size
        self.frequent = frequent
        self.init = False
        self.tic = 0
        self.last_count = 0
        self.auto_reset = auto_reset

    def __call__(self, param):
        count = param.nbatch
        if self.last_count > count:
            self.init = False
        self.last_count = count

        if not self.init:
            self.init = True
            _finished_work(param.eval_metric)       # the batches so far are done first
            self.tic = time.time()
            return
        if count % self.frequent != 0:
            return
        name_value = _finished_work(param.eval_metric)
        now = time.time()
        try:
            speed = self.frequent * self.batch_size / (now - self.tic)
        except ZeroDivisionError:
            speed = float('inf')
        if name_value is not None:
            pairs = sum(name_value, ())
            if self.auto_reset:
                param.eval_metric.reset_local()
                msg = 'Epoch[%d] Batch [%d-%d]\tSpeed: %.2f samples/sec'
                msg += '\t%s=%f' * len(name_value)
                logging.info(msg, param.epoch, count - self.frequent, count, speed, *pairs)
            else:
                msg = 'Epoch[%d] Batch [0-%d]\tSpeed: %.2f samples/sec'
                msg += '\t%s=%f' * len(name_value)
                logging.info(msg, param.epoch, count, speed, *pairs)
        else:
            logging.info("Iter[%d] Batch [%d]\tSpeed: %.2f samples/sec",
                         param.epoch, count, speed)
        self.tic = now


def _finished_work(metric):
    """Wait for the queued batches; the metric's values (None without a metric).

    Reading a metric waits for the workers that update it; without one,
    `waitall` waits for every module's queued calls.
    """
    if metric is not None:
        return metric.get_name_value()
    from .ndarray import waitall
    waitall()
    return None


class ProgressBar:
    """Batch-end callback logging a text progress bar of the epoch.

    Parameters
    ----------
    total : int
        Batches per epoch.
    length : int, default 80
        Characters in the bar.
    """

    def __init__(self, total, length=80):
        if total <= 0:
            raise ValueError(f"total must be a positive number of batches, received {total!r}")
        self.bar_len = length
        self.total = total

    def __call__(self, param):
        count = param.nbatch
        filled_len = int(round(self.bar_len * count / float(self.total)))
        percents = math.ceil(100.0 * count / float(self.total))
        prog_bar = '=' * filled_len + '-' * (self.bar_len - filled_len)
        logging.info('[%s] %s%s\r', prog_bar, percents, '%')


class LogValidationMetricsCallback:
    """Eval-end callback logging ``Epoch[%d] Validation-%s=%f`` for each metric value."""

    def __call__(self, param):
        if not param.eval_metric:
            return
        name_value = param.eval_metric.get_name_value()
        for name, value in name_value:
            logging.info('Epoch[%d] Validation-%s=%f', param.epoch, name, value)
