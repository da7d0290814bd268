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


def module_checkpoint(mod, prefix, period=1, save_optimizer_states=False):
    """Epoch-end callback: ``mod.save_checkpoint(prefix, epoch + 1, save_optimizer_states)``.

    Parameters
    ----------
    mod : BaseModule
        The module to checkpoint.
    prefix : str
        File prefix.
    period : int, default 1
        Checkpoint after every `period` epochs (values below 1 mean 1).
    save_optimizer_states : bool, default False
        Also save the optimizer states.
    """
    period = _period(period)

    def _callback(iter_no, sym=None, arg=None, aux=None):  # pylint: disable=unused-argument
        if (iter_no + 1) % period == 0:
            mod.save_checkpoint(prefix, iter_no + 1, save_optimizer_states)
    return _callback


def do_checkpoint(prefix, period=1):
    """Epoch-end callback saving ``prefix-symbol.json`` and ``prefix-%04d.params``.

    Checkpoint numbers are 1-based: after epoch 0 the file is ``prefix-0001.params``.

    Parameters
    ----------
    prefix : str
        File prefix.
    period : int, default 1
        Checkpoint after every `period` epochs (values below 1 mean 1).
    """
    period = _period(period)

    def _callback(iter_no, sym, arg, aux):
        if (iter_no + 1) % period == 0:
            from .model import save_checkpoint  # model imports this module's BatchEndParam
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
            self.tic = time.time()
            return
        if count % self.frequent != 0:
            return
        try:
            speed = self.frequent * self.batch_size / (time.time() - self.tic)
        except ZeroDivisionError:
            speed = float('inf')
        if param.eval_metric is not None:
            name_value = param.eval_metric.get_name_value()
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
        self.tic = time.time()


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
