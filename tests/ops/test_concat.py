"""Concat, SliceChannel (split), slice_axis: gradients, numpy references, shapes, errors."""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.test_utils import check_symbolic_backward, check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

var = rm.sym.Variable
data = lambda: var("data")   # noqa: E731

GRAD_CASES = [
    GradCase("Concat", "dim1-three-inputs",
             lambda: rm.sym.Concat(var("a"), var("b"), var("c"), name="cat"),
             {"a": (2, 1, 3), "b": (2, 3, 3), "c": (2, 2, 3)}),
    GradCase("Concat", "dim-last-negative",
             lambda: rm.sym.concat(var("a"), var("b"), dim=-1, name="cat"),
             {"a": (2, 3), "b": (2, 2)}),
    GradCase("SliceChannel", "axis1",
             lambda: rm.sym.SliceChannel(data(), num_outputs=3, name="sp"),
             {"data": (2, 6, 2)}),
    GradCase("SliceChannel", "squeeze-axis0",
             lambda: rm.sym.split(data(), num_outputs=2, axis=0, squeeze_axis=True,
                                  name="sp"), {"data": (2, 3)}),
    GradCase("SliceChannel", "one-output-used",
             lambda: rm.sym.SliceChannel(data(), num_outputs=2, axis=-1, name="sp")[1],
             {"data": (3, 4)}),
    GradCase("slice_axis", "negative-begin-none-end",
             lambda: rm.sym.slice_axis(data(), axis=1, begin=-3, end=None, name="sl"),
             {"data": (2, 5)}),
    GradCase("slice_axis", "axis0",
             lambda: rm.sym.slice_axis(data(), axis=0, begin=1, end=3, name="sl"),
             {"data": (4, 2)}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


# --------------------------------------------------------------------------- Concat

def test_concat_names_forward_backward(ctx, rng):
    a, b = rng.normal(size=(2, 2, 3)), rng.normal(size=(2, 4, 3))
    sym = rm.sym.Concat(var("a"), var("b"), dim=1, name="cat")
    assert sym.list_arguments() == ["a", "b"]
    assert sym.attr_dict()["cat"]["num_args"] == "2"
    check_symbolic_forward(sym, [a, b], [np.concatenate([a, b], axis=1)], ctx=ctx)
    gy = rng.normal(size=(2, 6, 3))
    check_symbolic_backward(sym, [a, b], [gy], [gy[:, :2], gy[:, 2:]], ctx=ctx)


def test_concat_auto_created_inputs_are_arg_i():
    sym = rm.sym.Concat(var("x"), num_args=2, name="cat")
    assert sym.list_arguments() == ["x", "cat_arg1"]


def test_concat_shape_inference_both_ways():
    sym = rm.sym.Concat(var("a"), var("b"), dim=0, name="cat")
    args, outs, _ = sym.infer_shape(a=(2, 3), b=(4, 3))
    assert outs == [(6, 3)]
    # an unknown input is completed from the others and a known output
    total = sym + var("o")
    args, _, _ = total.infer_shape_partial(a=(2, 3), o=(7, 3))
    assert args[:2] == [(2, 3), (5, 3)]


def test_concat_mismatch_outside_dim():
    sym = rm.sym.Concat(var("a"), var("b"), dim=1, name="cc")
    with pytest.raises(MXNetError, match=r"Concat 'cc': arg1 has shape \(3, 2\), which "
                                         r"disagrees with the other inputs.*outside dim 1"):
        sym.infer_shape(a=(2, 2), b=(3, 2))


def test_concat_rank_mismatch_and_bad_dim():
    sym = rm.sym.Concat(var("a"), var("b"), name="cc")
    with pytest.raises(MXNetError, match=r"Concat 'cc': arg1 has shape \(2, 2, 1\) but arg0 "
                                         r"has shape \(2, 2\)"):
        sym.infer_shape(a=(2, 2), b=(2, 2, 1))
    sym = rm.sym.Concat(var("a"), var("b"), dim=2, name="cd")
    with pytest.raises(MXNetError, match=r"Concat 'cd': dim 2 is out of range for inputs "
                                         r"with 2 dimensions"):
        sym.infer_shape(a=(2, 2), b=(2, 2))
    with pytest.raises(ValueError, match=r"Concat 'ce': num_args must be >= 1"):
        rm.sym.Concat(num_args=0, name="ce")


# --------------------------------------------------------------------------- SliceChannel

def test_slicechannel_outputs(ctx, rng):
    x = rng.normal(size=(2, 6, 3))
    sym = rm.sym.SliceChannel(data(), num_outputs=3, name="sp")
    assert sym.list_outputs() == ["sp_output0", "sp_output1", "sp_output2"]
    check_symbolic_forward(sym, [x], np.split(x, 3, axis=1), ctx=ctx)
    gys = [rng.normal(size=(2, 2, 3)) for _ in range(3)]
    check_symbolic_backward(sym, [x], gys, [np.concatenate(gys, axis=1)], ctx=ctx)


def test_split_squeeze_axis(ctx, rng):
    x = rng.normal(size=(3, 2, 4))
    sym = rm.sym.split(data(), num_outputs=3, axis=0, squeeze_axis=True, name="sp")
    assert sym.infer_shape(data=x.shape)[1] == [(2, 4)] * 3
    check_symbolic_forward(sym, [x], [x[0], x[1], x[2]], ctx=ctx)


def test_unused_output_gets_no_gradient(ctx, rng):
    sym = rm.sym.SliceChannel(data(), num_outputs=2, axis=1, name="sp")[0]
    x = rng.normal(size=(2, 4)).astype(np.float32)
    exe = sym.simple_bind(ctx, data=x.shape)
    exe.forward(is_train=True, data=x)
    exe.backward([ctx.xp.ones((2, 2), dtype=np.float32)])
    np.testing.assert_array_equal(to_numpy(exe.grad_dict["data"]),
                                  [[1, 1, 0, 0], [1, 1, 0, 0]])


def test_slicechannel_data_from_outputs():
    sym = rm.sym.SliceChannel(data(), num_outputs=2, axis=1, name="sp")
    total = sym[0] + var("o")
    args, _, _ = total.infer_shape_partial(o=(3, 4))
    assert args[0] == (3, 8)


@pytest.mark.parametrize("kw, shape, match", [
    (dict(num_outputs=4), (2, 6), r"data has 6 along axis 1 \(shape \(2, 6\)\), not divisible "
                                  r"by num_outputs 4"),
    (dict(num_outputs=2, squeeze_axis=True), (2, 4), r"squeeze_axis needs pieces of length 1"),
    (dict(num_outputs=2, axis=2), (2, 4), r"axis 2 is out of range"),
])
def test_slicechannel_errors(kw, shape, match):
    sym = rm.sym.SliceChannel(data(), name="se", **kw)
    with pytest.raises(MXNetError, match=r"SliceChannel 'se': " + match):
        sym.infer_shape(data=shape)


# --------------------------------------------------------------------------- slice_axis

@pytest.mark.parametrize("axis, begin, end, ref", [
    (1, 1, 3, lambda x: x[:, 1:3]),
    (1, -2, None, lambda x: x[:, -2:]),
    (-1, 0, -1, lambda x: x[..., :-1]),
    (0, 1, None, lambda x: x[1:]),
])
def test_slice_axis(ctx, rng, axis, begin, end, ref):
    x = rng.normal(size=(3, 4, 2))
    sym = rm.sym.slice_axis(data(), axis=axis, begin=begin, end=end)
    check_symbolic_forward(sym, [x], [ref(x)], ctx=ctx)
    gy = rng.normal(size=ref(x).shape)
    expected = np.zeros_like(x)
    ref(expected)[...] = gy
    check_symbolic_backward(sym, [x], [gy], [expected], ctx=ctx)


@pytest.mark.parametrize("kw, match", [
    (dict(axis=1, begin=3, end=2), r"begin=3, end=2 select an empty or out-of-range slice"),
    (dict(axis=1, begin=0, end=9), r"begin=0, end=9 select"),
    (dict(axis=2, begin=0, end=1), r"axis 2 is out of range"),
])
def test_slice_axis_errors(kw, match):
    with pytest.raises(MXNetError, match=r"slice_axis 'sa': " + match):
        rm.sym.slice_axis(data(), name="sa", **kw).infer_shape(data=(3, 4))


def test_slice_axis_requires_end():
    with pytest.raises(TypeError, match=r"slice_axis 'sr': required attribute 'end'"):
        rm.sym.slice_axis(data(), axis=0, begin=0, name="sr")
