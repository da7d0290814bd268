"""raymod.optimizer against independent plain-numpy versions of MXNet's documented formulas.

Each `ref_*` below is written from the reference's formula table (section 10.6),
in float64, functionally (new arrays each step); the optimizers under test work
in place with scratch buffers. Several steps are compared, with weight decay,
clipping, rescale_grad and lr/wd multipliers, on read-only gradients.
"""
import math
import pickle
import tracemalloc
import warnings

import numpy as np
import pytest

import raymod.optimizer as opt
from raymod.context import to_numpy
from raymod.lr_scheduler import FactorScheduler


# ---------------------------------------------------------------- references
def _clip(x, c):
    return x if c is None else np.clip(x, -c, c)


def ref_sgd(w, g, st, lr, wd, t, p):
    G = _clip(p["r"] * g, p["kc"])
    if p["momentum"] == 0:
        return (1 - lr * wd) * w - lr * G, st
    mom = p["momentum"] * st - lr * wd * w - lr * G
    return w + mom, mom


def ref_nag(w, g, st, lr, wd, t, p):
    if p["momentum"] == 0:
        return ref_sgd(w, g, st, lr, wd, t, p)
    G = _clip(p["r"] * g, p["kc"])
    m1 = p["momentum"] * st
    w_new = w - m1 + (1 + p["momentum"]) * (m1 - lr * (G + wd * w))
    mom = m1 - lr * (G + wd * w_new)
    return w_new, mom


def ref_adam(w, g, st, lr, wd, t, p):
    b1, b2, eps = 0.9, 0.999, 1e-8
    mean, var = st
    lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    G = _clip(p["r"] * g + wd * w, p["kc"])
    mean = b1 * mean + (1 - b1) * G
    var = b2 * var + (1 - b2) * G ** 2
    return w - lr_t * mean / (np.sqrt(var) + eps), (mean, var)


def ref_rmsprop(w, g, st, lr, wd, t, p):
    g1, g2, eps = 0.9, 0.9, 1e-8
    G = _clip(p["r"] * g + wd * w, p["kc"])
    if not p.get("centered"):
        (n,) = st
        n = (1 - g1) * G ** 2 + g1 * n
        w = w - lr * G / np.sqrt(n + eps)
        st = (n,)
    else:
        n, gav, delta = st
        n = (1 - g1) * G ** 2 + g1 * n
        gav = (1 - g1) * G + g1 * gav
        delta = g2 * delta - lr * G / np.sqrt(n - gav ** 2 + eps)
        w = w + delta
        st = (n, gav, delta)
    if p.get("clip_weights"):
        w = np.clip(w, -p["clip_weights"], p["clip_weights"])
    return w, st


def ref_adagrad(w, g, st, lr, wd, t, p):
    G = _clip(p["r"] * g, p["pc"])
    hist = st + G ** 2
    return w - lr * (G / np.sqrt(hist + 1e-7) + wd * w), hist


def ref_adadelta(w, g, st, lr, wd, t, p):
    rho, eps = 0.9, 1e-5
    acc_g, acc_d = st
    G = _clip(p["r"] * g, p["pc"])
    acc_g = rho * acc_g + (1 - rho) * G ** 2
    d = np.sqrt(acc_d + eps) / np.sqrt(acc_g + eps) * G
    acc_d = rho * acc_d + (1 - rho) * d ** 2
    return w - (d + wd * w), (acc_g, acc_d)


def ref_adamax(w, g, st, lr, wd, t, p):
    b1, b2 = 0.9, 0.999
    m, u = st
    G = _clip(p["r"] * g + wd * w, p["pc"])
    m = b1 * m + (1 - b1) * G
    u = np.maximum(b2 * u, np.abs(G))
    return w - lr / (1 - b1 ** t) * m / u, (m, u)


def ref_nadam(w, g, st, lr, wd, t, p):
    b1, b2, eps, sd = 0.9, 0.999, 1e-8, 0.004
    m, v = st
    G = _clip(p["r"] * g + wd * w, p["pc"])
    mom_t = b1 * (1 - 0.5 * 0.96 ** (t * sd))
    mom_t1 = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * sd))
    p["m_schedule"] *= mom_t          # one schedule shared by all parameters (MXNet)
    m_sched_next = p["m_schedule"] * mom_t1
    m = b1 * m + (1 - b1) * G
    v = b2 * v + (1 - b2) * G ** 2
    m_bar = (1 - mom_t) * G / (1 - p["m_schedule"]) + mom_t1 * m / (1 - m_sched_next)
    v_prime = v / (1 - b2 ** t)
    return w - lr * m_bar / (np.sqrt(v_prime) + eps), (m, v)


