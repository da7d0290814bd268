"""Parameters, state checks, checkpoints and optimizer states of Module."""
import logging
import os

import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch, NDArrayIter
from raymod.optimizer.state_io import loads_states
from raymod.parallel.errors import ModuleStateError

from .nets import CPU2, STEP_DATA, STEP_LABEL, STEP_PARAMS, mlp, step_by_step_net


def _bound_step_module(batch=1, **kwargs):
    """The step-by-step net bound for `batch` copies of its one sample."""
    train_data = NDArrayIter(np.repeat(STEP_DATA, batch, 0), np.repeat(STEP_LABEL, batch, 0),
                             batch_size=batch)
    mod = rm.mod.Module(step_by_step_net(), **kwargs)
    mod.bind(train_data.provide_data, label_shapes=train_data.provide_label, for_training=True)
    return mod, train_data


# ---------------------------------------------------------------- set_params (Q7)
def test_module_set_params():
    mod, _ = _bound_step_module(context=[rm.cpu()])
    correct = dict(STEP_PARAMS)
    missing = {k: v for k, v in STEP_PARAMS.items() if k != "fc_1_bias"}
    extra = dict(STEP_PARAMS, fc_2_weight=np.array([.60, .60], np.float32))
    missing_extra = {"fc_2_weight": np.array([.60, .60], np.float32)}

    mod.set_params(force_init=True, arg_params=correct, aux_params={})
    np.testing.assert_array_equal(mod.get_params()[0]["fc_1_bias"], STEP_PARAMS["fc_1_bias"])

    # allow_missing=True copies only what is given (straight to the devices)
    mod.set_params(force_init=True, arg_params=missing, aux_params={}, allow_missing=True)
    with pytest.raises(RuntimeError, match="fc_1_bias is not presented"):
        mod.set_params(force_init=True, arg_params=missing, aux_params={}, allow_missing=False)

    # allow_missing=False ignores extra names silently (MXNet quirk Q7)
    mod.set_params(force_init=True, arg_params=extra, aux_params={})
    mod.set_params(force_init=True, arg_params=extra, aux_params={}, allow_missing=True,
                   allow_extra=True)
    with pytest.raises(ValueError, match='Find name "fc_2_weight" that is not in the arguments'):
        mod.set_params(force_init=True, arg_params=extra, aux_params={}, allow_missing=True,
                       allow_extra=False)
    with pytest.raises(RuntimeError):
        mod.set_params(force_init=True, arg_params=missing_extra, aux_params={},
                       allow_missing=False, allow_extra=False)
    with pytest.raises(ValueError):
        mod.set_params(force_init=True, arg_params=missing_extra, aux_params={},
                       allow_missing=True, allow_extra=False)


def test_set_params_allow_missing_marks_dirty_and_get_params_syncs():
    mod, _ = _bound_step_module(batch=2, context=CPU2)
    mod.init_params()
    new_w = np.full((2, 2), 7.0, np.float32)
    mod.set_params({"fc_0_weight": new_w}, {}, allow_missing=True)
    assert mod._params_dirty
    arg, _ = mod.get_params()
    np.testing.assert_array_equal(arg["fc_0_weight"], new_w)
    assert not mod._params_dirty
    # data/label names are executor arguments: accepted on this path
    mod.set_params({"data": STEP_DATA}, {}, allow_missing=True)        # one device's slice
    with pytest.raises(ValueError, match="'data'.*expected shape \\(1, 2\\), received \\(2, 2\\)"):
        mod.set_params({"data": np.repeat(STEP_DATA, 2, 0)}, {}, allow_missing=True)


def test_set_params_not_forced_warns_and_keeps_values():
    mod, _ = _bound_step_module()
    mod.set_params(STEP_PARAMS, {})
    with pytest.warns(UserWarning, match="set_params call ignored"):
        mod.set_params({k: v * 0 for k, v in STEP_PARAMS.items()}, {}, allow_missing=True,
                       force_init=False)
    np.testing.assert_array_equal(mod.get_params()[0]["fc_0_weight"],
                                  STEP_PARAMS["fc_0_weight"])


def test_get_params_returns_live_master_dicts():
    mod, _ = _bound_step_module()
    mod.init_params(arg_params=STEP_PARAMS)
    arg1, aux1 = mod.get_params()
    arg2, _ = mod.get_params()
    assert arg1 is arg2 and arg1 is mod._arg_params
    assert list(arg1) == ["fc_0_weight", "fc_0_bias", "fc_1_weight", "fc_1_bias"]


