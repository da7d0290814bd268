"""rm.kv: the KVStore Module relies on (reference section 5)."""
import numpy as np
import pytest

import raymod as rm
from raymod.optimizer.state_io import loads_states


def test_create_and_properties():
    for name in ("local", "device"):
        kv = rm.kv.create(name)
        assert kv.type == name and kv.rank == 0 and kv.num_workers == 1
        assert not kv.is_capable("something else")
    # raymod's 'device' only sums; the devices apply the update (MXNet's updates in the store)
    assert rm.kv.create("local").is_capable("optimizer")
    assert not rm.kv.create("device").is_capable("optimizer")
    with pytest.raises(ValueError, match="kvstore type"):
        rm.kv.create("nonsense")
    with pytest.raises(TypeError):
        rm.kv.create(3)


def test_init_stores_a_copy_and_pull():
    kv = rm.kv.create("local")
    value = np.ones((2, 3), np.float32)
    kv.init("w", value)
    value[...] = 5                                   # the store kept its own copy
    out = [np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32)]
    kv.pull("w", out=out)
    for o in out:
        np.testing.assert_array_equal(o, 1)
    with pytest.raises(rm.MXNetError, match="already initialized"):
        kv.init("w", value)
    with pytest.raises(rm.MXNetError, match="not initialized"):
        kv.pull("missing", out=out)


def test_list_forms():
    kv = rm.kv.create("local")
    kv.init(["a", "b"], [np.zeros(2, np.float32), np.ones(3, np.float32)])
    oa, ob = np.empty(2, np.float32), np.empty(3, np.float32)
    kv.pull(["a", "b"], out=[oa, ob])
    np.testing.assert_array_equal(oa, 0)
    np.testing.assert_array_equal(ob, 1)
    with pytest.raises(ValueError, match="2 keys need a list of 2 values"):
        kv.init(["c", "d"], [np.zeros(1)])


def test_push_without_updater_replaces_with_sum():
    kv = rm.kv.create("local")
    kv.init("g", np.zeros(3, np.float32))
    kv.push("g", [np.array([1, 2, 3], np.float32), np.array([10, 20, 30], np.float32)])
    out = np.zeros(3, np.float32)
    kv.pull("g", out=out)
    np.testing.assert_array_equal(out, [11, 22, 33])
    kv.push("g", np.array([1, 1, 1], np.float32))     # a single value is a list of one
    kv.pull("g", out=out)
    np.testing.assert_array_equal(out, [1, 1, 1])
    with pytest.raises(rm.MXNetError, match="shape"):
        kv.push("g", [np.zeros(4, np.float32)])


def test_pushpull_defaults_out_to_value():
    kv = rm.kv.create("device")
    kv.init("g", np.zeros(2, np.float32))
    grads = [np.array([1, 2], np.float32), np.array([3, 4], np.float32)]
    kv.pushpull("g", grads)
    for g in grads:
        np.testing.assert_array_equal(g, [4, 6])
    out = np.zeros(2, np.float32)
    kv.pushpull("g", [np.ones(2, np.float32)], out=out)
    np.testing.assert_array_equal(out, [1, 1])


def test_broadcast_inits_and_writes_every_out():
    kv = rm.kv.create("local")
    outs = [np.zeros((2, 2), np.float32) for _ in range(3)]
    kv.broadcast("w", np.full((2, 2), 7, np.float32), out=outs)
    for o in outs:
        np.testing.assert_array_equal(o, 7)
    np.testing.assert_array_equal(kv.value("w"), 7)


def test_set_optimizer_updates_on_push_with_string_index():
    kv = rm.kv.create("local")
    seen = []

    class Recording(rm.optimizer.SGD):
        def update(self, index, weight, grad, state):
            seen.append(index)
            super().update(index, weight, grad, state)

    kv.set_optimizer(Recording(learning_rate=0.5, rescale_grad=0.5))
    kv.init("w", np.ones(2, np.float32))
    kv.push("w", [np.array([1, 2], np.float32), np.array([3, 2], np.float32)])
    out = np.zeros(2, np.float32)
    kv.pull("w", out=out)
    # summed grad [4, 4] * rescale 0.5 * lr 0.5 = 1
    np.testing.assert_allclose(out, [0, 0], atol=1e-7)
    assert seen and seen[0] == "w"


def test_save_and_load_optimizer_states(tmp_path):
    kv = rm.kv.create("local")
    with pytest.raises(rm.MXNetError, match="set_optimizer"):
        kv.save_optimizer_states(str(tmp_path / "none.states"))
    kv.set_optimizer(rm.optimizer.SGD(learning_rate=0.1, momentum=0.9))
    kv.init("w", np.ones(3, np.float32))
    kv.push("w", [np.array([1, 2, 3], np.float32)])
    fname = str(tmp_path / "kv.states")
    kv.save_optimizer_states(fname)
    states, opt = loads_states(open(fname, "rb").read())
    assert opt is None
    np.testing.assert_allclose(np.asarray(states["w"]), [-0.1, -0.2, -0.3], rtol=1e-6)
    kv.save_optimizer_states(fname, dump_optimizer=True)
    assert loads_states(open(fname, "rb").read())[1] is not None

    kv2 = rm.kv.create("local")
    kv2.set_optimizer(rm.optimizer.SGD(learning_rate=0.1, momentum=0.9))
    kv2.load_optimizer_states(fname)
    kv2.init("w", np.ones(3, np.float32))
    kv.push("w", [np.array([1, 1, 1], np.float32)])
    kv2.init("w2", np.ones(1, np.float32))
    kv2_out = np.empty(3, np.float32)
    # kv2 starts from kv's momentum: its next step equals kv's step from the same state
    kv2._store["w"][...] = 1
    kv2.push("w", [np.array([1, 2, 3], np.float32)])
    kv2.pull("w", out=kv2_out)
    expected = 1 - (0.9 * np.array([-0.1, -0.2, -0.3]) * -1 + 0.1 * np.array([1, 2, 3]))
    np.testing.assert_allclose(kv2_out, expected, rtol=1e-6)


def test_module_forwards_compression_params_to_its_kvstore():
    from raymod.parallel.kvstore import KVStore
    from .nets import CPU2, mlp
    seen = []

    class Recording(KVStore):
        def set_gradient_compression(self, compression_params):
            seen.append(dict(compression_params))
            super().set_gradient_compression(compression_params)

    params = {"type": "2bit", "threshold": 0.5}
    mod = rm.mod.Module(mlp(), context=CPU2, compression_params=params)
    mod.bind([("data", (4, 5))], [("softmax_label", (4,))])
    mod.init_params()
    store = Recording("local")
    mod.init_optimizer(kvstore=store)
    assert mod._kvstore is store and seen == [params]
