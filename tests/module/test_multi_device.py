"""Data parallelism over several contexts: kvstore rules, slicing, metrics per slice."""
import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch, NDArrayIter
from raymod.module import kvstore_rules
from raymod.module.kvstore_rules import create_kvstore
from raymod.parallel.slicing import split_input_slice

from .nets import CPU2, classification_data, mlp

CPU3 = [rm.cpu(0), rm.cpu(1), rm.cpu(2)]


def _train(ctx, kvstore, steps=4, batch=12, optimizer="sgd", work_load_list=None,
           optimizer_params=(("learning_rate", 0.3), ("momentum", 0.9), ("wd", 0.01))):
    rm.random.seed(11)
    mod = rm.mod.Module(mlp(num_hidden=6), context=ctx, work_load_list=work_load_list)
    mod.bind([("data", (batch, 5))], [("softmax_label", (batch,))])
    mod.init_params(initializer=rm.init.Xavier())
    mod.init_optimizer(kvstore=kvstore, optimizer=optimizer,
                       optimizer_params=dict(optimizer_params))
    x, y = classification_data(n=batch * steps, seed=4)
    for batch_ in NDArrayIter(x, y, batch_size=batch):
        mod.forward_backward(batch_)
        mod.update()
    return mod, {k: v.copy() for k, v in mod.get_params()[0].items()}


@pytest.mark.parametrize("kvstore", ["local", "device"])
@pytest.mark.parametrize("optimizer,opt_params", [
    ("sgd", (("learning_rate", 0.3), ("momentum", 0.9), ("wd", 0.01))),
    ("adam", (("learning_rate", 0.05), ("wd", 0.01)))])
def test_two_devices_equal_one_device(kvstore, optimizer, opt_params):
    _, one = _train([rm.cpu()], kvstore, optimizer=optimizer, optimizer_params=opt_params)
    mod2, two = _train(CPU2, kvstore, optimizer=optimizer, optimizer_params=opt_params)
    # raymod's 'device' store only sums; each device applies the update (same numbers)
    assert mod2._update_on_kvstore == (kvstore == "local") and mod2._kvstore.type == kvstore
    start = _train([rm.cpu()], kvstore, steps=0)[1]
    for k in one:
        assert not np.allclose(one[k], start[k])          # training moved every parameter
        np.testing.assert_allclose(two[k], one[k], rtol=2e-5, atol=2e-6)
    # every device holds the same weights
    for per_dev in mod2._exec_group.param_arrays:
        np.testing.assert_array_equal(per_dev[0], per_dev[1])


def test_local_with_big_parameter_updates_on_devices(monkeypatch):
    """'local' with a parameter above the size limit: kvstore sums, each device updates."""
    monkeypatch.setattr(kvstore_rules, "_BIG_PARAM", 20)
    _, one = _train([rm.cpu()], "local")
    mod2, two = _train(CPU2, "local")
    assert mod2._kvstore is not None and not mod2._update_on_kvstore
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=2e-5, atol=2e-6)


def test_work_load_list_uneven_slices_equal_one_device():
    mod3, three = _train(CPU3, "local", work_load_list=[1, 3, 2])
    assert mod3._exec_group.slices == [slice(0, 2), slice(2, 8), slice(8, 12)]
    assert [a.shape for _, a in mod3._exec_group.data_arrays[0]] == [(2, 5), (6, 5), (4, 5)]
    _, one = _train([rm.cpu()], "local")
    for k in one:
        np.testing.assert_allclose(three[k], one[k], rtol=2e-5, atol=2e-6)


def test_kvstore_none_devices_drift():
    """Q5: kvstore=None, each device steps on its own gradient; get_params averages."""
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=1, name="fc")
    mod = rm.mod.Module(sym, label_names=None, context=CPU2)
    mod.bind([("data", (8, 1))])
    mod.init_params(initializer=rm.init.Zero())
    mod.init_optimizer(kvstore=None, optimizer_params={"learning_rate": 1.0})
    assert mod._kvstore is None and not mod._update_on_kvstore
    x = np.array([[1], [1], [1], [1], [3], [3], [3], [3]], np.float32)
    mod.forward(DataBatch([rm.nd.array(x)]))
    mod.backward([rm.nd.ones((8, 1))])
    mod.update()
    # dev0: grad_w = 4*1, dev1: grad_w = 4*3; rescale_grad = 1/8, lr 1
    dev_w = [np.asarray(w).item() for w in mod._exec_group.param_arrays[0]]
    assert dev_w == pytest.approx([-0.5, -1.5])
    assert mod.get_params()[0]["fc_weight"].item() == pytest.approx(-1.0)
    # with a kvstore the devices agree: the summed gradient (4 + 12)/8 = 2
    mod_kv = rm.mod.Module(sym, label_names=None, context=CPU2)
    mod_kv.bind([("data", (8, 1))])
    mod_kv.init_params(initializer=rm.init.Zero())
    mod_kv.init_optimizer(kvstore="local", optimizer_params={"learning_rate": 1.0})
    mod_kv.forward(DataBatch([rm.nd.array(x)]))
    mod_kv.backward([rm.nd.ones((8, 1))])
    mod_kv.update()
    dev_w = [np.asarray(w).item() for w in mod_kv._exec_group.param_arrays[0]]
    assert dev_w == pytest.approx([-2.0, -2.0])


