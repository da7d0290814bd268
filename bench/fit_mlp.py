"""One epoch of Module.fit on MNIST-shaped data against a hand-written numpy loop.

    python bench/fit_mlp.py [--repeats 3] [--samples 60000] [--profile]

Both sides train the same network on the same synthetic data (60,000 samples
of 784 features, 10 classes): MLP 784-512-256-10 with relu, softmax
cross-entropy (SoftmaxOutput), batch 128, SGD with momentum 0.9 and learning
rate 0.1, rescale_grad 1/128, the last batch padded as NDArrayIter pads it,
and a running training accuracy (fit's default metric). The numpy loop is
what a careful person would write by hand: preallocated out= buffers and
in-place updates.

Each side runs in a fresh subprocess (so the two peak resident set sizes,
from resource.getrusage maxrss, do not share a peak): one warm-up epoch,
then `--repeats` timed epochs; the median is reported. raymod runs with the
in-process placement on a single cpu context. The target (issue 4) is
raymod <= 1.15x the numpy loop.

Wall time is the measure; process CPU time is printed beside it because on a
shared machine it is less disturbed by other processes. `--threads N` sets
the BLAS thread count of both children. `--phases` adds the CPU time per
batch of each step (io, forward, backward, update, metric) on both sides.
`--profile` also runs one raymod epoch under cProfile and prints the top
entries by own time, to find overhead outside the matrix products.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FEATURES, CLASSES, HIDDEN = 784, 10, (512, 256)
BATCH, LR, MOMENTUM = 128, 0.1, 0.9
TARGET = 1.15


def synthetic_mnist(samples, seed=0):
    """MNIST-shaped float32 data in [0, 1) and labels 0..9 (as float32, like NDArrayIter)."""
    rng = np.random.default_rng(seed)
    x = rng.random((samples, FEATURES), dtype=np.float32)
    y = rng.integers(0, CLASSES, samples).astype(np.float32)
    return x, y


def _peak_rss_mib():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------- raymod side
def _raymod_module():
    sys.path.insert(0, str(ROOT))
    import raymod as rm
    import raymod.io  # noqa: F401

    data = rm.sym.Variable("data")
    net = rm.sym.FullyConnected(data, num_hidden=HIDDEN[0], name="fc1")
    net = rm.sym.Activation(net, act_type="relu", name="relu1")
    net = rm.sym.FullyConnected(net, num_hidden=HIDDEN[1], name="fc2")
    net = rm.sym.Activation(net, act_type="relu", name="relu2")
    net = rm.sym.FullyConnected(net, num_hidden=CLASSES, name="fc3")
    net = rm.sym.SoftmaxOutput(net, name="softmax")
    return rm, rm.mod.Module(net, context=rm.cpu(), placement="in_process")


def run_raymod(samples, repeats, profile=False):
    rm, mod = _raymod_module()
    x, y = synthetic_mnist(samples)
    train = rm.io.NDArrayIter(x, y, batch_size=BATCH, shuffle=False, last_batch_handle="pad")
    opt = {"learning_rate": LR, "momentum": MOMENTUM}
    rm.random.seed(0)
    times, cpu = [], []
    for epoch in range(repeats + 1):          # epoch 0 is the warm-up (binds, allocates)
        tic, ctic = time.perf_counter(), time.process_time()
        mod.fit(train, num_epoch=epoch + 1, begin_epoch=epoch, optimizer_params=opt,
                initializer=rm.init.Xavier())
        times.append(time.perf_counter() - tic)
        cpu.append(time.process_time() - ctic)
    result = {"times": times[1:], "cpu": cpu[1:], "peak_rss_mib": _peak_rss_mib()}
    if profile:
        import cProfile
        import io
        import pstats
        prof = cProfile.Profile()
        prof.enable()
        mod.fit(train, num_epoch=repeats + 2, begin_epoch=repeats + 1, optimizer_params=opt)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
        result["profile"] = out.getvalue()
    return result


# ---------------------------------------------------------------------- numpy side
class NumpyMLP:
    """The same training step by hand, allocation-free after construction."""

    def __init__(self, batch, seed=0):
        rng = np.random.default_rng(seed)
        sizes = (FEATURES,) + HIDDEN + (CLASSES,)
        self.w, self.b, self.mw, self.mb, self.gw, self.gb = [], [], [], [], [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
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

    def step(self, x, y):
        """Forward, backward, SGD-momentum update; returns the number of correct predictions."""
        correct = self.forward(x, y)
        self.backward(x, y)
        self.update(x.shape[0])
        return correct

    def forward(self, x, y):
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
        np.argmax(p, axis=1, out=self.pred)
        return int(np.count_nonzero(self.pred == y))

    def backward(self, x, y):
        g = self.dact[-1]
        np.copyto(g, self.act[-1])
        g[self.rows, y.astype(np.int64)] -= 1.0           # d(CE)/d(logits), unnormalised
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


def _padded_batches(x, y, batch):
    """The batches NDArrayIter(last_batch_handle='pad') yields (last one wraps around)."""
    n = x.shape[0]
    bx, by = np.empty((batch, x.shape[1]), x.dtype), np.empty(batch, y.dtype)
    for start in range(0, n, batch):
        end = start + batch
        if end <= n:
            yield x[start:end], y[start:end]
        else:
            rest = n - start
            bx[:rest], by[:rest] = x[start:], y[start:]
            bx[rest:], by[rest:] = x[:end - n], y[:end - n]
            yield bx, by


def _phase_clock(phases, name, tic):
    now = time.process_time()
    phases[name] = phases.get(name, 0.0) + now - tic
    return now


def phases_raymod(samples):
    """CPU ms per batch of each step of fit's loop, run by hand (after a warm-up epoch)."""
    rm, mod = _raymod_module()
    x, y = synthetic_mnist(samples)
    train = rm.io.NDArrayIter(x, y, batch_size=BATCH, last_batch_handle="pad")
    mod.fit(train, num_epoch=1, optimizer_params={"learning_rate": LR, "momentum": MOMENTUM},
            initializer=rm.init.Xavier())
    metric, phases, nbatch = rm.metric.create("acc"), {}, 0
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
    return {k: 1e3 * v / nbatch for k, v in phases.items()}


