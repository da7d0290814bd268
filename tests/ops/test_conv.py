"""Convolution: gradients, a plain-loop numpy reference, MXNet's shape example, errors."""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.ops import conv as conv_module
from raymod.test_utils import check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731


def _conv(**kw):
    return lambda: rm.sym.Convolution(data(), name="conv", **kw)


GRAD_CASES = [
    GradCase("Convolution", "2d-plain", _conv(kernel=(3, 3), num_filter=3),
             {"data": (2, 2, 5, 5), "conv_weight": (3, 2, 3, 3), "conv_bias": (3,)}),
    GradCase("Convolution", "2d-stride-pad-dilate-group",
             _conv(kernel=(3, 3), stride=(2, 2), pad=(1, 1), dilate=(2, 2), num_group=2,
                   num_filter=4),
             {"data": (1, 4, 7, 6), "conv_weight": (4, 2, 3, 3), "conv_bias": (4,)}),
    GradCase("Convolution", "2d-no_bias-rect", _conv(kernel=(2, 3), stride=(1, 2),
                                                     num_filter=2, no_bias=True),
             {"data": (2, 3, 4, 5), "conv_weight": (2, 3, 2, 3)}),
    GradCase("Convolution", "1d-pad-stride", _conv(kernel=(3,), stride=(2,), pad=(1,),
                                                   num_filter=3),
             {"data": (2, 2, 7), "conv_weight": (3, 2, 3), "conv_bias": (3,)}),
    GradCase("Convolution", "1d-group-dilate", _conv(kernel=(2,), dilate=(3,), num_group=3,
                                                     num_filter=3),
             {"data": (2, 3, 8), "conv_weight": (3, 1, 2), "conv_bias": (3,)}),
    GradCase("Convolution", "3d", _conv(kernel=(2, 2, 2), pad=(1, 0, 0), num_filter=2),
             {"data": (1, 2, 3, 3, 3), "conv_weight": (2, 2, 2, 2, 2), "conv_bias": (2,)}),
    # an output at least BATCH_LAST_BELOW wide takes the batch-first column order
    GradCase("Convolution", "2d-wide-batch-first",
             _conv(kernel=(2, 3), pad=(0, 1), stride=(1, 1), num_group=2, num_filter=2),
             {"data": (2, 2, 2, 17), "conv_weight": (2, 1, 2, 3), "conv_bias": (2,)}),
]


@pytest.fixture(params=["batch-first", "batch-last"])
def column_order(request, monkeypatch):
    """Run a test under each column order the lowering can choose."""
    monkeypatch.setattr(conv_module, "BATCH_LAST_BELOW",
                        0 if request.param == "batch-first" else 10**9)
    return request.param


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


# --------------------------------------------------------------------------- reference

def np_conv2d(x, w, b, stride=(1, 1), pad=(0, 0), dilate=(1, 1), groups=1):
    """Direct loops over every output position (no im2col), written independently."""
    N, _, H, W = x.shape
    F, Cg, kh, kw = w.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    eh, ew = dilate[0] * (kh - 1) + 1, dilate[1] * (kw - 1) + 1
    Ho = (H + 2 * pad[0] - eh) // stride[0] + 1
    Wo = (W + 2 * pad[1] - ew) // stride[1] + 1
    y = np.zeros((N, F, Ho, Wo))
    fg = F // groups
    for n in range(N):
        for f in range(F):
            g = f // fg
            for i in range(Ho):
                for j in range(Wo):
                    r, c = i * stride[0], j * stride[1]
                    patch = xp_[n, g * Cg:(g + 1) * Cg, r:r + eh:dilate[0], c:c + ew:dilate[1]]
                    y[n, f, i, j] = np.sum(patch * w[f]) + (0 if b is None else b[f])
    return y


