"""TensorBoard event files of training metrics (MXNet's `mx.contrib.tensorboard`).

Needs tensorboardX (``pip install 'raymod[tensorboard]'``); view the files
with ``tensorboard --logdir DIR`` (TensorBoard itself is a separate install).

Two ways to use `LogMetricsCallback`:

- MXNet's: as a batch-end or eval-end callback, logging the metric's
  current values at every call::

      mod.fit(train, eval_data=val, num_epoch=10,
              batch_end_callback=LogMetricsCallback("logs/train"),
              eval_end_callback=LogMetricsCallback("logs/eval"))

- raymod's: in ``fit(callbacks=[LogMetricsCallback("logs")])``, logging
  each epoch's training metrics under ``logs/train`` and validation metrics
  under ``logs/val`` with the epoch as the step, so TensorBoard draws both
  curves of a metric in one chart.
"""
import os

__all__ = ["LogMetricsCallback"]


def _summary_writer_class():
    try:
        from tensorboardX import SummaryWriter
    except ImportError as err:
        raise ImportError("LogMetricsCallback needs tensorboardX: "
                          "pip install 'raymod[tensorboard]'") from err
    return SummaryWriter


class LogMetricsCallback:
    """Write metric values as TensorBoard scalars.

    Parameters
    ----------
    logging_dir : str
        Directory of the event files (created if missing).
    prefix : str, optional
        Prepended to every metric name as ``<prefix>-<name>``, e.g. to tell
        two runs' curves apart in one chart.
    flush_secs : int, default 10
        How often buffered events reach the file; `close` flushes the rest.

    Notes
    -----
    Called as MXNet's callback (``cb(BatchEndParam)``), it logs
    ``param.eval_metric.get_name_value()`` at step 0, 1, 2, ... of its own
    calls (MXNet gave no step). Every call reads the metric, which on Ray
    workers waits for the batches in flight; as a batch-end callback that
    is a barrier per batch, so prefer ``fit(callbacks=[...])`` (per epoch) or
    eval-end use for speed.
    """

    def __init__(self, logging_dir, prefix=None, flush_secs=10):
        if not isinstance(logging_dir, (str, os.PathLike)):
            raise TypeError(f"logging_dir must be a path, received {type(logging_dir).__name__}")
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str or None, received {type(prefix).__name__}")
        self._writer_class = _summary_writer_class()     # missing package: fail now
        self.logging_dir = os.fspath(logging_dir)
        self.prefix = prefix
        self.flush_secs = int(flush_secs)
        self.step = 0
        self._writers = {}

    # ------------------------------------------------------------------ writers
    def _writer(self, subdir=""):
        if subdir not in self._writers:
            self._writers[subdir] = self._writer_class(
                os.path.join(self.logging_dir, subdir) if subdir else self.logging_dir,
                flush_secs=self.flush_secs)
        return self._writers[subdir]

    @property
    def summary_writer(self):
        """The tensorboardX SummaryWriter of `logging_dir` (MXNet's attribute)."""
        return self._writer()

    def _tag(self, name):
        return f"{self.prefix}-{name}" if self.prefix is not None else name

    def flush(self):
        for writer in self._writers.values():
            writer.flush()

    def close(self):
        """Flush and close the event files (fit's end does this when used in `callbacks`)."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    # ------------------------------------------------------------------ MXNet's callback
    def __call__(self, param):
        """Log the metric's current values (a batch-end or eval-end callback)."""
        if param.eval_metric is None:
            return
        writer = self._writer()
        for name, value in param.eval_metric.get_name_value():
            writer.add_scalar(self._tag(name), float(value), global_step=self.step)
        self.step += 1

    def node_histogram_visualization(self, prefix=None, node_names=None, bins="auto"):
        """An epoch-end callback logging histograms of the parameters (MXNet's).

        Parameters
        ----------
        prefix : str, optional
            Prepended to each parameter's name as ``<prefix>-<name>``.
        node_names : list of str, optional
            The parameters to log; all (arguments and auxiliary states) when None.
        bins : str or int, default 'auto'
            numpy.histogram's bins.
        """
        def _callback(iter_no, sym=None, arg=None, aux=None):  # pylint: disable=unused-argument
            writer = self._writer()
            for params in (arg or {}, aux or {}):
                for name, value in params.items():
                    if node_names is None or name in node_names:
                        tag = f"{prefix}-{name}" if prefix is not None else name
                        writer.add_histogram(tag, _host(value), global_step=iter_no,
                                             bins=bins)
        return _callback

    # ------------------------------------------------------------------ fit(callbacks=[...])
    def on_epoch_end(self, epoch, history):
        """Log the epoch's training and validation metrics at step `epoch`."""
        record = history[-1]
        for split, values in (("train", record.train), ("val", record.val)):
            if not values:
                continue
            writer = self._writer(split)
            for name, value in values.items():
                writer.add_scalar(self._tag(name), float(value), global_step=epoch)
        self.flush()

    def on_train_end(self, history):
        self.close()


def _host(value):
    """A numpy array of a parameter (NDArray, numpy or cupy)."""
    import numpy as np
    if hasattr(value, "asnumpy"):
        return np.asarray(value.asnumpy())
    if type(value).__module__.split(".")[0] == "cupy":
        return value.get()
    return np.asarray(value)
