"""MXNet 1.x's tests/python/unittest/test_module.py, ported (both placements)."""
from collections import namedtuple

import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch, DataDesc

from .nets import CPU2, mlp


def test_module_dtype(placement):
    dtype = np.float16
    dshape = (3, 8, 7)
    sym = rm.sym.Activation(data=rm.sym.Variable("data"), act_type="relu", __layout__="TNC")
    mod = rm.mod.Module(sym, ("data",), None, context=CPU2, placement=placement)
    mod.bind(data_shapes=[DataDesc("data", dshape, dtype, layout="TNC")])
    mod.init_params()
    mod.forward(DataBatch(data=[rm.nd.ones(dshape, dtype=dtype)], label=None))
    mod.backward([rm.nd.ones(dshape, dtype=dtype)])
    outputs = mod.get_outputs()
    assert len(outputs) == 1
    for x in outputs:
        assert x.dtype == dtype
        assert x.shape == dshape
    for x in mod.get_outputs(merge_multi_context=False)[0]:
        assert x.dtype == dtype and x.shape == (3, 4, 7)


def test_module_bind():
    sym = rm.sym.Activation(data=rm.sym.Variable("data"), act_type="relu", __layout__="TNC")
    mod = rm.mod.Module(sym, ("data",), None, context=CPU2)
    with pytest.raises(TypeError):
        mod.bind(data_shapes=[("data", rm.nd.array([10, 10]))])
    assert mod.binded is False
    with pytest.raises(TypeError):
        mod.bind(data_shapes=[("data", (10, 2.5))])
    assert mod.binded is False
    mod.bind(data_shapes=[("data", (10, 10))])
    assert mod.binded is True


def test_bind_name_mismatch_is_value_error_and_state_unchanged():
    mod = rm.mod.Module(mlp())
    with pytest.raises(ValueError, match="don't match names specified by data_names"):
        mod.bind(data_shapes=[("x", (4, 5))], label_shapes=[("softmax_label", (4,))])
    assert not mod.binded and not mod.for_training


def test_bind_label_mismatch_only_warns():
    mod = rm.mod.Module(mlp())
    with pytest.warns(UserWarning, match=r"label_shapes don't match names specified by "
                                         r"label_names \(\[\] vs. \['softmax_label'\]\)"):
        mod.bind(data_shapes=[("data", (4, 5))], for_training=False)
    assert mod.binded and mod.label_shapes is None


def test_bind_label_shapes_empty_list_is_none():
    """Q23: label_shapes=[] behaves like None (MXNet failed with a bare assert)."""
    sym = rm.sym.Variable("data") * 2
    mod = rm.mod.Module(sym, label_names=None)
    mod.bind(data_shapes=[("data", (4, 3))], label_shapes=[])
    assert mod.label_shapes is None


def test_module_input_grads(placement):
    a = rm.sym.Variable("a", __layout__="NC")
    b = rm.sym.Variable("b", __layout__="NC")
    c = rm.sym.Variable("c", __layout__="NC")
    c = a + 2 * b + 3 * c
    net = rm.mod.Module(c, data_names=["b", "c", "a"], label_names=None, context=CPU2,
                        placement=placement)
    net.bind(data_shapes=[["b", (5, 5)], ["c", (5, 5)], ["a", (5, 5)]],
             label_shapes=None, inputs_need_grad=True)
    net.init_params()
    net.forward(data_batch=DataBatch(data=[rm.nd.ones((5, 5)), rm.nd.ones((5, 5)),
                                           rm.nd.ones((5, 5))]))
    net.backward(out_grads=[rm.nd.ones((5, 5))])
    input_grads = net.get_input_grads()
    b_grad, c_grad, a_grad = (g.asnumpy() for g in input_grads)
    assert b_grad.shape == (5, 5)
    assert np.all(a_grad == 1), a_grad
    assert np.all(b_grad == 2), b_grad
    assert np.all(c_grad == 3), c_grad
    per_device = net.get_input_grads(merge_multi_context=False)
    assert [g.shape for g in per_device[0]] == [(2, 5), (3, 5)]   # (5, [1, 1]) -> [0:2, 2:5]


