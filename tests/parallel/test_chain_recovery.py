"""A lost Ray worker in SequentialModule's chained stages is recovered (issue 12).

The stages of a chained SequentialModule hand activations and input gradients
actor to actor, so they recover together: one snapshot of every stage, one log
of what was sent to any of them, and on a loss in any stage every stage
restores and the log is replayed in order. Each case kills one stage's worker
with SIGKILL from a batch-end callback in a 2-worker fit and compares with the
same fit undisturbed (same seeds, same order).
"""
import functools
import gc
import logging
import weakref

import numpy as np
import pytest

import raymod as rm
from raymod.io import NDArrayIter
from raymod.module.sequential_module import SequentialModule
from raymod.parallel import kill_worker, release_idle_workers, set_idle_worker_limit
from raymod.parallel.ray_group import WorkerError

from ..module.nets import CPU2
from .test_worker_recovery import _gone

pytestmark = pytest.mark.usefixtures("ray_session", "three_idle_gangs")


@pytest.fixture(scope="module")
def three_idle_gangs():
    """Three stages' worker gangs stay warm between runs (each new one takes seconds)."""
    previous = set_idle_worker_limit(3)
    yield
    set_idle_worker_limit(previous)


def _stage(i, last, hidden=6):
    data = rm.sym.Variable("data")
    fc = rm.sym.FullyConnected(data, num_hidden=3 if last else hidden, name=f"fc{i}")
    if last:
        return rm.sym.SoftmaxOutput(fc, name="softmax")
    return rm.sym.Activation(fc, act_type="tanh", name=f"act{i}")


def _sequential(num_stages, micro_batches):
    seq = SequentialModule(micro_batches=micro_batches)
    for i in range(num_stages):
        last = i == num_stages - 1
        mod = rm.mod.Module(_stage(i, last), label_names=("softmax_label",) if last else None,
                            context=CPU2, placement="ray")
        seq.add(mod, take_labels=last, auto_wiring=i > 0)
    return seq


def _data(n=72):
    rng = np.random.default_rng(0)
    return rng.random((n, 5), dtype=np.float32), rng.integers(0, 3, n).astype(np.float32)


def _fit(num_stages=2, micro_batches=1, kvstore="device", kill=None, restarts=3, num_epoch=2):
    """kill: (epoch, batch, stage) at whose end stage's worker 1 is killed."""
    rm.random.seed(1)
    np.random.seed(5)                               # NDArrayIter's shuffle
    seq = _sequential(num_stages, micro_batches)
    seen = []

    def on_batch(param):
        seen.append((param.epoch, param.nbatch))
        if kill is not None and (param.epoch, param.nbatch) == kill[:2]:
            kill_worker(seq, 1, group=kill[2])

    metric = rm.metric.Accuracy()
    seq.fit(NDArrayIter(*_data(), batch_size=12, shuffle=True), eval_metric=metric,
            kvstore=kvstore, num_epoch=num_epoch, batch_end_callback=on_batch,
            max_worker_restarts=restarts, initializer=rm.init.Xavier(),
            optimizer_params={"learning_rate": 0.3, "momentum": 0.9})
    assert seq.chained
    outcome = _outcome(seq, seen, metric)
    del seq, on_batch
    gc.collect()             # its workers go back to the pool, for the next run
    return outcome


@functools.lru_cache(maxsize=None)
def _reference(num_stages=2, micro_batches=1, kvstore="device"):
    """The undisturbed run (deterministic: computed once for the cases that share it)."""
    return _fit(num_stages, micro_batches, kvstore)


def _outcome(seq, seen, metric):
    """What a run ended with: parameters, the batches seen, the metric."""
    params = {name: value.asnumpy() for name, value in seq.get_params()[0].items()}
    return params, seen, metric.get_global()


def _assert_same(ref, run):
    (want, ref_seen, ref_metric), (got, seen, metric) = ref, run
    assert seen == ref_seen and len(set(seen)) == len(seen)     # every batch once, in order
    assert metric[0] == ref_metric[0] and metric[1] == pytest.approx(ref_metric[1])
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("micro_batches", [1, 2])
@pytest.mark.parametrize("kvstore", ["device", "local", None])
def test_a_killed_stage_worker_is_replaced_and_fit_ends_as_if_nothing_happened(
        kvstore, micro_batches, caplog):
    ref = _reference(2, micro_batches, kvstore)
    with caplog.at_level(logging.WARNING, logger="raymod"):
        run = _fit(micro_batches=micro_batches, kvstore=kvstore, kill=(1, 2, 0))
    _assert_same(ref, run)
    lost = [r.message for r in caplog.records if "lost" in r.message]
    assert len(lost) == 1, lost
    # the loss is the first stage's worker, even when the second stage saw it first
    assert "stage 0's device worker cpu(1) (worker 1) lost" in lost[0] and "replaying" in lost[0]


