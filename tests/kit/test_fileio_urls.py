"""Files through fsspec URLs (memory://, file://) and plain paths; atomic writes; missing epochs."""
import os
import uuid

import numpy as np
import pytest

import raymod as rm
from raymod import fileio, model

fsspec = pytest.importorskip("fsspec", reason="fsspec is the 'fsspec' extra (in 'test')")


@pytest.fixture
def mem_root():
    """A fresh memory:// folder, removed afterwards (the memory filesystem is process-wide)."""
    root = f"memory://raymod-test-{uuid.uuid4().hex}"
    yield root
    fs = fsspec.filesystem("memory")
    inner = root.split("://", 1)[1]
    if fs.exists(inner):
        fs.rm(inner, recursive=True)


def _memory_names(root):
    fs = fsspec.filesystem("memory")
    inner = "/" + root.split("://", 1)[1]
    return sorted(os.path.basename(p["name"]) for p in fs.ls(inner))


def _net():
    data = rm.sym.Variable("data")
    fc = rm.sym.FullyConnected(data, num_hidden=3, name="fc")
    return rm.sym.SoftmaxOutput(fc, name="softmax")


PARAMS = {"fc_weight": np.arange(6, dtype=np.float32).reshape(3, 2),
          "fc_bias": np.array([0.5, -1.0, 2.0], np.float32)}


def test_protocols_and_local_paths():
    assert fileio.protocol("s3://bucket/x") == "s3"
    assert fileio.protocol("/tmp/x") is None
    assert fileio.protocol("C:/x") is None
    assert fileio.is_remote("memory://x") and not fileio.is_remote("file:///tmp/x")
    assert fileio.local_path("file:///tmp/x") == "/tmp/x"
    with pytest.raises(ValueError, match="not a local path"):
        fileio.local_path("s3://bucket/x")
    assert fileio.join("s3://bucket/runs", "mlp") == "s3://bucket/runs/mlp"
    assert fileio.join("runs", "mlp") == os.path.join("runs", "mlp")
    with pytest.raises(TypeError, match="fname must be a path or URL .* received int"):
        fileio.read_bytes(3)


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_nd_save_load_round_trip_through_urls(kind, mem_root, tmp_path):
    root = mem_root if kind == "memory" else f"file://{tmp_path}"
    fname = f"{root}/arrays.params"
    rm.nd.save(fname, {"a": PARAMS["fc_weight"], "b": PARAMS["fc_bias"]})
    loaded = rm.nd.load(fname)
    np.testing.assert_array_equal(loaded["a"], PARAMS["fc_weight"])
    np.testing.assert_array_equal(loaded["b"], PARAMS["fc_bias"])
    assert fileio.read_bytes(fname) == rm.nd.save_tobuffer(
        {"a": PARAMS["fc_weight"], "b": PARAMS["fc_bias"]})
    if kind == "file":
        assert (tmp_path / "arrays.params").exists()


