"""One epoch of Module.fit on MNIST-shaped data against a lean hand-written numpy loop.

    python bench/fit_mlp.py [--repeats 3] [--samples 60000] [--threads N]
                            [--placements in_process,ray] [--no-shuffle]
                            [--phases] [--profile] [--no-memory]

Both sides train the same network on the same synthetic data (60,000 samples
of 784 features, 10 classes): MLP 784-512-256-10 with relu, softmax
cross-entropy (SoftmaxOutput), batch 128, SGD with momentum 0.9 and learning
rate 0.1, rescale_grad 1/128, the samples shuffled every epoch, the last batch
padded as NDArrayIter pads it, and a running training accuracy (fit's default
metric). The numpy loop (`LeanLoop`, `NumpyMLP`) is what a careful person
would write by hand: one permutation per epoch, each batch gathered into a
preallocated buffer, out= buffers and in-place updates, nothing allocated
per step. Before timing, `check_same_math` runs three steps of both from the
same weights on the same batches and prints how far apart the weights are.

The figures (issue 10; ratios within this run):

(b) fit: one epoch of in-process `Module.fit` against one epoch of the numpy
    loop. Throughput ratio fit/numpy; target >= 0.90.
(c) step: steady state, `forward_backward` + `update` on premade batches (a
    value fetched at the end, so nothing is left queued) against the numpy
    loop's step on the same arrays. Time ratio raymod/numpy; target <= 1.10,
    for each placement in `--placements`.
(a) ray: with 'ray' in `--placements`, one epoch of `Module.fit` on one Ray
    actor against the in-process one. Throughput ratio; target >= 0.95.
    Beside it, the driver's CPU time per batch of that fit (target <= 0.1 ms).

The sides take turns in one process (the order alternating between rounds):
a warm-up epoch each, then `--repeats` rounds of one epoch each; the step
figure times `--steps` steps per side and round over `--step-rounds` rounds.
Reported: medians, and the median of the per-round ratios (which resists load
from other processes better than a ratio of medians). Wall time is the
measure; process CPU time is printed beside it (on the in-process sides it is
less disturbed by other processes; a Ray actor's CPU is not in it).

Peak memory: the numpy loop and each placement's fit run a warm-up and one
epoch in a fresh subprocess; the peak resident set size of each (VmHWM) is
printed, on Ray the driver's plus the device worker's, against in-process
fit (target <= 1.3x; `--no-memory` skips this).

`--threads N` limits BLAS to N threads (threadpoolctl here, the environment
in the memory subprocesses, `set_cpu_worker_threads` for Ray actors).
`--phases` adds the CPU time per batch of each part of a step (io, forward,
backward, update, metric) on both sides. `--profile` runs one more in-process
fit epoch under cProfile and prints the top entries by own time.
"""
import argparse
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procmem import peak_rss_mib, status_mib  # noqa: E402  (bench/procmem.py)

ROOT = Path(__file__).resolve().parents[1]
FEATURES, CLASSES, HIDDEN = 784, 10, (512, 256)
BATCH, LR, MOMENTUM = 128, 0.1, 0.9
TARGETS = {"fit": 0.90, "step": 1.10, "ray": 0.95, "driver_ms": 0.1, "memory": 1.3}
TARGET = 1.15           # issue 4: in-process fit epoch <= 1.15x the numpy loop's


def synthetic_mnist(samples, seed=0):
    """MNIST-shaped float32 data in [0, 1) and labels 0..9 (as float32, like NDArrayIter)."""
    rng = np.random.default_rng(seed)
    x = rng.random((samples, FEATURES), dtype=np.float32)
    y = rng.integers(0, CLASSES, samples).astype(np.float32)
    return x, y


