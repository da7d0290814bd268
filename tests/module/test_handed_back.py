"""What a module hands back is MXNet's on every placement: writable NDArrays of their own,
executor views, the monitor, nd.waitall and checks made at the call."""
import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch

from .nets import CPU2, classification_data, mlp


def _trained_one_step(context=CPU2, inputs_need_grad=False):
    x, y = classification_data(n=8)
    mod = rm.mod.Module(mlp(), context=context)
    mod.bind([("data", (8, 5))], [("softmax_label", (8,))], inputs_need_grad=inputs_need_grad)
    mod.init_params(initializer=rm.init.Xavier())
    mod.init_optimizer(optimizer_params={"learning_rate": 0.1})
    batch = DataBatch([rm.nd.array(x)], [rm.nd.array(y)])
    mod.forward_backward(batch)
    mod.update()
    return mod, batch


def _is_own_writable_ndarray(array):
    return isinstance(array, rm.nd.NDArray) and array.flags.writeable


def test_params_outputs_and_input_grads_are_writable_ndarrays():
    mod, batch = _trained_one_step(inputs_need_grad=True)
    arg, aux = mod.get_params()
    assert all(_is_own_writable_ndarray(v) for v in arg.values())
    assert arg["fc1_bias"].asnumpy().shape == (8,)
    outputs = mod.get_outputs()
    grads = mod.get_input_grads()
    per_device = mod.get_outputs(merge_multi_context=False)
    assert all(_is_own_writable_ndarray(a) for a in outputs + grads + per_device[0])
    assert [a.context for a in per_device[0]] == CPU2
    # A composition adds into what it was handed (MXNet's stochastic depth does).
    before = outputs[0].copy()
    outputs[0] += 1.0
    grads[0] *= 0.0
    np.testing.assert_allclose(outputs[0], before + 1.0, rtol=1e-6)
    # They are the module's results, not its live buffers: the next forward leaves them be.
    mod.forward(DataBatch([rm.nd.zeros((8, 5))], batch.label), is_train=False)
    np.testing.assert_allclose(outputs[0], before + 1.0, rtol=1e-6)
    assert not np.allclose(mod.get_outputs()[0], before)


def test_executor_views_show_current_values():
    mod, _ = _trained_one_step()
    group = mod._exec_group
    arg, _ = mod.get_params()
    for rank, exe in enumerate(group.execs):
        np.testing.assert_allclose(exe.arg_dict["fc1_weight"], arg["fc1_weight"], rtol=1e-6)
        assert set(exe.grad_dict) >= {"fc1_weight", "fc2_bias"}
        assert exe.outputs[0].shape == (4, 3)
        assert [a.shape for a in exe.arg_arrays] == [
            a.shape for a in (exe.arg_dict[n] for n in group.arg_names)]
    assert [len(per) for per in group.grad_arrays] == [2] * len(group.param_names)


def test_executor_views_on_ray_are_read_only_snapshots(placement):
    if placement != "ray":
        pytest.skip("in-process, execs are the executors themselves")
    mod, _ = _trained_one_step()
    exe = mod._exec_group.execs[0]
    weight = exe.arg_dict["fc1_weight"]
    with pytest.raises(ValueError, match="read-only"):
        weight[...] = 0.0
    with pytest.raises(AssertionError, match="install_monitor"):
        exe.set_monitor_callback(lambda name, arr: None)


def test_set_params_errors_are_mxnets_and_raised_before_any_device_is_written():
    mod, _ = _trained_one_step()
    arg, aux = mod.get_params()
    arg = {k: v.copy() for k, v in arg.items()}
    with pytest.raises(RuntimeError, match="fc2_bias is not presented"):
        mod.set_params({k: v for k, v in arg.items() if k != "fc2_bias"}, aux)
    with pytest.raises(ValueError, match='Find name "nope" that is not in the arguments'):
        mod.set_params({"nope": np.zeros(2)}, aux, allow_missing=True)
    wrong = dict(arg, fc1_weight=np.zeros((2, 2), np.float32), fc1_bias=arg["fc1_bias"] + 5)
    with pytest.raises(ValueError, match="'fc1_weight' expected shape"):
        mod.set_params(wrong, aux, allow_missing=True)
    # nothing was written: not even fc1_bias, whose value was fine
    np.testing.assert_array_equal(mod.get_params()[0]["fc1_bias"], arg["fc1_bias"])
    mod.set_params({"nope": np.zeros(2)}, aux, allow_missing=True, allow_extra=True)


def test_backward_checks_head_gradients_at_the_call():
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=2, name="fc")
    mod = rm.mod.Module(sym, label_names=None, context=CPU2)
    mod.bind([("data", (4, 3))])
    mod.init_params()
    mod.forward(DataBatch([rm.nd.ones((4, 3))]))
    with pytest.raises(rm.MXNetError, match="head_gradient is required"):
        mod.backward()
    with pytest.raises(rm.MXNetError, match=r"has shape \(\d, 3\), expected \(\d, 2\)"):
        mod.backward([rm.nd.ones((4, 3))])


def test_monitor_statistics_are_ndarrays_and_follow_the_interval():
    def stat(array):
        return array.asnumpy().sum()          # MXNet's stat_func gets an NDArray

    mon = rm.mon.Monitor(2, stat_func=stat, pattern="fc1_.*")
    x, y = classification_data(n=8)
    mod = rm.mod.Module(mlp(), context=CPU2)
    mod.bind([("data", (8, 5))], [("softmax_label", (8,))])
    mod.install_monitor(mon)
    mod.init_params(initializer=rm.init.Xavier())
    mod.init_optimizer()
    batch = DataBatch([rm.nd.array(x)], [rm.nd.array(y)])
    results = []
    for _ in range(4):
        mon.tic()
        mod.forward_backward(batch)
        mod.update()
        results.append(mon.toc())
    assert [bool(r) for r in results] == [True, False, True, False]
    names = {k for _, k, _ in results[0]}
    assert {"fc1_output", "fc1_weight", "fc1_bias"} <= names
    assert all(k.startswith("fc1_") for k in names)
    assert [n for n, _, _ in results[2]][0] == 3        # the batch number of tic 3
    # two devices: each reports its own statistics
    assert sum(k == "fc1_weight" for _, k, _ in results[0]) == 2


def test_waitall_waits_for_the_queued_work():
    mod, batch = _trained_one_step()
    for _ in range(3):
        mod.forward_backward(batch)
        mod.update()
    rm.nd.waitall()
    scheduler = mod._exec_group._scheduler
    if scheduler is not None:
        assert scheduler._record is None and not scheduler._held
        assert scheduler._in_flight == []


def test_optimizer_states_on_the_kvstore_include_the_deferred_update(tmp_path, placement):
    """local kvstore, two devices: the store updates; saving right after update()
    must see that update (on Ray it is still deferred when save is called)."""
    files = {}
    for where in ("in_process", placement):
        x, y = classification_data(n=8)
        rm.random.seed(3)
        mod = rm.mod.Module(mlp(), context=CPU2, placement=where)
        mod.bind([("data", (8, 5))], [("softmax_label", (8,))])
        mod.init_params(initializer=rm.init.Xavier())
        mod.init_optimizer(kvstore="local", optimizer="adam")
        assert mod._update_on_kvstore
        mod.forward_backward(DataBatch([rm.nd.array(x)], [rm.nd.array(y)]))
        mod.update()
        files[where] = tmp_path / f"{where}.states"
        mod.save_optimizer_states(str(files[where]))
    assert files[placement].read_bytes() == files["in_process"].read_bytes()
