"""Inception-BN (Ioffe & Szegedy 2015) and Inception v3 (Szegedy et al. 2015).

The layouts and node names of MXNet's example/image-classification/symbols/
inception-bn.py and inception-v3.py. A block is a set of towers, each a
chain of convolution-BN-ReLU layers (or a pooling and a projection),
concatenated on the channel axis. The final average pooling covers the
last feature map, whose side is computed from `image_shape`: MXNet's fixed
(7, 7) and (8, 8) at the default 224 and 299.
"""
from .. import symbol as sym
from ._common import image_shape_tuple

BN_EPS = 1e-10 + 1e-5


# --------------------------------------------------------------------------- Inception-BN

def _cbr_bn(data, num_filter, kernel, name, suffix="", stride=(1, 1), pad=(0, 0)):
    """Inception-BN's ConvFactory: biased convolution, BatchNorm (learned gamma), ReLU."""
    conv = sym.Convolution(data=data, num_filter=num_filter, kernel=kernel, stride=stride,
                           pad=pad, name="conv_%s%s" % (name, suffix))
    bn = sym.BatchNorm(data=conv, fix_gamma=False, eps=BN_EPS, momentum=0.9,
                       name="bn_%s%s" % (name, suffix))
    return sym.Activation(data=bn, act_type="relu", name="relu_%s%s" % (name, suffix))


def _block_a(data, n1, n3r, n3, nd3r, nd3, pool, proj, name):
    c1 = _cbr_bn(data, n1, (1, 1), name + "_1x1")
    c3 = _cbr_bn(data, n3r, (1, 1), name + "_3x3", "_reduce")
    c3 = _cbr_bn(c3, n3, (3, 3), name + "_3x3", pad=(1, 1))
    cd = _cbr_bn(data, nd3r, (1, 1), name + "_double_3x3", "_reduce")
    cd = _cbr_bn(cd, nd3, (3, 3), name + "_double_3x3_0", pad=(1, 1))
    cd = _cbr_bn(cd, nd3, (3, 3), name + "_double_3x3_1", pad=(1, 1))
    pooled = sym.Pooling(data=data, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type=pool,
                         name="%s_pool_%s_pool" % (pool, name))
    cp = _cbr_bn(pooled, proj, (1, 1), name + "_proj")
    return sym.Concat(c1, c3, cd, cp, name="ch_concat_%s_chconcat" % name)


def _block_b(data, n3r, n3, nd3r, nd3, name):
    c3 = _cbr_bn(data, n3r, (1, 1), name + "_3x3", "_reduce")
    c3 = _cbr_bn(c3, n3, (3, 3), name + "_3x3", stride=(2, 2), pad=(1, 1))
    cd = _cbr_bn(data, nd3r, (1, 1), name + "_double_3x3", "_reduce")
    cd = _cbr_bn(cd, nd3, (3, 3), name + "_double_3x3_0", pad=(1, 1))
    cd = _cbr_bn(cd, nd3, (3, 3), name + "_double_3x3_1", stride=(2, 2), pad=(1, 1))
    pooled = sym.Pooling(data=data, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max",
                         name="max_pool_%s_pool" % name)
    return sym.Concat(c3, cd, pooled, name="ch_concat_%s_chconcat" % name)


def _simple(data, c1, c3, name):
    a = _cbr_bn(data, c1, (1, 1), name + "_1x1")
    b = _cbr_bn(data, c3, (3, 3), name + "_3x3", pad=(1, 1))
    return sym.Concat(a, b, name=name + "_ch_concat")


def _downsample(data, c3, name):
    a = _cbr_bn(data, c3, (3, 3), name + "_conv", stride=(2, 2), pad=(1, 1))
    b = sym.Pooling(data=data, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max",
                    name=name + "_pool")
    return sym.Concat(a, b, name=name + "_ch_concat")


def _halve(side, kernel=3, pad=0):
    return (side + 2 * pad - kernel) // 2 + 1