# ---------------------------------------------------------------------- the numpy loop
class NumpyMLP:
    """The training step by hand, allocation-free after construction.

    `params` ({'fc1_weight': ..., 'fc1_bias': ..., ...}) gives the starting
    weights (copied); by default they are Xavier-uniform from `seed`.
    """

    def __init__(self, batch, seed=0, params=None):
        rng = np.random.default_rng(seed)
        sizes = (FEATURES,) + HIDDEN + (CLASSES,)
        self.w, self.b, self.mw, self.mb, self.gw, self.gb = [], [], [], [], [], []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            if params is not None:
                self.w.append(np.array(params[f"fc{i}_weight"], np.float32))
                self.b.append(np.array(params[f"fc{i}_bias"], np.float32))
                continue
            scale = np.sqrt(3.0 / ((fan_in + fan_out) / 2))        # Xavier(uniform, avg, 3)
            self.w.append(rng.uniform(-scale, scale, (fan_out, fan_in)).astype(np.float32))
            self.b.append(np.zeros(fan_out, np.float32))
        for w, b in zip(self.w, self.b):
            self.mw.append(np.zeros_like(w))
            self.mb.append(np.zeros_like(b))
            self.gw.append(np.zeros_like(w))
            self.gb.append(np.zeros_like(b))
        self.act = [np.empty((batch, n), np.float32) for n in sizes[1:]]
        self.dact = [np.empty((batch, n), np.float32) for n in sizes[1:]]
        self.rowmax = np.empty((batch, 1), np.float32)
        self.rowsum = np.empty((batch, 1), np.float32)
        self.rows = np.arange(batch)
        self.pred = np.empty(batch, np.int64)
        self.mask = [np.empty((batch, n), bool) for n in HIDDEN]

    @property
    def probs(self):
        """The softmax output of the last forward."""
        return self.act[-1]

    def step(self, x, y):
        """Forward, backward, SGD-momentum update (`y`: int64 class numbers)."""
        self.forward(x)
        self.backward(x, y)
        self.update(x.shape[0])

    def correct(self, y):
        """The number of right predictions of the last forward."""
        np.argmax(self.act[-1], axis=1, out=self.pred)
        return int(np.count_nonzero(self.pred == y))

    def forward(self, x):
        inp = x
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            out = self.act[i]
            np.dot(inp, w.T, out=out)
            out += b
            if i < len(HIDDEN):
                np.maximum(out, 0, out=out)
            inp = out
        p = self.act[-1]                                  # softmax in place
        np.max(p, axis=1, keepdims=True, out=self.rowmax)
        p -= self.rowmax
        np.exp(p, out=p)
        np.sum(p, axis=1, keepdims=True, out=self.rowsum)
        p /= self.rowsum

    def backward(self, x, y):
        g = self.dact[-1]
        np.copyto(g, self.act[-1])
        g[self.rows, y] -= 1.0                            # d(CE)/d(logits), unnormalised
        for i in range(len(self.w) - 1, -1, -1):
            below = x if i == 0 else self.act[i - 1]
            np.dot(g.T, below, out=self.gw[i])
            np.sum(g, axis=0, out=self.gb[i])
            if i > 0:
                gb = self.dact[i - 1]
                np.dot(g, self.w[i], out=gb)
                np.greater(below, 0, out=self.mask[i - 1])
                gb *= self.mask[i - 1]
                g = gb

    def update(self, batch):
        scale = LR / batch                                # lr * rescale_grad
        for params, moms, grads in ((self.w, self.mw, self.gw), (self.b, self.mb, self.gb)):
            for w, m, gr in zip(params, moms, grads):
                m *= MOMENTUM                             # m = 0.9 m - lr * g / batch
                gr *= scale
                m -= gr
                w += m


class LeanLoop:
    """Epochs of the numpy loop: shuffle, gather each batch, step, count right answers.

    The last batch is padded with the epoch's first samples, as NDArrayIter's 'pad'.
    """

    def __init__(self, x, y, batch=BATCH, seed=0, shuffle=True):
        self.x, self.y = x, y.astype(np.int64)
        self.batch, self.shuffle = batch, shuffle
        self.net = NumpyMLP(batch, seed)
        self.rng = np.random.default_rng(seed)
        self.bx = np.empty((batch, x.shape[1]), x.dtype)
        self.by = np.empty(batch, np.int64)

    def batches(self):
        """(rows, x rows, labels) of each batch of one epoch; the buffers are reused."""
        n, b = len(self.x), self.batch
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, b):
            rows = order[start:start + b]
            if len(rows) < b:
                rows = np.concatenate([rows, np.resize(order, b - len(rows))])
            # mode='clip' (the rows are valid): with the default 'raise', take buffers out=
            np.take(self.x, rows, axis=0, out=self.bx, mode="clip")
            np.take(self.y, rows, out=self.by, mode="clip")
            yield rows, self.bx, self.by

    def epoch(self):
        """One epoch; returns the running training accuracy."""
        correct = seen = 0
        for _, bx, by in self.batches():
            self.net.step(bx, by)
            correct += self.net.correct(by)
            seen += len(by)
        return correct / seen