def _zeros(shape, n):
    return tuple(np.zeros(shape) for _ in range(n)) if n > 1 else np.zeros(shape)


# name, kwargs, reference, initial state factory, params for the reference
CASES = [
    ("sgd", dict(), ref_sgd, lambda s: None, dict(momentum=0)),
    ("sgd", dict(momentum=0.9), ref_sgd, lambda s: np.zeros(s), dict(momentum=0.9)),
    ("sgd", dict(momentum=0.9, clip_gradient=0.5), ref_sgd, lambda s: np.zeros(s),
     dict(momentum=0.9, kc=0.5)),
    ("nag", dict(), ref_nag, lambda s: None, dict(momentum=0)),
    ("nag", dict(momentum=0.8, clip_gradient=0.5), ref_nag, lambda s: np.zeros(s),
     dict(momentum=0.8, kc=0.5)),
    ("adam", dict(), ref_adam, lambda s: _zeros(s, 2), dict()),
    ("adam", dict(clip_gradient=0.3), ref_adam, lambda s: _zeros(s, 2), dict(kc=0.3)),
    ("rmsprop", dict(), ref_rmsprop, lambda s: (np.zeros(s),), dict()),
    ("rmsprop", dict(centered=True, clip_gradient=0.4, clip_weights=0.6), ref_rmsprop,
     lambda s: _zeros(s, 3), dict(centered=True, kc=0.4, clip_weights=0.6)),
    ("adagrad", dict(), ref_adagrad, lambda s: np.zeros(s), dict()),
    ("adagrad", dict(clip_gradient=0.5), ref_adagrad, lambda s: np.zeros(s), dict(pc=0.5)),
    ("adadelta", dict(), ref_adadelta, lambda s: _zeros(s, 2), dict()),
    ("adadelta", dict(clip_gradient=0.5), ref_adadelta, lambda s: _zeros(s, 2), dict(pc=0.5)),
    ("adamax", dict(clip_gradient=0.5), ref_adamax, lambda s: _zeros(s, 2), dict(pc=0.5)),
    ("nadam", dict(clip_gradient=0.5), ref_nadam, lambda s: _zeros(s, 2), dict(pc=0.5)),
]
DEFAULT_LR = {"sgd": 0.01, "nag": 0.01, "adam": 0.001, "rmsprop": 0.001, "adagrad": 0.01,
              "adadelta": 0.01, "adamax": 0.002, "nadam": 0.001}


def _case_id(case):
    return f"{case[0]}-" + "-".join(f"{k}={v}" for k, v in case[1].items())


def _readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_update_matches_reference_formula(case, ctx):
    """Four steps on a weight and a bias keyed by name, with wd, rescale and multipliers."""
    name, kwargs, ref, init_state, params = case
    xp = ctx.xp
    rng = np.random.default_rng(1)
    shapes = {"fc_weight": (3, 4), "fc_bias": (3,)}
    r, wd, lr = 0.5, 0.05, 0.1
    o = opt.create(name, learning_rate=lr, wd=wd, rescale_grad=r,
                   param_idx2name={"fc_weight": "fc_weight", "fc_bias": "fc_bias"}, **kwargs)
    o.set_lr_mult({"fc_weight": 0.5})
    o.set_wd_mult({"fc_weight": 2.0})
    p = {"r": r, "kc": None, "pc": None, "m_schedule": 1.0, **params}
    # per-name lr/wd: bias gets no wd (name rule), weight has both multipliers
    lrs = {"fc_weight": lr * 0.5, "fc_bias": lr}
    wds = {"fc_weight": wd * 2.0, "fc_bias": 0.0}
    ref_w = {k: rng.normal(size=s) for k, s in shapes.items()}
    ref_st = {k: init_state(s) for k, s in shapes.items()}
    weights = {k: xp.asarray(v.copy()) for k, v in ref_w.items()}
    states = {k: o.create_state(k, weights[k]) for k in shapes}
    for t in range(1, 5):
        for k, shape in shapes.items():
            g = rng.normal(scale=2.0, size=shape)
            grad = _readonly(g) if xp is np else xp.asarray(g)
            o.update(k, weights[k], grad, states[k])
            ref_w[k], ref_st[k] = ref(ref_w[k], g, ref_st[k], lrs[k], wds[k], t, p)
            np.testing.assert_allclose(to_numpy(weights[k]), ref_w[k], rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name} {k} step {t}")
    assert o.num_update == 4


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_update_allocates_only_small_temporaries(case):
    name, kwargs = case[0], case[1]
    o = opt.create(name, wd=0.01, **kwargs)
    w = np.random.default_rng(0).normal(size=(200, 250))
    g = _readonly(np.random.default_rng(1).normal(size=w.shape))
    st = o.create_state(0, w)
    o.update(0, w, g, st)  # warm-up creates the reusable scratch buffers
    tracemalloc.start()
    try:
        o.update(0, w, g, st)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < w.nbytes / 10, f"{name} allocated {peak} bytes in one step"


