"""LRN: gradients, MXNet 1.9.1's numbers, a loop reference of the documented formula, errors."""
import json

import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.name import NameManager
from raymod.test_utils import check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731


def _lrn(**kw):
    return lambda: rm.sym.LRN(data(), name="lrn", **kw)


GRAD_CASES = [
    GradCase("LRN", "nsize5-defaults", _lrn(nsize=5), {"data": (2, 7, 3, 2)}),
    GradCase("LRN", "nsize3-strong", _lrn(nsize=3, alpha=0.5, beta=0.6, knorm=1.5),
             {"data": (2, 4, 2, 3)}),
    GradCase("LRN", "window-wider-than-channels", _lrn(nsize=9, alpha=0.3),
             {"data": (1, 3, 2, 2)}),
    GradCase("LRN", "nsize1-2d", _lrn(nsize=1, alpha=0.7, beta=1.2, knorm=1.0),
             {"data": (3, 5)}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


def reference_lrn(x, nsize, alpha, beta, knorm):
    """MXNet's documented formula, one channel at a time."""
    y = np.empty_like(x)
    C, half = x.shape[1], nsize // 2
    for c in range(C):
        lo, hi = max(0, c - half), min(C - 1, c + half)
        acc = np.sum(x[:, lo:hi + 1] ** 2, axis=1)
        y[:, c] = x[:, c] / (knorm + alpha / nsize * acc) ** beta
    return y


@pytest.mark.parametrize("nsize", [1, 3, 5, 11])
def test_forward_matches_the_formula(ctx, rng, nsize):
    x = rng.normal(size=(2, 6, 3, 4))
    sym = rm.sym.LRN(data(), nsize=nsize, alpha=0.2, beta=0.7, knorm=1.3)
    check_symbolic_forward(sym, [x], [reference_lrn(x, nsize, 0.2, 0.7, 1.3)], rtol=1e-12,
                           ctx=ctx, dtype=np.float64)


def test_mxnet_numbers(ctx):
    """[verified] mxnet 1.9.1 (oneDNN and native kernels agree), float32."""
    x = ((np.arange(40).reshape(2, 5, 2, 2) - 20) / 10).astype(np.float32)
    gy = np.cos(np.arange(40)).reshape(x.shape).astype(np.float32)
    sym = rm.sym.LRN(data(), nsize=3, alpha=0.1, beta=0.75, knorm=2, name="n")
    y = check_symbolic_forward(sym, [x], [reference_lrn(x, 3, 0.1, 0.75, 2)], ctx=ctx)[0]
    np.testing.assert_allclose(y[0, :, 0, 0], [-1.1001729, -0.86612236, -0.6747551,
                                               -0.46278444, -0.23549043], rtol=1e-6)
    np.testing.assert_allclose(y[1, :, 1, 1], [0.17709865, 0.40714616, 0.62352407,
                                               0.82041943, 1.0534847], rtol=1e-6)
    exe = sym.simple_bind(ctx, data=x.shape)
    exe.forward(is_train=True, data=x)
    exe.backward([ctx.xp.asarray(gy)])
    gx = to_numpy(exe.grad_dict["data"])
    np.testing.assert_allclose(gx[0, :, 0, 0], [0.52547586, -0.36987785, -0.07538828,
                                                0.48689738, -0.56533825], rtol=1e-5)
    np.testing.assert_allclose(gx[1, :, 1, 1], [-0.31297952, -0.17562693, 0.52521205,
                                                -0.49906328, 0.16719313], rtol=1e-5)


def test_names_and_hidden_output():
    with NameManager():
        sym = rm.sym.LRN(data(), nsize=5)
    assert sym.name == "lrn0"
    assert sym.list_arguments() == ["data"] and sym.list_outputs() == ["lrn0_output"]
    # MXNet counts the hidden tmp_norm output in the JSON's node_row_ptr
    assert json.loads(sym.tojson())["node_row_ptr"] == [0, 1, 3]


@pytest.mark.parametrize("nsize", [0, 4, -3])
def test_nsize_must_be_odd_and_positive(nsize):
    with pytest.raises(ValueError, match=f"LRN 'l': nsize must be a positive odd number.*"
                                         f"received {nsize}"):
        rm.sym.LRN(data(), nsize=nsize, name="l")


def test_nsize_is_required():
    with pytest.raises(TypeError, match="required attribute 'nsize'"):
        rm.sym.LRN(data(), name="l")


def test_data_needs_a_channel_axis():
    with pytest.raises(MXNetError, match=r"LRN 'l': data: expected at least 2 dimensions"):
        rm.sym.LRN(data(), nsize=3, name="l").infer_shape(data=(5,))