# ---------------------------------------------------------------------- the raymod side
def mlp_symbol(rm):
    data = rm.sym.Variable("data")
    net = rm.sym.FullyConnected(data, num_hidden=HIDDEN[0], name="fc1")
    net = rm.sym.Activation(net, act_type="relu", name="relu1")
    net = rm.sym.FullyConnected(net, num_hidden=HIDDEN[1], name="fc2")
    net = rm.sym.Activation(net, act_type="relu", name="relu2")
    net = rm.sym.FullyConnected(net, num_hidden=CLASSES, name="fc3")
    return rm.sym.SoftmaxOutput(net, name="softmax")


def _import_raymod():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import raymod as rm
    import raymod.io  # noqa: F401
    return rm


class RaymodFit:
    """Epochs of `Module.fit` (one fit call each) on one cpu context of `placement`."""

    def __init__(self, rm, x, y, placement="in_process", shuffle=True, seed=0):
        self.rm = rm
        rm.random.seed(seed)
        np.random.seed(seed)                  # NDArrayIter shuffles with numpy's global state
        self.mod = rm.mod.Module(mlp_symbol(rm), context=rm.cpu(), placement=placement)
        self.train = rm.io.NDArrayIter(x, y, batch_size=BATCH, shuffle=shuffle,
                                       last_batch_handle="pad")
        self.epochs = 0

    def epoch(self):
        """One epoch of fit; returns the training accuracy fit logged."""
        with _quiet():
            history = self.mod.fit(self.train, begin_epoch=self.epochs,
                                   num_epoch=self.epochs + 1, initializer=self.rm.init.Xavier(),
                                   optimizer_params={"learning_rate": LR, "momentum": MOMENTUM})
        self.epochs += 1
        return history[-1].train["accuracy"]


@contextlib.contextmanager
def _quiet():
    """fit warns that the module is already bound and initialised on every later call."""
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logging.root.setLevel(level)


def premade_batches(rm, x, y, count):
    """`count` batches as (numpy x, int64 y) and as DataBatch, the same arrays."""
    out = []
    for k in range(count):
        rows = np.arange(k * BATCH, (k + 1) * BATCH) % len(x)
        bx, by = np.ascontiguousarray(x[rows]), y[rows]
        out.append(((bx, by.astype(np.int64)),
                    rm.io.DataBatch([rm.nd.array(bx)], [rm.nd.array(by)])))
    return out


def numpy_steps(net, batches, steps):
    for k in range(steps):
        bx, by = batches[k % len(batches)][0]
        net.step(bx, by)
    return float(net.probs[0, 0])


def raymod_steps(mod, batches, steps):
    for k in range(steps):
        mod.forward_backward(batches[k % len(batches)][1])
        mod.update()
    return float(mod.get_outputs()[0][0, 0])    # a fetched value: nothing left queued


