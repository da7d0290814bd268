"""The pipelines' conventions: --output (paths and URLs), history, --plot, progress, --help."""
import importlib.util
import re
import uuid
from pathlib import Path

import pytest

from raymod import fileio, model
from raymod.history import TrainingHistory

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def load(name):
    spec = importlib.util.spec_from_file_location(f"pipeline_{name}", PIPELINES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mlp_writes_checkpoint_history_and_curve_under_output(tmp_path, capsys):
    mlp = load("mlp")
    accuracy = mlp.main(["--placement", "in_process", "--epochs", "3", "--output",
                         str(tmp_path / "out"), "--plot", "--progress", "lines"])
    captured = capsys.readouterr()
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "mlp-0003.params", "mlp-curve.png", "mlp-history.csv", "mlp-symbol.json"]
    history = TrainingHistory.load(str(out / "mlp-history.csv"))
    assert history.epochs == [0, 1, 2]
    assert history[-1].val["accuracy"] == pytest.approx(accuracy)
    assert (out / "mlp-curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # One progress line per epoch (not a terminal), and fit's own epoch lines left out.
    lines = [line for line in captured.err.splitlines() if re.match(r"Epoch\[\d\] \d/3", line)]
    assert len(lines) == 3 and "val accuracy=" in lines[-1]
    assert "Train-accuracy" not in captured.err
    assert f"checkpoint {out / 'mlp-0003.params'}" in captured.out


def test_mlp_output_to_an_fsspec_url():
    pytest.importorskip("fsspec", reason="fsspec is the 'fsspec' extra (in 'test')")
    root = f"memory://pipelines-{uuid.uuid4().hex}"
    mlp = load("mlp")
    mlp.main(["--placement", "in_process", "--epochs", "2", "--output", root,
              "--progress", "off", "--hidden", "16"])
    assert model.saved_epochs(f"{root}/mlp") == [2]
    _, args, _ = model.load_checkpoint(f"{root}/mlp", 2)
    assert args["fc1_weight"].shape == (16, 64)
    assert TrainingHistory.load(f"{root}/mlp-history.csv").epochs == [0, 1]


@pytest.mark.parametrize("name", ["mlp", "sequential", "lstm_bucketing", "tune_mlp"])
def test_help_shows_every_options_default(name, capsys):
    pipeline = load(name)
    defaults = vars(pipeline.parse_args([]))
    with pytest.raises(SystemExit):
        pipeline.parse_args(["--help"])
    flat = " ".join(capsys.readouterr().out.split())
    shown_somewhere = 0
    for dest, default in defaults.items():
        if default is None or default is False:
            continue                                  # unset options and flags: no default
        shown = " ".join(map(str, default)) if isinstance(default, list) else str(default)
        assert f"(default: {shown})" in flat, (dest, shown)
        shown_somewhere += 1
    assert shown_somewhere >= 5 and "--output" in flat


def test_progress_choice_maps_to_the_display(tmp_path):
    common = load("common")
    args = type("Args", (), {"output": str(tmp_path), "progress": "bar", "plot": False})()
    outputs = common.Outputs(args, "x")
    (progress, writer) = outputs.callbacks()
    assert progress.bar is True and writer.fname == fileio.join(str(tmp_path), "x-history.csv")
    args.progress = "off"
    assert [type(c).__name__ for c in outputs.callbacks()] == ["HistoryWriter"]
    args.progress = "auto"
    assert outputs.callbacks()[0].bar is None


@pytest.mark.slow
def test_mlp_on_ray_workers_records_the_same_history_as_in_process(ray_session, tmp_path,
                                                                   capsys):
    """Progress and history are the driver's: the placement changes neither."""
    mlp = load("mlp")
    runs = {}
    for placement in ("ray", "in_process"):
        out = tmp_path / placement
        mlp.main(["--placement", placement, "--epochs", "2", "--output", str(out),
                  "--progress", "lines"])
        runs[placement] = TrainingHistory.load(str(out / "mlp-history.csv"))
        lines = [line for line in capsys.readouterr().err.splitlines()
                 if re.match(r"Epoch\[\d\] \d/2  23 batches in", line)]
        assert len(lines) == 2, placement
    for split in ("train", "val"):
        assert runs["ray"].metric("accuracy", split) == pytest.approx(
            runs["in_process"].metric("accuracy", split), abs=1e-6)
