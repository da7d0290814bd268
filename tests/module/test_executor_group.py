"""DataParallelExecutorGroup: grad_req resolution, slicing, buffer sharing (reference section 4)."""
import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch, DataDesc
from raymod.module.executor_group import DataParallelExecutorGroup as GroupReexport
from raymod.parallel.errors import ModuleStateError
from raymod.parallel.executor_group import DataParallelExecutorGroup
from raymod.parallel.placement import create_worker_group

from .nets import CPU2, classification_data, mlp


def _group(sym=None, contexts=CPU2, data=(("data", (8, 5)),), label=(("softmax_label", (8,)),),
           param_names=None, for_training=True, inputs_need_grad=False, **kwargs):
    sym = mlp() if sym is None else sym
    inputs = [d[0] for d in data] + [lb[0] for lb in (label or ())]
    if param_names is None:
        param_names = [a for a in sym.list_arguments() if a not in inputs]
    return DataParallelExecutorGroup(
        sym, contexts, [1] * len(contexts), list(data), list(label) if label else None,
        param_names, for_training, inputs_need_grad,
        workers=kwargs.pop("workers", None) or create_worker_group(contexts),
        **kwargs)


def test_mxnet_import_path():
    assert GroupReexport is DataParallelExecutorGroup


# ---------------------------------------------------------------- grad_req (4.1)
def test_grad_req_str_with_fixed_params_and_inputs():
    g = _group(fixed_param_names=["fc1_bias"], inputs_need_grad=True, grad_req="add")
    assert g.grad_req == {"data": "add", "fc1_weight": "add", "fc1_bias": "null",
                          "fc2_weight": "add", "fc2_bias": "add", "softmax_label": "null"}
    assert g.grad_arrays[1] == [None, None]
    g = _group()
    assert g.grad_req["data"] == "null" and g.grad_req["fc1_bias"] == "write"
    assert g.input_grad_arrays is None


def test_grad_req_not_training_is_null():
    g = _group(for_training=False, grad_req="write")
    assert set(g.grad_req.values()) == {"null"}
    assert g.grad_arrays is None
    with pytest.raises(AssertionError, match="re-bind with for_training=True"):
        g.backward()


def test_grad_req_list_and_dict():
    names = mlp().list_arguments()
    reqs = ["null", "write", "add", "write", "null", "null"]
    g = _group(grad_req=reqs)
    assert g.grad_req == dict(zip(names, reqs))
    with pytest.raises(ValueError):
        _group(grad_req=["write"])
    g = _group(grad_req={"fc2_bias": "add", "data": "write"})
    assert g.grad_req["fc2_bias"] == "add" and g.grad_req["fc1_weight"] == "write"
    assert g.grad_req["data"] == "write" and g.grad_req["softmax_label"] == "null"
    with pytest.raises(ValueError, match="grad_req must be one of str, list, tuple, or dict."):
        _group(grad_req=3)


def test_grad_req_add_accumulates_and_update_never_zeroes():
    """Q22: with 'add', gradients keep accumulating; Module never zeroes them."""
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=1, name="fc")
    mod = rm.mod.Module(sym, label_names=None, context=CPU2)
    mod.bind([("data", (4, 2))], grad_req="add")
    mod.init_params()
    mod.init_optimizer(optimizer_params={"learning_rate": 0.0})
    batch = DataBatch([rm.nd.ones((4, 2))])
    for step in range(1, 4):
        mod.forward(batch)
        mod.backward([rm.nd.ones((4, 1))])
        # Read after backward: on Ray workers the arrays are snapshots taken on access.
        grads = mod._exec_group.grad_arrays
        assert [np.asarray(g).item() for g in grads[1]] == [2.0 * step, 2.0 * step]
        mod.update()
    mod2 = rm.mod.Module(sym, label_names=None, context=CPU2)
    mod2.bind([("data", (4, 2))], grad_req="write")
    mod2.init_params()
    for _ in range(2):
        mod2.forward(batch)
        mod2.backward([rm.nd.ones((4, 1))])
    assert [np.asarray(g).item() for g in mod2._exec_group.grad_arrays[1]] == [2.0, 2.0]


# ---------------------------------------------------------------- slicing and arrays
def test_arrays_slices_and_shapes():
    g = _group(contexts=[rm.cpu(0), rm.cpu(1), rm.cpu(2)], data=(("data", (10, 5)),),
               label=(("softmax_label", (10,)),))
    assert g.batch_size == 10
    assert g.slices == [slice(0, 3), slice(3, 6), slice(6, 10)]
    assert [(sl, a.shape) for sl, a in g.data_arrays[0]] == [
        (slice(0, 3), (3, 5)), (slice(3, 6), (3, 5)), (slice(6, 10), (4, 5))]
    assert [a.shape for _, a in g.label_arrays[0]] == [(3,), (3,), (4,)]
    assert len(g.param_arrays) == 4 and len(g.param_arrays[0]) == 3
    assert [p[0].shape for p in g.param_arrays] == [(8, 5), (8,), (3, 8), (3,)]
    assert g.get_output_shapes() == [("softmax_output", (10, 3))]
    assert g.data_names == ["data"] and g.label_names == ["softmax_label"]
    assert g.output_names == ["softmax_output"] and g.num_outputs == 1
    assert g._total_exec_bytes > 0
    # parameter replicas are separate buffers
    assert g.param_arrays[0][0] is not g.param_arrays[0][1]


