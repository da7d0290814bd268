"""A bucketing LSTM language model, written the way MXNet's example/rnn/bucketing does it.

Sentences of different lengths go through `mx.rnn.BucketSentenceIter`;
`sym_gen` unrolls an LSTM stack per bucket; `BucketingModule.fit` trains it
with Perplexity. The toy language is predictable (each word is followed by
the next one in a cycle), so perplexity must fall well below the vocabulary
size; the script checks it does.
"""
import argparse
import logging
import sys

import mxnet as mx
import numpy as np


def make_corpus(num_sentences, vocab_size, seed):
    rng = np.random.RandomState(seed)
    words = ['w%d' % i for i in range(vocab_size)]
    sentences = []
    for _ in range(num_sentences):
        start, length = rng.randint(vocab_size), rng.randint(3, 11)
        sentences.append([words[(start + i) % vocab_size] for i in range(length)])
    return sentences


def main():
    parser = argparse.ArgumentParser(description='bucketing LSTM language model')
    parser.add_argument('--num-layers', type=int, default=1)
    parser.add_argument('--num-hidden', type=int, default=32)
    parser.add_argument('--num-embed', type=int, default=16)
    parser.add_argument('--num-epochs', type=int, default=6)
    parser.add_argument('--batch-size', type=int, default=20)
    parser.add_argument('--lr', type=float, default=0.05)
    parser.add_argument('--max-perplexity', type=float, default=3.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    mx.random.seed(3)
    np.random.seed(3)

    buckets = [5, 10]
    invalid_label = 0
    train_sent, vocab = mx.rnn.encode_sentences(make_corpus(400, 12, 0),
                                                invalid_label=invalid_label, start_label=1)
    val_sent, _ = mx.rnn.encode_sentences(make_corpus(100, 12, 1), vocab=vocab,
                                          invalid_label=invalid_label, start_label=1)
    data_train = mx.rnn.BucketSentenceIter(train_sent, args.batch_size, buckets=buckets,
                                           invalid_label=invalid_label)
    data_val = mx.rnn.BucketSentenceIter(val_sent, args.batch_size, buckets=buckets,
                                         invalid_label=invalid_label)

    stack = mx.rnn.SequentialRNNCell()
    for i in range(args.num_layers):
        stack.add(mx.rnn.LSTMCell(num_hidden=args.num_hidden, prefix='lstm_l%d_' % i))

    def sym_gen(seq_len):
        data = mx.sym.Variable('data')
        label = mx.sym.Variable('softmax_label')
        embed = mx.sym.Embedding(data=data, input_dim=len(vocab) + 1,
                                 output_dim=args.num_embed, name='embed')
        stack.reset()
        outputs, states = stack.unroll(seq_len, inputs=embed, merge_outputs=True)
        pred = mx.sym.Reshape(outputs, shape=(-1, args.num_hidden))
        pred = mx.sym.FullyConnected(data=pred, num_hidden=len(vocab) + 1, name='pred')
        label = mx.sym.Reshape(label, shape=(-1,))
        pred = mx.sym.SoftmaxOutput(data=pred, label=label, name='softmax')
        return pred, ('data',), ('softmax_label',)

    model = mx.mod.BucketingModule(sym_gen=sym_gen,
                                   default_bucket_key=data_train.default_bucket_key,
                                   context=mx.cpu())
    model.fit(train_data=data_train, eval_data=data_val,
              eval_metric=mx.metric.Perplexity(invalid_label),
              kvstore='device', optimizer='sgd',
              optimizer_params={'learning_rate': args.lr, 'momentum': 0.9, 'wd': 0.00001},
              initializer=mx.init.Xavier(factor_type='in', magnitude=2.34),
              num_epoch=args.num_epochs,
              batch_end_callback=mx.callback.Speedometer(args.batch_size, 10))
    perplexity = dict(model.score(data_val, mx.metric.Perplexity(invalid_label)))['perplexity']
    if not perplexity < args.max_perplexity:
        print('FAIL: validation perplexity %.3f, expected below %.3f'
              % (perplexity, args.max_perplexity))
        return 1
    print('OK: validation perplexity %.3f (vocabulary of %d words)' % (perplexity, len(vocab)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
