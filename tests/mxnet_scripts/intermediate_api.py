"""Train an MLP on the digits with Module's intermediate API, as MXNet's module tutorial does.

bind -> init_params -> init_optimizer, then per batch forward, update_metric,
backward, update; the script checks the validation accuracy it reaches and
that `score` agrees with a prediction made by hand.
"""
import argparse
import logging
import sys

import mxnet as mx
import numpy as np
from sklearn.datasets import load_digits


def get_data(batch_size):
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.float32)
    order = np.random.RandomState(0).permutation(len(x))
    x, y = x[order], y[order]
    # 400 validation examples: whole batches, since score() also counts a batch's padding
    train = mx.io.NDArrayIter(x[:-400], y[:-400], batch_size, shuffle=True)
    val = mx.io.NDArrayIter(x[-400:], y[-400:], batch_size)
    return train, val, x[-400:], y[-400:]


def get_symbol(num_hidden):
    data = mx.sym.Variable('data')
    net = mx.sym.FullyConnected(data, name='fc1', num_hidden=num_hidden)
    net = mx.sym.Activation(net, name='relu1', act_type='relu')
    net = mx.sym.FullyConnected(net, name='fc2', num_hidden=10)
    return mx.sym.SoftmaxOutput(net, name='softmax')


def main():
    parser = argparse.ArgumentParser(description='digits MLP with the intermediate API')
    parser.add_argument('--num-epochs', type=int, default=6)
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--lr', type=float, default=0.1)
    parser.add_argument('--num-hidden', type=int, default=64)
    parser.add_argument('--min-accuracy', type=float, default=0.9)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    mx.random.seed(1)
    np.random.seed(1)

    train_iter, val_iter, val_x, val_y = get_data(args.batch_size)
    mod = mx.mod.Module(symbol=get_symbol(args.num_hidden), context=mx.cpu(),
                        data_names=['data'], label_names=['softmax_label'])
    mod.bind(data_shapes=train_iter.provide_data, label_shapes=train_iter.provide_label)
    mod.init_params(initializer=mx.init.Xavier(magnitude=2.))
    mod.init_optimizer(optimizer='sgd', optimizer_params=(('learning_rate', args.lr),
                                                          ('momentum', 0.9)))
    metric = mx.metric.create('acc')
    for epoch in range(args.num_epochs):
        train_iter.reset()
        metric.reset()
        for batch in train_iter:
            mod.forward(batch, is_train=True)
            mod.update_metric(metric, batch.label)
            mod.backward()
            mod.update()
        logging.info('Epoch %d, Training %s', epoch, metric.get())

    accuracy = dict(mod.score(val_iter, ['acc']))['accuracy']
    logging.info('validation accuracy %.4f', accuracy)
    # the same number by hand: forward each batch in inference mode and count
    val_iter.reset()
    correct = total = 0
    for batch in val_iter:
        mod.forward(batch, is_train=False)
        probs = mod.get_outputs()[0].asnumpy()
        keep = len(probs) - batch.pad
        labels = batch.label[0].asnumpy()[:keep]
        correct += int((probs[:keep].argmax(axis=1) == labels).sum())
        total += keep
    by_hand = correct / total
    if total != len(val_y) or abs(by_hand - accuracy) > 1e-6:
        print('FAIL: score() says %.6f, counting by hand %.6f over %d of %d examples'
              % (accuracy, by_hand, total, len(val_y)))
        return 1
    if accuracy < args.min_accuracy:
        print('FAIL: validation accuracy %.4f below %.4f' % (accuracy, args.min_accuracy))
        return 1
    print('OK: validation accuracy %.4f' % accuracy)
    return 0


if __name__ == '__main__':
    sys.exit(main())