def test_forward_copies_slices_and_merges_outputs():
    sym = rm.sym.Variable("data") * 2
    g = _group(sym=sym, contexts=CPU2, data=(("data", (5, 3)),), label=None, param_names=[])
    x = np.arange(15, dtype=np.float32).reshape(5, 3)
    g.forward(DataBatch([rm.nd.array(x)]), is_train=False)
    np.testing.assert_array_equal(g.data_arrays[0][0][1], x[:2])
    np.testing.assert_array_equal(g.data_arrays[0][1][1], x[2:])
    np.testing.assert_array_equal(g.get_outputs()[0], 2 * x)
    parts = g.get_outputs(merge_multi_context=False)
    assert [p.shape for p in parts[0]] == [(2, 3), (3, 3)]


def test_data_without_batch_axis_is_replicated():
    a = rm.sym.Variable("a")
    b = rm.sym.Variable("b")
    sym = rm.sym.broadcast_add(a, b)
    g = _group(sym=sym, data=(DataDesc("a", (4, 3)), DataDesc("b", (1, 3), layout="TC")),
               label=None, param_names=[])
    assert [arr.shape for _, arr in g.data_arrays[1]] == [(1, 3), (1, 3)]
    g.forward(DataBatch([rm.nd.ones((4, 3)), rm.nd.array([[1, 2, 3]])]), is_train=False)
    np.testing.assert_array_equal(g.get_outputs()[0], np.ones((4, 3)) + [1, 2, 3])


@pytest.mark.in_process_only("writes into one replica's array, a read-only snapshot on Ray")
def test_set_and_get_params_average_replicas():
    g = _group()
    w = {n: np.full(p[0].shape, 1.0, np.float32) for n, p in zip(g.param_names, g.param_arrays)}
    g.set_params(w, {})
    g.param_arrays[0][1][...] = 3.0           # make the replicas differ
    out = {n: np.zeros_like(v) for n, v in w.items()}
    g.get_params(out, {})
    np.testing.assert_array_equal(out["fc1_weight"], 2.0)
    np.testing.assert_array_equal(out["fc2_weight"], 1.0)
    with pytest.raises(ValueError, match='Find name "nope" that is not in the arguments'):
        g.set_params({"nope": np.zeros(1)}, {})
    g.set_params({"nope": np.zeros(1)}, {}, allow_extra=True)


def test_failed_group_bind_releases_workers():
    workers = create_worker_group([rm.cpu(0), rm.cpu(1), rm.cpu(2)])
    released = []
    workers.shutdown = lambda: released.append(True)
    with pytest.raises(ValueError, match="Too many slices"):
        _group(contexts=[rm.cpu(0), rm.cpu(1), rm.cpu(2)], data=(("data", (2, 5)),),
               label=(("softmax_label", (2,)),), workers=workers)
    assert released == [True]


def test_group2ctxs_not_supported():
    with pytest.raises(NotImplementedError, match="group2ctxs"):
        _group(group2ctxs={"dev1": rm.cpu(1)})


# ---------------------------------------------------------------- sharing (4.3)
@pytest.mark.in_process_only("compares the identity of the executors' arrays")
def test_shared_group_shares_params_grads_and_data_buffers():
    g1 = _group(data=(("data", (8, 5)),), label=(("softmax_label", (8,)),))
    g2 = _group(data=(("data", (6, 5)),), label=(("softmax_label", (6,)),), shared_group=g1)
    for pa1, pa2 in zip(g1.param_arrays, g2.param_arrays, strict=True):
        for a1, a2 in zip(pa1, pa2, strict=True):
            assert a1 is a2
    for ga1, ga2 in zip(g1.grad_arrays, g2.grad_arrays, strict=True):
        for a1, a2 in zip(ga1, ga2, strict=True):
            assert a1 is a2
    # smaller data buffers are views of the shared group's buffers
    for (_, d1), (_, d2) in zip(g1.data_arrays[0], g2.data_arrays[0], strict=True):
        assert d2.shape == (3, 5) and np.shares_memory(d1, d2)
    for name, req in g1.grad_req.items():
        assert g2.grad_req[name] == req
    # a larger batch cannot fit: new buffers, parameters still shared
    g3 = _group(data=(("data", (16, 5)),), label=(("softmax_label", (16,)),), shared_group=g1)
    assert not np.shares_memory(g1.data_arrays[0][0][1], g3.data_arrays[0][0][1])
    assert g3.param_arrays[2][1] is g1.param_arrays[2][1]


