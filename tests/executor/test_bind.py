"""Binding: simple_bind and bind, the executor's dicts, forward, monitor, copy_params_from.

Behaviour follows MXNet 1.9.1's Executor (checked against it), except where the
executor's module docstring says otherwise (grad_dict has no 'null' entries).
"""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy


def _mlp():
    data = rm.sym.Variable("data")
    h = rm.sym.FullyConnected(data, num_hidden=4, name="fc1")
    h = rm.sym.Activation(h, act_type="relu", name="relu1")
    h = rm.sym.FullyConnected(h, num_hidden=3, name="fc2")
    return rm.sym.SoftmaxOutput(h, name="sm")


def _bn():
    return rm.sym.BatchNorm(rm.sym.Variable("data"), name="bn", fix_gamma=False)


def test_simple_bind_allocates_everything(ctx):
    exe = _mlp().simple_bind(ctx, data=(5, 7))
    shapes = {k: v.shape for k, v in exe.arg_dict.items()}
    assert shapes == {"data": (5, 7), "fc1_weight": (4, 7), "fc1_bias": (4,),
                      "fc2_weight": (3, 4), "fc2_bias": (3,), "sm_label": (5,)}
    assert {k: v.shape for k, v in exe.grad_dict.items()} == shapes
    assert all(a.dtype == np.float32 for a in exe.arg_arrays + exe.grad_arrays)
    assert all(isinstance(a, ctx.xp.ndarray) for a in exe.arg_arrays)
    assert [o.shape for o in exe.outputs] == [(5, 3)]
    assert list(exe.output_dict) == ["sm_output"]
    assert exe.aux_dict == {} and exe.aux_arrays == []


def test_simple_bind_type_dict_and_aux_states(ctx):
    exe = _bn().simple_bind(ctx, type_dict={"data": "float64"}, data=(2, 3))
    assert {k: v.dtype for k, v in exe.arg_dict.items()} == {
        "data": np.float64, "bn_gamma": np.float64, "bn_beta": np.float64}
    assert list(exe.aux_dict) == ["bn_moving_mean", "bn_moving_var"]
    assert [a.shape for a in exe.aux_arrays] == [(3,), (3,)]


def test_grad_req_null_leaves_no_gradient_array(ctx):
    exe = _mlp().simple_bind(ctx, grad_req={"fc1_weight": "write", "fc2_weight": "add"},
                             data=(5, 7))
    assert sorted(exe.grad_dict) == ["fc1_weight", "fc2_weight"]
    assert [g is None for g in exe.grad_arrays] == [True, False, True, False, True, True]
    assert exe.grad_req == {"data": "null", "fc1_weight": "write", "fc1_bias": "null",
                            "fc2_weight": "add", "fc2_bias": "null", "sm_label": "null"}
    exe = _mlp().simple_bind(ctx, grad_req="null", data=(5, 7))
    assert exe.grad_dict == {}


def test_grad_req_errors():
    sym = _mlp()
    with pytest.raises(ValueError, match="grad_req for 'data' must be one of"):
        sym.simple_bind(rm.cpu(), grad_req="sometimes", data=(5, 7))
    with pytest.raises(ValueError, match="grad_req names unknown arguments"):
        sym.simple_bind(rm.cpu(), grad_req={"nope": "write"}, data=(5, 7))
    with pytest.raises(ValueError, match="grad_req list has 2 entries for 6 arguments"):
        sym.simple_bind(rm.cpu(), grad_req=["write", "null"], data=(5, 7))


def test_bind_uses_the_given_arrays_in_place(ctx):
    xp = ctx.xp
    x, w = rm.sym.Variable("x"), rm.sym.Variable("w")
    args = {"x": xp.asarray([1.0, 2.0]), "w": xp.asarray([3.0, 4.0])}
    grads = {"x": xp.zeros(2), "w": xp.zeros(2)}
    exe = (x * w).bind(ctx, args, args_grad=grads)
    assert exe.arg_dict["x"] is args["x"] and exe.grad_dict["w"] is grads["w"]
    args["x"][...] = xp.asarray([5.0, 6.0])        # the executor sees the caller's write
    assert to_numpy(exe.forward()[0]).tolist() == [15.0, 24.0]
    # lists in list_arguments() order are the same binding
    exe2 = (x * w).bind(ctx, [args["x"], args["w"]], args_grad=[grads["x"], grads["w"]])
    assert to_numpy(exe2.forward()[0]).tolist() == [15.0, 24.0]


def test_bind_aux_states_list_and_dict(ctx):
    xp = ctx.xp
    args = [xp.ones((2, 3)), xp.ones(3), xp.zeros(3)]
    aux = [xp.zeros(3), xp.ones(3)]
    exe = _bn().bind(ctx, args, aux_states=aux)
    assert exe.aux_arrays[0] is aux[0]
    exe = _bn().bind(ctx, args, aux_states={"bn_moving_var": aux[1], "bn_moving_mean": aux[0]})
    assert exe.aux_dict["bn_moving_var"] is aux[1]


