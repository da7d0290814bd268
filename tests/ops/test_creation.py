"""Cast, _zeros, _ones, zeros_like, ones_like."""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.test_utils import assert_almost_equal, check_symbolic_backward, check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731

def _times_itself(fn):
    x = data()
    return fn(x) * x      # d/dx = 1 only if fn passes no gradient


GRAD_CASES = [
    GradCase("Cast", "float64", lambda: rm.sym.Cast(data(), dtype="float64"), {"data": (2, 3)}),
    # Through float32 and back: finite differences see float32 rounding.
    GradCase("Cast", "via-float32",
             lambda: rm.sym.Cast(rm.sym.Cast(data(), dtype="float32"), dtype="float64"),
             {"data": (2, 3)}, eps=1e-2, rtol=1e-3, atol=1e-4),
    # No inputs: the case checks that backward runs through the node beside a live path.
    GradCase("_zeros", "plus-data",
             lambda: rm.sym._zeros(shape=(2, 3), dtype="float64") + data(), {"data": (2, 3)}),
    GradCase("_ones", "times-data",
             lambda: rm.sym.broadcast_mul(rm.sym._ones(shape=(1, 3), dtype="float64"), data()),
             {"data": (2, 3)}),
    GradCase("zeros_like", "alone", lambda: rm.sym.zeros_like(data()), {"data": (2, 3)}),
    GradCase("ones_like", "times-data", lambda: _times_itself(rm.sym.ones_like), {"data": (2, 3)}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


def test_cast_forward_backward_types(ctx):
    sym = rm.sym.Cast(data(), dtype="int32")
    assert sym.infer_type(data=np.float32) == ([np.float32], [np.int32], [])
    x = np.array([[1.7, -2.2, 3.0]], dtype=np.float32)
    exe = sym.simple_bind(ctx, data=(1, 3))
    out = exe.forward(is_train=True, data=x)[0]
    assert out.dtype == np.int32
    assert np.array_equal(to_numpy(out), x.astype(np.int32))
    exe.backward([ctx.xp.asarray(np.array([[2, 3, 4]], dtype=np.int32))])
    grad = exe.grad_dict["data"]
    assert grad.dtype == np.float32
    assert_almost_equal(grad, [[2.0, 3.0, 4.0]])


def test_cast_alias_and_required_dtype():
    assert rm.sym.cast(data(), dtype="float16")._heads[0][0].op.op_name == "Cast"
    with pytest.raises(TypeError, match="Cast 'c'.*dtype"):
        rm.sym.Cast(data(), name="c")


def test_cast_rejects_an_unknown_dtype():
    with pytest.raises(TypeError, match="Cast 'c'.*dtype"):
        rm.sym.Cast(data(), dtype="complex_float", name="c")


@pytest.mark.parametrize("fn, value", [(rm.sym._zeros, 0.0), (rm.sym._ones, 1.0),
                                       (rm.sym.zeros, 0.0), (rm.sym.ones, 1.0)])
def test_filled_forward_shape_and_type(fn, value, ctx):
    sym = fn(shape=(2, 3), dtype="float16")
    assert sym.list_arguments() == []
    assert sym.infer_shape() == ([], [(2, 3)], [])
    assert sym.infer_type() == ([], [np.float16], [])
    exe = sym.simple_bind(ctx)
    out = exe.forward()[0]
    assert out.dtype == np.float16 and np.all(to_numpy(out) == value)
    exe.backward([ctx.xp.ones((2, 3), dtype=np.float16)])     # nothing to write


def test_filled_default_dtype_is_float32():
    assert rm.sym._zeros(shape=(2,)).infer_type() == ([], [np.float32], [])


def test_zeros_with_unknown_batch_learns_it_from_its_consumer(ctx):
    state = rm.sym._zeros(shape=(0, 4), name="begin")
    sym = state + data()
    arg_shapes, out_shapes, _ = sym.infer_shape(data=(3, 4))
    assert out_shapes == [(3, 4)]
    exe = sym.simple_bind(ctx, data=(3, 4))
    assert_almost_equal(exe.forward(data=np.full((3, 4), 2.0))[0], np.full((3, 4), 2.0))


def test_zeros_shape_conflict():
    sym = rm.sym._zeros(shape=(2, 4), name="z") + data()
    with pytest.raises(MXNetError, match=r"\(2, 4\).*\(3, 4\)"):
        sym.infer_shape(data=(3, 4))


def test_zeros_rejects_negative_dims():
    with pytest.raises(ValueError, match="_zeros 'z'.*negative"):
        rm.sym._zeros(shape=(2, -1), name="z")


@pytest.mark.parametrize("fn, value", [(rm.sym.zeros_like, 0.0), (rm.sym.ones_like, 1.0)])
def test_like_ops_forward_and_zero_gradient(fn, value, ctx):
    x = np.array([[1.5, -2.0], [3.0, 4.0]])
    sym = fn(data())
    check_symbolic_forward(sym, [x], [np.full(x.shape, value)], ctx=ctx)
    check_symbolic_backward(sym, [x], [np.ones(x.shape)], [np.zeros(x.shape)], ctx=ctx)
    assert sym.infer_type(data=np.float64)[1] == [np.float64]