def test_fit_epoch_end_syncs_replicas_after_drift():
    """fit ends each epoch with get_params + set_params: replicas get the average."""
    rm.random.seed(3)
    mod = rm.mod.Module(mlp(), context=CPU2)
    x, y = classification_data(n=32)
    mod.fit(NDArrayIter(x, y, batch_size=8), kvstore=None, num_epoch=1,
            optimizer_params={"learning_rate": 0.5})
    for per_dev in mod._exec_group.param_arrays:
        np.testing.assert_allclose(per_dev[0], per_dev[1], rtol=1e-6)


# ---------------------------------------------------------------- kvstore decision table
@pytest.mark.parametrize("num_device,kvstore,created,on_kv", [
    (1, "local", False, False), (1, "device", False, False), (1, None, False, False),
    (2, "local", True, True), (2, "device", True, False), (2, None, False, False),
    (4, "local", True, True)])
def test_update_on_kvstore_decision_table(num_device, kvstore, created, on_kv):
    params = {"w": np.zeros((3, 3), np.float32)}
    kv, update_on_kvstore = create_kvstore(kvstore, num_device, params)
    assert (kv is not None) == created
    assert update_on_kvstore == on_kv
    if created:
        assert kv.type == kvstore


def test_decision_table_big_local_parameter(monkeypatch):
    monkeypatch.setattr(kvstore_rules, "_BIG_PARAM", 8)
    params = {"w": np.zeros((3, 3), np.float32)}
    kv, on_kv = create_kvstore("local", 2, params)
    assert kv is not None and not on_kv
    kv, on_kv = create_kvstore("device", 2, params)       # 'device' never updates in the store
    assert kv is not None and not on_kv
    params = {"w": np.zeros((2, 4), np.float32)}          # exactly at the limit: on kvstore
    assert create_kvstore("local", 2, params)[1]


def test_decision_table_kvstore_object_and_bad_type():
    store = rm.kv.create("local")
    kv, on_kv = create_kvstore(store, 1, {})
    assert kv is store and on_kv                          # an object is used even for 1 device
    with pytest.raises(TypeError, match="kvstore must be KVStore, str or None"):
        create_kvstore(3, 2, {})


def test_module_rescale_grad_and_kvstore_fields():
    mod = rm.mod.Module(mlp(), context=CPU2)
    mod.bind([("data", (10, 5))], [("softmax_label", (10,))])
    mod.init_params()
    mod.init_optimizer(kvstore="device", optimizer_params={"learning_rate": 0.1})
    assert mod._optimizer.rescale_grad == pytest.approx(0.1)
    assert mod._kvstore.type == "device" and not mod._update_on_kvstore
    for name in mod._exec_group.param_names:
        np.testing.assert_array_equal(mod._kvstore.value(name), mod.get_params()[0][name])


# ---------------------------------------------------------------- slicing
@pytest.mark.parametrize("batch,work,expected", [
    (7, [1, 1], [(0, 4), (4, 7)]), (5, [1, 1], [(0, 2), (2, 5)]),
    (10, [1, 1, 1], [(0, 3), (3, 6), (6, 10)]), (8, [1, 3], [(0, 2), (2, 8)]),
    (9, [2, 1], [(0, 6), (6, 9)]), (11, [1, 1, 1, 1], [(0, 3), (3, 6), (6, 9), (9, 11)])])
def test_split_input_slice(batch, work, expected):
    assert split_input_slice(batch, work) == [slice(a, b) for a, b in expected]


def test_split_input_slice_too_many():
    with pytest.raises(ValueError, match="Too many slices. Some splits are empty."):
        split_input_slice(2, [1, 1, 1])


def test_bind_batch_smaller_than_devices_fails_before_binding():
    mod = rm.mod.Module(mlp(), context=CPU3)
    with pytest.raises(ValueError, match="Too many slices"):
        mod.bind([("data", (2, 5))], [("softmax_label", (2,))])
    assert not mod.binded