# ---------------------------------------------------------------------- the same math
def check_same_math(rm, x, y, steps=3):
    """Both sides from the same weights on the same batches: the largest difference of
    any weight after `steps` steps, relative to that weight's largest magnitude."""
    fit = RaymodFit(rm, x, y, shuffle=True, seed=1)
    fit.mod.bind(fit.train.provide_data, fit.train.provide_label)
    fit.mod.init_params(initializer=rm.init.Xavier())
    fit.mod.init_optimizer(optimizer_params={"learning_rate": LR, "momentum": MOMENTUM})
    arg_params, _ = fit.mod.get_params()
    net = NumpyMLP(BATCH, params=arg_params)
    metric, correct = rm.metric.create("acc"), 0
    for _ in range(steps):
        batch = next(fit.train)
        fit.mod.forward_backward(batch)
        fit.mod.update()
        fit.mod.update_metric(metric, batch.label)
        bx = np.asarray(batch.data[0])
        by = np.asarray(batch.label[0]).astype(np.int64)
        net.step(bx, by)
        correct += net.correct(by)
    if metric.sum_metric != correct:
        raise AssertionError(f"accuracy counts differ: fit {metric.sum_metric}, numpy {correct}")
    arg_params, _ = fit.mod.get_params()
    worst = 0.0
    for i, (w, b) in enumerate(zip(net.w, net.b), start=1):
        for mine, name in ((w, f"fc{i}_weight"), (b, f"fc{i}_bias")):
            theirs = np.asarray(arg_params[name])
            scale = max(float(np.abs(theirs).max()), 1e-12)
            worst = max(worst, float(np.abs(mine - theirs).max()) / scale)
    return worst


# ---------------------------------------------------------------------- timing
def _timed(fn):
    """(wall, process CPU, this thread's CPU) seconds of `fn()`."""
    tic, ctic, ttic = time.perf_counter(), time.process_time(), time.thread_time()
    fn()
    return (time.perf_counter() - tic, time.process_time() - ctic,
            time.thread_time() - ttic)


def take_turns(sides, rounds):
    """{name: [(wall, cpu) per round]}: each round runs every side once, the order
    reversed every other round."""
    names = list(sides)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(_timed(sides[name]))
    return times


def _median_ratio(times, num, den, field=0):
    return statistics.median(a[field] / b[field] for a, b in zip(times[num], times[den]))


def _line(name, per_round, unit, scale):
    walls = [t[0] * scale for t in per_round]
    cpus = [t[1] * scale for t in per_round]
    runs = " ".join(f"{w:.3f}" for w in walls)
    return (f"  {name:18s} {statistics.median(walls):8.3f} {unit} wall (rounds: {runs})  "
            f"cpu {statistics.median(cpus):.3f} {unit}")


def _verdict(value, target, higher_is_better):
    ok = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    return f"{'meets' if ok else 'misses'} the {sign} {target}x target"


