"""Peak memory of training steps and inference binds, against their lower bounds (issue 15).

    python bench/memory.py [--cases lstm lstm-fused resnet mlp] [--mxnet /path/to/python]
                           [--no-plan] [--threads 1]

Every case runs in a fresh subprocess, so peaks never mix; it prints one JSON
line. The resnet and mlp cases bind an Executor alone (`train`: steps with
SGD momentum written in place beside it; `infer`: grad_req null, forwards),
and run training steps through Module (`module`), which also holds host
copies of the parameters, as MXNet's Module does. Two steps run: the traced
peak is the second's (the steady state), the RSS peak covers both. Memory is
resident set size: `base` is the process after imports and
the inputs, `peak` is the process's peak (VmHWM) at the end, and the
case's footprint is peak - base. The resnet and mlp cases also trace Python's
allocations (numpy's arrays and every Python object) from before the module
is built: that peak leaves out the allocator's and BLAS's own memory.

- lstm: MXNet's bucketing LSTM language model (vocabulary 1000, embedding and
  2 LSTM layers of 200, batch 32), BucketingModule with default bucket 300,
  in-process placement: one training step (forward, backward, SGD update),
  then one step in each of 30 buckets 300, 290, ..., 10. Reported: the
  process's peak RSS after the first step (the issue's target: MXNet 1.9.1's
  ~650 MiB), and what the 30 buckets add to it (target: at most 10%).
  `--mxnet PYTHON` runs the same case with MXNet under that interpreter.
- lstm-fused: the same with rm.rnn.FusedRNNCell (one RNN operator per bucket
  instead of an unrolled graph of ~12 nodes per layer and time step).
- resnet: a ResNet-18-style network (basic blocks 2-2-2-2, BatchNorm, 1000
  classes), batch 8 of 224x224: one training step (SGD, momentum 0.9) and an
  inference bind's forward.
- mlp: bench/fit_mlp.py's MLP 784-512-256-10, batch 128: the same two.

For resnet and mlp the lower bound of a training step is parameters +
gradients + optimizer state + inputs + what backward reads (the executor's
memory report: `saved` + `outputs`); of an inference bind, parameters +
inputs + the largest set of intermediates alive at once (`peak_live`). The
targets are 1.3x and 1.1x. `--no-plan` binds every executor with
plan_memory=False (each intermediate its own memory) for comparison. The
children run with `--threads` BLAS/OpenMP threads (default 1: spinning BLAS
threads on a shared machine make step times meaningless).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procmem import peak_rss_mib  # noqa: E402  (bench/procmem.py)

ROOT = Path(__file__).resolve().parents[1]
MIB = 2.0 ** 20
VOCAB, EMBED, HIDDEN, LAYERS, BATCH = 1000, 200, 200, 2, 32
DEFAULT_BUCKET = 300
BUCKETS = tuple(range(300, 0, -10))          # 30 buckets: 300, 290, ..., 10


def _rss_mib():
    """Current resident set size (Linux /proc), MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / MIB


# ---------------------------------------------------------------------- raymod cases
def _raymod(no_plan):
    sys.path.insert(0, str(ROOT))
    import raymod as rm
    if no_plan:      # every executor binds without the plan (bench comparison only)
        from raymod.executor import Executor
        Executor.__init__.__kwdefaults__["plan_memory"] = False
        Executor.simple_bind.__func__.__kwdefaults__["plan_memory"] = False
    return rm


