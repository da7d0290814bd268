"""LeNet forward+backward through the raymod executor: step time and the share spent in BLAS.

    python bench/conv.py [--steps 30] [--batch 64] [--act tanh] [--ctx cpu]
                         [--blas-threads N] [--no-data-grad] [--cpu-time]

The network is the classic MXNet LeNet (conv 5x5x20, act, max-pool 2x2/2,
conv 5x5x50, act, max-pool, FC 500, act, FC 10, SoftmaxOutput) on 28x28
inputs. It reports the median wall time of one `forward(is_train=True)` +
`backward()` step, and, from a cProfile run of the same steps, the fraction
of the step spent inside matrix-product calls (numpy/cupy dot, matmul,
tensordot, einsum). The profiler adds a little per-call overhead to the
Python side, so the profiled fraction slightly understates the unprofiled one.

The executor is bound exactly as `sym.simple_bind(ctx, data=..., softmax_label=...)`,
whose default grad_req='write' also computes the gradient of `data` (one
more product and a col2im in conv1); `--no-data-grad` binds data and label
with grad_req 'null', as Module does for training.

On a shared machine wall time swings with the other processes' load;
`--blas-threads 1 --cpu-time` measures this thread's CPU time instead
(all the work runs on it then), which is stable under load.
"""
import contextlib
import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import raymod as rm  # noqa: E402

BLAS_NAMES = ("dot", "matmul", "tensordot", "einsum")


def lenet(act_type="tanh"):
    """MXNet's example LeNet symbol."""
    data = rm.sym.Variable("data")
    conv1 = rm.sym.Convolution(data, kernel=(5, 5), num_filter=20, name="conv1")
    act1 = rm.sym.Activation(conv1, act_type=act_type, name="act1")
    pool1 = rm.sym.Pooling(act1, pool_type="max", kernel=(2, 2), stride=(2, 2), name="pool1")
    conv2 = rm.sym.Convolution(pool1, kernel=(5, 5), num_filter=50, name="conv2")
    act2 = rm.sym.Activation(conv2, act_type=act_type, name="act2")
    pool2 = rm.sym.Pooling(act2, pool_type="max", kernel=(2, 2), stride=(2, 2), name="pool2")
    flat = rm.sym.Flatten(pool2, name="flatten")
    fc1 = rm.sym.FullyConnected(flat, num_hidden=500, name="fc1")
    act3 = rm.sym.Activation(fc1, act_type=act_type, name="act3")
    fc2 = rm.sym.FullyConnected(act3, num_hidden=10, name="fc2")
    return rm.sym.SoftmaxOutput(fc2, name="softmax")


def bind(ctx, batch, act_type, seed=0, data_grad=True):
    sym = lenet(act_type)
    grad_req = "write"
    if not data_grad:
        grad_req = {n: "null" if n in ("data", "softmax_label") else "write"
                    for n in sym.list_arguments()}
    exe = sym.simple_bind(ctx, grad_req=grad_req, data=(batch, 1, 28, 28),
                          softmax_label=(batch,))
    rng = np.random.default_rng(seed)
    xp = ctx.xp
    for name, arr in exe.arg_dict.items():
        if name == "data":
            arr[...] = xp.asarray(rng.uniform(0, 1, arr.shape).astype(arr.dtype))
        elif name == "softmax_label":
            arr[...] = xp.asarray(rng.integers(0, 10, arr.shape).astype(arr.dtype))
        else:
            fan_in = int(np.prod(arr.shape[1:])) or 1
            scale = np.sqrt(3.0 / fan_in)
            arr[...] = xp.asarray(rng.uniform(-scale, scale, arr.shape).astype(arr.dtype))
    return exe


def step(exe):
    exe.forward(is_train=True)
    exe.backward()


def sync(ctx):
    if ctx.device_type == "gpu":
        ctx.xp.cuda.Stream.null.synchronize()


def time_steps(exe, ctx, steps, clock=time.perf_counter):
    times = []
    for _ in range(steps):
        t0 = clock()
        step(exe)
        sync(ctx)
        times.append(clock() - t0)
    return times