@pytest.mark.slow                # three gangs of workers: about 10 s on 2 cores
@pytest.mark.parametrize("stage, micro_batches", [(1, 2), (2, 1)])
def test_three_chained_stages_recover_from_a_loss_in_a_later_stage(stage, micro_batches):
    ref = _reference(3, micro_batches)
    run = _fit(num_stages=3, micro_batches=micro_batches, kill=(0, 3, stage))
    _assert_same(ref, run)


def test_two_losses_in_different_stages_are_both_recovered():
    ref = _reference(2, 2)
    rm.random.seed(1)
    np.random.seed(5)
    kills = {(0, 4): 1, (1, 1): 0}
    seq = _sequential(2, 2)
    seen = []

    def on_batch(param):
        seen.append((param.epoch, param.nbatch))
        if (param.epoch, param.nbatch) in kills:
            kill_worker(seq, 1, group=kills[(param.epoch, param.nbatch)])

    metric = rm.metric.Accuracy()
    seq.fit(NDArrayIter(*_data(), batch_size=12, shuffle=True), eval_metric=metric,
            kvstore="device", num_epoch=2, batch_end_callback=on_batch,
            initializer=rm.init.Xavier(),
            optimizer_params={"learning_rate": 0.3, "momentum": 0.9})
    _assert_same(ref, _outcome(seq, seen, metric))


def test_no_restarts_left_ends_the_fit_naming_the_lost_worker_and_frees_every_stage():
    pids = []

    def remember(seq):
        for group in seq._executor_groups():
            pids.extend(group._workers.pids())

    rm.random.seed(1)
    seq = _sequential(2, 1)
    seen = []

    def on_batch(param):
        seen.append(param.nbatch)
        if param.nbatch == 0:
            remember(seq)
        if param.nbatch == 2:
            kill_worker(seq, 1, group=0)

    with pytest.raises(WorkerError, match=r"(?s)stage 0's device worker cpu\(1\) \(worker 1\) "
                                          r"lost.*\(not recovered: max_worker_restarts is 0\)"):
        seq.fit(NDArrayIter(*_data(), batch_size=12), num_epoch=1, kvstore="device",
                batch_end_callback=on_batch, max_worker_restarts=0,
                initializer=rm.init.Xavier())
    del seq
    gc.collect()
    release_idle_workers()
    assert len(pids) == 4 and all(_gone(pid) for pid in pids)


@pytest.mark.parametrize("micro_batches", [1, 2])
def test_score_and_predict_on_chained_stages_rerun_their_batches(micro_batches):
    x, y = _data(48)
    rm.random.seed(1)
    seq = _sequential(2, micro_batches)
    seq.bind([("data", (12, 5))], [("softmax_label", (12,))], for_training=False)
    seq.init_params(initializer=rm.init.Xavier())
    assert seq.chained
    seq._set_max_worker_restarts(2)
    expected = seq.predict(NDArrayIter(x, y, batch_size=12))
    expected_score = seq.score(NDArrayIter(x, y, batch_size=12), "ce")
    kill_worker(seq, 0, group=0)
    np.testing.assert_array_equal(seq.predict(NDArrayIter(x, y, batch_size=12)), expected)
    kill_worker(seq, 1, group=1)
    assert seq.score(NDArrayIter(x, y, batch_size=12), "ce") == expected_score


