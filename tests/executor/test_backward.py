"""Backward: head gradients, grad_req write/add/null, fan-out summing, loss outputs, and the
known-answer test of reference 12.3 (behaviour checked against MXNet 1.9.1)."""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.executor import HEAD_GRAD_REQUIRED
from raymod.test_utils import assert_almost_equal

RNG = np.random.default_rng(0)


def _xp_dict(ctx, **arrays):
    return {k: ctx.xp.asarray(np.asarray(v, np.float64)) for k, v in arrays.items()}


def _bind(ctx, sym, grad_req="write", **values):
    args = _xp_dict(ctx, **values)
    grads = {k: ctx.xp.zeros_like(v) for k, v in args.items()}
    return sym.bind(ctx, args, args_grad=grads, grad_req=grad_req)


def test_backward_with_head_gradient_matches_numpy(ctx):
    x, w, b = RNG.normal(size=(4, 3)), RNG.normal(size=(2, 3)), RNG.normal(size=(2,))
    fc = rm.sym.FullyConnected(rm.sym.Variable("x"), num_hidden=2, name="fc")
    exe = _bind(ctx, fc, x=x, fc_weight=w, fc_bias=b)
    gy = RNG.normal(size=(4, 2))
    exe.forward(is_train=True)
    exe.backward(ctx.xp.asarray(gy))                # one array for the one output
    assert_almost_equal(exe.grad_dict["x"], gy @ w, rtol=1e-12)
    assert_almost_equal(exe.grad_dict["fc_weight"], gy.T @ x, rtol=1e-12)
    assert_almost_equal(exe.grad_dict["fc_bias"], gy.sum(axis=0), rtol=1e-12)


def test_grad_req_write_overwrites_and_add_accumulates(ctx):
    x = rm.sym.Variable("x")
    sym = rm.sym.Activation(x, act_type="tanh") * 3
    values = np.array([0.1, -0.5, 2.0])
    want = 3 * (1 - np.tanh(values) ** 2)
    gy = ctx.xp.ones(3)
    for req, factor in (("write", 1), ("add", 2)):
        exe = _bind(ctx, sym, grad_req=req, x=values)
        exe.forward(is_train=True)
        exe.backward(gy)
        exe.backward(gy)
        assert_almost_equal(exe.grad_dict["x"], factor * want, rtol=1e-12)


def test_grad_req_add_keeps_the_starting_value(ctx):
    exe = _bind(ctx, rm.sym.Variable("x") * 2, grad_req="add", x=[1.0, 2.0])
    exe.grad_dict["x"][...] = 10
    exe.forward(is_train=True)
    exe.backward(ctx.xp.ones(2))
    assert to_numpy(exe.grad_dict["x"]).tolist() == [12.0, 12.0]


def test_grad_req_null_skips_the_work(ctx):
    data = rm.sym.Variable("data")
    h = rm.sym.FullyConnected(data, num_hidden=3, name="fc1")
    h = rm.sym.Activation(h, act_type="relu", name="relu1")
    h = rm.sym.FullyConnected(h, num_hidden=2, name="fc2")
    # Only fc2's weight wants a gradient: nothing below fc2 runs backward.
    exe = h.simple_bind(ctx, data=(4, 5), grad_req={"fc2_weight": "write"})
    ran = []
    exe.set_monitor_callback(lambda name, arr: ran.append(name))
    exe.forward(is_train=True)
    ran.clear()
    exe.backward(ctx.xp.ones((4, 2)))
    assert ran == ["fc2_backward_output0", "fc2_backward_output1", "fc2_backward_output2"]
    assert list(exe.grad_dict) == ["fc2_weight"]
    assert to_numpy(exe.grad_dict["fc2_weight"]).shape == (2, 3)


def test_fan_out_gradients_are_summed(ctx):
    x = rm.sym.Variable("x")
    values = np.array([0.3, -1.2, 2.0])
    cases = [
        (x * x, 2 * values),                                    # same entry twice, one op
        (x + x, np.full(3, 2.0)),
        (rm.sym.Activation(x, act_type="tanh") + rm.sym.Activation(x, act_type="sigmoid"),
         (1 - np.tanh(values) ** 2) + np.exp(-values) / (1 + np.exp(-values)) ** 2),
    ]
    for sym, want in cases:
        for req, factor in (("write", 1), ("add", 2)):
            exe = _bind(ctx, sym, grad_req=req, x=values)
            exe.forward(is_train=True)
            exe.backward(ctx.xp.ones(3))
            exe.backward(ctx.xp.ones(3))
            assert_almost_equal(exe.grad_dict["x"], factor * want, rtol=1e-12)


