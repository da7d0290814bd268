"""Metrics updated on the Ray workers read the same as metrics updated in the driver.

On Ray a metric's sums stay on the worker that holds the outputs; the driver's
metric drains them before any read or reset. So per-batch values, Speedometer
lines (auto_reset or not), fit's epoch-end line and score agree with the
in-process placement, including MXNet's per-device-slice averaging (Q4).
"""
import logging
import re

import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch, NDArrayIter

from ..module.nets import CPU2, classification_data, mlp

pytestmark = pytest.mark.usefixtures("ray_session")

BATCH = 8


def top_probability(label, pred):
    """A CustomMetric feval: mean probability of the predicted class (module level, so the
    workers can import it by reference)."""
    return float(np.max(pred, axis=1).mean())


def _metric():
    return rm.metric.CompositeEvalMetric([
        rm.metric.Accuracy(), rm.metric.CrossEntropy(),
        rm.metric.CustomMetric(top_probability, name="top_prob")])


def _fit(placement, caplog, auto_reset=True, record=True):
    """Fit 2 epochs of 6 batches; returns (per-batch values, Speedometer lines, epoch lines)."""
    rm.random.seed(8)
    mod = rm.mod.Module(mlp(), context=CPU2, placement=placement)
    x, y = classification_data(n=6 * BATCH, seed=5)
    seen = []

    def recorder(param):
        seen.append((param.epoch, param.nbatch, param.eval_metric.get_name_value(),
                     param.eval_metric.get_global_name_value()))

    callbacks = [rm.callback.Speedometer(BATCH, frequent=2, auto_reset=auto_reset)]
    if record:
        callbacks.append(recorder)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        mod.fit(NDArrayIter(x, y, batch_size=BATCH), eval_metric=_metric(), kvstore="device",
                num_epoch=2, initializer=rm.init.Xavier(), batch_end_callback=callbacks,
                optimizer_params={"learning_rate": 0.5, "momentum": 0.9})
    speed = [_strip_speed(r.getMessage()) for r in caplog.records
             if "samples/sec" in r.getMessage()]
    epoch = [r.getMessage() for r in caplog.records if "Train-" in r.getMessage()]
    return seen, speed, epoch


def _strip_speed(line):
    return re.sub(r"Speed: [0-9.inf]+ samples/sec", "Speed: _", line)


def _assert_values_equal(a, b):
    assert len(a) == len(b)
    for (na, va), (nb, vb) in zip(a, b, strict=True):
        assert na == nb
        assert va == pytest.approx(vb, rel=1e-5, abs=1e-7, nan_ok=True), na


def test_ray_fit_metrics_per_batch_speedometer_and_epoch_end_equal_in_process(caplog):
    seen_ip, speed_ip, epoch_ip = _fit("in_process", caplog)
    seen_ray, speed_ray, epoch_ray = _fit("ray", caplog)
    assert len(seen_ray) == 12 and len(speed_ray) == len(speed_ip) == 4
    for (e1, b1, local1, global1), (e2, b2, local2, global2) in zip(seen_ray, seen_ip,
                                                                    strict=True):
        assert (e1, b1) == (e2, b2)
        _assert_values_equal(local1, local2)
        _assert_values_equal(global1, global2)
    assert [n for n, _ in seen_ray[0][2]] == ["accuracy", "cross-entropy", "top_prob"]
    _assert_lines_equal(speed_ray, speed_ip)
    assert len(epoch_ray) == 2 * 3
    _assert_lines_equal(epoch_ray, epoch_ip)


def _numbers(line):
    return [float(v) for v in re.findall(r"=([-0-9.e]+)", line)]


