"""Watch weights and outputs with `mx.mon.Monitor`, as MXNet's monitor how-to does.

`fit(..., monitor=mon)` logs a statistic of every weight every few batches;
then a second Monitor is installed by hand around one forward pass and its
`toc()` values are checked against the same statistic computed in numpy
from the saved parameters.
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


def norm_stat(d):
    # MXNet's Monitor wants the statistic as an NDArray
    return mx.nd.array([np.linalg.norm(d.asnumpy()) / np.sqrt(d.size)])


class MonitorLines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.names = []

    def emit(self, record):
        found = re.match(r'Batch:\s+\d+ (\S+)\s+(\S+)', record.getMessage())
        if found:
            self.names.append((found.group(1), float(found.group(2))))


def stat_value(text):
    return float(text.strip().strip('[]'))


def main():
    parser = argparse.ArgumentParser(description='Monitor on the digits MLP')
    parser.add_argument('--num-epochs', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--interval', type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    lines = MonitorLines()
    logging.getLogger().addHandler(lines)
    mx.random.seed(6)

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.float32)
    train = mx.io.NDArrayIter(x[:1400], y[:1400], args.batch_size)

    data = mx.sym.Variable('data')
    net = mx.sym.FullyConnected(data, name='fc1', num_hidden=32)
    net = mx.sym.Activation(net, name='relu1', act_type='relu')
    net = mx.sym.FullyConnected(net, name='fc2', num_hidden=10)
    net = mx.sym.SoftmaxOutput(net, name='softmax')
    mod = mx.mod.Module(net)
    mon = mx.mon.Monitor(args.interval, norm_stat, pattern='.*weight')
    mod.fit(train, optimizer_params={'learning_rate': 0.1}, initializer=mx.init.Xavier(),
            num_epoch=args.num_epochs, monitor=mon)

    failures = []
    batches = args.num_epochs * (1400 // args.batch_size)
    expected_logs = 2 * ((batches + args.interval - 1) // args.interval)
    seen = [name for name, _ in lines.names]
    if sorted(set(seen)) != ['fc1_weight', 'fc2_weight'] or len(seen) != expected_logs:
        failures.append('Monitor logged %s, expected fc1_weight and fc2_weight %d times each'
                        % (seen[:6], expected_logs // 2))
    if not all(np.isfinite(v) and v > 0 for _, v in lines.names):
        failures.append('Monitor logged non-positive or non-finite norms')

    # by hand: one forward pass, then the statistics against numpy's
    probe = mx.mon.Monitor(1, norm_stat, pattern='fc1_weight|fc1_output')
    mod.install_monitor(probe)
    train.reset()
    batch = train.next()
    probe.tic()
    mod.forward(batch, is_train=False)
    stats = {name: stat_value(value) for _, name, value in probe.toc()}
    with tempfile.TemporaryDirectory() as folder:
        params_file = os.path.join(folder, 'now.params')
        mod.save_params(params_file)
        saved = mx.nd.load(params_file)
    weight = saved['arg:fc1_weight'].asnumpy()
    fc1 = batch.data[0].asnumpy().dot(weight.T) + saved['arg:fc1_bias'].asnumpy()
    want = {'fc1_weight': np.linalg.norm(weight) / np.sqrt(weight.size),
            'fc1_output': np.linalg.norm(fc1) / np.sqrt(fc1.size)}
    for name, value in want.items():
        if name not in stats or not np.isclose(stats[name], value, rtol=1e-4):
            failures.append('toc() gave %s=%s, numpy says %.6f' % (name, stats.get(name), value))
    if failures:
        print('FAIL: ' + '; '.join(failures))
        return 1
    print('OK: Monitor logged %d weight norms; toc() agrees with numpy' % len(seen))
    return 0


if __name__ == '__main__':
    sys.exit(main())