def test_fan_out_of_an_intermediate_value(ctx):
    x = rm.sym.Variable("x")
    h = rm.sym.Activation(x, act_type="tanh")
    sym = h * h + h * 2                                         # d/dh = 2h + 2
    values = np.array([0.3, -1.2])
    exe = _bind(ctx, sym, x=values)
    exe.forward(is_train=True)
    exe.backward(ctx.xp.ones(2))
    t = np.tanh(values)
    assert_almost_equal(exe.grad_dict["x"], (2 * t + 2) * (1 - t ** 2), rtol=1e-12)


def test_loss_output_ignores_the_head_gradient(ctx):
    sym = rm.sym.SoftmaxOutput(rm.sym.Variable("x"), name="sm")
    values = {"x": RNG.normal(size=(2, 3)), "sm_label": [2, 0]}
    grads = []
    for head in (None, [ctx.xp.asarray(RNG.normal(size=(2, 3)))]):
        exe = _bind(ctx, sym, grad_req={"x": "write", "sm_label": "write"}, **values)
        exe.forward(is_train=True)
        exe.backward(head)
        grads.append(to_numpy(exe.grad_dict["x"]))
    p = np.exp(values["x"]) / np.exp(values["x"]).sum(axis=1, keepdims=True)
    assert_almost_equal(grads[0], p - np.eye(3)[[2, 0]], rtol=1e-10)
    assert_almost_equal(grads[1], grads[0], rtol=0, atol=0)


def test_non_loss_output_needs_a_head_gradient():
    fc = rm.sym.FullyConnected(rm.sym.Variable("x"), num_hidden=2, name="fc")
    exe = fc.simple_bind(rm.cpu(), x=(3, 4))
    exe.forward(is_train=True)
    with pytest.raises(MXNetError) as err:
        exe.backward()
    assert str(err.value) == HEAD_GRAD_REQUIRED
    assert HEAD_GRAD_REQUIRED.startswith("Because the last operator is not Loss function, "
                                         "head_gradient is required when calling backward.")


def _loss_and(net_head):
    data = rm.sym.Variable("data")
    net = rm.sym.FullyConnected(data, num_hidden=3, name="fc1")
    loss = rm.sym.SoftmaxOutput(net, name="sm")
    return net, loss, net_head(net)


def test_group_with_blockgrad_needs_no_head_gradient(ctx):
    net, loss, blocked = _loss_and(lambda n: rm.sym.BlockGrad(n, name="bg"))
    alone = loss.simple_bind(ctx, data=(2, 4), grad_req={"fc1_weight": "write"})
    group = rm.sym.Group([loss, blocked]).simple_bind(ctx, data=(2, 4),
                                                      grad_req={"fc1_weight": "write"})
    data = RNG.normal(size=(2, 4)).astype(np.float32)
    weight = ctx.xp.asarray(RNG.normal(size=(3, 4)).astype(np.float32))
    for exe in (alone, group):
        exe.arg_dict["fc1_weight"][...] = weight
        exe.forward(is_train=True, data=data)
        exe.backward()
    # BlockGrad passes its input through and no gradient back: the group's gradient is
    # the loss's alone.
    assert_almost_equal(group.grad_dict["fc1_weight"], alone.grad_dict["fc1_weight"],
                        rtol=0, atol=0)
    assert_almost_equal(group.outputs[1], to_numpy(data) @ to_numpy(weight).T, rtol=1e-5)


def test_head_gradients_are_matched_by_position():
    net, loss, _ = _loss_and(lambda n: n)
    exe = rm.sym.Group([loss, net]).simple_bind(rm.cpu(), data=(2, 4))
    exe.forward(is_train=True)
    with pytest.raises(MXNetError, match="head_gradient is required"):
        exe.backward()
    with pytest.raises(MXNetError, match="head_gradient is required"):
        exe.backward([np.ones((2, 3))])            # the given one is the loss's
    exe.backward([None, np.ones((2, 3))])
    # With the non-loss output first, a shorter list is enough (as MXNet).
    exe = rm.sym.Group([net, loss]).simple_bind(rm.cpu(), data=(2, 4))
    exe.forward(is_train=True)
    exe.backward([np.ones((2, 3))])
    exe.backward({"fc1_output": np.ones((2, 3))})
    with pytest.raises(MXNetError, match="received 3 head gradients for 2 outputs"):
        exe.backward([np.ones((2, 3))] * 3)
    with pytest.raises(MXNetError, match=r"head gradient 0 has shape \(3, 2\), expected "
                                         r"\(2, 3\)"):
        exe.backward([np.ones((3, 2))])


