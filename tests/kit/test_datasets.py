"""MXNet's data helpers in `rm.test_utils`: files in MXNet's places, downloads, offline errors.

No test touches the network: `urllib.request.urlopen` is replaced.
"""
import gzip
import io
import struct
import urllib.error
import zipfile

import numpy as np
import pytest

import raymod as rm
from raymod import datasets
from raymod.datasets import MNIST_FILES, DownloadError


def _idx_bytes(arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    head = struct.pack(">I", 0x800 + arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.tobytes()


def _mnist_like(seed):
    rng = np.random.RandomState(seed)
    return {"train-images-idx3-ubyte": rng.randint(0, 256, (6, 28, 28)),
            "train-labels-idx1-ubyte": rng.randint(0, 10, 6),
            "t10k-images-idx3-ubyte": rng.randint(0, 256, (4, 28, 28)),
            "t10k-labels-idx1-ubyte": rng.randint(0, 10, 4)}


@pytest.fixture
def offline(monkeypatch):
    calls = []

    def refuse(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")
    monkeypatch.setattr(datasets.urllib.request, "urlopen", refuse)
    return calls


def _serve(monkeypatch, payloads):
    calls = []

    def fake(url, timeout=None):
        calls.append(url)
        return io.BytesIO(payloads[url])
    monkeypatch.setattr(datasets.urllib.request, "urlopen", fake)
    return calls


def test_get_mnist_reads_gz_files_in_place_as_mxnet(tmp_path, monkeypatch, offline):
    monkeypatch.chdir(tmp_path)
    arrays = _mnist_like(0)
    for name, arr in arrays.items():
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(_idx_bytes(arr)))
    mnist = rm.test_utils.get_mnist()
    assert sorted(mnist) == ["test_data", "test_label", "train_data", "train_label"]
    assert mnist["train_data"].shape == (6, 1, 28, 28) and mnist["train_data"].dtype == np.float32
    np.testing.assert_allclose(mnist["train_data"][:, 0] * 255,
                               arrays["train-images-idx3-ubyte"], rtol=1e-6)
    assert mnist["test_label"].dtype == np.int8
    np.testing.assert_array_equal(mnist["test_label"], arrays["t10k-labels-idx1-ubyte"])
    assert offline == []


def test_get_mnist_also_reads_the_unpacked_files_of_get_mnist_ubyte(tmp_path, monkeypatch,
                                                                     offline):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    arrays = _mnist_like(1)
    for name, arr in arrays.items():
        (tmp_path / "data" / name).write_bytes(_idx_bytes(arr))
    mnist = rm.test_utils.get_mnist()
    assert mnist["test_data"].shape == (4, 1, 28, 28)
    assert rm.test_utils.get_mnist_ubyte() is None and offline == []


def test_offline_errors_name_the_url_and_the_files(tmp_path, monkeypatch, offline):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DownloadError) as err:
        rm.test_utils.get_mnist()
    message = str(err.value)
    assert "http://data.mxnet.io/data/mnist/train-labels-idx1-ubyte.gz" in message
    assert "train-images-idx3-ubyte.gz" in message and "data/" in message
    with pytest.raises(DownloadError) as err:
        rm.test_utils.get_mnist_ubyte()
    assert "http://data.mxnet.io/mxnet/data/mnist.zip" in str(err.value)
    assert "t10k-labels-idx1-ubyte" in str(err.value)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))   # nothing half-written


def test_get_mnist_ubyte_downloads_and_unpacks_mnist_zip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, arr in _mnist_like(2).items():
            zf.writestr(name, _idx_bytes(arr))
    calls = _serve(monkeypatch, {datasets.MNIST_ZIP_URL: buf.getvalue()})
    rm.test_utils.get_mnist_ubyte()
    assert calls == [datasets.MNIST_ZIP_URL]
    assert all((tmp_path / "data" / name).exists() for name in MNIST_FILES)
    train, val = rm.test_utils.get_mnist_iterator(batch_size=2, input_shape=(784,))
    assert train.provide_data[0].shape == (2, 784) and val.shuffle


def test_download_keeps_an_existing_file_and_retries(tmp_path, monkeypatch):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    calls = _serve(monkeypatch, {"http://h/x.bin": b"new"})
    assert rm.test_utils.download("http://h/x.bin", dirname=str(tmp_path)) == str(target)
    assert target.read_bytes() == b"old" and calls == []
    rm.test_utils.download("http://h/x.bin", dirname=str(tmp_path), overwrite=True)
    assert target.read_bytes() == b"new"
    attempts = []

    def flaky(url, timeout=None):
        attempts.append(url)
        if len(attempts) < 3:
            raise urllib.error.URLError("try again")
        return io.BytesIO(b"third time")
    monkeypatch.setattr(datasets.urllib.request, "urlopen", flaky)
    rm.test_utils.download("http://h/y.bin", dirname=str(tmp_path), retries=2)
    assert (tmp_path / "y.bin").read_bytes() == b"third time" and len(attempts) == 3