@pytest.mark.parametrize("name", sorted(DEFAULT_LR))
def test_default_learning_rates(name):
    assert opt.create(name).learning_rate == DEFAULT_LR[name]


def test_create_registry_and_errors():
    assert isinstance(opt.create("SGD", momentum=0.9), opt.SGD)
    assert type(opt.Optimizer.create_optimizer("ccsgd")) is opt.ccSGD
    with pytest.raises(ValueError, match="Cannot find optimizer nosuch"):
        opt.create("nosuch")
    with pytest.raises(TypeError, match="param_idx2name"):
        opt.SGD(param_idx2name=[("a", "b")])
    with pytest.raises(TypeError):
        opt.SGD(not_an_argument=1)


def test_register_custom_and_override_warning():
    @opt.register
    class MyTestOptimizerX(opt.Optimizer):
        def update(self, index, weight, grad, state):
            weight -= grad

    try:
        o = opt.create("mytestoptimizerx")
        w = np.ones(2)
        o.update(0, w, np.ones(2), None)
        np.testing.assert_array_equal(w, [0, 0])
        with pytest.warns(UserWarning, match="overriding existing optimizer"):
            opt.register(type("MyTestOptimizerX", (opt.Optimizer,), {}))
    finally:
        del opt.Optimizer.opt_registry["mytestoptimizerx"]


def test_scheduler_and_learning_rate_rules():
    sched = FactorScheduler(step=2, factor=0.5, base_lr=1.0)
    with pytest.warns(UserWarning, match="overwritten by ``learning_rate``"):
        o = opt.SGD(learning_rate=0.5, lr_scheduler=sched)
    assert sched.base_lr == 0.5
    with pytest.raises(UserWarning, match="LRScheduler of the optimizer has already been"):
        o.set_learning_rate(0.1)
    # without learning_rate the scheduler's base_lr stays
    sched2 = FactorScheduler(step=2, factor=0.5, base_lr=1.0)
    o2 = opt.SGD(lr_scheduler=sched2)
    assert o2.lr is None and sched2.base_lr == 1.0
    w = np.zeros(1)
    lrs = []
    for _ in range(5):
        o2.update(0, w, np.ones(1), None)
        lrs.append(-w[0])
        w[0] = 0.0
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert o2.learning_rate == 0.25
    # Adam's own default learning_rate (0.001) overrides a scheduler's base_lr (MXNet 1.9)
    sched3 = FactorScheduler(step=10, base_lr=0.2)
    with pytest.warns(UserWarning):
        opt.Adam(lr_scheduler=sched3)
    assert sched3.base_lr == 0.001
    o4 = opt.SGD(learning_rate=0.3)
    o4.set_learning_rate(0.7)
    assert o4.learning_rate == 0.7


