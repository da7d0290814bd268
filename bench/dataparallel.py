"""Data parallelism on Ray actors: overhead against the in-process worker, scaling, exchange.

    python bench/dataparallel.py [--samples 60000] [--repeats 3] [--profile]

All on the MLP of bench/fit_mlp.py (784-512-256-10, relu, SoftmaxOutput,
batch 128, SGD momentum 0.9, lr 0.1, synthetic MNIST-shaped data), in one run
on an embedded local Ray sized for this machine:

(a) one epoch of `Module.fit` with one Ray-actor worker against the same with
    the in-process worker, at the same BLAS thread count (the actor gets all
    the machine's cores; the driver is limited to as many with threadpoolctl).
    Target: Ray >= 0.90x the in-process throughput. (a1) is the same with one
    BLAS thread on both sides (`set_cpu_worker_threads(1)`), which leaves the
    driver and Ray's own threads a core of their own on a small machine.
(b) two CPU workers (kvstore 'device', each with half the cores) against one,
    same global batch: the throughput ratio, and per step the time spent
    outside computation (wall time per step minus the time the busier worker
    spent inside its step/exchange calls, from the workers' `busy_seconds`).
(c) the gradient exchange alone with 2 workers for 1e5, 1e6 and 1e7 float32
    parameters: the path the scheduler takes for 'device' (each worker's
    `apply` publishes its gradients, into its shared buffer on one machine,
    and every worker's `reduce_update` receives both publications, sums them
    in one pass and applies SGD momentum), pipelined as in fit (at most 16
    calls in flight). GB/s = gradient bytes per worker / time per exchange;
    target >= 1.5 GB/s. The same exchange with the gradients sent by value
    through the object store (the path between machines) is the baseline of
    the same run. The workers' own clocks split a step into publish (the
    copy into the buffer), sum (reading the peer's gradient included) and
    the optimizer update; the GB/s without the update's time is the exchange
    itself. Each path runs twice, in turns; the better turn counts.

Each figure prints one summary line starting with its letter. The sides of (a)
and of (b) take turns in two rounds; in each round a side runs a warm-up
epoch and `--repeats` timed epochs; times are medians of the timed epochs.
On a shared machine other processes' load moves every figure: rerun when
the machine is quiet, and compare only figures of one run.
"""
import argparse
import cProfile
import io
import logging
import os
import pstats
import statistics
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fit_mlp import BATCH, CLASSES, HIDDEN, LR, MOMENTUM, synthetic_mnist  # noqa: E402

TARGET_A = 0.90
TARGET_C = 1.5          # GB/s of gradient exchange, 2 workers, one machine
_IN_FLIGHT = 16         # as the scheduler's bound on unchecked calls


def mlp_symbol(rm):
    net = rm.sym.Variable("data")
    for i, h in enumerate(HIDDEN):
        net = rm.sym.FullyConnected(net, num_hidden=h, name=f"fc{i + 1}")
        net = rm.sym.Activation(net, act_type="relu", name=f"relu{i + 1}")
    net = rm.sym.FullyConnected(net, num_hidden=CLASSES, name=f"fc{len(HIDDEN) + 1}")
    return rm.sym.SoftmaxOutput(net, name="softmax")


def _wait_for_free_cores(ray, cores, timeout=10.0):
    """A module deleted a moment ago frees its cores at Ray's next resource report."""
    deadline = time.time() + timeout
    while ray.available_resources().get("CPU", 0) < cores and time.time() < deadline:
        time.sleep(0.05)