def test_a_replayed_call_sends_the_values_it_sent_first():
    """set_params logged after the snapshot is replayed with the values it sent, not
    with those its arrays (the module's own parameters) hold by the time of the loss."""
    from ..module.nets import mlp
    x, y = _data(48)

    def run(kill):
        rm.random.seed(1)
        mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
        mod.bind([("data", (12, 5))], [("softmax_label", (12,))])
        mod.init_params(initializer=rm.init.Xavier())
        mod.init_optimizer(kvstore="device", optimizer_params={"learning_rate": 0.5})
        mod.set_params(*mod.get_params())        # logged: the snapshot came before it
        for i, batch in enumerate(NDArrayIter(x, y, batch_size=12)):
            mod.forward_backward(batch)
            mod.update()
            if i == 1:
                mod.get_params()                 # the module's arrays now hold new values
                if kill:
                    kill_worker(mod, 1)
        params = {n: v.asnumpy() for n, v in mod.get_params()[0].items()}
        del mod
        gc.collect()
        return params

    want, got = run(False), run(True)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_a_full_log_makes_the_stages_snapshot_and_start_a_new_one(monkeypatch):
    from raymod.parallel import recovery
    x, y = _data(48)
    rm.random.seed(1)
    seq = _sequential(2, 1)
    seq.bind([("data", (12, 5))], [("softmax_label", (12,))], for_training=False)
    seq.init_params(initializer=rm.init.Xavier())
    batches = list(NDArrayIter(x, y, batch_size=12))
    seq.forward(batches[-1], is_train=False)
    expected = seq.get_outputs()[0].asnumpy()
    group = seq._chain._recovery
    monkeypatch.setattr(recovery, "LOG_BYTES", 1)      # every batch fills it
    snapshots = [m._snapshot for m in group.members]
    for batch in batches:                               # forwards only: no call between
        seq.forward(batch, is_train=False)
    assert len(group._log) == 1                         # a snapshot before each one
    assert all(m._snapshot is not s for m, s in zip(group.members, snapshots))
    kill_worker(seq, 1, group=1)
    np.testing.assert_array_equal(seq.get_outputs()[0].asnumpy(), expected)


def test_the_recovery_log_keeps_no_released_module_workers_alive():
    """A metric links to the stages' schedulers; through the log they must not hold the
    chain, hence the workers, after the module is gone (they go back to the pool)."""
    rm.random.seed(1)
    seq = _sequential(2, 1)
    metric = rm.metric.Accuracy()
    seq.fit(NDArrayIter(*_data(24), batch_size=12), eval_metric=metric, num_epoch=1,
            kvstore="device", initializer=rm.init.Xavier())
    assert len(seq._chain._recovery._log) > 0
    workers = [weakref.ref(g._workers) for g in seq._executor_groups()]
    del seq
    gc.collect()
    assert metric.get()[1] >= 0 and all(w() is None for w in workers)


def test_chained_stages_on_dist_sync_recover_with_their_parameter_servers():
    ref = _reference(2, 2, "dist_sync")
    _assert_same(ref, _fit(micro_batches=2, kvstore="dist_sync", kill=(1, 2, 1)))


def _chained_manual_step(kill, monkeypatch):
    """forward, read the outputs (a quiet point: a snapshot is due at every one here),
    kill stage 0's worker 1, then backward and update."""
    from raymod.io import DataBatch
    from raymod.parallel import recovery
    monkeypatch.setattr(recovery, "SNAPSHOT_SECONDS", 0.0)
    x, y = _data(12)
    rm.random.seed(4)
    # stage 0 keeps an intermediate of its own for backward (the relu's output)
    hidden = rm.sym.Activation(rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=6,
                                                     name="fca"), act_type="relu")
    first = rm.sym.Activation(rm.sym.FullyConnected(hidden, num_hidden=6, name="fcb"),
                              act_type="tanh")
    seq = SequentialModule()
    seq.add(rm.mod.Module(first, label_names=None, context=CPU2, placement="ray"))
    seq.add(rm.mod.Module(_stage(1, True), context=CPU2, placement="ray"), take_labels=True,
            auto_wiring=True)
    seq.bind([("data", (12, 5))], [("softmax_label", (12,))])
    seq.init_params(initializer=rm.init.Xavier())
    seq.init_optimizer(kvstore="device", optimizer_params={"learning_rate": 0.5})
    assert seq.chained
    seq.forward(DataBatch([rm.nd.array(x)], [rm.nd.array(y)]), is_train=True)
    outputs = seq.get_outputs()[0].asnumpy()
    if kill:
        kill_worker(seq, 1, group=0)
    seq.backward()
    seq.update()
    params = {k: v.asnumpy() for k, v in seq.get_params()[0].items()}
    del seq
    gc.collect()
    return outputs, params


def test_no_snapshot_falls_between_a_chained_training_forward_and_its_backward(monkeypatch):
    ref_out, ref_params = _chained_manual_step(False, monkeypatch)
    out, params = _chained_manual_step(True, monkeypatch)
    np.testing.assert_array_equal(out, ref_out)
    for name, value in ref_params.items():
        np.testing.assert_allclose(params[name], value, rtol=1e-6, atol=1e-7, err_msg=name)
