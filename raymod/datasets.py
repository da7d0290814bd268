"""MXNet's data helpers (`mx.test_utils.download`, `get_mnist`, `get_mnist_ubyte`, ...).

They look for the files where MXNet puts them, under MXNet's names, and
download from MXNet's URLs only what is missing:

- `get_mnist_ubyte()`: `data/train-images-idx3-ubyte`, `data/train-labels-idx1-ubyte`,
  `data/t10k-images-idx3-ubyte`, `data/t10k-labels-idx1-ubyte` (from `mnist.zip`);
- `get_mnist()`: the gzipped files (`train-images-idx3-ubyte.gz`, ...) in the
  current directory, or else the unpacked ones in `data/`.

Offline, the error names the URL and the files to put in place instead.
"""
import gzip
import os
import urllib.error
import urllib.request
import zipfile

import numpy as np

from .fileio import atomic_write
from .io.idx import parse_idx

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_ZIP_URL = "http://data.mxnet.io/mxnet/data/mnist.zip"
MNIST_GZ_URL = "http://data.mxnet.io/data/mnist/"
_TIMEOUT_S = 60


class DownloadError(OSError):
    """A file could not be fetched; the message says which, from where, and what to do."""


def download(url, fname=None, dirname=None, overwrite=False, retries=5):
    """Fetch `url` into a file (MXNet's `mx.test_utils.download`) and return its name.

    Parameters
    ----------
    url : str
    fname : str, optional
        Default: the last part of the URL.
    dirname : str, optional
        Folder for `fname` (created when missing).
    overwrite : bool, default False
        Fetch even when the file exists (otherwise an existing file is kept).
    retries : int, default 5
        Further attempts after a failed one.
    """
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"download: retries must be a non-negative int, received {retries!r}")
    fname = fname or url.split("/")[-1]
    if dirname is not None:
        fname = os.path.join(dirname, fname)
    folder = os.path.dirname(fname)
    if folder:
        os.makedirs(folder, exist_ok=True)
    if not overwrite and os.path.exists(fname):
        return fname
    last = None
    for _ in range(retries + 1):
        try:
            with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
                payload = response.read()
            break
        except (urllib.error.URLError, OSError) as err:
            last = err
    else:
        raise DownloadError(f"could not download {url} into {fname!r} ({last}); without "
                            f"network access, put that file there yourself") from last
    with atomic_write(fname) as f:   # never half a file under the real name
        f.write(payload)
    return fname


def get_mnist_ubyte():
    """Make sure `data/` holds MNIST's four IDX files (MXNet's `get_mnist_ubyte`).

    Files already there are used as they are; otherwise `mnist.zip` is
    downloaded from MXNet's URL into `data/` and unpacked.
    """
    missing = [f for f in MNIST_FILES if not os.path.exists(os.path.join("data", f))]
    if not missing:
        return
    try:
        archive = download(MNIST_ZIP_URL, dirname="data")
    except DownloadError as err:
        raise DownloadError(f"MNIST: {missing} are missing from {os.path.abspath('data')} and "
                            f"{MNIST_ZIP_URL} could not be downloaded ({err.__cause__}). Put "
                            f"the four files {list(MNIST_FILES)} (unpacked IDX files) in that "
                            f"folder, or mnist.zip holding them") from err
    with zipfile.ZipFile(archive) as zf:
        zf.extractall("data")


def _mnist_file(name):
    """The bytes of MNIST file `name`: `name.gz` here, `data/name`, or a download of `name.gz`."""
    for path in (name + ".gz", os.path.join("data", name)):
        if os.path.exists(path):
            with open(path, "rb") as f:
                raw = f.read()
            return path, gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    url = MNIST_GZ_URL + name + ".gz"
    try:
        path = download(url)
    except DownloadError as err:
        raise DownloadError(f"MNIST: neither {name}.gz (in {os.getcwd()}) nor data/{name} "
                            f"exists and {url} could not be downloaded ({err.__cause__}). Put "
                            f"the four files {[f + '.gz' for f in MNIST_FILES]} in the current "
                            f"directory, or the unpacked {list(MNIST_FILES)} in data/") from err
    with open(path, "rb") as f:
        return path, gzip.decompress(f.read())


def _read_mnist(image_name, label_name):
    label_path, label_raw = _mnist_file(label_name)
    image_path, image_raw = _mnist_file(image_name)
    labels = parse_idx(label_raw, label_path, ndim=1).astype(np.int8)   # MXNet's int8
    images = parse_idx(image_raw, image_path, ndim=3)
    if len(images) != len(labels):
        raise ValueError(f"MNIST: {image_path} holds {len(images)} images, {label_path} "
                         f"{len(labels)} labels")
    images = images.reshape(len(images), 1, *images.shape[1:]).astype(np.float32) / 255
    return labels, images


def get_mnist():
    """MNIST as numpy arrays (MXNet's `mx.test_utils.get_mnist`).

    Returns
    -------
    dict
        'train_data' (60000, 1, 28, 28) and 'test_data' (10000, 1, 28, 28)
        float32 in [0, 1] (divided by 255, as MXNet), 'train_label' and
        'test_label' int8.
    """
    train_label, train_data = _read_mnist("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    test_label, test_data = _read_mnist("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return {"train_data": train_data, "train_label": train_label,
            "test_data": test_data, "test_label": test_label}


def get_mnist_iterator(batch_size, input_shape, num_parts=1, part_index=0):
    """MNISTIters over `data/`'s files (MXNet's `get_mnist_iterator`): (train, val).

    `input_shape` of 3 dimensions gives (batch, 1, 28, 28) batches, else flat
    ones. Both shuffle (once, in MXNet's order): MXNet leaves the validation
    iterator at MNISTIter's default, shuffle=True.
    """
    from .io.mnist import MNISTIter
    get_mnist_ubyte()
    flat = len(input_shape) != 3
    common = {"batch_size": batch_size, "flat": flat, "num_parts": num_parts,
              "part_index": part_index, "input_shape": input_shape}
    train = MNISTIter(image="data/train-images-idx3-ubyte", label="data/train-labels-idx1-ubyte",
                      shuffle=True, **common)
    val = MNISTIter(image="data/t10k-images-idx3-ubyte", label="data/t10k-labels-idx1-ubyte",
                    **common)   # shuffle left at its default, as MXNet does
    return train, val
