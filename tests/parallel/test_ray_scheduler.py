"""The driver as a scheduler: deferred, fused, coalesced calls keep MXNet's numbers.

Batches that need nothing from other workers are held and sent several per
call; exchanges are bounded in flight. These tests break if a held batch is
read after its iterator reused the buffer, if a coalesced failure loses its
batch number, or if the in-flight bound drops or reorders work.
"""
import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch, NDArrayIter
from raymod.parallel import scheduler as sched
from raymod.parallel.ray_group import WorkerError

from ..module.nets import CPU2, classification_data, mlp

pytestmark = pytest.mark.usefixtures("ray_session")


class ReusingIter:
    """Yields every batch from one buffer it overwrites: a held batch must be a copy."""

    def __init__(self, x, y, batch_size):
        self.x, self.y, self.n = x, y, batch_size
        self.buf_x = np.empty((batch_size,) + x.shape[1:], x.dtype)
        self.buf_y = np.empty((batch_size,), y.dtype)

    def __iter__(self):
        for start in range(0, len(self.x), self.n):
            self.buf_x[...] = self.x[start:start + self.n]
            self.buf_y[...] = self.y[start:start + self.n]
            yield DataBatch([self.buf_x], [self.buf_y])


def _train_by_hand(placement, ctx, kvstore, batches, data_iter=None):
    rm.random.seed(4)
    mod = rm.mod.Module(mlp(), context=ctx, placement=placement)
    mod.bind([("data", (8, 5))], [("softmax_label", (8,))])
    mod.init_params(initializer=rm.init.Xavier())
    mod.init_optimizer(kvstore=kvstore, optimizer_params={"learning_rate": 0.2,
                                                          "momentum": 0.9})
    x, y = classification_data(n=8 * batches, seed=7)
    metric = rm.metric.Accuracy()
    for batch in data_iter(x, y) if data_iter else NDArrayIter(x, y, batch_size=8):
        mod.forward_backward(batch)
        mod.update()
        mod.update_metric(metric, batch.label)
    return mod, mod.get_params()[0], metric.get()[1]


def test_held_batches_are_copies_of_a_reused_buffer():
    """kvstore=None on one worker: batches go 8 per call, after the iterator moved on."""
    reusing = lambda x, y: ReusingIter(x, y, 8)      # noqa: E731
    _, expected, acc_ip = _train_by_hand("in_process", [rm.cpu()], None, 12, reusing)
    mod, got, acc_ray = _train_by_hand("ray", [rm.cpu()], None, 12, reusing)
    assert acc_ray == pytest.approx(acc_ip)
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], rtol=2e-5, atol=2e-6, err_msg=k)
    assert mod._exec_group._scheduler._held == []     # get_params sent everything


def test_exchange_past_the_in_flight_bound_equals_in_process(monkeypatch):
    """'device' with 2 workers: 4 calls a batch, 12 batches, a bound of 6 calls in flight."""
    monkeypatch.setattr(sched, "_MAX_IN_FLIGHT", 6)
    _, expected, acc_ip = _train_by_hand("in_process", [rm.cpu()], "device", 12)
    mod, got, acc_ray = _train_by_hand("ray", CPU2, "device", 12)
    assert acc_ray == pytest.approx(acc_ip)
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], rtol=2e-5, atol=2e-6, err_msg=k)


def test_failure_in_a_coalesced_call_names_its_batch():
    """score sends forward + metric of several batches in one call; batch 4 of 6 fails."""
    w = rm.sym.Variable("table_weight", shape=(5, 2))
    out = rm.sym.MakeLoss(rm.sym.take(w, rm.sym.Variable("data"), mode="raise"), name="loss")
    mod = rm.mod.Module(out, label_names=None, context=[rm.cpu()], placement="ray")
    mod.bind([("data", (4,))], for_training=False)
    mod.init_params(initializer=rm.init.Constant(1.0))
    data = np.tile(np.array([0, 1, 2, 3], np.float32), 6)
    data[13] = 9                                       # in the 4th batch of 4
    with pytest.raises(WorkerError) as info:
        mod.score(NDArrayIter(data, batch_size=4), rm.metric.Loss())
    message = str(info.value)
    # after a wait batches go 1, then 2, then 4 per call: batch 4 rides with 5 and 6
    assert "failed in steps() of batches 4-6" in message
    assert "raymod: in batch 4 (counting the module's forward calls)" in message
    assert "index 9 is out of range" in message
    # the module goes on: the next score runs and counts every batch once
    metric = rm.metric.Loss()
    mod.score(NDArrayIter(np.zeros(8, np.float32), batch_size=4), metric)
    assert metric.get()[1] == pytest.approx(1.0) and metric.num_inst == 16


def test_busy_seconds_counts_time_inside_worker_calls():
    mod, _, _ = _train_by_hand("ray", CPU2, "device", 2)
    group = mod._exec_group
    before = group._call("busy_seconds")          # through the scheduler: after the steps
    assert all(b > 0 for b in before)
    x, y = classification_data(n=8)
    mod.forward_backward(DataBatch([x], [y]))
    mod.update()
    after = group._call("busy_seconds")
    assert all(a > b for a, b in zip(after, before)), (before, after)