class _FakeSym:
    """attr_dict()/list_arguments() of MXNet's test_lr_wd_mult network."""

    def attr_dict(self):
        return {"fc1_weight": {"__lr_mult__": "0"}, "fc1_bias": {"__lr_mult__": "1.0"},
                "fc2_weight": {"__wd_mult__": "0.5"}, "fc2_bias": {"__wd_mult__": "0.5"},
                "fc1": {"__lr_mult__": "0", "num_hidden": "10"}}

    def list_arguments(self):
        return ["data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]


def test_lr_wd_mult_from_symbol_attributes():
    names = ["data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]
    idx2name = {i: n for i, n in enumerate(names[1:])}
    o = opt.create("sgd", sym=_FakeSym(), param_idx2name=idx2name, learning_rate=1.0, wd=0.1)
    assert o.lr_mult == {"fc1_bias": 1.0, "fc1_weight": 0.0}
    assert o.wd_mult == {"fc2_bias": 0.5, "fc2_weight": 0.5, "fc1_bias": 0.0}
    # lookups by int index go through idx2name; unknown indices get 1.0
    assert [o._get_lr(i) for i in range(4)] == [0.0, 1.0, 1.0, 1.0]
    assert [o._get_wd(i) for i in range(4)] == [0.1, 0.0, 0.05, 0.05]
    assert o._get_lr("fc1_weight") == 0.0 and o._get_wd(99) == 0.1
    # an index-keyed multiplier wins over the name
    o.set_lr_mult({0: 0.25})
    assert o._get_lr(0) == 0.25


def test_manual_optimizer_applies_weight_decay_to_bias():
    """Quirk Q2: without idx2name at construction, biases keep weight decay."""
    o = opt.SGD(learning_rate=1.0, wd=0.5)
    o.idx2name = {0: "fc_bias"}  # what Module does afterwards
    assert o._get_wd(0) == 0.5
    assert opt.SGD(wd=0.5, param_idx2name={0: "fc_bias"})._get_wd(0) == 0.0


def test_param_dict_multipliers_take_precedence():
    class P:
        lr_mult, wd_mult = 3.0, 4.0

    o = opt.SGD(learning_rate=1.0, wd=1.0, param_dict={0: P()})
    o.set_lr_mult({0: 0.5})
    assert o._get_lr(0) == 3.0 and o._get_wd(0) == 4.0


def test_update_counts_per_index_and_device():
    o = opt.SGD(begin_num_update=10)
    o._update_count(0)
    o._update_count([0, "b"])
    assert o._index_update_count == {0: 12, "b": 11} and o.num_update == 12
    o._set_current_context(1)
    o._update_count(0)
    assert o._index_update_count == {0: 11} and o.num_update == 12
    o._set_current_context(0)
    assert o._index_update_count[0] == 12


def test_clip_gradient_zero_follows_each_optimizers_rule():
    """Kernel optimizers treat 0 as 'no clipping'; MXNet's Python ones clip to [0, 0]."""
    w, g = np.ones(3), np.full(3, 2.0)
    sgd = opt.SGD(learning_rate=1.0, clip_gradient=0)
    sgd.update(0, w, g, None)
    np.testing.assert_array_equal(w, [-1, -1, -1])
    w = np.ones(3)
    ada = opt.AdaGrad(learning_rate=1.0, clip_gradient=0)
    ada.update(0, w, g, ada.create_state(0, w))
    np.testing.assert_array_equal(w, [1, 1, 1])


def test_update_rejects_mismatched_shapes():
    o = opt.Adam()
    w = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"grad has shape \(3, 2\) but weight has shape"):
        o.update("w", w, np.zeros((3, 2)), o.create_state("w", w))


def test_adadelta_leaves_gradient_untouched():
    """Deviation from quirk Q10: the caller's gradient is not scaled in place."""
    o = opt.AdaDelta(rescale_grad=0.5)
    w, g = np.ones(4), np.full(4, 3.0)
    o.update(0, w, g, o.create_state(0, w))
    np.testing.assert_array_equal(g, [3, 3, 3, 3])


# ---------------------------------------------------------------- multi precision
def test_sgd_multi_precision_keeps_fp32_master():
    o = opt.SGD(learning_rate=0.1, momentum=0.9, multi_precision=True)
    w16 = np.array([1.0, -2.0, 0.5], dtype=np.float16)
    state = o.create_state_multi_precision(0, w16)
    mom, master = state
    assert master.dtype == np.float32 and mom.dtype == np.float32
    ref_w, ref_m = w16.astype(np.float64), np.zeros(3)
    for step in range(3):
        g16 = np.array([0.3, -0.1, 0.2], dtype=np.float16) * (step + 1)
        o.update_multi_precision(0, w16, g16, state)
        ref_w, ref_m = ref_sgd(ref_w, g16.astype(np.float64), ref_m, 0.1, 0.0, step + 1,
                               dict(r=1.0, kc=None, momentum=0.9))
    np.testing.assert_allclose(master, ref_w, rtol=1e-6)
    np.testing.assert_array_equal(w16, master.astype(np.float16))


def test_base_multi_precision_layout_and_fp16_warning():
    o = opt.Adam(multi_precision=True)
    w16 = np.ones(3, dtype=np.float16)
    master, (mean, var) = o.create_state_multi_precision(0, w16)
    assert master.dtype == mean.dtype == var.dtype == np.float32
    o.update_multi_precision(0, w16, np.ones(3, dtype=np.float16), (master, (mean, var)))
    np.testing.assert_array_equal(w16, master.astype(np.float16))
    assert master[0] < 1.0
    with pytest.warns(UserWarning, match="Accumulating with float16"):
        opt.Adam().create_state_multi_precision(0, w16)
    with pytest.warns(UserWarning, match="multi_precision=True option of the SGD optimizer"):
        opt.SGD(momentum=0.9).create_state_multi_precision(0, w16)


# ---------------------------------------------------------------- Updater
def _train(updater, weights, steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        for k, w in weights.items():
            updater(k, _readonly(rng.normal(size=w.shape)), w)


def test_updater_creates_states_and_accepts_lists():
    u = opt.get_updater(opt.SGD(momentum=0.9, learning_rate=0.1))
    w0, w1 = np.ones(2), np.ones(3)
    u([0, 1], [np.ones(2), np.ones(3)], [w0, w1])
    u(b"fc_weight", np.ones(2), np.ones(2))
    assert sorted(map(str, u.states)) == ["0", "1", "fc_weight"]
    np.testing.assert_allclose(u.states[0], -0.1 * np.ones(2))
    np.testing.assert_allclose(w1, 0.9 * np.ones(3))
    with pytest.raises(ValueError, match="must line up"):
        u([0, 1], [np.ones(2)], [w0, w1])
    with pytest.raises(TypeError, match="needs an Optimizer"):
        opt.Updater("sgd")


def test_updater_counts_per_weight_context():
    """MXNet keys update counters by the weight's context.device_id."""
    nd = pytest.importorskip("raymod.ndarray")
    from raymod.context import cpu
    u = opt.get_updater(opt.Adam())
    w0 = nd.zeros((2,), ctx=cpu(0), dtype="float64")
    w1 = nd.zeros((2,), ctx=cpu(1), dtype="float64")
    u("w", np.ones(2), w0)
    u("w", np.ones(2), w0)
    u("v", np.ones(2), w1)
    assert u.optimizer._all_index_update_counts == {0: {"w": 2}, 1: {"v": 1}}
    assert u.optimizer.num_update == 2


@pytest.mark.parametrize("name,kwargs", [("sgd", {"momentum": 0.9}), ("sgd", {}),
                                         ("adam", {}), ("rmsprop", {"centered": True}),
                                         ("nadam", {})])
def test_states_roundtrip_resumes_training_exactly(name, kwargs):
    keys = {0: (2, 3), "fc_bias": (3,)}
    start = {k: np.random.default_rng(7).normal(size=s) for k, s in keys.items()}

    def fresh():
        return opt.create(name, learning_rate=0.05, wd=0.01,
                          lr_scheduler=FactorScheduler(step=2, factor=0.5, base_lr=0.05),
                          **kwargs)

    ref_u = opt.get_updater(fresh())
    ref_w = {k: v.copy() for k, v in start.items()}
    _train(ref_u, ref_w, 3, seed=1)
    _train(ref_u, ref_w, 3, seed=2)

    u = opt.get_updater(fresh())
    w = {k: v.copy() for k, v in start.items()}
    _train(u, w, 3, seed=1)
    blob = u.get_states(dump_optimizer=True)
    assert isinstance(blob, bytes)
    resumed = opt.get_updater(opt.create("sgd"))
    resumed.set_states(blob)
    assert type(resumed.optimizer) is type(ref_u.optimizer)
    assert resumed.states_synced == {0: False, "fc_bias": False}
    assert resumed.optimizer.num_update == 3
    assert resumed.optimizer.lr_scheduler.base_lr == u.optimizer.lr_scheduler.base_lr
    _train(resumed, w, 3, seed=2)
    for k in keys:
        np.testing.assert_array_equal(w[k], ref_w[k])
    assert all(resumed.states_synced.values())


def test_get_states_without_optimizer_keeps_current_optimizer():
    u = opt.get_updater(opt.Adam(learning_rate=0.1))
    w = np.ones(3)
    u("w", np.ones(3), w)
    other = opt.get_updater(opt.Adam(learning_rate=0.2))
    keep = other.optimizer
    other.set_states(u.get_states())
    assert other.optimizer is keep
    mean, var = other.states["w"]
    np.testing.assert_array_equal(mean, u.states["w"][0])
    np.testing.assert_array_equal(var, u.states["w"][1])


def test_set_states_never_unpickles():
    u = opt.get_updater(opt.SGD())
    with pytest.raises(ValueError, match="Python pickle"):
        u.set_states(pickle.dumps({0: None}))
    with pytest.raises(ValueError, match="not raymod optimizer states"):
        u.set_states(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(TypeError, match="must be bytes"):
        u.set_states({0: None})


def test_get_states_rejects_unsupported_state_values():
    u = opt.get_updater(opt.SGD())
    u.states = {0: {"not", "supported"}}
    with pytest.raises(TypeError, match=r"states\[0\] is a set"):
        u.get_states()


class _Param:
    lr_mult, wd_mult = 1.0, 1.0


def test_optimizer_pickles_without_scratch_or_param_dict():
    o = opt.Adam(param_dict={0: _Param()})
    w = np.ones(3)
    o.update(0, w, np.ones(3), o.create_state(0, w))
    clone = pickle.loads(pickle.dumps(o))
    assert clone.param_dict == {} and clone._scratch == {}
    assert clone._index_update_count is clone._all_index_update_counts[0]
    assert clone._index_update_count == {0: 1}


# ---------------------------------------------------------------- MXNet .states files
def _v2_record(values):
    """One float32 V2 NDArray record, written from the reference's byte layout."""
    import struct
    arr = np.asarray(values, dtype="<f4")
    head = struct.pack("<Iii", 0xF993FAC9, 0, arr.ndim)
    head += struct.pack(f"<{arr.ndim}q", *arr.shape) + struct.pack("<iii", 1, 0, 0)
    return head + arr.tobytes()


def test_read_mxnet_states_decodes_ndarray_pickles(monkeypatch):
    import sys
    import types

    class NDArray:  # what MXNet's NDArray.__reduce__ produces
        __module__ = "mxnet.ndarray.ndarray"
        __qualname__ = "NDArray"

        def __init__(self, values):
            self.values = values

        def __reduce__(self):
            return (NDArray, (None,), {"handle": bytearray(_v2_record(self.values))})

    mod = types.ModuleType("mxnet.ndarray.ndarray")
    mod.NDArray = NDArray
    for name in ("mxnet", "mxnet.ndarray"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "mxnet.ndarray.ndarray", mod)
    for protocol in (2, 4):
        data = pickle.dumps({0: NDArray([[1, 2], [3, 4]]), "fc_bias": None,
                             2: (NDArray([0.5]), NDArray([1.5]))}, protocol=protocol)
        states = opt.read_mxnet_states(data)
        np.testing.assert_array_equal(states[0], [[1, 2], [3, 4]])
        assert states[0].dtype == np.float32
        assert states["fc_bias"] is None
        np.testing.assert_array_equal(states[2][1], [1.5])
    # through an Updater: states move to the weight's device on first use, then update
    u = opt.get_updater(opt.SGD(momentum=0.5, learning_rate=1.0))
    u.set_mxnet_states(pickle.dumps({0: NDArray([2.0, 4.0])}))
    assert u.states_synced == {0: False}
    w = np.zeros(2, dtype=np.float32)
    u(0, np.ones(2, dtype=np.float32), w)
    np.testing.assert_array_equal(w, [0.0, 1.0])   # mom = 0.5*[2, 4] - 1 = [0, 1]


def test_read_mxnet_states_refuses_other_globals():
    import os
    evil = pickle.dumps(os.getcwd)  # any global other than NDArray must be refused
    with pytest.raises(pickle.UnpicklingError, match="only NDArray states"):
        opt.read_mxnet_states(evil)


def test_no_warnings_in_plain_use():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        u = opt.get_updater(opt.create("sgd", momentum=0.9, learning_rate=0.1))
        u(0, np.ones(2), np.ones(2))
