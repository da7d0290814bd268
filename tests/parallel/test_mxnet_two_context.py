"""MXNet 1.x test_module.py cases with context=[cpu(0), cpu(1)], on real Ray actors.

The same cases run in-process in tests/module/test_module_port.py; here each
device is a Ray actor, so slicing, reshape, states, input gradients, dtypes,
checkpoints with optimizer states and output merging cross process borders.
"""
import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch, DataDesc

from ..module.nets import CPU2

pytestmark = pytest.mark.usefixtures("ray_session")


def test_module_dtype():
    dtype = np.float16
    dshape = (3, 8, 7)
    sym = rm.sym.Activation(data=rm.sym.Variable("data"), act_type="relu", __layout__="TNC")
    mod = rm.mod.Module(sym, ("data",), None, context=CPU2, placement="ray")
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


def test_module_input_grads():
    a = rm.sym.Variable("a", __layout__="NC")
    b = rm.sym.Variable("b", __layout__="NC")
    c = rm.sym.Variable("c", __layout__="NC")
    c = a + 2 * b + 3 * c
    net = rm.mod.Module(c, data_names=["b", "c", "a"], label_names=None, context=CPU2,
                        placement="ray")
    net.bind(data_shapes=[["b", (5, 5)], ["c", (5, 5)], ["a", (5, 5)]],
             label_shapes=None, inputs_need_grad=True)
    net.init_params()
    net.forward(data_batch=DataBatch(data=[rm.nd.ones((5, 5)), rm.nd.ones((5, 5)),
                                           rm.nd.ones((5, 5))]))
    net.backward(out_grads=[rm.nd.ones((5, 5))])
    b_grad, c_grad, a_grad = (np.asarray(g) for g in net.get_input_grads())
    assert b_grad.shape == (5, 5)
    assert np.all(a_grad == 1), a_grad
    assert np.all(b_grad == 2), b_grad
    assert np.all(c_grad == 3), c_grad
    per_device = net.get_input_grads(merge_multi_context=False)
    assert [g.shape for g in per_device[0]] == [(2, 5), (3, 5)]


def test_module_layout():
    sym = rm.sym.Activation(data=rm.sym.Variable("data"), act_type="relu", __layout__="TNC")
    dshape = (3, 8, 7)
    mod = rm.mod.Module(sym, ("data",), None, context=CPU2, placement="ray")
    mod.bind(data_shapes=[DataDesc("data", dshape, layout="TNC")])
    mod.init_params()
    x = np.arange(np.prod(dshape), dtype=np.float32).reshape(dshape) - 80
    mod.forward(DataBatch(data=[rm.nd.array(x)], label=None))
    mod.backward([rm.nd.ones(dshape)])
    assert mod.get_outputs()[0].shape == dshape
    np.testing.assert_array_equal(mod.get_outputs()[0], np.maximum(x, 0))
    parts = mod.get_outputs(merge_multi_context=False)[0]
    assert [p.shape for p in parts] == [(3, 4, 7), (3, 4, 7)]
    np.testing.assert_array_equal(parts[1], np.maximum(x[:, 4:], 0))


def test_module_reshape():
    """Q1: rescale_grad stays 1/7 after reshaping to 14, so the bias goes -1 then -3."""
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=20, name="fc")
    dshape = (7, 20)
    mod = rm.mod.Module(sym, ("data",), None, context=CPU2, placement="ray")
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
    mod.forward(DataBatch(data=[rm.nd.ones(dshape)], label=None))
    mod.backward([rm.nd.ones(dshape)])
    mod.update()
    assert mod.get_outputs()[0].shape == dshape
    np.testing.assert_allclose(mod.get_params()[0]["fc_bias"], -3, rtol=1e-6)


def test_module_states():
    stack = rm.rnn.SequentialRNNCell()
    for i in range(2):
        stack.add(rm.rnn.LSTMCell(num_hidden=20, prefix="lstm_l%d_" % i))
    begin_state = stack.begin_state(func=rm.sym.Variable)
    _, states = stack.unroll(10, begin_state=begin_state, inputs=rm.sym.Variable("data"))
    state_names = [i.name for i in begin_state]
    mod = rm.mod.Module(rm.sym.Group(states), context=CPU2, label_names=None,
                        state_names=state_names, placement="ray")
    mod.bind(data_shapes=[("data", (5, 10))], label_shapes=None, for_training=False)
    mod.init_params()
    batch = DataBatch(data=[rm.nd.zeros((5, 10))], label=[])

    mod.set_states(value=1)
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


def test_save_load(tmp_path):
    """MXNet's multi-device test_save_load: params and optimizer states survive a checkpoint."""
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=100)
    prefix = str(tmp_path / "test")
    mod = rm.mod.Module(sym, ("data",), context=CPU2, placement="ray")
    mod.bind(data_shapes=[("data", (10, 10))])
    mod.init_params()
    mod.init_optimizer(optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    mod.update()                       # no forward/backward: zero gradients, states exist
    x = np.linspace(-1, 1, 100, dtype=np.float32).reshape(10, 10)
    head = np.ones((10, 100), np.float32)
    mod.forward(DataBatch([x]))
    mod.backward([head])
    mod.update()
    mod.save_checkpoint(prefix, 0, save_optimizer_states=True)

    mod2 = rm.mod.Module.load(prefix, 0, load_optimizer_states=True, data_names=("data",),
                              context=CPU2, placement="ray")
    mod2.bind(data_shapes=[("data", (10, 10))])
    mod2.init_optimizer(optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    assert mod._symbol.tojson() == mod2._symbol.tojson()
    p1, p2 = mod.get_params()[0], mod2.get_params()[0]
    assert p1.keys() == p2.keys()
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])
    mod2.save_optimizer_states(str(tmp_path / "again.states"))
    with open(prefix + "-0000.states", "rb") as f, open(tmp_path / "again.states", "rb") as g:
        assert f.read() == g.read()
    # one more identical step keeps the two modules identical (momentum was restored)
    for m in (mod, mod2):
        m.forward(DataBatch([x]))
        m.backward([head])
        m.update()
    for k, v in mod.get_params()[0].items():
        np.testing.assert_allclose(mod2.get_params()[0][k], v, rtol=1e-6)