def test_set_params_wrong_shape_is_clear_error():
    mod, _ = _bound_step_module()
    bad = dict(STEP_PARAMS, fc_0_bias=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="fc_0_bias"):
        mod.set_params(bad, {})


# ---------------------------------------------------------------- init_params
def test_init_params_twice_warns_and_is_ignored():
    mod, _ = _bound_step_module()
    mod.init_params(arg_params=STEP_PARAMS)
    with pytest.warns(UserWarning, match="Parameters already initialized and force_init=False. "
                                         "init_params call ignored."):
        mod.init_params(initializer=rm.init.Zero())
    np.testing.assert_array_equal(mod.get_params()[0]["fc_0_bias"], STEP_PARAMS["fc_0_bias"])
    mod.init_params(initializer=rm.init.Zero(), force_init=True)
    assert not np.any(mod.get_params()[0]["fc_0_weight"])


def test_init_params_default_uniform_and_user_values():
    mod, _ = _bound_step_module(batch=2, context=CPU2)
    mod.init_params(arg_params={"fc_0_weight": STEP_PARAMS["fc_0_weight"]}, allow_missing=True)
    arg, _ = mod.get_params()
    np.testing.assert_array_equal(arg["fc_0_weight"], STEP_PARAMS["fc_0_weight"])
    w = arg["fc_1_weight"]
    assert np.all(np.abs(w) <= 0.01) and np.any(w != 0)     # Uniform(0.01)
    assert not np.any(arg["fc_0_bias"])                     # biases start at zero
    # every device got the master copy
    for per_dev in mod._exec_group.param_arrays:
        np.testing.assert_array_equal(per_dev[0], per_dev[1])


def test_init_params_missing_without_allow_missing():
    mod, _ = _bound_step_module()
    with pytest.raises(RuntimeError, match="is not presented"):
        mod.init_params(arg_params={"fc_0_weight": STEP_PARAMS["fc_0_weight"]})
    assert not mod.params_initialized


# ---------------------------------------------------------------- state errors
def test_calls_before_bind_say_what_to_call():
    mod = rm.mod.Module(mlp())
    batch = DataBatch([rm.nd.ones((2, 5))], [rm.nd.zeros((2,))])
    for call in (lambda: mod.forward(batch), mod.backward, mod.get_outputs, mod.update,
                 lambda: mod.get_states(False), mod.get_params,
                 lambda: mod.predict(np.ones((2, 5)))):
        with pytest.raises(AssertionError) as info:
            call()
        assert isinstance(info.value, rm.MXNetError)
        assert "call bind() first" in str(info.value) or "call init_params()" in str(info.value)
    with pytest.raises(ModuleStateError, match="call bind"):
        mod.init_params()
    with pytest.raises(ModuleStateError, match="call bind"):
        mod.init_optimizer()
    with pytest.raises(ModuleStateError, match="call bind"):
        mod.install_monitor(rm.mon.Monitor(1))
    with pytest.raises(AssertionError):
        mod.data_shapes


def test_calls_before_init_params_and_optimizer(tmp_path):
    mod = rm.mod.Module(mlp())
    mod.bind([("data", (2, 5))], [("softmax_label", (2,))])
    with pytest.raises(ModuleStateError, match=r"call init_params\(\) or set_params\(\) first"):
        mod.forward(DataBatch([rm.nd.ones((2, 5))], [rm.nd.zeros((2,))]))
    with pytest.raises(ModuleStateError, match="init_params"):
        mod.init_optimizer()
    mod.init_params()
    with pytest.raises(ModuleStateError, match=r"call init_optimizer\(\) first"):
        mod.update()
    with pytest.raises(ModuleStateError, match="inputs_need_grad=True"):
        mod.get_input_grads()
    fname = str(tmp_path / "never-written.states")
    with pytest.raises(ModuleStateError, match="optimizer"):
        mod.save_optimizer_states(fname)
    assert not os.path.exists(fname)


def test_backward_needs_for_training():
    mod = rm.mod.Module(mlp())
    mod.bind([("data", (2, 5))], [("softmax_label", (2,))], for_training=False)
    mod.init_params()
    mod.forward(DataBatch([rm.nd.ones((2, 5))], [rm.nd.zeros((2,))]))
    with pytest.raises(AssertionError, match="re-bind with for_training=True to run backward"):
        mod.backward()


def test_bind_inputs_need_grad_without_training():
    mod = rm.mod.Module(mlp())
    with pytest.raises((AssertionError, ValueError)):
        mod.bind([("data", (2, 5))], [("softmax_label", (2,))], for_training=False,
                 inputs_need_grad=True)
    assert not mod.binded


