"""dot (1-D, 2-D, N-D with MXNet's flattening, transposes) and batch_dot."""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.test_utils import check_symbolic_backward, check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

a = lambda: rm.sym.Variable("a")   # noqa: E731
b = lambda: rm.sym.Variable("b")   # noqa: E731


def _dot(op="dot", **kw):
    return lambda: getattr(rm.sym, op)(a(), b(), **kw)


GRAD_CASES = [
    GradCase("dot", "2d", _dot(), {"a": (2, 3), "b": (3, 4)}),
    GradCase("dot", "transpose_a", _dot(transpose_a=True), {"a": (3, 2), "b": (3, 4)}),
    GradCase("dot", "transpose_b", _dot(transpose_b=True), {"a": (2, 3), "b": (4, 3)}),
    GradCase("dot", "transpose_both", _dot(transpose_a=True, transpose_b=True),
             {"a": (3, 2), "b": (4, 3)}),
    GradCase("dot", "vector-vector", _dot(), {"a": (4,), "b": (4,)}),
    GradCase("dot", "vector-matrix", _dot(), {"a": (3,), "b": (3, 2)}),
    GradCase("dot", "matrix-vector", _dot(), {"a": (2, 3), "b": (3,)}),
    GradCase("dot", "nd", _dot(), {"a": (2, 2, 3), "b": (3, 2, 2)}),
    GradCase("dot", "nd-transposed", _dot(transpose_a=True, transpose_b=True),
             {"a": (3, 2, 2), "b": (2, 1, 3)}),
    GradCase("batch_dot", "plain", _dot("batch_dot"), {"a": (2, 3, 4), "b": (2, 4, 2)}),
    GradCase("batch_dot", "transpose_a", _dot("batch_dot", transpose_a=True),
             {"a": (2, 4, 3), "b": (2, 4, 2)}),
    GradCase("batch_dot", "transpose_b", _dot("batch_dot", transpose_b=True),
             {"a": (2, 3, 4), "b": (2, 2, 4)}),
    GradCase("batch_dot", "transpose_both", _dot("batch_dot", transpose_a=True,
                                                 transpose_b=True),
             {"a": (2, 4, 3), "b": (2, 2, 4)}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


RNG = np.random.default_rng(0)


def _np_dot(x, y, ta=False, tb=False):
    """MXNet's dot written with tensordot: contract lhs's last (first if ta) axis
    with rhs's first (last if tb) axis; transposes reverse the flattened blocks."""
    if x.ndim == 1 and y.ndim == 1:
        return np.array([np.dot(x, y)])
    xm = x.reshape(x.shape[0], -1).T if ta else x.reshape(-1, x.shape[-1])
    ym = y.reshape(-1, y.shape[-1]).T if tb else y.reshape(y.shape[0], -1)
    lead = (x.shape[1:] if ta else x.shape[:-1]) if x.ndim > 1 else ()
    trail = (y.shape[:-1] if tb else y.shape[1:]) if y.ndim > 1 else ()
    return (xm @ ym).reshape(lead + trail)


@pytest.mark.parametrize("ashape, bshape, ta, tb, out", [
    ((2, 3), (3, 4), False, False, (2, 4)),
    ((3, 2), (3, 4), True, False, (2, 4)),
    ((2, 3), (4, 3), False, True, (2, 4)),
    ((4,), (4,), False, False, (1,)),
    ((3,), (3, 5), False, False, (5,)),
    ((2, 3), (3,), False, False, (2,)),
    ((2, 5, 3), (3, 4, 2), False, False, (2, 5, 4, 2)),
    ((6, 2, 5), (6, 3), True, False, (2, 5, 3)),
    ((2, 5), (3, 4, 5), False, True, (2, 3, 4)),
])
def test_dot_forward_and_shapes(ashape, bshape, ta, tb, out, ctx):
    x, y = RNG.normal(size=ashape), RNG.normal(size=bshape)
    sym = rm.sym.dot(a(), b(), transpose_a=ta, transpose_b=tb)
    assert sym.infer_shape(a=ashape, b=bshape)[1] == [out]
    expected = _np_dot(x, y, ta, tb)
    assert expected.shape == out
    check_symbolic_forward(sym, [x, y], [expected], ctx=ctx, dtype=np.float64, rtol=1e-12)


def test_dot_backward(ctx):
    x, y, gy = RNG.normal(size=(2, 3)), RNG.normal(size=(4, 3)), RNG.normal(size=(2, 4))
    check_symbolic_backward(rm.sym.dot(a(), b(), transpose_b=True), [x, y], [gy],
                            [gy @ y, gy.T @ x], ctx=ctx, dtype=np.float64, rtol=1e-12)


def test_batch_dot_forward_backward(ctx):
    x, y = RNG.normal(size=(3, 4, 2)), RNG.normal(size=(3, 5, 4))
    sym = rm.sym.batch_dot(a(), b(), transpose_a=True, transpose_b=True)
    assert sym.infer_shape(a=x.shape, b=y.shape)[1] == [(3, 2, 5)]
    expected = np.einsum("bka,bnk->ban", x, y)
    check_symbolic_forward(sym, [x, y], [expected], ctx=ctx, dtype=np.float64, rtol=1e-12)
    gy = RNG.normal(size=(3, 2, 5))
    check_symbolic_backward(sym, [x, y], [gy],
                            [np.einsum("bnk,ban->bka", y, gy), np.einsum("ban,bka->bnk", gy, x)],
                            ctx=ctx, dtype=np.float64, rtol=1e-12)


def test_dot_arguments_are_lhs_rhs():
    assert rm.sym.dot(name="d").list_arguments() == ["d_lhs", "d_rhs"]


@pytest.mark.parametrize("ashape, bshape, kw", [
    ((2, 3), (4, 5), {}), ((3, 2), (4, 5), {"transpose_a": True}),
    ((2, 3), (3, 5), {"transpose_b": True}), ((3,), (4,), {}),
])
def test_dot_shape_errors(ashape, bshape, kw):
    with pytest.raises(MXNetError, match="dot 'd'.*dot shape error"):
        rm.sym.dot(a(), b(), name="d", **kw).infer_shape(a=ashape, b=bshape)


def test_dot_cannot_transpose_vectors():
    with pytest.raises(MXNetError, match="dot 'd'.*transpose vectors"):
        rm.sym.dot(a(), b(), transpose_a=True, name="d").infer_shape(a=(3,), b=(3,))


@pytest.mark.parametrize("ashape, bshape", [((2, 3, 4), (3, 4, 2)), ((2, 3, 4), (2, 3, 2)),
                                            ((3, 4), (4, 2))])
def test_batch_dot_shape_errors(ashape, bshape):
    with pytest.raises(MXNetError, match="batch_dot 'bd'"):
        rm.sym.batch_dot(a(), b(), name="bd").infer_shape(a=ashape, b=bshape)


def test_sparse_forward_stype_is_refused():
    with pytest.raises(ValueError, match="forward_stype"):
        rm.sym.dot(a(), b(), forward_stype="csr")
