"""ImageNet-sized CNNs through the raymod executor: forward, a training step, the GEMM floor.

    python bench/cnn.py [--networks resnet18 mobilenet inception-bn] [--batch 8]
                        [--size 224] [--repeats 3] [--top 8] [--ctx cpu]
                        [--blas-threads N] [--cpu-time]

For each network (raymod.models: ResNet-18, MobileNet 1.0, Inception-BN; 1000
classes, random weights) it reports
- forward: `forward(is_train=False)` of a (batch, 3, size, size) batch;
- train: `forward(is_train=True)` + `backward()`, gradients of the weights only
  (data and label bound with grad_req 'null', as Module does);
- the GEMM floor: the same run's matrix products alone. Every Convolution and
  FullyConnected call is recorded with its shapes; each product it implies
  (forward: W @ columns; backward: dW and d(columns), not for the first layer's
  data) is timed alone on preallocated arrays, a grouped convolution as one
  batched matmul over its groups; the floor is their sum;
- the share of the measured step spent inside dot/matmul, and the time per
  operator type (forward and backward separately).
Times are the median of `--repeats` runs after one warm-up. On a shared
machine `--blas-threads 1 --cpu-time` measures this thread's CPU time, which
other processes' load does not change.
"""
import argparse
import contextlib
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import raymod as rm  # noqa: E402
from raymod import models  # noqa: E402
from raymod.ops import registered_ops  # noqa: E402

NETWORKS = {
    "resnet18": lambda size: models.resnet(1000, 18, (3, size, size)),
    "mobilenet": lambda size: models.mobilenet(1000, 1.0, (3, size, size)),
    "mobilenet0.25": lambda size: models.mobilenet(1000, 0.25, (3, size, size)),
    "inception-bn": lambda size: models.inception_bn(1000, (3, size, size)),
    "resnet50": lambda size: models.resnet(1000, 50, (3, size, size)),
}
BLAS_NAMES = ("dot", "matmul")


class Clock:
    def __init__(self, ctx, cpu_time):
        self.ctx = ctx
        self.now = time.thread_time if cpu_time else time.perf_counter

    def sync(self):
        if self.ctx.device_type == "gpu":
            self.ctx.xp.cuda.Stream.null.synchronize()

    def timed(self, fn):
        self.sync()
        t0 = self.now()
        fn()
        self.sync()
        return self.now() - t0


def bind(name, batch, size, ctx, seed=0):
    sym = NETWORKS[name](size)
    grad_req = {n: "null" if n in ("data", "softmax_label") else "write"
                for n in sym.list_arguments()}
    exe = sym.simple_bind(ctx, grad_req=grad_req, data=(batch, 3, size, size),
                          softmax_label=(batch,))
    rng = np.random.default_rng(seed)
    xp = ctx.xp
    for n, arr in list(exe.arg_dict.items()) + list(exe.aux_dict.items()):
        if n == "data":
            value = rng.uniform(0, 1, arr.shape)
        elif n == "softmax_label":
            value = rng.integers(0, 1000, arr.shape)
        elif n.endswith("_var") or n.endswith("gamma"):
            value = np.ones(arr.shape)
        elif n.endswith("weight"):
            fan_in = int(np.prod(arr.shape[1:])) or 1
            value = rng.normal(0, np.sqrt(2.0 / fan_in), arr.shape)
        else:
            value = np.zeros(arr.shape)
        arr[...] = xp.asarray(value.astype(arr.dtype))
    return exe


# --------------------------------------------------------------------------- instruments

class OpTimes:
    """Wrap every operator class's forward/backward to add up time per op type."""

    def __init__(self, clock):
        self.clock = clock
        self.times = defaultdict(float)
        self.calls = defaultdict(int)
        self.gemms = []               # (kind, shapes) of every Conv/FC call, first pass
        self.record = False
        self.saved = []

    def __enter__(self):
        for cls in registered_ops().values():
            for method in ("forward", "backward"):
                self.saved.append((cls, method, cls.__dict__.get(method)))
                setattr(cls, method, self._wrap(cls.op_name, method, getattr(cls, method)))
        return self

    def __exit__(self, *exc):
        for cls, method, own in self.saved:
            if own is None:              # inherited: drop the wrapper, the base shows again
                delattr(cls, method)
            else:
                setattr(cls, method, own)

    def _wrap(self, op_name, method, real):
        key = f"{op_name}.{method}"

        def timed(op, xp, *args):
            if self.record and method == "forward" and op_name in ("Convolution",
                                                                   "FullyConnected"):
                inputs, outputs = args[0], args[1]
                self.gemms.append(_gemm_dims(op, inputs, outputs))
            self.clock.sync()
            t0 = self.clock.now()
            real(op, xp, *args)
            self.clock.sync()
            self.times[key] += self.clock.now() - t0
            self.calls[key] += 1
        return timed


