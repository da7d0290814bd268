"""ResNet (pre-activation, "Identity Mappings in Deep Residual Networks") and ResNeXt.

The layouts of MXNet's example/image-classification/symbols/resnet.py and
resnext.py: images of height <= 28 take the CIFAR variant (3 stages, depth
6n+2 with basic units or 9n+2 >= 164 with bottlenecks); larger images the
ImageNet variant (4 stages; 18/34 basic, 50/101/152/200/269 bottleneck).
The stem is a 3x3 convolution for images up to 32 high, else 7x7/2 with
max pooling.
"""
from .. import symbol as sym
from ._common import image_shape_tuple, positive_int

IMAGENET_UNITS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3],
                  152: [3, 8, 36, 3], 200: [3, 24, 36, 3], 269: [3, 30, 48, 8]}
BN_EPS = 2e-5


def _plan(num_layers, height):
    """(units per stage, filters: stem then each stage, bottleneck?) as MXNet chooses."""
    num_layers = positive_int(num_layers, "num_layers")
    if height <= 28:
        if (num_layers - 2) % 9 == 0 and num_layers >= 164:
            return [(num_layers - 2) // 9] * 3, [16, 64, 128, 256], True
        if (num_layers - 2) % 6 == 0 and num_layers < 164:
            return [(num_layers - 2) // 6] * 3, [16, 16, 32, 64], False
        raise ValueError(f"num_layers {num_layers} has no CIFAR layout (images of height "
                         f"<= 28): use 6n+2 below 164 or 9n+2 from 164")
    if num_layers not in IMAGENET_UNITS:
        raise ValueError(f"num_layers must be one of {sorted(IMAGENET_UNITS)} for images "
                         f"higher than 28, received {num_layers}")
    if num_layers >= 50:
        return IMAGENET_UNITS[num_layers], [64, 256, 512, 1024, 2048], True
    return IMAGENET_UNITS[num_layers], [64, 64, 128, 256, 512], False


def _bn(data, name, bn_mom, fix_gamma=False):
    return sym.BatchNorm(data=data, fix_gamma=fix_gamma, eps=BN_EPS, momentum=bn_mom,
                         name=name)


def _conv(data, num_filter, kernel, stride, pad, name, num_group=1, workspace=256):
    return sym.Convolution(data=data, num_filter=num_filter, kernel=kernel, stride=stride,
                           pad=pad, num_group=num_group, no_bias=True, workspace=workspace,
                           name=name)


def _stem(data, height, filters, bn_mom, workspace):
    if height <= 32:
        return _conv(data, filters, (3, 3), (1, 1), (1, 1), "conv0", workspace=workspace)
    body = _conv(data, filters, (7, 7), (2, 2), (3, 3), "conv0", workspace=workspace)
    body = sym.Activation(data=_bn(body, "bn0", bn_mom), act_type="relu", name="relu0")
    return sym.Pooling(data=body, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max")


def _preact_unit(data, num_filter, stride, dim_match, name, bottle_neck, bn_mom, workspace):
    """BN-ReLU before every convolution; the shortcut projects from the first activation."""
    act1 = sym.Activation(data=_bn(data, name + "_bn1", bn_mom), act_type="relu",
                          name=name + "_relu1")
    if bottle_neck:
        mid = int(num_filter * 0.25)
        specs = [(mid, (1, 1), (1, 1), (0, 0)), (mid, (3, 3), stride, (1, 1)),
                 (num_filter, (1, 1), (1, 1), (0, 0))]
    else:
        specs = [(num_filter, (3, 3), stride, (1, 1)), (num_filter, (3, 3), (1, 1), (1, 1))]
    body = act1
    for i, (nf, kernel, st, pad) in enumerate(specs, start=1):
        if i > 1:
            body = sym.Activation(data=_bn(body, f"{name}_bn{i}", bn_mom), act_type="relu",
                                  name=f"{name}_relu{i}")
        body = _conv(body, nf, kernel, st, pad, f"{name}_conv{i}", workspace=workspace)
    shortcut = data if dim_match else _conv(act1, num_filter, (1, 1), stride, (0, 0),
                                            name + "_sc", workspace=workspace)
    return body + shortcut


def _resnext_unit(data, num_filter, stride, dim_match, name, bottle_neck, num_group, bn_mom,
                  workspace):
    """Convolution-BN(-ReLU) with a grouped 3x3 in the bottleneck; ReLU after the sum."""
    if bottle_neck:
        mid = int(num_filter * 0.5)
        specs = [(mid, (1, 1), (1, 1), (0, 0), 1), (mid, (3, 3), stride, (1, 1), num_group),
                 (num_filter, (1, 1), (1, 1), (0, 0), 1)]
    else:
        specs = [(num_filter, (3, 3), stride, (1, 1), 1),
                 (num_filter, (3, 3), (1, 1), (1, 1), 1)]
    body = data
    for i, (nf, kernel, st, pad, groups) in enumerate(specs, start=1):
        body = _bn(_conv(body, nf, kernel, st, pad, f"{name}_conv{i}", groups, workspace),
                   f"{name}_bn{i}", bn_mom)
        if i < len(specs):
            body = sym.Activation(data=body, act_type="relu", name=f"{name}_relu{i}")
    if dim_match:
        shortcut = data
    else:
        shortcut = _bn(_conv(data, num_filter, (1, 1), stride, (0, 0), name + "_sc",
                             workspace=workspace), name + "_sc_bn", bn_mom)
    return sym.Activation(data=body + shortcut, act_type="relu", name=name + "_relu")


def _stages(body, units, filters, unit):
    for i, count in enumerate(units):
        stride = (1, 1) if i == 0 else (2, 2)
        body = unit(body, filters[i + 1], stride, False, "stage%d_unit1" % (i + 1))
        for j in range(count - 1):
            body = unit(body, filters[i + 1], (1, 1), True, "stage%d_unit%d" % (i + 1, j + 2))
    return body


def _head(body, num_classes):
    pool = sym.Pooling(data=body, global_pool=True, kernel=(7, 7), pool_type="avg",
                       name="pool1")
    fc1 = sym.FullyConnected(data=sym.Flatten(data=pool), num_hidden=num_classes, name="fc1")
    return sym.SoftmaxOutput(data=fc1, name="softmax")


def resnet(num_classes=1000, num_layers=50, image_shape=(3, 224, 224), bn_mom=0.9,
           workspace=256):
    """Pre-activation ResNet.

    Parameters
    ----------
    num_classes : int, default 1000
    num_layers : int, default 50
        18, 34, 50, 101, 152, 200 or 269 (images higher than 28), else 6n+2 / 9n+2.
    image_shape : tuple or str, default (3, 224, 224)
        (channels, height, width), or MXNet's '3,224,224'.
    bn_mom : float, default 0.9
    workspace : int, default 256
        The convolutions' `workspace` attribute (kept for MXNet's graphs).
    """
    _, height, _ = image_shape_tuple(image_shape)
    units, filters, bottle_neck = _plan(num_layers, height)
    data = sym.identity(data=sym.Variable("data"), name="id")
    data = _bn(data, "bn_data", bn_mom, fix_gamma=True)
    body = _stem(data, height, filters[0], bn_mom, workspace)

    def unit(body, nf, stride, dim_match, name):
        return _preact_unit(body, nf, stride, dim_match, name, bottle_neck, bn_mom, workspace)

    body = _stages(body, units, filters, unit)
    body = sym.Activation(data=_bn(body, "bn1", bn_mom), act_type="relu", name="relu1")
    return _head(body, num_classes)


def resnext(num_classes=1000, num_layers=50, image_shape=(3, 224, 224), num_group=32,
            bn_mom=0.9, workspace=256):
    """ResNeXt: post-activation units with a `num_group`-way grouped 3x3 convolution.

    Parameters are those of `resnet`, plus `num_group` (int, default 32), the
    number of groups of the bottleneck's 3x3 convolution.
    """
    _, height, _ = image_shape_tuple(image_shape)
    units, filters, bottle_neck = _plan(num_layers, height)
    num_group = positive_int(num_group, "num_group")
    data = _bn(sym.Variable("data"), "bn_data", bn_mom, fix_gamma=True)
    body = _stem(data, height, filters[0], bn_mom, workspace)

    def unit(body, nf, stride, dim_match, name):
        return _resnext_unit(body, nf, stride, dim_match, name, bottle_neck, num_group,
                             bn_mom, workspace)

    return _head(_stages(body, units, filters, unit), num_classes)
