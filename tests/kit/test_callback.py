"""raymod.callback: MXNet's exact log lines, timing rule and checkpoint schedule."""
import io
import logging
import re
import sys
import time
import types

import pytest

from raymod import callback
from raymod.callback import BatchEndParam, TrainingProgress


class FakeMetric:
    """The slice of MXNet's EvalMetric API callbacks use."""

    def __init__(self, pairs):
        self.pairs = pairs
        self.local_resets = 0

    def get_name_value(self):
        return list(self.pairs)

    def reset_local(self):
        self.local_resets += 1


class FakeClock:
    def __init__(self, times):
        self.times = list(times)

    def time(self):
        return self.times.pop(0)


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.INFO)

    def messages():
        return [r.getMessage() for r in caplog.records]
    return messages


def _param(nbatch, metric=None, epoch=0):
    return BatchEndParam(epoch=epoch, nbatch=nbatch, eval_metric=metric, locals={})


def test_batch_end_param_is_mxnets_namedtuple():
    p = _param(3)
    assert type(p).__name__ == "BatchEndParams"
    assert p._fields == ("epoch", "nbatch", "eval_metric", "locals")


def test_speedometer_auto_reset(monkeypatch, log):
    # timer starts at batch 0 (t=10), logs at 2 (t=12) and 4 (t=14.5): one reading
    # per line, which also restarts the timer
    monkeypatch.setattr(callback, "time", FakeClock([10.0, 12.0, 14.5]))
    metric = FakeMetric([("accuracy", 0.5), ("ce", 1.25)])
    s = callback.Speedometer(batch_size=4, frequent=2)
    for n in range(5):
        s(_param(n, metric))
    assert log() == [
        "Epoch[0] Batch [0-2]\tSpeed: 4.00 samples/sec\taccuracy=0.500000\tce=1.250000",
        "Epoch[0] Batch [2-4]\tSpeed: 3.20 samples/sec\taccuracy=0.500000\tce=1.250000",
    ]
    assert metric.local_resets == 2


def test_speedometer_without_reset_and_new_epoch(monkeypatch, log):
    monkeypatch.setattr(callback, "time", FakeClock([0.0, 1.0, 5.0, 7.0]))
    metric = FakeMetric([("mse", 0.125)])
    s = callback.Speedometer(batch_size=10, frequent=3, auto_reset=False)
    for n in range(4):          # epoch 0: start at 0, log at 3
        s(_param(n, metric))
    for n in range(4):          # epoch 1: nbatch went down: re-arm at 0 (t=5), log at 3
        s(_param(n, metric, epoch=1))
    assert log() == ["Epoch[0] Batch [0-3]\tSpeed: 30.00 samples/sec\tmse=0.125000",
                     "Epoch[1] Batch [0-3]\tSpeed: 15.00 samples/sec\tmse=0.125000"]
    assert metric.local_resets == 0


def test_speedometer_without_metric_and_zero_elapsed(monkeypatch, log):
    monkeypatch.setattr(callback, "time", FakeClock([3.0, 3.0]))
    s = callback.Speedometer(batch_size=2, frequent=1)
    s(_param(0))
    s(_param(1))
    assert log() == ["Iter[0] Batch [1]\tSpeed: inf samples/sec"]


def test_speedometer_first_call_mid_epoch_only_starts_timer(monkeypatch, log):
    monkeypatch.setattr(callback, "time", FakeClock([0.0, 2.0]))
    s = callback.Speedometer(batch_size=1, frequent=5)
    s(_param(5))   # the very first call never logs, even on a multiple of frequent
    s(_param(10))
    assert log() == ["Iter[0] Batch [10]\tSpeed: 2.50 samples/sec"]
    with pytest.raises(ValueError, match="frequent"):
        callback.Speedometer(1, frequent=0)


class WaitingMetric(FakeMetric):
    """get_name_value waits `seconds` for chosen calls: on Ray, reading the metric
    is where the driver waits for the batches it queued."""

    def __init__(self, pairs, seconds, waits=None):
        super().__init__(pairs)
        self.seconds, self.waits, self.reads = seconds, waits, 0

    def _wait(self):
        self.reads += 1
        if self.waits is None or self.reads in self.waits:
            time.sleep(self.seconds)

    def get_name_value(self):
        self._wait()
        return super().get_name_value()

    def get_global_name_value(self):
        self._wait()
        return super().get_name_value()