def test_module_ctx_group_not_supported():
    """test_module_ctx_group is model parallelism (group2ctxs): raymod refuses it clearly."""
    with rm.AttrScope(ctx_group="dev1"):
        a = rm.sym.Variable("a") * 2
    with rm.AttrScope(ctx_group="dev2"):
        c = a + rm.sym.Variable("b")
    with pytest.raises(NotImplementedError, match="group2ctxs"):
        rm.mod.Module(c, context=[rm.cpu(0)], data_names=["a", "b"], label_names=None,
                      group2ctxs={"dev1": rm.cpu(1), "dev2": rm.cpu(2)})
    mod = rm.mod.Module(c, context=[rm.cpu(0)], data_names=["a", "b"], label_names=None,
                        group2ctxs=None)
    mod.bind(data_shapes=[["a", (2, 5)], ["b", (2, 5)]], inputs_need_grad=True)
    mod.init_params()
    mod.forward(DataBatch(data=[rm.nd.ones((2, 5)), rm.nd.ones((2, 5))]), is_train=True)
    mod.backward([rm.nd.ones((2, 5))])
    ga, gb = mod.get_input_grads()
    np.testing.assert_array_equal(ga, 2 * np.ones((2, 5)))
    np.testing.assert_array_equal(gb, np.ones((2, 5)))


def test_module_layout(placement):
    sym = rm.sym.Activation(data=rm.sym.Variable("data"), act_type="relu", __layout__="TNC")
    dshape = (3, 8, 7)
    mod = rm.mod.Module(sym, ("data",), None, context=CPU2, placement=placement)
    mod.bind(data_shapes=[DataDesc("data", dshape, layout="TNC")])
    mod.init_params()
    x = np.arange(np.prod(dshape), dtype=np.float32).reshape(dshape) - 80
    mod.forward(DataBatch(data=[rm.nd.array(x)], label=None))
    mod.backward([rm.nd.ones(dshape)])
    out = mod.get_outputs()[0]
    assert out.shape == dshape
    # Merged along axis 1 (the N of TNC): equal to relu of the whole batch.
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    hdshape = (3, 4, 7)
    parts = mod.get_outputs(merge_multi_context=False)[0]
    assert len(parts) == 2
    for x_dev in parts:
        assert x_dev.shape == hdshape
    np.testing.assert_array_equal(parts[1], np.maximum(x[:, 4:], 0))
    # output shapes report the whole batch on the layout's batch axis
    assert mod.output_shapes == [(sym.list_outputs()[0], dshape)]


@pytest.mark.parametrize("ctx", [[rm.cpu(0)], CPU2])
def test_module_reshape(ctx):
    """Q1: rescale_grad stays 1/7 after reshaping to 14, so the bias goes -1 then -3."""
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=20, name="fc")
    dshape = (7, 20)
    mod = rm.mod.Module(sym, ("data",), None, context=ctx)
    mod.bind(data_shapes=[("data", dshape)])
    mod.init_params()
    mod.init_optimizer(optimizer_params={"learning_rate": 1})
    mod.forward(DataBatch(data=[rm.nd.ones(dshape)], label=None))
    mod.backward([rm.nd.ones(dshape)])
    mod.update()
    assert mod.get_outputs()[0].shape == dshape
    np.testing.assert_allclose(mod.get_params()[0]["fc_bias"], -1, rtol=1e-6)

    dshape = (14, 20)
    mod.reshape(data_shapes=[("data", dshape)])
    assert mod.data_shapes[0].shape == dshape
    mod.forward(DataBatch(data=[rm.nd.ones(dshape)], label=None))
    mod.backward([rm.nd.ones(dshape)])
    mod.update()
    assert mod.get_outputs()[0].shape == dshape
    np.testing.assert_allclose(mod.get_params()[0]["fc_bias"], -3, rtol=1e-6)


@pytest.mark.in_process_only("compares the identity of the executors' arrays")
def test_reshape_keeps_parameter_buffers():
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=4, name="fc")
    mod = rm.mod.Module(sym, ("data",), None, context=CPU2)
    mod.bind(data_shapes=[("data", (6, 3))])
    mod.init_params()
    group = mod._exec_group
    before = [[id(a) for a in per] for per in group.param_arrays]
    grads_before = [[id(a) for a in per] for per in group.grad_arrays]
    mod.reshape(data_shapes=[("data", (10, 3))])
    assert [[id(a) for a in per] for per in group.param_arrays] == before
    assert [[id(a) for a in per] for per in group.grad_arrays] == grads_before
    assert [d[1].shape for d in group.data_arrays[0]] == [(5, 3), (5, 3)]


