"""SoftmaxOutput, regression outputs, MakeLoss, make_loss, BlockGrad."""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.test_utils import (assert_almost_equal, check_symbolic_backward,
                               check_symbolic_forward)
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731


def _softmax_out(**kw):
    return lambda: rm.sym.SoftmaxOutput(data(), name="sm", **kw)


def _regression(op, **kw):
    return lambda: getattr(rm.sym, op)(data(), name="reg", **kw)


LABELS = [2, 0, 3, 1]
MULTI_LABELS = [[0, 2, -1], [1, -1, 2]]

GRAD_CASES = [
    GradCase("SoftmaxOutput", "default", _softmax_out(),
             {"data": (4, 5), "sm_label": (4,)}, values={"sm_label": LABELS}),
    GradCase("SoftmaxOutput", "grad_scale-batch", _softmax_out(grad_scale=2.0,
                                                               normalization="batch"),
             {"data": (4, 5), "sm_label": (4,)}, values={"sm_label": LABELS}),
    GradCase("SoftmaxOutput", "use_ignore-valid",
             _softmax_out(use_ignore=True, ignore_label=1, normalization="valid"),
             {"data": (4, 5), "sm_label": (4,)}, values={"sm_label": LABELS}),
    GradCase("SoftmaxOutput", "smooth_alpha", _softmax_out(smooth_alpha=0.2),
             {"data": (4, 5), "sm_label": (4,)}, values={"sm_label": LABELS}),
    GradCase("SoftmaxOutput", "out-of-range-label", _softmax_out(),
             {"data": (2, 3), "sm_label": (2,)}, values={"sm_label": [7, 1]}),
    GradCase("SoftmaxOutput", "probability-labels", _softmax_out(grad_scale=0.5),
             {"data": (3, 4), "sm_label": (3, 4)},
             values={"sm_label": np.full((3, 4), 0.25)}),
    GradCase("SoftmaxOutput", "multi_output", _softmax_out(multi_output=True),
             {"data": (2, 4, 3), "sm_label": (2, 3)}, values={"sm_label": [[0, 2, 3], [1, 1, 0]]}),
    GradCase("SoftmaxOutput", "multi_output-ignore-valid",
             _softmax_out(multi_output=True, use_ignore=True, normalization="valid"),
             {"data": (2, 4, 3), "sm_label": (2, 3)}, values={"sm_label": MULTI_LABELS}),
    GradCase("SoftmaxOutput", "multi_output-batch-smooth",
             _softmax_out(multi_output=True, normalization="batch", smooth_alpha=0.1),
             {"data": (2, 4, 3), "sm_label": (2, 3)}, values={"sm_label": [[0, 2, 3], [1, 1, 0]]}),
    GradCase("SoftmaxOutput", "preserve_shape", _softmax_out(preserve_shape=True),
             {"data": (2, 3, 4), "sm_label": (2, 3)},
             values={"sm_label": [[0, 1, 3], [2, 2, 0]]}),
    GradCase("LinearRegressionOutput", "grad_scale", _regression("LinearRegressionOutput",
                                                                 grad_scale=3.0),
             {"data": (3, 2), "reg_label": (3, 2)}, values={"reg_label": np.ones((3, 2))}),
    GradCase("LinearRegressionOutput", "column-label", _regression("LinearRegressionOutput"),
             {"data": (4, 1), "reg_label": (4,)}, values={"reg_label": [0.5, -1, 2, 0]}),
    GradCase("LogisticRegressionOutput", "default", _regression("LogisticRegressionOutput",
                                                                grad_scale=2.0),
             {"data": (3, 2), "reg_label": (3, 2)},
             values={"reg_label": [[0, 1], [1, 1], [0, 0]]}),
    GradCase("MAERegressionOutput", "default", _regression("MAERegressionOutput"),
             {"data": (3, 2), "reg_label": (3, 2)}, values={"reg_label": np.full((3, 2), 2.0)}),
    GradCase("MakeLoss", "null", lambda: rm.sym.MakeLoss(rm.sym.square(data()), grad_scale=0.5),
             {"data": (3, 2)}),
    GradCase("MakeLoss", "batch", lambda: rm.sym.MakeLoss(rm.sym.square(data()),
                                                          normalization="batch"),
             {"data": (3, 2)}),
    GradCase("MakeLoss", "valid", lambda: rm.sym.MakeLoss(data(), normalization="valid",
                                                          valid_thresh=0.1),
             {"data": (3, 4)}),
    GradCase("make_loss", "default", lambda: rm.sym.make_loss(rm.sym.exp(data())),
             {"data": (3, 2)}),
    # BlockGrad is not a true gradient: check the path around it, and `b` separately below.
    GradCase("BlockGrad", "beside-a-live-path",
             lambda: rm.sym.BlockGrad(rm.sym.Variable("b")) * rm.sym.Variable("a"),
             {"a": (2, 3), "b": (2, 3)}, grad_nodes=["a"]),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


# --------------------------------------------------------------------------- references

def _np_softmax_rows(x2):
    e = np.exp(x2 - x2.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _np_softmax_output_grad(x, label, grad_scale=1.0, ignore_label=-1, use_ignore=False,
                            normalization="null", smooth_alpha=0.0):
    """MXNet's SoftmaxOutput gradient for 2-D data, written with loops."""
    p = _np_softmax_rows(x)
    n, c = p.shape
    g = np.zeros_like(p)
    for i in range(n):
        k = int(label[i])
        if use_ignore and k == int(ignore_label):
            continue
        for j in range(c):
            if j == k:
                g[i, j] = p[i, j] - 1 + smooth_alpha
            else:
                g[i, j] = p[i, j] - (smooth_alpha / (c - 1) if smooth_alpha else 0)
    if normalization == "batch":
        g /= n
    elif normalization == "valid":
        g /= max(1, sum(int(v) != int(ignore_label) for v in label))
    return g * grad_scale


def test_softmax_output_documented_example(ctx):
    sym = rm.sym.SoftmaxOutput(data(), name="sm")
    x = np.array([[1.0, 2.0, 3.0]])
    outs = check_symbolic_forward(sym, [x, [2]], [_np_softmax_rows(x)], ctx=ctx)
    assert_almost_equal(outs[0].sum(), 1.0, rtol=1e-6)
    check_symbolic_backward(sym, [x, [2]], None, {"data": [[0.09, 0.2447, -0.3348]]},
                            rtol=1e-3, atol=1e-4, ctx=ctx)


@pytest.mark.parametrize("kwargs", [
    {},
    {"grad_scale": 3.0, "normalization": "batch"},
    {"use_ignore": True, "ignore_label": 2, "normalization": "valid"},
    {"normalization": "valid", "ignore_label": 0},        # counted even without use_ignore
    {"use_ignore": True, "smooth_alpha": 0.3},
    {"smooth_alpha": 0.1, "normalization": "batch"},
])
def test_softmax_output_backward_matches_reference(kwargs, ctx):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5, 4))
    label = np.array([2, 0, 3, 2, 1], dtype=np.float64)
    sym = rm.sym.SoftmaxOutput(data(), **kwargs)
    check_symbolic_backward(sym, [x, label], None,
                            {"data": _np_softmax_output_grad(x, label, **kwargs)},
                            ctx=ctx, dtype=np.float64, rtol=1e-10, atol=1e-12)


