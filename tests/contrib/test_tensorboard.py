"""rm.contrib.tensorboard.LogMetricsCallback writes event files TensorBoard reads.

The files are read back with a TFRecord reader written here (length, masked
CRC32C of the length, payload, masked CRC32C of the payload) and
tensorboardX's Event protobuf, so the framing and the checksums are checked
independently of the writer.
"""
import glob
import os
import struct

import numpy as np
import pytest

import raymod as rm

pytest.importorskip("tensorboardX", reason="tensorboardX is the 'tensorboard' extra (in 'test')")
from tensorboardX.proto import event_pb2  # noqa: E402

from raymod.contrib.tensorboard import LogMetricsCallback  # noqa: E402


def _crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_events(directory):
    """Every Event of every event file in `directory` (not its subfolders)."""
    events = []
    for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            header = data[pos:pos + 8]
            (length,) = struct.unpack("<Q", header)
            (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
            assert length_crc == _masked(_crc32c(header)), f"{path}: bad length CRC"
            payload = data[pos + 12:pos + 12 + length]
            (payload_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
            assert payload_crc == _masked(_crc32c(payload)), f"{path}: bad payload CRC"
            event = event_pb2.Event()
            event.ParseFromString(payload)
            events.append(event)
            pos += 16 + length
    return events


def scalars(directory):
    """{tag: [(step, value), ...]} of the scalar summaries in `directory`."""
    out = {}
    for event in read_events(directory):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def _fit(**kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    train = rm.io.NDArrayIter(x, y, batch_size=16)
    val = rm.io.NDArrayIter(x[:32], y[:32], batch_size=16)
    net = rm.sym.SoftmaxOutput(rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=2,
                                                     name="fc"), name="softmax")
    mod = rm.mod.Module(net, placement="in_process")
    return mod.fit(train, eval_data=val, num_epoch=3, optimizer_params={"learning_rate": 0.5},
                   **kwargs)


def test_as_a_fit_callback_it_logs_train_and_val_per_epoch(tmp_path):
    history = _fit(callbacks=[LogMetricsCallback(str(tmp_path), prefix="mlp")])
    train, val = scalars(str(tmp_path / "train")), scalars(str(tmp_path / "val"))
    assert train["mlp-accuracy"] == [(e, pytest.approx(history[e].train["accuracy"]))
                                     for e in range(3)]
    assert val["mlp-accuracy"] == [(e, pytest.approx(history[e].val["accuracy"]))
                                   for e in range(3)]
    assert read_events(str(tmp_path)) == []        # nothing at the top level


def test_mxnets_way_batch_end_and_eval_end_callbacks(tmp_path):
    train_cb = LogMetricsCallback(str(tmp_path / "train"))
    eval_cb = LogMetricsCallback(str(tmp_path / "eval"))
    history = _fit(batch_end_callback=train_cb, eval_end_callback=eval_cb)
    train_cb.close()
    eval_cb.close()
    train = scalars(str(tmp_path / "train"))["accuracy"]
    assert [step for step, _ in train] == list(range(12))     # 4 batches x 3 epochs
    evals = scalars(str(tmp_path / "eval"))["accuracy"]
    assert evals == [(e, pytest.approx(history[e].val["accuracy"])) for e in range(3)]


def test_parameter_histograms(tmp_path):
    cb = LogMetricsCallback(str(tmp_path))
    hist_cb = cb.node_histogram_visualization(node_names=["fc_weight"])
    _fit(epoch_end_callback=hist_cb)
    cb.close()
    tags = [(e.step, v.tag) for e in read_events(str(tmp_path)) for v in e.summary.value
            if v.HasField("histo")]
    assert tags == [(0, "fc_weight"), (1, "fc_weight"), (2, "fc_weight")]
    (first,) = [v.histo for e in read_events(str(tmp_path)) for v in e.summary.value
                if v.HasField("histo") and e.step == 0]
    assert first.num == 8                                     # fc_weight is 2 x 4


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(TypeError, match="logging_dir must be a path, received int"):
        LogMetricsCallback(3)
    with pytest.raises(TypeError, match="prefix must be a str or None"):
        LogMetricsCallback(str(tmp_path), prefix=1)


def test_reachable_as_rm_contrib_tensorboard():
    import raymod.contrib
    assert raymod.contrib.tensorboard.LogMetricsCallback is LogMetricsCallback
