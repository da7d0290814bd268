"""Save a checkpoint with optimizer states, `Module.load` it and continue training.

Trains N epochs in one go, and separately N/2 epochs, saves (symbol,
parameters, momentum), loads with `mx.mod.Module.load(..., load_optimizer_states=True)`
and fits the remaining epochs with `begin_epoch`. Data order and
initialisation are fixed, so both runs must end with the same parameters;
the script compares the two final checkpoints, and checks the accuracy.
"""
import argparse
import logging
import os
import sys
import tempfile

import mxnet as mx
import numpy as np
from sklearn.datasets import load_digits


def get_symbol():
    data = mx.sym.Variable('data')
    net = mx.sym.FullyConnected(data, name='fc1', num_hidden=32)
    net = mx.sym.Activation(net, name='relu1', act_type='relu')
    net = mx.sym.FullyConnected(net, name='fc2', num_hidden=10)
    return mx.sym.SoftmaxOutput(net, name='softmax')


def main():
    parser = argparse.ArgumentParser(description='checkpoint, load and resume')
    parser.add_argument('--num-epochs', type=int, default=4)
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--min-accuracy', type=float, default=0.9)
    parser.add_argument('--model-dir', type=str, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    half = args.num_epochs // 2

    digits = load_digits()
    order = np.random.RandomState(0).permutation(len(digits.target))
    x = (digits.data[order] / 16.0).astype(np.float32)
    y = digits.target[order].astype(np.float32)
    train = mx.io.NDArrayIter(x[:1400], y[:1400], args.batch_size)
    val = mx.io.NDArrayIter(x[1400:1750], y[1400:1750], args.batch_size)
    optimizer_params = {'learning_rate': 0.1, 'momentum': 0.9}
    workdir = args.model_dir or tempfile.mkdtemp()

    # the reference: all epochs at once
    mx.random.seed(21)
    straight = mx.mod.Module(get_symbol())
    straight.fit(train, optimizer_params=optimizer_params, initializer=mx.init.Xavier(),
                 num_epoch=args.num_epochs,
                 epoch_end_callback=mx.callback.do_checkpoint(os.path.join(workdir, 'straight')))

    # half, a checkpoint with the optimizer's states, then load and continue
    mx.random.seed(21)
    first = mx.mod.Module(get_symbol())
    train.reset()
    first.fit(train, optimizer_params=optimizer_params, initializer=mx.init.Xavier(),
              num_epoch=half)
    prefix = os.path.join(workdir, 'resumed')
    first.save_checkpoint(prefix, half, save_optimizer_states=True)
    resumed = mx.mod.Module.load(prefix, half, load_optimizer_states=True)
    train.reset()
    resumed.fit(train, eval_data=val, optimizer_params=optimizer_params,
                begin_epoch=half, num_epoch=args.num_epochs,
                epoch_end_callback=mx.callback.do_checkpoint(prefix))

    failures = []
    reference = mx.nd.load('%s-%04d.params' % (os.path.join(workdir, 'straight'),
                                                args.num_epochs))
    continued = mx.nd.load('%s-%04d.params' % (prefix, args.num_epochs))
    if sorted(reference) != sorted(continued):
        failures.append('the checkpoints hold %s and %s' % (sorted(reference), sorted(continued)))
    for name in sorted(reference):
        if not np.allclose(reference[name].asnumpy(), continued[name].asnumpy(),
                           rtol=1e-5, atol=1e-6):
            failures.append('%s differs after resuming (by up to %g)' % (
                name, np.abs(reference[name].asnumpy() - continued[name].asnumpy()).max()))
    accuracy = dict(resumed.score(val, 'acc'))['accuracy']
    if accuracy < args.min_accuracy:
        failures.append('validation accuracy %.4f below %.4f' % (accuracy, args.min_accuracy))
    if failures:
        print('FAIL: ' + '; '.join(failures))
        return 1
    print('OK: resuming from epoch %d ends where training straight through does; '
          'accuracy %.4f' % (half, accuracy))
    return 0


if __name__ == '__main__':
    sys.exit(main())
