"""`MNISTIter` (MXNet's `mx.io.MNISTIter`): batches from MNIST's IDX files.

Behaviour of MXNet 1.9.1's C++ iterator, checked batch by batch against the
wheel (tests/fixtures/mxnet/iterators.json, made by make_iterator_fixtures.py):

- images are scaled by 1/256 (not 1/255) into float32, shape
  `(batch, 1, rows, cols)`, or `(batch, rows * cols)` with `flat=True`;
  labels are float32 of shape `(batch,)`;
- with `shuffle=True` the examples are permuted ONCE, at construction, in
  the order C++'s `std::shuffle` with `std::mt19937(seed)` gives (the same
  order as MXNet's wheel, see cxx_shuffle.py); every epoch repeats it;
- an incomplete last batch is dropped, so `pad` is always 0;
- `num_parts`/`part_index` keep examples `[int(n / parts * index),
  int(n / parts * (index + 1)))` of the file.

Built on RowBatchIter: the files are read into memory at construction and
every batch is rows of those arrays (`batch_rows()`). Differences from
MXNet: `getindex()` gives those row numbers (MXNet gives zeros); there is no
prefetch thread (`prefetch_buffer` and `ctx` are accepted and checked only);
MXNet ignores unknown keyword arguments, raymod accepts the two its own
scripts pass (`data_shape`, `input_shape`, ignored as there) and rejects others.
"""
import sys

import numpy as np

from .cxx_shuffle import std_shuffle_order
from .idx import read_idx
from .rows import RowBatchIter

_CTX_CHOICES = ("cpu", "gpu")


def _positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"MNISTIter: {name} must be an int >= {minimum}, received {value!r}")
    return int(value)


def part_bounds(count, num_parts, part_index):
    """MXNet's GetPart: the [start, end) examples of part `part_index` (double arithmetic)."""
    start = int(count / num_parts * part_index)
    end = int(count / num_parts * (part_index + 1))
    return start, end


class MNISTIter(RowBatchIter):
    """Iterate over the MNIST IDX files `image` and `label` (keyword arguments only).

    Parameters
    ----------
    image : str, default './train-images-idx3-ubyte'
    label : str, default './train-labels-idx1-ubyte'
    batch_size : int, default 128
    shuffle : bool, default True
        Permute the examples once, at construction (MXNet's order for `seed`).
    flat : bool, default False
        Batches of shape (batch, rows * cols) instead of (batch, 1, rows, cols).
    seed : int, default 0
    silent : bool, default False
        When False, print MXNet's one-line summary to stderr.
    num_parts : int, default 1
    part_index : int, default 0
        Read only part `part_index` of `num_parts` equal parts (distributed training).
    prefetch_buffer : int, default 4
        Accepted for MXNet compatibility (raymod loads everything at once).
    ctx : {'cpu', 'gpu'}, default 'gpu'
        Accepted for MXNet compatibility.
    dtype : None or 'float32', default None
        MXNet's wheel fails for any other output type; so does raymod.
    data_name : str, default 'data'
    label_name : str, default 'softmax_label'
    data_shape, input_shape : tuple, optional
        Ignored, as in MXNet (scripts pass them): the shape comes from the
        file and `flat`.
    """

    def __init__(self, *, image="./train-images-idx3-ubyte", label="./train-labels-idx1-ubyte",
                 batch_size=128, shuffle=True, flat=False, seed=0, silent=False, num_parts=1,
                 part_index=0, prefetch_buffer=4, ctx="gpu", dtype=None, data_name="data",
                 label_name="softmax_label", data_shape=None, input_shape=None):
        del data_shape, input_shape   # MXNet ignores them too
        batch_size = _positive_int("batch_size", batch_size)
        num_parts = _positive_int("num_parts", num_parts)
        if isinstance(part_index, bool) or not isinstance(part_index, (int, np.integer)) \
                or not 0 <= part_index < num_parts:
            raise ValueError(f"MNISTIter: part_index must be an int in [0, num_parts="
                             f"{num_parts}), received {part_index!r}")
        _positive_int("prefetch_buffer", prefetch_buffer, minimum=0)
        if ctx not in _CTX_CHOICES:
            raise ValueError(f"MNISTIter: ctx must be one of {_CTX_CHOICES}, received {ctx!r}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"MNISTIter: dtype must be None or 'float32' (MXNet's MNISTIter "
                             f"fails for other output types), received {dtype!r}")
        images, labels = _load(image, label, int(num_parts), int(part_index))
        if len(images) < batch_size:
            raise ValueError(f"MNISTIter: batch_size={batch_size} exceeds the {len(images)} "
                             f"examples of part {part_index} of {num_parts} of {image!r}; "
                             f"an incomplete batch is dropped, so there would be no batch")
        if flat:
            images = images.reshape(len(images), -1)
        else:
            images = images.reshape((len(images), 1) + images.shape[1:])
        super().__init__(batch_size, [(data_name, images)], [(label_name, labels)])
        self.image, self.label = image, label
        self.shuffle, self.flat, self.seed = bool(shuffle), bool(flat), int(seed)
        self._order = (std_shuffle_order(len(images), self.seed) if self.shuffle
                       else np.arange(len(images), dtype=np.int64))
        self._batch = 0
        if not silent:
            shape = ",".join(str(d) for d in (batch_size,) + images.shape[1:])
            print(f"MNISTIter: load {len(images)} images, shuffle={int(self.shuffle)}, "
                  f"shape=({shape})", file=sys.stderr)

    def reset(self):
        """Back to the first batch; the order stays the one made at construction (MXNet's)."""
        self._batch = 0
        self._rows = None

    def _advance(self):
        start = self._batch * self.batch_size
        if start + self.batch_size > len(self._order):
            return None
        self._batch += 1
        return self._order[start:start + self.batch_size], 0


def _load(image, label, num_parts, part_index):
    """Images (n, rows, cols) as float32 / 256 and labels (n,) as float32, of one part."""
    pixels = read_idx(image, ndim=3)
    digits = read_idx(label, ndim=1)
    for fname, values in ((image, pixels), (label, digits)):
        if values.dtype != np.uint8:
            raise ValueError(f"MNISTIter: {fname!r} holds {values.dtype} values; MNIST files "
                             f"hold unsigned bytes (IDX type code 0x08)")
    if len(pixels) != len(digits):
        raise ValueError(f"MNISTIter: {image!r} holds {len(pixels)} images but {label!r} "
                         f"holds {len(digits)} labels")
    start, end = part_bounds(len(pixels), num_parts, part_index)
    images = pixels[start:end].astype(np.float32) * np.float32(1.0 / 256.0)
    return images, digits[start:end].astype(np.float32)
