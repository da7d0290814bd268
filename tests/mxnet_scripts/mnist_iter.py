"""Train on MNIST-format files with `mx.io.MNISTIter`, as MXNet's MNIST examples do.

The script writes the scikit-learn digits (8x8) as IDX files under
--data-dir (train-images-idx3-ubyte, ..., MNIST's names), reads them with
MNISTIter (flat, shuffled once with a seed) and trains an MLP. Checks the
accuracy, the batch shapes and the 1/256 scaling MXNet's iterator applies.
"""
import argparse
import logging
import os
import struct
import sys
import tempfile

import mxnet as mx
import numpy as np
from sklearn.datasets import load_digits


def write_idx(path, array):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, 'wb') as f:
        f.write(struct.pack('>I', 0x800 + array.ndim))
        for dim in array.shape:
            f.write(struct.pack('>I', dim))
        f.write(array.tobytes())


def write_digits(data_dir):
    digits = load_digits()
    order = np.random.RandomState(0).permutation(len(digits.target))
    images = np.round(digits.images[order] * 255 / 16).astype(np.uint8)
    labels = digits.target[order].astype(np.uint8)
    write_idx(os.path.join(data_dir, 'train-images-idx3-ubyte'), images[:1400])
    write_idx(os.path.join(data_dir, 'train-labels-idx1-ubyte'), labels[:1400])
    write_idx(os.path.join(data_dir, 't10k-images-idx3-ubyte'), images[1400:])
    write_idx(os.path.join(data_dir, 't10k-labels-idx1-ubyte'), labels[1400:])
    return images


def main():
    parser = argparse.ArgumentParser(description='MLP on MNIST-format files')
    parser.add_argument('--data-dir', type=str, default=None)
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--num-epochs', type=int, default=6)
    parser.add_argument('--min-accuracy', type=float, default=0.9)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    mx.random.seed(2)
    data_dir = args.data_dir or tempfile.mkdtemp()
    images = write_digits(data_dir)

    train_iter = mx.io.MNISTIter(
        image=os.path.join(data_dir, 'train-images-idx3-ubyte'),
        label=os.path.join(data_dir, 'train-labels-idx1-ubyte'),
        data_shape=(64,), batch_size=args.batch_size, shuffle=True, flat=True, silent=False,
        seed=10)
    val_iter = mx.io.MNISTIter(
        image=os.path.join(data_dir, 't10k-images-idx3-ubyte'),
        label=os.path.join(data_dir, 't10k-labels-idx1-ubyte'),
        data_shape=(64,), batch_size=args.batch_size, shuffle=False, flat=True, silent=True)

    failures = []
    if train_iter.provide_data[0].shape != (args.batch_size, 64):
        failures.append('data shape %s' % (train_iter.provide_data[0].shape,))
    first = val_iter.next().data[0].asnumpy()
    if not np.array_equal(first * 256, images[1400:1400 + args.batch_size].reshape(-1, 64)):
        failures.append('MNISTIter did not scale the pixels by 1/256')
    val_iter.reset()

    data = mx.sym.Variable('data')
    net = mx.sym.FullyConnected(data, name='fc1', num_hidden=64)
    net = mx.sym.Activation(net, name='relu1', act_type='relu')
    net = mx.sym.FullyConnected(net, name='fc2', num_hidden=10)
    net = mx.sym.SoftmaxOutput(net, name='softmax')
    mod = mx.mod.Module(net)
    mod.fit(train_iter, eval_data=val_iter,
            optimizer_params={'learning_rate': 0.1, 'momentum': 0.9},
            initializer=mx.init.Xavier(), num_epoch=args.num_epochs,
            batch_end_callback=mx.callback.Speedometer(args.batch_size, 10))
    accuracy = dict(mod.score(val_iter, 'acc'))['accuracy']
    if accuracy < args.min_accuracy:
        failures.append('validation accuracy %.4f below %.4f' % (accuracy, args.min_accuracy))
    if failures:
        print('FAIL: ' + '; '.join(failures))
        return 1
    print('OK: validation accuracy %.4f from MNISTIter' % accuracy)
    return 0


if __name__ == '__main__':
    sys.exit(main())