def test_softmax_output_truncates_labels_and_leaves_out_of_range_rows(ctx):
    x = np.array([[0.1, 0.4, -0.2], [1.0, 0.0, 0.5]])
    p = _np_softmax_rows(x)
    expected = p.copy()
    expected[0, 1] -= 1                    # 1.9 -> class 1 (truncation, as C's cast)
    check_symbolic_backward(rm.sym.SoftmaxOutput(data()), [x, [1.9, 3.0]], None,
                            {"data": expected}, ctx=ctx, dtype=np.float64, rtol=1e-10)


def test_softmax_output_probability_labels(ctx):
    x = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 1.0]])
    label = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    expected = (_np_softmax_rows(x) - label) * 2.0
    sym = rm.sym.SoftmaxOutput(data(), grad_scale=2.0, normalization="batch", use_ignore=True)
    check_symbolic_backward(sym, [x, label], None, {"data": expected}, ctx=ctx,
                            dtype=np.float64, rtol=1e-10)


def _np_multi_output_grad(x, label, normalization="null", use_ignore=False, ignore_label=-1):
    n, c, s = x.shape
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    g = p.copy()
    valid = 0
    for i in range(n):
        for t in range(s):
            k = int(label[i, t])
            if k != int(ignore_label):
                valid += 1
            if use_ignore and k == int(ignore_label):
                g[i, :, t] = 0
            elif 0 <= k < c:
                g[i, k, t] -= 1
    scale = {"null": 1.0 / s, "batch": 1.0 / (s * n), "valid": 1.0 / max(1, valid)}
    return g * scale[normalization]