class FitRunner:
    """A module trained one `fit` epoch at a time, so placements can take turns.

    Timing the two sides in alternating epochs keeps a burst of load from
    another process from landing on one side only.
    """

    def __init__(self, rm, contexts, placement, kvstore, x, y):
        rm.random.seed(0)
        self.rm, self.placement, self.kvstore = rm, placement, kvstore
        self.mod = rm.mod.Module(mlp_symbol(rm), context=contexts, placement=placement)
        self.train = rm.io.NDArrayIter(x, y, batch_size=BATCH, shuffle=False,
                                       last_batch_handle="pad")
        self.epochs = 0

    def busy(self):
        if self.placement != "ray":
            return None
        return self.mod._exec_group._call("busy_seconds")     # after the queued steps

    def epoch(self, threads=None):
        """(wall seconds, seconds the busier worker computed) of one more epoch."""
        from threadpoolctl import threadpool_limits
        with threadpool_limits(threads) if threads else _nothing():
            before = self.busy() if self.epochs else None
            tic = time.perf_counter()
            self.mod.fit(self.train, begin_epoch=self.epochs, num_epoch=self.epochs + 1,
                         kvstore=self.kvstore, initializer=self.rm.init.Xavier(),
                         optimizer="sgd",
                         optimizer_params={"learning_rate": LR, "momentum": MOMENTUM})
            self.train.reset()
            if self.placement == "ray":
                self.mod._exec_group._scheduler.sync()
            seconds = time.perf_counter() - tic
        after = self.busy()
        self.epochs += 1
        busy = max(b - a for a, b in zip(before, after)) if before else None
        return seconds, busy

    def close(self):
        self.mod = None


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def alternate(runners, repeats, threads=None, rounds=2):
    """`rounds` rounds; in each, every runner in turn: a warm-up epoch, then `repeats` timed.

    Medians per runner over all timed epochs. Blocks of consecutive epochs
    are how training runs (a worker left idle for a second starts its next
    epoch cold); taking turns by block spreads bursts of outside load.
    """
    results = {r: [] for r in runners}
    for _ in range(rounds):
        for r in runners:
            limit = threads.get(r) if threads else None
            r.epoch(limit)
            results[r] += [r.epoch(limit) for _ in range(repeats)]
    out = []
    for r in runners:
        secs = [t for t, _ in results[r]]
        busy = [b for _, b in results[r] if b is not None]
        out.append((statistics.median(secs), statistics.median(busy) if busy else None))
    return out


def profile_epoch(runner):
    prof = cProfile.Profile()
    prof.enable()
    runner.epoch()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(20)
    return out.getvalue()


def exchange_seconds(rm, size, iters, shared=True):
    """(seconds per exchange of `size` float32 parameters between 2 workers, phases).

    phases: the busier worker's seconds per exchange in publish, sum and update.
    """
    fc = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=size, no_bias=True,
                               name="big")
    mod = rm.mod.Module(rm.sym.MakeLoss(rm.sym.sum(fc)), label_names=None,
                        context=[rm.cpu(0), rm.cpu(1)], placement="ray")
    mod.bind([("data", (2, 1))])
    mod.init_params(initializer=rm.init.Uniform(0.01))
    mod.init_optimizer(kvstore="device", optimizer="sgd",
                       optimizer_params={"learning_rate": 0.01, "momentum": MOMENTUM})
    group = mod._exec_group
    workers, key, names = group._workers, group._key, group.param_names

    def exchange():
        grads = [workers.submit_one(rank, "apply", key, return_grads=names, exchange=shared)
                 for rank in range(len(workers))]
        return grads + workers.submit("reduce_update", key, names, *grads)

    def run(n):
        in_flight = []
        for _ in range(n):
            in_flight += exchange()
            if len(in_flight) > _IN_FLIGHT:
                workers.wait(in_flight[:-_IN_FLIGHT])
                in_flight = in_flight[-_IN_FLIGHT:]
        workers.wait(in_flight)

    run(4)              # warm-up; a shared buffer is in use from the fourth exchange
    before = workers.wait([workers.submit_one(r, "exchange_profile") for r in range(2)])
    tic = time.perf_counter()
    run(iters)
    seconds = (time.perf_counter() - tic) / iters
    after = workers.wait([workers.submit_one(r, "exchange_profile") for r in range(2)])
    phases = {p: max(a[p] - b[p] for a, b in zip(after, before)) / iters
              for p in ("publish", "sum", "update")}
    if shared and any(a["by_value"] != b["by_value"] for a, b in zip(after, before)):
        raise RuntimeError("the timed exchanges did not go through the shared buffers")
    return seconds, phases


def run_a(rm, ray1, args, x, y, cores, steps, threads, label="a"):
    """(a) one worker: Ray actor against in-process, at the same BLAS thread count."""
    ip = FitRunner(rm, [rm.cpu(0)], "in_process", "local", x, y)
    (t_ip, _), (t_ray1, busy1) = alternate([ip, ray1], args.repeats,
                                           {ip: threads, ray1: None})
    ratio_a = t_ip / t_ray1
    print(f"({label}) 1 worker, {threads} BLAS thread(s): in-process {args.samples / t_ip:,.0f} "
          f"samples/s, Ray actor {args.samples / t_ray1:,.0f} samples/s -> {ratio_a:.3f}x "
          f"(target >= {TARGET_A:.2f}x: {'met' if ratio_a >= TARGET_A else 'MISSED'}); "
          f"per step in-process {1e3 * t_ip / steps:.2f} ms, Ray {1e3 * t_ray1 / steps:.2f} ms "
          f"of which outside the worker's compute {1e3 * (t_ray1 - busy1) / steps:.2f} ms")
    if args.profile:
        print(profile_epoch(ray1))
    ip.close()


