"""Pooling: gradients, MXNet's window rules against plain loops, documented shapes, errors."""
import itertools

import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.test_utils import check_symbolic_backward, check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731


def _pool(**kw):
    return lambda: rm.sym.Pooling(data(), name="pool", **kw)


GRAD_CASES = [
    GradCase("Pooling", "max-2d", _pool(kernel=(2, 2), stride=(2, 2)), {"data": (2, 2, 4, 4)}),
    GradCase("Pooling", "max-2d-overlap-pad", _pool(kernel=(3, 3), stride=(2, 1), pad=(1, 1)),
             {"data": (1, 2, 5, 4)}),
    GradCase("Pooling", "max-1d-full", _pool(kernel=(3,), stride=(2,),
                                             pooling_convention="full"), {"data": (2, 2, 6)}),
    GradCase("Pooling", "max-1d-same", _pool(kernel=(3,), stride=(2,),
                                             pooling_convention="same"), {"data": (2, 2, 7)}),
    GradCase("Pooling", "max-global", _pool(global_pool=True), {"data": (2, 3, 3, 2)}),
    GradCase("Pooling", "avg-2d-pad-include", _pool(kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                                                    pool_type="avg"), {"data": (1, 2, 5, 5)}),
    GradCase("Pooling", "avg-2d-pad-exclude",
             _pool(kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg",
                   count_include_pad=False), {"data": (1, 2, 5, 5)}),
    GradCase("Pooling", "avg-1d-full", _pool(kernel=(2,), stride=(2,), pool_type="avg",
                                             pooling_convention="full"), {"data": (2, 2, 5)}),
    GradCase("Pooling", "avg-global", _pool(global_pool=True, pool_type="avg"),
             {"data": (2, 3, 3, 2)}),
    GradCase("Pooling", "sum-2d", _pool(kernel=(2, 3), stride=(1, 2), pool_type="sum"),
             {"data": (2, 2, 4, 5)}),
    GradCase("Pooling", "sum-global-1d", _pool(global_pool=True, pool_type="sum"),
             {"data": (2, 3, 4)}),
    GradCase("Pooling", "sum-3d", _pool(kernel=(2, 2, 2), pool_type="sum"),
             {"data": (1, 2, 3, 3, 3)}),
    *[GradCase("Pooling", f"lp{p}-2d", _pool(kernel=(2, 2), stride=(1, 1), pool_type="lp",
                                             p_value=p), {"data": (1, 2, 3, 3)},
               low=0.5, high=1.5) for p in (1, 2, 3)],
    GradCase("Pooling", "lp2-global", _pool(global_pool=True, pool_type="lp", p_value=2),
             {"data": (2, 2, 3, 3)}, low=0.5, high=1.5),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


# --------------------------------------------------------------------------- reference

def np_pool(x, kernel, stride, pad, pool_type="max", convention="valid",
            count_include_pad=True, p=2):
    """MXNet's pool.h loops, one output position at a time."""
    S = x.shape[2:]
    d = len(S)
    out = []
    for i in range(d):
        num = S[i] + 2 * pad[i] - kernel[i]
        if convention == "valid":
            out.append(num // stride[i] + 1)
        elif convention == "full":
            out.append(int(np.ceil(num / stride[i])) + 1)
        else:
            out.append(int(np.ceil((S[i] + 2 * pad[i]) / stride[i])))
    y = np.zeros(x.shape[:2] + tuple(out))
    for o in itertools.product(*(range(n) for n in out)):
        start = [o[i] * stride[i] - pad[i] for i in range(d)]
        if pool_type == "max":     # padded cells are skipped
            sl = tuple(slice(max(start[i], 0), min(start[i] + kernel[i], S[i]))
                       for i in range(d))
            y[(Ellipsis,) + o] = x[(Ellipsis,) + sl].reshape(x.shape[:2] + (-1,)).max(-1)
            continue
        end = [min(start[i] + kernel[i], S[i] + pad[i]) for i in range(d)]
        size = np.prod([end[i] - start[i] for i in range(d)])
        sl = tuple(slice(max(start[i], 0), min(end[i], S[i])) for i in range(d))
        if not count_include_pad:
            size = np.prod([s.stop - s.start for s in sl])
        window = x[(Ellipsis,) + sl].reshape(x.shape[:2] + (-1,))
        if pool_type == "lp":
            y[(Ellipsis,) + o] = np.sum(window ** p, -1) ** (1.0 / p)
        else:
            y[(Ellipsis,) + o] = window.sum(-1) / (size if pool_type == "avg" else 1)
    return y


CONFIGS = [
    # shape, kernel, stride, pad, convention
    ((2, 3, 6, 6), (3, 3), (2, 2), (0, 0), "valid"),
    ((2, 3, 6, 6), (3, 3), (2, 2), (0, 0), "full"),
    ((1, 2, 7, 5), (3, 2), (2, 2), (1, 1), "valid"),
    ((1, 2, 7, 5), (3, 2), (2, 3), (1, 0), "full"),
    ((2, 2, 9), (4,), (3,), (2,), "full"),
    ((2, 2, 9), (3,), (2,), (0,), "same"),
    ((1, 1, 4, 5, 6), (2, 3, 2), (2, 1, 3), (0, 1, 1), "valid"),
]


@pytest.mark.parametrize("pool_type", ["max", "avg", "sum"])
@pytest.mark.parametrize("shape, kernel, stride, pad, convention", CONFIGS)
def test_forward_matches_loops(ctx, rng, pool_type, shape, kernel, stride, pad, convention):
    x = rng.normal(size=shape)
    sym = rm.sym.Pooling(data(), kernel=kernel, stride=stride, pad=pad, pool_type=pool_type,
                         pooling_convention=convention, name="p")
    expected = np_pool(x, kernel, stride, pad, pool_type, convention)
    check_symbolic_forward(sym, [x], [expected], rtol=1e-10, atol=1e-12, ctx=ctx,
                           dtype=np.float64)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_forward(ctx, rng, p):
    x = rng.uniform(0.1, 2.0, size=(2, 2, 5, 4))
    sym = rm.sym.Pooling(data(), kernel=(2, 2), stride=(2, 1), pad=(1, 0), pool_type="lp",
                         p_value=p, name="p")
    expected = np_pool(x, (2, 2), (2, 1), (1, 0), "lp", p=p)
    check_symbolic_forward(sym, [x], [expected], rtol=1e-10, ctx=ctx, dtype=np.float64)


def test_avg_count_include_pad_false_divides_by_real_cells(ctx):
    x = np.ones((1, 1, 3, 3))
    include = rm.sym.Pooling(data(), kernel=(3, 3), pad=(1, 1), pool_type="avg", name="p")
    exclude = rm.sym.Pooling(data(), kernel=(3, 3), pad=(1, 1), pool_type="avg",
                             count_include_pad=False, name="q")
    corner_in = check_symbolic_forward(include, [x], [np_pool(x, (3, 3), (1, 1), (1, 1),
                                                              "avg")], ctx=ctx)[0]
    assert corner_in[0, 0, 0, 0] == pytest.approx(4 / 9)
    check_symbolic_forward(exclude, [x], [np.ones((1, 1, 3, 3))], ctx=ctx)


def test_avg_full_convention_clips_the_divisor_at_the_padded_edge(ctx):
    """MXNet divides an edge window of 'full' pooling by its extent inside the padded input."""
    x = np.arange(6, dtype=np.float64).reshape(1, 1, 6)
    sym = rm.sym.Pooling(data(), kernel=(3,), stride=(2,), pool_type="avg",
                         pooling_convention="full", name="p")
    # windows [0,3) [2,5) [4,6): the last has 2 cells and divides by 2
    check_symbolic_forward(sym, [x], [np.array([[[1.0, 3.0, 4.5]]])], ctx=ctx,
                           dtype=np.float64)


def test_global_pool_ignores_kernel_and_pad(ctx, rng):
    x = rng.normal(size=(2, 3, 4, 5))
    for pool_type, ref in (("max", x.max(axis=(2, 3))), ("avg", x.mean(axis=(2, 3))),
                           ("sum", x.sum(axis=(2, 3)))):
        sym = rm.sym.Pooling(data(), kernel=(2, 2), pad=(1, 1), global_pool=True,
                             pool_type=pool_type, name="g")
        check_symbolic_forward(sym, [x], [ref[:, :, None, None]], rtol=1e-10, ctx=ctx,
                               dtype=np.float64)


def test_max_gradient_goes_to_first_maximum_of_each_window(ctx):
    x = np.array([[[[1.0, 3.0, 3.0, 0.0],
                    [3.0, 2.0, 5.0, 5.0],
                    [7.0, 7.0, 0.0, 0.0],
                    [7.0, 7.0, 0.0, 0.0]]]])
    gy = np.array([[[[10.0, 20.0], [30.0, 40.0]]]])
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = 10.0      # ties 3,3,3: the first in row-major order
    expected[0, 0, 1, 2] = 20.0      # ties 5,5
    expected[0, 0, 2, 0] = 30.0      # four 7s
    expected[0, 0, 2, 2] = 40.0      # four 0s
    sym = rm.sym.Pooling(data(), kernel=(2, 2), stride=(2, 2), name="p")
    check_symbolic_backward(sym, [x], [gy], [expected], ctx=ctx)


def test_max_overlapping_windows_accumulate(ctx):
    x = np.array([[[0.0, 9.0, 1.0, 2.0]]])
    sym = rm.sym.Pooling(data(), kernel=(2,), stride=(1,), name="p")
    check_symbolic_backward(sym, [x], [np.array([[[1.0, 2.0, 4.0]]])],
                            [np.array([[[0.0, 3.0, 0.0, 4.0]]])], ctx=ctx)


def test_global_max_gradient_first_maximum(ctx):
    x = np.array([[[[2.0, 5.0], [5.0, 1.0]]]])
    sym = rm.sym.Pooling(data(), global_pool=True, name="p")
    check_symbolic_backward(sym, [x], [np.array([[[[3.0]]]])],
                            [np.array([[[[0.0, 3.0], [0.0, 0.0]]]])], ctx=ctx)


def test_padded_max_border_is_never_the_maximum(ctx):
    """All-negative data with padding: MXNet skips the pad cells (not zeros)."""
    x = -np.ones((1, 1, 2, 2)) - np.arange(4).reshape(1, 1, 2, 2)
    sym = rm.sym.Pooling(data(), kernel=(2, 2), pad=(1, 1), name="p")
    out = check_symbolic_forward(sym, [x], [np_pool(x, (2, 2), (1, 1), (1, 1))], ctx=ctx)[0]
    assert out.max() < 0


def test_repeat_forward_with_new_data(ctx, rng):
    sym = rm.sym.Pooling(data(), kernel=(3, 3), pad=(1, 1), pool_type="max", name="p")
    exe = sym.simple_bind(ctx, data=(1, 2, 4, 4))
    for _ in range(2):
        x = rng.normal(size=(1, 2, 4, 4)).astype(np.float32) - 5
        out = to_numpy(exe.forward(data=x)[0])
        np.testing.assert_allclose(out, np_pool(x, (3, 3), (1, 1), (1, 1)), rtol=1e-6)


# --------------------------------------------------------------------------- shapes

def test_documented_output_shapes():
    """[verified] 6x6, kernel 3, stride 2: valid 2x2, full 3x3."""
    for convention, expected in (("valid", (1, 1, 2, 2)), ("full", (1, 1, 3, 3))):
        sym = rm.sym.Pooling(data(), kernel=(3, 3), stride=(2, 2),
                             pooling_convention=convention)
        assert sym.infer_shape(data=(1, 1, 6, 6))[1] == [expected]
    same = rm.sym.Pooling(data(), kernel=(3,), stride=(2,), pooling_convention="same")
    assert same.infer_shape(data=(2, 3, 7))[1] == [(2, 3, 4)]
    glob = rm.sym.Pooling(data(), kernel=(3, 3), global_pool=True)
    assert glob.infer_shape(data=(2, 3, 7, 5))[1] == [(2, 3, 1, 1)]


def test_partial_shapes_pass_unknown_dims():
    sym = rm.sym.Pooling(data(), kernel=(2, 2), stride=(2, 2), name="p")
    _, outs, _ = sym.infer_shape_partial(data=(0, 3, 8, 0))
    assert outs == [(0, 3, 4, 0)]


# --------------------------------------------------------------------------- errors

def test_kernel_larger_than_padded_input():
    sym = rm.sym.Pooling(data(), kernel=(5, 5), pad=(1, 1), name="pk")
    with pytest.raises(MXNetError, match=r"Pooling 'pk': kernel \(5, 5\) is larger than the "
                                         r"padded input.*\(1, 1, 2, 8\).*gives 4"):
        sym.infer_shape(data=(1, 1, 2, 8))


def test_kernel_rank_must_match_data():
    sym = rm.sym.Pooling(data(), kernel=(2, 2), name="pr")
    with pytest.raises(MXNetError, match=r"'pr': data: a 2-D kernel .* needs a 4-D input"):
        sym.infer_shape(data=(1, 3, 8))


def test_data_rank_out_of_range():
    sym = rm.sym.Pooling(data(), global_pool=True, name="pd")
    with pytest.raises(MXNetError, match=r"'pd': data: expected a 3-D, 4-D or 5-D shape"):
        sym.infer_shape(data=(4, 3))


def test_same_convention_is_1d_only():
    sym = rm.sym.Pooling(data(), kernel=(2, 2), pooling_convention="same", name="ps")
    with pytest.raises(MXNetError, match=r"'ps': pooling_convention 'same' supports 1-D"):
        sym.infer_shape(data=(1, 1, 4, 4))


@pytest.mark.parametrize("kw, match", [
    (dict(kernel=(2,), pool_type="lp"), r"needs p_value 1, 2 or 3, received None"),
    (dict(kernel=(2,), pool_type="lp", p_value=4), r"needs p_value 1, 2 or 3, received 4"),
    (dict(kernel=(2,), pooling_convention="same", pad=(1,)), r"'same' disables pad"),
    (dict(kernel=(2, 2), layout="NHWC"), r"layout 'NHWC' is not supported"),
    (dict(global_pool=True, layout="NDHWC"), r"layout 'NDHWC' is not supported"),
    (dict(kernel=(2, 2), pool_type="median"), r"pool_type"),
    (dict(kernel=(2, 2), pooling_convention="ceil"), r"pooling_convention"),
    (dict(), r"kernel must have 1, 2 or 3 dimensions \(or set global_pool=True\)"),
    (dict(kernel=(2, 2), stride=(2,)), r"stride \(2,\) has 1 values"),
])
def test_bad_attributes(kw, match):
    with pytest.raises((ValueError, TypeError), match=r"Pooling 'pb'.*" + match):
        rm.sym.Pooling(data(), name="pb", **kw)


@pytest.mark.parametrize("kw", [dict(kernel=(2, 2), stride=(2, 2)),             # tiles
                                dict(kernel=(2, 2), stride=(2, 2), pad=(1, 1)),
                                dict(kernel=(3, 3), stride=(1, 1))])           # overlaps
def test_second_step_gradient_has_no_stale_cells(ctx, rng, kw):
    sym = rm.sym.Pooling(data(), name="p", **kw)
    exe = sym.simple_bind(ctx, data=(1, 2, 4, 4))
    out_shape = exe.outputs[0].shape
    for _ in range(2):
        x = rng.normal(size=(1, 2, 4, 4)).astype(np.float32)
        gy = rng.normal(size=out_shape).astype(np.float32)
        exe.forward(is_train=True, data=x)
        exe.backward([ctx.xp.asarray(gy)])
    # the last step's gradient, from plain loops (first maximum of each window)
    expected = np.zeros_like(x)
    y = np_pool(x, kw["kernel"], kw["stride"], kw.get("pad", (0, 0)))
    xp_ = np.pad(x, ((0, 0), (0, 0)) + ((kw.get("pad", (0, 0))[0],) * 2,) * 2,
                 constant_values=-np.inf)
    k, s, p = kw["kernel"][0], kw["stride"][0], kw.get("pad", (0, 0))[0]
    for c in range(2):
        for i in range(y.shape[2]):
            for j in range(y.shape[3]):
                win = xp_[0, c, i * s:i * s + k, j * s:j * s + k]
                r, q = np.unravel_index(np.argmax(win), win.shape)
                expected[0, c, i * s + r - p, j * s + q - p] += gy[0, c, i, j]
    np.testing.assert_allclose(to_numpy(exe.grad_dict["data"]), expected, rtol=1e-6)