@pytest.mark.parametrize("normalization", ["null", "batch", "valid"])
def test_softmax_output_multi_output(normalization, ctx):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 4, 3))
    label = np.array(MULTI_LABELS, dtype=np.float64)
    sym = rm.sym.SoftmaxOutput(data(), multi_output=True, use_ignore=True,
                               normalization=normalization)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    check_symbolic_forward(sym, [x, label], [e / e.sum(axis=1, keepdims=True)], ctx=ctx,
                           dtype=np.float64, rtol=1e-12)
    check_symbolic_backward(sym, [x, label], None,
                            {"data": _np_multi_output_grad(x, label, normalization, True)},
                            ctx=ctx, dtype=np.float64, rtol=1e-10, atol=1e-12)


def test_softmax_output_preserve_shape_and_default_forward(ctx):
    x = np.random.default_rng(2).normal(size=(2, 3, 4))
    sym = rm.sym.SoftmaxOutput(data(), preserve_shape=True, name="sm")
    e = np.exp(x - x.max(axis=2, keepdims=True))
    check_symbolic_forward(sym, [x, np.zeros((2, 3))], [e / e.sum(axis=2, keepdims=True)],
                           ctx=ctx, dtype=np.float64, rtol=1e-12)
    # Default mode: one softmax over everything but the batch axis.
    flat = _np_softmax_rows(x.reshape(2, 12)).reshape(x.shape)
    check_symbolic_forward(rm.sym.SoftmaxOutput(data()), [x, np.zeros((2, 3))], [flat],
                           ctx=ctx, dtype=np.float64, rtol=1e-12)


def test_softmax_output_out_grad_multiplies_the_head_gradient(ctx):
    x = np.array([[0.3, -0.1, 0.8], [1.0, 2.0, 0.5]])
    label = np.array([1, 2])
    head = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    expected = _np_softmax_output_grad(x, label) * head
    check_symbolic_backward(rm.sym.SoftmaxOutput(data(), out_grad=True), [x, label], [head],
                            {"data": expected}, ctx=ctx, dtype=np.float64, rtol=1e-10)


def test_softmax_output_label_gets_zero_gradient_and_needs_no_head(ctx):
    sym = rm.sym.SoftmaxOutput(data(), name="sm")
    exe = sym.simple_bind(ctx, data=(2, 3))
    exe.grad_dict["sm_label"][...] = 5
    exe.forward(is_train=True, data=np.ones((2, 3)), sm_label=np.array([0, 1]))
    exe.backward()                                  # no head gradient for a loss
    assert np.all(to_numpy(exe.grad_dict["sm_label"]) == 0)
    assert_almost_equal(exe.grad_dict["data"], [[1 / 3 - 1, 1 / 3, 1 / 3],
                                                [1 / 3, 1 / 3 - 1, 1 / 3]], rtol=1e-6)