def lstm_case(no_plan, fused=False):
    rm = _raymod(no_plan)
    import numpy as np
    from raymod.io import DataBatch, DataDesc

    def sym_gen(seq_len):
        data = rm.sym.Variable("data")
        label = rm.sym.Variable("softmax_label")
        embed = rm.sym.Embedding(data=data, input_dim=VOCAB, output_dim=EMBED, name="embed")
        if fused:
            stack = rm.rnn.FusedRNNCell(HIDDEN, num_layers=LAYERS, mode="lstm", prefix="lstm_")
        else:
            stack = rm.rnn.SequentialRNNCell()
            for i in range(LAYERS):
                stack.add(rm.rnn.LSTMCell(num_hidden=HIDDEN, prefix=f"lstm_l{i}_"))
        outputs, _ = stack.unroll(seq_len, inputs=embed, layout="NTC", merge_outputs=True)
        pred = rm.sym.Reshape(outputs, shape=(-1, HIDDEN))
        pred = rm.sym.FullyConnected(data=pred, num_hidden=VOCAB, name="pred")
        label = rm.sym.Reshape(label, shape=(-1,))
        return rm.sym.SoftmaxOutput(data=pred, label=label, name="softmax"), ("data",), \
            ("softmax_label",)

    rng = np.random.default_rng(0)

    def batch(key):
        data = rng.integers(0, VOCAB, (BATCH, key)).astype(np.float32)
        return DataBatch([data], [np.roll(data, -1, axis=1)], pad=0, bucket_key=key,
                         provide_data=[DataDesc("data", data.shape)],
                         provide_label=[DataDesc("softmax_label", data.shape)])

    base = _rss_mib()
    mod = rm.mod.BucketingModule(sym_gen, default_bucket_key=DEFAULT_BUCKET,
                                 context=rm.cpu(0), placement="in_process")
    mod.bind([("data", (BATCH, DEFAULT_BUCKET))], [("softmax_label", (BATCH, DEFAULT_BUCKET))])
    mod.init_params(rm.init.Xavier(factor_type="in", magnitude=2.34))
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.01})
    tic = time.perf_counter()
    mod.forward_backward(batch(DEFAULT_BUCKET))
    mod.update()
    mod.get_outputs()
    step = time.perf_counter() - tic
    one = peak_rss_mib()
    report = mod._buckets[DEFAULT_BUCKET]._exec_group.execs[0].memory_report()
    for key in BUCKETS:
        mod.forward_backward(batch(key))
        mod.update()
    mod.get_outputs()
    return {"base_mib": base, "one_step_peak_mib": one, "buckets_peak_mib": peak_rss_mib(),
            "step_s": step, "report": report}


def lstm_mxnet_case(no_plan):
    import mxnet as mx
    import numpy as np

    def sym_gen(seq_len):
        data = mx.sym.Variable("data")
        label = mx.sym.Variable("softmax_label")
        embed = mx.sym.Embedding(data=data, input_dim=VOCAB, output_dim=EMBED, name="embed")
        stack = mx.rnn.SequentialRNNCell()
        for i in range(LAYERS):
            stack.add(mx.rnn.LSTMCell(num_hidden=HIDDEN, prefix=f"lstm_l{i}_"))
        outputs, _ = stack.unroll(seq_len, inputs=embed, merge_outputs=True)
        pred = mx.sym.Reshape(outputs, shape=(-1, HIDDEN))
        pred = mx.sym.FullyConnected(data=pred, num_hidden=VOCAB, name="pred")
        label = mx.sym.Reshape(label, shape=(-1,))
        return mx.sym.SoftmaxOutput(data=pred, label=label, name="softmax"), ("data",), \
            ("softmax_label",)

    rng = np.random.default_rng(0)

    def batch(key):
        data = rng.integers(0, VOCAB, (BATCH, key)).astype(np.float32)
        return mx.io.DataBatch([mx.nd.array(data)], [mx.nd.array(np.roll(data, -1, axis=1))],
                               pad=0, bucket_key=key,
                               provide_data=[mx.io.DataDesc("data", data.shape)],
                               provide_label=[mx.io.DataDesc("softmax_label", data.shape)])

    base = _rss_mib()
    mod = mx.mod.BucketingModule(sym_gen, default_bucket_key=DEFAULT_BUCKET, context=mx.cpu())
    mod.bind([("data", (BATCH, DEFAULT_BUCKET))], [("softmax_label", (BATCH, DEFAULT_BUCKET))])
    mod.init_params(mx.init.Xavier(factor_type="in", magnitude=2.34))
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.01})
    tic = time.perf_counter()
    mod.forward_backward(batch(DEFAULT_BUCKET))
    mod.update()
    mx.nd.waitall()
    step = time.perf_counter() - tic
    one = peak_rss_mib()
    for key in BUCKETS:
        mod.forward_backward(batch(key))
        mod.update()
    mx.nd.waitall()
    return {"base_mib": base, "one_step_peak_mib": one, "buckets_peak_mib": peak_rss_mib(),
            "step_s": step}


def _conv_bn_relu(rm, x, name, filters, kernel, stride, pad, relu=True):
    x = rm.sym.Convolution(x, num_filter=filters, kernel=kernel, stride=stride, pad=pad,
                           no_bias=True, name=f"{name}_conv")
    x = rm.sym.BatchNorm(x, fix_gamma=False, eps=2e-5, momentum=0.9, name=f"{name}_bn")
    return rm.sym.Activation(x, act_type="relu", name=f"{name}_relu") if relu else x


