"""Time training steps the way MXNet's docs say to: queue the work, then `mx.nd.waitall()`.

MXNet runs asynchronously, so a benchmark calls `mx.nd.waitall()` before it
reads the clock. After waitall every step has finished: reading the outputs
must then cost next to nothing. The script checks exactly that, and that
the measured time is a real one (the loss went down over the steps).
"""
import argparse
import logging
import sys
import time

import mxnet as mx
import numpy as np


def main():
    parser = argparse.ArgumentParser(description='time steps with waitall')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--num-hidden', type=int, default=256)
    parser.add_argument('--steps', type=int, default=100)
    parser.add_argument('--max-fetch-share', type=float, default=0.5,
                        help='largest allowed fetch time after waitall, as a share of the '
                             'timed steps')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    mx.random.seed(8)
    rng = np.random.RandomState(8)
    x = rng.rand(args.batch_size, 256).astype(np.float32)
    y = (x[:, :10].argmax(axis=1)).astype(np.float32)
    batch = mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(y)])

    data = mx.sym.Variable('data')
    net = mx.sym.FullyConnected(data, name='fc1', num_hidden=args.num_hidden)
    net = mx.sym.Activation(net, name='relu1', act_type='relu')
    net = mx.sym.FullyConnected(net, name='fc2', num_hidden=args.num_hidden)
    net = mx.sym.Activation(net, name='relu2', act_type='relu')
    net = mx.sym.FullyConnected(net, name='fc3', num_hidden=10)
    net = mx.sym.SoftmaxOutput(net, name='softmax')
    mod = mx.mod.Module(net)
    mod.bind(data_shapes=[('data', x.shape)], label_shapes=[('softmax_label', y.shape)])
    mod.init_params(initializer=mx.init.Xavier())
    mod.init_optimizer(optimizer_params={'learning_rate': 0.05})
    metric = mx.metric.CrossEntropy()

    mod.forward(batch, is_train=True)           # warm up
    mod.update_metric(metric, batch.label)
    first_loss = metric.get()[1]
    mx.nd.waitall()
    tic = time.time()
    for _ in range(args.steps):
        mod.forward_backward(batch)
        mod.update()
    mx.nd.waitall()
    timed = time.time() - tic
    mod.forward(batch, is_train=False)
    fetch_tic = time.time()
    outputs = mod.get_outputs()[0].asnumpy()
    fetch = time.time() - fetch_tic
    metric.reset()
    mod.update_metric(metric, batch.label)
    last_loss = metric.get()[1]
    logging.info('%d steps in %.3f s (%.1f samples/sec); reading the outputs took %.4f s',
                 args.steps, timed, args.steps * args.batch_size / timed, fetch)
    failures = []
    if fetch > args.max_fetch_share * timed:
        failures.append('after waitall, reading the outputs took %.3f s, %.0f%% of the %.3f s '
                        'the steps were timed at: waitall did not wait'
                        % (fetch, 100 * fetch / timed, timed))
    if not last_loss < first_loss or outputs.shape != (args.batch_size, 10):
        failures.append('cross-entropy went from %.4f to %.4f' % (first_loss, last_loss))
    if failures:
        print('FAIL: ' + '; '.join(failures))
        return 1
    print('OK: %.1f samples/sec, waited for' % (args.steps * args.batch_size / timed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
