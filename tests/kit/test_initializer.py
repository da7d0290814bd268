"""raymod.initializer (rm.init) and raymod.random: dispatch, formulas, JSON, registry."""
import logging
import math

import numpy as np
import pytest

import raymod.initializer as init
from raymod import random as rm_random
from raymod.context import to_numpy
from raymod.initializer import InitDesc


def _arr(ctx, shape, fill=np.nan):
    return ctx.xp.full(shape, fill)


def test_init_desc_is_a_str_with_attrs():
    d = InitDesc("fc_weight", {"__lr_mult__": "2"})
    assert d == "fc_weight" and isinstance(d, str)
    assert d.attrs == {"__lr_mult__": "2"} and d.global_init is None
    assert InitDesc("x").attrs == {}


@pytest.mark.parametrize("name,expected", [
    ("fc_bias", 0.0), ("bn_gamma", 1.0), ("bn_beta", 0.0), ("q_min", 0.0), ("q_max", 1.0),
])
def test_suffix_rules_fill_constants(name, expected, ctx):
    a = _arr(ctx, (3,))
    init.Uniform(0.5)(InitDesc(name), a)
    np.testing.assert_array_equal(to_numpy(a), np.full(3, expected))


def test_weight_suffix_uses_init_weight_and_sets_global_init():
    desc = InitDesc("conv_weight")
    u = init.Constant(0.25)
    a = np.zeros((2, 2))
    u(desc, a)
    np.testing.assert_array_equal(a, np.full((2, 2), 0.25))
    assert desc.global_init is u


@pytest.mark.parametrize("name", ["bn_moving_mean", "data", "fc_weight_scale"])
def test_unknown_pattern_raises_with_mxnet_message(name):
    with pytest.raises(ValueError, match=f"Unknown initialization pattern for {name}. "
                                         "Default initialization is now limited to"):
        init.Uniform()(InitDesc(name), np.zeros(2))


@pytest.mark.parametrize("attr,expected", [
    ('["zero", {}]', [0, 0, 0, 0]),
    ('["one", {}]', [1, 1, 1, 1]),
    ('["Constant", {"value": 0.25}]', [0.25] * 4),
    ('["lstmbias", {"forget_bias": 2.0}]', [0, 2, 0, 0]),
])
def test_init_attribute_overrides_suffix(attr, expected, ctx):
    a = _arr(ctx, (4,))
    init.Uniform()(InitDesc("bn_moving_mean", {"__init__": attr}), a)
    np.testing.assert_array_equal(to_numpy(a), expected)


@pytest.mark.parametrize("obj,text", [
    (init.Xavier(), '["xavier", {"rnd_type": "uniform", "factor_type": "avg", "magnitude": 3}]'),
    (init.Uniform(0.07), '["uniform", {"scale": 0.07}]'),
    (init.Normal(), '["normal", {"sigma": 0.01}]'),
    (init.MSRAPrelu(), '["msraprelu", {"factor_type": "avg", "slope": 0.25}]'),
    (init.Constant(1), '["constant", {"value": 1}]'),
    (init.Zero(), '["zero", {}]'),
    (init.LSTMBias(), '["lstmbias", {"forget_bias": 1.0}]'),
])
def test_dumps_is_mxnet_json(obj, text):
    assert obj.dumps() == text


def test_create_accepts_every_form():
    u = init.Uniform(0.3)
    assert init.create(u) is u
    assert init.create("Uniform", scale=0.2).scale == 0.2
    assert init.create('["normal", {"sigma": 0.5}]').sigma == 0.5
    assert init.create('{"initializer": "xavier", "magnitude": 2}').magnitude == 2.0
    assert init.create({"initializer": "constant", "value": 3}).value == 3
    assert type(init.create("zeros")) is init.Zero and type(init.create("ones")) is init.One
    with pytest.raises(ValueError, match="nosuch is not registered"):
        init.create("nosuch")
    with pytest.raises(ValueError, match="already an instance"):
        init.create(u, 1)
    with pytest.raises(TypeError, match="string type"):
        init.create(3)


def test_register_custom_initializer():
    @init.register
    @init.alias("myinit_alias")
    class MyCustomInitZ(init.Initializer):
        def _init_weight(self, _, arr):
            arr[...] = 0.1

        def _init_bias(self, _, arr):
            arr[...] = 1

    try:
        w, b = np.zeros(2), np.zeros(2)
        init.create("mycustominitz")(InitDesc("fc_weight"), w)
        init.create("myinit_alias")(InitDesc("fc_bias"), b)
        np.testing.assert_array_equal(w, [0.1, 0.1])
        np.testing.assert_array_equal(b, [1, 1])
        with pytest.raises(TypeError, match="subclass of Initializer"):
            init.register(int)
    finally:
        init._REGISTRY.pop("mycustominitz")
        init._REGISTRY.pop("myinit_alias")


