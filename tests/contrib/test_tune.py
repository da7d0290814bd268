"""rm.contrib.tune: what each epoch reports, checkpoints through Tune, and pipelines/tune_mlp.py."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import raymod as rm

tune = pytest.importorskip("ray.tune", reason="Ray Tune is the 'tune' extra (in 'test')")
from raymod.contrib.tune import TuneReportCallback, load_checkpoint  # noqa: E402
from raymod.history import EpochRecord  # noqa: E402

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def test_each_epoch_reports_train_and_val_metrics_and_times():
    record = EpochRecord(4, {"accuracy": 0.5, "cross-entropy": 1.5}, {"accuracy": 0.75},
                         train_time=0.25, val_time=0.125)
    assert TuneReportCallback().epoch_metrics(record) == {
        "epoch": 4, "train_time": 0.25, "val_time": 0.125, "train-accuracy": 0.5,
        "train-cross-entropy": 1.5, "val-accuracy": 0.75}
    renamed = TuneReportCallback(metrics={"acc": "val-accuracy", "loss": "train-cross-entropy"})
    assert renamed.epoch_metrics(record) == {"acc": 0.75, "loss": 1.5}
    with pytest.raises(KeyError, match=r"\['val-f1'\] are not in this epoch's record"):
        TuneReportCallback(metrics={"f1": "val-f1"}).epoch_metrics(record)
    with pytest.raises(ValueError, match="checkpoint_period must be a positive int"):
        TuneReportCallback(checkpoint_period=0)


def test_a_module_checkpoint_goes_through_tune_and_comes_back(tmp_path):
    net = rm.sym.SoftmaxOutput(rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=3,
                                                     name="fc"), name="softmax")
    mod = rm.mod.Module(net, placement="in_process")
    mod.bind(data_shapes=[("data", (2, 4))], label_shapes=[("softmax_label", (2,))])
    mod.init_params(initializer=rm.init.Xavier())
    cb = TuneReportCallback(checkpoint=True)
    cb.on_train_begin(mod, None)
    cb._save_module(str(tmp_path), 7)
    restored = load_checkpoint(tune.Checkpoint.from_directory(str(tmp_path)))
    assert restored.epoch == 7
    assert restored.symbol.list_arguments() == net.list_arguments()
    for name, value in mod.get_params()[0].items():
        np.testing.assert_array_equal(restored.arg_params[name], value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not written by TuneReportCallback"):
        load_checkpoint(tune.Checkpoint.from_directory(str(tmp_path / "empty")))


def _load_pipeline(name):
    spec = importlib.util.spec_from_file_location(f"pipeline_{name}", PIPELINES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tune_mlp_searches_on_the_local_ray_and_prints_the_best(ray_session, tmp_path, capsys):
    tune_mlp = _load_pipeline("tune_mlp")
    best = tune_mlp.main(["--samples", "2", "--epochs", "2", "--hidden", "16", "32",
                          "--lr-min", "0.05", "--lr-max", "0.3", "--scheduler", "fifo",
                          "--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert f"best configuration: lr={best.config['lr']:.4g} hidden={best.config['hidden']}" \
        in out
    assert best.config["hidden"] in (16, 32) and 0.05 <= best.config["lr"] <= 0.3
    assert best.metrics["epoch"] == 1 and best.metrics["training_iteration"] == 2
    assert best.metrics["val-accuracy"] > 0.5           # 2 epochs on the digits: far above 0.1
    restored = load_checkpoint(best.checkpoint)
    assert restored.epoch == 2 and "fc1_weight" in restored.arg_params
    assert restored.arg_params["fc1_weight"].shape == (best.config["hidden"], 64)
    assert (tmp_path / "tune_mlp").is_dir()