def inception_bn(num_classes=1000, image_shape=(3, 224, 224)):
    """Inception with batch normalisation; images of height <= 28 take MXNet's small variant.

    Parameters
    ----------
    num_classes : int, default 1000
    image_shape : tuple or str, default (3, 224, 224)
    """
    _, height, _ = image_shape_tuple(image_shape)
    data = sym.Variable("data")
    if height <= 28:
        body = _cbr_bn(data, 96, (3, 3), "1", pad=(1, 1))
        body = _simple(_simple(body, 32, 32, "in3a"), 32, 48, "in3b")
        body = _downsample(body, 80, "in3c")
        for name, c1, c3 in (("in4a", 112, 48), ("in4b", 96, 64), ("in4c", 80, 80),
                             ("in4d", 48, 96)):
            body = _simple(body, c1, c3, name)
        body = _downsample(body, 96, "in4e")
        body = _simple(_simple(body, 176, 160, "in5a"), 176, 160, "in5b")
        side = _halve(_halve(height, pad=1), pad=1)
        pool = sym.Pooling(data=body, pool_type="avg", kernel=(side, side), name="global_pool")
    else:
        body = _cbr_bn(data, 64, (7, 7), "1", stride=(2, 2), pad=(3, 3))
        body = sym.Pooling(data=body, kernel=(3, 3), stride=(2, 2), name="pool_1",
                           pool_type="max")
        body = _cbr_bn(body, 64, (1, 1), "2_red")
        body = _cbr_bn(body, 192, (3, 3), "2", pad=(1, 1))
        body = sym.Pooling(data=body, kernel=(3, 3), stride=(2, 2), name="pool_2",
                           pool_type="max")
        body = _block_a(body, 64, 64, 64, 64, 96, "avg", 32, "3a")
        body = _block_a(body, 64, 64, 96, 64, 96, "avg", 64, "3b")
        body = _block_b(body, 128, 160, 64, 96, "3c")
        body = _block_a(body, 224, 64, 96, 96, 128, "avg", 128, "4a")
        body = _block_a(body, 192, 96, 128, 96, 128, "avg", 128, "4b")
        body = _block_a(body, 160, 128, 160, 128, 160, "avg", 128, "4c")
        body = _block_a(body, 96, 128, 192, 160, 192, "avg", 128, "4d")
        body = _block_b(body, 128, 192, 192, 256, "4e")
        body = _block_a(body, 352, 192, 320, 160, 224, "avg", 128, "5a")
        body = _block_a(body, 352, 192, 320, 192, 224, "max", 128, "5b")
        side = _halve(_halve(_halve(height, 7, 3)))          # conv_1, pool_1, pool_2
        side = _halve(_halve(side, pad=1), pad=1)           # 3c, 4e
        pool = sym.Pooling(data=body, kernel=(side, side), stride=(1, 1), name="global_pool",
                           pool_type="avg")
    fc1 = sym.FullyConnected(data=sym.Flatten(data=pool), num_hidden=num_classes)
    return sym.SoftmaxOutput(data=fc1, name="softmax")


# --------------------------------------------------------------------------- Inception v3

def _cbr_v3(data, num_filter, name, suffix="", kernel=(1, 1), stride=(1, 1), pad=(0, 0)):
    """Inception v3's Conv: convolution without bias, BatchNorm (gamma fixed), ReLU."""
    conv = sym.Convolution(data=data, num_filter=num_filter, kernel=kernel, stride=stride,
                           pad=pad, no_bias=True, name="%s%s_conv2d" % (name, suffix))
    bn = sym.BatchNorm(data=conv, fix_gamma=True, name="%s%s_batchnorm" % (name, suffix))
    return sym.Activation(data=bn, act_type="relu", name="%s%s_relu" % (name, suffix))


def _tower(data, name, layers):
    """A chain of _cbr_v3 layers: (num_filter, suffix, kernel, stride, pad) each."""
    for num_filter, suffix, kernel, stride, pad in layers:
        data = _cbr_v3(data, num_filter, name, suffix, kernel, stride, pad)
    return data


