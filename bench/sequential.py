"""SequentialModule speed: a 2-stage chain, with and without micro-batches, against one Module.

    python bench/sequential.py [--batch 256] [--widths 1024 32] [--steps 20] [--repeats 3]
                               [--micro 1 2 4 8] [--placement ray in_process]

The network is an MLP (data 512 -> 4 x FC(width)+relu -> FC 10 -> softmax)
cut in two equal halves. "one module" runs it whole on one device worker;
"2 stages" runs each half as a Module on its own device worker (its own Ray
actor with placement 'ray'), activations and input gradients handed worker
to worker; "micro=k" cuts each batch into k pipelined micro-batches, so the
two workers can compute at the same time. Each timed step is a training step
(forward, backward, SGD update); the rate is samples per second over the
fastest of `--repeats` runs of `--steps` steps (after a warm-up step), the
fastest because a shared machine's other load only ever slows a run down. A tiny width
(32) shows the fixed cost of the chain and of each micro-batch (actor calls
whose arguments are another actor's results), compute being negligible.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import raymod as rm  # noqa: E402
from raymod.io import DataBatch  # noqa: E402

IN_FEATURES, CLASSES, LAYERS = 512, 10, 4


def layers(net, start, stop, width):
    for i in range(start, stop):
        net = rm.sym.FullyConnected(net, num_hidden=width, name=f"fc{i}")
        net = rm.sym.Activation(net, act_type="relu", name=f"relu{i}")
    return net


def head(net):
    net = rm.sym.FullyConnected(net, num_hidden=CLASSES, name="out")
    return rm.sym.SoftmaxOutput(net, name="softmax")


def one_module(width, placement):
    sym = head(layers(rm.sym.Variable("data"), 0, LAYERS, width))
    return rm.mod.Module(sym, context=rm.cpu(0), placement=placement)


def two_stages(width, placement, micro):
    half = LAYERS // 2
    first = layers(rm.sym.Variable("data"), 0, half, width)
    second = head(layers(rm.sym.Variable("data"), half, LAYERS, width))
    seq = rm.mod.SequentialModule(micro_batches=micro)
    seq.add(rm.mod.Module(first, label_names=None, context=rm.cpu(0), placement=placement))
    seq.add(rm.mod.Module(second, context=rm.cpu(0), placement=placement), take_labels=True,
            auto_wiring=True)
    return seq


def cap_worker_threads(n):
    """Give every Ray device worker made from now on `n` BLAS threads."""
    from raymod.parallel import ray_group
    plan = ray_group._bundles

    def capped(*args, **kwargs):
        bundles, _ = plan(*args, **kwargs)
        return bundles, n
    ray_group._bundles = capped


def timed(mod, batch, steps, repeats):
    mod.bind([("data", batch.data[0].shape)], [("softmax_label", batch.label[0].shape)])
    mod.init_params(rm.init.Xavier())
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.01})

    def run(n):
        tic = time.perf_counter()
        for _ in range(n):
            mod.forward_backward(batch)
            mod.update()
        mod.get_params()                   # wait for the workers (Ray runs asynchronously)
        return time.perf_counter() - tic

    run(1)
    return min(run(steps) for _ in range(repeats)) / steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--widths", type=int, nargs="+", default=[1024, 32])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--micro", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--placement", nargs="+", default=["ray"], choices=["ray", "in_process"])
    p.add_argument("--threads-per-worker", type=int, default=0,
                   help="BLAS threads of each Ray worker (0: the worker group's choice)")
    args = p.parse_args(argv)
    if args.threads_per_worker:
        cap_worker_threads(args.threads_per_worker)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, IN_FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, args.batch).astype(np.float32)
    batch = DataBatch([x], [y], pad=0)
    for width in args.widths:
        for placement in args.placement:
            report(batch, width, placement, args)


def report(batch, width, placement, args):
    shape = f"mlp {IN_FEATURES}-{'-'.join([str(width)] * LAYERS)}-{CLASSES} batch={args.batch}"
    if args.threads_per_worker and placement == "ray":
        shape += f" threads/worker={args.threads_per_worker}"
    step = timed(one_module(width, placement), batch, args.steps, args.repeats)
    base = args.batch / step
    print(f"sequential {shape} placement={placement} one module (1 worker): "
          f"{base:,.0f} samples/s ({step * 1e3:.1f} ms/step)", flush=True)
    for micro in args.micro:
        seq = two_stages(width, placement, micro)
        step = timed(seq, batch, args.steps, args.repeats)
        rate = args.batch / step
        print(f"sequential {shape} placement={placement} 2 stages (2 workers, "
              f"{'chained' if seq.chained else 'driver'}) micro={micro}: {rate:,.0f} "
              f"samples/s ({step * 1e3:.1f} ms/step, x{rate / base:.2f} vs one module)",
              flush=True)
        del seq


if __name__ == "__main__":
    main()