def _gemm_dims(op, inputs, outputs):
    """[(batch, m, k, n)] of the forward product, and whether the data needs a gradient."""
    x, w = inputs[0], inputs[1]
    if op.op_name == "FullyConnected":
        n = x.shape[0] if op.flatten else int(np.prod(x.shape[:-1]))
        return ("fc", 1, n, w.shape[1], w.shape[0])
    G = op.num_group
    F, K = w.shape[0], int(np.prod(w.shape[1:]))
    NP = int(np.prod(outputs[0].shape)) // F
    return ("conv", G, F // G, K, NP)


class BlasTime:
    """Time spent inside xp.dot / xp.matmul while active."""

    def __init__(self, clock):
        self.clock = clock
        self.total = 0.0
        self.saved = {}

    def __enter__(self):
        xp = self.clock.ctx.xp
        for name in BLAS_NAMES:
            real = getattr(xp, name)
            self.saved[name] = real
            setattr(xp, name, self._wrap(real))
        return self

    def __exit__(self, *exc):
        for name, real in self.saved.items():
            setattr(self.clock.ctx.xp, name, real)

    def _wrap(self, real):
        def blas(*args, **kwargs):
            t0 = self.clock.now()
            out = real(*args, **kwargs)
            self.clock.sync()
            self.total += self.clock.now() - t0
            return out
        return blas


def gemm_floor(gemms, clock, repeats, training):
    """Seconds of the recorded products alone: forward, or forward + both backward ones."""
    xp = clock.ctx.xp
    cache = {}

    def product(batch, m, k, n):
        key = (batch, m, k, n)
        if key not in cache:
            a = xp.ones((batch, m, k), dtype=np.float32)
            b = xp.ones((batch, k, n), dtype=np.float32)
            out = xp.empty((batch, m, n), dtype=np.float32)
            if batch == 1:
                a, b, out = a[0], b[0], out[0]
                fn = lambda: xp.dot(a, b, out=out)        # noqa: E731
            else:
                fn = lambda: xp.matmul(a, b, out=out)     # noqa: E731
            fn()
            cache[key] = min(clock.timed(fn) for _ in range(repeats))
        return cache[key]

    total = 0.0
    for i, (kind, G, m, k, n) in enumerate(gemms):
        if kind == "fc":                       # y (N, H) = x (N, K) @ W^T
            total += product(1, m, k, n)
            if training:
                total += product(1, n, m, k)               # dW = gy^T @ x
                total += product(1, m, n, k)               # dx = gy @ W
            continue
        total += product(G, m, k, n)                       # W_g @ col_g
        if training:
            total += product(G, m, n, k)                   # dW_g = gy_g @ col_g^T
            if i > 0:
                total += product(G, k, m, n)               # dcol_g = W_g^T @ gy_g
    return total


# --------------------------------------------------------------------------- report

def measure(name, args, ctx, clock):
    exe = bind(name, args.batch, args.size, ctx)

    def forward():
        exe.forward(is_train=False)

    def train():
        exe.forward(is_train=True)
        exe.backward()

    forward()
    train()
    t_fwd = statistics.median(clock.timed(forward) for _ in range(args.repeats))
    t_train = statistics.median(clock.timed(train) for _ in range(args.repeats))
    with BlasTime(clock) as blas:
        t_fwd_blas = clock.timed(forward)
    fwd_share = blas.total / t_fwd_blas
    with BlasTime(clock) as blas:
        t_train_blas = clock.timed(train)
    train_share = blas.total / t_train_blas
    with OpTimes(clock) as ops:
        ops.record = True
        forward()
        ops.record = False
        gemms = list(ops.gemms)
        ops.times.clear()
        ops.calls.clear()
        train()
    floor_fwd = gemm_floor(gemms, clock, args.repeats, training=False)
    floor_train = gemm_floor(gemms, clock, args.repeats, training=True)
    print(f"{name}: batch {args.batch}, {args.size}x{args.size}, on {ctx}")
    print(f"  forward  {t_fwd * 1e3:8.1f} ms   GEMM floor {floor_fwd * 1e3:8.1f} ms   "
          f"ratio {t_fwd / floor_fwd:5.2f}   in dot/matmul {100 * fwd_share:4.1f}%")
    print(f"  train    {t_train * 1e3:8.1f} ms   GEMM floor {floor_train * 1e3:8.1f} ms   "
          f"ratio {t_train / floor_train:5.2f}   in dot/matmul {100 * train_share:4.1f}%")
    total = sum(ops.times.values())
    print(f"  top {args.top} operator calls of one training step (own time, incl. products):")
    for key, t in sorted(ops.times.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"    {100 * t / total:5.1f}%  {t * 1e3:8.1f} ms  {ops.calls[key]:5d} calls  {key}")
    return t_fwd, floor_fwd, t_train, floor_train


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", nargs="+", default=["resnet18", "mobilenet", "inception-bn"],
                    choices=sorted(NETWORKS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--ctx", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="limit BLAS threads (needs threadpoolctl)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="this thread's CPU time, not wall time (use with --blas-threads 1)")
    args = ap.parse_args(argv)
    ctx = rm.gpu(0) if args.ctx == "gpu" else rm.cpu(0)
    clock = Clock(ctx, args.cpu_time)
    limit = contextlib.nullcontext()
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(limits=args.blas_threads, user_api="blas")
    how = "thread CPU time" if args.cpu_time else "wall time"
    threads = "" if args.blas_threads is None else f", {args.blas_threads} BLAS thread(s)"
    print(f"bench/cnn.py: {how}{threads}, median of {args.repeats}")
    with limit:
        for name in args.networks:
            measure(name, args, ctx, clock)


if __name__ == "__main__":
    main()
