"""Stochastic depth by composing modules by hand, as MXNet's example/stochastic-depth does.

`StochasticDepthModule` wraps a residual branch (a Module): in training the
branch runs with probability 1 - death_rate and its outputs are added in
place to the block's input (`outputs[i] += computed[i]`); its input
gradients are added to the incoming ones the same way. A SequentialModule
chains stem, blocks and head; the script trains it with forward, backward
and update called by hand and checks the accuracy and one block's arithmetic.
"""
import argparse
import logging
import sys

import mxnet as mx
import numpy as np
from sklearn.datasets import load_digits


class StochasticDepthModule(mx.module.BaseModule):
    """A residual block whose branch is dropped at random while training."""

    def __init__(self, symbol_compute, data_names=('data',), label_names=None,
                 logger=logging, context=mx.cpu(), death_rate=0.0):
        super(StochasticDepthModule, self).__init__(logger=logger)
        self._module_compute = mx.module.Module(symbol_compute, data_names=data_names,
                                                label_names=label_names, logger=logger,
                                                context=context)
        self._open_rate = 1 - death_rate
        self._gate_open = True
        self._outputs = None
        self._input_grads = None

    @property
    def data_names(self):
        return self._module_compute.data_names

    @property
    def output_names(self):
        return self._module_compute.output_names

    @property
    def data_shapes(self):
        return self._module_compute.data_shapes

    @property
    def label_shapes(self):
        return self._module_compute.label_shapes

    @property
    def output_shapes(self):
        return self._module_compute.output_shapes

    def get_params(self):
        return self._module_compute.get_params()

    def init_params(self, *args, **kwargs):
        self._module_compute.init_params(*args, **kwargs)

    def bind(self, *args, **kwargs):
        self._module_compute.bind(*args, **kwargs)

    def init_optimizer(self, *args, **kwargs):
        self._module_compute.init_optimizer(*args, **kwargs)

    def forward(self, data_batch, is_train=None):
        if is_train is None:
            is_train = self._module_compute.for_training
        self._outputs = data_batch.data
        if is_train:
            self._gate_open = np.random.rand() < self._open_rate
            if self._gate_open:
                self._module_compute.forward(data_batch, is_train=True)
                computed_outputs = self._module_compute.get_outputs()
                for i in range(len(self._outputs)):
                    self._outputs[i] += computed_outputs[i]
        else:  # the expectation, for prediction
            self._module_compute.forward(data_batch, is_train=False)
            computed_outputs = self._module_compute.get_outputs()
            for i in range(len(self._outputs)):
                self._outputs[i] += self._open_rate * computed_outputs[i]

    def backward(self, out_grads=None):
        self._input_grads = out_grads
        if self._gate_open:
            self._module_compute.backward(out_grads=out_grads)
            computed_input_grads = self._module_compute.get_input_grads()
            for i in range(len(self._input_grads)):
                self._input_grads[i] += computed_input_grads[i]

    def update(self):
        self._module_compute.update()

    def get_outputs(self, merge_multi_context=True):
        return self._outputs

    def get_input_grads(self, merge_multi_context=True):
        return self._input_grads


def residual_branch(name, num_hidden):
    data = mx.sym.Variable('data')
    net = mx.sym.FullyConnected(data, name=name + '_fc', num_hidden=num_hidden)
    return mx.sym.Activation(net, name=name + '_relu', act_type='relu')


def main():
    parser = argparse.ArgumentParser(description='stochastic depth with hand-made modules')
    parser.add_argument('--num-epochs', type=int, default=6)
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--num-hidden', type=int, default=48)
    parser.add_argument('--death-rate', type=float, default=0.3)
    parser.add_argument('--min-accuracy', type=float, default=0.9)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    mx.random.seed(9)
    np.random.seed(9)

    digits = load_digits()
    order = np.random.RandomState(0).permutation(len(digits.target))
    x = (digits.data[order] / 16.0).astype(np.float32)
    y = digits.target[order].astype(np.float32)
    train_iter = mx.io.NDArrayIter(x[:1400], y[:1400], args.batch_size, shuffle=True)
    val_iter = mx.io.NDArrayIter(x[1400:1750], y[1400:1750], args.batch_size)

    stem = mx.sym.Activation(mx.sym.FullyConnected(mx.sym.Variable('data'), name='stem_fc',
                                                   num_hidden=args.num_hidden),
                             name='stem_relu', act_type='relu')
    head = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.Variable('data'), name='head_fc',
                                                      num_hidden=10), name='softmax')
    blocks = [StochasticDepthModule(residual_branch('block%d' % i, args.num_hidden),
                                    death_rate=args.death_rate) for i in range(2)]
    net = mx.mod.SequentialModule()
    net.add(mx.mod.Module(stem, label_names=None))
    for block in blocks:
        net.add(block, auto_wiring=True)
    net.add(mx.mod.Module(head), take_labels=True, auto_wiring=True)

    net.bind(data_shapes=train_iter.provide_data, label_shapes=train_iter.provide_label)
    net.init_params(initializer=mx.init.Xavier())
    net.init_optimizer(optimizer='sgd', optimizer_params={'learning_rate': 0.05,
                                                          'momentum': 0.9})
    metric = mx.metric.Accuracy()
    for epoch in range(args.num_epochs):
        train_iter.reset()
        metric.reset()
        for batch in train_iter:
            net.forward(batch, is_train=True)
            net.backward()
            net.update()
            net.update_metric(metric, batch.label)
        logging.info('Epoch[%d] Train-%s=%f', epoch, *metric.get())
    accuracy = dict(net.score(val_iter, 'acc'))['accuracy']

    # one block's arithmetic in prediction: input + open_rate * branch(input)
    block = blocks[0]
    block_input = mx.nd.array(np.random.RandomState(1).rand(args.batch_size, args.num_hidden))
    expected_branch = block._module_compute
    expected_branch.forward(mx.io.DataBatch([block_input]), is_train=False)
    expected = block_input.asnumpy() + (1 - args.death_rate) * \
        expected_branch.get_outputs()[0].asnumpy()
    block.forward(mx.io.DataBatch([block_input.copy()]), is_train=False)
    got = block.get_outputs()[0].asnumpy()
    if not np.allclose(got, expected, rtol=1e-5, atol=1e-6):
        print('FAIL: a block predicts input + %.2f * branch off by %g'
              % (1 - args.death_rate, np.abs(got - expected).max()))
        return 1
    if accuracy < args.min_accuracy:
        print('FAIL: validation accuracy %.4f below %.4f' % (accuracy, args.min_accuracy))
        return 1
    print('OK: validation accuracy %.4f with stochastic depth %.2f'
          % (accuracy, args.death_rate))
    return 0


if __name__ == '__main__':
    sys.exit(main())
