"""Where a Ray step's time goes: the same training steps run one call per batch, as
fit's scheduler sends them, against all of them inside one worker call, and
in-process.

    python bench/ray_step_split.py [--steps 100] [--rounds 5] [--threads 1]

MLP 784-512-256-10, batch 128, SGD with momentum (bench/fit_mlp.py's network
and data), one cpu context per placement. Per round, in ms per step:

- numpy: bench/fit_mlp.py's hand-written step;
- in_process: forward_backward + update on premade batches, in-process;
- ray: the same on one Ray actor (batches sent as arrays, a value fetched at
  the end); `busy` is the time the worker spent inside its step calls, and
  `driver cpu` the driver's CPU per step;
- ray one call: the same steps all inside one `steps` call (nothing crosses
  between them), i.e. the worker's computation alone.

When "ray one call" matches in_process, what (c) of issue 10 loses on Ray is
not the worker's computation but what runs beside it on the machine: the
driver preparing and sending the batches, and Ray's own threads.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fit_mlp as F  # noqa: E402  (the same network, data and loops)


def _per_step(fn, steps):
    tic = time.perf_counter()
    fn()
    return (time.perf_counter() - tic) / steps * 1e3


def run(args):
    rm = F._import_raymod()
    import ray
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    rm.parallel.set_cpu_worker_threads(args.threads)
    x, y = F.synthetic_mnist(4096)
    fits = {p: F.RaymodFit(rm, x, y, placement=p) for p in ("in_process", "ray")}
    for fit in fits.values():
        fit.epoch()
    batches = F.premade_batches(rm, x, y, 16)
    net = F.NumpyMLP(F.BATCH)
    group = fits["ray"].mod._exec_group
    workers = group._workers
    inputs = {"data": batches[0][0][0], "softmax_label": y[:F.BATCH]}
    plan = (True, {"backward": True, "out_grads": None, "update": group.param_names})
    rows = {k: [] for k in ("numpy", "in_process", "ray", "busy", "driver cpu",
                            "ray one call")}
    n = args.steps
    for _ in range(args.rounds):
        rows["numpy"].append(_per_step(lambda: F.numpy_steps(net, batches, n), n))
        rows["in_process"].append(_per_step(
            lambda: F.raymod_steps(fits["in_process"].mod, batches, n), n))
        busy, cpu = workers.call("busy_seconds")[0], time.process_time()
        rows["ray"].append(_per_step(lambda: F.raymod_steps(fits["ray"].mod, batches, n), n))
        rows["busy"].append((workers.call("busy_seconds")[0] - busy) / n * 1e3)
        rows["driver cpu"].append((time.process_time() - cpu) / n * 1e3)
        shared = ray.put([inputs] * n)
        rows["ray one call"].append(_per_step(
            lambda: workers.call("steps", group._key, shared, [plan] * n), n))
    print(f"# ms per step, {args.rounds} rounds of {n} steps (median, then each round); "
          f"blas_threads={args.threads}")
    for name, values in rows.items():
        runs = " ".join(f"{v:.3f}" for v in values)
        print(f"  {name:13s} {statistics.median(values):7.3f}  ({runs})")
    ratio = statistics.median(r / i for r, i in zip(rows["ray one call"], rows["in_process"]))
    print(f"ray one call / in_process = {ratio:.3f}; ray / in_process = "
          f"{statistics.median(r / i for r, i in zip(rows['ray'], rows['in_process'])):.3f}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads on both sides")
    args = parser.parse_args(argv)
    with F._blas_limit(args.threads):
        return run(args)


if __name__ == "__main__":
    main()
