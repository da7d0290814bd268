"""BatchNorm: gradients in every mode, MXNet's CPU moving-statistics timing, fix_gamma, errors."""
import json

import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.test_utils import check_symbolic_backward, check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731
MM = np.array([0.1, -0.2, 0.3])
MV = np.array([0.5, 1.5, 2.0])
AUX = {"bn_moving_mean": MM, "bn_moving_var": MV}
SHAPES = {"data": (4, 3, 2), "bn_gamma": (3,), "bn_beta": (3,)}


def _bn(**kw):
    return lambda: rm.sym.BatchNorm(data(), name="bn", **kw)


GRAD_CASES = [
    GradCase("BatchNorm", "train-fix_gamma", _bn(), SHAPES, aux=AUX),
    GradCase("BatchNorm", "train-free-gamma", _bn(fix_gamma=False), SHAPES, aux=AUX),
    GradCase("BatchNorm", "train-axis-last-4d", _bn(fix_gamma=False, axis=-1, eps=1e-5),
             {"data": (2, 2, 3, 3), "bn_gamma": (3,), "bn_beta": (3,)}, aux=AUX),
    GradCase("BatchNorm", "train-2d", _bn(fix_gamma=False),
             {"data": (5, 3), "bn_gamma": (3,), "bn_beta": (3,)}, aux=AUX),
    GradCase("BatchNorm", "use_global_stats", _bn(fix_gamma=False, use_global_stats=True),
             SHAPES, aux=AUX),
    GradCase("BatchNorm", "inference", _bn(fix_gamma=False), SHAPES, aux=AUX,
             use_forward_train=False),
    GradCase("BatchNorm", "inference-fix_gamma", _bn(), SHAPES, aux=AUX,
             use_forward_train=False),
    # mean/var outputs carry no gradient in MXNet: check the main output only
    GradCase("BatchNorm", "output_mean_var",
             lambda: rm.sym.BatchNorm(data(), fix_gamma=False, output_mean_var=True,
                                      name="bn")[0], SHAPES, aux=AUX),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


# --------------------------------------------------------------------------- reference

def np_bn_train(x, gamma, beta, eps, axis=1):
    axes = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
    shape = [1] * x.ndim
    shape[axis % x.ndim] = -1
    mean = x.mean(axis=axes)
    var = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)        # biased
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return y * gamma.reshape(shape) + beta.reshape(shape), mean, var


def _bind(ctx, sym, x, gamma, beta, mm=MM, mv=MV):
    exe = sym.simple_bind(ctx, data=x.shape)
    for name, v in (("data", x), ("bn_gamma", gamma), ("bn_beta", beta)):
        exe.arg_dict[name][...] = ctx.xp.asarray(v.astype(np.float32))
    exe.aux_dict["bn_moving_mean"][...] = ctx.xp.asarray(mm.astype(np.float32))
    exe.aux_dict["bn_moving_var"][...] = ctx.xp.asarray(mv.astype(np.float32))
    return exe


def test_train_forward_matches_numpy(ctx, rng):
    x = rng.normal(size=(4, 3, 5))
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    sym = rm.sym.BatchNorm(data(), fix_gamma=False, eps=1e-3, name="bn")
    exe = _bind(ctx, sym, x, gamma, beta)
    out = to_numpy(exe.forward(is_train=True)[0])
    np.testing.assert_allclose(out, np_bn_train(x, gamma, beta, 1e-3)[0], rtol=1e-4,
                               atol=1e-5)


def test_moving_stats_move_in_backward_not_forward(ctx, rng):
    """[verified, Q8] unchanged after a training forward, updated after backward."""
    x = rng.normal(size=(6, 3, 4)) * 2 + 1
    gamma, beta = np.ones(3), np.zeros(3)
    sym = rm.sym.BatchNorm(data(), momentum=0.8, name="bn")
    exe = _bind(ctx, sym, x, gamma, beta)
    exe.forward(is_train=True)
    np.testing.assert_allclose(to_numpy(exe.aux_dict["bn_moving_mean"]), MM, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(exe.aux_dict["bn_moving_var"]), MV, rtol=1e-6)
    exe.backward([ctx.xp.ones(x.shape, dtype=np.float32)])
    _, mean, var = np_bn_train(x, gamma, beta, 1e-3)
    np.testing.assert_allclose(to_numpy(exe.aux_dict["bn_moving_mean"]),
                               MM * 0.8 + mean * 0.2, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(exe.aux_dict["bn_moving_var"]),
                               MV * 0.8 + var * 0.2, rtol=1e-5)