def test_bind_twice_warns_force_rebind_keeps_params(caplog):
    mod = rm.mod.Module(mlp())
    mod.bind([("data", (2, 5))], [("softmax_label", (2,))])
    mod.init_params()
    w = mod.get_params()[0]["fc1_weight"].copy()
    with caplog.at_level(logging.WARNING):
        mod.bind([("data", (4, 5))], [("softmax_label", (4,))])
    assert "Already bound, ignoring bind()" in caplog.text
    assert mod.data_shapes[0].shape == (2, 5)
    mod.bind([("data", (4, 5))], [("softmax_label", (4,))], force_rebind=True)
    assert mod.data_shapes[0].shape == (4, 5) and mod.params_initialized
    np.testing.assert_array_equal(mod._exec_group.param_arrays[0][0], w)


def test_optimizer_twice_warns(caplog):
    mod = rm.mod.Module(mlp())
    mod.bind([("data", (2, 5))], [("softmax_label", (2,))])
    mod.init_params()
    mod.init_optimizer()
    opt = mod._optimizer
    with caplog.at_level(logging.WARNING):
        mod.init_optimizer(optimizer="adam")
    assert "optimizer already initialized, ignoring..." in caplog.text
    assert mod._optimizer is opt
    mod.init_optimizer(optimizer="adam", force_init=True)
    assert type(mod._optimizer).__name__ == "Adam"


def test_module_name_checks():
    with pytest.raises(ValueError, match="data_names=\\['x'\\]"):
        rm.mod.Module(mlp(), data_names=["x"])
    with pytest.raises(ValueError, match="fixed_param"):
        rm.mod.Module(mlp(), fixed_param_names=["nope"])
    with pytest.warns(UserWarning, match="label_names"):
        mod = rm.mod.Module(mlp(), label_names=["lbl"])
    # an unlisted label becomes a parameter, as in MXNet
    assert "softmax_label" in mod._param_names
    with pytest.raises(ValueError, match="work_load_list"):
        rm.mod.Module(mlp(), context=CPU2, work_load_list=[1])


# ---------------------------------------------------------------- checkpoints
def _trained(ctx, tmp_path, optimizer_params=(("learning_rate", 0.1), ("momentum", 0.9))):
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=6, name="fc")
    mod = rm.mod.Module(sym, ("data",), None, context=ctx)
    mod.bind(data_shapes=[("data", (10, 10))])
    mod.init_params()
    mod.init_optimizer(optimizer_params=dict(optimizer_params))
    rng = np.random.default_rng(3)
    for _ in range(2):
        mod.forward(DataBatch([rm.nd.array(rng.standard_normal((10, 10)))]))
        mod.backward([rm.nd.array(rng.standard_normal((10, 6)))])
        mod.update()
    return sym, mod


def _states_of(mod):
    """The optimizer states a module would save, decoded ({name: array})."""
    if mod._update_on_kvstore:
        return mod._kvstore._updater.states
    return loads_states(mod._exec_group.get_updater_states())[0]


