"""pipelines/lstm_bucketing.py and pipelines/sequential.py end to end, shortened, in process."""
import importlib.util
import math
from pathlib import Path

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def load(name):
    spec = importlib.util.spec_from_file_location(f"pipeline_{name}", PIPELINES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lstm_bucketing_pipeline_learns_the_stdlib_source(capsys, tmp_path):
    lstm = load("lstm_bucketing")
    args = ["--placement", "in_process", "--output", str(tmp_path),
            "--package", "json", "--max-lines", "400",
            "--epochs", "2", "--batch-size", "16", "--num-hidden", "24", "--num-embed", "16",
            "--buckets", "20", "40", "80", "--lr", "0.02"]
    ppl = lstm.main(args)
    out = capsys.readouterr().out
    assert "400 lines of json's source" in out and "bytes per bucket" in out
    vocab = int(out.split(" symbols")[0].split()[-1])
    assert math.isfinite(ppl) and ppl < vocab / 2, (ppl, vocab)   # far better than uniform


def test_sequential_pipeline_reaches_digits_accuracy(capsys, tmp_path):
    seq = load("sequential")
    accuracy = seq.main(["--placement", "in_process", "--output", str(tmp_path),
                         "--epochs", "4", "--micro-batches", "4"])
    out = capsys.readouterr().out
    assert "chained worker to worker, 4 micro-batches" in out
    assert accuracy > 0.9