def test_inconsistent_batch_sizes_rejected():
    data = rm.sym.Variable("a") + rm.sym.Variable("b")
    mod = rm.mod.Module(data, data_names=["a", "b"], label_names=None, context=CPU2)
    with pytest.raises(ValueError, match="all data must have the same batch size"):
        mod.bind([("a", (4, 3)), ("b", (6, 3))])
    assert not mod.binded


def test_presliced_batch_list():
    """A list of DataBatch gives each device its own batch (pre-sliced), in order."""
    sym = rm.sym.Variable("data") * 3
    mod = rm.mod.Module(sym, label_names=None, context=CPU2)
    mod.bind([("data", (4, 2))])
    mod.init_params()
    b0 = DataBatch([rm.nd.array(np.ones((2, 2)))])
    b1 = DataBatch([rm.nd.array(2 * np.ones((2, 2)))])
    mod.forward([b0, b1])
    out = mod.get_outputs()[0]
    np.testing.assert_array_equal(out, np.array([[3, 3], [3, 3], [6, 6], [6, 6]]))
    with pytest.raises(ValueError, match="same shape"):
        mod.forward([b0, DataBatch([rm.nd.ones((3, 2))])])


# ---------------------------------------------------------------- metrics per slice (Q4)
def _regression_identity(ctx):
    sym = rm.sym.LinearRegressionOutput(rm.sym.Variable("data"), name="lro")
    mod = rm.mod.Module(sym, label_names=["lro_label"], context=ctx)
    mod.bind([("data", (4, 1))], [("lro_label", (4, 1))], for_training=False)
    mod.init_params()
    return mod


@pytest.mark.parametrize("ctx,expected", [([rm.cpu()], np.sqrt(5.0)), (CPU2, 2.0)])
def test_metric_updated_per_device_slice(ctx, expected):
    mod = _regression_identity(ctx)
    labels = rm.nd.array(np.array([[1], [1], [3], [3]], np.float32))
    mod.forward(DataBatch([rm.nd.zeros((4, 1))], [labels]))
    metric = rm.metric.RMSE()
    mod.update_metric(metric, [labels])
    assert metric.get()[1] == pytest.approx(expected)
    assert metric.num_inst == len(ctx)


def test_update_metric_pre_sliced_labels():
    mod = _regression_identity(CPU2)
    mod.forward(DataBatch([rm.nd.zeros((4, 1))], [rm.nd.zeros((4, 1))]))
    metric = rm.metric.MAE()
    mod.update_metric(metric, [[rm.nd.full((2, 1), 1.0)], [rm.nd.full((2, 1), 3.0)]],
                      pre_sliced=True)
    assert metric.get()[1] == pytest.approx(2.0)


def test_update_metric_without_labels():
    """Q24: a module bound without labels still updates a label-free metric."""
    sym = rm.sym.MakeLoss(rm.sym.Variable("data"), name="loss")
    mod = rm.mod.Module(sym, label_names=None, context=CPU2)
    mod.bind([("data", (4, 1))])
    mod.init_params()
    mod.forward(DataBatch([rm.nd.array(np.array([[1], [2], [3], [6]], np.float32))]))
    metric = rm.metric.Loss()
    mod.update_metric(metric, None)
    assert metric.get()[1] == pytest.approx(3.0)


def test_presliced_batch_list_with_new_batch_size():
    """A list of per-device batches of another size reshapes to the whole batch."""
    x, y = classification_data(n=6)
    mod = rm.mod.Module(mlp(), context=CPU2)
    mod.bind([("data", (4, 5))], [("softmax_label", (4,))])
    mod.init_params(initializer=rm.init.Xavier())
    parts = [DataBatch([rm.nd.array(x[:3])], [rm.nd.array(y[:3])],
                       provide_data=[("data", (3, 5))], provide_label=[("softmax_label", (3,))]),
             DataBatch([rm.nd.array(x[3:])], [rm.nd.array(y[3:])],
                       provide_data=[("data", (3, 5))], provide_label=[("softmax_label", (3,))])]
    mod.forward(parts, is_train=False)
    assert mod.data_shapes[0].shape == (6, 5)
    assert mod.label_shapes[0].shape == (6,)
    whole = mod.get_outputs()[0].copy()
    mod.forward(DataBatch([rm.nd.array(x)], [rm.nd.array(y)]), is_train=False)
    np.testing.assert_allclose(whole, mod.get_outputs()[0], rtol=1e-6)