def test_reference_example_shapes():
    """[verified] (1,6,10,10), kernel 3, group 2, dilate 2, stride 2, pad 1, 4 filters."""
    sym = rm.sym.Convolution(data(), kernel=(3, 3), num_group=2, dilate=(2, 2),
                             stride=(2, 2), pad=(1, 1), num_filter=4, name="conv")
    assert sym.list_arguments() == ["data", "conv_weight", "conv_bias"]
    arg_shapes, out_shapes, _ = sym.infer_shape(data=(1, 6, 10, 10))
    assert arg_shapes == [(1, 6, 10, 10), (4, 3, 3, 3), (4,)]
    assert out_shapes == [(1, 4, 4, 4)]


def test_reference_example_forward(ctx, rng, column_order):
    x = rng.normal(size=(1, 6, 10, 10))
    w = rng.normal(size=(4, 3, 3, 3))
    b = rng.normal(size=(4,))
    sym = rm.sym.Convolution(data(), kernel=(3, 3), num_group=2, dilate=(2, 2),
                             stride=(2, 2), pad=(1, 1), num_filter=4, name="conv")
    expected = np_conv2d(x, w, b, (2, 2), (1, 1), (2, 2), 2)
    check_symbolic_forward(sym, [x, w, b], [expected], rtol=1e-10, atol=1e-10, ctx=ctx,
                           dtype=np.float64)


@pytest.mark.parametrize("kw", [
    dict(kernel=(5, 5), num_filter=6),
    dict(kernel=(3, 2), num_filter=4, stride=(2, 1), pad=(2, 1), no_bias=True),
    dict(kernel=(1, 1), num_filter=3, num_group=3),
])
def test_forward_matches_loops(ctx, rng, kw, column_order):
    C = 3
    x = rng.normal(size=(2, C, 9, 8)).astype(np.float32)
    sym = rm.sym.Convolution(data(), name="c", **kw)
    arg_shapes, _, _ = sym.infer_shape(data=x.shape)
    w = rng.normal(size=arg_shapes[1]).astype(np.float32)
    b = None if kw.get("no_bias") else rng.normal(size=arg_shapes[2]).astype(np.float32)
    expected = np_conv2d(x, w, b, kw.get("stride", (1, 1)), kw.get("pad", (0, 0)),
                         (1, 1), kw.get("num_group", 1))
    location = [x, w] if b is None else [x, w, b]
    check_symbolic_forward(sym, location, [expected], rtol=1e-4, atol=1e-4, ctx=ctx)


def test_1d_forward_is_2d_with_unit_height(ctx, rng, column_order):
    x = rng.normal(size=(2, 2, 11))
    w = rng.normal(size=(3, 2, 4))
    b = rng.normal(size=(3,))
    sym = rm.sym.Convolution(data(), kernel=(4,), stride=(3,), pad=(2,), dilate=(2,),
                             num_filter=3, name="c", layout="NCW")
    expected = np_conv2d(x[:, :, None], w[:, :, None], b, (1, 3), (0, 2), (1, 2))[:, :, 0]
    check_symbolic_forward(sym, [x, w, b], [expected], rtol=1e-10, atol=1e-10, ctx=ctx,
                           dtype=np.float64)


