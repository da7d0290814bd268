"""MLP 784-512-256-10 (relu, SoftmaxOutput), batch 128, float32: the raymod executor against
hand-written numpy doing the same math, and the memory the executor allocates per step.

    python bench/executor_mlp.py [--reps 31] [--steps 10] [--blas-threads 1] [--trace]

Speed: one step is `forward(is_train=True)` + `backward()` with the data and
label bound with grad_req 'null' (as Module binds them), so both sides compute
the same ten matrix products. The hand-written side is plain numpy as one
would write it (`x @ W.T + b`, `np.maximum`, a max-shifted softmax, the
gradients), allocating its temporaries as such code does. Both run in this
process on the same inputs, interleaved: each repetition times `--steps`
steps of one, then of the other (the order alternating between repetitions),
and the reported times are the medians over repetitions of the mean step
time; the median of the per-repetition ratios is printed too (it resists
load from other processes better). BLAS runs single-threaded by default
(`--blas-threads 0` keeps the library's own setting): on a shared machine a
multi-threaded BLAS measures thread scheduling, not the executor. Target:
raymod within 1.10x of numpy. The executor's own cost is printed as well:
the step time of a second executor whose operators are replaced by no-ops.

Memory: after warm-up, `tracemalloc` (numpy reports every array buffer it
allocates to tracemalloc) traces `--steps` executor steps. "net" is the
traced size after the steps minus before, per step (memory kept: should be
0); "peak" is the highest traced size during the steps minus the size before
(the largest transient allocation inside one step). Python's small objects
(array views made by reshape, argument tuples) are traced too, so a few
hundred bytes of peak are bookkeeping, not array buffers. `--trace` also
measures each operator call of the plan alone (the peak traced bytes while
it runs), to say which operator allocates.
"""
import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

try:                     # installed with scikit-learn (the 'test' extra)
    from threadpoolctl import threadpool_limits
except ImportError:      # pragma: no cover
    threadpool_limits = None

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import raymod as rm  # noqa: E402

SIZES = (784, 512, 256, 10)
BATCH = 128


def mlp():
    h = rm.sym.Variable("data")
    for i, n in enumerate(SIZES[1:], start=1):
        h = rm.sym.FullyConnected(h, num_hidden=n, name=f"fc{i}")
        if i < len(SIZES) - 1:
            h = rm.sym.Activation(h, act_type="relu", name=f"relu{i}")
    return rm.sym.SoftmaxOutput(h, name="softmax")


def make_inputs(seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:]), start=1):
        scale = np.sqrt(6.0 / (n_in + n_out))
        params[f"fc{i}_weight"] = rng.uniform(-scale, scale, (n_out, n_in)).astype(np.float32)
        params[f"fc{i}_bias"] = rng.uniform(-0.1, 0.1, n_out).astype(np.float32)
    data = rng.uniform(0, 1, (BATCH, SIZES[0])).astype(np.float32)
    label = rng.integers(0, SIZES[-1], BATCH).astype(np.float32)
    return params, data, label


def bind_executor(params, data, label):
    sym = mlp()
    reqs = {n: ("write" if n in params else "null") for n in sym.list_arguments()}
    exe = sym.simple_bind(rm.cpu(), grad_req=reqs, data=data.shape)
    exe.copy_params_from({**params, "data": data, "softmax_label": label})
    return exe


def executor_step(exe):
    exe.forward(is_train=True)
    exe.backward()


class NumpyMLP:
    """The same forward and backward, written directly in numpy."""

    def __init__(self, params, data, label):
        self.w = [params[f"fc{i}_weight"] for i in range(1, 4)]
        self.b = [params[f"fc{i}_bias"] for i in range(1, 4)]
        self.x = data
        self.label = label
        self.rows = np.arange(len(label))
        self.grads = None

    def step(self):
        w, b, x = self.w, self.b, self.x
        a1 = np.maximum(x @ w[0].T + b[0], 0)
        a2 = np.maximum(a1 @ w[1].T + b[1], 0)
        z = a2 @ w[2].T + b[2]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        g3 = p.copy()                                  # d(cross-entropy)/dz = p - onehot
        g3[self.rows, self.label.astype(np.int64)] -= 1
        g2 = (g3 @ w[2]) * (a2 > 0)
        g1 = (g2 @ w[1]) * (a1 > 0)
        self.grads = [g1.T @ x, g1.sum(axis=0), g2.T @ a1, g2.sum(axis=0),
                      g3.T @ a2, g3.sum(axis=0)]
        return p


