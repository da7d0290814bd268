"""Pooling's faster paths (raymod/ops/pooling.py): reductions one axis at a time, and the
strided max backward on stride phases, against plain loops (first maximum in row-major
order, MXNet's rule) at sizes small enough to check, with the width threshold lowered."""
import itertools

import numpy as np
import pytest

import raymod as rm
from raymod.context import to_numpy
from raymod.ops import pooling as pooling_module
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731


def _pool(**kw):
    return lambda: rm.sym.Pooling(data(), name="pool", **kw)


GRAD_CASES = [
    GradCase("Pooling", "avg-3x3-separable-s1", _pool(kernel=(3, 3), pad=(1, 1),
                                                      pool_type="avg"),
             {"data": (1, 2, 4, 5)}),
    GradCase("Pooling", "sum-3x2x2-separable", _pool(kernel=(3, 2, 2), stride=(2, 1, 2),
                                                     pool_type="sum"),
             {"data": (1, 1, 5, 3, 4)}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


@pytest.fixture(params=["phases", "strided"])
def max_backward(request, monkeypatch):
    monkeypatch.setattr(pooling_module, "PHASES_MIN_WIDTH",
                        0 if request.param == "phases" else 10**9)
    return request.param


def loop_max_pool(x, kernel, stride, pad, out_spatial):
    """y and a function gy -> dx, with plain loops over windows (first maximum)."""
    d = len(kernel)
    widths = [(0, 0), (0, 0)] + [(p, n * s + k - S - p if n * s + k > S + p else p)
                                 for p, s, k, n, S in zip(pad, stride, kernel, out_spatial,
                                                          x.shape[2:])]
    xpad = np.pad(x, [(lo, max(hi, 0)) for lo, hi in widths], constant_values=-np.inf)
    N, C = x.shape[:2]
    y = np.empty((N, C) + tuple(out_spatial))
    first = {}
    for n, c in itertools.product(range(N), range(C)):
        for pos in itertools.product(*(range(o) for o in out_spatial)):
            start = [q * s for q, s in zip(pos, stride)]
            win = xpad[(n, c) + tuple(slice(a, a + k) for a, k in zip(start, kernel))]
            off = np.unravel_index(np.argmax(win), win.shape)   # argmax: first maximum
            y[(n, c) + pos] = win[off]
            first[(n, c) + pos] = tuple(a + o - p for a, o, p in zip(start, off, pad))

    def backward(gy):
        gx = np.zeros_like(x)
        for key, target in first.items():
            if all(0 <= t < S for t, S in zip(target, x.shape[2:])):
                gx[key[:2] + target] += gy[key]
        return gx
    assert d == len(stride)
    return y, backward


@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 9, 8), dict(kernel=(3, 3), stride=(2, 2), pad=(1, 1))),
    ((1, 2, 8, 8), dict(kernel=(2, 2), stride=(2, 2))),
    ((1, 2, 9, 7), dict(kernel=(3, 2), stride=(2, 3))),
    ((2, 1, 11), dict(kernel=(3,), stride=(2,), pooling_convention="full")),
    ((1, 1, 5, 6, 7), dict(kernel=(2, 3, 3), stride=(2, 2, 3), pad=(1, 0, 1))),
])
def test_max_forward_and_backward_match_loops(ctx, rng, shape, kw, max_backward):
    # small integers: many ties, and all-equal windows, take MXNet's first-maximum rule
    x = rng.integers(0, 3, size=shape).astype(np.float64)
    sym = rm.sym.Pooling(data(), name="p", **kw)
    exe = sym.simple_bind(ctx, data=shape, type_dict={"data": np.float64})
    for _ in range(2):                       # a second step must leave nothing stale
        x = rng.integers(0, 3, size=shape).astype(np.float64)
        y = to_numpy(exe.forward(is_train=True, data=x)[0])
        gy = rng.normal(size=y.shape)
        exe.backward([ctx.xp.asarray(gy)])
    ref_y, ref_backward = loop_max_pool(x, kw["kernel"], kw["stride"],
                                        kw.get("pad", (0,) * len(kw["kernel"])), y.shape[2:])
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_allclose(to_numpy(exe.grad_dict["data"]), ref_backward(gy), rtol=1e-12)