def test_backward_matches_loops_for_every_input(ctx, rng, column_order):
    """dx, dW, db against the loop reference: sum(y * gy) is linear in x and in W, so
    the gradient's element idx is that objective evaluated at a one-hot input."""
    x = rng.normal(size=(2, 4, 6, 5))
    w = rng.normal(size=(2, 2, 3, 2))
    b = rng.normal(size=(2,))
    kw = dict(stride=(2, 1), pad=(1, 0), dilate=(1, 2), groups=2)
    gy = rng.normal(size=np_conv2d(x, w, b, **kw).shape)
    sym = rm.sym.Convolution(data(), kernel=(3, 2), stride=(2, 1), pad=(1, 0), dilate=(1, 2),
                             num_group=2, num_filter=2, name="c")
    exe = sym.simple_bind(ctx, data=x.shape)
    for name, value in zip(sym.list_arguments(), (x, w, b)):
        exe.arg_dict[name][...] = ctx.xp.asarray(value.astype(np.float32))
    exe.forward(is_train=True)
    exe.backward([ctx.xp.asarray(gy.astype(np.float32))])

    def one_hot(shape, idx):
        e = np.zeros(shape)
        e[idx] = 1.0
        return e

    gx = np.array([np.sum(np_conv2d(one_hot(x.shape, i), w, None, **kw) * gy)
                   for i in np.ndindex(x.shape)]).reshape(x.shape)
    gw = np.array([np.sum(np_conv2d(x, one_hot(w.shape, i), None, **kw) * gy)
                   for i in np.ndindex(w.shape)]).reshape(w.shape)
    for name, expected in (("data", gx), ("c_weight", gw), ("c_bias", gy.sum(axis=(0, 2, 3)))):
        np.testing.assert_allclose(to_numpy(exe.grad_dict[name]), expected, rtol=1e-4,
                                   atol=1e-4, err_msg=name)


def test_steady_state_reuses_buffers(ctx, rng, column_order):
    """Every buffer is the executor's shared scratch: after the first step nothing is
    allocated, and the node keeps nothing of its own (backward rebuilds the columns)."""
    sym = rm.sym.Convolution(data(), kernel=(3, 3), pad=(1, 1), num_filter=4, name="c")
    exe = sym.simple_bind(ctx, data=(2, 3, 6, 6))
    ws = exe._plan.steps[0].ws
    exe.forward(is_train=True)
    exe.backward([ctx.xp.ones((2, 4, 6, 6), dtype=np.float32)])
    scratch = exe._plan.pool.scratch.buf
    exe.forward(is_train=True, data=rng.normal(size=(2, 3, 6, 6)).astype(np.float32))
    exe.backward([ctx.xp.ones((2, 4, 6, 6), dtype=np.float32)])
    assert exe._plan.pool.scratch.buf is scratch
    assert ws.nbytes() == 0


def test_padding_border_stays_zero_across_steps(ctx, rng, column_order):
    """The padded copy's border is written once; later steps must not leak data into it."""
    sym = rm.sym.Convolution(data(), kernel=(3, 3), pad=(1, 1), num_filter=1, no_bias=True,
                             name="c")
    exe = sym.simple_bind(ctx, data=(1, 1, 4, 4))
    exe.arg_dict["c_weight"][...] = 1.0
    for scale in (1.0, 7.0):
        x = np.full((1, 1, 4, 4), scale, dtype=np.float32)
        out = to_numpy(exe.forward(data=x)[0])
        assert out[0, 0, 0, 0] == pytest.approx(4 * scale)     # corner sees 4 real cells
        assert out[0, 0, 1, 1] == pytest.approx(9 * scale)


# --------------------------------------------------------------------------- shapes

def test_shape_inference_partial_and_backward():
    sym = rm.sym.Convolution(data(), kernel=(3, 3), num_filter=5, name="c")
    args, outs, _ = sym.infer_shape_partial(data=(0, 2, 8, 8))
    assert args[1] == (5, 2, 3, 3) and outs[0] == (0, 5, 6, 6)
    # the batch dim comes back from a known output (MXNet's ConvolutionShape)
    out = rm.sym.Flatten(sym, name="f")
    args, outs, _ = out.infer_shape_partial(data=(0, 2, 8, 8))
    assert outs[0] == (0, 180)


def test_no_bias_has_no_bias_argument():
    sym = rm.sym.Convolution(data(), kernel=(1,), num_filter=2, no_bias=True, name="c")
    assert sym.list_arguments() == ["data", "c_weight"]


# --------------------------------------------------------------------------- errors

