"""fit's TrainingHistory, fit(callbacks=[...]), HistoryWriter, fit's documented defaults."""
import inspect
import json
import math
import pydoc

import numpy as np
import pytest

import raymod as rm
from raymod.callback import FitCallback, HistoryWriter
from raymod.history import EpochRecord, TrainingHistory


def _data(n=96, features=6, seed=0, batch_size=16):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    return (rm.io.NDArrayIter(x, y, batch_size=batch_size, shuffle=False),
            rm.io.NDArrayIter(x[:48], y[:48], batch_size=batch_size))


def _module():
    data = rm.sym.Variable("data")
    net = rm.sym.FullyConnected(data, num_hidden=2, name="fc")
    return rm.mod.Module(rm.sym.SoftmaxOutput(net, name="softmax"), placement="in_process")


def _fit(mod, train, val, **kwargs):
    kwargs.setdefault("num_epoch", 3)
    return mod.fit(train, eval_data=val, optimizer_params={"learning_rate": 0.5},
                   initializer=rm.init.Xavier(), **kwargs)


class Recorder(FitCallback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, module, params):
        self.calls.append(("train_begin", module.binded and module.optimizer_initialized,
                           params.num_epoch))

    def on_epoch_begin(self, epoch):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_end(self, param):
        self.calls.append(("batch_end", param.epoch, param.nbatch))

    def on_epoch_end(self, epoch, history):
        self.calls.append(("epoch_end", epoch, len(history), sorted(history[-1].val)))

    def on_train_end(self, history):
        self.calls.append(("train_end", len(history)))


def test_fit_returns_and_keeps_every_epochs_metrics_and_times():
    train, val = _data()
    mod = _module()
    history = _fit(mod, train, val, eval_metric=["acc", "ce"])
    assert history is mod.history and isinstance(history, TrainingHistory)
    assert history.epochs == [0, 1, 2]
    assert history.metric_names("train") == ["accuracy", "cross-entropy"]
    assert history.metric_names("val") == ["accuracy", "cross-entropy"]
    for record in history:
        assert record.train_time > 0 and record.val_time > 0
    # The recorded values are what score/the metric give, not approximations.
    (name, acc), _ = mod.score(val, ["acc", "ce"])
    assert history[-1].val["accuracy"] == pytest.approx(acc)
    assert history.metric("cross-entropy", "train")[0] > history.metric("cross-entropy",
                                                                        "train")[-1]


def test_history_numbers_epochs_from_begin_epoch_and_has_no_val_without_eval_data():
    train, _ = _data()
    mod = _module()
    history = mod.fit(train, begin_epoch=2, num_epoch=4)
    assert history.epochs == [2, 3]
    assert all(r.val == {} and r.val_time is None for r in history)
    assert history.columns() == ["epoch", "train_time", "val_time", "train-accuracy"]


def test_callback_hooks_come_in_order_with_the_epoch_end_after_validation():
    train, val = _data()
    recorder = Recorder()
    _fit(_module(), train, val, num_epoch=2, callbacks=[recorder])
    batches = [("batch_end", e, b) for e in range(2) for b in range(6)]
    assert recorder.calls == (
        [("train_begin", True, 2), ("epoch_begin", 0)] + batches[:6]
        + [("epoch_end", 0, 1, ["accuracy"]), ("epoch_begin", 1)] + batches[6:]
        + [("epoch_end", 1, 2, ["accuracy"]), ("train_end", 2)])


def test_callbacks_run_after_mxnet_batch_end_callbacks_and_through_fit_params():
    train, val = _data()
    order = []
    recorder = Recorder()
    recorder.on_batch_end = lambda param: order.append("fit callback")
    params = rm.mod.FitParams(num_epoch=1, callbacks=[recorder],
                              batch_end_callback=lambda param: order.append("mxnet"))
    _module().fit(train, eval_data=val, params=params)
    assert order[:4] == ["mxnet", "fit callback", "mxnet", "fit callback"]


def test_on_train_end_runs_when_fit_fails_and_the_error_propagates():
    train, val = _data()
    recorder = Recorder()

    def boom(param):
        if param.epoch == 1 and param.nbatch == 2:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        _fit(_module(), train, val, batch_end_callback=boom, callbacks=[recorder])
    assert recorder.calls[-1] == ("train_end", 1)