def _logged_speeds(messages):
    return [float(re.search(r"Speed: ([\d.]+|inf) samples/sec", m).group(1)) for m in messages]


@pytest.mark.parametrize("auto_reset", [True, False])
def test_speedometer_counts_the_wait_for_queued_batches(log, auto_reset):
    """The metric read that waits for the workers comes before the clock read."""
    wait, frequent, batch_size = 0.3, 2, 8
    metric = WaitingMetric([("acc", 0.5)], wait)
    s = callback.Speedometer(batch_size, frequent=frequent, auto_reset=auto_reset)
    for n in range(frequent + 1):
        s(_param(n, metric))
    (speed,) = _logged_speeds(log())
    # elapsed >= the wait, so speed <= frequent*batch_size/wait; reading the clock
    # first would report thousands of samples/s here.
    assert speed <= frequent * batch_size / wait
    assert speed >= frequent * batch_size / (wait + 30.0)     # generous: a loaded machine
    assert log()[0].startswith("Epoch[0] Batch [0-2]\tSpeed: ")
    assert log()[0].endswith("\tacc=0.500000")


def test_speedometer_starts_its_timer_after_the_work_before_it(log):
    """A wait at the first call (batches queued before the timer) is not counted."""
    wait, batch_size = 1.0, 8
    metric = WaitingMetric([("acc", 0.5)], wait, waits={1})
    s = callback.Speedometer(batch_size, frequent=1)
    s(_param(0, metric))
    s(_param(1, metric))
    (speed,) = _logged_speeds(log())
    assert metric.reads == 2
    assert speed > batch_size / wait     # the one-second wait is outside the interval


def test_speedometer_without_a_metric_waits_for_all_queued_work(monkeypatch, log):
    """No metric to read: nd.waitall (every module's queued worker calls) is the wait."""
    import raymod.ndarray
    wait, waits = 0.3, []

    def waitall():
        waits.append(time.perf_counter())
        time.sleep(wait)

    monkeypatch.setattr(raymod.ndarray, "waitall", waitall)
    s = callback.Speedometer(8, frequent=1)
    s(_param(0))
    s(_param(1))
    (speed,) = _logged_speeds(log())
    assert len(waits) == 2                  # at the timer's start and before the line
    assert speed <= 8 / wait
    assert log()[0].startswith("Iter[0] Batch [1]\tSpeed: ")


def test_training_progress_counts_the_wait_for_queued_batches():
    """TrainingProgress's bar also reads the metric before the clock."""
    class Mod:
        data_shapes = [("data", (8, 4))]

    out = io.StringIO()
    wait = 0.3
    progress = TrainingProgress(stream=out, bar=True, interval=0)
    progress.on_train_begin(Mod(), types.SimpleNamespace(num_epoch=1))
    progress.on_epoch_begin(0)
    progress.on_batch_end(_param(1, WaitingMetric([("acc", 0.5)], wait)))
    speed = float(re.search(r"([\d,]+) samples/s", out.getvalue()).group(1).replace(",", ""))
    assert speed <= 2 * 8 / wait
    progress.on_train_end(None)


def test_progress_bar(log):
    bar = callback.ProgressBar(total=4, length=8)
    bar(_param(1))
    bar(_param(3))
    assert log() == ["[==------] 25%\r", "[======--] 75%\r"]
    with pytest.raises(ValueError, match="total"):
        callback.ProgressBar(total=0)


def test_log_train_metric(log):
    metric = FakeMetric([("acc", 0.75)])
    cb = callback.log_train_metric(period=2, auto_reset=True)
    for n in range(5):
        cb(_param(n, metric, epoch=3))
    cb(_param(2, None))
    assert log() == ["Iter[3] Batch[0] Train-acc=0.750000", "Iter[3] Batch[2] Train-acc=0.750000",
                     "Iter[3] Batch[4] Train-acc=0.750000"]
    assert metric.local_resets == 3
    plain = FakeMetric([("acc", 1.0)])
    callback.log_train_metric(1)(_param(0, plain))
    assert plain.local_resets == 0


def test_log_validation_metrics(log):
    cb = callback.LogValidationMetricsCallback()
    cb(_param(0, FakeMetric([("acc", 0.5), ("f1", 0.25)]), epoch=2))
    cb(_param(0, None, epoch=2))
    assert log() == ["Epoch[2] Validation-acc=0.500000", "Epoch[2] Validation-f1=0.250000"]