class _CountedBlas:
    """Swap the array module's matrix products for thin Python wrappers while profiling.

    numpy 2's `dot`/`matmul`/`einsum` are C-level dispatcher objects that
    cProfile does not record as calls of their own (their time lands in the
    calling op). A Python wrapper named `blas_<name>` makes each one a profiled
    function whose cumulative time is exactly the time inside the product.
    """

    def __init__(self, xp):
        self.xp = xp
        self.saved = {}

    def __enter__(self):
        for name in BLAS_NAMES:
            real = getattr(self.xp, name, None)
            if real is None:
                continue
            self.saved[name] = real
            setattr(self.xp, name, _wrapper(name, real))
        return self

    def __exit__(self, *exc):
        for name, real in self.saved.items():
            setattr(self.xp, name, real)


def _wrapper(name, real):
    def blas(*args, **kwargs):
        return real(*args, **kwargs)
    blas.__name__ = blas.__qualname__ = f"blas_{name}"    # code name stays "blas"
    return blas


def blas_fraction(exe, ctx, steps, clock=time.perf_counter):
    """(seconds in matrix-product calls, total profiled seconds, per-function rows)."""
    prof = cProfile.Profile(clock)
    with _CountedBlas(ctx.xp):
        prof.enable()
        for _ in range(steps):
            step(exe)
        sync(ctx)
        prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt
    blas, rows = 0.0, []
    for (path, _line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        if path == __file__ and func == "blas":
            blas += cumtime
            rows.append((cumtime, ncalls, "matrix products (dot/matmul/tensordot/einsum)"))
        else:
            rows.append((tottime, ncalls, f"{Path(path).name}:{func}" if path != "~" else func))
    rows.sort(reverse=True)
    return blas, total, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--act", default="tanh", choices=["tanh", "relu", "sigmoid"])
    parser.add_argument("--ctx", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--top", type=int, default=12, help="profile rows to print")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit BLAS threads (needs threadpoolctl)")
    parser.add_argument("--no-data-grad", action="store_true",
                        help="grad_req 'null' for data and label, as Module binds")
    parser.add_argument("--cpu-time", action="store_true",
                        help="measure this thread's CPU time, not wall time (use with "
                             "--blas-threads 1)")
    args = parser.parse_args(argv)
    with _blas_threads(args.blas_threads):
        return run(args)


def _blas_threads(n):
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=n, user_api="blas")


def run(args):
    ctx = rm.gpu(0) if args.ctx == "gpu" else rm.cpu(0)
    exe = bind(ctx, args.batch, args.act, data_grad=not args.no_data_grad)
    for _ in range(args.warmup):
        step(exe)
    sync(ctx)
    clock = time.thread_time if args.cpu_time else time.perf_counter
    times = time_steps(exe, ctx, args.steps, clock)
    median = statistics.median(times)
    blas, total, rows = blas_fraction(exe, ctx, args.steps, clock)
    threads = "" if args.blas_threads is None else f", {args.blas_threads} BLAS thread(s)"
    grads = ", no data gradient" if args.no_data_grad else ""
    grads += ", thread CPU time" if args.cpu_time else ""
    print(f"LeNet batch {args.batch} act {args.act} on {ctx}{threads}{grads}: "
          f"median step {median * 1e3:.2f} ms over {args.steps} steps "
          f"(min {min(times) * 1e3:.2f}, max {max(times) * 1e3:.2f}); "
          f"{args.batch / median:.0f} samples/s")
    print(f"matrix products: {blas:.3f} s of {total:.3f} s profiled = "
          f"{100 * blas / total:.1f}% of the step")
    if ctx.device_type == "gpu":
        print("(on GPU the BLAS share measures launch time only: kernels run asynchronously)")
    print(f"top {args.top} functions by own time (products: time inside):")
    for tottime, ncalls, label in rows[:args.top]:
        print(f"  {100 * tottime / total:5.1f}%  {tottime:7.3f} s  {ncalls:6d} calls  {label}")
    return median, blas / total


if __name__ == "__main__":
    main()
