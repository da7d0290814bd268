"""Executor.reshape and simple_bind(shared_exec=...): which arrays are shared (MXNet's rules
for reshape, checked against MXNet 1.9.1)."""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import array_module, to_numpy
from raymod.test_utils import assert_almost_equal, same_array


def _net():
    data = rm.sym.Variable("data")
    h = rm.sym.FullyConnected(data, num_hidden=3, name="fc1")
    h = rm.sym.BatchNorm(h, name="bn", fix_gamma=False)
    return rm.sym.SoftmaxOutput(h, name="sm")


def _shares(a, b):
    return array_module(a).shares_memory(a, b)


def test_reshape_smaller_shares_every_array(ctx):
    exe = _net().simple_bind(ctx, data=(8, 5))
    small = exe.reshape(data=(2, 5), sm_label=(2,))
    for name in ("fc1_weight", "fc1_bias", "bn_gamma", "bn_beta"):
        assert small.arg_dict[name] is exe.arg_dict[name]
        assert small.grad_dict[name] is exe.grad_dict[name]
    assert small.aux_dict["bn_moving_mean"] is exe.aux_dict["bn_moving_mean"]
    assert small.arg_dict["data"].shape == (2, 5)
    assert _shares(small.arg_dict["data"], exe.arg_dict["data"])    # a view of the first rows
    assert _shares(small.grad_dict["data"], exe.grad_dict["data"])
    exe.arg_dict["data"][...] = 7
    assert np.all(to_numpy(small.arg_dict["data"]) == 7)
    assert [o.shape for o in small.outputs] == [(2, 3)]
    assert small.grad_req == exe.grad_req


def test_reshaped_executor_computes_like_a_fresh_one(ctx):
    rng = np.random.default_rng(0)
    exe = _net().simple_bind(ctx, data=(8, 5))
    params = {"fc1_weight": rng.normal(size=(3, 5)), "fc1_bias": rng.normal(size=3),
              "bn_gamma": rng.uniform(1, 2, size=3), "bn_beta": rng.normal(size=3)}
    exe.copy_params_from(params)
    small = exe.reshape(data=(4, 5), sm_label=(4,))
    fresh = _net().simple_bind(ctx, data=(4, 5))
    fresh.copy_params_from(params)
    data, label = rng.normal(size=(4, 5)), np.array([0, 1, 2, 1])
    for e in (small, fresh):
        e.forward(is_train=True, data=data, sm_label=label)
        e.backward()
    assert_almost_equal(small.outputs[0], fresh.outputs[0], rtol=1e-6)
    assert_almost_equal(small.grad_dict["fc1_weight"], fresh.grad_dict["fc1_weight"],
                        rtol=1e-5, atol=1e-7)


def test_reshape_up_sizing_needs_permission(ctx):
    exe = _net().simple_bind(ctx, data=(2, 5))
    with pytest.raises(MXNetError, match="New shape of arg: data is larger than original"):
        exe.reshape(data=(8, 5), sm_label=(8,))
    big = exe.reshape(data=(8, 5), sm_label=(8,), allow_up_sizing=True)
    assert big.arg_dict["data"].shape == (8, 5)
    assert not _shares(big.arg_dict["data"], exe.arg_dict["data"])
    assert big.arg_dict["fc1_weight"] is exe.arg_dict["fc1_weight"]


def test_reshape_refuses_silent_changes_of_unnamed_arguments(ctx):
    exe = _net().simple_bind(ctx, data=(4, 5))
    # sm_label is inferred as (2,), not named: MXNet refuses.
    with pytest.raises(MXNetError, match="Shape of unspecified array arg:sm_label changed"):
        exe.reshape(data=(2, 5))
    # A new feature count changes fc1_weight: allowed only with partial_shaping.
    with pytest.raises(MXNetError, match="arg:fc1_weight changed"):
        exe.reshape(data=(4, 6), sm_label=(4,), allow_up_sizing=True)
    other = exe.reshape(data=(4, 6), partial_shaping=True, allow_up_sizing=True)
    assert other.arg_dict["fc1_weight"].shape == (3, 6)
    assert other.arg_dict["bn_gamma"] is exe.arg_dict["bn_gamma"]


def test_reshape_unknown_name():
    exe = _net().simple_bind(rm.cpu(), data=(4, 5))
    with pytest.raises(MXNetError, match=r"\['nope'\] are not inputs"):
        exe.reshape(nope=(2, 5))


def test_simple_bind_shares_arrays_with_shared_exec(ctx):
    first = _net().simple_bind(ctx, data=(8, 5))
    second = _net().simple_bind(ctx, data=(4, 5), shared_exec=first)
    for name in ("fc1_weight", "bn_gamma"):
        assert same_array(second.arg_dict[name], first.arg_dict[name])
        assert second.arg_dict[name] is first.arg_dict[name]
        assert second.grad_dict[name] is first.grad_dict[name]
    assert second.aux_dict["bn_moving_var"] is first.aux_dict["bn_moving_var"]
    assert _shares(second.arg_dict["data"], first.arg_dict["data"])     # smaller: a view
    assert _shares(second.grad_dict["data"], first.grad_dict["data"])
    bigger = _net().simple_bind(ctx, data=(16, 5), shared_exec=first)
    assert not _shares(bigger.arg_dict["data"], first.arg_dict["data"])  # larger: new
    assert bigger.arg_dict["fc1_weight"] is first.arg_dict["fc1_weight"]
    assert second.nbytes() < first.nbytes()           # only what it allocated itself
