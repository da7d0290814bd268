"""Activation, LeakyReLU, softmax, log_softmax: gradients, numpy references, shapes, errors."""
import math

import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.ops.activation import SELU_ALPHA, SELU_LAMBDA, erf
from raymod.test_utils import (assert_almost_equal, check_symbolic_backward,
                               check_symbolic_forward)
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731


def _act(act_type):
    return lambda: rm.sym.Activation(data(), act_type=act_type, name="act")


def _leaky(act_type, **kw):
    return lambda: rm.sym.LeakyReLU(data(), act_type=act_type, name="lr", **kw)


GRAD_CASES = [
    *[GradCase("Activation", t, _act(t), {"data": (3, 4)})
      for t in ("relu", "sigmoid", "tanh", "softrelu", "softsign")],
    GradCase("LeakyReLU", "leaky", _leaky("leaky", slope=0.1), {"data": (3, 4)}),
    GradCase("LeakyReLU", "prelu", _leaky("prelu"), {"data": (2, 3, 4), "lr_gamma": (3,)}),
    GradCase("LeakyReLU", "prelu-2d", _leaky("prelu"), {"data": (4, 3), "lr_gamma": (3,)}),
    GradCase("LeakyReLU", "prelu-scalar-gamma", _leaky("prelu"),
             {"data": (2, 3, 2), "lr_gamma": (1,)}),
    GradCase("LeakyReLU", "elu", _leaky("elu", slope=0.7), {"data": (3, 4)}),
    GradCase("LeakyReLU", "selu", _leaky("selu"), {"data": (3, 4)}),
    GradCase("LeakyReLU", "gelu", _leaky("gelu"), {"data": (3, 4)}, low=-3, high=3),
    # rrelu draws new slopes every training forward: check the inference form.
    GradCase("LeakyReLU", "rrelu-inference", _leaky("rrelu"), {"data": (3, 4)},
             use_forward_train=False),
    GradCase("softmax", "last-axis", lambda: rm.sym.softmax(data(), name="sm"),
             {"data": (3, 4)}),
    GradCase("softmax", "axis0-temperature",
             lambda: rm.sym.softmax(data(), axis=0, temperature=2.5, name="sm"),
             {"data": (3, 4, 2)}),
    GradCase("softmax", "use_length",
             lambda: rm.sym.softmax(data(), use_length=True, name="sm"),
             {"data": (3, 4), "sm_length": (3,)}, values={"sm_length": [1, 4, 2]}),
    GradCase("log_softmax", "last-axis", lambda: rm.sym.log_softmax(data(), name="ls"),
             {"data": (3, 4)}),
    GradCase("log_softmax", "axis1-temperature",
             lambda: rm.sym.log_softmax(data(), axis=1, temperature=0.5, name="ls"),
             {"data": (2, 3, 2)}),
    GradCase("log_softmax", "use_length",
             lambda: rm.sym.log_softmax(data(), axis=0, use_length=True, name="ls"),
             {"data": (4, 3), "ls_length": (3,)}, values={"ls_length": [4, 1, 3]}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


# --------------------------------------------------------------------------- references

def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_softmax(x, axis=-1, t=1.0):
    e = np.exp((x - x.max(axis=axis, keepdims=True)) / t)
    return e / e.sum(axis=axis, keepdims=True)


X = np.array([[-30.0, -2.0, -0.5, 0.0], [0.25, 1.5, 19.0, 25.0]])


@pytest.mark.parametrize("act_type, expected", [
    ("relu", np.maximum(X, 0)),
    ("sigmoid", _np_sigmoid(X)),
    ("tanh", np.tanh(X)),
    ("softrelu", np.where(X > 20, X, np.log(1 + np.exp(X)))),
    ("softsign", X / (1 + np.abs(X))),
])
def test_activation_forward(act_type, expected, ctx):
    sym = rm.sym.Activation(data(), act_type=act_type)
    check_symbolic_forward(sym, [X], [expected], rtol=1e-12, atol=1e-12, ctx=ctx,
                           dtype=np.float64)


@pytest.mark.parametrize("act_type, dfdx", [
    ("relu", (X > 0).astype(float)),
    ("sigmoid", _np_sigmoid(X) * (1 - _np_sigmoid(X))),
    ("tanh", 1 - np.tanh(X) ** 2),
    ("softrelu", _np_sigmoid(X)),
    ("softsign", 1 / (1 + np.abs(X)) ** 2),
])
def test_activation_backward(act_type, dfdx, ctx):
    sym = rm.sym.Activation(data(), act_type=act_type)
    gy = np.linspace(-1, 1, X.size).reshape(X.shape)
    check_symbolic_backward(sym, [X], [gy], [gy * dfdx], rtol=1e-9, atol=1e-12, ctx=ctx,
                            dtype=np.float64)


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


@pytest.mark.parametrize("kwargs, expected", [
    ({}, np.where(X > 0, X, 0.25 * X)),
    ({"act_type": "leaky", "slope": 0.1}, np.where(X > 0, X, 0.1 * X)),
    ({"act_type": "elu", "slope": 0.5}, np.where(X > 0, X, 0.5 * (np.exp(X) - 1))),
    ({"act_type": "selu"}, SELU_LAMBDA * np.where(X > 0, X, SELU_ALPHA * (np.exp(X) - 1))),
    ({"act_type": "gelu"}, _gelu(X)),
    ({"act_type": "rrelu", "lower_bound": 0.2, "upper_bound": 0.4},
     np.where(X > 0, X, 0.3 * X)),                    # inference: the mean slope
])
def test_leaky_relu_forward(kwargs, expected, ctx):
    sym = rm.sym.LeakyReLU(data(), **kwargs)
    check_symbolic_forward(sym, [X], [expected], rtol=1e-6, atol=1e-7, ctx=ctx,
                           dtype=np.float64)


def test_erf_matches_math_erf():
    x = np.linspace(-6, 6, 2001)
    assert np.max(np.abs(erf(np, x) - np.vectorize(math.erf)(x))) < 1.5e-7


def test_prelu_forward_backward_and_gamma(ctx):
    sym = rm.sym.LeakyReLU(data(), act_type="prelu", name="pr")
    assert sym.list_arguments() == ["data", "pr_gamma"]
    assert sym.attr_dict()["pr_gamma"]["__init__"] == '["Constant", {"value": 0.25}]'
    x = np.arange(-6, 6, dtype=np.float64).reshape(2, 3, 2)
    gamma = np.array([0.1, 0.2, 0.3])
    g = gamma.reshape(1, 3, 1)
    check_symbolic_forward(sym, [x, gamma], [np.where(x > 0, x, g * x)], ctx=ctx,
                           dtype=np.float64)
    gy = np.ones_like(x) * 2
    check_symbolic_backward(sym, [x, gamma], [gy],
                            {"data": np.where(x > 0, gy, g * gy),
                             "pr_gamma": np.where(x > 0, 0, x * gy).sum(axis=(0, 2))},
                            ctx=ctx, dtype=np.float64)


def test_prelu_keeps_a_given_init():
    gamma = rm.sym.Variable("g", init='["Zero", {}]')
    sym = rm.sym.LeakyReLU(data(), gamma=gamma, act_type="prelu", name="pr")
    assert sym.attr_dict()["g"]["__init__"] == '["Zero", {}]'


def test_rrelu_training_draws_slopes_in_bounds_and_backward_uses_them(ctx):
    sym = rm.sym.LeakyReLU(data(), act_type="rrelu", lower_bound=0.2, upper_bound=0.5)
    x = -np.linspace(0.5, 2.0, 24).reshape(4, 6)
    x[0] *= -1                                        # one row of positives
    exe = sym.simple_bind(ctx, data=x.shape)
    y = to_numpy(exe.forward(is_train=True, data=x)[0])
    slopes = y[1:] / x[1:]
    assert np.all(y[0] == x[0].astype(np.float32))
    assert np.all((slopes >= 0.2 - 1e-6) & (slopes <= 0.5 + 1e-6))
    assert np.std(slopes) > 0.01                      # drawn per element, not one value
    gy = np.full(x.shape, 3.0, dtype=np.float32)
    exe.backward([ctx.xp.asarray(gy)])
    gx = to_numpy(exe.grad_dict["data"])
    assert_almost_equal(gx[1:], 3.0 * slopes, rtol=1e-5)
    assert_almost_equal(gx[0], gy[0])


def test_rrelu_has_a_hidden_mask_output():
    op = rm.sym.LeakyReLU(data(), act_type="rrelu")._heads[0][0].op
    assert op.num_hidden_outputs == 1 and op.list_outputs() == ["output"]
    assert rm.sym.LeakyReLU(data())._heads[0][0].op.num_hidden_outputs == 0


def test_softmax_forward(ctx):
    x = np.random.default_rng(0).normal(size=(2, 3, 4)) * 3
    check_symbolic_forward(rm.sym.softmax(data()), [x], [_np_softmax(x)], ctx=ctx,
                           dtype=np.float64, rtol=1e-12)
    check_symbolic_forward(rm.sym.softmax(data(), axis=1, temperature=3.0), [x],
                           [_np_softmax(x, 1, 3.0)], ctx=ctx, dtype=np.float64, rtol=1e-12)
    check_symbolic_forward(rm.sym.log_softmax(data(), axis=0), [x],
                           [np.log(_np_softmax(x, 0))], ctx=ctx, dtype=np.float64, rtol=1e-12)


def test_softmax_backward(ctx):
    x = np.random.default_rng(1).normal(size=(3, 5))
    gy = np.random.default_rng(2).normal(size=(3, 5))
    p = _np_softmax(x, t=2.0)
    expected = p * (gy - (gy * p).sum(axis=1, keepdims=True)) / 2.0
    check_symbolic_backward(rm.sym.softmax(data(), temperature=2.0), [x], [gy], [expected],
                            ctx=ctx, dtype=np.float64, rtol=1e-10)
    expected = gy - _np_softmax(x) * gy.sum(axis=1, keepdims=True)
    check_symbolic_backward(rm.sym.log_softmax(data()), [x], [gy], [expected],
                            ctx=ctx, dtype=np.float64, rtol=1e-10)


def test_softmax_use_length(ctx):
    x = np.random.default_rng(3).normal(size=(3, 4))
    length = np.array([2, 4, 1])
    expected = np.zeros_like(x)
    log_expected = np.zeros_like(x)
    for i, n in enumerate(length):
        expected[i, :n] = _np_softmax(x[i, :n])
        log_expected[i, :n] = np.log(expected[i, :n])
    sym = rm.sym.softmax(data(), use_length=True, name="sm")
    assert sym.list_arguments() == ["data", "sm_length"]
    check_symbolic_forward(sym, [x, length], [expected], ctx=ctx, dtype=np.float64)
    check_symbolic_forward(rm.sym.log_softmax(data(), use_length=True), [x, length],
                           [log_expected], ctx=ctx, dtype=np.float64)
    _, _, _ = sym.infer_shape(data=(3, 4))
    assert sym.infer_shape(data=(3, 4))[0] == [(3, 4), (3,)]
    assert rm.sym.softmax(data(), axis=1, use_length=True).infer_shape(
        data=(2, 5, 3))[0] == [(2, 5, 3), (2, 3)]


def test_softmax_dtype_sets_the_output_type(ctx):
    sym = rm.sym.softmax(data(), dtype="float64")
    assert sym.infer_type(data=np.float32) == ([np.float32], [np.float64], [])
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    exe = sym.simple_bind(ctx, data=(1, 3), type_dict={"data": np.float32})
    out = exe.forward(data=x)[0]
    assert out.dtype == np.float64
    assert_almost_equal(out, _np_softmax(x.astype(np.float64)), rtol=1e-6)


def test_shape_inference_runs_both_ways_for_activation():
    sym = rm.sym.Activation(data(), act_type="relu") + rm.sym.Variable("other")
    arg_shapes, out_shapes, _ = sym.infer_shape(other=(2, 3))
    assert arg_shapes == [(2, 3), (2, 3)] and out_shapes == [(2, 3)]


# --------------------------------------------------------------------------- errors

def test_activation_needs_act_type():
    with pytest.raises(TypeError, match="Activation 'a1'.*act_type"):
        rm.sym.Activation(data(), name="a1")


def test_activation_rejects_unknown_act_type():
    with pytest.raises(ValueError, match="act_type.*'swish'"):
        rm.sym.Activation(data(), act_type="swish", name="a1")


def test_leaky_relu_rejects_unknown_attribute():
    with pytest.raises(TypeError, match="LeakyReLU 'lr'.*'alpha'"):
        rm.sym.LeakyReLU(data(), alpha=0.1, name="lr")


def test_prelu_needs_a_channel_axis():
    sym = rm.sym.LeakyReLU(data(), act_type="prelu", name="pr")
    with pytest.raises(MXNetError, match="LeakyReLU 'pr'.*channel axis"):
        sym.infer_shape(data=(5,))


def test_prelu_gamma_of_the_wrong_size():
    sym = rm.sym.LeakyReLU(data(), act_type="prelu", name="pr")
    with pytest.raises(MXNetError, match="LeakyReLU 'pr'.*gamma"):
        sym.infer_shape(data=(2, 3), pr_gamma=(4,))


def test_rrelu_bounds_must_be_ordered():
    with pytest.raises(ValueError, match="lower_bound"):
        rm.sym.LeakyReLU(data(), act_type="rrelu", lower_bound=0.5, upper_bound=0.1)


def test_softmax_axis_out_of_range():
    with pytest.raises(MXNetError, match="softmax 'sm'.*axis 2"):
        rm.sym.softmax(data(), axis=2, name="sm").infer_shape(data=(3, 4))


def test_softmax_rejects_zero_temperature():
    with pytest.raises(ValueError, match="temperature"):
        rm.sym.softmax(data(), temperature=0.0, name="sm")