@pytest.mark.in_process_only("compares the identity of the executors' arrays")
def test_shared_group_extra_parameters_get_own_buffers():
    data = rm.sym.Variable("data")
    fc1 = rm.sym.FullyConnected(data, num_hidden=4, name="fc1")
    sym2 = rm.sym.FullyConnected(fc1, num_hidden=2, name="extra")
    g1 = _group(sym=rm.sym.SoftmaxOutput(fc1, name="softmax"), data=(("data", (4, 3)),),
                label=(("softmax_label", (4,)),))
    g2 = _group(sym=sym2, data=(("data", (4, 3)),), label=None, shared_group=g1,
                param_names=g1.param_names)
    e1, e2 = g1.execs[0], g2.execs[0]
    assert e2.arg_dict["fc1_weight"] is e1.arg_dict["fc1_weight"]
    assert e2.grad_dict["fc1_weight"] is e1.grad_dict["fc1_weight"]
    assert "extra_weight" in e2.arg_dict and "extra_weight" not in e1.arg_dict


def test_module_shared_module_binding(placement):
    x, y = classification_data(n=8)
    mod1 = rm.mod.Module(mlp(), context=CPU2)
    mod1.bind([("data", (8, 5))], [("softmax_label", (8,))])
    mod1.init_params(initializer=rm.init.Xavier())
    mod1.init_optimizer(optimizer_params={"learning_rate": 0.5})
    mod2 = rm.mod.Module(mlp(), context=CPU2)
    mod2.bind([("data", (4, 5))], [("softmax_label", (4,))], shared_module=mod1)
    assert mod2.params_initialized and mod2.optimizer_initialized
    assert mod2._arg_params is mod1._arg_params and mod2._aux_params is mod1._aux_params
    assert mod2._optimizer is mod1._optimizer and mod2._kvstore is mod1._kvstore
    g1, g2 = mod1._exec_group, mod2._exec_group
    if placement == "in_process":          # on Ray the views are copies: compare values
        for pa1, pa2 in zip(g1.param_arrays, g2.param_arrays, strict=True):
            assert all(a1 is a2 for a1, a2 in zip(pa1, pa2, strict=True))
    # training the second module moves the first module's weights (same buffers)
    before = np.array(g1.param_arrays[0][0])
    mod2.forward_backward(DataBatch([rm.nd.array(x[:4])], [rm.nd.array(y[:4])]))
    mod2.update()
    assert not np.allclose(g1.param_arrays[0][0], before)
    np.testing.assert_array_equal(g1.param_arrays[0][0], g2.param_arrays[0][0])


def test_shared_module_must_be_bound_and_initialized():
    mod1 = rm.mod.Module(mlp())
    mod2 = rm.mod.Module(mlp())
    with pytest.raises(AssertionError, match="shared_module"):
        mod2.bind([("data", (4, 5))], [("softmax_label", (4,))], shared_module=mod1)
    assert not mod2.binded
    mod1.bind([("data", (4, 5))], [("softmax_label", (4,))])
    with pytest.raises(ModuleStateError):
        mod2.bind([("data", (4, 5))], [("softmax_label", (4,))], shared_module=mod1)
    with pytest.raises(ModuleStateError):
        mod2.borrow_optimizer(mod1)


@pytest.mark.in_process_only("compares the identity of the executors' arrays")
def test_reshape_same_shapes_is_noop_and_new_shape_rebinds():
    g = _group()
    execs = g.execs
    g.reshape([("data", (8, 5))], [("softmax_label", (8,))])
    assert all(a is b for a, b in zip(execs, g.execs))
    g.reshape([("data", (4, 5))], [("softmax_label", (4,))])
    assert g.batch_size == 4 and g.slices == [slice(0, 2), slice(2, 4)]
    assert not any(a is b for a, b in zip(execs, g.execs))
    assert g.execs[0].arg_dict["fc1_weight"] is execs[0].arg_dict["fc1_weight"]


def test_shared_module_with_more_devices(placement):
    """A module on one device may share a module bound on two (it uses the first)."""
    mod1 = rm.mod.Module(mlp(), context=CPU2)
    mod1.bind([("data", (8, 5))], [("softmax_label", (8,))])
    mod1.init_params(initializer=rm.init.Xavier())
    mod2 = rm.mod.Module(mlp(), context=[rm.cpu(0)])
    mod2.bind([("data", (4, 5))], [("softmax_label", (4,))], shared_module=mod1)
    assert len(mod2._exec_group.execs) == 1
    if placement == "in_process":
        assert mod2._exec_group.param_arrays[0][0] is mod1._exec_group.param_arrays[0][0]
    x, y = classification_data(n=4)
    mod2.forward(DataBatch([rm.nd.array(x)], [rm.nd.array(y)]), is_train=False)
    mod1.forward(DataBatch([rm.nd.array(np.concatenate([x, x]))],
                           [rm.nd.array(np.concatenate([y, y]))]), is_train=False)
    np.testing.assert_allclose(mod2.get_outputs()[0], mod1.get_outputs()[0][:4], rtol=1e-6)
    mod3 = rm.mod.Module(mlp(), context=[rm.cpu(0), rm.cpu(1), rm.cpu(2)])
    with pytest.raises(ValueError, match="fewer"):
        mod3.bind([("data", (6, 5))], [("softmax_label", (6,))], shared_module=mod1)
    assert not mod3.binded