def _pool_v3(data, pool, name, stride, pad):
    return sym.Pooling(data=data, kernel=(3, 3), stride=stride, pad=pad, pool_type=pool,
                       name="%s_pool_%s_pool" % (pool, name))


def _mixed_a(data, n1, n3r, n3a, n3b, n5r, n5, pool, proj, name):
    one = _cbr_v3(data, n1, name + "_conv")
    five = _tower(data, name + "_tower", [(n5r, "_conv", (1, 1), (1, 1), (0, 0)),
                                          (n5, "_conv_1", (5, 5), (1, 1), (2, 2))])
    three = _tower(data, name + "_tower_1", [(n3r, "_conv", (1, 1), (1, 1), (0, 0)),
                                             (n3a, "_conv_1", (3, 3), (1, 1), (1, 1)),
                                             (n3b, "_conv_2", (3, 3), (1, 1), (1, 1))])
    proj = _cbr_v3(_pool_v3(data, pool, name, (1, 1), (1, 1)), proj, name + "_tower_2",
                   "_conv")
    return sym.Concat(one, five, three, proj, name="ch_concat_%s_chconcat" % name)


def _mixed_b(data, n3, nd3r, nd3a, nd3b, name):
    three = _cbr_v3(data, n3, name + "_conv", kernel=(3, 3), stride=(2, 2))
    double = _tower(data, name + "_tower", [(nd3r, "_conv", (1, 1), (1, 1), (0, 0)),
                                            (nd3a, "_conv_1", (3, 3), (1, 1), (1, 1)),
                                            (nd3b, "_conv_2", (3, 3), (2, 2), (0, 0))])
    pooled = sym.Pooling(data=data, kernel=(3, 3), stride=(2, 2), pad=(0, 0), pool_type="max",
                         name="max_pool_%s_pool" % name)
    return sym.Concat(three, double, pooled, name="ch_concat_%s_chconcat" % name)


def _mixed_c(data, n1, d7, q7, pool, proj, name):
    """d7 = (reduce, 1x7, 7x1) widths; q7 = (reduce, 7x1, 1x7, 7x1, 1x7) widths."""
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))
    one = _cbr_v3(data, n1, name + "_conv")
    d = _tower(data, name + "_tower", [(d7[0], "_conv", (1, 1), (1, 1), (0, 0)),
                                       (d7[1], "_conv_1", row[0], (1, 1), row[1]),
                                       (d7[2], "_conv_2", col[0], (1, 1), col[1])])
    shapes = [col, row, col, row]
    q = _tower(data, name + "_tower_1",
               [(q7[0], "_conv", (1, 1), (1, 1), (0, 0))] +
               [(q7[i + 1], "_conv_%d" % (i + 1), k, (1, 1), p)
                for i, (k, p) in enumerate(shapes)])
    proj = _cbr_v3(_pool_v3(data, pool, name, (1, 1), (1, 1)), proj, name + "_tower_2",
                   "_conv")
    return sym.Concat(one, d, q, proj, name="ch_concat_%s_chconcat" % name)


def _mixed_d(data, n3r, n3, d7r, d7a, d7b, d7c, pool, name):
    three = _tower(data, name + "_tower", [(n3r, "_conv", (1, 1), (1, 1), (0, 0)),
                                           (n3, "_conv_1", (3, 3), (2, 2), (0, 0))])
    seven = _tower(data, name + "_tower_1", [(d7r, "_conv", (1, 1), (1, 1), (0, 0)),
                                             (d7a, "_conv_1", (1, 7), (1, 1), (0, 3)),
                                             (d7b, "_conv_2", (7, 1), (1, 1), (3, 0)),
                                             (d7c, "_conv_3", (3, 3), (2, 2), (0, 0))])
    pooled = _pool_v3(data, pool, name, (2, 2), (0, 0))
    return sym.Concat(three, seven, pooled, name="ch_concat_%s_chconcat" % name)


