"""MXNet's example/image-classification networks, written with `rm.sym`.

Each builder returns the network's `SoftmaxOutput` symbol with MXNet's node
names (`conv0`, `stage1_unit1_conv1`, `conv_2_dw_conv2d`, ...), so the
networks' MXNet checkpoints load by name. `get_symbol(name, **kwargs)`
picks one by the name MXNet's `train_imagenet.py --network` takes.
"""
from .classic import alexnet, vgg
from .inception import inception_bn, inception_v3
from .mobilenet import mobilenet, mobilenet_v2
from .resnet import resnet, resnext

NETWORKS = {
    "alexnet": alexnet,
    "vgg": vgg,
    "resnet": resnet,
    "resnext": resnext,
    "mobilenet": mobilenet,
    "mobilenetv2": mobilenet_v2,
    "inception-bn": inception_bn,
    "inception-v3": inception_v3,
}


def get_symbol(network, **kwargs):
    """The network called `network` (a key of `NETWORKS`), built with `kwargs`.

    Parameters
    ----------
    network : str
        'alexnet', 'vgg', 'resnet', 'resnext', 'mobilenet', 'mobilenetv2',
        'inception-bn' or 'inception-v3'.
    **kwargs
        The builder's arguments (`num_classes`, `num_layers`, `image_shape`, ...).
    """
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {sorted(NETWORKS)}, received {network!r}")
    return NETWORKS[network](**kwargs)
