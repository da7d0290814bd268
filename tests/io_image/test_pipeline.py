"""pipelines/image_classification.py end to end (in process; the default run uses Ray)."""
import importlib.util
from pathlib import Path

import pytest

from .conftest import fixture

PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "image_classification.py"


def load():
    spec = importlib.util.spec_from_file_location("pipeline_image_classification", PIPELINE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_digits_through_im2rec_and_image_record_iter_reach_95_percent(tmp_path, capsys):
    accuracy = load().main(["--placement", "in_process", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "1437 images in" in out and "images/s" in out
    assert (tmp_path / "digits_train.idx").exists() and (tmp_path / "images" / "digit9").is_dir()
    assert accuracy >= 0.95


def test_own_rec_files(capsys):
    accuracy = load().main(["--placement", "in_process", "--rec", fixture("images.rec"),
                            "--val-rec", fixture("images.rec"), "--data-shape", "3", "12", "12",
                            "--num-classes", "12", "--epochs", "1", "--batch-size", "4",
                            "--pad", "0", "--filters", "4"])
    assert 0 <= accuracy <= 1
    assert "train: 12 images in" in capsys.readouterr().out


def test_rec_needs_val_rec():
    with pytest.raises(SystemExit):
        load().parse_args(["--rec", "a.rec"])
