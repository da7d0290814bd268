"""The `device` exchange on Ray actors: shared buffers on one machine, the in-process numbers.

Two workers on this machine exchange gradients by value for the first three
batches and through each other's buffers after; either way every step must
give exactly the parameters of in-process training on the same two devices
(the same slices, the kvstore's summation order).
"""
import numpy as np
import pytest

import raymod as rm
from raymod.io import NDArrayIter
from raymod.parallel import grad_exchange

from ..module.nets import CPU2, classification_data, mlp

pytestmark = [pytest.mark.usefixtures("ray_session"),
              pytest.mark.skipif(grad_exchange.host_key() is None,
                                 reason="shared buffers need Linux /proc and memfd")]

STEPS, BATCH = 6, 12


def _train(placement, steps=STEPS):
    rm.random.seed(3)
    mod = rm.mod.Module(mlp(num_hidden=7), context=CPU2, placement=placement)
    mod.bind([("data", (BATCH, 5))], [("softmax_label", (BATCH,))])
    mod.init_params(initializer=rm.init.Xavier())
    mod.init_optimizer(kvstore="device", optimizer="sgd",
                       optimizer_params={"learning_rate": 0.3, "momentum": 0.9, "wd": 0.01})
    x, y = classification_data(n=BATCH * steps, seed=9)
    params = []
    for batch in NDArrayIter(x, y, batch_size=BATCH):
        mod.forward_backward(batch)
        mod.update()
        params.append({k: v.copy() for k, v in mod.get_params()[0].items()})
    return mod, params


def test_ray_device_exchange_equals_in_process_bit_for_bit_every_step():
    _, expected = _train("in_process")
    mod, got = _train("ray")
    assert len(got) == len(expected) == STEPS
    for step, (g, e) in enumerate(zip(got, expected)):
        for k in e:
            np.testing.assert_array_equal(g[k], e[k], err_msg=f"step {step}: {k}")
    group = mod._exec_group
    profiles = group._call("exchange_profile")
    # 3 exchanges by value (learning the workers, then the buffers), 3 through them
    assert [(p["by_value"], p["shared"]) for p in profiles] == [(6, 6), (6, 6)]
    replicas = [arg for arg, _ in group._call("get_params", group._key, group.param_names, [])]
    for k in replicas[0]:
        np.testing.assert_array_equal(replicas[0][k], replicas[1][k])


def test_ray_gradients_after_the_exchange_are_the_sum():
    """The gradient arrays hold the summed gradient after update (as MXNet's pull)."""
    mod, _ = _train("ray", steps=5)
    ref, _ = _train("in_process", steps=5)
    got = mod._exec_group._call("grads", mod._exec_group._key, ["fc1_weight"], True)
    want = [g["fc1_weight"] for g in ref._exec_group._call("grads", ref._exec_group._key,
                                                           ["fc1_weight"], True)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g["fc1_weight"], w)