def test_module_states(placement):
    stack = rm.rnn.SequentialRNNCell()
    for i in range(2):
        stack.add(rm.rnn.LSTMCell(num_hidden=20, prefix="lstm_l%d_" % i))
    begin_state = stack.begin_state(func=rm.sym.Variable)
    _, states = stack.unroll(10, begin_state=begin_state, inputs=rm.sym.Variable("data"))
    state_names = [i.name for i in begin_state]
    mod = rm.mod.Module(rm.sym.Group(states), context=CPU2, label_names=None,
                        state_names=state_names, placement=placement)
    mod.bind(data_shapes=[("data", (5, 10))], label_shapes=None, for_training=False)
    mod.init_params()
    batch = DataBatch(data=[rm.nd.zeros((5, 10))], label=[])

    with pytest.raises(AssertionError, match="merge_multi_context=True is not supported"):
        mod.get_states()
    st = mod.get_states(merge_multi_context=False)
    assert len(st) == len(state_names) and len(st[0]) == 2
    assert all(np.all(np.asarray(s) == 0) for per in st for s in per)

    mod.set_states(value=1)
    st = mod.get_states(merge_multi_context=False)
    assert all(np.all(np.asarray(s) == 1) for per in st for s in per)
    mod.forward(batch)
    out = mod.get_outputs(merge_multi_context=False)
    out1 = [o.copy() for o in mod.get_outputs(merge_multi_context=True)]

    mod.set_states(states=out)
    st = mod.get_states(merge_multi_context=False)
    np.testing.assert_array_equal(st[0][1], out[0][1])
    mod.forward(batch)
    out2 = mod.get_outputs(merge_multi_context=True)
    for x1, x2 in zip(out1, out2, strict=True):
        assert not np.allclose(x1, x2, rtol=1e-3)

    with pytest.raises(ValueError, match="Only one of states & value can be specified."):
        mod.set_states(states=out, value=1)
    with pytest.raises(ValueError, match="At least one of states & value must be specified."):
        mod.set_states()


def test_forward_reshape():
    num_class = 10
    data1 = rm.sym.Variable("data1")
    data2 = rm.sym.Variable("data2")
    conv1 = rm.sym.Convolution(data=data1, kernel=(2, 2), num_filter=2, stride=(2, 2))
    conv2 = rm.sym.Convolution(data=data2, kernel=(3, 3), num_filter=3, stride=(1, 1))
    pooling1 = rm.sym.Pooling(data=conv1, kernel=(2, 2), stride=(1, 1), pool_type="avg")
    pooling2 = rm.sym.Pooling(data=conv2, kernel=(2, 2), stride=(1, 1), pool_type="max")
    flatten1 = rm.sym.flatten(data=pooling1)
    flatten2 = rm.sym.flatten(data=pooling2)
    total = rm.sym.sum(data=flatten1, axis=1) + rm.sym.sum(data=flatten2, axis=1)
    fc = rm.sym.FullyConnected(data=total, num_hidden=num_class)
    sym = rm.sym.SoftmaxOutput(data=fc, name="softmax")
    rng = np.random.default_rng(0)

    def batch(n, s1, s2, lo=0.0):
        return DataBatch(data=[rm.nd.array(rng.uniform(lo, 9, (n, 3) + s1)),
                               rm.nd.array(rng.uniform(5, 15, (n, 3) + s2))],
                         label=[rm.nd.ones((n,))])

    mod = rm.mod.Module(symbol=sym, data_names=["data1", "data2"],
                        label_names=["softmax_label"])
    mod.bind(data_shapes=[("data1", (10, 3, 16, 16)), ("data2", (10, 3, 8, 8))],
             label_shapes=[("softmax_label", (10,))])
    mod.init_params()
    mod.init_optimizer(optimizer_params={"learning_rate": 0.01})
    for n, s1, s2 in [(10, (16, 16), (8, 8)), (3, (16, 16), (8, 8)), (20, (16, 16), (8, 8)),
                      (20, (30, 30), (8, 16)), (5, (7, 10), (6, 4))]:
        mod.forward(batch(n, s1, s2))
        assert mod.get_outputs()[0].shape == (n, num_class)
        assert mod.data_shapes[0].shape == (n, 3) + s1
        mod.backward()
        mod.update()

    eval_iter = rm.io.NDArrayIter(data=[rng.uniform(0, 9, (30, 3, 10, 10)),
                                        rng.uniform(15, 25, (30, 3, 6, 12))],
                                  label=[np.ones(30)], batch_size=5)
    assert len(mod.score(eval_data=eval_iter, eval_metric="acc")) == 1

    pred_iter = rm.io.NDArrayIter(data=[rng.uniform(0, 9, (10, 3, 10, 10)),
                                        rng.uniform(15, 25, (10, 3, 6, 12))])
    with pytest.warns(UserWarning, match="label_shapes don't match"):
        mod.bind(data_shapes=[("data1", (1, 3, 10, 10)), ("data2", (1, 3, 6, 12))],
                 for_training=False, force_rebind=True)
    assert mod.predict(pred_iter).shape == (10, num_class)


