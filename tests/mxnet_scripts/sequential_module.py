"""A SequentialModule of two Modules, as MXNet's example/module/sequential_module.py builds one.

The first module has no labels; the second takes the labels and is wired to
the first's output automatically. Checks the accuracy reached, and that the
chain predicts exactly what one Module of the whole network predicts with
the chain's parameters.
"""
import argparse
import logging
import sys

import mxnet as mx
import numpy as np
from sklearn.datasets import load_digits


def main():
    parser = argparse.ArgumentParser(description='SequentialModule on the digits')
    parser.add_argument('--num-epochs', type=int, default=5)
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--min-accuracy', type=float, default=0.9)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    mx.random.seed(11)
    np.random.seed(11)

    digits = load_digits()
    order = np.random.RandomState(0).permutation(len(digits.target))
    x = (digits.data[order] / 16.0).astype(np.float32)
    y = digits.target[order].astype(np.float32)
    train_iter = mx.io.NDArrayIter(x[:1400], y[:1400], args.batch_size, shuffle=True)
    val_iter = mx.io.NDArrayIter(x[1400:1750], y[1400:1750], args.batch_size)

    # first module: features, no labels
    data = mx.symbol.Variable('data')
    fc1 = mx.symbol.FullyConnected(data, name='fc1', num_hidden=64)
    act1 = mx.symbol.Activation(fc1, name='relu1', act_type='relu')
    mod1 = mx.mod.Module(act1, label_names=[])
    # second module: the classifier, reading whatever the first one outputs
    data = mx.symbol.Variable('data')
    fc2 = mx.symbol.FullyConnected(data, name='fc2', num_hidden=32)
    act2 = mx.symbol.Activation(fc2, name='relu2', act_type='relu')
    fc3 = mx.symbol.FullyConnected(act2, name='fc3', num_hidden=10)
    softmax = mx.symbol.SoftmaxOutput(fc3, name='softmax')
    mod2 = mx.mod.Module(softmax)

    mod_seq = mx.mod.SequentialModule()
    mod_seq.add(mod1).add(mod2, take_labels=True, auto_wiring=True)
    mod_seq.fit(train_iter, eval_data=val_iter, eval_metric='acc',
                optimizer_params={'learning_rate': 0.1, 'momentum': 0.9},
                initializer=mx.init.Xavier(), num_epoch=args.num_epochs)

    accuracy = dict(mod_seq.score(val_iter, 'acc'))['accuracy']
    # the whole network as one Module, with the chain's parameters
    whole = mx.symbol.SoftmaxOutput(
        mx.symbol.FullyConnected(
            mx.symbol.Activation(
                mx.symbol.FullyConnected(
                    mx.symbol.Activation(
                        mx.symbol.FullyConnected(mx.symbol.Variable('data'), name='fc1',
                                                 num_hidden=64),
                        name='relu1', act_type='relu'),
                    name='fc2', num_hidden=32),
                name='relu2', act_type='relu'),
            name='fc3', num_hidden=10),
        name='softmax')
    single = mx.mod.Module(whole)
    single.bind(data_shapes=val_iter.provide_data, label_shapes=val_iter.provide_label,
                for_training=False)
    arg_params, aux_params = mod_seq.get_params()
    single.set_params(arg_params, aux_params)
    chained = mod_seq.predict(val_iter).asnumpy()
    reference = single.predict(val_iter).asnumpy()
    if not np.allclose(chained, reference, rtol=1e-5, atol=1e-6):
        print('FAIL: the chain and the single module disagree by up to %g'
              % np.abs(chained - reference).max())
        return 1
    if accuracy < args.min_accuracy:
        print('FAIL: validation accuracy %.4f below %.4f' % (accuracy, args.min_accuracy))
        return 1
    print('OK: validation accuracy %.4f; the chain predicts what one module predicts' % accuracy)
    return 0


if __name__ == '__main__':
    sys.exit(main())
