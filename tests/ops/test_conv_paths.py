"""Convolution's pointwise and depthwise lowerings (raymod/ops/_conv_paths.py): gradients,
the loop reference for forward and every gradient, and which lowering a geometry takes."""
import numpy as np
import pytest

import raymod as rm
from raymod.context import to_numpy
from raymod.ops import _conv_paths as paths
from raymod.ops import get_op_class
from tests.ops.cases import GradCase, case_ids, run_grad_case
from tests.ops.test_conv import np_conv2d

data = lambda: rm.sym.Variable("data")   # noqa: E731


def _conv(**kw):
    return lambda: rm.sym.Convolution(data(), name="conv", **kw)


GRAD_CASES = [
    GradCase("Convolution", "depthwise-stride-pad",
             _conv(kernel=(3, 3), stride=(2, 2), pad=(1, 1), num_group=3, num_filter=3),
             {"data": (2, 3, 5, 6), "conv_weight": (3, 1, 3, 3), "conv_bias": (3,)}),
    GradCase("Convolution", "depthwise-dilate-no_bias",
             _conv(kernel=(2, 3), dilate=(2, 1), pad=(1, 0), num_group=2, num_filter=2,
                   no_bias=True),
             {"data": (1, 2, 5, 4), "conv_weight": (2, 1, 2, 3)}),
    GradCase("Convolution", "pointwise-groups",
             _conv(kernel=(1, 1), num_group=2, num_filter=4),
             {"data": (2, 4, 8, 8), "conv_weight": (4, 2, 1, 1), "conv_bias": (4,)}),
    GradCase("Convolution", "pointwise-1d", _conv(kernel=(1,), num_filter=2, no_bias=True),
             {"data": (2, 3, 64), "conv_weight": (2, 3, 1)}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


def _lowering(kw, shape):
    sym = rm.sym.Convolution(data(), name="c", **kw)
    _, (out,), _ = sym.infer_shape(data=shape)
    op = get_op_class("Convolution")("c", **kw)
    return op._lowering(shape[1], out[2:])


def test_which_lowering():
    assert _lowering(dict(kernel=(3, 3), num_filter=8, num_group=8), (1, 8, 9, 9)) == \
        "depthwise"
    assert _lowering(dict(kernel=(1, 1), num_filter=8, num_group=8), (1, 8, 9, 9)) == \
        "depthwise"
    assert _lowering(dict(kernel=(1, 1), num_filter=5), (1, 8, 8, 8)) == "pointwise"
    # few output positions: the batch-wide columns; strides or padding: im2col
    assert _lowering(dict(kernel=(1, 1), num_filter=5), (1, 8, 7, 7)) == "im2col"
    assert _lowering(dict(kernel=(1, 1), stride=(2, 2), num_filter=5), (1, 8, 20, 20)) == \
        "im2col"
    assert _lowering(dict(kernel=(1, 1), pad=(1, 1), num_filter=5), (1, 8, 20, 20)) == \
        "im2col"
    # depthwise needs one filter per channel: a channel multiplier is grouped im2col
    assert _lowering(dict(kernel=(3, 3), num_filter=16, num_group=8), (1, 8, 9, 9)) == \
        "im2col"


@pytest.fixture(params=["per-sample", "all-columns"])
def pointwise_weight_grad(request, monkeypatch):
    """1x1 convolutions take the pointwise path at any size here; 'all-columns' forces
    its weight gradient through the transposed copies instead of per-sample products."""
    monkeypatch.setattr(paths, "POINTWISE_MIN_COLUMNS", 1)
    if request.param == "all-columns":
        monkeypatch.setattr(paths, "_weight_grad_per_sample", lambda f, c, p: False)
    return request.param


def _one_hot(shape, idx):
    e = np.zeros(shape)
    e[idx] = 1.0
    return e


@pytest.mark.parametrize("kw,shape", [
    (dict(kernel=(3, 3), stride=(2, 1), pad=(1, 1), num_group=3, num_filter=3), (2, 3, 5, 4)),
    (dict(kernel=(2, 2), dilate=(2, 2), num_group=2, num_filter=2), (1, 2, 5, 5)),
    (dict(kernel=(1, 1), num_group=2, num_filter=4), (2, 6, 3, 2)),
    (dict(kernel=(1, 1), num_filter=3), (2, 2, 1, 1)),
])
def test_forward_and_gradients_match_loops(ctx, rng, kw, shape, pointwise_weight_grad):
    sym = rm.sym.Convolution(data(), name="c", **kw)
    args, (out,), _ = sym.infer_shape(data=shape)
    x, w, b = (rng.normal(size=s) for s in args)
    ref = dict(stride=kw.get("stride", (1, 1)), pad=kw.get("pad", (0, 0)),
               dilate=kw.get("dilate", (1, 1)), groups=kw.get("num_group", 1))
    gy = rng.normal(size=out)
    exe = sym.simple_bind(ctx, data=shape, type_dict={"data": np.float64})
    for name, value in zip(sym.list_arguments(), (x, w, b)):
        exe.arg_dict[name][...] = ctx.xp.asarray(value)
    y = to_numpy(exe.forward(is_train=True)[0])
    np.testing.assert_allclose(y, np_conv2d(x, w, b, **ref), rtol=1e-10, atol=1e-10)
    exe.backward([ctx.xp.asarray(gy)])
    gx = np.array([np.sum(np_conv2d(_one_hot(x.shape, i), w, None, **ref) * gy)
                   for i in np.ndindex(x.shape)]).reshape(x.shape)
    gw = np.array([np.sum(np_conv2d(x, _one_hot(w.shape, i), None, **ref) * gy)
                   for i in np.ndindex(w.shape)]).reshape(w.shape)
    for name, expected in (("data", gx), ("c_weight", gw), ("c_bias", gy.sum(axis=(0, 2, 3)))):
        np.testing.assert_allclose(to_numpy(exe.grad_dict[name]), expected, rtol=1e-9,
                                   atol=1e-10, err_msg=name)