def _mixed_e(data, n1, d3r, d3a, d3b, t3r, t3, t3a, t3b, pool, proj, name):
    one = _cbr_v3(data, n1, name + "_conv")
    d = _cbr_v3(data, d3r, name + "_tower", "_conv")
    d_a = _cbr_v3(d, d3a, name + "_tower", "_mixed_conv", (1, 3), pad=(0, 1))
    d_b = _cbr_v3(d, d3b, name + "_tower", "_mixed_conv_1", (3, 1), pad=(1, 0))
    t = _tower(data, name + "_tower_1", [(t3r, "_conv", (1, 1), (1, 1), (0, 0)),
                                         (t3, "_conv_1", (3, 3), (1, 1), (1, 1))])
    t_a = _cbr_v3(t, t3a, name + "_tower_1", "_mixed_conv", (1, 3), pad=(0, 1))
    t_b = _cbr_v3(t, t3b, name + "_tower_1", "_mixed_conv_1", (3, 1), pad=(1, 0))
    proj = _cbr_v3(_pool_v3(data, pool, name, (1, 1), (1, 1)), proj, name + "_tower_2",
                   "_conv")
    return sym.Concat(one, d_a, d_b, t_a, t_b, proj, name="ch_concat_%s_chconcat" % name)


def inception_v3(num_classes=1000, image_shape=(3, 299, 299)):
    """Inception v3 (MXNet's example network, for images around 299 x 299).

    Parameters
    ----------
    num_classes : int, default 1000
    image_shape : tuple or str, default (3, 299, 299)
        At least 75 x 75.
    """
    _, height, _ = image_shape_tuple(image_shape)
    side = _halve(height) - 2                  # conv (3x3/2), conv_1 (3x3)
    side = _halve(side) - 2                    # pool, conv_4 (3x3)
    side = _halve(_halve(_halve(side)))        # pool1, mixed_3, mixed_8
    if side < 1:
        raise ValueError(f"inception_v3 needs images of at least 75 x 75, received "
                         f"image_shape {image_shape!r}")
    data = sym.identity(data=sym.Variable("data"), name="id")
    body = _cbr_v3(data, 32, "conv", kernel=(3, 3), stride=(2, 2))
    body = _cbr_v3(body, 32, "conv_1", kernel=(3, 3))
    body = _cbr_v3(body, 64, "conv_2", kernel=(3, 3), pad=(1, 1))
    body = sym.Pooling(data=body, kernel=(3, 3), stride=(2, 2), pool_type="max", name="pool")
    body = _cbr_v3(body, 80, "conv_3")
    body = _cbr_v3(body, 192, "conv_4", kernel=(3, 3))
    body = sym.Pooling(data=body, kernel=(3, 3), stride=(2, 2), pool_type="max", name="pool1")
    body = _mixed_a(body, 64, 64, 96, 96, 48, 64, "avg", 32, "mixed")
    body = _mixed_a(body, 64, 64, 96, 96, 48, 64, "avg", 64, "mixed_1")
    body = _mixed_a(body, 64, 64, 96, 96, 48, 64, "avg", 64, "mixed_2")
    body = _mixed_b(body, 384, 64, 96, 96, "mixed_3")
    for name, w in (("mixed_4", 128), ("mixed_5", 160), ("mixed_6", 160), ("mixed_7", 192)):
        body = _mixed_c(body, 192, (w, w, 192), (w, w, w, w, 192), "avg", 192, name)
    body = _mixed_d(body, 192, 320, 192, 192, 192, 192, "max", "mixed_8")
    body = _mixed_e(body, 320, 384, 384, 384, 448, 384, 384, 384, "avg", 192, "mixed_9")
    body = _mixed_e(body, 320, 384, 384, 384, 448, 384, 384, 384, "max", 192, "mixed_10")
    pool = sym.Pooling(data=body, kernel=(side, side), stride=(1, 1), pool_type="avg",
                       name="global_pool")
    fc1 = sym.FullyConnected(data=sym.Flatten(data=pool, name="flatten"),
                             num_hidden=num_classes, name="fc1")
    return sym.SoftmaxOutput(data=fc1, name="softmax")