def test_base_initializer_has_no_weight_rule():
    with pytest.raises(NotImplementedError):
        init.Initializer()(InitDesc("fc_weight"), np.zeros(2))


# ---------------------------------------------------------------- random draws
def test_seed_makes_uniform_and_normal_repeatable(ctx):
    a, b = _arr(ctx, (5, 4)), _arr(ctx, (5, 4))
    rm_random.seed(42)
    init.Uniform(0.2)(InitDesc("w_weight"), a)
    rm_random.seed(42)
    init.Uniform(0.2)(InitDesc("w_weight"), b)
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    expected = np.random.default_rng(42).uniform(-0.2, 0.2, size=(5, 4))
    rm_random.seed(42)
    init.Uniform(0.2)(InitDesc("w_weight"), a)
    np.testing.assert_allclose(to_numpy(a), expected)
    rm_random.seed(3)
    init.Normal(0.5)(InitDesc("w_weight"), a)
    np.testing.assert_allclose(to_numpy(a), np.random.default_rng(3).normal(0, 0.5, (5, 4)))


def test_seed_rejects_bad_values():
    with pytest.raises(TypeError, match="seed_state must be an int"):
        rm_random.seed(1.5)
    with pytest.raises(ValueError, match="non-negative"):
        rm_random.seed(-1)


def test_random_helpers_return_arrays():
    rm_random.seed(0)
    x = rm_random.uniform(-1, 1, shape=(3, 2))
    assert x.shape == (3, 2) and x.dtype == np.float32 and np.all(np.abs(x) <= 1)
    assert rm_random.normal(shape=4, dtype="float64").dtype == np.float64


@pytest.mark.parametrize("factor_type,factor", [
    ("avg", (32 * 9 + 64 * 9) / 2), ("in", 32 * 9), ("out", 64 * 9)])
@pytest.mark.parametrize("rnd_type", ["uniform", "gaussian"])
def test_xavier_scale_uses_conv_fans(rnd_type, factor_type, factor):
    shape = (64, 32, 3, 3)
    scale = math.sqrt(2.5 / factor)
    rm_random.seed(11)
    a = np.empty(shape)
    init.Xavier(rnd_type, factor_type, magnitude=2.5)(InitDesc("conv_weight"), a)
    rng = np.random.default_rng(11)
    expected = (rng.uniform(-scale, scale, shape) if rnd_type == "uniform"
                else rng.normal(0, scale, shape))
    np.testing.assert_allclose(a, expected)


def test_msraprelu_is_gaussian_xavier_with_prelu_magnitude():
    a, b = np.empty((6, 5)), np.empty((6, 5))
    rm_random.seed(4)
    init.MSRAPrelu("in", slope=0.5)(InitDesc("fc_weight"), a)
    rm_random.seed(4)
    init.Xavier("gaussian", "in", magnitude=2 / 1.25)(InitDesc("fc_weight"), b)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make,shape,match", [
    (lambda: init.Xavier(), (4,), "cannot be applied to vector fc_weight"),
    (lambda: init.Xavier(factor_type="mean"), (4, 4), "Incorrect factor type"),
    (lambda: init.Xavier(rnd_type="cauchy"), (4, 4), "Unknown random type"),
])
def test_xavier_errors(make, shape, match):
    with pytest.raises(ValueError, match=match):
        make()(InitDesc("fc_weight"), np.zeros(shape))


