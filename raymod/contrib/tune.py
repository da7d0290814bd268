"""Ray Tune: report each epoch of a fit to the current trial, checkpoints through Tune.

Inside a Tune trainable (a function Tune runs once per trial)::

    from raymod.contrib.tune import TuneReportCallback, load_checkpoint

    def trainable(config):
        mod = rm.mod.Module(net(config["hidden"]), context=rm.cpu(0))
        resume = load_checkpoint()                       # None on a fresh trial
        begin, args, auxs = (resume.epoch, resume.arg_params, resume.aux_params) \\
            if resume else (0, None, None)
        mod.fit(train, eval_data=val, num_epoch=10, begin_epoch=begin,
                arg_params=args, aux_params=auxs,
                optimizer_params={"learning_rate": config["lr"]},
                callbacks=[TuneReportCallback(checkpoint=True)])

    tuner = ray.tune.Tuner(trainable, param_space={...},
                           tune_config=ray.tune.TuneConfig(metric="val-accuracy", mode="max"))

The trial's module puts its device workers on the same Ray cluster as the
trial. This file is the only one outside ``raymod/parallel`` that imports
Ray (tests/test_layers.py checks that); it needs ``pip install 'raymod[tune]'``.
"""
import json
import os
import tempfile
from collections import namedtuple

__all__ = ["TuneReportCallback", "load_checkpoint", "TuneCheckpoint", "ensure_ray"]

_META = "raymod_checkpoint.json"
_PREFIX = "module"

TuneCheckpoint = namedtuple("TuneCheckpoint", ["epoch", "symbol", "arg_params", "aux_params"])
TuneCheckpoint.__doc__ = """A module checkpoint read back from Tune: resume with
``fit(begin_epoch=epoch, arg_params=arg_params, aux_params=aux_params)``."""


def _tune():
    try:
        from ray import tune
    except ImportError as err:
        raise ImportError("the Ray Tune adapter needs Ray Tune: pip install 'raymod[tune]'") \
            from err
    return tune


def ensure_ray():
    """Join the cluster (RAY_ADDRESS) or start raymod's embedded local Ray; returns `ray`.

    Call it before building a `ray.tune.Tuner`, so Tune runs on the same Ray
    raymod's device workers use, started with raymod's settings.
    """
    from ..parallel.runtime import ensure_ray as _ensure_ray
    return _ensure_ray()


class TuneReportCallback:
    """A `fit(callbacks=[...])` entry reporting every epoch to the current Tune trial.

    Each epoch's record becomes one ``ray.tune.report``: ``epoch``,
    ``train-<metric>`` and ``val-<metric>`` for every metric, ``train_time``
    and ``val_time`` (seconds), so a search can optimise ``val-accuracy``.

    Parameters
    ----------
    metrics : dict of str to str, optional
        Report only these, renamed: ``{"accuracy": "val-accuracy"}`` reports
        the validation accuracy as ``accuracy``. All of them by default.
    checkpoint : bool, default False
        Also hand Tune a checkpoint of the module (MXNet's ``module-symbol.json``
        and ``module-%04d.params`` files), every `checkpoint_period` epochs;
        `load_checkpoint` reads it back in a resumed or cloned trial.
    checkpoint_period : int, default 1
    """

    def __init__(self, metrics=None, checkpoint=False, checkpoint_period=1):
        if metrics is not None and not isinstance(metrics, dict):
            raise TypeError(f"metrics must be a dict of reported name to history name, "
                            f"received {type(metrics).__name__}")
        if int(checkpoint_period) < 1:
            raise ValueError(f"checkpoint_period must be a positive int, "
                             f"received {checkpoint_period!r}")
        self._tune = _tune()
        self.metrics = metrics
        self.checkpoint = bool(checkpoint)
        self.checkpoint_period = int(checkpoint_period)
        self._module = None

    def on_train_begin(self, module, params):
        self._module = module

    def epoch_metrics(self, record):
        """The dict reported for one `EpochRecord`."""
        values = {"epoch": record.epoch, "train_time": record.train_time}
        if record.val_time is not None:
            values["val_time"] = record.val_time
        values.update({f"train-{k}": v for k, v in record.train.items()})
        values.update({f"val-{k}": v for k, v in record.val.items()})
        if self.metrics is None:
            return values
        missing = [v for v in self.metrics.values() if v not in values]
        if missing:
            raise KeyError(f"TuneReportCallback metrics {missing} are not in this epoch's "
                           f"record; it has {sorted(values)}")
        return {name: values[key] for name, key in self.metrics.items()}

    def on_epoch_end(self, epoch, history):
        metrics = self.epoch_metrics(history[-1])
        if not (self.checkpoint and (epoch + 1) % self.checkpoint_period == 0):
            self._tune.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="raymod-tune-") as directory:
            self._save_module(directory, epoch + 1)
            self._tune.report(metrics,
                              checkpoint=self._tune.Checkpoint.from_directory(directory))

    def _save_module(self, directory, number):
        from ..model import save_checkpoint
        from ..fileio import atomic_write_text
        arg_params, aux_params = self._module.get_params()
        save_checkpoint(os.path.join(directory, _PREFIX), number, self._module.symbol,
                        arg_params, aux_params)
        atomic_write_text(os.path.join(directory, _META),
                          json.dumps({"prefix": _PREFIX, "epoch": number}))


def load_checkpoint(checkpoint=None):
    """The module checkpoint of a Tune checkpoint, or None when there is none.

    Parameters
    ----------
    checkpoint : ray.tune.Checkpoint, optional
        Defaults to ``ray.tune.get_checkpoint()``: the trial's latest, when
        Tune restores or clones a trial.

    Returns
    -------
    TuneCheckpoint or None
        ``epoch`` is the number of epochs done, i.e. the `begin_epoch` to resume with.
    """
    from ..model import load_checkpoint as load_module_checkpoint
    if checkpoint is None:
        checkpoint = _tune().get_checkpoint()
        if checkpoint is None:
            return None
    with checkpoint.as_directory() as directory:
        meta_path = os.path.join(directory, _META)
        if not os.path.exists(meta_path):
            raise FileNotFoundError(f"{checkpoint} holds no {_META}: it was not written by "
                                    f"TuneReportCallback(checkpoint=True)")
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        symbol, arg_params, aux_params = load_module_checkpoint(
            os.path.join(directory, meta["prefix"]), meta["epoch"])
    return TuneCheckpoint(meta["epoch"], symbol, arg_params, aux_params)
