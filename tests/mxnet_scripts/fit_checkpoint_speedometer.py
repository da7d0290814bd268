"""`Module.fit` with Speedometer and do_checkpoint, as MXNet's image-classification examples run it.

Checks: the accuracy reached; one checkpoint per epoch whose parameters are
the module's; and that the speeds Speedometer logs are real ones: the
samples between two of its lines over the time between them.
"""
import argparse
import logging
import os
import re
import sys
import tempfile

import mxnet as mx
import numpy as np
from sklearn.datasets import load_digits


class SpeedLog(logging.Handler):
    """Collects Speedometer's lines: (epoch, time logged, samples/sec reported)."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        found = re.search(r'Epoch\[(\d+)\] Batch \[\d+-\d+\]\tSpeed: ([0-9.]+) samples/sec',
                          record.getMessage())
        if found:
            self.lines.append((int(found.group(1)), record.created, float(found.group(2))))

    def worst_ratio(self, samples_per_line):
        """Largest reported / real speed, real = samples between two lines of an epoch / time."""
        ratios = []
        for (e0, t0, _), (e1, t1, reported) in zip(self.lines, self.lines[1:]):
            if e0 == e1 and t1 > t0:
                ratios.append(reported / (samples_per_line / (t1 - t0)))
        return max(ratios) if ratios else None


def get_symbol():
    data = mx.sym.Variable('data')
    net = mx.sym.FullyConnected(data, name='fc1', num_hidden=64)
    net = mx.sym.Activation(net, name='relu1', act_type='relu')
    net = mx.sym.FullyConnected(net, name='fc2', num_hidden=10)
    return mx.sym.SoftmaxOutput(net, name='softmax')


def main():
    parser = argparse.ArgumentParser(description='fit with Speedometer and do_checkpoint')
    parser.add_argument('--num-epochs', type=int, default=4)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--disp-batches', type=int, default=10)
    parser.add_argument('--model-prefix', type=str, default=None)
    parser.add_argument('--min-accuracy', type=float, default=0.9)
    parser.add_argument('--max-speed-ratio', type=float, default=2.0,
                        help='largest allowed ratio of a logged speed to the real one')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    speed_log = SpeedLog()
    logging.getLogger().addHandler(speed_log)
    mx.random.seed(7)
    np.random.seed(7)

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.float32)
    train = mx.io.NDArrayIter(x[:1408], y[:1408], args.batch_size, shuffle=True)
    val = mx.io.NDArrayIter(x[1408:], y[1408:], args.batch_size)

    prefix = args.model_prefix or os.path.join(tempfile.mkdtemp(), 'digits')
    mod = mx.mod.Module(get_symbol(), context=mx.cpu())
    mod.fit(train, eval_data=val, eval_metric='acc',
            optimizer='sgd', optimizer_params={'learning_rate': 0.1, 'momentum': 0.9},
            initializer=mx.init.Xavier(),
            batch_end_callback=mx.callback.Speedometer(args.batch_size, args.disp_batches),
            epoch_end_callback=mx.callback.do_checkpoint(prefix),
            num_epoch=args.num_epochs)

    failures = []
    accuracy = dict(mod.score(val, 'acc'))['accuracy']
    if accuracy < args.min_accuracy:
        failures.append('validation accuracy %.4f below %.4f' % (accuracy, args.min_accuracy))
    for epoch in range(1, args.num_epochs + 1):
        name = '%s-%04d.params' % (prefix, epoch)
        if not os.path.exists(name):
            failures.append('missing checkpoint ' + name)
    sym, arg_params, aux_params = mx.model.load_checkpoint(prefix, args.num_epochs)
    current, _ = mod.get_params()
    for name, value in current.items():
        if not np.array_equal(value.asnumpy(), arg_params[name].asnumpy()):
            failures.append('checkpoint %s differs from the module' % name)
    if sym.tojson() != mod.symbol.tojson():
        failures.append('checkpoint symbol differs')
    ratio = speed_log.worst_ratio(args.disp_batches * args.batch_size)
    if ratio is None:
        failures.append('Speedometer logged fewer than two lines in an epoch')
    elif ratio > args.max_speed_ratio:
        failures.append('Speedometer reported %.1fx the real speed' % ratio)
    if failures:
        print('FAIL: ' + '; '.join(failures))
        return 1
    print('OK: accuracy %.4f, %d checkpoints, reported speed at most %.2fx the real one'
          % (accuracy, args.num_epochs, ratio))
    return 0


if __name__ == '__main__':
    sys.exit(main())