def test_forward_types():
    Batch = namedtuple("Batch", ["data"])
    sym = rm.sym.Variable("data") * 2
    mod = rm.mod.Module(symbol=sym, label_names=None)
    mod.bind(data_shapes=[("data", (1, 10))])
    mod.init_params()
    mod.forward(Batch([rm.nd.ones((1, 10))]))
    assert mod.get_outputs()[0].shape == (1, 10)
    mod.forward(Batch([rm.nd.ones((3, 5))]))
    out = mod.get_outputs()[0]
    assert out.shape == (3, 5)
    np.testing.assert_array_equal(out, 2 * np.ones((3, 5)))

    mod = rm.mod.Module(symbol=sym, label_names=None)
    mod.bind(data_shapes=[("data", (1, 10))])
    mod.init_params()
    assert mod.predict(rm.nd.ones((1, 10))).shape == (1, 10)
    out = mod.predict(np.full((1, 10), 3.0))
    assert out.shape == (1, 10)
    np.testing.assert_array_equal(out, np.full((1, 10), 6.0))


def test_module_update_no_pragram():
    data_shape = (10, 10)
    out = rm.sym.Dropout(rm.sym.Variable("data"), p=0.5)
    with pytest.warns(UserWarning, match=r"label_names=\['softmax_label'\]\) but input"):
        mod = rm.mod.Module(out)
    with pytest.warns(UserWarning, match="label_shapes don't match"):
        mod.bind(data_shapes=[("data", data_shape)])
    mod.init_params()
    mod.init_optimizer()
    mod.forward_backward(DataBatch([rm.nd.ones(data_shape)]))
    mod.update()
    out = mod.get_outputs()[0]
    assert out.shape == data_shape
    # training-mode dropout: every entry is 0 or 1/(1-p)
    assert set(np.unique(out)).issubset({0.0, 2.0})


def test_module_init_optimizer_idx2name():
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=20, name="fc")
    opt_params = {"learning_rate": 1, "rescale_grad": 1.0 / 8}
    mod1 = rm.mod.Module(sym, ("data",), None, context=rm.cpu(0))
    mod1.bind(data_shapes=[("data", (8, 20))])
    mod1.init_params()
    mod1.init_optimizer(optimizer="sgd", optimizer_params=opt_params)
    expected = dict(enumerate(mod1._exec_group.param_names))
    assert expected == {0: "fc_weight", 1: "fc_bias"}
    assert mod1._optimizer.idx2name == expected

    mod2 = rm.mod.Module(sym, ("data",), None, context=rm.cpu(0))
    mod2.bind(data_shapes=[("data", (8, 20))])
    mod2.init_params()
    opt = rm.optimizer.SGD(**opt_params)
    mod2.init_optimizer(optimizer=opt)
    assert mod2._optimizer is opt
    assert mod2._optimizer.idx2name == expected


def test_manual_optimizer_rescale_warning():
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=2, name="fc")
    mod = rm.mod.Module(sym, ("data",), None)
    mod.bind(data_shapes=[("data", (8, 3))])
    mod.init_params()
    with pytest.warns(UserWarning, match=r"rescale_grad is not normalized to "
                                         r"1.0/batch_size/num_workers \(1.0 vs. 0.125\)"):
        mod.init_optimizer(optimizer=rm.optimizer.SGD(learning_rate=0.1))


