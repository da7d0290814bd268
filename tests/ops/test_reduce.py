"""sum, mean, max, min over axes (axis, keepdims, exclude)."""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.test_utils import check_symbolic_backward, check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731


def _red(op, **kw):
    return lambda: getattr(rm.sym, op)(data(), **kw)


GRAD_CASES = [
    *[GradCase(op, "all", _red(op), {"data": (2, 3, 4)}) for op in ("sum", "mean", "max", "min")],
    *[GradCase(op, "axis1-keepdims", _red(op, axis=1, keepdims=True), {"data": (2, 3, 4)})
      for op in ("sum", "mean", "max", "min")],
    *[GradCase(op, "axes-negative", _red(op, axis=(0, -1)), {"data": (2, 3, 4)})
      for op in ("sum", "mean", "max", "min")],
    *[GradCase(op, "exclude", _red(op, axis=1, exclude=True), {"data": (2, 3, 4)})
      for op in ("sum", "mean", "max", "min")],
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


X = np.random.default_rng(0).normal(size=(2, 3, 4))
NP = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}


@pytest.mark.parametrize("op", sorted(NP))
@pytest.mark.parametrize("kwargs, np_axis, keepdims", [
    ({}, None, False),
    ({"axis": 1}, 1, False),
    ({"axis": (0, 2), "keepdims": True}, (0, 2), True),
    ({"axis": -1}, 2, False),
    ({"axis": 1, "exclude": True}, (0, 2), False),
    ({"axis": (0, 1), "exclude": True, "keepdims": True}, 2, True),
    ({"axis": ()}, None, False),
])
def test_forward_matches_numpy(op, kwargs, np_axis, keepdims, ctx):
    expected = NP[op](X, axis=np_axis, keepdims=keepdims)
    expected = np.asarray(expected).reshape(expected.shape or (1,))   # full reduction: (1,)
    sym = getattr(rm.sym, op)(data(), **kwargs)
    check_symbolic_forward(sym, [X], [expected], ctx=ctx, dtype=np.float64, rtol=1e-12)


@pytest.mark.parametrize("kwargs, shape", [
    ({}, (1,)), ({"keepdims": True}, (1, 1, 1)), ({"axis": 1}, (2, 4)),
    ({"axis": (0, 1, 2)}, (1,)), ({"axis": 0, "exclude": True}, (2,)),
    ({"axis": (0, 2), "exclude": True, "keepdims": True}, (2, 1, 4)),
    ({"axis": "(1, 2)"}, (2,)), ({"axis": "-2"}, (2, 4)),
])
def test_shape_inference(kwargs, shape):
    assert rm.sym.sum(data(), **kwargs).infer_shape(data=(2, 3, 4))[1] == [shape]


def test_mean_and_sum_gradients(ctx):
    gy = np.arange(8.0).reshape(2, 4)
    check_symbolic_backward(rm.sym.sum(data(), axis=1), [X], [gy],
                            [np.broadcast_to(gy[:, None, :], X.shape)], ctx=ctx,
                            dtype=np.float64)
    check_symbolic_backward(rm.sym.mean(data(), axis=1), [X], [gy],
                            [np.broadcast_to(gy[:, None, :] / 3, X.shape)], ctx=ctx,
                            dtype=np.float64, rtol=1e-12)


def test_max_gradient_goes_to_every_tied_position(ctx):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    check_symbolic_backward(rm.sym.max(data(), axis=1), [x], [np.array([5.0, 7.0])],
                            [[[0, 5, 5], [7, 0, 0]]], ctx=ctx, dtype=np.float64)
    check_symbolic_backward(rm.sym.min(data()), [x], [np.array([2.0])],
                            [[[0, 0, 0], [0, 0, 2]]], ctx=ctx, dtype=np.float64)


@pytest.mark.parametrize("alias, canonical", [("sum_axis", "sum"), ("max_axis", "max"),
                                              ("min_axis", "min")])
def test_aliases(alias, canonical):
    assert getattr(rm.sym, alias)(data())._heads[0][0].op.op_name == canonical


def test_axis_out_of_range():
    with pytest.raises(MXNetError, match="sum 's'.*axis 3"):
        rm.sym.sum(data(), axis=3, name="s").infer_shape(data=(2, 3, 4))
    with pytest.raises(MXNetError, match="max 'm'.*axis -4"):
        rm.sym.max(data(), axis=-4, name="m").infer_shape(data=(2, 3, 4))


def test_duplicate_axes():
    with pytest.raises(MXNetError, match="mean 'm'.*duplicates"):
        rm.sym.mean(data(), axis=(1, -2), name="m").infer_shape(data=(2, 3, 4))


def test_bad_axis_value():
    with pytest.raises(TypeError, match="sum 's'.*axis"):
        rm.sym.sum(data(), axis=1.5, name="s")