def resnet18(rm, classes=1000):
    """ResNet-18 (basic blocks, post-activation, projection shortcuts on stride 2)."""
    x = rm.sym.Variable("data")
    x = _conv_bn_relu(rm, x, "stem", 64, (7, 7), (2, 2), (3, 3))
    x = rm.sym.Pooling(x, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max",
                       name="stem_pool")
    filters = 64
    for stage, width in enumerate((64, 128, 256, 512)):
        for unit in range(2):
            stride = (2, 2) if stage > 0 and unit == 0 else (1, 1)
            name = f"s{stage}u{unit}"
            y = _conv_bn_relu(rm, x, f"{name}a", width, (3, 3), stride, (1, 1))
            y = _conv_bn_relu(rm, y, f"{name}b", width, (3, 3), (1, 1), (1, 1), relu=False)
            if stride != (1, 1) or width != filters:
                x = _conv_bn_relu(rm, x, f"{name}sc", width, (1, 1), stride, (0, 0),
                                  relu=False)
            x = rm.sym.Activation(x + y, act_type="relu", name=f"{name}_relu")
            filters = width
    x = rm.sym.Pooling(x, global_pool=True, kernel=(1, 1), pool_type="avg", name="gap")
    x = rm.sym.FullyConnected(rm.sym.Flatten(x), num_hidden=classes, name="fc")
    return rm.sym.SoftmaxOutput(x, name="softmax")


def mlp(rm):
    net = rm.sym.Variable("data")
    for i, width in enumerate((512, 256)):
        net = rm.sym.FullyConnected(net, num_hidden=width, name=f"fc{i + 1}")
        net = rm.sym.Activation(net, act_type="relu", name=f"relu{i + 1}")
    net = rm.sym.FullyConnected(net, num_hidden=10, name="fc3")
    return rm.sym.SoftmaxOutput(net, name="softmax")


NETWORKS = {"resnet": (resnet18, (8, 3, 224, 224), 1000), "mlp": (mlp, (128, 784), 10)}


def network_case(name, mode, no_plan):
    """Training steps (`train`) or inference forwards (`infer`) of an executor bound alone,
    or training steps through Module (`module`): the first step, then a second one whose
    traced peak is the steady state (the first also grows the pool's scratch)."""
    rm = _raymod(no_plan)
    import numpy as np

    build, shape, classes = NETWORKS[name]
    rng = np.random.default_rng(0)
    data = rng.normal(size=shape).astype(np.float32)
    label = rng.integers(0, classes, shape[0]).astype(np.float32)
    flat = data.reshape(shape[0], -1)[:, :64]
    np.dot(flat, flat.T)                        # BLAS allocates its own buffers now
    base = _rss_mib()
    tracemalloc.start()
    if mode == "module":
        exe, step = _module_step(rm, build(rm), data, label)
    else:
        exe, step = _executor_step(rm, build(rm), data, label, training=mode == "train")
    tic = time.perf_counter()
    step()
    seconds = time.perf_counter() - tic
    first = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    step()
    steady = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    weights = sum(a.nbytes for n, a in exe.arg_dict.items() if n in exe.grad_dict)
    return {"base_mib": base, "peak_mib": peak_rss_mib(), "traced_first_mib": first / MIB,
            "traced_peak_mib": steady / MIB, "step_s": seconds,
            "report": exe.memory_report(), "weights": weights}


def _executor_step(rm, sym, data, label, training):
    import numpy as np
    from raymod.executor import Executor
    shapes = {"data": data.shape, "softmax_label": label.shape}
    if not training:
        exe = Executor.simple_bind(sym, rm.cpu(0), grad_req="null", shapes=shapes)
        return exe, lambda: exe.forward(is_train=False, data=data, softmax_label=label)
    reqs = {n: ("null" if n in shapes else "write") for n in sym.list_arguments()}
    exe = Executor.simple_bind(sym, rm.cpu(0), grad_req=reqs, shapes=shapes)
    init = rm.init.Xavier()
    for name, arr in exe.arg_dict.items():
        if name not in shapes:
            init(rm.init.InitDesc(name), arr)
    momentum = {n: np.zeros_like(g) for n, g in exe.grad_dict.items()}

    def step():
        exe.forward(is_train=True, data=data, softmax_label=label)
        exe.backward()
        for name, grad in exe.grad_dict.items():     # SGD with momentum 0.9, in place
            grad *= -0.01
            momentum[name] *= 0.9
            momentum[name] += grad
            exe.arg_dict[name] += momentum[name]
    return exe, step


def _module_step(rm, sym, data, label):
    from raymod.io import DataBatch
    mod = rm.mod.Module(sym, context=rm.cpu(0), placement="in_process")
    mod.bind([("data", data.shape)], [("softmax_label", label.shape)])
    mod.init_params(rm.init.Xavier())
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.01,
                                                          "momentum": 0.9})
    batch = DataBatch([data], [label])

    def step():
        mod.forward_backward(batch)
        mod.update()
        mod.get_outputs()
    return mod._exec_group.execs[0], step