def test_bind_without_grad_arrays_computes_no_gradients():
    x, w = rm.sym.Variable("x"), rm.sym.Variable("w")
    exe = (x * w).bind(rm.cpu(), {"x": np.ones(2), "w": np.ones(2)})
    assert exe.grad_dict == {}
    # As MXNet: an argument missing from args_grad gets no gradient (grad_req 'null').
    exe = (x * w).bind(rm.cpu(), {"x": np.ones(2), "w": np.ones(2) * 3},
                       args_grad={"w": np.zeros(2)})
    assert exe.grad_req["x"] == "null" and exe.grad_arrays[0] is None
    exe.forward(is_train=True)
    exe.backward(np.ones(2))
    assert exe.grad_dict["w"].tolist() == [1.0, 1.0]
    # ... but an explicit per-argument request needs its array.
    with pytest.raises(MXNetError, match="grad_req 'write' for 'x' needs an array"):
        (x * w).bind(rm.cpu(), {"x": np.ones(2), "w": np.ones(2)},
                     args_grad={"w": np.zeros(2)}, grad_req={"x": "write", "w": "write"})


def test_bind_missing_or_unknown_arrays():
    x, w = rm.sym.Variable("x"), rm.sym.Variable("w")
    with pytest.raises(ValueError, match="key `w` is missing in `args`"):
        (x * w).bind(rm.cpu(), {"x": np.ones(2)})
    with pytest.raises(ValueError, match="Length of args does not match the number of "
                                         "arguments"):
        (x * w).bind(rm.cpu(), [np.ones(2)])
    with pytest.raises(ValueError, match=r"args: unknown names \['z'\]"):
        (x * w).bind(rm.cpu(), {"x": np.ones(2), "w": np.ones(2), "z": np.ones(2)})
    with pytest.raises(ValueError, match="key `bn_moving_var` is missing in `aux_states`"):
        _bn().bind(rm.cpu(), [np.ones((2, 3)), np.ones(3), np.ones(3)],
                   aux_states={"bn_moving_mean": np.ones(3)})


def test_bind_checks_shapes_and_dtypes_before_running():
    # Errors come from bind itself, naming the node or argument, not from a later forward.
    x, z = rm.sym.Variable("x"), rm.sym.Variable("z")
    with rm.name.NameManager():
        s = x + z
    with pytest.raises(MXNetError, match=r"'_plus0'.*\(2,\).*\(3,\)"):
        s.bind(rm.cpu(), {"x": np.ones(2), "z": np.ones(3)})
    with pytest.raises(MXNetError, match="gradient array for 'x' has shape"):
        s.bind(rm.cpu(), {"x": np.ones(2), "z": np.ones(2)},
               args_grad={"x": np.ones(3), "z": np.ones(2)})
    with pytest.raises(MXNetError, match="gradient array for 'x' has shape .* float32"):
        s.bind(rm.cpu(), {"x": np.ones(2), "z": np.ones(2)},
               args_grad={"x": np.ones(2, np.float32), "z": np.ones(2)})
    with pytest.raises(MXNetError, match="gradient array for 'x' must be a writeable "
                                         "C-contiguous"):
        s.bind(rm.cpu(), {"x": np.ones(2), "z": np.ones(2)},
               args_grad={"x": np.ones(4)[::2], "z": np.ones(2)})


def test_duplicate_input_names_are_refused():
    s = rm.sym.Variable("x") + rm.sym.Variable("x")
    assert s.list_arguments() == ["x", "x"]
    with pytest.raises(MXNetError, match=r"several inputs named \['x'\]"):
        s.simple_bind(rm.cpu(), x=(2,))


def test_simple_bind_needs_every_shape():
    with pytest.raises(MXNetError, match=r"cannot decide the shape of \['x'\]"):
        (rm.sym.Variable("x") * 2).simple_bind(rm.cpu())
    with pytest.raises(ValueError, match=r"\['nope'\] are not inputs"):
        (rm.sym.Variable("x") * 2).simple_bind(rm.cpu(), x=(2,), nope=(2,))


def test_forward_keyword_arrays_are_copied_in(ctx):
    exe = (rm.sym.Variable("x") * 2).simple_bind(ctx, x=(3,))
    value = np.array([1.0, 2.0, 3.0], np.float32)
    out = exe.forward(x=value)
    assert out is exe.outputs
    assert to_numpy(out[0]).tolist() == [2.0, 4.0, 6.0]
    assert exe.arg_dict["x"] is not value and to_numpy(exe.arg_dict["x"]).tolist() == [1, 2, 3]