def test_softmax_alias():
    sym = rm.sym.Softmax(data(), name="sm")
    assert sym._heads[0][0].op.op_name == "SoftmaxOutput"
    assert sym.list_arguments() == ["data", "sm_label"]


# --------------------------------------------------------------------------- label shapes

@pytest.mark.parametrize("kwargs, data_shape, label_shape", [
    ({}, (4, 10), (4,)),
    ({"preserve_shape": True}, (4, 5, 10), (4, 5)),
    ({"multi_output": True}, (4, 10, 3, 2), (4, 6)),
])
def test_softmax_output_label_shape_inference(kwargs, data_shape, label_shape):
    sym = rm.sym.SoftmaxOutput(data(), name="sm", **kwargs)
    arg_shapes, out_shapes, _ = sym.infer_shape(data=data_shape)
    assert arg_shapes == [data_shape, label_shape]
    assert out_shapes == [data_shape]


@pytest.mark.parametrize("label_shape", [(4, 6), (4, 3, 2), (4, 1, 3, 2), (4, 10, 3, 2)])
def test_softmax_output_multi_output_accepts_the_documented_labels(label_shape):
    sym = rm.sym.SoftmaxOutput(data(), multi_output=True, name="sm")
    arg_shapes, _, _ = sym.infer_shape(data=(4, 10, 3, 2), sm_label=label_shape)
    assert arg_shapes[1] == label_shape


def test_softmax_output_multi_output_rejects_other_labels():
    sym = rm.sym.SoftmaxOutput(data(), multi_output=True, name="sm")
    with pytest.raises(MXNetError, match=r"SoftmaxOutput 'sm'.*label.*\(4, 6\)"):
        sym.infer_shape(data=(4, 10, 3, 2), sm_label=(4, 7))


def test_softmax_output_label_mismatch():
    sym = rm.sym.SoftmaxOutput(data(), name="sm")
    with pytest.raises(MXNetError, match="SoftmaxOutput 'sm'.*label"):
        sym.infer_shape(data=(4, 10), sm_label=(5,))


def test_softmax_output_needs_two_dimensional_data():
    with pytest.raises(MXNetError, match="SoftmaxOutput 'sm'.*2 dimensions"):
        rm.sym.SoftmaxOutput(data(), name="sm").infer_shape(data=(4,))


def test_softmax_output_rejects_unknown_normalization():
    with pytest.raises(ValueError, match="normalization"):
        rm.sym.SoftmaxOutput(data(), normalization="mean")


# --------------------------------------------------------------------------- regression

REG_X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
REG_Y = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 2.0]])


def test_regression_documented_example(ctx):
    lin = rm.sym.LinearRegressionOutput(data(), grad_scale=3)
    check_symbolic_forward(lin, [REG_X, REG_Y], [REG_X], ctx=ctx)
    check_symbolic_backward(lin, [REG_X, REG_Y], None,
                            {"data": [[1.5, 1.5], [3, 4.5], [4.5, 6]]}, ctx=ctx)
    mae = rm.sym.MAERegressionOutput(data(), grad_scale=3)
    check_symbolic_backward(mae, [REG_X, REG_Y], None, {"data": np.full((3, 2), 1.5)},
                            ctx=ctx)


def test_logistic_regression_output(ctx):
    x = np.array([[-1.0, 0.0], [2.0, 0.5]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    sig = 1 / (1 + np.exp(-x))
    sym = rm.sym.LogisticRegressionOutput(data(), grad_scale=4.0)
    check_symbolic_forward(sym, [x, y], [sig], ctx=ctx, dtype=np.float64, rtol=1e-12)
    check_symbolic_backward(sym, [x, y], None, {"data": 4.0 / 2 * (sig - y)}, ctx=ctx,
                            dtype=np.float64, rtol=1e-12)


def test_regression_label_reads_flat_order(ctx):
    x = np.arange(6.0).reshape(3, 2)
    label = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]).reshape(3, 2)
    sym = rm.sym.LinearRegressionOutput(data(), name="reg")
    assert sym.infer_shape(data=(3, 2), reg_label=(3, 2))[0][1] == (3, 2)
    check_symbolic_backward(sym, [x, label], None, {"data": (x - label) / 2}, ctx=ctx,
                            dtype=np.float64)


