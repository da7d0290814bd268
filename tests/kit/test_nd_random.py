"""`rm.nd.random`: MXNet's samplers, signatures and defaults, on raymod's seeded generator."""
import numpy as np
import pytest

import raymod as rm
from raymod.ndarray import random as ndr


@pytest.mark.parametrize("sampler, args, dtype", [
    (ndr.uniform, (), np.float32), (ndr.normal, (), np.float32), (ndr.poisson, (), np.float32),
    (ndr.exponential, (), np.float32), (ndr.gamma, (), np.float32),
    (ndr.negative_binomial, (), np.float32), (ndr.generalized_negative_binomial, (), np.float32),
    (ndr.randint, (0, 5), np.int32),
])
def test_one_sample_of_mxnets_default_dtype_by_default(sampler, args, dtype):
    """MXNet 1.9.1: a scalar parameter without shape or out draws shape (1,)."""
    out = sampler(*args)
    assert isinstance(out, rm.nd.NDArray) and out.shape == (1,) and out.dtype == dtype


def test_seed_repeats_the_samples():
    rm.random.seed(42)
    first = [ndr.uniform(-1, 1, shape=(3, 2)), ndr.normal(shape=4), ndr.randint(0, 9, shape=5),
             ndr.shuffle(rm.nd.arange(8))]
    rm.random.seed(42)
    second = [ndr.uniform(-1, 1, shape=(3, 2)), ndr.normal(shape=4), ndr.randint(0, 9, shape=5),
              ndr.shuffle(rm.nd.arange(8))]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], ndr.uniform(-1, 1, shape=(3, 2)))


def test_array_parameters_draw_shape_samples_per_element():
    low, high = rm.nd.array([0, 10]), rm.nd.array([1, 11])
    out = ndr.uniform(low, high, shape=3)
    assert out.shape == (2, 3)
    assert (out[0] < 1).all() and (out[1] >= 10).all()
    assert ndr.uniform(low, high).shape == (2,)
    with pytest.raises(TypeError, match="all be numbers or all NDArrays"):
        ndr.uniform(low, 1)


def test_out_is_filled_and_returned():
    out = rm.nd.zeros((2, 2))
    assert ndr.normal(5, 0.1, out=out) is out and abs(float(out.mean()) - 5) < 1
    with pytest.raises(ValueError, match=r"shape \(3,\) does not match out's shape \(2, 2\)"):
        ndr.uniform(shape=3, out=out)


def test_distributions_have_mxnets_parametrisation():
    rm.random.seed(0)
    n = 20000
    assert abs(float(ndr.gamma(2, 3, shape=n).mean()) - 6) < 0.2           # beta is the scale
    assert abs(float(ndr.exponential(2, shape=n).mean()) - 2) < 0.1        # scale, not rate
    assert abs(float(ndr.negative_binomial(2, 0.25, shape=n).mean()) - 6) < 0.3
    gnb = ndr.generalized_negative_binomial(3, 0.5, shape=n)
    assert abs(float(gnb.mean()) - 3) < 0.15 and abs(float(gnb.var()) - 7.5) < 0.8
    assert abs(float(ndr.poisson(4, shape=n).mean()) - 4) < 0.1
    assert ndr.randn(2, 3, loc=1).shape == (2, 3)


def test_multinomial_shapes_and_log_probs():
    probs = rm.nd.array([[0.0, 1.0], [1.0, 0.0]])
    assert ndr.multinomial(probs).tolist() == [1, 0]
    samples, logp = ndr.multinomial(probs, shape=(2, 3), get_prob=True)
    assert samples.shape == (2, 2, 3) and samples.dtype == np.int32
    assert (samples[0] == 1).all() and (samples[1] == 0).all()
    np.testing.assert_array_equal(logp, np.zeros((2, 2, 3)))
    assert ndr.multinomial(rm.nd.array([0.2, 0.8]), shape=4).shape == (4,)


def test_shuffle_permutes_rows_and_leaves_the_input():
    data = rm.nd.arange(12).reshape(6, 2)
    out = ndr.shuffle(data)
    assert sorted(out[:, 0].tolist()) == data[:, 0].tolist()
    np.testing.assert_array_equal(out[:, 1] - out[:, 0], np.ones(6))
    np.testing.assert_array_equal(data, np.arange(12).reshape(6, 2))


@pytest.mark.parametrize("call, error, match", [
    (lambda: ndr.uniform(2, 1), ValueError, "high must be greater than or equal to low"),
    (lambda: ndr.normal(0, -1), ValueError, "scale must be non-negative"),
    (lambda: ndr.randint(5, 2), ValueError, "high must be greater than low"),
    (lambda: ndr.randint(0, 5, dtype="float32"), TypeError, "dtype"),
    (lambda: ndr.uniform(dtype="int32"), TypeError, "dtype"),
    (lambda: ndr.gamma(-1), ValueError, "alpha must be positive"),
    (lambda: ndr.uniform(shape=(2, -1)), ValueError, "negative"),
])
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_contrib_namespaces_resolve_and_say_what_is_missing():
    assert rm.sym.contrib is rm.contrib.sym and rm.nd.contrib is rm.contrib.nd
    with pytest.raises(AttributeError, match="raymod has no contrib operator 'box_nms'"):
        rm.sym.contrib.box_nms  # noqa: B018
    with pytest.raises(AttributeError, match="no imperative contrib operator"):
        rm.nd.contrib.box_nms  # noqa: B018
    with pytest.raises(AttributeError, match="raymod.contrib.*has no attribute 'gluon_thing'"):
        rm.contrib.gluon_thing  # noqa: B018


def test_kvstore_module_is_mxnets_path_to_the_store():
    store = rm.kvstore.create("local")
    assert isinstance(store, rm.kvstore.KVStore) and store.type == "local"
    assert rm.kvstore.KVStore is rm.kv.KVStore
