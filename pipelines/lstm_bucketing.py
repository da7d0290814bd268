"""Train a character-level LSTM language model with BucketingModule; report perplexity.

    python pipelines/lstm_bucketing.py                       # the email package's source
    python pipelines/lstm_bucketing.py --package json --epochs 5 --num-hidden 128
    python pipelines/lstm_bucketing.py --placement in_process --max-lines 500
    python pipelines/lstm_bucketing.py --fused            # one fused RNN operator

The text is the Python standard library's own source (the .py files of one
package, found next to `<package>.__file__`), so every machine has it. Each
non-blank line is a sentence of characters; BucketSentenceIter groups lines
by length into buckets, and each bucket is one executor of the same
2-layer LSTM, all sharing one set of weights. With --fused the layers are one
`FusedRNNCell` (a single `RNN` operator over the whole sequence, MXNet's
cuDNN cell) instead of a stack of unrolled `LSTMCell`s: the same model with
its weights in one flat vector, and faster. Perplexity (per character) is
logged for the training and validation lines after every epoch; the history
goes to runs/lstm_bucketing-history.csv and the last epoch's checkpoint
(one symbol file per bucket, MXNet's layout) beside it (--output, --plot as
in pipelines/mlp.py).
"""
import glob
import importlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import raymod as rm  # noqa: E402
from common import Outputs, add_output_options, parser, setup_logging  # noqa: E402

PAD = 0          # padding id, ignored by the loss and the perplexity


def source_lines(package, max_lines, seed):
    """Non-blank lines of `package`'s .py files, shuffled, at most `max_lines`."""
    module = importlib.import_module(package)
    directory = os.path.dirname(module.__file__)
    lines = []
    for path in sorted(glob.glob(os.path.join(directory, "*.py"))):
        with open(path, encoding="utf-8") as f:
            lines.extend(line.rstrip() for line in f if line.strip())
    if not lines:
        raise SystemExit(f"no source lines found under {directory}")
    order = np.random.default_rng(seed).permutation(len(lines))
    return [lines[i] for i in order[:max_lines]]


def lstm_cell(num_hidden, num_layers, fused):
    """The LSTM layers: one FusedRNNCell, or a stack of LSTMCells (MXNet's names both)."""
    if fused:
        # MXNet's FusedRNN initializer puts forget_bias in both the i2h and the h2h
        # forget-gate biases: 0.5 starts the gate where LSTMCell's 1.0 (i2h only) does
        return rm.rnn.FusedRNNCell(num_hidden, num_layers=num_layers, mode="lstm",
                                   prefix="lstm_", forget_bias=0.5)
    stack = rm.rnn.SequentialRNNCell()
    for i in range(num_layers):
        stack.add(rm.rnn.LSTMCell(num_hidden=num_hidden, prefix=f"lstm_l{i}_"))
    return stack


def lstm_sym_gen(vocab_size, num_embed, num_hidden, num_layers, fused=False):
    """sym_gen(seq_len) -> (symbol, data_names, label_names): MXNet's bucketing LSTM LM."""
    def sym_gen(seq_len):
        data = rm.sym.Variable("data")
        label = rm.sym.Variable("softmax_label")
        embed = rm.sym.Embedding(data=data, input_dim=vocab_size, output_dim=num_embed,
                                 name="embed")
        cell = lstm_cell(num_hidden, num_layers, fused)
        outputs, _ = cell.unroll(seq_len, inputs=embed, layout="NTC", merge_outputs=True)
        pred = rm.sym.Reshape(outputs, shape=(-1, num_hidden))
        pred = rm.sym.FullyConnected(data=pred, num_hidden=vocab_size, name="pred")
        label = rm.sym.Reshape(label, shape=(-1,))
        pred = rm.sym.SoftmaxOutput(data=pred, label=label, name="softmax",
                                    use_ignore=True, ignore_label=PAD)
        return pred, ("data",), ("softmax_label",)
    return sym_gen


def parse_args(argv=None):
    p = parser(__doc__)
    p.add_argument("--package", default="email", help="stdlib package whose source is the text")
    p.add_argument("--max-lines", type=int, default=2000, help="lines of text to use")
    p.add_argument("--epochs", type=int, default=5, help="training epochs")
    p.add_argument("--batch-size", type=int, default=32, help="lines per batch")
    p.add_argument("--buckets", type=int, nargs="+", default=[20, 40, 60, 80],
                   help="bucket lengths (characters); longer lines are dropped")
    p.add_argument("--num-embed", type=int, default=32, help="embedding size")
    p.add_argument("--num-hidden", type=int, default=64, help="LSTM hidden units per layer")
    p.add_argument("--num-layers", type=int, default=2, help="stacked LSTM layers")
    p.add_argument("--fused", action="store_true",
                   help="the LSTM layers as one FusedRNNCell (the RNN operator)")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    p.add_argument("--contexts", type=int, default=1, help="number of CPU device workers")
    p.add_argument("--placement", choices=["ray", "in_process"], default="ray",
                   help="device workers as Ray actors, or in this process (debugging)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the lines held out for validation")
    add_output_options(p, "lstm_bucketing")
    p.add_argument("--seed", type=int, default=0, help="seed of the line sample, shuffling "
                   "and initial weights")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logging()
    rm.random.seed(args.seed)
    outputs = Outputs(args, "lstm_bucketing")
    lines = source_lines(args.package, args.max_lines, args.seed)
    n_val = max(args.batch_size, int(len(lines) * args.val_fraction))
    chars = [list(line) for line in lines]
    encoded, vocab = rm.rnn.encode_sentences(chars, invalid_label=PAD, invalid_key="\n",
                                             start_label=1)
    train = rm.rnn.BucketSentenceIter(encoded[n_val:], args.batch_size, buckets=args.buckets,
                                      invalid_label=PAD)
    val = rm.rnn.BucketSentenceIter(encoded[:n_val], args.batch_size, buckets=args.buckets,
                                    invalid_label=PAD)
    print(f"{len(lines)} lines of {args.package}'s source, {len(vocab)} symbols; "
          f"buckets {train.buckets}, {len(train.idx)} train / {len(val.idx)} val batches")
    contexts = [rm.cpu(i) for i in range(args.contexts)]
    mod = rm.mod.BucketingModule(
        lstm_sym_gen(len(vocab), args.num_embed, args.num_hidden, args.num_layers,
                     args.fused),
        default_bucket_key=train.default_bucket_key, context=contexts,
        placement=args.placement, logger=outputs.module_logger())
    mod.fit(train, eval_data=val, eval_metric=rm.metric.Perplexity(ignore_label=PAD),
            num_epoch=args.epochs, optimizer="adam",
            optimizer_params={"learning_rate": args.lr, "clip_gradient": 5.0},
            initializer=rm.init.Xavier(factor_type="in", magnitude=2.34),
            kvstore="device",
            epoch_end_callback=rm.callback.module_checkpoint(mod, outputs.prefix,
                                                             period=args.epochs),
            callbacks=outputs.callbacks())
    ((_, ppl),) = mod.score(val, rm.metric.Perplexity(ignore_label=PAD))
    outputs.finish()
    memory = mod.bucket_memory()
    print(f"validation perplexity {ppl:.2f} after {args.epochs} epochs; bytes per bucket: "
          + ", ".join(f"{k}: {memory[k] / 1e6:.2f} MB" for k in sorted(memory)))
    return ppl


if __name__ == "__main__":
    main()