def test_backward_after_inference_forward_leaves_moving_stats(ctx, rng):
    x = rng.normal(size=(4, 3, 2))
    sym = rm.sym.BatchNorm(data(), name="bn")
    exe = _bind(ctx, sym, x, np.ones(3), np.zeros(3))
    exe.forward(is_train=False)
    exe.backward([ctx.xp.ones(x.shape, dtype=np.float32)])
    np.testing.assert_allclose(to_numpy(exe.aux_dict["bn_moving_mean"]), MM, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(exe.aux_dict["bn_moving_var"]), MV, rtol=1e-6)


def test_use_global_stats_never_moves_the_stats(ctx, rng):
    x = rng.normal(size=(4, 3, 2))
    sym = rm.sym.BatchNorm(data(), use_global_stats=True, name="bn")
    exe = _bind(ctx, sym, x, np.ones(3), np.zeros(3))
    exe.forward(is_train=True)
    exe.backward([ctx.xp.ones(x.shape, dtype=np.float32)])
    np.testing.assert_allclose(to_numpy(exe.aux_dict["bn_moving_mean"]), MM, rtol=1e-6)


def test_inference_uses_moving_stats(ctx, rng):
    x = rng.normal(size=(2, 3, 4))
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    sym = rm.sym.BatchNorm(data(), fix_gamma=False, eps=1e-3, name="bn")
    expected = (x - MM.reshape(1, 3, 1)) / np.sqrt(MV.reshape(1, 3, 1) + 1e-3) \
        * gamma.reshape(1, 3, 1) + beta.reshape(1, 3, 1)
    check_symbolic_forward(sym, [x, gamma, beta], [expected], aux_states=[MM, MV], ctx=ctx,
                           dtype=np.float64, rtol=1e-10)


def test_inference_backward(ctx, rng):
    x = rng.normal(size=(2, 3, 4))
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    gy = rng.normal(size=x.shape)
    sym = rm.sym.BatchNorm(data(), fix_gamma=False, use_global_stats=True, name="bn")
    invstd = 1 / np.sqrt(MV + 1e-3)
    expected = {"data": gy * (gamma * invstd).reshape(1, 3, 1),
                "bn_gamma": ((x - MM.reshape(1, 3, 1)) * gy).sum(axis=(0, 2)) * invstd,
                "bn_beta": gy.sum(axis=(0, 2))}
    check_symbolic_backward(sym, [x, gamma, beta], [gy], expected, aux_states=[MM, MV],
                            ctx=ctx, dtype=np.float64, rtol=1e-10)


def test_fix_gamma_overwrites_gamma_and_zeroes_its_gradient(ctx, rng):
    x = rng.normal(size=(4, 3, 2))
    gamma = np.array([2.0, -3.0, 0.5])
    beta = rng.normal(size=3)
    sym = rm.sym.BatchNorm(data(), name="bn")          # fix_gamma=True by default
    exe = _bind(ctx, sym, x, gamma, beta)
    out = to_numpy(exe.forward(is_train=True)[0])
    np.testing.assert_allclose(to_numpy(exe.arg_dict["bn_gamma"]), np.ones(3))
    np.testing.assert_allclose(out, np_bn_train(x, np.ones(3), beta, 1e-3)[0], rtol=1e-4,
                               atol=1e-5)
    exe.grad_dict["bn_gamma"][...] = 5.0
    exe.backward([ctx.xp.asarray(rng.normal(size=x.shape).astype(np.float32))])
    np.testing.assert_array_equal(to_numpy(exe.grad_dict["bn_gamma"]), np.zeros(3))