def lower_bound(result, training):
    """Bytes the step cannot do without (see the module docstring)."""
    r = result["report"]
    params = r["arguments"] + r["aux_states"]        # weights, data, labels, BN statistics
    if training:
        momentum = result["weights"]                   # SGD momentum: one state per weight
        return params + r["gradients"] + momentum + r["saved"] + r["outputs"]
    return params + r["peak_live"]


# ---------------------------------------------------------------------- driver
def child(case, no_plan):
    if case == "lstm":
        return lstm_case(no_plan)
    if case == "lstm-fused":
        return lstm_case(no_plan, fused=True)
    if case == "lstm-mxnet":
        return lstm_mxnet_case(no_plan)
    name, mode = case.split("-")
    return network_case(name, mode, no_plan)


def run_child(python, case, no_plan, threads):
    cmd = [python, str(Path(__file__).resolve()), "--child", case]
    if no_plan:
        cmd.append("--no-plan")
    env = dict(os.environ)
    if threads > 0:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report_lstm(r, who):
    one = r["one_step_peak_mib"]
    grow = r["buckets_peak_mib"] - one
    line = (f"lstm {who}: peak RSS after one step (bucket {DEFAULT_BUCKET}) {one:7.1f} MiB "
            f"(imports and inputs {r['base_mib']:.1f}), +{grow:.1f} MiB "
            f"({100 * grow / one:.1f}%) after {len(BUCKETS)} buckets; "
            f"step {r['step_s']:.2f} s")
    if "report" in r:
        rep = r["report"]
        line += (f"\n    plan: arena {rep['arena'] / MIB:.1f} MiB (unplanned "
                 f"{rep['unplanned'] / MIB:.1f}), saved for backward "
                 f"{rep['saved'] / MIB:.1f}, outputs {rep['outputs'] / MIB:.1f}, "
                 f"peak live {rep['peak_live'] / MIB:.1f}, pool {rep['pool'] / MIB:.1f} "
                 f"(scratch {rep['scratch'] / MIB:.1f}, kept {rep['kept'] / MIB:.1f}), "
                 f"workspace {rep['workspace'] / MIB:.1f}")
    print(line, flush=True)


def report_network(case, r):
    training = not case.endswith("infer")
    used = r["peak_mib"] - r["base_mib"]
    bound = lower_bound(r, training) / MIB
    rep = r["report"]
    target = 1.3 if training else 1.1
    traced = r["traced_peak_mib"]
    print(f"{case:13s}: lower bound {bound:7.1f} MiB; traced peak {traced:7.1f} MiB "
          f"(ratio {traced / bound:4.2f}, target {target}; first step "
          f"{r['traced_first_mib']:.1f}), RSS peak - base {used:7.1f} "
          f"({used / bound:4.2f}); arena {rep['arena'] / MIB:.1f} "
          f"(unplanned {rep['unplanned'] / MIB:.1f}), saved {rep['saved'] / MIB:.1f}, "
          f"peak live {rep['peak_live'] / MIB:.1f}, workspace {rep['workspace'] / MIB:.1f}, "
          f"scratch {rep['scratch'] / MIB:.1f}; step {r['step_s']:.2f} s", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=["lstm", "lstm-fused", "resnet", "mlp"],
                   choices=["lstm", "lstm-fused", "resnet", "mlp"])
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP threads of each child (0: the libraries' default)")
    p.add_argument("--mxnet", default=None, help="a Python with mxnet, for the lstm case")
    p.add_argument("--no-plan", action="store_true",
                   help="bind every executor with plan_memory=False")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.no_plan)))
        return None
    results = {}
    for case in args.cases:
        if case.startswith("lstm"):
            results[case] = run_child(sys.executable, case, args.no_plan, args.threads)
            who = "raymod" + (" fused" if case == "lstm-fused" else "") + \
                (" (no plan)" if args.no_plan else "")
            report_lstm(results[case], who)
            if args.mxnet and case == "lstm":
                results["lstm-mxnet"] = run_child(args.mxnet, "lstm-mxnet", False,
                                                  args.threads)
                report_lstm(results["lstm-mxnet"], "mxnet 1.x")
            continue
        for mode in ("train", "infer", "module"):
            name = f"{case}-{mode}"
            results[name] = run_child(sys.executable, name, args.no_plan, args.threads)
            report_network(name, results[name])
    return results


if __name__ == "__main__":
    main()