@pytest.mark.parametrize("data_shape, label_shape", [((5, 1), (5,)), ((5, 3), (5, 3)),
                                                      ((2, 3, 4), (2, 3, 4))])
def test_regression_label_shape_inference(data_shape, label_shape):
    for op in ("LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput"):
        sym = getattr(rm.sym, op)(data(), name="reg")
        assert sym.infer_shape(data=data_shape)[0] == [data_shape, label_shape]


def test_regression_accepts_a_same_size_label_with_the_same_rows():
    sym = rm.sym.LinearRegressionOutput(data(), name="reg")
    assert sym.infer_shape(data=(2, 6), reg_label=(2, 3, 2))[0][1] == (2, 3, 2)


@pytest.mark.parametrize("label_shape", [(6, 2), (3, 5)])
def test_regression_label_mismatch(label_shape):
    sym = rm.sym.LinearRegressionOutput(data(), name="reg")
    with pytest.raises(MXNetError, match="LinearRegressionOutput 'reg'.*label"):
        sym.infer_shape(data=(3, 4), reg_label=label_shape)


# --------------------------------------------------------------------------- MakeLoss family

def test_make_loss_output_names():
    assert rm.sym.MakeLoss(data(), name="ml").list_outputs() == ["ml_output"]
    assert rm.sym.make_loss(data(), name="ml").list_outputs() == ["ml_loss"]


@pytest.mark.parametrize("kwargs, scale", [
    ({}, 1.0),
    ({"grad_scale": 2.0, "normalization": "batch"}, 2.0 / 4),
    ({"grad_scale": 3.0, "normalization": "valid", "valid_thresh": 0.5}, 3.0 / 5),
    ({"normalization": "valid", "valid_thresh": 100.0}, 1.0),      # none valid -> 1
])
def test_make_loss_gradient(kwargs, scale, ctx):
    x = np.array([[0.1, 0.6, 0.7], [0.9, 0.2, 0.3], [1.5, 0.0, 0.4], [2.0, 0.5, 0.45]])
    sym = rm.sym.MakeLoss(data(), **kwargs)
    check_symbolic_forward(sym, [x], [x], ctx=ctx)
    check_symbolic_backward(sym, [x], [np.full(x.shape, 7.0)], {"data": np.full(x.shape, scale)},
                            ctx=ctx)


def test_lower_make_loss_gradient_is_ones(ctx):
    x = np.array([[3.0, -1.0]])
    check_symbolic_backward(rm.sym.make_loss(data()), [x], None, {"data": np.ones((1, 2))},
                            ctx=ctx)


def test_block_grad_passes_values_and_zero_gradient(ctx):
    for fn in (rm.sym.BlockGrad, rm.sym.stop_gradient):
        sym = fn(data())
        x = np.array([[1.0, -2.0]])
        check_symbolic_forward(sym, [x], [x], ctx=ctx)
        check_symbolic_backward(sym, [x], [np.ones((1, 2))], {"data": np.zeros((1, 2))},
                                ctx=ctx)
        check_symbolic_backward(sym, [x], None, {"data": np.zeros((1, 2))}, ctx=ctx)


def test_group_of_loss_and_block_grad_needs_no_head_gradient(ctx):
    fc = rm.sym.FullyConnected(data(), num_hidden=3, name="fc")
    net = rm.sym.Group([rm.sym.SoftmaxOutput(fc, name="sm"), rm.sym.BlockGrad(fc)])
    exe = net.simple_bind(ctx, data=(2, 4))
    exe.forward(is_train=True, data=np.ones((2, 4)), fc_weight=np.ones((3, 4)) * 0.1,
                sm_label=np.array([0, 2]))
    exe.backward()
    assert np.abs(to_numpy(exe.grad_dict["fc_weight"])).sum() > 0
