"""Training on Ray actors gives the numbers of training in the driver's process.

Every kvstore type, two optimizers with state (SGD momentum, Adam), one and
two CPU workers: k steps on Ray equal k steps of in-process training with
one device and the same global batch (Q5: kvstore=None drifts, so it equals
in-process training on the same two devices instead).
"""
import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch, DataDesc, NDArrayIter
from raymod.module import kvstore_rules

from ..module.nets import CPU2, classification_data, mlp

pytestmark = pytest.mark.usefixtures("ray_session")

ONE = [rm.cpu(0)]
OPTIMIZERS = {
    "sgd": (("learning_rate", 0.3), ("momentum", 0.9), ("wd", 0.01)),
    "adam": (("learning_rate", 0.05), ("wd", 0.01)),
}
STEPS, BATCH = 4, 12


def _train(ctx, kvstore, optimizer, placement, steps=STEPS):
    rm.random.seed(11)
    mod = rm.mod.Module(mlp(num_hidden=6), context=ctx, placement=placement)
    mod.bind([("data", (BATCH, 5))], [("softmax_label", (BATCH,))])
    mod.init_params(initializer=rm.init.Xavier())
    mod.init_optimizer(kvstore=kvstore, optimizer=optimizer,
                       optimizer_params=dict(OPTIMIZERS[optimizer]))
    x, y = classification_data(n=BATCH * steps, seed=4)
    for batch in NDArrayIter(x, y, batch_size=BATCH):
        mod.forward_backward(batch)
        mod.update()
    return mod, {k: v.copy() for k, v in mod.get_params()[0].items()}


_reference = {}


def _in_process(ctx, kvstore, optimizer):
    key = (len(ctx), kvstore, optimizer)
    if key not in _reference:
        _reference[key] = _train(ctx, kvstore, optimizer, "in_process")[1]
    return _reference[key]


def _replicas(mod):
    """Each worker's own copy of the parameters (fetched from the actors)."""
    group = mod._exec_group
    return [arg for arg, _ in group._call("get_params", group._key, group.param_names, [])]


def _assert_params_close(got, expected):
    assert got.keys() == expected.keys()
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], rtol=2e-5, atol=2e-6, err_msg=k)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("kvstore", ["local", "device", "dist_sync"])
@pytest.mark.parametrize("ctx", [ONE, CPU2], ids=["1worker", "2workers"])
def test_ray_training_equals_one_in_process_device(ctx, kvstore, optimizer):
    expected = _in_process(ONE, kvstore, optimizer)
    start = _train(ONE, kvstore, optimizer, "in_process", steps=0)[1]
    mod, got = _train(ctx, kvstore, optimizer, "ray")
    assert not mod._exec_group._workers.in_process
    for k in expected:
        assert not np.allclose(expected[k], start[k]), k        # training moved it
    _assert_params_close(got, expected)
    replicas = _replicas(mod)
    assert len(replicas) == len(ctx)
    for other in replicas[1:]:                                   # workers agree exactly
        for k in other:
            np.testing.assert_array_equal(other[k], replicas[0][k])


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("ctx", [ONE, CPU2], ids=["1worker", "2workers"])
def test_ray_kvstore_none_equals_in_process_same_devices(ctx, optimizer):
    """Q5: without a kvstore each worker steps on its own slice; get_params averages."""
    mod, got = _train(ctx, None, optimizer, "ray")
    assert mod._kvstore is None
    _assert_params_close(got, _in_process(ctx, None, optimizer))
    if len(ctx) == 2:
        a, b = _replicas(mod)
        assert not np.allclose(a["fc1_weight"], b["fc1_weight"])    # the replicas drifted


def test_ray_local_with_big_parameter_exchanges_between_workers(monkeypatch):
    """'local' with a parameter over the size limit: workers exchange gradients, each updates."""
    monkeypatch.setattr(kvstore_rules, "_BIG_PARAM", 20)
    mod, got = _train(CPU2, "local", "sgd", "ray")
    assert mod._kvstore is not None and not mod._update_on_kvstore
    expected = _train(ONE, "local", "sgd", "in_process")[1]
    _assert_params_close(got, expected)


