"""SequenceMask, where, take: gradients, numpy references, shapes, errors."""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.test_utils import check_symbolic_backward, check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

var = rm.sym.Variable
data = lambda: var("data")   # noqa: E731

LENGTHS = np.array([1.0, 3.0, 2.0])
COND = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, -1.0]])
IDX = np.array([[2.0, 0.0], [2.0, 4.0]])         # repeats and one past the end (clipped)

GRAD_CASES = [
    GradCase("SequenceMask", "axis0",
             lambda: rm.sym.SequenceMask(data(), var("len"), use_sequence_length=True,
                                         value=-1.0, name="sm"),
             {"data": (4, 3, 2), "len": (3,)}, values={"len": LENGTHS}),
    GradCase("SequenceMask", "axis1",
             lambda: rm.sym.SequenceMask(data(), var("len"), use_sequence_length=True,
                                         axis=1, name="sm"),
             {"data": (3, 4), "len": (3,)}, values={"len": LENGTHS}),
    GradCase("SequenceMask", "no-lengths", lambda: rm.sym.SequenceMask(data(), name="sm"),
             {"data": (3, 2)}),
    GradCase("where", "elementwise", lambda: rm.sym.where(var("c"), var("x"), var("y")),
             {"c": (2, 3), "x": (2, 3), "y": (2, 3)}, values={"c": COND}),
    GradCase("where", "row-condition", lambda: rm.sym.where(var("c"), var("x"), var("y")),
             {"c": (2,), "x": (2, 3), "y": (2, 3)}, values={"c": np.array([0.0, 1.0])}),
    GradCase("take", "axis0-clip", lambda: rm.sym.take(var("a"), var("i")),
             {"a": (4, 3), "i": (2, 2)}, values={"i": IDX}),
    GradCase("take", "axis1-wrap", lambda: rm.sym.take(var("a"), var("i"), axis=1,
                                                       mode="wrap"),
             {"a": (2, 3, 2), "i": (4,)}, values={"i": np.array([0.0, -1.0, 4.0, 2.0])}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


# --------------------------------------------------------------------------- SequenceMask

def np_sequence_mask(x, lengths, value, axis):
    y = x.copy()
    for b, n in enumerate(lengths.astype(int)):
        if axis == 0:
            y[n:, b] = value
        else:
            y[b, n:] = value
    return y


@pytest.mark.parametrize("axis", [0, 1])
def test_sequence_mask(ctx, rng, axis):
    x = rng.normal(size=(4, 3, 2)) if axis == 0 else rng.normal(size=(3, 4, 2))
    lengths = np.array([2.0, 4.0, 0.0])
    sym = rm.sym.SequenceMask(data(), var("len"), use_sequence_length=True, value=7.5,
                              axis=axis, name="sm")
    assert sym.list_arguments() == ["data", "len"]
    check_symbolic_forward(sym, [x, lengths], [np_sequence_mask(x, lengths, 7.5, axis)],
                           ctx=ctx)
    gy = rng.normal(size=x.shape)
    expected = np_sequence_mask(gy, lengths, 0.0, axis)
    check_symbolic_backward(sym, [x, lengths], [gy], {"data": expected}, ctx=ctx)


def test_sequence_mask_without_lengths_is_identity(ctx, rng):
    x = rng.normal(size=(3, 2))
    sym = rm.sym.SequenceMask(data(), name="sm")
    assert sym.list_arguments() == ["data"]
    check_symbolic_forward(sym, [x], [x], ctx=ctx)


def test_sequence_mask_shapes_and_errors():
    sym = rm.sym.SequenceMask(data(), use_sequence_length=True, axis=1, name="sm")
    args, _, _ = sym.infer_shape(data=(5, 7, 2))
    assert args == [(5, 7, 2), (5,)]
    with pytest.raises(MXNetError, match=r"SequenceMask 'sm': sequence_length: expected shape "
                                         r"\(5,\), received \(7,\)"):
        sym.infer_shape(data=(5, 7, 2), sm_sequence_length=(7,))
    with pytest.raises(MXNetError, match=r"SequenceMask 'sm': data: expected at least 2"):
        sym.infer_shape(data=(5,))
    with pytest.raises(ValueError, match=r"SequenceMask 'sx': axis must be 0 or 1"):
        rm.sym.SequenceMask(data(), axis=2, name="sx")


# --------------------------------------------------------------------------- where

def test_where(ctx, rng):
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    sym = rm.sym.where(var("c"), var("x"), var("y"), name="w")
    assert sym.list_arguments() == ["c", "x", "y"]
    check_symbolic_forward(sym, [COND, x, y], [np.where(COND != 0, x, y)], ctx=ctx)
    gy = rng.normal(size=(2, 3))
    check_symbolic_backward(sym, [COND, x, y], [gy],
                            {"c": np.zeros((2, 3)), "x": np.where(COND != 0, gy, 0),
                             "y": np.where(COND != 0, 0, gy)}, ctx=ctx)


def test_where_row_condition(ctx, rng):
    x, y = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    c = np.array([1.0, 0.0, 1.0])
    sym = rm.sym.where(var("c"), var("x"), var("y"))
    check_symbolic_forward(sym, [c, x, y], [np.where(c[:, None] != 0, x, y)], ctx=ctx)


def test_where_shapes_types_errors():
    sym = rm.sym.where(var("c"), var("x"), var("y"), name="we")
    args, outs, _ = sym.infer_shape(x=(2, 3))
    assert args == [(2, 3)] * 3 and outs == [(2, 3)]
    arg_t, _, _ = sym.infer_type(c=np.int32, x=np.float64)
    assert arg_t == [np.int32, np.float64, np.float64]
    with pytest.raises(MXNetError, match=r"where 'we': y: expected shape \(2, 3\), received "
                                         r"\(3, 2\)"):
        sym.infer_shape(x=(2, 3), y=(3, 2))
    with pytest.raises(MXNetError, match=r"where 'we': condition .*expected shape \(2, 3\), "
                                         r"received \(3,\)"):
        sym.infer_shape(c=(3,), x=(2, 3))


# --------------------------------------------------------------------------- take

@pytest.mark.parametrize("axis, mode", [(0, "clip"), (1, "wrap"), (-1, "clip"), (0, "raise")])
def test_take(ctx, rng, axis, mode):
    a = rng.normal(size=(3, 4, 2))
    n = a.shape[axis]
    idx = np.array([[0.0, n - 1.0], [1.0, 0.0]]) if mode == "raise" else \
        np.array([[-1.0, n + 1.0], [1.7, 0.0]])
    sym = rm.sym.take(var("a"), var("i"), axis=axis, mode=mode)
    np_mode = "clip" if mode == "raise" else mode
    expected = np.take(a, idx.astype(int), axis=axis, mode=np_mode)
    check_symbolic_forward(sym, [a, idx], [expected], ctx=ctx)
    gy = rng.normal(size=expected.shape)
    ga = np.zeros_like(a)
    moved_ga = np.moveaxis(ga, axis, 0)
    moved_gy = np.moveaxis(gy.reshape(a.shape[:axis % 3] + (-1,) + a.shape[axis % 3 + 1:]),
                           axis, 0)
    for k, j in enumerate(np.take(np.arange(n), idx.astype(int).reshape(-1), mode=np_mode)):
        moved_ga[j] += moved_gy[k]
    check_symbolic_backward(sym, [a, idx], [gy], {"a": ga}, ctx=ctx, rtol=1e-5, atol=1e-6)


def test_take_raise_mode_rejects_out_of_range(ctx):
    sym = rm.sym.take(var("a"), var("i"), mode="raise", name="tk")
    exe = sym.simple_bind(ctx, a=(3, 2), i=(2,))
    with pytest.raises(MXNetError, match=r"take 'tk': index 3 is out of range for axis 0 "
                                         r"of length 3 \(mode='raise'\)"):
        exe.forward(i=np.array([0.0, 3.0]))


def test_take_shapes_and_errors():
    sym = rm.sym.take(var("a"), var("i"), axis=1, name="tk")
    assert sym.infer_shape(a=(3, 4, 5), i=(2, 6))[1] == [(3, 2, 6, 5)]
    with pytest.raises(MXNetError, match=r"take 'tk': axis 1 is out of range for data with "
                                         r"1 dimensions"):
        sym.infer_shape(a=(3,), i=(2,))
    with pytest.raises(ValueError, match=r"take 'tm'.*mode"):
        rm.sym.take(var("a"), var("i"), mode="nearest", name="tm")