def _assert_lines_equal(lines_a, lines_b):
    assert len(lines_a) == len(lines_b)
    for a, b in zip(lines_a, lines_b, strict=True):
        assert re.sub(r"=[-0-9.e]+", "=", a) == re.sub(r"=[-0-9.e]+", "=", b)
        assert _numbers(a) == pytest.approx(_numbers(b), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("auto_reset", [True, False])
def test_ray_speedometer_alone_drains_worker_sums(caplog, auto_reset):
    """Only the Speedometer reads the metric: its lines (reset_local or running) still agree."""
    _, speed_ip, epoch_ip = _fit("in_process", caplog, auto_reset=auto_reset, record=False)
    _, speed_ray, epoch_ray = _fit("ray", caplog, auto_reset=auto_reset, record=False)
    assert len(speed_ray) == 4
    assert ("Batch [2-4]" in speed_ray[1]) == auto_reset
    _assert_lines_equal(speed_ray, speed_ip)
    _assert_lines_equal(epoch_ray, epoch_ip)


def _regression_identity(ctx, placement):
    sym = rm.sym.LinearRegressionOutput(rm.sym.Variable("data"), name="lro")
    mod = rm.mod.Module(sym, label_names=["lro_label"], context=ctx, placement=placement)
    mod.bind([("data", (4, 1))], [("lro_label", (4, 1))], for_training=False)
    mod.init_params()
    return mod


@pytest.mark.parametrize("ctx,expected", [([rm.cpu()], np.sqrt(5.0)), (CPU2, 2.0)])
def test_ray_rmse_is_averaged_per_device_slice(ctx, expected):
    """Q4: RMSE over labels [1,1,3,3] vs zeros: 2.0 on two workers, sqrt(5) on one."""
    mod = _regression_identity(ctx, "ray")
    labels = np.array([[1], [1], [3], [3]], np.float32)
    mod.forward(DataBatch([np.zeros((4, 1), np.float32)], [labels]))
    metric = rm.metric.RMSE()
    mod.update_metric(metric, [labels])
    assert metric.get()[1] == pytest.approx(expected)
    assert metric.num_inst == len(ctx)
    # a second batch and a reset on the driver: the workers' sums are dropped with it
    mod.forward(DataBatch([np.zeros((4, 1), np.float32)], [labels]))
    mod.update_metric(metric, [labels])
    metric.reset()
    assert metric.num_inst == 0
    mod.update_metric(metric, [2 * labels])
    assert metric.get()[1] == pytest.approx(2 * expected)
    assert metric.get_global()[1] == pytest.approx(2 * expected)


def test_ray_one_metric_fed_by_two_modules_and_two_metrics_on_one_module():
    mods = [_regression_identity(CPU2, "ray"), _regression_identity([rm.cpu()], "ray")]
    labels = np.array([[1], [1], [3], [3]], np.float32)
    shared, mae = rm.metric.MSE(), rm.metric.MAE()
    for mod in mods:
        mod.forward(DataBatch([np.zeros((4, 1), np.float32)], [labels]))
        mod.update_metric(shared, [labels])
    mods[0].update_metric(mae, [labels])
    # per slice MSE: 2 devices give 1 and 9, one device gives 5: mean of three updates = 5
    assert shared.get()[1] == pytest.approx(5.0)     # a read drains both modules' workers
    assert shared.num_inst == 3
    assert mae.get() == ("mae", pytest.approx(2.0))


def test_ray_score_with_metric_list_equals_in_process():
    results = {}
    for placement in ("in_process", "ray"):
        rm.random.seed(9)
        mod = rm.mod.Module(mlp(), context=CPU2, placement=placement)
        mod.bind([("data", (BATCH, 5))], [("softmax_label", (BATCH,))], for_training=False)
        mod.init_params(initializer=rm.init.Xavier())
        x, y = classification_data(n=3 * BATCH, seed=6)
        results[placement] = mod.score(NDArrayIter(x, y, batch_size=BATCH),
                                       ["acc", "ce", rm.metric.TopKAccuracy(top_k=2)])
    _assert_values_equal(results["ray"], results["in_process"])


def test_metric_statistics_read_directly_equal_in_process():
    """`metric.sum_metric / metric.num_inst` drain the workers too, not only get()."""
    def run(placement):
        rm.random.seed(8)
        mod = rm.mod.Module(mlp(), context=CPU2, placement=placement)
        x, y = classification_data(n=4 * BATCH, seed=5)
        it = NDArrayIter(x, y, batch_size=BATCH)
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params(initializer=rm.init.Xavier())
        metric = rm.metric.Accuracy()
        for batch in it:
            mod.forward(batch, is_train=False)
            mod.update_metric(metric, batch.label)
        return metric.sum_metric, metric.num_inst, metric.global_num_inst

    assert run("ray") == run("in_process")
    assert run("ray")[1] == 4 * BATCH