def figure_fit(rm, x, y, args, fits):
    """(b), and (a) when a Ray side is in `fits`: epochs taking turns."""
    lean = LeanLoop(x, y, shuffle=not args.no_shuffle)
    sides = {"numpy loop": lean.epoch}
    sides.update({f"fit {p}": fit.epoch for p, fit in fits.items()})
    take_turns(sides, 1)                                        # warm-up (binds, allocates)
    times = take_turns(sides, args.repeats)
    batches = -(-len(x) // BATCH)
    print(f"epoch (s), {len(x)} samples = {batches} batches; samples/s from the median:")
    for name, per_round in times.items():
        rate = len(x) / statistics.median(t[0] for t in per_round)
        print(_line(name, per_round, "s", 1.0) + f"  {rate:,.0f} samples/s")
    ratio = _median_ratio(times, "numpy loop", "fit in_process")
    cpu = _median_ratio(times, "numpy loop", "fit in_process", field=1)
    print(f"(b) fit in_process / numpy loop throughput = {ratio:.3f} wall, {cpu:.3f} cpu "
          f"(median of per-round ratios; {_verdict(ratio, TARGETS['fit'], True)})")
    print(f"    issue 4: fit epoch / numpy loop epoch = {1 / ratio:.3f} wall "
          f"({_verdict(1 / ratio, TARGET, False)})")
    if "fit ray" in times:
        ratio = _median_ratio(times, "fit in_process", "fit ray")
        print(f"(a) fit ray / fit in_process throughput = {ratio:.3f} wall "
              f"({_verdict(ratio, TARGETS['ray'], True)})")
        cpu = statistics.median(t[1] for t in times["fit ray"]) / batches * 1e3
        main = statistics.median(t[2] for t in times["fit ray"]) / batches * 1e3
        print(f"    driver CPU per batch on ray = {cpu:.3f} ms (this process's CPU time, "
              f"Ray's threads in it included; target <= {TARGETS['driver_ms']} ms), "
              f"{main:.3f} ms of it in the thread that runs fit")
    return times


def figure_step(rm, x, y, args, fits):
    """(c): steady-state steps on premade batches, each placement against numpy."""
    batches = premade_batches(rm, x, y, 16)
    net = NumpyMLP(BATCH)
    sides = {"numpy step": lambda: numpy_steps(net, batches, args.steps)}
    for placement, fit in fits.items():
        sides[f"step {placement}"] = (lambda mod=fit.mod:
                                      raymod_steps(mod, batches, args.steps))
    take_turns(sides, 1)
    times = take_turns(sides, args.step_rounds)
    print(f"steady-state step (ms), {args.steps} steps per round:")
    for name, per_round in times.items():
        print(_line(name, per_round, "ms", 1e3 / args.steps))
    for placement in fits:
        ratio = _median_ratio(times, f"step {placement}", "numpy step")
        print(f"(c) step {placement} / numpy step = {ratio:.3f} wall "
              f"({_verdict(ratio, TARGETS['step'], False)})")
    return times


# ---------------------------------------------------------------------- phases, profile
def _phase_clock(phases, name, tic):
    now = time.process_time()
    phases[name] = phases.get(name, 0.0) + now - tic
    return now


def phases_raymod(rm, fit):
    """CPU ms per batch of each part of fit's loop, run by hand (after fit's epochs)."""
    metric, phases, nbatch = rm.metric.create("acc"), {}, 0
    train, mod = fit.train, fit.mod
    train.reset()
    tic = time.process_time()
    for batch in train:
        tic = _phase_clock(phases, "io", tic)
        mod.forward(batch, is_train=True)
        tic = _phase_clock(phases, "forward", tic)
        mod.backward()
        tic = _phase_clock(phases, "backward", tic)
        mod.update()
        tic = _phase_clock(phases, "update", tic)
        mod.update_metric(metric, batch.label)
        tic = _phase_clock(phases, "metric", tic)
        nbatch += 1
    train.reset()
    return {k: 1e3 * v / nbatch for k, v in phases.items()}


def phases_numpy(lean):
    net, phases, nbatch = lean.net, {}, 0
    tic = time.process_time()
    for _, bx, by in lean.batches():
        tic = _phase_clock(phases, "io", tic)
        net.forward(bx)
        tic = _phase_clock(phases, "forward", tic)
        net.backward(bx, by)
        tic = _phase_clock(phases, "backward", tic)
        net.update(bx.shape[0])
        tic = _phase_clock(phases, "update", tic)
        net.correct(by)
        tic = _phase_clock(phases, "metric", tic)
        nbatch += 1
    return {k: 1e3 * v / nbatch for k, v in phases.items()}


def profile_fit(fit, top=25):
    import cProfile
    import io
    import pstats
    prof = cProfile.Profile()
    prof.enable()
    fit.epoch()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ---------------------------------------------------------------------- peak memory
def _memory_child(mode, samples, shuffle, threads):
    """A warm-up epoch and one more, alone in this process: its peak RSS, and on
    'ray' the device worker's too (with the shared-memory part of each, the
    object store's pages the process touched, at the end)."""
    x, y = synthetic_mnist(samples)
    if mode == "numpy":
        side = LeanLoop(x, y, shuffle=shuffle)
    elif mode == "in_process":
        side = RaymodFit(_import_raymod(), x, y, shuffle=shuffle)
    else:
        rm = _import_raymod()
        import ray
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        if threads:
            rm.parallel.set_cpu_worker_threads(threads)
        side = RaymodFit(rm, x, y, placement="ray", shuffle=shuffle)
    side.epoch()
    side.epoch()
    out = {"peak_rss_mib": peak_rss_mib(), "shmem_mib": status_mib("RssShmem")}
    if mode == "ray":
        (pid,) = side.mod._exec_group._workers.pids()
        out["worker_peak_rss_mib"] = peak_rss_mib(pid)
        out["worker_shmem_mib"] = status_mib("RssShmem", pid)
    print(json.dumps(out))


def peak_memory(args, placements):
    """Peak RSS of each side alone in a fresh process; on Ray, driver + worker."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if args.threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.threads)
    peaks = {}
    for mode in ["numpy"] + placements:
        cmd = [sys.executable, __file__, "--memory-child", mode, "--samples",
               str(args.samples), "--threads", str(args.threads)] + \
            (["--no-shuffle"] if args.no_shuffle else [])
        done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        peaks[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    print("peak RSS of a process running 2 epochs (VmHWM; shared = object-store pages "
          "the process touched, at the end):")
    for mode, got in peaks.items():
        line = f"  {mode:10s} {got['peak_rss_mib']:7.0f} MiB (shared {got['shmem_mib']:.0f})"
        if "worker_peak_rss_mib" in got:
            total = got["peak_rss_mib"] + got["worker_peak_rss_mib"]
            line += (f" + worker {got['worker_peak_rss_mib']:.0f} MiB (shared "
                     f"{got['worker_shmem_mib']:.0f}) = {total:.0f} MiB")
            got["total_mib"] = total
        print(line)
    if "ray" in peaks:
        ratio = peaks["ray"]["total_mib"] / peaks["in_process"]["peak_rss_mib"]
        print(f"peak memory ray (driver + worker) / in_process = {ratio:.2f} "
              f"({_verdict(ratio, TARGETS['memory'], False)}; "
              f"shared pages count in both processes that touched them)")
    return peaks



# ---------------------------------------------------------------------- driver
def _blas_limit(threads):
    if not threads:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                       # pragma: no cover
        sys.exit("--threads needs threadpoolctl (pip install threadpoolctl)")
    return threadpool_limits(limits=threads, user_api="blas")


def run(args):
    rm = _import_raymod()
    placements = [p for p in args.placements.split(",") if p]
    if "in_process" not in placements:
        sys.exit("--placements must include in_process (the figures compare against it)")
    x, y = synthetic_mnist(args.samples)
    threads = args.threads or os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"# samples={args.samples} batch={BATCH} mlp=784-512-256-10 relu sgd(momentum=0.9, "
          f"lr=0.1) shuffle={not args.no_shuffle} blas_threads={threads} "
          f"placements={','.join(placements)} rounds={args.repeats} (after 1 warm-up)")
    print(f"same math: after 3 steps from the same weights, the weights differ by at most "
          f"{check_same_math(rm, x, y):.2e} of their magnitude")
    if "ray" in placements and args.threads:
        from raymod.parallel import set_cpu_worker_threads
        set_cpu_worker_threads(args.threads)
    fits = {p: RaymodFit(rm, x, y, placement=p, shuffle=not args.no_shuffle)
            for p in placements}
    result = {"fit": figure_fit(rm, x, y, args, fits),
              "step": figure_step(rm, x, y, args, fits)}
    if args.phases:
        lean = LeanLoop(x, y, shuffle=not args.no_shuffle)
        lean.epoch()
        for name, phases in (("numpy loop", phases_numpy(lean)),
                             ("fit in_process", phases_raymod(rm, fits["in_process"]))):
            text = "  ".join(f"{k} {v:.3f}" for k, v in phases.items())
            print(f"  {name:15s} cpu ms/batch: {text}  total {sum(phases.values()):.3f}")
    if args.profile:
        print(profile_fit(fits["in_process"]))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per side")
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--steps", type=int, default=50, help="steps per side and round")
    parser.add_argument("--step-rounds", type=int, default=5)
    parser.add_argument("--placements", default="in_process,ray",
                        help="comma-separated: in_process (required) and ray")
    parser.add_argument("--no-shuffle", action="store_true",
                        help="train in the data's order (both sides)")
    parser.add_argument("--threads", type=int, default=0,
                        help="BLAS threads (0: the environment's setting)")
    parser.add_argument("--phases", action="store_true",
                        help="also report CPU ms per batch of io/forward/backward/update/metric")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak RSS children")
    parser.add_argument("--memory-child", choices=["numpy", "in_process", "ray"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        _memory_child(args.memory_child, args.samples, not args.no_shuffle, args.threads)
        return None
    with _blas_limit(args.threads):
        result = run(args)
    if not args.no_memory:
        result["peak_rss_mib"] = peak_memory(args, [p for p in args.placements.split(",") if p])
    return result


if __name__ == "__main__":
    main()