def test_variable_output_takes_a_head_gradient_that_adds(ctx):
    x = rm.sym.Variable("x")
    exe = _bind(ctx, rm.sym.Group([x * x, x]), x=[2.0, 2.0, 2.0])
    exe.forward(is_train=True)
    with pytest.raises(MXNetError, match="head_gradient is required"):
        exe.backward([ctx.xp.ones(3)])
    exe.backward([ctx.xp.ones(3), ctx.xp.full(3, 10.0)])
    assert to_numpy(exe.grad_dict["x"]).tolist() == [14.0, 14.0, 14.0]    # 2x + 10


def test_an_output_listed_twice_sums_its_head_gradients(ctx):
    # MXNet 1.9.1 keeps only the last of the two head gradients here; raymod sums them,
    # which is the gradient of the sum of the two outputs.
    fc = rm.sym.FullyConnected(rm.sym.Variable("x"), num_hidden=3, name="fc")
    exe = _bind(ctx, rm.sym.Group([fc, fc]), x=np.ones((2, 4)), fc_weight=np.ones((3, 4)),
                fc_bias=np.zeros(3))
    exe.forward(is_train=True)
    exe.backward([ctx.xp.ones((2, 3)), ctx.xp.full((2, 3), 2.0)])
    assert to_numpy(exe.grad_dict["fc_bias"]).tolist() == [6.0, 6.0, 6.0]


def test_aux_states_get_no_gradient_and_update_in_backward(ctx):
    bn = rm.sym.BatchNorm(rm.sym.Variable("x"), name="bn", fix_gamma=False)
    exe = bn.simple_bind(ctx, x=(4, 2))
    assert sorted(exe.grad_dict) == ["bn_beta", "bn_gamma", "x"]
    exe.aux_dict["bn_moving_var"][...] = 1
    exe.forward(is_train=True, x=np.arange(8.0).reshape(4, 2))
    assert to_numpy(exe.aux_dict["bn_moving_mean"]).tolist() == [0, 0]
    exe.backward(ctx.xp.ones((4, 2)))
    assert_almost_equal(exe.aux_dict["bn_moving_mean"], [0.3, 0.4], rtol=1e-6)


def test_known_answer_step_by_step_network(ctx):
    """Reference 12.3 (MXNet's test_monitor network): one SGD step, learning rate 0.5."""
    x = rm.sym.Variable("data")
    x = rm.sym.FullyConnected(name="fc_0", data=x, num_hidden=2)
    x = rm.sym.Activation(name="act_0", data=x, act_type="sigmoid")
    x = rm.sym.FullyConnected(name="fc_1", data=x, num_hidden=2)
    x = rm.sym.Activation(name="act_1", data=x, act_type="sigmoid")
    net = rm.sym.LinearRegressionOutput(data=x, name="softmax", grad_scale=2)
    exe = net.simple_bind(ctx, type_dict={"data": "float64"}, data=(1, 2),
                          grad_req={n: "write" for n in net.list_arguments()
                                    if n.startswith("fc")})
    exe.copy_params_from({
        "fc_0_weight": np.array([[.15, .2], [.25, .3]]), "fc_0_bias": np.array([.35, .35]),
        "fc_1_weight": np.array([[.4, .45], [.5, .55]]), "fc_1_bias": np.array([.6, .6])})
    exe.forward(is_train=True, data=np.array([[.05, .1]]), softmax_label=np.array([[.01, .99]]))
    exe.backward()
    for name, grad in exe.grad_dict.items():            # sgd, rescale_grad = 1 / batch 1
        exe.arg_dict[name] -= 0.5 * grad
    want = {"fc_1_weight": [[0.358916, 0.408666], [0.511301, 0.561370]],
            "fc_1_bias": [0.530751, 0.619049],
            "fc_0_weight": [[0.149781, 0.199561], [0.249751, 0.299502]],
            "fc_0_bias": [0.345614, 0.345023]}
    for name, value in want.items():
        assert_almost_equal(exe.arg_dict[name], np.array(value), rtol=0, atol=1e-6,
                            names=(name, "reference"))
