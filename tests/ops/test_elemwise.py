"""Elementwise, broadcast, scalar and unary math operators."""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.test_utils import check_symbolic_backward, check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

a = lambda: rm.sym.Variable("a")   # noqa: E731
b = lambda: rm.sym.Variable("b")   # noqa: E731
data = lambda: rm.sym.Variable("data")   # noqa: E731

BINARY = ("elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div", "_power")
BROADCAST = ("broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div")
SCALAR = ("_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar",
          "_rdiv_scalar", "_power_scalar", "_rpower_scalar")
UNARY = ("negative", "abs", "exp", "log", "sqrt", "square")
POSITIVE = {"elemwise_div", "_power", "broadcast_div", "_rdiv_scalar", "_power_scalar",
            "log", "sqrt"}


def _binary(op):
    return lambda: getattr(rm.sym, op)(a(), b())


def _scalar(op, s):
    return lambda: getattr(rm.sym, op)(data(), scalar=s)


def _range(op):
    return (0.5, 2.0) if op in POSITIVE else (-1.0, 1.0)


GRAD_CASES = [
    *[GradCase(op, "equal-shapes", _binary(op), {"a": (2, 3), "b": (2, 3)},
               low=_range(op)[0], high=_range(op)[1]) for op in BINARY],
    *[GradCase(op, "broadcast-rows-and-leading", _binary(op), {"a": (2, 3, 4), "b": (3, 1)},
               low=_range(op)[0], high=_range(op)[1]) for op in BROADCAST],
    *[GradCase(op, "broadcast-both-sides", _binary(op), {"a": (2, 1, 4), "b": (1, 3, 1)},
               low=_range(op)[0], high=_range(op)[1]) for op in BROADCAST],
    *[GradCase(op, "same-shape", _binary(op), {"a": (2, 3), "b": (2, 3)},
               low=_range(op)[0], high=_range(op)[1]) for op in BROADCAST],
    *[GradCase(op, "scalar", _scalar(op, 1.5 if op != "_rpower_scalar" else 2.5),
               {"data": (2, 3)}, low=_range(op)[0], high=_range(op)[1]) for op in SCALAR],
    GradCase("_power_scalar", "cube-of-negatives", _scalar("_power_scalar", 3),
             {"data": (2, 3)}),
    *[GradCase(op, "unary", lambda op=op: getattr(rm.sym, op)(data()), {"data": (2, 3)},
               low=_range(op)[0], high=_range(op)[1]) for op in UNARY],
    GradCase("clip", "inside-and-outside", lambda: rm.sym.clip(data(), a_min=-0.4, a_max=0.3),
             {"data": (3, 4)}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


# --------------------------------------------------------------------------- references

RNG = np.random.default_rng(0)
A = RNG.uniform(0.5, 2.0, size=(2, 3))
B = RNG.uniform(0.5, 2.0, size=(2, 3))
NP_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}


@pytest.mark.parametrize("name", sorted(NP_BINARY))
def test_elemwise_forward_and_python_operators(name, ctx):
    expected = NP_BINARY[name](A, B)
    check_symbolic_forward(getattr(rm.sym, f"elemwise_{name}")(a(), b()), [A, B], [expected],
                           ctx=ctx, dtype=np.float64, rtol=1e-12)
    py = {"add": a() + b(), "sub": a() - b(), "mul": a() * b(), "div": a() / b()}[name]
    check_symbolic_forward(py, {"a": A, "b": B}, [expected], ctx=ctx, dtype=np.float64,
                           rtol=1e-12)


def test_elemwise_backward(ctx):
    gy = RNG.normal(size=A.shape)
    check_symbolic_backward(rm.sym.elemwise_div(a(), b()), [A, B], [gy],
                            [gy / B, -gy * A / B ** 2], ctx=ctx, dtype=np.float64, rtol=1e-12)
    check_symbolic_backward(rm.sym._power(a(), b()), [A, B], [gy],
                            [gy * B * A ** (B - 1), gy * A ** B * np.log(A)], ctx=ctx,
                            dtype=np.float64, rtol=1e-12)


@pytest.mark.parametrize("op, fn", [
    ("_plus_scalar", lambda x, s: x + s), ("_minus_scalar", lambda x, s: x - s),
    ("_rminus_scalar", lambda x, s: s - x), ("_mul_scalar", lambda x, s: x * s),
    ("_div_scalar", lambda x, s: x / s), ("_rdiv_scalar", lambda x, s: s / x),
    ("_power_scalar", lambda x, s: x ** s), ("_rpower_scalar", lambda x, s: s ** x),
])
def test_scalar_forward(op, fn, ctx):
    check_symbolic_forward(getattr(rm.sym, op)(data(), scalar=3.0), [A], [fn(A, 3.0)], ctx=ctx,
                           dtype=np.float64, rtol=1e-12)


def test_scalar_python_operators(ctx):
    x = data()
    cases = [(x + 2, A + 2), (2 + x, A + 2), (x - 2, A - 2), (2 - x, 2 - A), (x * 2, A * 2),
             (2 * x, A * 2), (x / 2, A / 2), (2 / x, 2 / A), (x ** 2, A ** 2), (-x, -A)]
    for sym, expected in cases:
        check_symbolic_forward(sym, [A], [expected], ctx=ctx, dtype=np.float64, rtol=1e-12)


def test_scalar_default_is_one():
    assert rm.sym._mul_scalar(data())._heads[0][0].op.scalar == 1.0


@pytest.mark.parametrize("op, fn, dfdx", [
    ("negative", np.negative, lambda x: -np.ones_like(x)),
    ("abs", np.abs, np.sign),
    ("exp", np.exp, np.exp),
    ("log", np.log, lambda x: 1 / x),
    ("sqrt", np.sqrt, lambda x: 0.5 / np.sqrt(x)),
    ("square", np.square, lambda x: 2 * x),
])
def test_unary_forward_backward(op, fn, dfdx, ctx):
    x = A if op in POSITIVE else A - 1.2
    gy = RNG.normal(size=x.shape)
    sym = getattr(rm.sym, op)(data())
    check_symbolic_forward(sym, [x], [fn(x)], ctx=ctx, dtype=np.float64, rtol=1e-12)
    check_symbolic_backward(sym, [x], [gy], [gy * dfdx(x)], ctx=ctx, dtype=np.float64,
                            rtol=1e-12)


def test_clip_forward_backward_with_inclusive_bounds(ctx):
    x = np.array([[-2.0, -0.5, 0.0], [0.5, 1.0, 3.0]])
    sym = rm.sym.clip(data(), a_min=-0.5, a_max=1.0)
    check_symbolic_forward(sym, [x], [np.clip(x, -0.5, 1.0)], ctx=ctx, dtype=np.float64)
    gy = np.arange(1.0, 7.0).reshape(2, 3)
    check_symbolic_backward(sym, [x], [gy], [gy * [[0, 1, 1], [1, 1, 0]]], ctx=ctx,
                            dtype=np.float64)


def test_broadcast_forward_and_reduced_gradients(ctx):
    x = RNG.normal(size=(2, 3, 4))
    y = RNG.uniform(0.5, 2.0, size=(3, 1))
    gy = RNG.normal(size=(2, 3, 4))
    sym = rm.sym.broadcast_mul(a(), b())
    check_symbolic_forward(sym, [x, y], [x * y], ctx=ctx, dtype=np.float64, rtol=1e-12)
    check_symbolic_backward(sym, [x, y], [gy],
                            [gy * y, (gy * x).sum(axis=(0, 2)).reshape(3, 1)],
                            ctx=ctx, dtype=np.float64, rtol=1e-12)
    sym = rm.sym.broadcast_sub(b(), a())
    check_symbolic_backward(sym, [y, x], [gy], [gy.sum(axis=(0, 2)).reshape(3, 1), -gy],
                            ctx=ctx, dtype=np.float64, rtol=1e-12)


def test_broadcast_aliases():
    assert rm.sym.broadcast_plus(a(), b())._heads[0][0].op.op_name == "broadcast_add"
    assert rm.sym.broadcast_minus(a(), b())._heads[0][0].op.op_name == "broadcast_sub"


# --------------------------------------------------------------------------- names, shapes

@pytest.mark.parametrize("alias, canonical", [
    ("_Plus", "elemwise_add"), ("_plus", "elemwise_add"), ("_add", "elemwise_add"),
    ("_Minus", "elemwise_sub"), ("_minus", "elemwise_sub"), ("_sub", "elemwise_sub"),
    ("_Mul", "elemwise_mul"), ("_mul", "elemwise_mul"), ("_Div", "elemwise_div"),
    ("_div", "elemwise_div"), ("_Power", "_power"), ("_PlusScalar", "_plus_scalar"),
    ("_RMinusScalar", "_rminus_scalar"), ("_PowerScalar", "_power_scalar"),
])
def test_aliases(alias, canonical):
    inputs = (a(),) if "Scalar" in alias else (a(), b())
    sym = getattr(rm.sym, alias)(*inputs)
    assert sym._heads[0][0].op.op_name == canonical


@pytest.mark.parametrize("op, hint", [
    ("elemwise_add", "_plus"), ("elemwise_sub", "_minus"), ("elemwise_mul", "_mul"),
    ("elemwise_div", "_div"), ("_plus_scalar", "_plusscalar"), ("_minus_scalar", "_minusscalar"),
    ("_rminus_scalar", "_rminusscalar"), ("_mul_scalar", "_mulscalar"),
    ("_div_scalar", "_divscalar"), ("_rdiv_scalar", "_rdivscalar"),
    ("_power_scalar", "_powerscalar"), ("_rpower_scalar", "_rpower_scalar"),
])
def test_mxnet_name_hints(op, hint):
    from raymod.ops import get_op_class
    assert get_op_class(op).hint == hint


def test_python_operators_map_to_mxnet_ops_and_auto_names():
    with rm.name.NameManager():
        x, y = a(), b()
        cases = [(x + y, "elemwise_add", "_plus0"), (x - y, "elemwise_sub", "_minus0"),
                 (x * y, "elemwise_mul", "_mul0"), (x / y, "elemwise_div", "_div0"),
                 (x + 2, "_plus_scalar", "_plusscalar0"), (x - 2, "_minus_scalar", "_minusscalar0"),
                 (2 - x, "_rminus_scalar", "_rminusscalar0"), (x * 2, "_mul_scalar", "_mulscalar0"),
                 (x / 2, "_div_scalar", "_divscalar0"), (2 / x, "_rdiv_scalar", "_rdivscalar0"),
                 (x ** 2, "_power_scalar", "_powerscalar0"),
                 (2 ** x, "_rpower_scalar", "_rpower_scalar0"),    # MXNet calls it by its name
                 (x ** y, "_power", "_power0")]
        for sym, op_name, node_name in cases:
            node = sym._heads[0][0]
            assert (node.op.op_name, node.name) == (op_name, node_name)
        assert (x * 2).list_attr() == {"scalar": "2"}


def test_elemwise_arguments_are_lhs_rhs():
    assert rm.sym.elemwise_add(name="p").list_arguments() == ["p_lhs", "p_rhs"]


def test_elemwise_shapes_unify_in_every_direction():
    sym = rm.sym.elemwise_add(a(), b())
    assert sym.infer_shape(a=(2, 3))[0] == [(2, 3), (2, 3)]
    assert sym.infer_shape(b=(4, 5)) == ([(4, 5), (4, 5)], [(4, 5)], [])
    assert sym.infer_shape_partial(a=(0, 3), b=(2, 0))[0] == [(2, 3), (2, 3)]


@pytest.mark.parametrize("lhs, rhs, out", [
    ((2, 3, 4), (3, 1), (2, 3, 4)), ((2, 1, 4), (1, 3, 1), (2, 3, 4)),
    ((5,), (2, 5), (2, 5)), ((2, 3), (2, 3), (2, 3)),
])
def test_broadcast_shape_inference(lhs, rhs, out):
    assert rm.sym.broadcast_add(a(), b()).infer_shape(a=lhs, b=rhs)[1] == [out]


def test_broadcast_does_not_infer_an_operand():
    assert rm.sym.broadcast_add(a(), b()).infer_shape_partial(a=(2, 3))[0] == [(2, 3), ()]


# --------------------------------------------------------------------------- errors

def test_elemwise_rejects_different_shapes():
    sym = rm.sym.elemwise_add(a(), b(), name="p")
    with pytest.raises(MXNetError, match=r"elemwise_add 'p'.*\(2, 3\).*\(3, 2\).*broadcast"):
        sym.infer_shape(a=(2, 3), b=(3, 2))


def test_elemwise_rejects_broadcastable_shapes_too():
    with pytest.raises(MXNetError, match="elemwise_mul 'm'"):
        rm.sym.elemwise_mul(a(), b(), name="m").infer_shape(a=(2, 3), b=(1, 3))


def test_broadcast_rejects_incompatible_shapes():
    sym = rm.sym.broadcast_add(a(), b(), name="bc")
    with pytest.raises(MXNetError, match=r"broadcast_add 'bc'.*\(2, 3\) \(4, 3\)"):
        sym.infer_shape(a=(2, 3), b=(4, 3))


def test_clip_needs_both_bounds():
    with pytest.raises(TypeError, match="clip 'c'.*a_max"):
        rm.sym.clip(data(), a_min=0.0, name="c")


def test_scalar_must_be_a_number():
    with pytest.raises(ValueError, match="_plus_scalar .s.*scalar"):
        rm.sym._plus_scalar(data(), scalar="abc", name="s")