@pytest.mark.parametrize("shape", [(3, 8), (8, 3), (4, 2, 2)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape, ctx):
    a = _arr(ctx, shape)
    init.Orthogonal(scale=2.0)(InitDesc("w_weight"), a)
    m = to_numpy(a).reshape(shape[0], -1) / 2.0
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    # draws are float32 as MXNet's, so orthonormal to float32 precision
    np.testing.assert_allclose(gram, np.eye(min(m.shape)), atol=1e-5)
    with pytest.raises(ValueError, match="rand_type"):
        init.Orthogonal(rand_type="cauchy")


def test_bilinear_known_kernel(ctx):
    a = _arr(ctx, (2, 1, 4, 4))
    init.Bilinear()(InitDesc("up_weight"), a)
    # f = ceil(4/2) = 2, c = (2f - 1 - f%2)/(2f) = 0.75: 1-|x/2-0.75| = .25 .75 .75 .25
    line = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(to_numpy(a)[1, 0], np.outer(line, line))
    with pytest.raises(ValueError, match="4-D"):
        init.Bilinear()(InitDesc("up_weight"), np.zeros((4, 4)))


def test_lstm_bias_sets_forget_gate_slice(ctx):
    a = _arr(ctx, (8,))
    attrs = {"__init__": init.LSTMBias(forget_bias=1.5).dumps()}
    init.Uniform()(InitDesc("lstm_i2h_bias", attrs), a)
    np.testing.assert_array_equal(to_numpy(a), [0, 0, 1.5, 1.5, 0, 0, 0, 0])
    b = _arr(ctx, (8,))
    init.LSTMBias(forget_bias=1.5)(InitDesc("lstm_i2h_bias"), b)  # plain suffix rule: zeros
    np.testing.assert_array_equal(to_numpy(b), np.zeros(8))


# ---------------------------------------------------------------- Mixed, Load, legacy
def test_mixed_dispatches_by_first_matching_pattern():
    m = init.Mixed(["fc1_", ".*"], [init.Constant(0.25), init.Constant(0.5)])
    w1, w2 = np.ones(2), np.ones(2)
    m(InitDesc("fc1_weight"), w1)
    m(InitDesc("fc2_weight"), w2)
    np.testing.assert_array_equal(w1, [0.25, 0.25])
    np.testing.assert_array_equal(w2, [0.5, 0.5])
    w = w1
    with pytest.raises(ValueError, match="Parameter name fc_weight did not match any pattern"):
        init.Mixed(["bias"], [init.Zero()])(InitDesc("fc_weight"), w)
    with pytest.raises(ValueError, match="one initializer per pattern"):
        init.Mixed(["a", "b"], [init.Zero()])


def test_load_from_dict_strips_prefixes_and_falls_back(caplog, ctx):
    caplog.set_level(logging.INFO)
    ld = init.Load({"arg:fc_weight": np.full((2, 2), 3.0), "aux:bn_moving_var": np.ones(2),
                    "plain": np.zeros(1)}, default_init=init.Constant(7.0), verbose=True)
    assert sorted(ld.param) == ["bn_moving_var", "fc_weight", "plain"]
    w, other = _arr(ctx, (2, 2)), _arr(ctx, (2,))
    ld(InitDesc("fc_weight"), w)
    ld(InitDesc("fc2_weight"), other)
    np.testing.assert_array_equal(to_numpy(w), np.full((2, 2), 3.0))
    np.testing.assert_array_equal(to_numpy(other), [7.0, 7.0])
    assert [r.getMessage() for r in caplog.records] == [
        "Initialized fc_weight by loading", "Initialized fc2_weight by default"]
    with pytest.raises(ValueError, match=r"Shape mismatch, target \(3,\) vs loaded \(2, 2\)"):
        ld(InitDesc("fc_weight"), np.zeros(3))
    with pytest.raises(ValueError, match="Cannot Initialize x. Not found in loaded param"):
        init.Load({})(InitDesc("x"), np.zeros(1))
    with pytest.raises(TypeError, match="file name or a dict"):
        init.Load([np.zeros(1)])


def test_load_reads_params_file(tmp_path):
    nd = pytest.importorskip("raymod.ndarray")
    fname = str(tmp_path / "net-0001.params")
    nd.save(fname, {"arg:fc_weight": np.arange(4, dtype=np.float32).reshape(2, 2)})
    w = np.zeros((2, 2), dtype=np.float32)
    init.Load(fname)(InitDesc("fc_weight"), w)
    np.testing.assert_array_equal(w, [[0, 1], [2, 3]])


@pytest.mark.parametrize("name,expected", [
    ("bn_moving_mean", 0.0), ("bn_moving_var", 1.0), ("bn_moving_inv_var", 0.0),
    ("x_moving_avg", 0.0), ("fc_bias", 0.0), ("bn_gamma", 1.0), ("stn_loc_weight", 0.0),
])
def test_legacy_string_path_warns_and_uses_name_rules(name, expected):
    a = np.full(3, np.nan)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        init.Constant(5.0)(name, a)
    np.testing.assert_array_equal(a, np.full(3, expected))


def test_legacy_special_cases():
    loc = np.zeros(6)
    with pytest.warns(DeprecationWarning):
        init.Uniform()("stn_loc_bias", loc)
    np.testing.assert_array_equal(loc, [1, 0, 0, 0, 1, 0])
    up = np.zeros((1, 1, 2, 2))
    with pytest.warns(DeprecationWarning):
        init.Uniform()("upsampling0_weight", up)
    np.testing.assert_allclose(up[0, 0], [[1, 0], [0, 0]])  # W=2: f=1, c=0
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="numpy or cupy"):
        init.Uniform()("fc_weight", [1.0, 2.0])


def test_verbose_logs_each_array(caplog):
    caplog.set_level(logging.INFO)
    u = init.Constant(2.0).set_verbosity(True)
    u(InitDesc("fc_weight"), np.zeros(4))
    u(InitDesc("fc_bias"), np.zeros(4))
    assert [r.getMessage() for r in caplog.records] == [
        "Initialized fc_weight as weight: 2.0", "Initialized fc_bias as bias: 0.0"]


def test_mx_random_samplers_are_the_ndarray_ones():
    """MXNet's mx.random.uniform is mx.nd.random.uniform (and so for every sampler)."""
    import raymod as rm
    for name in ("uniform", "normal", "randn", "poisson", "randint", "shuffle"):
        assert getattr(rm_random, name) is getattr(rm.nd.random, name)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rm_random.nope
