"""Train from CSV files with `mx.io.CSVIter` (data_csv, label_csv, round_batch).

The script writes the scikit-learn digits as data.csv / label.csv under
--data-dir, trains an MLP on them, and checks the accuracy, that each epoch
has ceil(rows / batch_size) batches with the wrapped rows reported as pad,
and that `predict` (which drops the pad) returns one row per example.
"""
import argparse
import logging
import math
import os
import sys
import tempfile

import mxnet as mx
import numpy as np
from sklearn.datasets import load_digits


def write_csv(data_dir):
    digits = load_digits()
    order = np.random.RandomState(0).permutation(len(digits.target))
    x, y = digits.data[order] / 16.0, digits.target[order]
    paths = {}
    for part, rows in (('train', slice(0, 1400)), ('val', slice(1400, None))):
        paths[part] = (os.path.join(data_dir, part + '_data.csv'),
                       os.path.join(data_dir, part + '_label.csv'))
        np.savetxt(paths[part][0], x[rows], delimiter=',', fmt='%.6f')
        np.savetxt(paths[part][1], y[rows], delimiter=',', fmt='%d')
    return paths, y[1400:]


def main():
    parser = argparse.ArgumentParser(description='MLP on CSV files')
    parser.add_argument('--data-dir', type=str, default=None)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--num-epochs', type=int, default=6)
    parser.add_argument('--min-accuracy', type=float, default=0.9)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    mx.random.seed(4)
    paths, val_labels = write_csv(args.data_dir or tempfile.mkdtemp())

    train_iter = mx.io.CSVIter(data_csv=paths['train'][0], data_shape=(64,),
                               label_csv=paths['train'][1], label_shape=(1,),
                               batch_size=args.batch_size)
    val_iter = mx.io.CSVIter(data_csv=paths['val'][0], data_shape=(64,),
                             label_csv=paths['val'][1], batch_size=args.batch_size,
                             round_batch=False)
    failures = []
    batches = list(val_iter)
    val_iter.reset()
    rows = len(val_labels)
    if len(batches) != math.ceil(rows / args.batch_size) or \
            batches[-1].pad != len(batches) * args.batch_size - rows:
        failures.append('%d batches, last pad %d, for %d rows' % (len(batches), batches[-1].pad,
                                                                  rows))

    data = mx.sym.Variable('data')
    net = mx.sym.FullyConnected(data, name='fc1', num_hidden=64)
    net = mx.sym.Activation(net, name='relu1', act_type='relu')
    net = mx.sym.FullyConnected(net, name='fc2', num_hidden=10)
    net = mx.sym.SoftmaxOutput(net, name='softmax')
    mod = mx.mod.Module(net)
    mod.fit(train_iter, eval_data=val_iter, eval_metric='acc',
            optimizer_params={'learning_rate': 0.1, 'momentum': 0.9},
            initializer=mx.init.Xavier(), num_epoch=args.num_epochs)

    probs = mod.predict(val_iter).asnumpy()
    if probs.shape != (rows, 10):
        failures.append('predict returned %s for %d rows' % (probs.shape, rows))
    accuracy = float((probs.argmax(axis=1) == val_labels).mean())
    if accuracy < args.min_accuracy:
        failures.append('validation accuracy %.4f below %.4f' % (accuracy, args.min_accuracy))
    if failures:
        print('FAIL: ' + '; '.join(failures))
        return 1
    print('OK: validation accuracy %.4f from CSVIter' % accuracy)
    return 0


if __name__ == '__main__':
    sys.exit(main())
