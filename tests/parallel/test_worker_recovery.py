"""fit survives a lost Ray worker: the worker is replaced, the batches since the last
snapshot are replayed, and the run ends exactly as an undisturbed one (issue 12).

Each case kills a worker process with SIGKILL from a batch-end callback, at a
chosen batch, in a 2-worker fit, and compares with the same fit undisturbed
(same seeds, same order): every batch seen once, the same metric, the same
parameters bit for bit.
"""
import gc
import logging
import os
import signal

import numpy as np
import pytest

import raymod as rm
from raymod.io import NDArrayIter
from raymod.module.bucketing_module import BucketingModule
from raymod.parallel import release_idle_workers
from raymod.parallel.ray_group import WorkerError

from ..module.nets import CPU2, mlp

pytestmark = pytest.mark.usefixtures("ray_session")


def _data(n=120):
    rng = np.random.default_rng(0)
    return rng.random((n, 5), dtype=np.float32), rng.integers(0, 3, n).astype(np.float32)


def _kill_worker(mod, rank):
    group = mod._executor_groups()[0]
    os.kill(group._workers.pids()[rank], signal.SIGKILL)


def _fit(kill_at=None, kvstore="device", restarts=3, make=None, data=None, num_epoch=3):
    rm.random.seed(1)
    np.random.seed(5)                               # NDArrayIter's shuffle
    train = data() if data else NDArrayIter(*_data(), batch_size=12, shuffle=True)
    mod = make() if make else rm.mod.Module(mlp(), context=CPU2, placement="ray")
    seen = []

    def on_batch(param):
        seen.append((param.epoch, param.nbatch))
        if (param.epoch, param.nbatch) == kill_at:
            _kill_worker(mod, 1)

    metric = rm.metric.Accuracy()
    mod.fit(train, eval_metric=metric, kvstore=kvstore, num_epoch=num_epoch,
            batch_end_callback=on_batch, max_worker_restarts=restarts,
            optimizer_params={"learning_rate": 0.3, "momentum": 0.9})
    return mod, seen, metric.get_global()


def _assert_same(ref, run):
    (ref_mod, ref_seen, ref_metric), (mod, seen, metric) = ref, run
    assert seen == ref_seen and len(set(seen)) == len(seen)     # every batch once, in order
    assert metric == ref_metric
    for name, value in ref_mod.get_params()[0].items():
        np.testing.assert_array_equal(mod.get_params()[0][name], value, err_msg=name)


@pytest.mark.parametrize("kvstore", ["device", "local", None])
def test_a_killed_worker_is_replaced_and_fit_ends_as_if_nothing_happened(kvstore, caplog):
    ref = _fit(kvstore=kvstore)
    with caplog.at_level(logging.WARNING, logger="raymod"):
        run = _fit(kill_at=(1, 4), kvstore=kvstore)
    _assert_same(ref, run)
    lost = [r.message for r in caplog.records if "lost" in r.message]
    assert len(lost) == 1
    assert "device worker cpu(1) (worker 1) lost" in lost[0] and "died" in lost[0]
    assert "batch" in lost[0] and "replaying" in lost[0]


def test_a_bucketing_module_recovers_too():
    def sym_gen(key):
        data = rm.sym.Variable("data")
        emb = rm.sym.Embedding(data, input_dim=10, output_dim=4, name="embed")
        flat = rm.sym.Reshape(emb, shape=(-1, 4 * key))
        fc = rm.sym.FullyConnected(rm.sym.slice_axis(flat, axis=1, begin=0, end=8),
                                   num_hidden=3, name="fc")
        return rm.sym.SoftmaxOutput(fc, name="softmax"), ("data",), ("softmax_label",)

    class Buckets(rm.io.DataIter):
        """Batches of bucket 2, 3 and 4, in turn."""

        def __init__(self):
            super().__init__(6)
            self.provide_data = [rm.io.DataDesc("data", (6, 4))]
            self.provide_label = [rm.io.DataDesc("softmax_label", (6,))]
            self.default_bucket_key = 4
            self.reset()

        def reset(self):
            self._i = 0

        def next(self):
            if self._i == 9:
                raise StopIteration
            key = 2 + self._i % 3
            rng = np.random.default_rng(self._i)
            self._i += 1
            return rm.io.DataBatch(
                [rm.nd.array(rng.integers(0, 10, (6, key)).astype(np.float32))],
                [rm.nd.array(rng.integers(0, 3, 6).astype(np.float32))], bucket_key=key,
                provide_data=[rm.io.DataDesc("data", (6, key))],
                provide_label=[rm.io.DataDesc("softmax_label", (6,))])

    def make():
        return BucketingModule(sym_gen, default_bucket_key=4, context=CPU2, placement="ray")

    ref = _fit(make=make, data=Buckets, kvstore="device")
    run = _fit(kill_at=(1, 2), make=make, data=Buckets, kvstore="device")
    _assert_same(ref, run)


def test_no_restarts_left_ends_the_fit_with_a_clear_error_and_frees_the_workers():
    with pytest.raises(WorkerError,
                       match=r"(?s)died .*\(not recovered: max_worker_restarts is 0\)"):
        _fit(kill_at=(0, 2), restarts=0)


