"""Monitor on a Module and the known-answer SGD step of the step-by-step network."""
import logging

import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch, NDArrayIter

from .nets import STEP_DATA, STEP_LABEL, STEP_PARAMS, step_by_step_net

MXNET_ENTRIES = [
    "act_0_backward_output", "act_0_output", "act_1_backward_output", "act_1_output", "data",
    "fc_0_backward_output0", "fc_0_backward_output1", "fc_0_backward_output2", "fc_0_bias",
    "fc_0_output", "fc_0_weight", "fc_1_backward_output0", "fc_1_backward_output1",
    "fc_1_backward_output2", "fc_1_bias", "fc_1_output", "fc_1_weight",
    "softmax_backward_output0", "softmax_backward_output1", "softmax_label", "softmax_output"]


def _step_module(mon=None):
    train_data = NDArrayIter(STEP_DATA, STEP_LABEL, batch_size=1)
    mod = rm.mod.Module(step_by_step_net(), context=[rm.cpu()])
    mod.bind(train_data.provide_data, label_shapes=train_data.provide_label, for_training=True)
    if mon is not None:
        mod.install_monitor(mon)
    mod.init_params(arg_params=STEP_PARAMS)
    return mod, train_data


def mean_abs(x):
    return np.sum(np.abs(x)) / x.size


def test_monitor():
    """MXNet's test_monitor: 21 entries, every op output, backward output and argument."""
    mon = rm.mon.Monitor(1, stat_func=mean_abs, pattern=".*", sort=True)
    mod, train_data = _step_module(mon)
    mon.tic()
    mod.forward_backward(next(iter(train_data)))
    res = mon.toc()
    assert [k for _, k, _ in res] == MXNET_ENTRIES
    keys = ["act_0", "act_1", "data", "fc_0", "fc_1", "softmax"]
    counts = [0] * len(keys)
    for _, k, _ in res:
        for idx, key in enumerate(keys):
            if k.startswith(key):
                counts[idx] += 1
                break
    assert counts == [2, 2, 1, 6, 6, 4]
    stats = {k: float(v) for _, k, v in res}
    assert all(n == 1 for n, _, _ in res)
    assert stats["data"] == pytest.approx(0.075)
    assert stats["fc_0_weight"] == pytest.approx(0.225)
    assert stats["softmax_label"] == pytest.approx(0.5)
    h = 1 / (1 + np.exp(-(STEP_DATA @ STEP_PARAMS["fc_0_weight"].T + STEP_PARAMS["fc_0_bias"])))
    assert stats["act_0_output"] == pytest.approx(np.mean(h), rel=1e-5)
    # The data gradient is not requested (grad_req null): raymod still reports the entry,
    # so the 21 names match MXNet's, with a zero array (MXNet leaves it uncomputed too).
    assert stats["fc_0_backward_output0"] == 0.0
    assert mon.toc() == []                 # deactivated after toc


def test_known_answer_sgd_step():
    """Reference 12.3: one SGD step, lr 0.5, batch 1 (MXNet 1.9.1 numbers)."""
    mod, train_data = _step_module()
    mod.init_optimizer(optimizer_params={"learning_rate": 0.5})
    mod.forward_backward(next(iter(train_data)))
    mod.update()
    arg = mod.get_params()[0]
    np.testing.assert_allclose(arg["fc_1_weight"], [[0.358916, 0.408666], [0.511301, 0.561370]],
                               atol=2e-6)
    np.testing.assert_allclose(arg["fc_1_bias"], [0.530751, 0.619049], atol=2e-6)
    np.testing.assert_allclose(arg["fc_0_weight"], [[0.149781, 0.199561],
                                                    [0.249751, 0.299502]], atol=2e-6)
    np.testing.assert_allclose(arg["fc_0_bias"], [0.345614, 0.345023], atol=2e-6)


def test_monitor_interval_pattern_and_default_stat():
    mon = rm.mon.Monitor(2, pattern="fc_1_.*")
    mod, train_data = _step_module(mon)
    batch = next(iter(train_data))
    collected = []
    for _ in range(4):
        mon.tic()
        mod.forward_backward(batch)
        collected.append(mon.toc())
    assert [len(c) > 0 for c in collected] == [True, False, True, False]
    names = [k for _, k, _ in collected[0]]
    assert all(k.startswith("fc_1_") for k in names)
    assert {"fc_1_weight", "fc_1_bias", "fc_1_output"} <= set(names)
    stat = {k: float(v) for _, k, v in collected[0]}
    w = STEP_PARAMS["fc_1_weight"]
    assert stat["fc_1_weight"] == pytest.approx(np.linalg.norm(w) / np.sqrt(w.size), rel=1e-6)
    assert [n for n, _, _ in collected[2]][0] == 3


def test_monitor_toc_print_and_fit(caplog):
    mon = rm.mon.Monitor(1, pattern="fc_0_weight")
    mod, train_data = _step_module()
    with caplog.at_level(logging.INFO), pytest.warns(UserWarning, match="init_params call ignored"):
        mod.fit(train_data, num_epoch=2, monitor=mon, optimizer_params={"learning_rate": 0.5})
    lines = [r.message for r in caplog.records if r.message.startswith("Batch:")]
    assert len(lines) == 2
    assert lines[0].split()[1:3] == ["1", "fc_0_weight"]


def test_monitor_survives_reshape():
    mon = rm.mon.Monitor(1, pattern=".*_output$")
    data = rm.sym.Variable("data")
    sym = rm.sym.Activation(rm.sym.FullyConnected(data, num_hidden=2, name="fc"),
                            act_type="relu", name="relu")
    mod = rm.mod.Module(sym, label_names=None)
    mod.bind([("data", (2, 3))], for_training=False)
    mod.install_monitor(mon)
    mod.init_params()
    mod.forward(DataBatch([rm.nd.ones((5, 3))]))      # a new batch size: reshape
    mon.tic()
    mod.forward(DataBatch([rm.nd.ones((5, 3))]))
    assert {k for _, k, _ in mon.toc()} == {"fc_output", "relu_output"}


def test_monitor_text_format_matches_mxnet():
    """Each stat is printed followed by a tab; a list of stats gives one field each."""
    mon = rm.mon.Monitor(1, stat_func=lambda x: [np.float32(x.size), np.asarray(x.shape)],
                         pattern="fc_1_weight")
    mod, train_data = _step_module(mon)
    mon.tic()
    mod.forward(next(iter(train_data)), is_train=False)
    assert mon.toc() == [(1, "fc_1_weight", "4.0\t[2 2]\t")]
