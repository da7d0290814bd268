"""bench/executor_mlp.py end to end on few repetitions: it checks its numpy twin computes
the same outputs and gradients, and a bound executor keeps no memory per step."""
import importlib.util
from pathlib import Path

import numpy as np


def _load_bench():
    path = Path(__file__).resolve().parents[2] / "bench" / "executor_mlp.py"
    spec = importlib.util.spec_from_file_location("bench_executor_mlp", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_executor_benchmark_runs(capsys):
    bench = _load_bench()
    ratio, net, peak = bench.main(["--reps", "2", "--steps", "3", "--warmup", "1", "--trace"])
    assert ratio > 0
    assert net == 0                  # nothing kept per step after the first
    assert peak > 0                  # ... and the measurement does see numpy's buffers
    out = capsys.readouterr().out
    assert "SUMMARY: executor MLP 784-512-256-10 b128" in out
    assert "backward relu1" in out   # --trace lists every operator call


def test_numpy_twin_matches_the_executor():
    bench = _load_bench()
    params, data, label = bench.make_inputs(seed=3)
    exe = bench.bind_executor(params, data, label)
    bench.check_same_math(exe, bench.NumpyMLP(params, data, label))
    # the executor's loss gradient is p - onehot(label), as the twin writes it
    p = np.asarray(exe.outputs[0])
    assert np.allclose(p.sum(axis=1), 1, rtol=1e-5)
