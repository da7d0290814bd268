"""`DataIter` (the iterator protocol Module trains on), `NDArrayIter`, `ResizeIter`.

`NDArrayIter` reproduces MXNet 1.x's exactly, quirks included (reference
10.3, Q16): inputs are sorted by name; numpy inputs become float32 (so does
everything once `shuffle=True` reshuffles); shuffling uses numpy's global
`np.random.shuffle`, so a seed gives MXNet's batch order; `'roll_over'`
reports the rolled-over part of the next epoch's first batch as `pad`.

One deviation: MXNet counts samples along axis 0 but slices along the
layout's batch axis; raymod uses the batch axis ('N' in `layout`) for both,
which is the same for every layout with 'N' first.

Without shuffling, batches hold views of the iterator's arrays (no copy);
a padded or rolled-over batch is a new array. Shuffling permutes a row order
instead of the data (MXNet copies the whole data set at every reset), and
each batch is gathered by its rows, when its data is first read: the same
batches, without the copies (a module whose workers gather the rows
themselves never reads them on the driver).
"""
import functools

import numpy as np

from ..ndarray import NDArray, array
from .batch_rows import BatchRows, GatherOnRead, RowSource, raw_data
from .desc import DataBatch, DataDesc

_LAST_BATCH_HANDLES = ("pad", "discard", "roll_over")


class DataIter:
    """Base class of data iterators.

    Subclasses implement `iter_next` and `getdata` (and `getlabel`,
    `getpad`, `getindex` where they have them) or override `next`; they
    expose `provide_data` and `provide_label` (lists of `DataDesc`).

    Parameters
    ----------
    batch_size : int, optional
    """

    def __init__(self, batch_size=0):
        self.batch_size = batch_size

    def __iter__(self):
        return self

    def reset(self):
        """Go back to the first batch."""

    def next(self):
        """The next `DataBatch`; raises `StopIteration` at the end of the data."""
        if self.iter_next():
            return DataBatch(data=self.getdata(), label=self.getlabel(),
                             pad=self.getpad(), index=self.getindex())
        raise StopIteration

    def __next__(self):
        return self.next()

    def iter_next(self):
        """Move to the next batch; return whether there was one."""
        raise NotImplementedError(f"{type(self).__name__} must implement iter_next() "
                                  "or next()")

    def getdata(self):
        """The data arrays of the current batch."""
        raise NotImplementedError(f"{type(self).__name__} must implement getdata() or next()")

    def getlabel(self):
        """The label arrays of the current batch (None: no labels)."""
        return None

    def getindex(self):
        """The example indices of the current batch (None: unknown)."""
        return None

    def getpad(self):
        """The number of padding examples at the end of the current batch."""
        return 0


def _init_data(data, allow_empty, default_name):
    """MXNet's `_init_data`: a sorted list of (name, NDArray)."""
    if data is None:
        if not allow_empty:
            raise ValueError("NDArrayIter: data must not be None")
        data = []
    if isinstance(data, np.ndarray) or hasattr(data, "__cuda_array_interface__"):
        data = [data]
    if isinstance(data, (list, tuple)):
        if not data and not allow_empty:
            raise ValueError("NDArrayIter: data must hold at least one array, received []")
        if len(data) == 1:
            data = {default_name: data[0]}
        else:
            data = {f"_{i}_{default_name}": d for i, d in enumerate(data)}
    if not isinstance(data, dict):
        raise TypeError("Input must be NDArray, numpy.ndarray, a list of them or dict with "
                        f"them as values; received {type(data).__name__}")
    out = {}
    for name, value in data.items():
        if isinstance(value, NDArray):
            out[name] = value
            continue
        if isinstance(value, np.ndarray) and value.dtype == np.float32:
            # Already what MXNet would convert to: read it in place instead of
            # holding a second copy of the data set (MXNet copies here).
            out[name] = value.view(NDArray)
            continue
        try:
            out[name] = array(value)  # numpy and lists become float32, as in MXNet
        except TypeError as err:
            raise TypeError(f"Invalid type {type(value).__name__} for {name!r}, should be "
                            f"NDArray or numpy.ndarray ({err})") from None
    return sorted(out.items())