def test_restarts_are_counted():
    rm.random.seed(1)
    mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    kills = {(0, 2), (1, 2)}

    def on_batch(param):
        if (param.epoch, param.nbatch) in kills:
            _kill_worker(mod, 1)

    with pytest.raises(WorkerError,
                       match=r"not recovered: all 1 of max_worker_restarts were used"):
        mod.fit(NDArrayIter(*_data(), batch_size=12), num_epoch=2, kvstore="device",
                batch_end_callback=on_batch, max_worker_restarts=1)


def test_max_worker_restarts_is_validated():
    with pytest.raises(ValueError, match="max_worker_restarts must be an int >= 0"):
        rm.mod.FitParams(max_worker_restarts=-1)


def test_predict_after_a_loss_reruns_its_batches():
    x, y = _data(48)
    mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    mod.bind([("data", (12, 5))], [("softmax_label", (12,))], for_training=False)
    mod.init_params(initializer=rm.init.Xavier())
    mod._set_max_worker_restarts(2)
    expected = mod.predict(NDArrayIter(x, y, batch_size=12))
    it = NDArrayIter(x, y, batch_size=12)
    _kill_worker(mod, 0)
    np.testing.assert_array_equal(mod.predict(it), expected)
    # the replaced worker is ours: released with the rest
    pids = mod._exec_group._workers.pids()
    del mod
    gc.collect()
    release_idle_workers()
    assert all(_gone(pid) for pid in pids)


def _gone(pid, timeout=15.0):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_dist_sync_recovers_with_its_parameter_servers():
    ref = _fit(kvstore="dist_sync", num_epoch=2)
    run = _fit(kill_at=(1, 3), kvstore="dist_sync", num_epoch=2)
    _assert_same(ref, run)


def _manual_step(kill, monkeypatch):
    """forward, read the outputs (a quiet point: a snapshot is due at every one here),
    then backward and update: MXNet's step for a loss computed on the driver."""
    from raymod.io import DataBatch
    from raymod.parallel import recovery
    monkeypatch.setattr(recovery, "SNAPSHOT_SECONDS", 0.0)
    x, y = _data(12)
    rm.random.seed(2)
    mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    mod.bind([("data", (12, 5))], [("softmax_label", (12,))])
    mod.init_params(initializer=rm.init.Xavier())
    mod.init_optimizer(kvstore="device", optimizer_params={"learning_rate": 0.5})
    batch = DataBatch([rm.nd.array(x)], [rm.nd.array(y)])
    mod.forward(batch, is_train=True)
    outputs = mod.get_outputs()[0].asnumpy()
    if kill:
        _kill_worker(mod, 1)
    mod.backward()
    mod.update()
    params = {k: v.asnumpy() for k, v in mod.get_params()[0].items()}
    return outputs, params, mod


def test_no_snapshot_falls_between_a_training_forward_and_its_backward(monkeypatch):
    """The forward's intermediates are in no snapshot: a worker restored from one taken
    after the forward would run its backward on nothing."""
    ref_out, ref_params, _ = _manual_step(False, monkeypatch)
    out, params, _ = _manual_step(True, monkeypatch)
    np.testing.assert_array_equal(out, ref_out)
    for name, value in ref_params.items():
        np.testing.assert_allclose(params[name], value, rtol=1e-6, atol=1e-7, err_msg=name)


def test_outputs_read_after_a_snapshot_survive_a_loss(monkeypatch):
    from raymod.parallel import recovery
    monkeypatch.setattr(recovery, "SNAPSHOT_SECONDS", 0.0)
    x, y = _data(12)
    mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    mod.bind([("data", (12, 5))], [("softmax_label", (12,))], for_training=False)
    mod.init_params(initializer=rm.init.Xavier())
    mod.forward(next(iter(NDArrayIter(x, y, batch_size=12))), is_train=False)
    first = mod.get_outputs()[0].asnumpy()
    mod.get_outputs()                       # a quiet point after the forward: a snapshot
    _kill_worker(mod, 1)
    np.testing.assert_array_equal(mod.get_outputs()[0].asnumpy(), first)


def test_training_forwards_without_backward_keep_the_log_bounded(monkeypatch):
    """Forwards with is_train=True and no backward (BatchNorm calibration, say): each
    new forward ends the wait for the last one's backward, so a full log is still
    snapshotted away, and a loss is recovered from there."""
    from raymod.parallel import recovery
    monkeypatch.setattr(recovery, "LOG_BYTES", 1)
    x, y = _data(60)
    mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    mod.bind([("data", (12, 5))], [("softmax_label", (12,))])
    mod.init_params(initializer=rm.init.Xavier())
    outputs = []
    for batch in NDArrayIter(x, y, batch_size=12):
        mod.forward(batch, is_train=True)
        outputs.append(mod.get_outputs()[0].asnumpy())
        assert len(mod._exec_group._scheduler.recovery._log) <= 2
    _kill_worker(mod, 1)
    mod.forward(next(iter(NDArrayIter(x, y, batch_size=12))), is_train=True)
    np.testing.assert_array_equal(mod.get_outputs()[0].asnumpy(), outputs[0])