def phases_numpy(samples):
    x, y = synthetic_mnist(samples)
    net, phases, nbatch = NumpyMLP(BATCH), {}, 0
    for bx, by in _padded_batches(x, y, BATCH):           # warm-up
        net.step(bx, by)
    tic = time.process_time()
    for bx, by in _padded_batches(x, y, BATCH):
        tic = _phase_clock(phases, "io", tic)
        net.forward(bx, by)                               # includes the accuracy
        tic = _phase_clock(phases, "forward", tic)
        net.backward(bx, by)
        tic = _phase_clock(phases, "backward", tic)
        net.update(bx.shape[0])
        tic = _phase_clock(phases, "update", tic)
        nbatch += 1
    return {k: 1e3 * v / nbatch for k, v in phases.items()}


def run_numpy(samples, repeats):
    x, y = synthetic_mnist(samples)
    net = NumpyMLP(BATCH)
    times, cpu = [], []
    for _ in range(repeats + 1):
        tic, ctic = time.perf_counter(), time.process_time()
        correct = seen = 0
        for bx, by in _padded_batches(x, y, BATCH):
            correct += net.step(bx, by)
            seen += bx.shape[0]
        _ = correct / seen                                 # the epoch's accuracy
        times.append(time.perf_counter() - tic)
        cpu.append(time.process_time() - ctic)
    return {"times": times[1:], "cpu": cpu[1:], "peak_rss_mib": _peak_rss_mib()}


# ---------------------------------------------------------------------- driver
def _in_subprocess(mode, args):
    cmd = [sys.executable, __file__, "--child", mode, "--samples", str(args.samples),
           "--repeats", str(args.repeats)] + (["--profile"] if args.profile else []) + \
        (["--phases"] if args.phases else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if args.threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.threads)
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--phases", action="store_true",
                        help="also report CPU ms per batch of io/forward/backward/update/metric")
    parser.add_argument("--threads", type=int, default=0,
                        help="BLAS threads in both children (0: inherit the environment)")
    parser.add_argument("--child", choices=["raymod", "numpy"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "raymod":
        result = run_raymod(args.samples, args.repeats, args.profile)
        if args.phases:
            result["phases"] = phases_raymod(args.samples)
        print(json.dumps(result))
        return
    if args.child == "numpy":
        result = run_numpy(args.samples, args.repeats)
        if args.phases:
            result["phases"] = phases_numpy(args.samples)
        print(json.dumps(result))
        return
    results = {mode: _in_subprocess(mode, args) for mode in ("numpy", "raymod")}
    med = {mode: statistics.median(r["times"]) for mode, r in results.items()}
    cpu = {mode: statistics.median(r["cpu"]) for mode, r in results.items()}
    threads = args.threads or os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"samples={args.samples} batch={BATCH} mlp=784-512-256-10 relu sgd(momentum=0.9, "
          f"lr=0.1) repeats={args.repeats} (median after 1 warm-up epoch) blas_threads={threads}")
    for mode in ("numpy", "raymod"):
        r = results[mode]
        times = " ".join(f"{t:.3f}" for t in r["times"])
        print(f"{mode:7s} epoch {med[mode]:.3f} s wall  (runs: {times})  cpu {cpu[mode]:.3f} s  "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB")
    ratio = med["raymod"] / med["numpy"]
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"ratio raymod/numpy = {ratio:.3f} wall, {cpu['raymod'] / cpu['numpy']:.3f} cpu "
          f"({verdict} the <= {TARGET}x target on wall time)")
    if args.phases:
        for mode in ("numpy", "raymod"):
            phases = results[mode]["phases"]
            text = "  ".join(f"{k} {v:.3f}" for k, v in phases.items())
            print(f"{mode:7s} cpu ms/batch: {text}  total {sum(phases.values()):.3f}")
    if args.profile:
        print(results["raymod"].get("profile", ""))


if __name__ == "__main__":
    main()