def test_ray_uneven_work_load_list_equals_one_device():
    rm.random.seed(11)
    mod = rm.mod.Module(mlp(num_hidden=6), context=CPU2, work_load_list=[1, 3],
                        placement="ray")
    mod.bind([("data", (BATCH, 5))], [("softmax_label", (BATCH,))])
    assert mod._exec_group.slices == [slice(0, 3), slice(3, 12)]
    mod.init_params(initializer=rm.init.Xavier())
    mod.init_optimizer(kvstore="device", optimizer="sgd",
                       optimizer_params=dict(OPTIMIZERS["sgd"]))
    x, y = classification_data(n=BATCH * STEPS, seed=4)
    for batch in NDArrayIter(x, y, batch_size=BATCH):
        mod.forward_backward(batch)
        mod.update()
    _assert_params_close(mod.get_params()[0], _in_process(ONE, "device", "sgd"))


# ---------------------------------------------------------------- aux states and outputs
def _bn_net():
    data = rm.sym.Variable("data")
    fc = rm.sym.FullyConnected(data, num_hidden=4, name="fc")
    bn = rm.sym.BatchNorm(fc, name="bn", fix_gamma=False, momentum=0.5)
    return rm.sym.LinearRegressionOutput(bn, name="lro")


def test_ray_get_params_averages_batchnorm_moving_stats():
    x = np.concatenate([np.zeros((4, 3)), 10 * np.ones((4, 3))]).astype(np.float32)
    x += np.arange(24, dtype=np.float32).reshape(8, 3) / 10
    results = {}
    for placement in ("in_process", "ray"):
        rm.random.seed(2)
        mod = rm.mod.Module(_bn_net(), label_names=["lro_label"], context=CPU2,
                            placement=placement)
        mod.bind([("data", (8, 3))], [("lro_label", (8, 4))])
        mod.init_params(initializer=rm.init.Xavier())
        mod.init_optimizer(kvstore="device", optimizer_params={"learning_rate": 0.1})
        mod.forward_backward(DataBatch([x], [np.zeros((8, 4), np.float32)]))
        mod.update()          # marks the parameters dirty, so get_params fetches them
        results[placement] = mod.get_params()[1]
        per_worker = [aux for _, aux in mod._exec_group._call(
            "get_params", mod._exec_group._key, [], mod._exec_group.aux_names)]
        # the halves see different data: each worker's moving mean differs ...
        assert not np.allclose(per_worker[0]["bn_moving_mean"], per_worker[1]["bn_moving_mean"])
        # ... and get_params reports their average
        np.testing.assert_allclose(results[placement]["bn_moving_mean"],
                                   (per_worker[0]["bn_moving_mean"] +
                                    per_worker[1]["bn_moving_mean"]) / 2, rtol=1e-6)
    for name in results["in_process"]:
        np.testing.assert_allclose(results["ray"][name], results["in_process"][name],
                                   rtol=1e-6, atol=1e-7)


def test_ray_outputs_merge_along_each_outputs_batch_axis():
    """A TNC output merges along axis 1, an NC output along axis 0 (Group of both)."""
    data = rm.sym.Variable("data")
    tnc = rm.sym.Activation(data, act_type="relu", name="tnc", __layout__="TNC")
    nc = rm.sym.sum(data, axis=0, name="nc")          # (T, N, C) -> (N, C)
    mod = rm.mod.Module(rm.sym.Group([tnc, nc]), label_names=None, context=CPU2,
                        placement="ray")
    dshape = (3, 8, 5)
    mod.bind(data_shapes=[DataDesc("data", dshape, layout="TNC")], for_training=False)
    mod.init_params()
    x = np.arange(np.prod(dshape), dtype=np.float32).reshape(dshape) - 60
    mod.forward(DataBatch([x]), is_train=False)
    out_tnc, out_nc = mod.get_outputs()
    np.testing.assert_array_equal(out_tnc, np.maximum(x, 0))
    np.testing.assert_allclose(out_nc, x.sum(axis=0), rtol=1e-6)
    parts = mod.get_outputs(merge_multi_context=False)
    assert [p.shape for p in parts[0]] == [(3, 4, 5), (3, 4, 5)]
    assert [p.shape for p in parts[1]] == [(4, 5), (4, 5)]
    assert mod.output_shapes == [("tnc_output", dshape), ("nc_output", (8, 5))]