def test_forward_keyword_errors_change_nothing():
    x, y = rm.sym.Variable("x"), rm.sym.Variable("y")
    exe = (x + y).simple_bind(rm.cpu(), x=(2,), y=(2,))
    with pytest.raises(TypeError, match="Unknown argument z"):
        exe.forward(z=np.ones(2))
    with pytest.raises(ValueError, match=r"Shape not match! Argument y, need: \(2,\), "
                                         r"received: \(3,\)"):
        exe.forward(x=np.ones(2), y=np.ones(3))
    assert exe.arg_dict["x"].tolist() == [0, 0]          # x was not copied either
    with pytest.raises(ValueError, match="only accept keyword argument of NDArrays"):
        exe.forward(x=[1, 2])


def test_outputs_are_reused_between_calls(ctx):
    exe = _mlp().simple_bind(ctx, data=(5, 7))
    first = exe.forward()[0]
    second = exe.forward()[0]
    assert first is second


def test_is_train_switches_dropout(ctx):
    drop = rm.sym.Dropout(rm.sym.Variable("x"), p=0.5, name="drop")
    exe = drop.simple_bind(ctx, x=(1000,))
    ones = np.ones(1000, np.float32)
    assert np.all(to_numpy(exe.forward(is_train=False, x=ones)[0]) == 1)
    out = to_numpy(exe.forward(is_train=True, x=ones)[0])
    assert set(np.unique(out)) == {0.0, 2.0}


def test_monitor_callback_names(ctx):
    exe = _mlp().simple_bind(ctx, data=(5, 7), grad_req={"fc1_weight": "write",
                                                         "fc2_weight": "write"})
    seen = []
    exe.set_monitor_callback(lambda name, arr: seen.append((name, tuple(arr.shape))))
    exe.forward(is_train=True)
    assert seen == [("fc1_output", (5, 4)), ("relu1_output", (5, 4)), ("fc2_output", (5, 3)),
                    ("sm_output", (5, 3))]
    seen.clear()
    exe.backward()
    # One output per argument of each backward node, as MXNet names them; arguments
    # whose gradient is not needed report zeros.
    assert [n for n, _ in seen] == [
        "sm_backward_output0", "sm_backward_output1", "fc2_backward_output0",
        "fc2_backward_output1", "fc2_backward_output2", "relu1_backward_output",
        "fc1_backward_output0", "fc1_backward_output1", "fc1_backward_output2"]
    assert dict(seen)["fc1_backward_output0"] == (5, 7)
    exe.set_monitor_callback(None)
    seen.clear()
    exe.forward()
    assert seen == []


def test_monitor_all_reports_inputs_too(ctx):
    exe = rm.sym.Activation(rm.sym.Variable("x"), act_type="relu", name="r") \
        .simple_bind(ctx, x=(2,))
    seen = []
    exe.set_monitor_callback(lambda name, arr: seen.append(name), monitor_all=True)
    exe.forward()
    assert seen == ["x", "r_data", "r_output"]


def test_copy_params_from(ctx):
    exe = _bn().simple_bind(ctx, data=(2, 3))
    exe.copy_params_from({"bn_gamma": np.arange(3.0)}, {"bn_moving_var": np.full(3, 2.0)})
    assert exe.arg_dict["bn_gamma"].dtype == np.float32        # cast to the bound dtype
    assert to_numpy(exe.arg_dict["bn_gamma"]).tolist() == [0, 1, 2]
    assert to_numpy(exe.aux_dict["bn_moving_var"]).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match='Find name "nope" that is not in the arguments'):
        exe.copy_params_from({"nope": np.ones(1)})
    with pytest.raises(ValueError, match="Find name nope that is not in the auxiliary"):
        exe.copy_params_from({}, {"nope": np.ones(1)})
    exe.copy_params_from({"nope": np.ones(1)}, {"nope2": np.ones(1)}, allow_extra_params=True)
    with pytest.raises(ValueError, match=r"'bn_beta' has shape \(4,\), the executor holds "
                                         r"\(3,\)"):
        exe.copy_params_from({"bn_beta": np.ones(4)})


def test_debug_str_and_nbytes():
    exe = _mlp().simple_bind(rm.cpu(), data=(5, 7))
    text = exe.debug_str()
    assert "FullyConnected fc1" in text and "SoftmaxOutput sm" in text
    params = sum(a.nbytes for a in exe.arg_arrays) * 2      # arguments and gradients
    assert exe.nbytes() > params                             # plus outputs and buffers


def test_bind_options_raymod_cannot_honour_raise():
    net = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=2, name="fc")
    with pytest.raises(NotImplementedError, match="group2ctx"):
        net.simple_bind(rm.cpu(), group2ctx={"dev1": rm.cpu(1)}, data=(3, 4))
    with pytest.raises(NotImplementedError, match="sparse storage"):
        net.simple_bind(rm.cpu(), stype_dict={"data": "csr"}, data=(3, 4))
    with pytest.raises(NotImplementedError, match="shared_buffer"):
        net.simple_bind(rm.cpu(), shared_buffer={}, data=(3, 4))
    exe = net.simple_bind(rm.cpu(), stype_dict={"data": "default"}, data=(3, 4))
    assert exe.outputs[0].shape == (3, 2)
