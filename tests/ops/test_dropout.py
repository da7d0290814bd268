"""Dropout: mask statistics, dx = dy * mask, modes, axes, seeding, errors.

Finite differences need the same mask in every evaluation, so the gradient
cases use the deterministic settings (p=0, inference); the random mask's
gradient is checked directly against the mask read back from the forward.
"""
import json

import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.ops import get_op_class
from raymod.ops.base import Workspace
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731


def _drop(**kw):
    return lambda: rm.sym.Dropout(data(), name="drop", **kw)


GRAD_CASES = [
    GradCase("Dropout", "train-p0", _drop(p=0.0), {"data": (3, 4)}),
    GradCase("Dropout", "inference-identity", _drop(p=0.5), {"data": (3, 4)},
             use_forward_train=False),
    GradCase("Dropout", "always-p0-inference", _drop(p=0.0, mode="always"), {"data": (2, 3)},
             use_forward_train=False),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


def _run(ctx, sym, x, is_train=True, gy=None):
    exe = sym.simple_bind(ctx, data=x.shape)
    y = to_numpy(exe.forward(is_train=is_train, data=x)[0])
    if gy is None:
        return y, None
    exe.backward([ctx.xp.asarray(gy)])
    return y, to_numpy(exe.grad_dict["data"])


def test_training_mask_and_gradient(ctx, rng):
    x = rng.uniform(1, 2, size=(200, 50)).astype(np.float32)       # nonzero: mask = y / x
    gy = rng.normal(size=x.shape).astype(np.float32)
    y, gx = _run(ctx, rm.sym.Dropout(data(), p=0.3, name="d"), x, True, gy)
    mask = y / x
    scale = np.float32(1 / 0.7)
    assert np.all(np.isclose(mask, 0) | np.isclose(mask, scale))
    kept = np.isclose(mask, scale).mean()
    assert abs(kept - 0.7) < 0.02                      # 10000 draws: ~5 sigma margin
    np.testing.assert_allclose(gx, gy * mask, rtol=1e-6)


def test_identity_when_not_training(ctx, rng):
    x = rng.normal(size=(4, 5)).astype(np.float32)
    gy = rng.normal(size=x.shape).astype(np.float32)
    y, gx = _run(ctx, rm.sym.Dropout(data(), p=0.9, name="d"), x, False, gy)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(gx, gy)


def test_mode_always_drops_in_inference(ctx, rng):
    x = np.ones((50, 40), dtype=np.float32)
    y, _ = _run(ctx, rm.sym.Dropout(data(), p=0.5, mode="always", name="d"), x, False)
    assert set(np.unique(y)) == {0.0, 2.0}


def test_axes_share_the_mask(ctx, rng):
    x = np.ones((6, 5, 8), dtype=np.float32)
    y, _ = _run(ctx, rm.sym.Dropout(data(), p=0.5, axes=(1,), name="d"), x)
    assert np.all(y == y[:, :1, :])               # constant along axis 1
    assert len(np.unique(y)) == 2                  # yet random elsewhere


def test_p_one_drops_everything(ctx):
    y, gx = _run(ctx, rm.sym.Dropout(data(), p=1.0, name="d"), np.ones((3, 3), np.float32),
                 True, np.ones((3, 3), np.float32))
    assert not y.any() and not gx.any()


def test_masks_change_between_steps_and_follow_the_seed(ctx):
    sym = rm.sym.Dropout(data(), p=0.5, name="d")
    x = np.ones((20, 20), dtype=np.float32)
    rm.random.seed(11)
    exe = sym.simple_bind(ctx, data=x.shape)
    first = to_numpy(exe.forward(is_train=True, data=x)[0]).copy()
    second = to_numpy(exe.forward(is_train=True, data=x)[0]).copy()
    assert not np.array_equal(first, second)
    rm.random.seed(11)
    again = sym.simple_bind(ctx, data=x.shape)
    np.testing.assert_array_equal(to_numpy(again.forward(is_train=True, data=x)[0]), first)


def test_workspace_without_rng_uses_a_fixed_seed():
    op = get_op_class("Dropout")(node_name="d", p=0.5)
    x = np.ones((10, 10))
    runs = []
    for _ in range(2):
        ws, y = Workspace(np), np.empty_like(x)
        op.forward(np, [x], [y], ws, True)
        assert ws.rng is not None
        runs.append(y)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_one_hidden_output_in_json():
    graph = json.loads(rm.sym.Dropout(data(), name="d").tojson())
    assert graph["node_row_ptr"][-1] - graph["node_row_ptr"][-2] == 2


def test_bad_input():
    with pytest.raises(ValueError, match=r"Dropout 'd': p must be in \[0, 1\], received 1.5"):
        rm.sym.Dropout(data(), p=1.5, name="d")
    with pytest.raises(ValueError, match=r"Dropout 'd'.*mode"):
        rm.sym.Dropout(data(), mode="sometimes", name="d")
    sym = rm.sym.Dropout(data(), axes=(2,), name="da")
    with pytest.raises(MXNetError, match=r"Dropout 'da': axes \(2,\): axis 2 is out of range "
                                         r"for data shape \(3, 4\)"):
        sym.infer_shape(data=(3, 4))
