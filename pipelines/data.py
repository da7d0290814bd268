"""Real data the pipelines can use without a download: scikit-learn's digits, or MNIST idx files."""
import gzip
import logging
import os
import struct

import numpy as np


def load_digits_split(val_fraction=0.2, seed=0):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images), scaled to [0, 1]."""
    logging.info("loading scikit-learn's bundled handwritten digits")   # its import takes seconds
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise SystemExit("the digits data needs scikit-learn: pip install 'raymod[pipelines]'") \
            from err
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(len(x) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an idx file ({len(data)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file (magic {data[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims}, found {body.size} values")
    return body.reshape(dims)


def _find(directory, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no {stem}[.gz] in {directory}")


def load_mnist_split(directory):
    """MNIST from the four idx files (train-images-idx3-ubyte, ...) in `directory`."""
    def load(prefix):
        images = _read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
        labels = _read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
        return (images.reshape(len(images), -1).astype(np.float32) / 255.0,
                labels.astype(np.float32))
    return load("train"), load("t10k")
