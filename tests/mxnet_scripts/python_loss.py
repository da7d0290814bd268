"""A loss written in numpy: PythonLossModule after an MLP, as MXNet's example/module/python_loss.py.

The loss module's `grad_func` computes the softmax cross-entropy gradient of
the MLP's scores on the host; the chain is trained with `fit`. Checks the
accuracy reached, and that the gradient reaching the MLP is the one
grad_func returned.
"""
import argparse
import logging
import sys

import mxnet as mx
import numpy as np
from sklearn.datasets import load_digits

GRADS = []


def softmax_ce_grad(scores, labels):
    scores = scores.asnumpy()
    labels = labels.asnumpy().astype(np.int64)
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    prob = exp / exp.sum(axis=1, keepdims=True)
    prob[np.arange(len(labels)), labels] -= 1
    GRADS.append(prob)
    return prob


def main():
    parser = argparse.ArgumentParser(description='PythonLossModule after an MLP')
    parser.add_argument('--num-epochs', type=int, default=5)
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--min-accuracy', type=float, default=0.9)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    mx.random.seed(5)
    np.random.seed(5)

    digits = load_digits()
    order = np.random.RandomState(0).permutation(len(digits.target))
    x = (digits.data[order] / 16.0).astype(np.float32)
    y = digits.target[order].astype(np.float32)
    train_iter = mx.io.NDArrayIter(x[:1400], y[:1400], args.batch_size, shuffle=True)
    val_iter = mx.io.NDArrayIter(x[1400:1750], y[1400:1750], args.batch_size)

    data = mx.symbol.Variable('data')
    fc1 = mx.symbol.FullyConnected(data, name='fc1', num_hidden=64)
    act1 = mx.symbol.Activation(fc1, name='relu1', act_type='relu')
    fc2 = mx.symbol.FullyConnected(act1, name='fc2', num_hidden=10)
    mlp = mx.mod.Module(fc2, label_names=[], context=mx.cpu())
    loss = mx.mod.PythonLossModule(grad_func=softmax_ce_grad)
    mod = mx.mod.SequentialModule().add(mlp).add(loss, take_labels=True, auto_wiring=True)
    mod.fit(train_iter, eval_data=val_iter, eval_metric='acc',
            optimizer_params={'learning_rate': 0.1, 'momentum': 0.9},
            initializer=mx.init.Xavier(), num_epoch=args.num_epochs)

    # one more step by hand: the MLP's output gradient must be what grad_func returned
    val_iter.reset()
    batch = val_iter.next()
    mod.forward(batch, is_train=True)
    mod.backward()
    returned = GRADS[-1]
    passed = loss.get_input_grads()[0].asnumpy()
    accuracy = dict(mod.score(val_iter, 'acc'))['accuracy']
    if not np.allclose(passed, returned, rtol=1e-6, atol=1e-7):
        print('FAIL: the loss module passed back a gradient that is not grad_func\'s')
        return 1
    if accuracy < args.min_accuracy:
        print('FAIL: validation accuracy %.4f below %.4f' % (accuracy, args.min_accuracy))
        return 1
    print('OK: validation accuracy %.4f with a numpy loss' % accuracy)
    return 0


if __name__ == '__main__':
    sys.exit(main())
