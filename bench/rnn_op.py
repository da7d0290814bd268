"""The fused RNN operator's forward+backward against a lean numpy LSTM of the same math.

    python bench/rnn_op.py [--seq 35] [--batch 32] [--hidden 200] [--layers 2]
                           [--steps 20] [--repeats 3] [--dtype float32]
                           [--blas-threads N] [--cpu-time]

Both sides run a stacked LSTM (input size = hidden) over a (T, N, H) batch:
forward in training mode, then backward with a random head gradient,
computing the gradients of the input, the weights and the initial states.
The raymod side is `sym.RNN(mode='lstm')` bound once with `simple_bind`
and driven through the executor; the baseline is the LSTM written plainly
in numpy below: one GEMM for every step's input projection, the gates per
step, backward through time with the weight gradients as single GEMMs.
It reports the median time of one step for each (best of `--repeats`
blocks of `--steps` steps) and the ratio op / lean; the target is <= 1.15.
The two are checked to agree before timing. On a shared machine,
`--blas-threads 1 --cpu-time` measures this thread's CPU time, which is
stable under other processes' load.
"""
import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import raymod as rm  # noqa: E402
from raymod.context import to_numpy  # noqa: E402
from raymod.ops.rnn import split_parameters  # noqa: E402


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class LeanLSTM:
    """A stacked LSTM in plain numpy; weights per layer Wx (I, 4H), Wh (H, 4H), b (4H,)."""

    def __init__(self, layers):
        self.layers = layers            # [(Wx, Wh, b)], gate columns i, f, g, o

    def forward(self, x, h0, c0):
        self.cache = []
        inp = x
        for (Wx, Wh, b), h, c in zip(self.layers, h0, c0):
            T, N, _ = inp.shape
            H = Wh.shape[0]
            xw = (inp.reshape(T * N, -1) @ Wx + b).reshape(T, N, 4 * H)
            hs, cs, acts = np.empty((T, N, H), x.dtype), np.empty((T, N, H), x.dtype), []
            h_prev, c_prev = h, c
            for t in range(T):
                a = xw[t] + h_prev @ Wh
                i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
                g, o = np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
                c_prev = f * c_prev + i * g
                h_prev = o * np.tanh(c_prev)
                hs[t], cs[t] = h_prev, c_prev
                acts.append((i, f, g, o))
            self.cache.append((inp, h, c, hs, cs, acts))
            inp = hs
        return inp

    def backward(self, dy):
        grads = []
        for (Wx, Wh, _), (inp, h0, c0, hs, cs, acts) in zip(reversed(self.layers),
                                                            reversed(self.cache)):
            T, N, H = hs.shape
            da = np.empty((T, N, 4 * H), dy.dtype)
            dh_next, dc_next = np.zeros((N, H), dy.dtype), np.zeros((N, H), dy.dtype)
            for t in reversed(range(T)):
                i, f, g, o = acts[t]
                c_prev = cs[t - 1] if t else c0
                tc = np.tanh(cs[t])
                dh = dy[t] + dh_next
                dc = dc_next + dh * o * (1 - tc * tc)
                da[t, :, :H] = dc * g * i * (1 - i)
                da[t, :, H:2 * H] = dc * c_prev * f * (1 - f)
                da[t, :, 2 * H:3 * H] = dc * i * (1 - g * g)
                da[t, :, 3 * H:] = dh * tc * o * (1 - o)
                dh_next = da[t] @ Wh.T
                dc_next = dc * f
            da2 = da.reshape(T * N, 4 * H)
            h_prev = np.concatenate([h0[None], hs[:-1]]).reshape(T * N, H)
            dWx = inp.reshape(T * N, -1).T @ da2
            dWh = h_prev.T @ da2
            db = da2.sum(axis=0)
            dy = (da2 @ Wx.T).reshape(inp.shape)
            grads.append((dWx, dWh, db, dh_next, dc_next))
        return dy, grads[::-1]


def build(args):
    T, N, H, L = args.seq, args.batch, args.hidden, args.layers
    dt = np.dtype(args.dtype)
    sym = rm.sym.RNN(rm.sym.Variable("data"), state_size=H, num_layers=L, mode="lstm",
                     name="lstm")
    exe = sym.simple_bind(rm.cpu(), data=(T, N, H), type_dict={"data": dt})
    rng = np.random.default_rng(0)
    for name, arr in exe.arg_dict.items():
        arr[...] = rng.uniform(-0.1, 0.1, size=arr.shape).astype(dt)
    pieces = split_parameters(to_numpy(exe.arg_dict["lstm_parameters"]), "lstm", L, H, H)
    lean = LeanLSTM([(np.ascontiguousarray(p[0]["wx"].T), np.ascontiguousarray(p[0]["wh"].T),
                      p[0]["bx"] + p[0]["bh"]) for p in pieces])
    dy = rng.normal(size=(T, N, H)).astype(dt)
    return exe, lean, dy


def op_step(exe, dy):
    exe.forward(is_train=True)
    exe.backward([dy])


def lean_step(exe, lean, dy):
    lean.forward(to_numpy(exe.arg_dict["data"]), to_numpy(exe.arg_dict["lstm_state"]),
                 to_numpy(exe.arg_dict["lstm_state_cell"]))
    return lean.backward(dy)


def check_agree(exe, lean, dy):
    op_step(exe, dy)
    y = lean.forward(to_numpy(exe.arg_dict["data"]), to_numpy(exe.arg_dict["lstm_state"]),
                     to_numpy(exe.arg_dict["lstm_state_cell"]))
    dx, _ = lean.backward(dy)
    np.testing.assert_allclose(to_numpy(exe.outputs[0]), y, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(to_numpy(exe.grad_dict["data"]), dx, rtol=1e-3, atol=1e-5)


def timed(fn, steps, repeats, clock=time.perf_counter):
    fn()
    best = None
    for _ in range(repeats):
        times = []
        for _ in range(steps):
            t0 = clock()
            fn()
            times.append(clock() - t0)
        med = statistics.median(times)
        best = med if best is None else min(best, med)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, default=35)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="limit BLAS threads (needs threadpoolctl)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="this thread's CPU time, not wall time (use with --blas-threads 1)")
    args = ap.parse_args()
    with _blas_threads(args.blas_threads):
        run(args)


def _blas_threads(n):
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=n, user_api="blas")


def run(args):
    exe, lean, dy = build(args)
    check_agree(exe, lean, dy)
    clock = time.thread_time if args.cpu_time else time.perf_counter
    t_op = timed(lambda: op_step(exe, dy), args.steps, args.repeats, clock)
    t_lean = timed(lambda: lean_step(exe, lean, dy), args.steps, args.repeats, clock)
    how = "thread CPU time" if args.cpu_time else "wall time"
    threads = "" if args.blas_threads is None else f", {args.blas_threads} BLAS thread(s)"
    print(f"LSTM T={args.seq} N={args.batch} H={args.hidden} layers={args.layers} "
          f"{args.dtype}{threads}, {how} of forward+backward per step:")
    print(f"  raymod RNN op : {t_op * 1e3:8.2f} ms")
    print(f"  lean numpy    : {t_lean * 1e3:8.2f} ms")
    print(f"  ratio op/lean : {t_op / t_lean:8.2f}  (target <= 1.15)")


if __name__ == "__main__":
    main()