def check_same_math(exe, ref):
    """Both sides must compute the same outputs and gradients before being timed."""
    executor_step(exe)
    p = ref.step()
    np.testing.assert_allclose(exe.outputs[0], p, rtol=1e-4, atol=1e-6)
    names = [f"fc{i}_{k}" for i in range(1, 4) for k in ("weight", "bias")]
    for name, g in zip(names, ref.grads):
        np.testing.assert_allclose(exe.grad_dict[name], g, rtol=1e-3, atol=1e-5)


def time_steps(fn, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def compare_speed(exe, ref, reps, steps):
    """Median step times of both sides and the median of the per-repetition ratios."""
    ours, theirs = [], []
    for r in range(reps):
        pair = [(ours, lambda: executor_step(exe)), (theirs, ref.step)]
        for out, fn in (pair if r % 2 == 0 else pair[::-1]):
            out.append(time_steps(fn, steps))
    ratios = [a / b for a, b in zip(ours, theirs)]
    return statistics.median(ours), statistics.median(theirs), statistics.median(ratios)


def executor_overhead(params, data, label, steps=2000):
    """Median seconds of one step of a separately bound executor whose operators do
    nothing: the executor's own cost (plan loop, head gradients, bookkeeping)."""
    exe = bind_executor(params, data, label)
    for s in exe._plan.steps:
        s.op.forward = s.op.backward = lambda *args: None    # instance attributes only
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        executor_step(exe)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_memory(exe, steps):
    tracemalloc.start()
    try:
        executor_step(exe)               # let tracemalloc see one step before measuring
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(steps):
            executor_step(exe)
        end, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (end - start) / steps, peak - start


def allocations_by_op(exe):
    """[(phase, node name, peak transient bytes)] for every operator call of one step."""
    plan, xp = exe._plan, exe._plan.xp
    rows = []
    tracemalloc.start()
    try:
        for s in plan.steps:
            base, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            s.op.forward(xp, s.ins, s.outs, s.ws, True)
            rows.append(("forward", s.node.name, tracemalloc.get_traced_memory()[1] - base))
        for s in plan.backward_steps:
            base, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            s.op.backward(xp, s.out_grads, s.ins, s.outs, s.in_grads, s.ws)
            rows.append(("backward", s.node.name, tracemalloc.get_traced_memory()[1] - base))
    finally:
        tracemalloc.stop()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=31)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads (0: leave the library default)")
    parser.add_argument("--trace", action="store_true",
                        help="also measure what each operator call allocates")
    args = parser.parse_args(argv)
    if args.blas_threads > 0:
        if threadpool_limits is None:
            parser.error("--blas-threads needs threadpoolctl (pip install threadpoolctl); "
                         "pass --blas-threads 0 to run with the library default")
        with threadpool_limits(limits=args.blas_threads, user_api="blas"):
            return run(args)
    return run(args)


def run(args):
    params, data, label = make_inputs()
    exe = bind_executor(params, data, label)
    ref = NumpyMLP(params, data, label)
    check_same_math(exe, ref)
    for _ in range(args.warmup):
        executor_step(exe)
        ref.step()
    ours, theirs, paired = compare_speed(exe, ref, args.reps, args.steps)
    ratio = ours / theirs
    net, peak = measure_memory(exe, args.steps)
    overhead = executor_overhead(params, data, label)
    threads = args.blas_threads or "library default"
    print(f"raymod executor : {ours * 1e3:8.3f} ms/step (median of {args.reps} x {args.steps}; "
          f"BLAS threads: {threads})")
    print(f"hand-written np : {theirs * 1e3:8.3f} ms/step")
    print(f"ratio           : {ratio:.3f} of the medians, {paired:.3f} median of paired "
          f"repetitions (target <= 1.10)")
    print(f"executor's own  : {overhead * 1e6:8.1f} us/step (operators stubbed out)")
    print(f"memory per step : net {net:+.0f} B kept, peak {peak:.0f} B transient "
          f"(tracemalloc over {args.steps} steps after warm-up)")
    if args.trace:
        print("peak bytes allocated inside each operator call:")
        for phase, name, size in allocations_by_op(exe):
            print(f"  {size:9d} B  {phase:8s} {name}")
    verdict = "meets" if ratio <= 1.10 else "misses"
    print(f"SUMMARY: executor MLP 784-512-256-10 b{BATCH} fp32 fwd+bwd {ours * 1e3:.2f} ms vs "
          f"numpy {theirs * 1e3:.2f} ms = {ratio:.2f}x (paired {paired:.2f}x; {verdict} 1.10x "
          f"target); executor's own cost {overhead * 1e6:.1f} us/step; "
          f"per-step memory net {net:+.0f} B, peak {peak:.0f} B (inside operators)")
    return ratio, net, peak


if __name__ == "__main__":
    main()
