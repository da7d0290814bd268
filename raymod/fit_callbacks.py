"""Callbacks that follow a whole `fit`: `FitCallback`, `HistoryWriter`.

MXNet's callbacks each see one moment (a batch's end, an epoch's end before
validation). A `FitCallback` passed as ``fit(..., callbacks=[...])`` sees
them all, and its `on_epoch_end` comes after validation with the epoch's
complete record in the `TrainingHistory`, which is what progress lines,
history files, TensorBoard and Ray Tune need. Every hook is optional.
"""
import logging

__all__ = ["FitCallback", "HistoryWriter"]

HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end", "on_train_end")


class FitCallback:
    """Base class of `fit(callbacks=[...])` entries; override the hooks you need.

    Hooks, in the order `fit` calls them:

    - ``on_train_begin(module, params)``: the module is bound, its parameters
      and optimizer initialised; `params` is the `FitParams` of this fit.
    - ``on_epoch_begin(epoch)``.
    - ``on_batch_end(param)``: a `BatchEndParam`, after the batch-end callbacks.
    - ``on_epoch_end(epoch, history)``: after validation; ``history[-1]`` is
      this epoch's `EpochRecord`.
    - ``on_train_end(history)``: after the last epoch, and also when fit
      stops on an error (the error then propagates).
    """

    def on_train_begin(self, module, params):
        """Before the first epoch: `module` is bound and initialised; `params` is the FitParams."""

    def on_epoch_begin(self, epoch):
        """Before the epoch's first batch."""

    def on_batch_end(self, param):
        """After each training batch, with its `BatchEndParam`."""

    def on_epoch_end(self, epoch, history):
        """After validation; ``history[-1]`` is this epoch's `EpochRecord`."""

    def on_train_end(self, history):
        """After the last epoch, or when fit stops on an error."""


class HistoryWriter(FitCallback):
    """Write the training history to `fname` after every epoch (CSV or JSON lines).

    The whole file is rewritten atomically each epoch, so it is complete at any
    moment and works on object stores (``s3://``, ``gs://``) where appending
    is not possible.

    Parameters
    ----------
    fname : str
        A local path or fsspec URL ending in ``.csv`` or ``.jsonl``, e.g.
        ``runs/mlp-history.csv`` beside the ``runs/mlp-NNNN.params`` checkpoints.
    format : {'csv', 'jsonl'}, optional
        Overrides the guess from the extension.
    """

    def __init__(self, fname, format=None):  # noqa: A002
        from .history import _format_of
        self.fname = fname
        self.format = _format_of(fname, format)   # a bad name fails here, before training

    def on_epoch_end(self, epoch, history):
        history.save(self.fname, self.format)


class FitCallbackList:
    """The `callbacks` of one fit, validated up front and called in order."""

    def __init__(self, callbacks):
        if callbacks is None:
            callbacks = []
        elif not isinstance(callbacks, (list, tuple)):
            callbacks = [callbacks]
        for i, cb in enumerate(callbacks):
            if not any(callable(getattr(cb, hook, None)) for hook in HOOKS):
                hint = (" (a plain function is a batch_end_callback or epoch_end_callback)"
                        if callable(cb) else "")
                raise TypeError(f"callbacks[{i}] must be a FitCallback (an object with any of "
                                f"{', '.join(HOOKS)}), received {type(cb).__name__}{hint}")
        self.callbacks = list(callbacks)

    def _call(self, hook, *args):
        for cb in self.callbacks:
            method = getattr(cb, hook, None)
            if method is not None:
                method(*args)

    def train_begin(self, module, params):
        self._call("on_train_begin", module, params)

    def epoch_begin(self, epoch):
        self._call("on_epoch_begin", epoch)

    def batch_end_callbacks(self):
        """The `on_batch_end` methods, to run after fit's own batch-end callbacks."""
        return [cb.on_batch_end for cb in self.callbacks
                if callable(getattr(cb, "on_batch_end", None))
                and getattr(type(cb), "on_batch_end", None) is not FitCallback.on_batch_end]

    def epoch_end(self, epoch, history):
        self._call("on_epoch_end", epoch, history)

    def train_end(self, history, error=None):
        """`on_train_end` for all; while `error` propagates, a hook's own error is only logged."""
        if error is None:
            self._call("on_train_end", history)
            return
        for cb in self.callbacks:
            method = getattr(cb, "on_train_end", None)
            if method is None:
                continue
            try:
                method(history)
            except Exception:  # noqa: BLE001  (the training error is the one to raise)
                logging.getLogger(__name__).exception(
                    "%s.on_train_end failed while fit was stopping on %s",
                    type(cb).__name__, type(error).__name__)