def test_checkpoint_module_load_and_optimizer_states_through_memory_urls(mem_root):
    prefix = f"{mem_root}/run/mlp"
    mod = rm.mod.Module(_net(), placement="in_process")
    mod.bind(data_shapes=[("data", (4, 2))], label_shapes=[("softmax_label", (4,))])
    mod.init_params(arg_params=PARAMS)
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    mod.forward_backward(rm.io.DataBatch([rm.nd.array(np.ones((4, 2)))],
                                         [rm.nd.array(np.array([0, 1, 2, 0]))]))
    mod.update()
    mod.save_checkpoint(prefix, 3, save_optimizer_states=True)
    assert _memory_names(f"{mem_root}/run") == ["mlp-0003.params", "mlp-0003.states",
                                                "mlp-symbol.json"]
    sym, args, auxs = model.load_checkpoint(prefix, 3)
    assert sym.list_arguments() == _net().list_arguments()
    trained = mod.get_params()[0]
    for name in PARAMS:
        np.testing.assert_array_equal(args[name], trained[name])

    loaded = rm.mod.Module.load(prefix, 3, load_optimizer_states=True, placement="in_process")
    loaded.bind(data_shapes=[("data", (4, 2))], label_shapes=[("softmax_label", (4,))])
    loaded.init_optimizer(optimizer="sgd",
                          optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    # The momentum came back: the next step is the same on both modules.
    batch = rm.io.DataBatch([rm.nd.array(np.full((4, 2), 0.5))],
                           [rm.nd.array(np.array([2, 1, 0, 1]))])
    for m in (mod, loaded):
        m.forward_backward(batch)
        m.update()
    for name in PARAMS:
        np.testing.assert_allclose(loaded.get_params()[0][name], mod.get_params()[0][name],
                                   rtol=1e-6)


def test_do_checkpoint_callback_writes_to_a_url(mem_root):
    callback = rm.callback.do_checkpoint(f"{mem_root}/ck", period=2)
    for epoch in range(4):
        callback(epoch, _net(), PARAMS, {})
    assert _memory_names(mem_root) == ["ck-0002.params", "ck-0004.params", "ck-symbol.json"]
    assert model.saved_epochs(f"{mem_root}/ck") == [2, 4]


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_missing_epoch_lists_the_saved_ones(kind, mem_root, tmp_path):
    root = mem_root if kind == "memory" else str(tmp_path)
    prefix = f"{root}/mlp"
    for epoch in (1, 5, 12):
        model.save_checkpoint(prefix, epoch, _net(), PARAMS, {})
    model.save_checkpoint(f"{root}/mlp-other", 7, _net(), PARAMS, {})   # not this prefix's
    with pytest.raises(FileNotFoundError) as err:
        model.load_checkpoint(prefix, 3)
    assert f"{prefix}-0003.params does not exist" in str(err.value)
    assert "saved under that prefix are 1, 5, 12" in str(err.value)
    with pytest.raises(FileNotFoundError, match="saved under that prefix are 1, 5, 12"):
        rm.mod.Module.load(prefix, 4)
    with pytest.raises(FileNotFoundError, match="no .*mlp-other2-NNNN.params file exists"):
        model.load_params(f"{root}/mlp-other2", 1)


def test_a_failed_write_leaves_nothing_under_the_url(mem_root):
    fname = f"{mem_root}/x.params"
    with pytest.raises(RuntimeError, match="stop"):
        with fileio.atomic_write(fname) as f:
            f.write(b"half")
            raise RuntimeError("stop")
    assert not fileio.exists(fname)


def test_filesystems_without_one_shot_puts_get_a_temporary_object_moved_in(mem_root,
                                                                          monkeypatch):
    # Treat memory:// like HDFS/SFTP (no all-or-nothing put): temp name, then a move.
    monkeypatch.setattr(fileio, "_WHOLE_OBJECT_STORES", frozenset())
    fs = fsspec.filesystem("memory")
    moves = []
    real_mv = fs.mv

    def recording_mv(src, dst, **kw):
        moves.append((src, dst))
        return real_mv(src, dst, **kw)

    monkeypatch.setattr(fs, "mv", recording_mv)
    fileio.atomic_write_bytes(f"{mem_root}/a.bin", b"payload")
    assert fileio.read_bytes(f"{mem_root}/a.bin") == b"payload"
    ((src, dst),) = moves
    assert os.path.basename(src).startswith(".a.bin.") and src.endswith(".tmp")
    assert dst.endswith("/a.bin")
    assert _memory_names(mem_root) == ["a.bin"]

    def failing_mv(src, dst, **kw):
        raise OSError("move failed (simulated)")

    monkeypatch.setattr(fs, "mv", failing_mv)
    with pytest.raises(OSError, match="move failed"):
        fileio.atomic_write_bytes(f"{mem_root}/b.bin", b"other")
    assert _memory_names(mem_root) == ["a.bin"]          # no temporary left behind


def test_urls_without_fsspec_say_what_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "fsspec", None)
    with pytest.raises(ImportError, match=r"needs fsspec: pip install 'raymod\[fsspec\]'"):
        rm.nd.load("s3://bucket/x.params")
    # Local paths and file:// never need it.
    assert fileio.exists("file:///") and fileio.exists("/")