class NDArrayIter(DataIter):
    """Iterate over in-memory arrays in batches.

    Parameters
    ----------
    data : array, list of arrays, or dict of str to array
        One array is named `data_name`; a list of k > 1 arrays is named
        `_0_<data_name>`, `_1_<data_name>`, ...; a dict keeps its keys.
    label : same forms as `data`, optional
    batch_size : int
    shuffle : bool
        Permute the samples at construction and at every `reset()`.
    last_batch_handle : {'pad', 'discard', 'roll_over'}
        'pad' fills the last batch from the start of the data; 'discard'
        drops it; 'roll_over' carries it into the next epoch.
    data_name, label_name : str
    layout : str
        The position of 'N' is the batch axis.

    Every batch is rows of the arrays given (`source_arrays()`): `batch_rows()`
    says which, along the batch axis. Shuffling permutes the row order, not the
    data (MXNet copies the whole data set at every `reset()`); the batches are
    the same.
    """

    def __init__(self, data, label=None, batch_size=1, shuffle=False,
                 last_batch_handle="pad", data_name="data", label_name="softmax_label",
                 layout="NCHW"):
        super().__init__(batch_size)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"NDArrayIter: batch_size must be a positive int, received "
                             f"{batch_size!r}")
        if last_batch_handle not in _LAST_BATCH_HANDLES:
            raise ValueError(f"NDArrayIter: last_batch_handle must be one of "
                             f"{_LAST_BATCH_HANDLES}, received {last_batch_handle!r}")
        if not isinstance(layout, str) or "N" not in layout:
            raise ValueError(f"NDArrayIter: layout must be a string with a batch axis 'N', "
                             f"received {layout!r}")
        self.layout = layout
        self._axis = layout.find("N")
        self._source = (_init_data(data, allow_empty=False, default_name=data_name),
                        _init_data(label, allow_empty=True, default_name=label_name))
        self.num_data = self._check_sizes()
        if last_batch_handle == "roll_over" and self.num_data < batch_size:
            raise ValueError(f"NDArrayIter: last_batch_handle='roll_over' needs at least "
                             f"batch_size={batch_size} samples, the data has {self.num_data}")
        self.idx = np.arange(self.num_data)
        self._order = None          # row order of this epoch; None: 0..n-1 (batches are views)
        self._permuted = None       # (data, label) in `_order`, made only if read
        self.shuffle = shuffle
        self.last_batch_handle = last_batch_handle
        self.batch_size = int(batch_size)
        self.cursor = -self.batch_size
        self._cache_rows = None     # the incomplete last batch's rows ('roll_over')
        self._rows_at = (None, None)
        self._rows_source = None
        self.reset()

    def _check_sizes(self):
        sizes = {}
        for name, arr in self._source[0] + self._source[1]:
            if arr.ndim <= self._axis:
                raise ValueError(f"NDArrayIter: {name!r} has shape {arr.shape}, which has no "
                                 f"batch axis {self._axis} (layout {self.layout!r})")
            sizes[name] = arr.shape[self._axis]
        if len(set(sizes.values())) > 1:
            raise ValueError(f"NDArrayIter: all inputs must have the same number of samples "
                             f"along the batch axis, received {sizes}")
        return next(iter(sizes.values()))

    # ------------------------------------------------------------------ the arrays

    @property
    def data(self):
        """[(name, array)] of the data in this epoch's order (MXNet's attribute)."""
        return self._in_order()[0]

    @property
    def label(self):
        """[(name, array)] of the labels in this epoch's order (MXNet's attribute)."""
        return self._in_order()[1]

    def _in_order(self):
        if self._order is None:
            return self._source
        if self._permuted is None:
            self._permuted = tuple([(k, self._take(v, self._order)) for k, v in source]
                                   for source in self._source)
        return self._permuted

    def source_arrays(self):
        """The arrays every batch is taken from: `(data, label)`, lists of (name, array).

        They never change; a batch is ``np.take(array, batch_rows(), axis)`` of
        each, with `axis` the layout's batch axis.
        """
        return list(self._source[0]), list(self._source[1])

    def batch_rows(self):
        """The current batch's row numbers into `source_arrays()` (int64, batch_size long).

        Pad and roll-over rows included; an incomplete last batch ('discard',
        'roll_over') is shorter.
        """
        return self._batch_rows().copy()

    def _batch_rows(self):
        # worked out once per batch: a roll-over batch consumes the cached rows
        if self._rows_at[0] != self.cursor:
            self._rows_at = (self.cursor, self._current_rows())
        return self._rows_at[1]

    def _descs(self, source):
        return [DataDesc(name, arr.shape[:self._axis] + (self.batch_size,)
                         + arr.shape[self._axis + 1:], arr.dtype.type, layout=self.layout)
                for name, arr in source]

    @property
    def provide_data(self):
        """`DataDesc` of each data input, with the batch axis set to `batch_size`."""
        return self._descs(self._source[0])

    @property
    def provide_label(self):
        """`DataDesc` of each label input (`[]` without labels)."""
        return self._descs(self._source[1])

    # ------------------------------------------------------------------ iteration

    def hard_reset(self):
        """Restart from the first sample, dropping any rolled-over batch."""
        if self.shuffle:
            self._shuffle_data()
        self.cursor = -self.batch_size
        self._cache_rows = None
        self._rows_at = (None, None)

    def reset(self):
        """Start the next epoch (reshuffling when `shuffle`)."""
        if self.shuffle:
            self._shuffle_data()
        if self.last_batch_handle == "roll_over" and \
                self.num_data - self.batch_size < self.cursor < self.num_data:
            # a partial batch was cached: the next epoch starts that many samples early
            self.cursor = self.cursor - self.num_data - self.batch_size
        else:
            self.cursor = -self.batch_size
        self._rows_at = (None, None)

    def iter_next(self):
        self.cursor += self.batch_size
        return self.cursor < self.num_data

    def next(self):
        if not self.iter_next():
            raise StopIteration
        if not self._is_slice() and len(self._batch_rows()) != self.batch_size:
            # an incomplete last batch ('discard', 'roll_over'): keep it for the next epoch
            self._cache_rows = self._batch_rows()
            raise StopIteration
        batch = DataBatch(data=self._batch_data(), label=self.getlabel(), pad=self.getpad(),
                          index=None)
        batch.rows = BatchRows(self._row_source(), self._current_batch_rows(), batch._data,
                               batch.label)
        return batch

    def _batch_data(self):
        """The batch's data: views of a run of rows, or a gather left until read."""
        if self._is_slice():
            return self.getdata()
        rows = self._batch_rows().copy()      # its own, as a reshuffle may come first
        axis = self._axis
        shapes = [arr.shape[:axis] + (len(rows),) + arr.shape[axis + 1:]
                  for _, arr in self._source[0]]
        return GatherOnRead(functools.partial(self._take, rows=rows),
                            [arr for _, arr in self._source[0]], shapes)

    def _row_source(self):
        if self._rows_source is None:     # made on first use: the arrays never change
            self._rows_source = RowSource(*self._source, axis=self._axis)
        return self._rows_source

    def _current_batch_rows(self):
        if self._is_slice():
            return np.arange(self.cursor, self.cursor + self.batch_size, dtype=np.int64)
        return self._batch_rows()

    def getdata(self):
        return self._batch(self._source[0])

    def getlabel(self):
        return self._batch(self._source[1])

    def getpad(self):
        if self.last_batch_handle == "pad" and self.cursor + self.batch_size > self.num_data:
            return self.cursor + self.batch_size - self.num_data
        if self.last_batch_handle == "roll_over" and -self.batch_size < self.cursor < 0:
            return -self.cursor
        return 0

    # ------------------------------------------------------------------ internals

    def _is_slice(self):
        """Whether the current batch is a run of whole rows in source order (views)."""
        return (self._order is None and 0 <= self.cursor
                and self.cursor + self.batch_size <= self.num_data)

    def _batch(self, source):
        if self._is_slice():
            index = [slice(None)] * (self._axis + 1)
            index[self._axis] = slice(self.cursor, self.cursor + self.batch_size)
            return [arr[tuple(index)] for _, arr in source]
        rows = self._batch_rows()
        return [self._take(arr, rows) for _, arr in source]

    def _take(self, arr, rows):
        return np.take(arr, rows, axis=self._axis)

    def _rows(self, start, end):
        """Rows `[start:end]` of this epoch's order (Python slice semantics)."""
        if self._order is None:
            span = range(self.num_data)[start:end]
            return np.arange(span.start, span.stop, dtype=np.int64)
        return self._order[start:end]

    def _current_rows(self):
        """MXNet's batch at `cursor`, as rows: padding wraps to the start (tiling when
        the pad exceeds the data), a roll-over batch is the cached tail + the head."""
        if self.cursor >= self.num_data:
            raise RuntimeError("NDArrayIter needs reset(): the epoch has ended")
        if self.last_batch_handle == "roll_over" and -self.batch_size < self.cursor < 0:
            if self._cache_rows is None:
                raise RuntimeError("NDArrayIter: the next epoch should have cached data")
            cache, self._cache_rows = self._cache_rows, None
            return np.concatenate([cache, self._rows(0, self.cursor + self.batch_size)])
        if self.cursor < 0:
            raise RuntimeError("NDArrayIter has no current batch: call next() (or "
                               "iter_next()) first")
        end = self.cursor + self.batch_size
        if self.last_batch_handle == "pad" and end > self.num_data:
            pad = end - self.num_data
            parts = [self._rows(self.cursor, self.num_data)]
            parts += [self._rows(0, self.num_data)] * (pad // self.num_data)
            parts.append(self._rows(0, pad % self.num_data))
            return np.concatenate(parts)
        return self._rows(self.cursor, min(end, self.num_data))

    def _shuffle_data(self):
        # MXNet's order: permute idx in place, then index the (already permuted) data by
        # it; the data stays put and the composed row order is kept instead.
        np.random.shuffle(self.idx)
        self._order = (self.idx.astype(np.int64) if self._order is None
                       else self._order[self.idx])
        self._permuted = None
        self._rows_at = (None, None)
        # MXNet re-creates the arrays from numpy, as float32, when it shuffles
        source = tuple([(k, _as_float32(v)) for k, v in part] for part in self._source)
        if any(a is not b for part, old in zip(source, self._source)
               for (_, a), (_, b) in zip(part, old)):
            self._source, self._rows_source = source, None      # rows index the new arrays


def _as_float32(arr):
    if arr.dtype == np.float32:
        return arr
    return array(arr, arr.context, dtype=np.float32)


class BatchWrapperIter(DataIter):
    """An iterator over another's batches: the getters read `self.current_batch`."""

    def getdata(self):
        return self.current_batch.data

    def getlabel(self):
        return self.current_batch.label

    def getindex(self):
        return self.current_batch.index

    def getpad(self):
        return self.current_batch.pad


class ResizeIter(BatchWrapperIter):
    """Make `data_iter` yield exactly `size` batches per epoch, restarting it when it runs out.

    Parameters
    ----------
    data_iter : DataIter
    size : int
        Batches per epoch.
    reset_internal : bool
        Whether `reset()` also resets `data_iter` (otherwise the next epoch
        continues where this one stopped).

    Batches keep `bucket_key`, `provide_data` and `provide_label` of the
    wrapped iterator's batches (MXNet's ResizeIter drops them, which breaks
    bucketing).
    """

    def __init__(self, data_iter, size, reset_internal=True):
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
            raise ValueError(f"ResizeIter: size must be a non-negative int, received {size!r}")
        self.data_iter = data_iter
        self.size = int(size)
        self.reset_internal = reset_internal
        self.cur = 0
        self.current_batch = None
        self.provide_data = data_iter.provide_data
        self.provide_label = data_iter.provide_label
        self.batch_size = data_iter.batch_size
        if hasattr(data_iter, "default_bucket_key"):
            self.default_bucket_key = data_iter.default_bucket_key

    def reset(self):
        self.cur = 0
        if self.reset_internal:
            self.data_iter.reset()

    def iter_next(self):
        if self.cur == self.size:
            return False
        try:
            self.current_batch = self.data_iter.next()
        except StopIteration:
            self.data_iter.reset()
            self.current_batch = self.data_iter.next()
        self.cur += 1
        return True

    def next(self):
        if not self.iter_next():
            raise StopIteration
        batch = self.current_batch
        out = DataBatch(data=raw_data(batch), label=batch.label, pad=batch.pad, index=batch.index,
                        bucket_key=getattr(batch, "bucket_key", None),
                        provide_data=getattr(batch, "provide_data", None),
                        provide_label=getattr(batch, "provide_label", None))
        rows = getattr(batch, "rows", None)
        if rows is not None and rows.describes(batch):
            out.rows = rows.__class__(rows.source, rows.rows, raw_data(out), out.label)
        return out