def run_b(rm, ray1, args, x, y, cores, steps):
    """(b) two workers, 'device' kvstore, same global batch, against the one of (a)."""
    ray2 = FitRunner(rm, [rm.cpu(0), rm.cpu(1)], "ray", "device", x, y)
    (t_ray1, busy1), (t_ray2, busy2) = alternate([ray1, ray2], args.repeats)
    print(f"(b) 2 workers ('device', {max(1, cores // 2)} BLAS thread(s) each) vs 1 worker "
          f"({cores}): {args.samples / t_ray2:,.0f} vs {args.samples / t_ray1:,.0f} samples/s "
          f"-> {t_ray1 / t_ray2:.3f}x; per step {1e3 * t_ray2 / steps:.2f} ms, of which the "
          f"busier worker computed (forward, backward, sum, update) {1e3 * busy2 / steps:.2f} "
          f"ms and {1e3 * (t_ray2 - busy2) / steps:.2f} ms went outside computation "
          f"(1 worker: {1e3 * (t_ray1 - busy1) / steps:.2f} ms)")
    ray2.close()


def run_c(rm, ray, cores):
    """(c) the gradient exchange alone: shared buffers against the object store, one run."""
    for size, iters in ((10**5, 200), (10**6, 50), (10**7, 10)):
        results = {}
        for shared in (True, False, True, False):       # take turns against outside load
            _wait_for_free_cores(ray, cores)
            results.setdefault(shared, []).append(exchange_seconds(rm, size, iters, shared))
        sec, phases = min(results[True], key=lambda r: r[0])
        store = min(t for t, _ in results[False])
        gbs = 4 * size / sec / 1e9
        print(f"(c) exchange {size:.0e} float32 ({4 * size / 1e6:.1f} MB) between 2 workers: "
              f"{1e3 * sec:.2f} ms per step, {gbs:.2f} GB/s (target >= {TARGET_C} GB/s: "
              f"{'met' if gbs >= TARGET_C else 'MISSED'}); by value through the object store "
              f"{1e3 * store:.2f} ms ({store / sec:.2f}x the time); busier worker per step: "
              f"publish {1e3 * phases['publish']:.2f} ms, sum {1e3 * phases['sum']:.2f} ms, "
              f"SGD update {1e3 * phases['update']:.2f} ms; without the update's time "
              f"{4 * size / (sec - phases['update']) / 1e9:.2f} GB/s")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=60000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--figures", default="abc", help="which of a, b, c to run (default: all)")
    p.add_argument("--profile", action="store_true",
                   help="profile one more Ray epoch of (a) in the driver")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)     # fit says "already bound" every epoch
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import raymod as rm
    import raymod.io  # noqa: F401
    from raymod.parallel.runtime import ensure_ray

    ray = ensure_ray()
    cores = int(ray.cluster_resources().get("CPU", 1))
    x, y = synthetic_mnist(args.samples)
    steps = -(-args.samples // BATCH)
    print(f"# {args.samples} samples, {steps} steps of {BATCH} per epoch, {cores} cores, "
          f"medians of 2 x {args.repeats} timed epochs per side; Ray {ray.__version__}")

    ray1 = FitRunner(rm, [rm.cpu(0)], "ray", "local", x, y)
    if "a" in args.figures:
        run_a(rm, ray1, args, x, y, cores, steps, cores)
        if cores > 1:
            # the same with one BLAS thread: the driver and Ray get a core of their own
            from raymod.parallel import set_cpu_worker_threads
            previous = set_cpu_worker_threads(1)
            ray_one = FitRunner(rm, [rm.cpu(0)], "ray", "local", x, y)
            set_cpu_worker_threads(previous)
            run_a(rm, ray_one, args, x, y, cores, steps, 1, label="a1")
            ray_one.close()
    if "b" in args.figures:
        run_b(rm, ray1, args, x, y, cores, steps)
    ray1.close()
    if "c" in args.figures:
        run_c(rm, ray, cores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
