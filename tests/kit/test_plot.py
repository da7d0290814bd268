"""python -m raymod.plot draws a history's learning curves to an image."""
import subprocess
import sys

import numpy as np
import pytest

from raymod import plot
from raymod.history import EpochRecord, TrainingHistory

matplotlib_image = pytest.importorskip("matplotlib.image",
                                       reason="matplotlib is the 'plot' extra (in 'test')")


def _history(n=6, offset=0.0):
    return TrainingHistory(
        EpochRecord(i, {"accuracy": 0.4 + 0.1 * i + offset, "cross-entropy": 2.0 / (i + 1)},
                    {"accuracy": 0.35 + 0.1 * i + offset}, 0.1, 0.02) for i in range(n))


def _colored_pixels(image, rgb, tol=0.08):
    """How many pixels are close to `rgb` (the line colour), in a float image."""
    return int((np.abs(image[..., :3] - np.array(rgb)).max(axis=-1) < tol).sum())


C0 = (0x1f / 255, 0x77 / 255, 0xb4 / 255)   # matplotlib's first colour (blue)
C1 = (0xff / 255, 0x7f / 255, 0x0e / 255)   # its second (orange)


def test_the_command_renders_one_panel_per_metric(tmp_path):
    csv = tmp_path / "mlp-history.csv"
    _history().save(str(csv))
    out = tmp_path / "curve.png"
    done = subprocess.run([sys.executable, "-m", "raymod.plot", str(csv), "-o", str(out),
                           "--dpi", "50"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout
    image = matplotlib_image.imread(str(out))
    # Two metrics side by side: (2 * 5) x 3.6 inches at 50 dpi.
    assert image.shape[:2] == (180, 500)
    assert _colored_pixels(image, C0) > 100
    left, right = image[:, :250], image[:, 250:]
    assert _colored_pixels(left, C0) > 50 and _colored_pixels(right, C0) > 50


def test_several_runs_get_their_own_colours_and_jsonl_reads_too(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.jsonl"
    _history().save(str(a))
    _history(offset=0.05).save(str(b))
    out = tmp_path / "runs.png"
    fig = plot.plot_history([str(a), str(b)], str(out), title="two runs", dpi=50)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["accuracy",
                                                                       "cross-entropy"]
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["a train", "a val", "b train", "b val"]
    image = matplotlib_image.imread(str(out))
    assert _colored_pixels(image, C0) > 50 and _colored_pixels(image, C1) > 50


def test_the_plotted_values_are_the_historys(tmp_path):
    history = _history()
    fig = plot.plot_history(history)
    train_line = fig.axes[0].get_lines()[0]
    np.testing.assert_allclose(train_line.get_xdata(), history.epochs)
    np.testing.assert_allclose(train_line.get_ydata(), history.metric("accuracy"))


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="the history has no epochs to plot"):
        plot.plot_history(TrainingHistory())
    missing = tmp_path / "nope.csv"
    done = subprocess.run([sys.executable, "-m", "raymod.plot", str(missing)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "nope.csv" in done.stderr