def test_output_mean_var_exposes_mean_and_inverse_std(ctx, rng):
    x = rng.normal(size=(5, 3))
    sym = rm.sym.BatchNorm(data(), output_mean_var=True, eps=1e-3, name="bn")
    assert sym.list_outputs() == ["bn_output", "bn_mean", "bn_var"]
    exe = _bind(ctx, sym, x, np.ones(3), np.zeros(3))
    _, mean, var = (to_numpy(a) for a in exe.forward(is_train=True))
    _, ref_mean, ref_var = np_bn_train(x, np.ones(3), np.zeros(3), 1e-3, axis=1)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-5, atol=1e-6)
    # MXNet's CPU kernel stores 1/sqrt(var + eps) in the var output
    np.testing.assert_allclose(var, 1 / np.sqrt(ref_var + 1e-3), rtol=1e-5)
    _, mean, var = (to_numpy(a) for a in exe.forward(is_train=False))
    np.testing.assert_allclose(mean, MM, rtol=1e-6)
    np.testing.assert_allclose(var, 1 / np.sqrt(MV + 1e-3), rtol=1e-5)


# --------------------------------------------------------------------------- structure

def test_arguments_aux_states_and_init_attributes():
    sym = rm.sym.BatchNorm(data(), name="bn1")
    assert sym.list_arguments() == ["data", "bn1_gamma", "bn1_beta"]
    assert sym.list_auxiliary_states() == ["bn1_moving_mean", "bn1_moving_var"]
    assert sym.list_outputs() == ["bn1_output"]
    attrs = sym.attr_dict()
    assert attrs["bn1_moving_mean"]["__init__"] == '["zero", {}]'
    assert attrs["bn1_moving_var"]["__init__"] == '["one", {}]'


def test_json_counts_two_hidden_outputs():
    graph = json.loads(rm.sym.BatchNorm(data(), name="bn").tojson())
    ptr = graph["node_row_ptr"]
    assert ptr[-1] - ptr[-2] == 3
    with_mean_var = json.loads(rm.sym.BatchNorm(data(), output_mean_var=True).tojson())
    assert with_mean_var["node_row_ptr"][-1] - with_mean_var["node_row_ptr"][-2] == 3


def test_shapes_and_float16_parameters():
    sym = rm.sym.BatchNorm(data(), axis=-1, name="bn")
    args, outs, aux = sym.infer_shape(data=(2, 5, 7))
    assert args == [(2, 5, 7), (7,), (7,)] and aux == [(7,), (7,)] and outs == [(2, 5, 7)]
    arg_t, out_t, aux_t = rm.sym.BatchNorm(data(), name="bn").infer_type(data=np.float16)
    assert arg_t == [np.float16, np.float32, np.float32] and aux_t == [np.float32] * 2
    assert out_t == [np.float16]


def test_axis_out_of_range():
    sym = rm.sym.BatchNorm(data(), axis=3, name="bna")
    with pytest.raises(MXNetError, match=r"BatchNorm 'bna': axis 3 is out of range for data "
                                         r"with 3 dimensions"):
        sym.infer_shape(data=(2, 3, 4))


def test_gamma_shape_mismatch():
    sym = rm.sym.BatchNorm(data(), name="bng")
    with pytest.raises(MXNetError, match=r"BatchNorm 'bng': gamma: expected shape \(3,\) "
                                         r"\(data has 3 channels.*received \(4,\)"):
        sym.infer_shape(data=(2, 3, 4), bng_gamma=(4,))


def test_bad_eps():
    with pytest.raises(ValueError, match=r"BatchNorm 'bne': eps must be > 0"):
        rm.sym.BatchNorm(data(), eps=0, name="bne")


def test_fix_gamma_leaves_a_read_only_gamma_alone():
    """Inputs may be read-only (e.g. arrays from the object store): use 1 without writing."""
    from raymod.ops import get_op_class
    from raymod.ops.base import Workspace
    op = get_op_class("BatchNorm")(node_name="bn")
    x = np.random.default_rng(0).normal(size=(4, 2))
    gamma = np.array([3.0, 4.0])
    gamma.flags.writeable = False
    y = np.empty_like(x)
    op.forward(np, [x, gamma, np.zeros(2), np.zeros(2), np.ones(2)], [y], Workspace(np), True)
    np.testing.assert_array_equal(gamma, [3.0, 4.0])
    np.testing.assert_allclose(y, np_bn_train(x, np.ones(2), np.zeros(2), 1e-3)[0])