def test_channels_not_divisible_by_num_group():
    sym = rm.sym.Convolution(data(), kernel=(3, 3), num_filter=4, num_group=2, name="cg")
    with pytest.raises(MXNetError, match=r"Convolution 'cg': data has 5 channels.*num_group 2"):
        sym.infer_shape(data=(1, 5, 8, 8))


def test_kernel_larger_than_padded_input():
    sym = rm.sym.Convolution(data(), kernel=(5, 5), pad=(1, 1), num_filter=2, name="ck")
    with pytest.raises(MXNetError, match=r"'ck': kernel \(5, 5\).*larger than the padded "
                                         r"input.*\(1, 1, 2, 8\).*gives 4"):
        sym.infer_shape(data=(1, 1, 2, 8))


def test_dilated_kernel_larger_than_input():
    sym = rm.sym.Convolution(data(), kernel=(3,), dilate=(4,), num_filter=2, name="cd")
    with pytest.raises(MXNetError, match=r"'cd'.*dilated extent 9"):
        sym.infer_shape(data=(1, 1, 8))


def test_wrong_data_rank():
    sym = rm.sym.Convolution(data(), kernel=(3, 3), num_filter=2, name="cr")
    with pytest.raises(MXNetError, match=r"'cr': data: expected a 4-D shape.*received "
                                         r"\(1, 3, 8\)"):
        sym.infer_shape(data=(1, 3, 8))


def test_weight_shape_mismatch():
    sym = rm.sym.Convolution(data(), kernel=(3, 3), num_filter=2, name="cw")
    with pytest.raises(MXNetError, match=r"'cw': data has 3 channels.*weight expects 4"):
        sym.infer_shape(data=(1, 3, 8, 8), cw_weight=(2, 4, 3, 3))


@pytest.mark.parametrize("kw, match", [
    (dict(kernel=(3, 3), num_filter=3, num_group=2), r"num_filter \(3\) must be divisible"),
    (dict(kernel=(3, 3), num_filter=2, layout="NHWC"), r"layout 'NHWC' is not supported"),
    (dict(kernel=(3,), num_filter=2, layout="NCHW"), r"does not match a 1-D kernel"),
    (dict(kernel=(3, 3), num_filter=2, stride=(1, 1, 1)), r"stride .* has 3 values"),
    (dict(kernel=(3, 3), num_filter=2, stride=(0, 1)), r"stride values must be >= 1"),
    (dict(kernel=(3, 3, 3, 3), num_filter=2), r"kernel must have 1, 2 or 3 dimensions"),
    (dict(num_filter=2), r"required attribute 'kernel'"),
    (dict(kernel=(3, 3)), r"required attribute 'num_filter'"),
    (dict(kernel=(3, 3), num_filter=2, cudnn_tune="bogus"), r"cudnn_tune"),
])
def test_bad_attributes(kw, match):
    with pytest.raises((ValueError, TypeError), match=r"Convolution 'cb'.*" + match):
        rm.sym.Convolution(data(), name="cb", **kw)


def test_accepts_mxnet_string_attributes():
    sym = rm.sym.Convolution(data(), kernel="(3, 3)", stride="(2, 2)", num_filter="8",
                             no_bias="True", cudnn_tune="fastest", cudnn_off="False",
                             workspace="512", name="cs")
    _, outs, _ = sym.infer_shape(data=(1, 1, 7, 7))
    assert outs == [(1, 8, 3, 3)]


def test_lenet_benchmark_runs_and_restores_numpy(capsys):
    """bench/conv.py end to end on a tiny batch; its profiling wrappers must not leak."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "bench" / "conv.py"
    spec = importlib.util.spec_from_file_location("bench_conv", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    real_dot = np.dot
    median, fraction = bench.main(["--steps", "2", "--warmup", "1", "--batch", "4",
                                   "--act", "relu", "--no-data-grad"])
    assert np.dot is real_dot
    assert median > 0 and 0 < fraction <= 1
    assert "matrix products:" in capsys.readouterr().out
