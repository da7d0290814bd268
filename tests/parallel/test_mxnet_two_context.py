"""MXNet 1.x test_module.py cases with context=[cpu(0), cpu(1)], on real Ray actors.

dtype, input gradients, layout and states are the in-process port's own test
functions (tests/module/test_module_port.py) collected with placement="ray";
reshape and save/load are two-context variants of its cases. Each device is
a Ray actor, so slicing, reshape, states, input gradients, dtypes, checkpoints
with optimizer states and output merging cross process borders.
"""
import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch

from ..module.nets import CPU2
# The same bodies as the in-process port, collected here with placement="ray".
from ..module.test_module_port import (  # noqa: F401
    test_module_dtype, test_module_input_grads, test_module_layout, test_module_states)

pytestmark = pytest.mark.usefixtures("ray_session")


@pytest.fixture
def placement():
    return "ray"


def test_module_reshape():
    """Q1: rescale_grad stays 1/7 after reshaping to 14, so the bias goes -1 then -3."""
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=20, name="fc")
    dshape = (7, 20)
    mod = rm.mod.Module(sym, ("data",), None, context=CPU2, placement="ray")
    mod.bind(data_shapes=[("data", dshape)])
    mod.init_params()
    mod.init_optimizer(optimizer_params={"learning_rate": 1})
    mod.forward(DataBatch(data=[rm.nd.ones(dshape)], label=None))
    mod.backward([rm.nd.ones(dshape)])
    mod.update()
    assert mod.get_outputs()[0].shape == dshape
    np.testing.assert_allclose(mod.get_params()[0]["fc_bias"], -1, rtol=1e-6)

    dshape = (14, 20)
    mod.reshape(data_shapes=[("data", dshape)])
    mod.forward(DataBatch(data=[rm.nd.ones(dshape)], label=None))
    mod.backward([rm.nd.ones(dshape)])
    mod.update()
    assert mod.get_outputs()[0].shape == dshape
    np.testing.assert_allclose(mod.get_params()[0]["fc_bias"], -3, rtol=1e-6)


def test_save_load(tmp_path):
    """MXNet's multi-device test_save_load: params and optimizer states survive a checkpoint."""
    sym = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=100)
    prefix = str(tmp_path / "test")
    mod = rm.mod.Module(sym, ("data",), context=CPU2, placement="ray")
    mod.bind(data_shapes=[("data", (10, 10))])
    mod.init_params()
    mod.init_optimizer(optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    mod.update()                       # no forward/backward: zero gradients, states exist
    x = np.linspace(-1, 1, 100, dtype=np.float32).reshape(10, 10)
    head = np.ones((10, 100), np.float32)
    mod.forward(DataBatch([x]))
    mod.backward([head])
    mod.update()
    mod.save_checkpoint(prefix, 0, save_optimizer_states=True)

    mod2 = rm.mod.Module.load(prefix, 0, load_optimizer_states=True, data_names=("data",),
                              context=CPU2, placement="ray")
    mod2.bind(data_shapes=[("data", (10, 10))])
    mod2.init_optimizer(optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    assert mod._symbol.tojson() == mod2._symbol.tojson()
    p1, p2 = mod.get_params()[0], mod2.get_params()[0]
    assert p1.keys() == p2.keys()
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])
    mod2.save_optimizer_states(str(tmp_path / "again.states"))
    with open(prefix + "-0000.states", "rb") as f, open(tmp_path / "again.states", "rb") as g:
        assert f.read() == g.read()
    # one more identical step keeps the two modules identical (momentum was restored)
    for m in (mod, mod2):
        m.forward(DataBatch([x]))
        m.backward([head])
        m.update()
    for k, v in mod.get_params()[0].items():
        np.testing.assert_allclose(mod2.get_params()[0][k], v, rtol=1e-6)
