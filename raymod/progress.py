"""`TrainingProgress`: a progress bar per epoch on a terminal, one line per epoch elsewhere.

Pass it to fit: ``mod.fit(train, ..., callbacks=[rm.callback.TrainingProgress()])``.
On a terminal it redraws one line while the epoch runs (batches done, samples
per second, the running training metric) and leaves a summary line when the
epoch ends; under CI, ``ray job submit`` or a redirect it writes only the
summary line, once per epoch. MXNet's `Speedometer` and `ProgressBar` are
unchanged beside it.
"""
import logging
import sys
import time

from .fit_callbacks import FitCallback

__all__ = ["TrainingProgress"]


class TrainingProgress(FitCallback):
    """Progress of every epoch of a fit.

    Parameters
    ----------
    stream : file-like, default sys.stderr
        Where to write.
    bar : bool, optional
        True draws the bar, False writes one line per epoch; by default the
        bar is drawn when `stream` is a terminal.
    interval : float, default 0.5
        Seconds between redraws of the bar. Each redraw reads the training
        metric, which waits for the device workers to catch up, so the
        samples/s shown is of finished work.
    width : int, default 30
        Characters in the bar.

    Examples
    --------
    On a terminal::

        Epoch[3] 4/30 [###############---------------] 12/23  5,210 samples/s  accuracy=0.9612

    and at the epoch's end (also the only line when not on a terminal)::

        Epoch[3] 4/30  23 batches in 0.28 s  5,120 samples/s  train accuracy=0.9625  val ...
    """

    def __init__(self, stream=None, bar=None, interval=0.5, width=30):
        if float(interval) < 0:
            raise ValueError(f"interval must be >= 0 seconds, received {interval!r}")
        if int(width) < 1:
            raise ValueError(f"width must be a positive int, received {width!r}")
        self.stream = stream
        self.bar = bar
        self.interval = float(interval)
        self.width = int(width)
        self.batch_size = None
        self.num_epoch = None
        self.total = None          # batches per epoch, known after the first epoch
        self._epoch = 0
        self._nbatch = 0
        self._tic = 0.0
        self._last_draw = 0.0
        self._drawn = 0            # characters of the bar now on the line
        self._log_filter = None

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, module, params):
        if self.stream is None:
            self.stream = sys.stderr
        if self.bar is None:
            self.bar = bool(getattr(self.stream, "isatty", lambda: False)())
        self.num_epoch = params.num_epoch
        self.batch_size = _batch_size(module)
        if self.bar:
            self._log_filter = _ClearBeforeLogging(self)
            for handler in logging.getLogger().handlers:
                handler.addFilter(self._log_filter)

    def on_epoch_begin(self, epoch):
        self._epoch = epoch
        self._nbatch = 0
        self._tic = self._last_draw = time.perf_counter()

    def on_batch_end(self, param):
        self._nbatch = param.nbatch + 1
        if not self.bar:
            return
        now = time.perf_counter()
        if now - self._last_draw < self.interval:
            return
        pairs = param.eval_metric.get_global_name_value() if param.eval_metric else []
        elapsed = time.perf_counter() - self._tic      # after the metric read: finished work
        self._last_draw = now
        self._draw(self._bar_line(elapsed, pairs))

    def on_epoch_end(self, epoch, history):
        record = history[-1]
        if self._nbatch:
            self.total = self._nbatch
        self.clear()
        self._write(self._summary_line(record) + "\n")

    def on_train_end(self, history):
        self.clear()
        if self._log_filter is not None:
            for handler in logging.getLogger().handlers:
                handler.removeFilter(self._log_filter)
            self._log_filter = None

    # ------------------------------------------------------------------ lines
    def _head(self):
        of = f" {self._epoch + 1}/{self.num_epoch}" if self.num_epoch else ""
        return f"Epoch[{self._epoch}]{of}"

    def _speed(self, batches, seconds):
        if not self.batch_size or seconds <= 0:
            return ""
        return f"  {batches * self.batch_size / seconds:,.0f} samples/s"

    def _bar_line(self, elapsed, pairs):
        if self.total:
            done = min(self._nbatch, self.total)
            filled = int(round(self.width * done / self.total))
            progress = f" [{'#' * filled}{'-' * (self.width - filled)}] {done}/{self.total}"
        else:
            progress = f"  {self._nbatch} batches"
        metrics = "".join(f"  {name}={value:.4f}" for name, value in pairs)
        return self._head() + progress + self._speed(self._nbatch, elapsed) + metrics

    def _summary_line(self, record):
        parts = [self._head(), f"  {self._nbatch} batches in {record.train_time:.2f} s",
                 self._speed(self._nbatch, record.train_time)]
        parts += [f"  train {name}={value:.4f}" for name, value in record.train.items()]
        parts += [f"  val {name}={value:.4f}" for name, value in record.val.items()]
        return "".join(parts)

    # ------------------------------------------------------------------ the terminal line
    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()

    def _draw(self, line):
        pad = " " * max(0, self._drawn - len(line))
        self._write("\r" + line + pad)
        self._drawn = len(line)

    def clear(self):
        """Blank the bar's line (before anything else is written to the terminal)."""
        if self._drawn:
            self._write("\r" + " " * self._drawn + "\r")
            self._drawn = 0


class _ClearBeforeLogging(logging.Filter):
    """A handler filter that blanks the bar before a log record is written over it."""

    def __init__(self, progress):
        super().__init__()
        self.progress = progress

    def filter(self, record):
        self.progress.clear()
        return True


def _batch_size(module):
    """Samples per batch from the module's first data shape (None when unknown)."""
    try:
        desc = module.data_shapes[0]
    except Exception:  # noqa: BLE001  (a module without data shapes shows no samples/s)
        return None
    shape = desc[1]
    layout = getattr(desc, "layout", None) or "N"
    axis = layout.find("N") if "N" in layout else 0
    return int(shape[axis]) if len(shape) > axis else None
