"""Optimizers (MXNet 1.x's `mx.optimizer`): `create('sgd', ...)`, the classes, `Updater`.

Registered names: sgd, ccsgd, nag, adam, adamax, nadam, rmsprop, adagrad,
adadelta, test.
"""
from .optimizer import Optimizer, register, create
from .sgd import SGD, NAG, ccSGD, Test
from .adam import Adam, Adamax, Nadam
from .adaptive import RMSProp, AdaGrad, AdaDelta
from .updater import Updater, get_updater
from .mxnet_states import read_mxnet_states

__all__ = ["Optimizer", "register", "create", "SGD", "NAG", "ccSGD", "Test", "Adam",
           "Adamax", "Nadam", "RMSProp", "AdaGrad", "AdaDelta", "Updater", "get_updater",
           "read_mxnet_states"]