@pytest.fixture
def saved(monkeypatch):
    """Replace raymod.model.save_checkpoint (imported lazily by do_checkpoint)."""
    calls = []

    def fake_save(prefix, epoch, sym, arg, aux):
        calls.append((prefix, epoch, sym, arg, aux))
    try:
        import raymod.model as model
    except ImportError:  # model.py not written yet: stand in for it
        model = types.ModuleType("raymod.model")
        monkeypatch.setitem(sys.modules, "raymod.model", model)
    monkeypatch.setattr(model, "save_checkpoint", fake_save, raising=False)
    return calls


def test_do_checkpoint_is_one_based_every_period(saved):
    cb = callback.do_checkpoint("run/net", period=2)
    for epoch in range(5):
        cb(epoch, "SYM", {"w": 1}, {"a": 2})
    assert saved == [("run/net", 2, "SYM", {"w": 1}, {"a": 2}),
                     ("run/net", 4, "SYM", {"w": 1}, {"a": 2})]
    saved.clear()
    every = callback.do_checkpoint("p", period=0)   # below 1 means every epoch
    every(0, None, {}, {})
    every(1, None, {}, {})
    assert [c[1] for c in saved] == [1, 2]


class FakeModule:
    """Records the saves module_checkpoint and do_checkpoint ask for, in order."""

    def __init__(self):
        self.calls = []

    def save_checkpoint(self, prefix, epoch):
        self.calls.append(("checkpoint", prefix, epoch))

    def save_optimizer_states(self, fname):
        self.calls.append(("states", fname))


def test_module_checkpoint(log):
    mod = FakeModule()
    cb = callback.module_checkpoint(mod, "m", period=3, save_optimizer_states=True)
    for epoch in range(7):
        cb(epoch)
    # the states first, the checkpoint (whose .params marks it complete) after
    assert mod.calls == [("states", "m-0003.states"), ("checkpoint", "m", 3),
                         ("states", "m-0006.states"), ("checkpoint", "m", 6)]
    assert log() == ['Saved optimizer state to "m-0003.states"',
                     'Saved optimizer state to "m-0006.states"']
    plain = FakeModule()
    callback.module_checkpoint(plain, "p")(0)
    assert plain.calls == [("checkpoint", "p", 1)]


def test_module_checkpoint_refuses_a_module_that_cannot_save_states():
    class ParamsOnly:      # like a BucketingModule: MXNet silently saved no states
        def save_checkpoint(self, prefix, epoch, remove_amp_cast=False):
            raise AssertionError("must not be reached")

    with pytest.raises(TypeError, match="save_optimizer_states.*ParamsOnly"):
        callback.module_checkpoint(ParamsOnly(), "p", save_optimizer_states=True)
    callback.module_checkpoint(ParamsOnly(), "p")        # parameters alone are fine
    with pytest.raises(TypeError, match="save_checkpoint.*int"):
        callback.module_checkpoint(3, "p")


def test_do_checkpoint_saves_optimizer_states_before_the_params(saved, log):
    class Mod(FakeModule):
        def save_optimizer_states(self, fname):
            self.calls.append(("states", fname, f"{len(saved)} params files saved before"))

    mod = Mod()
    cb = callback.do_checkpoint("run/net", period=2, save_optimizer_states=True, module=mod)
    for epoch in range(4):
        cb(epoch, "SYM", {"w": 1}, {})
    assert mod.calls == [("states", "run/net-0002.states", "0 params files saved before"),
                         ("states", "run/net-0004.states", "1 params files saved before")]
    assert saved == [("run/net", 2, "SYM", {"w": 1}, {}), ("run/net", 4, "SYM", {"w": 1}, {})]
    assert log() == ['Saved optimizer state to "run/net-0002.states"',
                     'Saved optimizer state to "run/net-0004.states"']


def test_do_checkpoint_optimizer_states_need_a_module(saved):
    with pytest.raises(ValueError, match="module="):
        callback.do_checkpoint("p", save_optimizer_states=True)
    with pytest.raises(TypeError, match="save_optimizer_states.*dict"):
        callback.do_checkpoint("p", save_optimizer_states=True, module={})
    callback.do_checkpoint("p", module=FakeModule())(0, None, {}, {})   # states not asked
    assert [c[1] for c in saved] == [1]
