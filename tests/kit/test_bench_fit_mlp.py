"""bench/fit_mlp.py on a few hundred samples: its numpy loop is fit's math, batch for batch.

In process only (no Ray, no memory subprocesses); the timings themselves are
never asserted.
"""
import importlib.util
from pathlib import Path

import numpy as np

import raymod as rm


def _load_bench():
    path = Path(__file__).resolve().parents[2] / "bench" / "fit_mlp.py"
    spec = importlib.util.spec_from_file_location("bench_fit_mlp", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_numpy_loop_is_fits_math():
    bench = _load_bench()
    x, y = bench.synthetic_mnist(700, seed=2)
    assert bench.check_same_math(rm, x, y, steps=3) < 1e-6


def test_the_numpy_loop_pads_its_last_batch_as_ndarrayiter():
    bench = _load_bench()
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    y = np.arange(10, dtype=np.float32)
    lean = bench.LeanLoop(x, y, batch=4, shuffle=False)
    rows = [r.tolist() for r, _, _ in lean.batches()]
    it = rm.io.NDArrayIter(x, y, batch_size=4, last_batch_handle="pad")
    assert rows == [b.data[0].ravel().astype(int).tolist() for b in it]
    shuffled = bench.LeanLoop(x, y, batch=4, shuffle=True)
    for rows, bx, by in shuffled.batches():
        assert np.array_equal(bx.ravel(), rows) and np.array_equal(by, rows)
    epoch = [r for r, _, _ in shuffled.batches()]
    assert sorted(np.concatenate(epoch)[:10].tolist()) == list(range(10))
    assert epoch[-1][2:].tolist() == epoch[0][:2].tolist()        # padded from the start


def test_bench_runs_end_to_end(capsys):
    bench = _load_bench()
    result = bench.main(["--samples", "600", "--repeats", "1", "--steps", "2",
                         "--step-rounds", "1", "--placements", "in_process", "--no-memory",
                         "--phases"])
    out = capsys.readouterr().out
    for line in ("same math:", "(b) fit in_process / numpy loop throughput",
                 "(c) step in_process / numpy step", "cpu ms/batch"):
        assert line in out, out
    assert set(result) == {"fit", "step"}
    assert len(result["fit"]["fit in_process"]) == 1
