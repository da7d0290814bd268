"""Search the digits MLP's learning rate and hidden size with Ray Tune; print the best.

    python pipelines/tune_mlp.py                           # 8 trials on the embedded local Ray
    python pipelines/tune_mlp.py --samples 16 --epochs 20 --hidden 64 128 256
    RAY_ADDRESS=auto python pipelines/tune_mlp.py          # on a cluster (from the head node)

Each trial trains pipelines/mlp.py's network (hidden layers H and H/2) with
Module.fit on device workers of its own (Ray actors beside the trial's own
process), reports every epoch to Tune through
raymod.contrib.tune.TuneReportCallback and hands Tune a checkpoint of the
module at the end. The ASHA scheduler stops poor trials early. The learning
rate is drawn log-uniformly from [--lr-min, --lr-max], the hidden size from
--hidden. Tune's results and checkpoints go to <output>/tune_mlp; the best
configuration is printed at the end, with its checkpoint's location.
"""
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import raymod as rm  # noqa: E402
import common  # noqa: E402
import data  # noqa: E402
import mlp  # noqa: E402


def parse_args(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--samples", type=int, default=8, help="trials to run")
    p.add_argument("--epochs", type=int, default=10, help="epochs per trial (at most)")
    p.add_argument("--lr-min", type=float, default=0.01, help="smallest learning rate")
    p.add_argument("--lr-max", type=float, default=0.5, help="largest learning rate")
    p.add_argument("--hidden", type=int, nargs="+", default=[32, 64, 128, 256],
                   help="first hidden layer sizes to choose from (the second is half)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per batch")
    p.add_argument("--contexts", type=int, default=1, help="CPU device workers per trial")
    p.add_argument("--scheduler", choices=["asha", "fifo"], default="asha",
                   help="asha stops poor trials early; fifo runs every trial to the end")
    p.add_argument("--concurrent", type=int, default=None,
                   help="trials running at once (default: as many as Ray's CPUs allow)")
    p.add_argument("--output", default="runs",
                   help="folder or URL (s3://..., gs://...) for Tune's results, under tune_mlp/")
    p.add_argument("--seed", type=int, default=0, help="seed of the search and of each trial")
    return p.parse_args(argv)


def train_trial(config, digits, epochs, batch_size, contexts, seed):
    """One trial: fit the MLP with `config` and report every epoch to Tune."""
    from raymod.contrib.tune import TuneReportCallback
    rm.random.seed(seed)
    np.random.seed(seed)
    (x_train, y_train), (x_val, y_val) = digits
    train = rm.io.NDArrayIter(x_train, y_train, batch_size=batch_size, shuffle=True)
    val = rm.io.NDArrayIter(x_val, y_val, batch_size=batch_size)
    hidden = int(config["hidden"])
    mod = rm.mod.Module(mlp.mlp_symbol((hidden, max(1, hidden // 2))),
                        context=[rm.cpu(i) for i in range(contexts)], placement="ray",
                        logger=logging.getLogger("tune_mlp.trial"))
    mod.fit(train, eval_data=val, num_epoch=epochs, optimizer="sgd", kvstore="device",
            optimizer_params={"learning_rate": config["lr"], "momentum": 0.9, "wd": 1e-4},
            initializer=rm.init.Xavier(magnitude=2.0),
            callbacks=[TuneReportCallback(checkpoint=True, checkpoint_period=epochs)])


def storage_path(output):
    from raymod import fileio
    return output if fileio.is_remote(output) else os.path.abspath(fileio.local_path(output))


def ship_pipeline_code():
    """Send this folder's modules to the trial workers by value.

    The pipelines are scripts, not an installed package: a worker started by
    Ray from another directory (``ray job submit``, pytest) could not import
    them by name.
    """
    from ray import cloudpickle
    for module in (sys.modules.get(__name__), mlp, data, common):
        # A module missing from sys.modules (loaded from its file) already goes by value.
        if module is not None and module.__name__ != "__main__" \
                and sys.modules.get(module.__name__) is module:
            cloudpickle.register_pickle_by_value(module)


def run_search(args):
    """Run the Tune search; returns the best `ray.tune.Result`."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from raymod.contrib.tune import ensure_ray
    ensure_ray()
    ship_pipeline_code()
    digits = data.load_digits_split(seed=args.seed)
    trainable = tune.with_parameters(train_trial, digits=digits, epochs=args.epochs,
                                     batch_size=args.batch_size, contexts=args.contexts,
                                     seed=args.seed)
    scheduler = (ASHAScheduler(max_t=args.epochs, grace_period=min(2, args.epochs))
                 if args.scheduler == "asha" else FIFOScheduler())
    space = {"lr": tune.loguniform(args.lr_min, args.lr_max),
             "hidden": tune.choice(args.hidden)}
    logging.info("Tune: %d trials of up to %d epochs, lr in [%g, %g], hidden in %s",
                 args.samples, args.epochs, args.lr_min, args.lr_max, args.hidden)
    tuner = tune.Tuner(
        trainable, param_space=space,
        tune_config=tune.TuneConfig(metric="val-accuracy", mode="max", scheduler=scheduler,
                                    num_samples=args.samples,
                                    max_concurrent_trials=args.concurrent,
                                    search_alg=_seeded_search(args.seed)),
        run_config=tune.RunConfig(name="tune_mlp", storage_path=storage_path(args.output),
                                  verbose=1))
    results = tuner.fit()
    errors = [r.error for r in results if r.error is not None]
    if len(errors) == len(results):
        raise RuntimeError(f"every trial failed; the first error: {errors[0]}")
    return results.get_best_result()


def _seeded_search(seed):
    from ray.tune.search.basic_variant import BasicVariantGenerator
    return BasicVariantGenerator(random_state=seed)


def main(argv=None):
    args = parse_args(argv)
    common.setup_logging()
    best = run_search(args)
    accuracy = best.metrics["val-accuracy"]
    print(f"best configuration: lr={best.config['lr']:.4g} hidden={best.config['hidden']} "
          f"(validation accuracy {accuracy:.4f} after {best.metrics['epoch'] + 1} epochs); "
          f"checkpoint {best.checkpoint.path if best.checkpoint else 'none'}")
    return best


if __name__ == "__main__":
    main()
