"""MXNet's example/image-classification networks (raymod.models): each binds, runs
forward and backward on small inputs; graph facts and parameter counts of the
standard configurations; JSON round trips."""
import json

import numpy as np
import pytest

import raymod as rm
from raymod import models
from raymod.context import to_numpy

# name -> (builder, data shape); small inputs keep every network under a few seconds
SMALL = {
    "resnet-18": (lambda: models.resnet(10, 18, (3, 40, 40)), (2, 3, 40, 40)),
    "resnet-50": (lambda: models.resnet(10, 50, (3, 40, 40)), (2, 3, 40, 40)),
    "resnet-20-cifar": (lambda: models.resnet(10, 20, "3,28,28"), (2, 3, 28, 28)),
    "resnext-50": (lambda: models.resnext(10, 50, (3, 40, 40), num_group=32), (2, 3, 40, 40)),
    "mobilenet-0.25": (lambda: models.mobilenet(10, 0.25, (3, 64, 64)), (2, 3, 64, 64)),
    "mobilenetv2-0.5": (lambda: models.mobilenet_v2(10, 0.5, (3, 64, 64)), (2, 3, 64, 64)),
    "inception-bn": (lambda: models.inception_bn(10, (3, 64, 64)), (2, 3, 64, 64)),
    "inception-bn-small": (lambda: models.inception_bn(10, (3, 28, 28)), (2, 3, 28, 28)),
    "inception-v3": (lambda: models.inception_v3(10, (3, 75, 75)), (2, 3, 75, 75)),
    "alexnet": (lambda: models.alexnet(10), (2, 3, 67, 67)),
    "vgg-11-bn": (lambda: models.vgg(10, 11, batch_norm=True), (2, 3, 32, 32)),
}
HEAVY = {"resnet-50", "resnext-50", "inception-bn", "inception-v3"}


def _bind_and_init(sym, shape, seed=0):
    exe = sym.simple_bind(rm.cpu(), data=shape, softmax_label=(shape[0],))
    rm.random.seed(seed)
    init = rm.init.Xavier(magnitude=2.0)
    attrs = sym.attr_dict()
    for name, arr in exe.arg_dict.items():
        if name not in ("data", "softmax_label"):
            init(rm.init.InitDesc(name, attrs.get(name, {})), arr)
    for name, arr in exe.aux_dict.items():
        init(rm.init.InitDesc(name, attrs.get(name, {})), arr)
    return exe


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY
                                  else n for n in SMALL])
def test_network_trains_one_step(name, rng):
    build, shape = SMALL[name]
    sym = build()
    exe = _bind_and_init(sym, shape)
    x = rng.uniform(0, 1, size=shape).astype(np.float32)
    label = rng.integers(0, 10, size=shape[0]).astype(np.float32)
    prob = to_numpy(exe.forward(is_train=True, data=x, softmax_label=label)[0])
    assert prob.shape == (shape[0], 10)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-4)
    exe.backward()
    first = next(n for n in sym.list_arguments() if n.endswith("_weight"))
    for n, g in exe.grad_dict.items():
        assert np.all(np.isfinite(to_numpy(g))), n
    assert np.any(to_numpy(exe.grad_dict[first]) != 0), first
    # inference runs too (moving statistics, no dropout) and is deterministic
    a = to_numpy(exe.forward(is_train=False, data=x)[0]).copy()
    b = to_numpy(exe.forward(is_train=False, data=x)[0])
    np.testing.assert_array_equal(a, b)


def _count(sym, shape):
    arg_shapes, _, _ = sym.infer_shape(data=shape, softmax_label=(shape[0],))
    return sum(int(np.prod(s)) for n, s in zip(sym.list_arguments(), arg_shapes, strict=True)
               if n not in ("data", "softmax_label"))