# ---------------------------------------------------------------- fit / score / predict
def _fit(placement, ctx=CPU2, kvstore="device"):
    rm.random.seed(5)
    mod = rm.mod.Module(mlp(), context=ctx, placement=placement)
    x, y = classification_data(n=48, seed=1)
    vx, vy = classification_data(n=24, seed=2)
    mod.fit(NDArrayIter(x, y, batch_size=12), eval_data=NDArrayIter(vx, vy, batch_size=12),
            kvstore=kvstore, num_epoch=2, initializer=rm.init.Xavier(),
            optimizer_params={"learning_rate": 0.5, "momentum": 0.9})
    score = mod.score(NDArrayIter(vx, vy, batch_size=12), ["acc", "ce"])
    pred = mod.predict(NDArrayIter(vx, vy, batch_size=12))
    return mod, score, pred


@pytest.mark.parametrize("kvstore", ["device", None])
def test_ray_fit_score_predict_equal_in_process(kvstore):
    _, score_ip, pred_ip = _fit("in_process", kvstore=kvstore)
    mod, score_ray, pred_ray = _fit("ray", kvstore=kvstore)
    assert [n for n, _ in score_ray] == ["accuracy", "cross-entropy"]
    for (n1, v1), (n2, v2) in zip(score_ray, score_ip, strict=True):
        assert n1 == n2 and v1 == pytest.approx(v2, rel=1e-5), n1
    assert pred_ray.shape == (24, 3)
    np.testing.assert_allclose(pred_ray, pred_ip, rtol=1e-5, atol=1e-6)
    # fit's epoch end synchronises the replicas (get_params + set_params)
    a, b = _replicas(mod)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6)


def test_ray_iter_predict_and_uneven_last_batch():
    """predict with a padded last batch drops the padding, as in-process does."""
    preds = {}
    for placement in ("in_process", "ray"):
        rm.random.seed(6)
        mod = rm.mod.Module(mlp(), context=CPU2, placement=placement)
        mod.bind([("data", (8, 5))], [("softmax_label", (8,))], for_training=False)
        mod.init_params(initializer=rm.init.Xavier())
        x, _ = classification_data(n=20, seed=3)
        preds[placement] = mod.predict(NDArrayIter(x, batch_size=8))
        outs = [o[0] for o, _, _ in mod.iter_predict(NDArrayIter(x, batch_size=8))]
        assert [o.shape[0] for o in outs] == [8, 8, 4]
    assert preds["ray"].shape == (20, 3)
    np.testing.assert_allclose(preds["ray"], preds["in_process"], rtol=1e-6)


def test_ray_optimizer_states_save_load_roundtrip(tmp_path):
    """Worker-held optimizer states (kvstore=None) come back and go in again by name."""
    mod, _ = _train(CPU2, None, "sgd", "ray")
    fname = str(tmp_path / "m.states")
    mod.save_optimizer_states(fname)
    ref, _ = _train(CPU2, None, "sgd", "in_process")
    ref_file = str(tmp_path / "ref.states")
    ref.save_optimizer_states(ref_file)
    with open(fname, "rb") as f, open(ref_file, "rb") as g:
        assert f.read() == g.read()
    fresh, _ = _train(CPU2, None, "sgd", "ray", steps=0)
    fresh.load_optimizer_states(fname)
    group = fresh._exec_group
    assert group.get_updater_states() == ref._exec_group.get_updater_states()
