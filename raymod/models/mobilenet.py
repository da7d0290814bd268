"""MobileNet v1 (depthwise-separable convolutions) and MobileNet v2 (inverted residuals).

The layouts and node names of MXNet's example/image-classification/symbols/
mobilenet.py and mobilenetv2.py. Every depthwise convolution is a
Convolution with num_group == num_filter == channels.
"""
from .. import symbol as sym
from ._common import check_choice, image_shape_tuple

V1_MULTIPLIERS = (0.25, 0.5, 0.75, 1.0)
# MobileNet v1 after the first convolution: (depthwise stride, pointwise width in units
# of the base width 32*multiplier), one pair per block conv_2 .. conv_14.
V1_BLOCKS = [(1, 2), (2, 4), (1, 4), (2, 8), (1, 8), (2, 16)] + [(1, 16)] * 5 + \
    [(2, 32), (1, 32)]
# MobileNet v2: (expansion t, channels c, repeats n, first stride s) per sequence.
V2_SEQUENCES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]


def _conv_bn_relu(data, num_filter, kernel, stride, pad, name, num_group=1):
    conv = sym.Convolution(data=data, num_filter=num_filter, kernel=kernel,
                           num_group=num_group, stride=stride, pad=pad, no_bias=True,
                           name=name + "_conv2d")
    bn = sym.BatchNorm(data=conv, fix_gamma=True, name=name + "_batchnorm")
    return sym.Activation(data=bn, act_type="relu", name=name + "_relu")


def _classifier(body, pool_kernel, num_classes, global_pool=False):
    pool = sym.Pooling(data=body, kernel=pool_kernel, stride=(1, 1), pool_type="avg",
                       name="global_pool", global_pool=global_pool)
    fc = sym.FullyConnected(data=sym.Flatten(data=pool, name="flatten"),
                            num_hidden=num_classes, name="fc")
    return sym.SoftmaxOutput(data=fc, name="softmax")


def mobilenet(num_classes=1000, multiplier=1.0, image_shape=(3, 224, 224)):
    """MobileNet v1.

    Parameters
    ----------
    num_classes : int, default 1000
    multiplier : float, default 1.0
        Width multiplier (MXNet's `alpha`): 0.25, 0.5, 0.75 or 1.0.
    image_shape : tuple or str, default (3, 224, 224)
        Height and width must be equal multiples of 32; the final average
        pooling covers (height/32, height/32).
    """
    check_choice(multiplier, V1_MULTIPLIERS, "multiplier")
    _, height, width = image_shape_tuple(image_shape)
    if height != width or height % 32:
        raise ValueError(f"image_shape must be square with a side that is a multiple of 32, "
                         f"received {image_shape!r}")
    base = int(32 * multiplier)
    body = _conv_bn_relu(sym.Variable("data"), base, (3, 3), (2, 2), (1, 1), "conv_1")
    channels = base
    for idx, (stride, width_units) in enumerate(V1_BLOCKS, start=2):
        body = _conv_bn_relu(body, channels, (3, 3), (stride, stride), (1, 1),
                             "conv_%d_dw" % idx, num_group=channels)
        channels = base * width_units
        body = _conv_bn_relu(body, channels, (1, 1), (1, 1), (0, 0), "conv_%d" % idx)
    side = height // 32
    return _classifier(body, (side, side), num_classes)


def _v2_unit(data, num_filter, kernel, stride, pad, prefix, num_group=1, act=True):
    conv = sym.Convolution(data=data, num_filter=num_filter, kernel=kernel,
                           num_group=num_group, stride=stride, pad=pad, no_bias=True,
                           name=prefix + "-conv2d")
    out = sym.BatchNorm(data=conv, fix_gamma=False, use_global_stats=False, eps=1e-5,
                        name=prefix + "-batchnorm")
    return sym.clip(out, 0, 6, name=prefix + "-relu6") if act else out


def _inverted_residual(data, in_channels, out_channels, stride, expansion, shortcut, prefix):
    wide = int(round(in_channels * expansion))
    body = _v2_unit(data, wide, (1, 1), (1, 1), (0, 0), prefix + "-exp")
    body = _v2_unit(body, wide, (3, 3), (stride, stride), (1, 1), prefix + "-depthwise",
                    num_group=wide)
    body = _v2_unit(body, out_channels, (1, 1), (1, 1), (0, 0), prefix + "-linear", act=False)
    if shortcut:
        return sym.elemwise_add(data, body, name=prefix + "-shortcut")
    return body


def mobilenet_v2(num_classes=1000, multiplier=1.0, image_shape=(3, 224, 224)):
    """MobileNet v2: inverted residual blocks with linear bottlenecks and ReLU6.

    Parameters
    ----------
    num_classes : int, default 1000
    multiplier : float, default 1.0
        Width multiplier of every layer (the last 1x1 convolution keeps 1280
        channels unless the multiplier is above 1).
    image_shape : tuple or str, default (3, 224, 224)
        The final pooling is global.
    """
    if not multiplier > 0:
        raise ValueError(f"multiplier must be > 0, received {multiplier!r}")
    _, height, _ = image_shape_tuple(image_shape)
    in_c = int(round(32 * multiplier))
    body = _v2_unit(sym.Variable("data"), in_c, (3, 3), (2, 2), (1, 1), "first-3x3-conv")
    for i, (t, c, n, s) in enumerate(V2_SEQUENCES):
        out_c = int(round(c * multiplier))
        for j in range(n):
            body = _inverted_residual(body, in_c if j == 0 else out_c, out_c,
                                      s if j == 0 else 1, t, j > 0, "seq-%d-block%d" % (i, j))
        in_c = out_c
    last = int(1280 * multiplier) if multiplier > 1.0 else 1280
    body = _v2_unit(body, last, (1, 1), (1, 1), (0, 0), "last-1x1-conv")
    side = max(height // 32, 1)
    return _classifier(body, (side, side), num_classes, global_pool=True)
