"""AlexNet (Krizhevsky et al. 2012) and VGG (Simonyan & Zisserman 2014).

The layouts of MXNet's example/image-classification/symbols/alexnet.py (its
nodes are auto-named, LRN after the first two poolings) and vgg.py.
"""
from .. import symbol as sym
from ._common import check_choice

VGG_SPEC = {11: ([1, 1, 2, 2, 2], [64, 128, 256, 512, 512]),
            13: ([2, 2, 2, 2, 2], [64, 128, 256, 512, 512]),
            16: ([2, 2, 3, 3, 3], [64, 128, 256, 512, 512]),
            19: ([2, 2, 4, 4, 4], [64, 128, 256, 512, 512])}


def alexnet(num_classes=1000):
    """AlexNet: five convolutions (LRN after the first two), three fully connected layers.

    Parameters
    ----------
    num_classes : int, default 1000
    """
    body = sym.Variable("data")
    for kernel, stride, pad, num_filter, lrn in (((11, 11), (4, 4), (0, 0), 96, True),
                                                 ((5, 5), (1, 1), (2, 2), 256, True)):
        body = sym.Convolution(data=body, kernel=kernel, stride=stride, pad=pad,
                               num_filter=num_filter)
        body = sym.Activation(data=body, act_type="relu")
        body = sym.Pooling(data=body, pool_type="max", kernel=(3, 3), stride=(2, 2))
        body = sym.LRN(data=body, alpha=0.0001, beta=0.75, knorm=1, nsize=5)
    for num_filter in (384, 384, 256):
        body = sym.Convolution(data=body, kernel=(3, 3), pad=(1, 1), num_filter=num_filter)
        body = sym.Activation(data=body, act_type="relu")
    body = sym.Pooling(data=body, kernel=(3, 3), stride=(2, 2), pool_type="max")
    body = sym.Flatten(data=body)
    for _ in range(2):
        body = sym.FullyConnected(data=body, num_hidden=4096)
        body = sym.Activation(data=body, act_type="relu")
        body = sym.Dropout(data=body, p=0.5)
    body = sym.FullyConnected(data=body, num_hidden=num_classes)
    return sym.SoftmaxOutput(data=body, name="softmax")


def vgg(num_classes=1000, num_layers=16, batch_norm=False):
    """VGG: stacks of 3x3 convolutions, each stack ending in 2x2 max pooling.

    Parameters
    ----------
    num_classes : int, default 1000
    num_layers : int, default 16
        11, 13, 16 or 19.
    batch_norm : bool, default False
        BatchNorm after every convolution.
    """
    layers, filters = VGG_SPEC[check_choice(num_layers, VGG_SPEC, "num_layers")]
    body = sym.Variable("data")
    for i, (count, num_filter) in enumerate(zip(layers, filters, strict=True), start=1):
        for j in range(1, count + 1):
            body = sym.Convolution(data=body, kernel=(3, 3), pad=(1, 1), num_filter=num_filter,
                                   name="conv%d_%d" % (i, j))
            if batch_norm:
                body = sym.BatchNorm(data=body, name="bn%d_%d" % (i, j))
            body = sym.Activation(data=body, act_type="relu", name="relu%d_%d" % (i, j))
        body = sym.Pooling(data=body, pool_type="max", kernel=(2, 2), stride=(2, 2),
                           name="pool%d" % i)
    body = sym.Flatten(data=body, name="flatten")
    for n in (6, 7):
        body = sym.FullyConnected(data=body, num_hidden=4096, name="fc%d" % n)
        body = sym.Activation(data=body, act_type="relu", name="relu%d" % n)
        body = sym.Dropout(data=body, p=0.5, name="drop%d" % n)
    body = sym.FullyConnected(data=body, num_hidden=num_classes, name="fc8")
    return sym.SoftmaxOutput(data=body, name="softmax")