def test_a_plain_function_as_fit_callback_is_refused_before_any_work():
    train, val = _data()
    mod = _module()
    with pytest.raises(TypeError, match=r"callbacks\[0\] must be a FitCallback .* received "
                                        r"function \(a plain function is a batch_end_callback"):
        _fit(mod, train, val, callbacks=[lambda p: None])
    assert not mod.binded


def test_history_writer_rewrites_the_file_after_every_epoch(tmp_path):
    train, val = _data()
    fname = tmp_path / "mlp-history.csv"
    seen = []

    class Peek(FitCallback):
        def on_epoch_end(self, epoch, history):
            seen.append(fname.read_text().count("\n"))

    history = _fit(_module(), train, val, callbacks=[HistoryWriter(str(fname)), Peek()])
    assert seen == [2, 3, 4]           # header + one line per epoch, complete each time
    back = TrainingHistory.load(str(fname))
    assert [r.as_json() for r in back] == [r.as_json() for r in history]
    with pytest.raises(ValueError, match="cannot tell the history format of 'h.txt'"):
        HistoryWriter("h.txt")


def _sample_history():
    return TrainingHistory([
        EpochRecord(0, {"accuracy": 0.5, "cross-entropy": 1.25}, {"accuracy": 0.625}, 0.5, 0.25),
        EpochRecord(1, {"accuracy": 0.75, "cross-entropy": 0.5}, {}, 0.375, None),
    ])


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_csv_and_json_lines_round_trip(tmp_path, ext):
    history = _sample_history()
    fname = str(tmp_path / f"h.{ext}")
    history.save(fname)
    back = TrainingHistory.load(fname)
    assert [r.as_json() for r in back] == [r.as_json() for r in history]
    assert math.isnan(back.metric("accuracy", "val")[1])


def test_file_layouts_are_as_documented():
    history = _sample_history()
    assert history.to_csv().splitlines() == [
        "epoch,train_time,val_time,train-accuracy,train-cross-entropy,val-accuracy",
        "0,0.5,0.25,0.5,1.25,0.625",
        "1,0.375,,0.75,0.5,"]
    first = json.loads(history.to_jsonl().splitlines()[0])
    assert first == {"epoch": 0, "train": {"accuracy": 0.5, "cross-entropy": 1.25},
                     "val": {"accuracy": 0.625}, "train_time": 0.5, "val_time": 0.25}


def test_bad_history_files_name_the_problem(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a training history CSV"):
        TrainingHistory.load(str(bad))
    bad.write_text("epoch,train_time,val_time,train-accuracy\n0,1.0,\n")
    with pytest.raises(ValueError, match="line 2 has 3 fields, the header 4"):
        TrainingHistory.load(str(bad))
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        _sample_history().metric("accuracy", "test")


def test_help_of_fit_shows_the_real_defaults_and_every_argument():
    text = pydoc.render_doc(rm.mod.Module.fit, renderer=pydoc.plaintext)
    assert "<FitParams default>" not in text
    for shown in ("eval_metric='acc'", "kvstore='local'", "optimizer='sgd'",
                  "optimizer_params=(('learning_rate', 0.01),)",
                  "initializer=Uniform(scale=0.01)", "begin_epoch=0", "callbacks=None"):
        assert shown in text
    doc = inspect.getdoc(rm.mod.Module.fit)
    for name in rm.mod.FitParams.field_names():
        assert f"{name} :" in doc or f", {name} :" in doc or f"{name}, " in doc, name
    assert "TrainingHistory" in doc


def test_fit_params_fields_are_documented_with_their_defaults():
    doc = inspect.getdoc(rm.mod.FitParams)
    defaults = rm.mod.FitParams()
    for name in rm.mod.FitParams.field_names():
        assert name in doc, name
    assert "default 'acc'" in doc and "default 'local'" in doc
    assert "default Uniform(scale=0.01)" in doc and repr(defaults.initializer) == \
        "Uniform(scale=0.01)"


def test_the_signature_defaults_are_the_ones_fit_uses():
    sig = inspect.signature(rm.mod.Module.fit)
    defaults = rm.mod.FitParams()
    for name in rm.mod.FitParams.field_names():
        shown = sig.parameters[name].default
        actual = getattr(defaults, name)
        assert (repr(shown) == repr(actual)), name
