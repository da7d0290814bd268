"""Train an MLP with Module.fit on handwritten digits; report validation accuracy; checkpoint.

    python pipelines/mlp.py                      # scikit-learn's digits, on Ray actors
    python pipelines/mlp.py --mnist ~/data/mnist # MNIST idx files, when you have them
    python pipelines/mlp.py --contexts 2 --kvstore device
    python pipelines/mlp.py --plot               # also draw runs/mlp-curve.png
    python pipelines/mlp.py --output s3://bucket/runs   # results to object storage (fsspec)

With no cluster address, raymod starts an embedded local Ray for the device
workers and stops it at exit; with RAY_ADDRESS set it uses that cluster.
Writes runs/mlp-symbol.json, runs/mlp-NNNN.params (the last epoch) and
runs/mlp-history.csv (every epoch's metrics and times) under --output.
"""
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import raymod as rm  # noqa: E402
from common import Outputs, add_output_options, parser, setup_logging  # noqa: E402
from data import load_digits_split, load_mnist_split  # noqa: E402


def mlp_symbol(hidden=(128, 64), num_classes=10):
    net = rm.sym.Variable("data")
    for i, h in enumerate(hidden):
        net = rm.sym.FullyConnected(net, num_hidden=h, name=f"fc{i + 1}")
        net = rm.sym.Activation(net, act_type="relu", name=f"relu{i + 1}")
    net = rm.sym.FullyConnected(net, num_hidden=num_classes, name=f"fc{len(hidden) + 1}")
    return rm.sym.SoftmaxOutput(net, name="softmax")


def parse_args(argv=None):
    p = parser(__doc__)
    p.add_argument("--mnist", help="directory with MNIST idx files (default: sklearn digits)")
    p.add_argument("--epochs", type=int, default=30, help="training epochs")
    p.add_argument("--batch-size", type=int, default=64, help="samples per batch")
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate (momentum 0.9)")
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 64],
                   help="hidden layer sizes")
    p.add_argument("--contexts", type=int, default=1, help="number of CPU device workers")
    p.add_argument("--kvstore", default="device",
                   help="how the workers' gradients meet: device, local, dist_sync, ...")
    p.add_argument("--placement", choices=["ray", "in_process"], default="ray",
                   help="device workers as Ray actors, or in this process (debugging)")
    p.add_argument("--max-worker-restarts", type=int, default=3,
                   help="how often a lost Ray worker is replaced (0: a loss ends the run)")
    p.add_argument("--kill-worker-at", metavar="EPOCH:BATCH",
                   help="a fault drill: SIGKILL the last device worker after this batch "
                        "(the run replaces it and ends as an undisturbed one would)")
    add_output_options(p, "mlp")
    p.add_argument("--seed", type=int, default=0, help="seed of the data split, shuffling "
                   "and initial weights")
    return p.parse_args(argv)


def load_data(args):
    """(train, val) NDArrayIters of the digits, or of MNIST with --mnist."""
    if args.mnist:
        logging.info("loading MNIST from %s", args.mnist)
        (x_train, y_train), (x_val, y_val) = load_mnist_split(args.mnist)
    else:
        (x_train, y_train), (x_val, y_val) = load_digits_split(seed=args.seed)
    logging.info("%d training and %d validation samples of %d features",
                 len(x_train), len(x_val), x_train.shape[1])
    train = rm.io.NDArrayIter(x_train, y_train, batch_size=args.batch_size, shuffle=True)
    val = rm.io.NDArrayIter(x_val, y_val, batch_size=args.batch_size)
    return train, val


def kill_drill(mod, when, rank):
    """A batch-end callback that kills device worker `rank` after batch EPOCH:BATCH."""
    if not when:
        return None
    epoch, nbatch = (int(v) for v in when.split(":"))

    def kill(param):
        if (param.epoch, param.nbatch) == (epoch, nbatch):
            pid = rm.parallel.kill_worker(mod, rank)
            logging.info("fault drill: killed device worker %d (pid %d) after epoch %d "
                         "batch %d", rank, pid, epoch, nbatch)
    return kill


def main(argv=None):
    args = parse_args(argv)
    setup_logging()
    rm.random.seed(args.seed)
    np.random.seed(args.seed)     # NDArrayIter shuffles with numpy's global RNG, as MXNet
    outputs = Outputs(args, "mlp")
    train, val = load_data(args)
    contexts = [rm.cpu(i) for i in range(args.contexts)]
    mod = rm.mod.Module(mlp_symbol(args.hidden), context=contexts, placement=args.placement,
                        logger=outputs.module_logger())
    mod.fit(train, eval_data=val, params=rm.mod.FitParams(
        num_epoch=args.epochs, optimizer="sgd", kvstore=args.kvstore,
        optimizer_params={"learning_rate": args.lr, "momentum": 0.9, "wd": 1e-4},
        initializer=rm.init.Xavier(magnitude=2.0),
        epoch_end_callback=rm.callback.do_checkpoint(outputs.prefix, period=args.epochs),
        batch_end_callback=kill_drill(mod, args.kill_worker_at, args.contexts - 1),
        max_worker_restarts=args.max_worker_restarts, callbacks=outputs.callbacks()))
    (name, accuracy), = mod.score(val, "acc")
    outputs.finish()
    print(f"validation {name}: {accuracy:.4f} on {val.num_data} samples; "
          f"checkpoint {outputs.params_file(args.epochs)}")
    return accuracy


if __name__ == "__main__":
    main()