# Trainable parameters of the standard 1000-class networks, from the published models:
# torchvision's ResNet-18 (11,689,512) adjusted for the pre-activation layout: a 1x1
# projection in stage 1 (+4096), bn_data (+6), the final BN (+1024), BNs on unit
# inputs (6784) instead of after convolutions (9472); Keras's MobileNet 1.0
# (4,231,976 trainable); Keras's Inception v3 (23,817,352 trainable) plus the BN gammas
# MXNet keeps (17,216; Keras has scale=False).
@pytest.mark.parametrize("build,shape,expected", [
    (lambda: models.resnet(1000, 18), (1, 3, 224, 224),
     11_689_512 + 4096 + 6 + 1024 + 6784 - 9472),
    (lambda: models.mobilenet(1000, 1.0), (1, 3, 224, 224), 4_231_976),
    (lambda: models.inception_v3(1000), (1, 3, 299, 299), 23_817_352 + 17_216),
])
def test_standard_parameter_counts(build, shape, expected):
    assert _count(build(), shape) == expected


def test_graph_facts():
    resnet = models.resnet(1000, 18)
    nodes = json.loads(resnet.tojson())["nodes"]
    assert [n["op"] for n in nodes[:2]] == ["null", "_copy"] and nodes[1]["name"] == "id"
    args = resnet.list_arguments()
    assert args[:4] == ["data", "bn_data_gamma", "bn_data_beta", "conv0_weight"]
    assert "stage4_unit1_sc_weight" in args and "stage4_unit2_sc_weight" not in args
    _, out, _ = resnet.get_internals()["relu1_output"].infer_shape(data=(1, 3, 224, 224))
    assert out == [(1, 512, 7, 7)]
    mobile = models.mobilenet(1000, 1.0)
    dw = json.loads(mobile.tojson())["nodes"]
    conv = next(n for n in dw if n["name"] == "conv_14_dw_conv2d")
    assert conv["attrs"]["num_group"] == "1024" and conv["attrs"]["num_filter"] == "1024"
    alex = models.alexnet()
    assert sum(n["op"] == "LRN" for n in json.loads(alex.tojson())["nodes"]) == 2
    v3 = models.inception_v3()
    pool = next(n for n in json.loads(v3.tojson())["nodes"] if n["name"] == "global_pool")
    assert pool["attrs"]["kernel"] == "(8, 8)"          # MXNet's fixed kernel at 299
    bn = models.inception_bn()
    pool = next(n for n in json.loads(bn.tojson())["nodes"] if n["name"] == "global_pool")
    assert pool["attrs"]["kernel"] == "(7, 7)"


def test_json_round_trip_keeps_the_graph():
    sym = models.mobilenet_v2(10, 0.5, (3, 64, 64))
    again = rm.sym.load_json(sym.tojson())
    assert again.list_arguments() == sym.list_arguments()
    assert again.list_auxiliary_states() == sym.list_auxiliary_states()
    shapes = dict(data=(2, 3, 64, 64), softmax_label=(2,))
    assert again.infer_shape(**shapes) == sym.infer_shape(**shapes)


def test_get_symbol_and_bad_arguments():
    assert models.get_symbol("vgg", num_classes=3, num_layers=11).list_outputs() == \
        ["softmax_output"]
    with pytest.raises(ValueError, match="network must be one of"):
        models.get_symbol("lenet5")
    with pytest.raises(ValueError, match=r"num_layers must be one of \[18, 34"):
        models.resnet(10, 21)
    with pytest.raises(ValueError, match="no CIFAR layout"):
        models.resnet(10, 18, (3, 28, 28))
    with pytest.raises(ValueError, match=r"multiplier must be one of"):
        models.mobilenet(10, 0.3)
    with pytest.raises(ValueError, match="multiple of 32"):
        models.mobilenet(10, 1.0, (3, 100, 100))
    with pytest.raises(ValueError, match="at least 75 x 75"):
        models.inception_v3(10, (3, 64, 64))
    with pytest.raises(ValueError, match="image_shape must look like"):
        models.resnet(10, 18, "3x224x224")
    with pytest.raises(ValueError, match=r"num_layers must be one of \[11, 13, 16, 19\]"):
        models.vgg(10, 12)
