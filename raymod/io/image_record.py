"""`ImageRecordIter`: batches of augmented images from a RecordIO file, as MXNet's.

The iterator only keeps the books: which records (a part of the file when
`num_parts` > 1), in which order each epoch, which batch they fall in, how
the last batch is padded, and one augmentation seed per sample. The images
themselves are made by `image_record_source.decode_records`, a pure function
of (source description, record offsets, seeds), run on a thread pool
(OpenCV releases the GIL) with up to `prefetch_buffer` batches in flight.

Batches as MXNet 1.9.1 gives them:

- data (batch, c, h, w) float32 in RGB(A) order, label (batch,) or
  (batch, label_width) float32;
- `round_batch=True` (the default) fills the last batch of an epoch from the
  start of the next one and reports how many as `pad`; the next epoch then
  begins where that fill stopped (so it is shorter), as MXNet's does;
- with an index, `num_parts` splits the records into runs of
  ceil(n / num_parts); without one, into equal byte ranges of the file.

Deviations: `round_batch=False` zero-fills the last batch and reports the
filler as `pad` (MXNet leaves it uninitialised and says pad=0); the random
augmentations draw from numpy generators, so they follow MXNet's
distributions, not its random streams; `getindex()` gives the records'
header ids (MXNet gives zeros).
"""
from collections import deque, namedtuple
from concurrent.futures import ThreadPoolExecutor
import os

import numpy as np

from ..image.augment import AugmentSpec
from ..ndarray import NDArray
from .desc import DataBatch, DataDesc
from .image_record_source import (FILLER, ImageRecordSource, decode_records, part_offsets,
                                  record_offsets)
from .iter import DataIter

# MXNet arguments raymod does not implement: refused when set off their default.
_UNSUPPORTED = {"random_resized_crop": False, "max_random_area": 1.0, "min_random_area": 1.0,
                "brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "pca_noise": 0.0,
                "random_h": 0, "random_s": 0, "random_l": 0, "mean_img": "",
                "aug_seq": "aug_default"}
# MXNet arguments about its C++ engine that change nothing here.
_IGNORED = ("verbose", "device_id", "ctx", "shuffle_chunk_size", "shuffle_chunk_seed")
_AUG_NAMES = [n for n in AugmentSpec.names() if n not in ("data_shape", "mean", "std", "dtype")]

BatchPlan = namedtuple("BatchPlan", ["offsets", "seeds", "pad", "carry"])
BatchPlan.__doc__ = """One batch to make: record offsets (FILLER for zero samples), one seed
per sample, the pad count, and where the next epoch starts if this batch wrapped."""


