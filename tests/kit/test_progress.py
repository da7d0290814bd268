"""TrainingProgress: one line per epoch off a terminal, a redrawn bar on one."""
import io
import logging
import re

import numpy as np
import pytest

import raymod as rm
from raymod.callback import TrainingProgress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _fit(progress, num_epoch=2, eval_data=True, batch_end_callback=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    train = rm.io.NDArrayIter(x, y, batch_size=16)
    val = rm.io.NDArrayIter(x[:32], y[:32], batch_size=16) if eval_data else None
    net = rm.sym.SoftmaxOutput(rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=2,
                                                     name="fc"), name="softmax")
    mod = rm.mod.Module(net, placement="in_process")
    return mod.fit(train, eval_data=val, num_epoch=num_epoch, callbacks=[progress],
                   batch_end_callback=batch_end_callback,
                   optimizer_params={"learning_rate": 0.5})


def test_off_a_terminal_it_writes_one_line_per_epoch():
    out = io.StringIO()
    history = _fit(TrainingProgress(stream=out))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue()
    for epoch, line in enumerate(lines):
        record = history[epoch]
        assert line.startswith(f"Epoch[{epoch}] {epoch + 1}/2  5 batches in ")
        speed = float(re.search(r"([\d,]+) samples/s", line).group(1).replace(",", ""))
        assert speed == pytest.approx(5 * 16 / record.train_time, rel=0.01)
        assert f"train accuracy={record.train['accuracy']:.4f}" in line
        assert f"val accuracy={record.val['accuracy']:.4f}" in line


def test_without_validation_the_line_has_only_training_metrics():
    out = io.StringIO()
    _fit(TrainingProgress(stream=out), num_epoch=1, eval_data=False)
    (line,) = out.getvalue().splitlines()
    assert "train accuracy=" in line and "val " not in line


def test_on_a_terminal_it_redraws_a_bar_and_ends_each_epoch_with_the_summary():
    out = Terminal()
    history = _fit(TrainingProgress(stream=out, interval=0, width=10))
    text = out.getvalue()
    frames = [f for f in re.split(r"[\r\n]", text) if f.strip()]
    # Epoch 0 does not know its length yet: a batch count; epoch 1 has the bar.
    assert "Epoch[0] 1/2  3 batches" in frames[2]
    assert "Epoch[1] 2/2 [######----] 3/5" in text
    assert re.search(r"Epoch\[1\] 2/2 \[##########\] 5/5  [\d,]+ samples/s  accuracy=0\.\d{4}",
                     text)
    summaries = [f for f in frames if " batches in " in f]
    assert len(summaries) == 2 and f"val accuracy={history[1].val['accuracy']:.4f}" in \
        summaries[1]
    # Each bar frame is blanked (spaces, then a carriage return) before a summary.
    assert re.search(r"\r {20,}\rEpoch\[0\] 1/2  5 batches in", text)
    assert text.endswith("\n")


def test_a_log_record_blanks_the_bar_first_and_the_filter_is_removed_at_the_end():
    out = Terminal()
    root = logging.getLogger()
    handler = logging.StreamHandler(out)
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)

    def log_at_batch_3(param):
        if param.nbatch == 3:
            logging.info("a log line")

    try:
        _fit(TrainingProgress(stream=out, interval=0), num_epoch=1,
             batch_end_callback=log_at_batch_3)
        assert handler.filters == []
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = out.getvalue()
    before, _, _ = text.partition("a log line")
    assert re.search(r"\r +\r$", before), repr(before[-80:])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="interval must be >= 0"):
        TrainingProgress(interval=-1)
    with pytest.raises(ValueError, match="width must be a positive int"):
        TrainingProgress(width=0)
