"""Failures on Ray workers: one clear WorkerError, and nothing of ours left behind.

An exception inside an operator, a killed worker process and a placement the
cluster cannot satisfy each surface on the driver as one
`raymod.parallel.ray_group.WorkerError` naming the device, the call, the
batch and (for exceptions) the worker's traceback. Deleting a module parks
its actors, reset, for the next module (a dead one is never lent), and
`release_idle_workers` frees them and their placement group.
"""
import gc
import os
import re
import signal
import time

import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch
from raymod.parallel import release_idle_workers, set_idle_worker_limit, set_placement_timeout
from raymod.parallel.pool import POOL
from raymod.parallel.ray_group import WorkerError

from ..module.nets import CPU2, classification_data, mlp

pytestmark = pytest.mark.usefixtures("ray_session")


def _wait_until(condition, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _pg_state(ray, pg):
    return ray.util.placement_group_table(pg)["state"]


def _gone(pid):
    """True once process `pid` has exited (a zombie awaiting its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _take_module():
    """Rows of a (5, 3) parameter picked by the indices in `data`; mode='raise'."""
    w = rm.sym.Variable("table_weight", shape=(5, 3))
    out = rm.sym.take(w, rm.sym.Variable("data"), mode="raise", name="pick")
    mod = rm.mod.Module(out, label_names=None, context=CPU2, placement="ray")
    mod.bind([("data", (4,))], for_training=False)
    mod.init_params(initializer=rm.init.Constant(2.0))
    return mod


def test_operator_exception_in_worker_is_one_worker_error_naming_device_call_batch():
    mod = _take_module()
    mod.forward(DataBatch([np.array([0, 1, 2, 3], np.float32)]), is_train=False)
    mod.get_outputs()
    # the second half of this batch goes to cpu(1): index 7 is out of range there
    mod.forward(DataBatch([np.array([0, 1, 2, 7], np.float32)]), is_train=False)
    with pytest.raises(WorkerError) as info:
        mod.get_outputs()
    message = str(info.value)
    assert "cpu(1) (worker 1)" in message
    assert "failed in step() of batch 2" in message
    assert "take 'pick': index 7 is out of range" in message
    assert "Traceback" in message and "worker_steps.py" in message   # the worker's traceback
    assert "cpu(0)" not in message
    # the worker survived its exception: the module goes on, the error is not raised again
    mod.forward(DataBatch([np.array([4, 3, 2, 1], np.float32)]), is_train=False)
    np.testing.assert_array_equal(mod.get_outputs()[0], np.full((4, 3), 2.0))


def test_backward_exception_during_exchange_is_reported_once():
    """Embedding cannot give its indices a gradient: both workers fail, one error comes back."""
    data = rm.sym.Variable("data")
    emb = rm.sym.Embedding(data, input_dim=5, output_dim=3, name="emb")
    out = rm.sym.MakeLoss(rm.sym.sum(emb), name="loss")
    mod = rm.mod.Module(out, label_names=None, context=CPU2, placement="ray")
    mod.bind([("data", (4,))], inputs_need_grad=True)
    mod.init_params()
    mod.init_optimizer(kvstore="device")
    mod.forward_backward(DataBatch([np.array([0, 1, 2, 3], np.float32)]))
    mod.update()                                   # deferred: nothing has failed yet
    with pytest.raises(WorkerError) as info:
        mod.get_params()
    message = str(info.value)
    assert message.startswith("device worker cpu(0) (worker 0) failed in step() of batch 1")
    assert "Embedding 'emb': Embedding cannot produce a gradient for its data input" in message


def test_killed_worker_gives_clear_error_and_frees_the_group(ray_session):
    ray = ray_session
    rm.random.seed(1)
    mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    mod.bind([("data", (8, 5))], [("softmax_label", (8,))])
    mod.init_params()
    mod.init_optimizer(kvstore="device")
    mod._set_max_worker_restarts(0)      # no recovery (test_worker_recovery has that)
    group = mod._exec_group._workers
    pids = group.pids()
    assert len(set(pids)) == 2 and os.getpid() not in pids
    x, y = classification_data(n=8)
    mod.forward_backward(DataBatch([x], [y]))
    mod.update()
    mod.get_params()
    os.kill(pids[1], signal.SIGKILL)
    assert _wait_until(lambda: _gone(pids[1]))
    mod.forward_backward(DataBatch([x], [y]))
    mod.update()
    with pytest.raises(WorkerError, match=r"device worker cpu\(1\) \(worker 1\) died during "
                                          r"step\(\) of batch 2 .*: ActorDiedError"):
        mod.get_outputs()
    # the group shut itself down: the other actor and the placement group are gone
    assert _wait_until(lambda: _gone(pids[0]))
    assert _wait_until(lambda: _pg_state(ray, group._pg) == "REMOVED")
    with pytest.raises(WorkerError, match=r"were shut down \(device worker cpu\(1\) .* died"):
        mod.forward(DataBatch([x], [y]))
        mod.get_outputs()
    mod.bind([("data", (8, 5))], [("softmax_label", (8,))], force_rebind=True)
    mod.forward(DataBatch([x], [y]), is_train=False)          # fresh workers after a rebind
    assert mod.get_outputs()[0].shape == (8, 3)


def test_deleting_a_module_parks_its_workers_until_released(ray_session):
    ray = ray_session
    gc.collect()                  # earlier tests' modules park now, not during this test
    release_idle_workers()
    mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    mod.bind([("data", (8, 5))], [("softmax_label", (8,))])
    mod.init_params()
    group = mod._exec_group._workers
    pids, pg = group.pids(), group._pg
    assert _pg_state(ray, pg) == "CREATED"
    del mod, group
    gc.collect()
    assert [p.gang.pg for p in POOL._parked] == [pg]                      # kept warm
    assert all(not _gone(p) for p in pids)
    release_idle_workers()
    assert _wait_until(lambda: _pg_state(ray, pg) == "REMOVED")
    assert _wait_until(lambda: all(_gone(p) for p in pids))
    # and its cores are free again for the next module
    assert _wait_until(lambda: ray.available_resources().get("CPU", 0) >= 2)


def test_a_new_module_leases_the_parked_workers_reset(ray_session):
    x, y = classification_data(n=8)
    first = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    first.bind([("data", (8, 5))], [("softmax_label", (8,))])
    first.init_params()
    first.init_optimizer(kvstore="device")
    first.forward_backward(DataBatch([x], [y]))
    first.update()
    first.update_metric(rm.metric.Accuracy(), [y])
    pids, key = first._exec_group._workers.pids(), first._exec_group._key
    first._exec_group.release()
    second = rm.mod.Module(mlp(num_hidden=4), context=CPU2, placement="ray")
    second.bind([("data", (8, 5))], [("softmax_label", (8,))], for_training=False)
    workers = second._exec_group._workers
    assert workers.pids() == pids                                 # the same, warm actors
    assert workers.call("executor_keys") == [[second._exec_group._key]] * 2
    with pytest.raises(WorkerError, match=f"nothing bound under key '{key}'"):
        workers.call("get_params", key, [], [])
    second.init_params()
    second.forward(DataBatch([x], [y]), is_train=False)
    assert second.get_outputs()[0].shape == (8, 3)


def test_a_parked_worker_that_died_is_never_lent(ray_session):
    mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    mod.bind([("data", (8, 5))], [("softmax_label", (8,))], for_training=False)
    pids = mod._exec_group._workers.pids()
    mod._exec_group.release()
    os.kill(pids[0], signal.SIGKILL)
    assert _wait_until(lambda: _gone(pids[0]))
    again = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    again.bind([("data", (8, 5))], [("softmax_label", (8,))], for_training=False)
    assert not set(again._exec_group._workers.pids()) & set(pids)
    assert _wait_until(lambda: _gone(pids[1]))            # the rest of that gang was freed
    again.init_params()
    x, y = classification_data(n=8)
    again.forward(DataBatch([x], [y]), is_train=False)
    assert again.get_outputs()[0].shape == (8, 3)


def test_idle_worker_limit(ray_session):
    with pytest.raises(ValueError, match="non-negative int"):
        set_idle_worker_limit(-1)
    previous = set_idle_worker_limit(0)
    try:
        mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
        mod.bind([("data", (8, 5))], [("softmax_label", (8,))], for_training=False)
        pids = mod._exec_group._workers.pids()
        mod._exec_group.release()
        assert len(POOL) == 0
        assert _wait_until(lambda: all(_gone(p) for p in pids))
    finally:
        set_idle_worker_limit(previous)


def test_a_second_module_shares_cores_instead_of_waiting(ray_session):
    """Two modules alive at once on a 2-CPU Ray: the second gets no whole core but runs."""
    first = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    first.bind([("data", (8, 5))], [("softmax_label", (8,))], for_training=False)
    first.init_params()
    second = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    start = time.time()
    second.bind([("data", (8, 5))], [("softmax_label", (8,))], for_training=False)
    assert time.time() - start < 10
    second.init_params()
    x, y = classification_data(n=8)
    for mod in (first, second):
        mod.forward(DataBatch([x], [y]), is_train=False)
        assert mod.get_outputs()[0].shape == (8, 3)


def test_unsatisfiable_placement_fails_in_bounded_time_listing_asked_and_available(ray_session):
    ray = ray_session
    previous = set_placement_timeout(1.5)
    try:
        mod = rm.mod.Module(mlp(), context=[rm.gpu(0), rm.gpu(1)], placement="ray")
        start = time.time()
        with pytest.raises(WorkerError) as info:
            mod.bind([("data", (8, 5))], [("softmax_label", (8,))])
        elapsed = time.time() - start
    finally:
        set_placement_timeout(previous)
    assert 1.5 <= elapsed < 8
    message = str(info.value)
    assert "could not place 2 device workers for ['gpu(0)', 'gpu(1)'] within 1.5 s" in message
    assert re.search(r"asked for bundles \[\{'GPU': 1[^}]*\}, \{'GPU': 1[^}]*\}\] "
                     r"\(strategy PACK\)", message)
    assert "the cluster has CPU=4, GPU=0" in message          # the test session's Ray
    assert not mod.binded
    pending = [p for p in ray.util.placement_group_table().values()
               if p["state"] in ("PENDING", "RESCHEDULING")]
    assert pending == []                                 # the failed group was removed


def test_placement_timeout_setting_is_validated():
    with pytest.raises(ValueError, match="positive number of seconds"):
        set_placement_timeout(0)
    with pytest.raises(ValueError, match="positive number of seconds"):
        set_placement_timeout("5")
    assert set_placement_timeout(None) is None


def test_a_metric_stays_readable_after_its_workers_died(ray_session):
    x, y = classification_data(n=8)
    mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    mod.bind([("data", (8, 5))], [("softmax_label", (8,))])
    mod.init_params()
    mod.init_optimizer(kvstore="device")
    mod._set_max_worker_restarts(0)      # the loss is final here
    metric = rm.metric.Accuracy()
    mod.forward_backward(DataBatch([x], [y]))
    mod.update()
    mod.update_metric(metric, [y])
    assert metric.get()[1] >= 0 and metric.num_inst == 8          # drained: 8 samples
    mod.forward_backward(DataBatch([x], [y]))
    mod.update_metric(metric, [y])                                # dirty again
    os.kill(mod._exec_group._workers.pids()[1], signal.SIGKILL)
    with pytest.raises(WorkerError, match="died"):
        metric.get()
    # the sums of the lost batch are gone; the metric reads what it had, and no longer
    # reaches for the dead workers
    assert metric.num_inst == 8 and metric._remote_links == []
    metric.reset()
    assert metric.get()[0] == "accuracy"


def test_links_of_released_modules_do_not_pile_up(ray_session):
    x, y = classification_data(n=8)
    metric = rm.metric.Accuracy()
    for _ in range(3):
        mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
        mod.bind([("data", (8, 5))], [("softmax_label", (8,))], for_training=False)
        mod.init_params()
        mod.forward(DataBatch([x], [y]), is_train=False)
        mod.update_metric(metric, [y])
        metric.get()
        del mod
        gc.collect()
    metric.get()
    assert metric.num_inst == 24 and metric._remote_links == []
