"""Flatten, Reshape (every special value, reverse, legacy target_shape), transpose,
expand_dims, SwapAxis: gradients, numpy references, shape inference both ways, errors."""
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.test_utils import check_symbolic_backward, check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731

GRAD_CASES = [
    GradCase("Flatten", "3d", lambda: rm.sym.Flatten(data()), {"data": (2, 3, 2)}),
    GradCase("Reshape", "special-values", lambda: rm.sym.Reshape(data(), shape=(-4, 1, 2, -3)),
             {"data": (2, 3, 4)}),
    GradCase("Reshape", "reverse", lambda: rm.sym.Reshape(data(), shape=(-1, 0), reverse=True),
             {"data": (4, 3, 2)}),
    GradCase("transpose", "axes", lambda: rm.sym.transpose(data(), axes=(1, 2, 0)),
             {"data": (2, 3, 4)}),
    GradCase("transpose", "reverse-default", lambda: rm.sym.transpose(data()),
             {"data": (2, 3, 4)}),
    GradCase("expand_dims", "negative-axis", lambda: rm.sym.expand_dims(data(), axis=-1),
             {"data": (2, 3)}),
    GradCase("SwapAxis", "dims", lambda: rm.sym.SwapAxis(data(), dim1=0, dim2=2),
             {"data": (2, 3, 4)}),
    GradCase("reverse", "two-axes", lambda: rm.sym.reverse(data(), axis=(0, 2)),
             {"data": (2, 3, 4)}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


def _out_shape(sym, shape):
    return sym.infer_shape(data=shape)[1][0]


# --------------------------------------------------------------------------- Flatten

def test_flatten(ctx, rng):
    x = rng.normal(size=(2, 3, 4))
    check_symbolic_forward(rm.sym.flatten(data()), [x], [x.reshape(2, 12)], ctx=ctx)
    assert _out_shape(rm.sym.Flatten(data()), (5,)) == (5, 1)
    gy = rng.normal(size=(2, 12))
    check_symbolic_backward(rm.sym.Flatten(data()), [x], [gy], [gy.reshape(2, 3, 4)], ctx=ctx)


def test_flatten_batch_from_output():
    """A known output shape (here through elemwise_add) gives Flatten's data its batch."""
    sym = rm.sym.Flatten(data(), name="f") + rm.sym.Variable("b")
    args, outs, _ = sym.infer_shape_partial(data=(0, 3, 4), b=(5, 12))
    assert args[0] == (5, 3, 4) and outs[0] == (5, 12)
    _, outs, _ = rm.sym.Flatten(data()).infer_shape_partial(data=(0, 0, 4))
    assert outs[0] == (0, 0)


def test_flatten_rejects_scalars():
    with pytest.raises(MXNetError, match=r"Flatten 'fl': data: expected at least 1 dim"):
        rm.sym.Flatten(data(), name="fl").infer_shape(data=())


# --------------------------------------------------------------------------- Reshape

@pytest.mark.parametrize("src, shape, reverse, expected", [
    # the reference's examples (12.3)
    ((2, 3, 4), (4, 0, 2), False, (4, 3, 2)),
    ((2, 3, 4), (-1,), False, (24,)),
    ((2, 3, 4), (-3, 4), False, (6, 4)),
    ((2, 3, 4), (-4, 1, 2, -2), False, (1, 2, 3, 4)),
    ((10, 5, 4), (-1, 0), False, (40, 5)),
    ((10, 5, 4), (-1, 0), True, (50, 4)),
    # MXNet's operator documentation examples
    ((2, 3, 4), (6, 1, -1), False, (6, 1, 4)),
    ((2, 3, 4), (3, -1, 8), False, (3, 1, 8)),
    ((2, 3, 4), (-1, 3, 2), False, (4, 3, 2)),
    ((2, 3, 4), (2, -2), False, (2, 3, 4)),
    ((2, 3, 4), (-2, 1, 1), False, (2, 3, 4, 1, 1)),
    ((2, 3, 4, 5), (-3, -3), False, (6, 20)),
    ((2, 3, 4), (0, -3), False, (2, 12)),
    ((2, 3, 4), (-3, -2), False, (6, 4)),
    ((2, 3, 4), (-4, 1, 2, -2), False, (1, 2, 3, 4)),
    ((2, 3, 4), (2, -4, -1, 3, -2), False, (2, 1, 3, 4)),
])
def test_reshape_special_values(ctx, rng, src, shape, reverse, expected):
    sym = rm.sym.Reshape(data(), shape=shape, reverse=reverse)
    assert _out_shape(sym, src) == expected
    x = rng.normal(size=src)
    check_symbolic_forward(sym, [x], [x.reshape(expected)], ctx=ctx)


def test_reshape_legacy_target_shape():
    assert _out_shape(rm.sym.Reshape(data(), target_shape=(0, 6)), (2, 3, 4)) == (4, 6)
    assert _out_shape(rm.sym.Reshape(data(), target_shape=(5, 0), keep_highest=True),
                      (2, 3, 4)) == (2, 12)


def test_reshape_fills_unknown_input_dim_from_output():
    sym = rm.sym.Reshape(data(), shape=(6, 4), name="r")
    args, outs, _ = sym.infer_shape_partial(data=(2, 0, 4))
    assert args[0] == (2, 3, 4) and outs[0] == (6, 4)
    # -1 with an unknown input dim stays unknown until the input is known
    args, outs, _ = rm.sym.Reshape(data(), shape=(-1, 4)).infer_shape_partial(data=(0, 3, 4))
    assert outs[0] == (0, 4)


@pytest.mark.parametrize("src, kw, match", [
    ((2, 3, 4), dict(shape=(5, -1)), r"24 elements do not divide"),
    ((2, 3, 4), dict(shape=(5, 5)), r"has 25 elements, the input 24"),
    ((2, 3), dict(shape=(0, 0, 0)), r"0 at position 2 copies input dim 2, but the input "
                                    r"has only 2 dims"),
    ((2, 3), dict(shape=(-3, -3)), r"-3 at position 1 merges input dims 2 and 3"),
    ((2, 3, 4), dict(shape=(-4, 5, -1, -2)), r"split dims 5 x 0 do not make input dim 2"),
    ((2, 3, 4), dict(shape=(-4, -1, -1, -2)), r"split dims cannot both be -1"),
    ((2, 3, 4), dict(shape=(-4, 1)), r"-4 at position 0 must be followed by two values"),
])
def test_reshape_unsatisfiable(src, kw, match):
    sym = rm.sym.Reshape(data(), name="rs", **kw)
    with pytest.raises(MXNetError, match=r"Reshape 'rs': cannot reshape data of shape "
                                         + r"\(" + ", ".join(map(str, src)) + r"\).*" + match):
        sym.infer_shape(data=src)


def test_reshape_bad_attributes():
    with pytest.raises(ValueError, match=r"Reshape 'rb': shape \(-5, 2\): values must be"):
        rm.sym.Reshape(data(), shape=(-5, 2), name="rb")
    with pytest.raises(ValueError, match=r"Reshape 'rb': .*at most one dimension can be -1"):
        rm.sym.Reshape(data(), shape=(-1, -1), name="rb")


# --------------------------------------------------------------------------- axes

def test_transpose(ctx, rng):
    x = rng.normal(size=(2, 3, 4))
    check_symbolic_forward(rm.sym.transpose(data(), axes=(2, 0, 1)), [x],
                           [x.transpose(2, 0, 1)], ctx=ctx)
    check_symbolic_forward(rm.sym.transpose(data()), [x], [x.T], ctx=ctx)
    gy = rng.normal(size=(4, 2, 3))
    check_symbolic_backward(rm.sym.transpose(data(), axes=(2, 0, -2)), [x], [gy],
                            [gy.transpose(1, 2, 0)], ctx=ctx)


def test_axis_ops_infer_input_from_output():
    b = rm.sym.Variable("b")
    for sym, out, expected in (
            (rm.sym.transpose(data(), axes=(1, 2, 0)), (3, 4, 2), (2, 3, 4)),
            (rm.sym.SwapAxis(data(), dim1=0, dim2=1), (3, 2, 4), (2, 3, 4)),
            (rm.sym.expand_dims(data(), axis=1), (2, 1, 3), (2, 3))):
        args, _, _ = (sym + b).infer_shape_partial(b=out)
        assert args[0] == expected


@pytest.mark.parametrize("kw, match", [
    (dict(axes=(0, 1)), r"axes \(0, 1\) has 2 entries but data has 3 dimensions"),
    (dict(axes=(0, 0, 1)), r"axes \(0, 0, 1\) is not a permutation of 0..2"),
    (dict(axes=(0, 1, 3)), r"axes entry 3 is out of range for data with 3 dimensions"),
])
def test_transpose_errors(kw, match):
    with pytest.raises(MXNetError, match=r"transpose 'tr': " + match):
        rm.sym.transpose(data(), name="tr", **kw).infer_shape(data=(2, 3, 4))


def test_expand_dims(ctx, rng):
    x = rng.normal(size=(2, 3))
    for axis, shape in ((0, (1, 2, 3)), (2, (2, 3, 1)), (-1, (2, 3, 1)), (-3, (1, 2, 3))):
        check_symbolic_forward(rm.sym.expand_dims(data(), axis=axis), [x],
                               [x.reshape(shape)], ctx=ctx)
    with pytest.raises(MXNetError, match=r"expand_dims 'ex': axis 3 is out of range for "
                                         r"data with 2 dimensions"):
        rm.sym.expand_dims(data(), axis=3, name="ex").infer_shape(data=(2, 3))


def test_swapaxis(ctx, rng):
    x = rng.normal(size=(2, 3, 4))
    check_symbolic_forward(rm.sym.swapaxes(data(), dim1=1, dim2=-1), [x],
                           [x.swapaxes(1, 2)], ctx=ctx)
    check_symbolic_forward(rm.sym.SwapAxis(data()), [x], [x], ctx=ctx)
    gy = rng.normal(size=(4, 3, 2))
    check_symbolic_backward(rm.sym.SwapAxis(data(), dim1=2, dim2=0), [x], [gy],
                            [gy.swapaxes(0, 2)], ctx=ctx)
    with pytest.raises(MXNetError, match=r"SwapAxis 'sw': dim2 3 is out of range for data "
                                         r"with 3 dimensions"):
        rm.sym.SwapAxis(data(), dim1=0, dim2=3, name="sw").infer_shape(data=(2, 3, 4))


def test_auto_names_follow_the_python_function():
    with rm.name.NameManager():
        assert rm.sym.Flatten(data()).name == "flatten0"
        assert rm.sym.flatten(data()).name == "flatten1"
        assert rm.sym.SwapAxis(data()).name == "swapaxis0"
        assert rm.sym.swapaxes(data()).name == "swapaxes0"


# --------------------------------------------------------------------------- reverse

def test_reverse_matches_numpy_flip(ctx, rng):
    import numpy as np
    x = rng.normal(size=(2, 3, 4))
    check_symbolic_forward(rm.sym.reverse(data(), axis=(1,)), {"data": x}, [np.flip(x, 1)],
                           ctx=ctx)
    check_symbolic_forward(rm.sym.flip(data(), axis=(0, -1)), {"data": x},
                           [np.flip(np.flip(x, 0), 2)], ctx=ctx)


def test_reverse_axis_out_of_range_is_caught_at_inference():
    with pytest.raises(MXNetError, match="reverse 'r'.*axis"):
        rm.sym.reverse(data(), axis=(3,), name="r").infer_shape(data=(2, 3))
