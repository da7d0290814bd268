"""Contexts (as mx.Context) and atomic file writes."""
import os
import pickle
import threading

import numpy as np
import pytest

import raymod as rm
from raymod import context as rctx
from raymod.fileio import atomic_write_bytes, atomic_write_text


def test_contexts_compare_hash_and_print_like_mxnet():
    assert rm.cpu() == rm.Context("cpu", 0) == rm.Context(rm.cpu())
    assert rm.gpu(1) != rm.gpu(0) and rm.cpu(1) != rm.gpu(1)
    assert len({rm.cpu(), rm.cpu(0), rm.gpu(0)}) == 2
    assert repr(rm.gpu(1)) == "gpu(1)" and repr(rctx.cpu_pinned()) == "cpu_pinned(0)"
    assert (rm.cpu().device_typeid, rm.gpu().device_typeid) == (1, 2)
    assert pickle.loads(pickle.dumps(rm.gpu(3))) == rm.gpu(3)
    with pytest.raises(ValueError, match="device_type must be one of"):
        rm.Context("tpu")


def test_host_contexts_compute_with_numpy():
    assert rm.cpu().xp is np and rctx.cpu_pinned().xp is np
    if not rctx.CUPY_AVAILABLE:
        with pytest.raises(RuntimeError, match="needs cupy"):
            rm.gpu(0).xp
        assert rctx.num_gpus() == 0
    else:
        assert rctx.num_gpus() >= 0


def test_with_context_sets_the_default_for_this_thread_only():
    assert rm.current_context() == rm.cpu(0)
    seen = {}

    def other_thread():
        seen["ctx"] = rm.current_context()

    with rm.cpu(3):
        assert rm.current_context() == rm.cpu(3)
        with rm.gpu(1):
            assert rm.current_context() == rm.gpu(1)
            worker = threading.Thread(target=other_thread)
            worker.start()
            worker.join()
        assert rm.current_context() == rm.cpu(3)
    assert rm.current_context() == rm.cpu(0)
    assert seen["ctx"] == rm.cpu(0)


def test_executor_binds_on_the_current_context_by_default():
    with rm.cpu(2):
        exe = (rm.sym.Variable("x") * 2).simple_bind(None, x=(2,))
    assert exe._ctx == rm.cpu(2)


def test_to_numpy_and_array_module():
    a = np.arange(3)
    assert rctx.to_numpy(a) is a
    assert rctx.to_numpy([1, 2]).tolist() == [1, 2]
    assert rctx.array_module(a, [1]) is np


def test_atomic_write(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    atomic_write_text(str(target), "héllo")
    assert target.read_text(encoding="utf-8") == "héllo"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_write_failure_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    class Boom(Exception):
        pass

    def fail_fsync(fd):
        raise Boom()

    monkeypatch.setattr(os, "fsync", fail_fsync)
    with pytest.raises(Boom):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]