@pytest.mark.parametrize("ctx", [[rm.cpu()], CPU2], ids=["one", "two"])
def test_save_load(ctx, tmp_path):
    sym, mod = _trained(ctx, tmp_path)
    prefix = str(tmp_path / "test")
    mod.save_checkpoint(prefix, 0, save_optimizer_states=True)
    for suffix in ("-symbol.json", "-0000.params", "-0000.states"):
        assert os.path.exists(prefix + suffix)

    mod2 = rm.mod.Module.load(prefix, 0, load_optimizer_states=True, data_names=("data",),
                              label_names=None)
    mod2.bind(data_shapes=[("data", (10, 10))])
    mod2.init_optimizer(optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    assert mod._symbol.tojson() == mod2._symbol.tojson()
    arg1, arg2 = mod.get_params()[0], mod2.get_params()[0]
    assert set(arg1) == set(arg2)
    for k in arg1:
        np.testing.assert_array_equal(arg1[k], arg2[k])
    s1, s2 = _states_of(mod), loads_states(mod2._exec_group.get_updater_states())[0]
    assert set(s1) == set(s2) == {"fc_weight", "fc_bias"}
    for k in s1:
        assert np.any(np.asarray(s1[k]) != 0)        # momentum really moved
        np.testing.assert_array_equal(np.asarray(s1[k]), np.asarray(s2[k]))


def test_load_then_continue_training_matches(tmp_path):
    """Saved weights + momentum: the next step of the reloaded module equals the original's."""
    sym, mod = _trained([rm.cpu()], tmp_path)
    prefix = str(tmp_path / "cont")
    mod.save_checkpoint(prefix, 3, save_optimizer_states=True)
    mod2 = rm.mod.Module.load(prefix, 3, load_optimizer_states=True, label_names=None)
    mod2.bind(data_shapes=[("data", (10, 10))])
    mod2.init_optimizer(optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    batch = DataBatch([rm.nd.ones((10, 10))])
    for m in (mod, mod2):
        m.forward(batch)
        m.backward([rm.nd.ones((10, 6))])
        m.update()
    # atol: on Ray the two modules' workers may run BLAS with different thread counts
    # (the second one shares the first one's cores), so sums round in another order.
    for k, v in mod.get_params()[0].items():
        np.testing.assert_allclose(mod2.get_params()[0][k], v, rtol=1e-6, atol=1e-7)

    # without the optimizer states the momentum restarts: a different step
    mod3 = rm.mod.Module.load(prefix, 3, label_names=None)
    mod3.bind(data_shapes=[("data", (10, 10))])
    mod3.init_optimizer(optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    mod3.forward(batch)
    mod3.backward([rm.nd.ones((10, 6))])
    mod3.update()
    assert not np.allclose(mod3.get_params()[0]["fc_bias"],
                           mod.get_params()[0]["fc_bias"])


def test_save_load_params_round_trip(tmp_path):
    mod, _ = _bound_step_module(batch=2, context=CPU2)
    mod.init_params(arg_params=STEP_PARAMS)
    fname = str(tmp_path / "p.params")
    mod.save_params(fname)
    saved = rm.nd.load(fname)
    assert list(saved) == ["arg:fc_0_weight", "arg:fc_0_bias", "arg:fc_1_weight",
                           "arg:fc_1_bias"]
    mod2, _ = _bound_step_module()
    mod2.init_params(initializer=rm.init.Zero())
    mod2.load_params(fname)
    for k, v in STEP_PARAMS.items():
        np.testing.assert_array_equal(mod2.get_params()[0][k], v)


def test_load_params_rejects_unknown_prefix(tmp_path):
    fname = str(tmp_path / "bad.params")
    rm.nd.save(fname, {"weird:fc_0_weight": np.zeros((2, 2), np.float32)})
    mod, _ = _bound_step_module()
    mod.init_params()
    with pytest.raises(ValueError, match="Invalid param file"):
        mod.load_params(fname)


def test_aux_params_saved_and_averaged(tmp_path):
    data = rm.sym.Variable("data")
    bn = rm.sym.BatchNorm(data, name="bn", fix_gamma=False)
    sym = rm.sym.LinearRegressionOutput(bn, name="lro")
    mod = rm.mod.Module(sym, label_names=["lro_label"], context=CPU2)
    mod.bind([("data", (4, 3))], [("lro_label", (4, 3))])
    mod.init_params()
    x = np.array([[0, 0, 0], [2, 2, 2], [10, 10, 10], [20, 20, 20]], np.float32)
    mod.init_optimizer(optimizer_params={"learning_rate": 0.0})
    mod.forward_backward(DataBatch([rm.nd.array(x)], [rm.nd.zeros((4, 3))]))
    # MXNet syncs from the devices only once update() made the master copies dirty
    np.testing.assert_array_equal(mod.get_params()[1]["bn_moving_mean"], 0)
    mod.update()
    _, aux = mod.get_params()
    # moving_mean = 0.9*0 + 0.1*mean(slice), averaged over the two devices
    expected = 0.1 * (np.mean(x[:2], 0) + np.mean(x[2:], 0)) / 2
    np.testing.assert_allclose(aux["bn_moving_mean"], expected, rtol=1e-5)
    fname = str(tmp_path / "bn.params")
    mod.save_params(fname)
    assert "aux:bn_moving_mean" in rm.nd.load(fname)


def test_model_checkpoint_helpers(tmp_path, caplog):
    prefix = str(tmp_path / "m")
    sym = step_by_step_net()
    with caplog.at_level(logging.INFO):
        rm.model.save_checkpoint(prefix, 12, sym, STEP_PARAMS, {})
    assert 'Saved checkpoint to "%s-0012.params"' % prefix in caplog.text
    sym2, arg, aux = rm.model.load_checkpoint(prefix, 12)
    assert sym2.tojson() == sym.tojson() and aux == {}
    for k, v in STEP_PARAMS.items():
        np.testing.assert_array_equal(arg[k], v)
    rm.model.save_checkpoint(prefix, 13, None, {}, {})
    with caplog.at_level(logging.WARNING):
        assert rm.model.load_params(prefix, 13) == ({}, {})
    assert "is empty" in caplog.text


def test_module_load_missing_param_is_clear_error(tmp_path):
    prefix = str(tmp_path / "miss")
    params = {k: v for k, v in STEP_PARAMS.items() if k != "fc_1_bias"}
    rm.model.save_checkpoint(prefix, 1, step_by_step_net(), params, {})
    mod = rm.mod.Module.load(prefix, 1)
    with pytest.raises((KeyError, ValueError, RuntimeError), match="fc_1_bias"):
        mod.bind([("data", (1, 2))], [("softmax_label", (1, 2))])


def test_failed_save_leaves_no_partial_file(tmp_path, monkeypatch):
    from raymod.ndarray import serialization
    mod, _ = _bound_step_module()
    mod.init_params(arg_params=STEP_PARAMS)
    fname = tmp_path / "model-0001.params"
    fname.write_bytes(b"previous good checkpoint")
    calls = {"n": 0}
    real = serialization._write_record

    def failing_write(f, arr):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return real(f, arr)

    monkeypatch.setattr(serialization, "_write_record", failing_write)
    with pytest.raises(OSError, match="disk full"):
        mod.save_params(str(fname))
    assert calls["n"] == 3
    assert fname.read_bytes() == b"previous good checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-0001.params"]
    calls["n"] = 0
    with pytest.raises(OSError, match="disk full"):
        mod.save_checkpoint(str(tmp_path / "model"), 2)
    assert not (tmp_path / "model-0002.params").exists()
    assert calls["n"] == 3
    assert all(not p.name.startswith(".") for p in tmp_path.iterdir())


def test_failed_optimizer_state_save_leaves_no_partial_file(tmp_path, monkeypatch):
    import raymod.fileio as fileio
    mod, _ = _bound_step_module()
    mod.init_params(arg_params=STEP_PARAMS)
    mod.init_optimizer(optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    real_replace = os.replace

    def failing_replace(src, dst):
        raise OSError("rename failed (simulated)")

    monkeypatch.setattr(fileio.os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        mod.save_optimizer_states(str(tmp_path / "x.states"))
    monkeypatch.setattr(fileio.os, "replace", real_replace)
    assert list(tmp_path.iterdir()) == []


def test_failed_init_params_leaves_values_untouched():
    mod, _ = _bound_step_module()
    mod.init_params(arg_params=STEP_PARAMS)
    zeros = {k: np.zeros_like(v) for k, v in STEP_PARAMS.items() if k != "fc_1_weight"}
    with pytest.raises(RuntimeError, match="fc_1_weight is not presented"):
        mod.init_params(arg_params=zeros, force_init=True)
    bad_shape = dict(zeros, fc_1_weight=np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="fc_1_weight"):
        mod.set_params(bad_shape, {})
    for k, v in STEP_PARAMS.items():
        np.testing.assert_array_equal(mod.get_params()[0][k], v)
        np.testing.assert_array_equal(mod._exec_group.param_arrays[
            mod._exec_group.param_names.index(k)][0], v)


def test_set_params_with_aux_none_keeps_aux():
    data = rm.sym.Variable("data")
    sym = rm.sym.BatchNorm(data, name="bn")
    mod = rm.mod.Module(sym, label_names=None)
    mod.bind([("data", (4, 3))])
    mod.init_params()
    arg, aux = mod.get_params()
    np.testing.assert_array_equal(aux["bn_moving_var"], 1)      # initialised by __init__
    mod.set_params({k: v + 1 for k, v in arg.items()}, None)
    np.testing.assert_array_equal(mod.get_params()[1]["bn_moving_var"], 1)
    np.testing.assert_array_equal(mod.get_params()[0]["bn_beta"], 1)


def test_failed_bind_leaves_module_unbound_and_unchanged(tmp_path):
    prefix = str(tmp_path / "wrong")
    bad = dict(STEP_PARAMS, fc_1_weight=np.zeros((3, 2), np.float32))
    rm.model.save_checkpoint(prefix, 1, step_by_step_net(), bad, {})
    mod = rm.mod.Module.load(prefix, 1)
    with pytest.raises(ValueError, match="fc_1_weight"):
        mod.bind([("data", (1, 2))], [("softmax_label", (1, 2))], for_training=False)
    assert not mod.binded and mod._exec_group is None and not mod.for_training
    mod3 = rm.mod.Module(mlp(), context=[rm.cpu(0), rm.cpu(1), rm.cpu(2)])
    with pytest.raises(ValueError, match="Too many slices"):
        mod3.bind([("data", (2, 5))], [("softmax_label", (2,))], inputs_need_grad=True)
    assert not (mod3.binded or mod3.for_training or mod3.inputs_need_grad)
