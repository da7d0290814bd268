"""Train an MLP with Module.fit on handwritten digits; report validation accuracy; checkpoint.

    python pipelines/mlp.py                      # scikit-learn's digits, on Ray actors
    python pipelines/mlp.py --mnist ~/data/mnist # MNIST idx files, when you have them
    python pipelines/mlp.py --contexts 2 --kvstore device

With no cluster address, raymod starts an embedded local Ray for the device
workers and stops it at exit; with RAY_ADDRESS set it uses that cluster.
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import raymod as rm  # noqa: E402
from data import load_digits_split, load_mnist_split  # noqa: E402


def mlp_symbol(hidden=(128, 64), num_classes=10):
    net = rm.sym.Variable("data")
    for i, h in enumerate(hidden):
        net = rm.sym.FullyConnected(net, num_hidden=h, name=f"fc{i + 1}")
        net = rm.sym.Activation(net, act_type="relu", name=f"relu{i + 1}")
    net = rm.sym.FullyConnected(net, num_hidden=num_classes, name=f"fc{len(hidden) + 1}")
    return rm.sym.SoftmaxOutput(net, name="softmax")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", help="directory with MNIST idx files (default: sklearn digits)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    p.add_argument("--contexts", type=int, default=1, help="number of CPU device workers")
    p.add_argument("--kvstore", default="device")
    p.add_argument("--placement", choices=["ray", "in_process"], default="ray")
    p.add_argument("--checkpoint", default="runs/mlp", help="checkpoint prefix")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rm.random.seed(args.seed)
    np.random.seed(args.seed)     # NDArrayIter shuffles with numpy's global RNG, as MXNet
    if args.mnist:
        (x_train, y_train), (x_val, y_val) = load_mnist_split(args.mnist)
    else:
        (x_train, y_train), (x_val, y_val) = load_digits_split(seed=args.seed)
    train = rm.io.NDArrayIter(x_train, y_train, batch_size=args.batch_size, shuffle=True)
    val = rm.io.NDArrayIter(x_val, y_val, batch_size=args.batch_size)
    contexts = [rm.cpu(i) for i in range(args.contexts)]
    mod = rm.mod.Module(mlp_symbol(args.hidden), context=contexts, placement=args.placement)
    os.makedirs(os.path.dirname(os.path.abspath(args.checkpoint)), exist_ok=True)
    mod.fit(train, eval_data=val, params=rm.mod.FitParams(
        num_epoch=args.epochs, optimizer="sgd", kvstore=args.kvstore,
        optimizer_params={"learning_rate": args.lr, "momentum": 0.9, "wd": 1e-4},
        initializer=rm.init.Xavier(magnitude=2.0),
        batch_end_callback=rm.callback.Speedometer(args.batch_size, frequent=50),
        epoch_end_callback=rm.callback.do_checkpoint(args.checkpoint, period=args.epochs)))
    (name, accuracy), = mod.score(val, "acc")
    print(f"validation {name}: {accuracy:.4f} on {len(x_val)} samples; "
          f"checkpoint {args.checkpoint}-{args.epochs:04d}.params")
    return accuracy


if __name__ == "__main__":
    main()