class ImageRecordIter(DataIter):
    """Iterate over batches of images from a RecordIO (`.rec`) file (MXNet's ImageRecordIter).

    Needs OpenCV: ``pip install 'raymod[image]'``.

    Parameters
    ----------
    path_imgrec : str
        The `.rec` file (im2rec makes it).
    data_shape : tuple of int
        (channels, height, width) of one image; channels 1, 3 or 4.
    batch_size : int
    path_imgidx : str, optional
        Its `.idx` file; without it the record headers are scanned once.
    path_imglist : str, optional
        A `.lst` file whose labels replace the records' own.
    label_width : int, default 1
    shuffle : bool, default False
        A new order of the records (of this part) every epoch.
    seed : int, default 0
        Seeds the shuffle and the random augmentations.
    seed_aug : int, optional
        When given, each record gets the same augmentation every epoch.
    round_batch : bool, default True
        Fill the last batch from the start of the next epoch (see module notes).
    num_parts, part_index : int, default 1, 0
        Read only part `part_index` of `num_parts` (one per worker).
    preprocess_threads : int, default 4
        Threads that decode and augment.
    prefetch_buffer : int, default 4
        Batches made ahead of the one being read.
    data_name, label_name : str, default 'data', 'softmax_label'
    dtype : {None, 'float32', 'uint8'}
        'uint8' gives raw pixels (no mean/std/scale).
    mean_r, mean_g, mean_b, mean_a : float, default 0
    std_r, std_g, std_b, std_a : float, default 1
    scale : float, default 1
        Output = (pixel - mean) * scale / std.
    resize : int, default -1
        Resize the shorter edge to this first.
    rand_crop : bool, default False
    rand_mirror, mirror : bool, default False
    max_random_scale, min_random_scale : float, default 1
    max_rotate_angle : int, default 0
    rotate : int, default -1
    max_shear_ratio, max_aspect_ratio : float, default 0
    min_aspect_ratio : float, optional
    max_img_size, min_img_size : float, default 1e10, 0
    max_crop_size, min_crop_size : int, default -1
    pad : int, default 0
        Border of `fill_value` pixels added before cropping (not the batch pad).
    fill_value : int, default 255
    inter_method : int, default 1
        0 nearest, 1 bilinear, 2 cubic, 3 area, 4 lanczos4, 9 auto, 10 random.
    max_random_illumination : float, default 0
    verbose, device_id, ctx, shuffle_chunk_size, shuffle_chunk_seed
        Accepted for MXNet scripts; they change nothing here.
    """

    def __init__(self, path_imgrec="", data_shape=None, batch_size=None, path_imgidx="",
                 path_imglist="", label_width=1, shuffle=False, seed=0, seed_aug=None,
                 round_batch=True, num_parts=1, part_index=0, preprocess_threads=4,
                 prefetch_buffer=4, data_name="data", label_name="softmax_label", dtype=None,
                 **kwargs):
        super().__init__(batch_size)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.source = _make_source(path_imgrec, path_imgidx, path_imglist, data_shape,
                                   label_width, dtype, kwargs)
        self.num_parts = _positive_int("num_parts", num_parts)
        if not isinstance(part_index, (int, np.integer)) or not 0 <= part_index < num_parts:
            raise ValueError(f"ImageRecordIter: part_index must be in [0, num_parts={num_parts})"
                             f", received {part_index!r}")
        self.part_index = int(part_index)
        self.shuffle, self.seed, self.seed_aug = bool(shuffle), int(seed), seed_aug
        self.round_batch = bool(round_batch)
        self.preprocess_threads = _positive_int("preprocess_threads", preprocess_threads)
        self.prefetch_buffer = _positive_int("prefetch_buffer", prefetch_buffer)
        self.data_name, self.label_name = data_name, label_name
        offsets = record_offsets(path_imgrec, path_imgidx)
        self.offsets = part_offsets(offsets, os.path.getsize(path_imgrec), self.num_parts,
                                    self.part_index, indexed=bool(path_imgidx))
        self._check_enough_records()
        self._pool = ThreadPoolExecutor(self.preprocess_threads,
                                        thread_name_prefix="ImageRecordIter")
        self._pending = deque()
        self._carry = None
        self._current = None
        self._closed = False
        self._start_epoch(0, None, 0)

    # ---------------------------------------------------------------- descriptions

    @property
    def provide_data(self):
        dtype = np.uint8 if self.source.augment.dtype == "uint8" else np.float32
        return [DataDesc(self.data_name, (self.batch_size,) + self.source.sample_shape, dtype,
                         layout="NCHW")]

    @property
    def provide_label(self):
        width = self.source.label_width
        shape = (self.batch_size,) if width == 1 else (self.batch_size, width)
        return [DataDesc(self.label_name, shape, np.float32, layout="NCHW")]

    @property
    def num_records(self):
        """Records in this iterator's part of the file."""
        return len(self.offsets)

    # ---------------------------------------------------------------- the books

    def _check_enough_records(self):
        n, bs = len(self.offsets), self.batch_size
        if n == 0:
            raise ValueError(f"ImageRecordIter: part {self.part_index} of {self.num_parts} of "
                             f"{self.source.path_imgrec!r} has no records")
        if self.round_batch and n % bs and bs - n % bs > n:
            raise ValueError(f"ImageRecordIter: round_batch needs the {n} records of this part "
                             f"to fill the last batch of {bs} (number of input images must be "
                             "bigger than the batch size); lower batch_size or set "
                             "round_batch=False")

    def _epoch_order(self, epoch):
        n = len(self.offsets)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.part_index, epoch, 1]).permutation(n)

    def _seeds(self, epoch):
        """One augmentation seed per record of the part, for `epoch`."""
        if not self.source.augment.is_random:
            return np.zeros(len(self.offsets), np.int64)
        key = [self.seed_aug, 0] if self.seed_aug is not None else \
            [self.seed, self.part_index, epoch, 2]
        return np.random.default_rng(key).integers(0, 2 ** 63 - 1, len(self.offsets))

    def _start_epoch(self, epoch, order, cursor):
        self._epoch = epoch
        self._order = self._epoch_order(epoch) if order is None else order
        self._epoch_seeds = self._seeds(epoch)
        self._cursor = cursor
        self._done = False

    def next_plan(self):
        """The next batch to make as a `BatchPlan`, or None at the end of the epoch."""
        n, bs = len(self.offsets), self.batch_size
        if self._done or self._cursor >= n:
            self._done = True
            return None
        take = self._order[self._cursor:self._cursor + bs]
        self._cursor += len(take)
        offsets, seeds = self.offsets[take], self._epoch_seeds[take]
        missing = bs - len(take)
        if missing == 0:
            return BatchPlan(offsets, seeds, 0, None)
        self._done = True
        if self.round_batch:
            # MXNet's overflow: read on into the next epoch, which then starts after these
            nxt = self._epoch_order(self._epoch + 1)
            fill = nxt[:missing]
            offsets = np.concatenate([offsets, self.offsets[fill]])
            seeds = np.concatenate([seeds, self._seeds(self._epoch + 1)[fill]])
            return BatchPlan(offsets, seeds, missing, (self._epoch + 1, nxt, missing))
        offsets = np.concatenate([offsets, np.full(missing, FILLER, np.int64)])
        seeds = np.concatenate([seeds, np.zeros(missing, np.int64)])
        return BatchPlan(offsets, seeds, missing, None)

    # ---------------------------------------------------------------- making batches

    def _submit(self, plan):
        spec = self.source.augment
        bs = self.batch_size
        data = np.empty((bs,) + spec.data_shape, spec.dtype)
        label = np.empty((bs, self.source.label_width), np.float32)
        ids = np.empty(bs, np.int64)
        bounds = np.linspace(0, bs, min(self.preprocess_threads, bs) + 1).astype(int)
        futures = [self._pool.submit(decode_records, self.source, plan.offsets[lo:hi],
                                     plan.seeds[lo:hi], (data[lo:hi], label[lo:hi], ids[lo:hi]))
                   for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
        return plan, (data, label, ids), futures

    def _fill(self):
        while len(self._pending) < self.prefetch_buffer:
            plan = self.next_plan()
            if plan is None:
                return
            self._pending.append(self._submit(plan))

    def _drop_pending(self):
        while self._pending:
            _, _, futures = self._pending.popleft()
            for f in futures:
                f.cancel()
        self._current = None

    def reset(self):
        """Start the next epoch (after a wrapped last batch: where the wrap stopped)."""
        self._check_open()
        self._drop_pending()
        if self._carry is not None:
            epoch, order, cursor = self._carry
            self._carry = None
            self._start_epoch(epoch, order, cursor)
        else:
            self._start_epoch(self._epoch + 1, None, 0)

    def next(self):
        self._check_open()
        self._fill()
        if not self._pending:
            raise StopIteration
        plan, (data, label, ids), futures = self._pending.popleft()
        for f in futures:
            f.result()
        self._fill()
        self._carry = plan.carry
        if self.source.label_width == 1:
            label = label.reshape(self.batch_size)
        self._current = DataBatch(data=[data.view(NDArray)], label=[label.view(NDArray)],
                                  pad=plan.pad, index=ids,
                                  provide_data=self.provide_data,
                                  provide_label=self.provide_label)
        return self._current

    def iter_next(self):
        try:
            self.next()
        except StopIteration:
            return False
        return True

    def getdata(self):
        return self._current.data

    def getlabel(self):
        return self._current.label

    def getpad(self):
        return self._current.pad

    def getindex(self):
        return self._current.index

    # ---------------------------------------------------------------- lifetime

    def _check_open(self):
        if self._closed:
            raise RuntimeError("ImageRecordIter is closed")

    def close(self):
        """Stop the decoding threads (idempotent)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._drop_pending()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"ImageRecordIter: {name} must be a positive int, received {value!r}")
    return int(value)


def _make_source(path_imgrec, path_imgidx, path_imglist, data_shape, label_width, dtype,
                 kwargs):
    for name, path in (("path_imgrec", path_imgrec), ("path_imgidx", path_imgidx),
                       ("path_imglist", path_imglist)):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"ImageRecordIter: {name} must be a path, received "
                            f"{type(path).__name__}")
        if name == "path_imgrec" and not path:
            raise ValueError("ImageRecordIter: path_imgrec is required (a .rec file)")
        if path and not os.path.isfile(path):
            raise FileNotFoundError(f"ImageRecordIter: {name} {os.fspath(path)!r} does not "
                                    "exist")
    if data_shape is None:
        raise ValueError("ImageRecordIter: data_shape is required, e.g. (3, 224, 224)")
    if isinstance(label_width, bool) or not isinstance(label_width, (int, np.integer)) \
            or label_width < 1:
        raise ValueError(f"ImageRecordIter: label_width must be a positive int, received "
                         f"{label_width!r}")
    aug, mean, std = {}, [0.0] * 4, [1.0] * 4
    for key, value in kwargs.items():
        if key in _AUG_NAMES:
            aug[key] = value
        elif key[:-1] in ("mean_", "std_") and key[-1] in "rgba":
            (mean if key.startswith("mean") else std)["rgba".index(key[-1])] = float(value)
        elif key in _UNSUPPORTED:
            if value != _UNSUPPORTED[key]:
                raise TypeError(f"ImageRecordIter: {key}={value!r} is not supported by raymod "
                                f"(supported augmentations: {', '.join(_AUG_NAMES)})")
        elif key not in _IGNORED:
            raise TypeError(f"ImageRecordIter got an unexpected argument {key!r}")
    if dtype not in (None, "float32", "uint8", np.float32, np.uint8):
        raise ValueError(f"ImageRecordIter: dtype must be None, 'float32' or 'uint8', "
                         f"received {dtype!r}")
    dtype = "uint8" if dtype in ("uint8", np.uint8) else "float32"
    try:
        spec = AugmentSpec(data_shape=data_shape, mean=tuple(mean), std=tuple(std), dtype=dtype,
                           **aug)
    except ValueError as err:
        raise ValueError(f"ImageRecordIter: {err}") from None
    return ImageRecordSource(os.fspath(path_imgrec), spec, int(label_width),
                             os.fspath(path_imglist) if path_imglist else "")
