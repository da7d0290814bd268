"""Optimizer steps work in place: the same weight and state arrays, no array allocated.

tests/kit/test_optimizer.py compares every optimizer with its reference
formula in float64; here the float32 arithmetic of SGD with momentum (the
step `fit` runs most) is pinned bit for bit, the formulas are checked without
weight decay (a path that skips the wd*weight passes), and steps are checked
to write into the arrays they were given and to allocate nothing.
"""
import tracemalloc

import numpy as np
import pytest

import raymod.optimizer as opt
from .test_optimizer import CASES, _case_id, _readonly, ref_adam, ref_adamax, ref_nadam, \
    ref_rmsprop, ref_sgd

NAMES = ["fc1_weight", "fc1_bias", "fc2_weight"]
SHAPES = [(200, 250), (500,), (30, 200)]


def _params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s).astype(dtype) for s in SHAPES]


def _grads(dtype, seed):
    return [_readonly(g) for g in _params(dtype, seed)]


def _arrays_of(state):
    if state is None:
        return []
    if isinstance(state, (tuple, list)):
        return [a for s in state for a in _arrays_of(s)]
    return [state]


def _address(a):
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_updater_steps_write_into_the_same_weight_and_state_arrays(case):
    name, kwargs = case[0], case[1]
    updater = opt.get_updater(opt.create(name, wd=0.01, **kwargs))
    weights = _params(np.float32)
    updater(NAMES, _grads(np.float32, 1), weights)         # creates the states
    ids = [id(w) for w in weights]
    states = {n: updater.states[n] for n in NAMES}
    arrays = [a for n in NAMES for a in _arrays_of(states[n])]
    where = [(id(a), _address(a)) for a in weights + arrays]
    before = [a.copy() for a in weights + arrays]
    for step in range(3):
        updater(NAMES, _grads(np.float32, 2 + step), weights)
    assert [id(w) for w in weights] == ids
    assert all(updater.states[n] is states[n] for n in NAMES)
    assert [(id(a), _address(a)) for a in weights + arrays] == where
    assert not any(np.array_equal(a, b) for a, b in zip(weights, before))   # they did change


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_step_allocates_no_array(case, dtype):
    """After the first step (states, scratch buffers) a step allocates nothing of a
    parameter's size: the smallest here, the bias, is 2,000 bytes in float32."""
    name, kwargs = case[0], case[1]
    updater = opt.get_updater(opt.create(name, wd=0.01, **kwargs))
    weights = _params(dtype)
    grads = _grads(dtype, 1)
    updater(NAMES, grads, weights)
    tracemalloc.start()
    try:
        updater(NAMES, grads, weights)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1900, f"{name} {kwargs}: {peak} bytes traced in one step"


def test_scratch_views_are_reused_and_follow_a_growing_buffer():
    o = opt.SGD(momentum=0.9)
    small, big = np.ones((4, 5), np.float32), np.ones(100, np.float32)
    first = o._buffers(small, 2)
    assert o._buffers(small, 2) is first                  # no new views per step
    (grown,) = o._buffers(big, 1)                          # slot 0 grows
    again = o._buffers(small, 2)
    assert again is not first and np.shares_memory(again[0], grown)
    buffers = [v for k, v in o._scratch.items() if len(k) == 5]
    assert len(buffers) == 2 and max(b.size for b in buffers) == 100


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_float32_arithmetic_is_pinned_bit_for_bit(momentum):
    """SGD's passes in float32, written out (MXNet's sgd_update / sgd_mom_update order):
    with momentum ``mom = momentum*mom - grad*(rescale*lr); w += mom``, without
    ``w *= 1 - lr*wd; w -= (grad*rescale)*lr``."""
    lr, rescale, wd = 0.1, 0.3, 0.0
    o = opt.SGD(learning_rate=lr, momentum=momentum, rescale_grad=rescale, wd=wd)
    w = np.random.default_rng(0).normal(size=(64, 32)).astype(np.float32)
    mine, ref = w.copy(), w.copy()
    state = o.create_state(0, mine)
    mom = np.zeros_like(ref)
    for step in range(4):
        grad = np.random.default_rng(step + 1).normal(size=w.shape).astype(np.float32)
        o.update(0, mine, _readonly(grad), state)
        if momentum:
            mom = mom * np.float32(momentum) - grad * np.float32(rescale * lr)
            ref = ref + mom
        else:
            ref = ref * np.float32(1.0 - lr * wd) - (grad * np.float32(rescale)) * np.float32(lr)
        assert np.array_equal(mine, ref), f"step {step}"


NO_WD = [("sgd", dict(momentum=0.9), ref_sgd, lambda s: np.zeros(s), dict(momentum=0.9)),
         ("adam", dict(), ref_adam, lambda s: (np.zeros(s), np.zeros(s)), dict()),
         ("rmsprop", dict(centered=True), ref_rmsprop, lambda s: tuple(np.zeros((3,) + s)),
          dict(centered=True)),
         ("adamax", dict(), ref_adamax, lambda s: (np.zeros(s), np.zeros(s)), dict()),
         ("nadam", dict(), ref_nadam, lambda s: (np.zeros(s), np.zeros(s)), dict())]


@pytest.mark.parametrize("case", NO_WD, ids=[c[0] for c in NO_WD])
def test_updates_without_weight_decay_match_the_formula(case):
    name, kwargs, ref, init_state, params = case
    lr, rescale = 0.05, 0.5
    o = opt.create(name, learning_rate=lr, rescale_grad=rescale, **kwargs)
    p = {"r": rescale, "kc": None, "pc": None, "m_schedule": 1.0, **params}
    rng = np.random.default_rng(3)
    w = rng.normal(size=(6, 5))
    ref_w, ref_st = w.copy(), init_state(w.shape)
    state = o.create_state(0, w)
    for t in range(1, 5):
        g = rng.normal(scale=2.0, size=w.shape)
        o.update(0, w, _readonly(g), state)
        ref_w, ref_st = ref(ref_w, g, ref_st, lr, 0.0, t, p)
        np.testing.assert_allclose(w, ref_w, rtol=1e-10, atol=1e-12, err_msg=f"step {t}")
