"""Train an MLP split into two SequentialModule stages, pipelined in micro-batches.

    python pipelines/sequential.py                          # 2 stages, 4 micro-batches, Ray
    python pipelines/sequential.py --micro-batches 1        # no pipelining
    python pipelines/sequential.py --placement in_process

Stage 1 (fc1, relu, fc2, relu) and stage 2 (fc3, softmax) are two Modules,
each on its own device worker (a Ray actor by default). Stage 1's worker
hands its activations to stage 2's worker directly and gets the input
gradients back the same way; with micro-batches, stage 1 computes
micro-batch j+1 while stage 2 works on micro-batch j. The data is
scikit-learn's bundled handwritten digits; the validation accuracy is
printed at the end, the history written to runs/sequential-history.csv
(--output, --plot as in pipelines/mlp.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import raymod as rm  # noqa: E402
from common import Outputs, add_output_options, parser, setup_logging  # noqa: E402
from data import load_digits_split  # noqa: E402


def stage_symbols(hidden=(128, 64), num_classes=10):
    """(stage 1, stage 2): the MLP of pipelines/mlp.py cut before its last layer."""
    net = rm.sym.Variable("data")
    for i, h in enumerate(hidden):
        net = rm.sym.FullyConnected(net, num_hidden=h, name=f"fc{i + 1}")
        net = rm.sym.Activation(net, act_type="relu", name=f"relu{i + 1}")
    head = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=num_classes,
                                 name=f"fc{len(hidden) + 1}")
    return net, rm.sym.SoftmaxOutput(head, name="softmax")


def parse_args(argv=None):
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=20, help="training epochs")
    p.add_argument("--batch-size", type=int, default=64, help="samples per batch")
    p.add_argument("--micro-batches", type=int, default=4,
                   help="micro-batches per batch pipelined through the two stages")
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate (momentum 0.9)")
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 64],
                   help="hidden layer sizes of stage 1")
    p.add_argument("--placement", choices=["ray", "in_process"], default="ray",
                   help="device workers as Ray actors, or in this process (debugging)")
    add_output_options(p, "sequential", checkpoints=False)
    p.add_argument("--seed", type=int, default=0, help="seed of the data split, shuffling "
                   "and initial weights")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logging()
    rm.random.seed(args.seed)
    np.random.seed(args.seed)     # NDArrayIter shuffles with numpy's global RNG, as MXNet
    outputs = Outputs(args, "sequential")
    (x_train, y_train), (x_val, y_val) = load_digits_split(seed=args.seed)
    train = rm.io.NDArrayIter(x_train, y_train, batch_size=args.batch_size, shuffle=True)
    val = rm.io.NDArrayIter(x_val, y_val, batch_size=args.batch_size)
    first, second = stage_symbols(args.hidden)
    seq = rm.mod.SequentialModule(micro_batches=args.micro_batches,
                                  logger=outputs.module_logger())
    seq.add(rm.mod.Module(first, label_names=None, context=rm.cpu(0), placement=args.placement))
    seq.add(rm.mod.Module(second, context=rm.cpu(0), placement=args.placement),
            take_labels=True, auto_wiring=True)
    seq.fit(train, eval_data=val, num_epoch=args.epochs, optimizer="sgd",
            optimizer_params={"learning_rate": args.lr, "momentum": 0.9, "wd": 1e-4},
            initializer=rm.init.Xavier(magnitude=2.0), callbacks=outputs.callbacks())
    (name, accuracy), = seq.score(val, "acc")
    outputs.finish()
    print(f"validation {name}: {accuracy:.4f} on {len(x_val)} samples "
          f"({'chained worker to worker' if seq.chained else 'through the driver'}, "
          f"{args.micro_batches} micro-batches per batch of {args.batch_size})")
    return accuracy


if __name__ == "__main__":
    main()