def test_module_states_simple_recurrence():
    """States are executor arguments with grad_req null, per device, fed back by the user."""
    data = rm.sym.Variable("data")
    state = rm.sym.Variable("state")
    fc = rm.sym.FullyConnected(data, num_hidden=3, name="fc")
    new_state = rm.sym.Activation(fc + state, act_type="tanh", name="new_state")
    mod = rm.mod.Module(new_state, label_names=None, state_names=["state"], context=CPU2)
    mod.bind(data_shapes=[("data", (4, 2))], for_training=True)
    mod.init_params()
    assert mod._exec_group.grad_req["state"] == "null"
    assert "state" not in mod.get_params()[0]
    batch = DataBatch(data=[rm.nd.ones((4, 2))], label=[])
    mod.set_states(value=0.5)
    mod.forward(batch)
    w, b = mod.get_params()[0]["fc_weight"], mod.get_params()[0]["fc_bias"]
    expected = np.tanh(np.ones((4, 2)) @ w.T + b + 0.5)
    np.testing.assert_allclose(mod.get_outputs()[0], expected, rtol=1e-5)
    mod.set_states(states=mod.get_outputs(merge_multi_context=False))
    mod.forward(batch)
    np.testing.assert_allclose(mod.get_outputs()[0],
                               np.tanh(np.ones((4, 2)) @ w.T + b + expected), rtol=1e-5)


def test_module_names_and_shapes_properties():
    mod = rm.mod.Module(mlp())
    assert mod.data_names == ["data"] and mod.label_names == ["softmax_label"]
    assert mod.output_names == ["softmax_output"]
    assert mod.symbol is not None
    mod.bind([DataDesc("data", (6, 5))], [("softmax_label", (6,))])
    assert [(d.name, d.shape) for d in mod.data_shapes] == [("data", (6, 5))]
    assert [(d.name, d.shape) for d in mod.label_shapes] == [("softmax_label", (6,))]
    assert mod.output_shapes == [("softmax_output", (6, 3))]
    assert mod._total_exec_bytes > 0


def test_base_module_abstract_api():
    base = rm.mod.BaseModule()
    assert not (base.binded or base.for_training or base.inputs_need_grad
                or base.params_initialized or base.optimizer_initialized)
    for name in ("data_names", "output_names", "data_shapes", "label_shapes", "output_shapes"):
        with pytest.raises(NotImplementedError):
            getattr(base, name)
    with pytest.raises(NotImplementedError):
        base.install_monitor(None)
    with pytest.raises(NotImplementedError):
        base.get_params()
    with pytest.warns(UserWarning, match="sparse_row_id_fn is not invoked for BaseModule."):
        base.prepare(None, sparse_row_id_fn=lambda b: None)


def test_module_prepare_warns_about_sparse_row_id_fn():
    mod = rm.mod.Module(mlp())
    mod.bind([("data", (2, 5))], [("softmax_label", (2,))])
    with pytest.warns(UserWarning, match="No need to call sparse_row_id_fn"):
        mod.prepare(None, sparse_row_id_fn=lambda b: None)


def test_backward_without_head_gradient_for_non_loss_output():
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=2, name="fc")
    mod = rm.mod.Module(sym, label_names=None)
    mod.bind([("data", (2, 3))])
    mod.init_params()
    mod.forward(DataBatch([rm.nd.ones((2, 3))]))
    with pytest.raises((ValueError, rm.MXNetError), match="head_gradient is required"):
        mod.backward()
    mod.backward(rm.nd.ones((2, 2)))        # a single array is wrapped into a list
    np.testing.assert_array_equal(mod._exec_group.grad_arrays[1][0], [2, 2])


def test_float16_parameters_follow_data_dtype():
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=3, name="fc")
    mod = rm.mod.Module(sym, label_names=None, context=CPU2)
    mod.bind([DataDesc("data", (4, 5), np.float16)])
    mod.init_params()
    assert {v.dtype for v in mod.get_params()[0].values()} == {np.dtype(np.float16)}
    assert mod._exec_group.param_arrays[0][1].dtype == np.float16
    # The optimizer's advice, on the driver: at the first update in-process; on Ray at
    # init_optimizer (workers' optimizers) or when the deferred update runs (the kvstore's).
    with pytest.warns(UserWarning, match="float16"):
        mod.init_optimizer(optimizer_params={"learning_rate": 0.01})
        mod.forward(DataBatch([rm.nd.ones((4, 5), dtype=np.float16)]))
        mod.backward([rm.nd.ones((4, 3), dtype=np.float16)])
        mod.update()
        assert mod.get_outputs()[0].dtype == np.float16
    # summed bias gradient 4, rescale 1/4, lr 0.01
    np.testing.assert_allclose(mod.get_params()[0]["fc_bias"], -0.01, rtol=1e-3)
