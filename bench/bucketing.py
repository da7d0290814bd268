"""BucketingModule speed and memory: an LSTM language model over four buckets.

    python bench/bucketing.py [--batches 40] [--repeats 3] [--placement in_process ray]
                              [--cells unrolled fused]

The model is MXNet's bucketing LSTM LM: vocabulary 1000, embedding 200,
2 LSTM layers of 200, buckets 10/20/30/40, batch 32, its LSTM layers either
unrolled LSTMCells (`unrolled`) or one FusedRNNCell, i.e. one RNN operator
(`fused`); the fused rate is also given as a ratio to the unrolled one
measured in the same run. Each timed batch is a
training step (forward, backward, SGD update) on random tokens, the buckets
taken in turn; the rate is tokens (batch x sequence length) per second over
the fastest of `--repeats` runs, after one warm-up pass through every bucket.
Memory: the bytes each bucket's executors allocated (`bucket_memory()`):
the default (largest) bucket holds the weights, gradients and its buffers;
every other bucket adds only its own intermediates, its inputs being views
of the default bucket's.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import raymod as rm  # noqa: E402
from raymod.io import DataBatch, DataDesc  # noqa: E402

VOCAB, EMBED, HIDDEN, LAYERS, BATCH = 1000, 200, 200, 2, 32
BUCKETS = (10, 20, 30, 40)


def make_sym_gen(cells):
    """sym_gen(seq_len) for the model with `cells` 'unrolled' (LSTMCells) or 'fused'."""
    def sym_gen(seq_len):
        data = rm.sym.Variable("data")
        label = rm.sym.Variable("softmax_label")
        embed = rm.sym.Embedding(data=data, input_dim=VOCAB, output_dim=EMBED, name="embed")
        if cells == "fused":
            cell = rm.rnn.FusedRNNCell(HIDDEN, num_layers=LAYERS, mode="lstm", prefix="lstm_")
        else:
            cell = rm.rnn.SequentialRNNCell()
            for i in range(LAYERS):
                cell.add(rm.rnn.LSTMCell(num_hidden=HIDDEN, prefix=f"lstm_l{i}_"))
        outputs, _ = cell.unroll(seq_len, inputs=embed, layout="NTC", merge_outputs=True)
        pred = rm.sym.Reshape(outputs, shape=(-1, HIDDEN))
        pred = rm.sym.FullyConnected(data=pred, num_hidden=VOCAB, name="pred")
        label = rm.sym.Reshape(label, shape=(-1,))
        return rm.sym.SoftmaxOutput(data=pred, label=label, name="softmax"), ("data",), \
            ("softmax_label",)
    return sym_gen


def batch(key, rng):
    data = rng.integers(0, VOCAB, (BATCH, key)).astype(np.float32)
    label = np.roll(data, -1, axis=1)
    return DataBatch([data], [label], pad=0, bucket_key=key,
                     provide_data=[DataDesc("data", data.shape)],
                     provide_label=[DataDesc("softmax_label", label.shape)])


def build(placement, cells):
    mod = rm.mod.BucketingModule(make_sym_gen(cells), default_bucket_key=max(BUCKETS),
                                 context=rm.cpu(0), placement=placement)
    mod.bind([("data", (BATCH, max(BUCKETS)))], [("softmax_label", (BATCH, max(BUCKETS)))])
    mod.init_params(rm.init.Xavier(factor_type="in", magnitude=2.34))
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.01})
    return mod


def run(mod, batches):
    tic = time.perf_counter()
    for b in batches:
        mod.forward_backward(b)
        mod.update()
    mod.get_outputs()                      # wait for the last step (Ray runs asynchronously)
    return time.perf_counter() - tic


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--placement", nargs="+", default=["in_process", "ray"],
                   choices=["in_process", "ray"])
    p.add_argument("--cells", nargs="+", default=["unrolled", "fused"],
                   choices=["unrolled", "fused"])
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    batches = [batch(BUCKETS[i % len(BUCKETS)], rng) for i in range(args.batches)]
    tokens = sum(b.data[0].size for b in batches)
    for placement in args.placement:
        rates = {}
        for cells in args.cells:
            mod = build(placement, cells)
            run(mod, [batch(k, rng) for k in BUCKETS])          # binds every bucket
            times = [run(mod, batches) for _ in range(args.repeats)]
            rates[cells] = tokens / min(times)
            print(f"bucketing lstm-lm vocab={VOCAB} embed={EMBED} hidden={HIDDEN} "
                  f"layers={LAYERS} batch={BATCH} buckets={list(BUCKETS)} cells={cells} "
                  f"placement={placement}: {rates[cells]:,.0f} tokens/s ({args.batches} "
                  f"steps, best of {args.repeats})")
            if placement == args.placement[0]:
                report_memory(mod, cells)
            del mod
        if len(rates) == 2:
            print(f"  fused / unrolled on {placement}: "
                  f"{rates['fused'] / rates['unrolled']:.2f}x")


def report_memory(mod, cells):
    memory = mod.bucket_memory()
    arg, _ = mod.get_params()
    params = sum(v.nbytes for v in arg.values())
    default = max(BUCKETS)
    print(f"  bucket memory ({cells}): default {default}: {memory[default] / 2**20:.1f} MiB "
          f"(weights {params / 2**20:.1f} MiB + gradients + its buffers); each extra "
          "bucket adds " + ", ".join(f"{k}: +{memory[k] / 2**20:.1f} MiB"
                                     for k in BUCKETS if k != default)
          + "; inputs of every extra bucket are views of the default's (0 bytes)")


if __name__ == "__main__":
    main()
