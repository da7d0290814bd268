"""`RowBatchIter`: an iterator whose every batch is rows of arrays it holds in memory.

MNISTIter and CSVIter load their whole file(s) into numpy arrays when they
are made (examples along axis 0) and never change them afterwards. A batch
is then `array[rows]` for each array, where `rows` (`batch_rows()`) is the
batch's row numbers into those arrays: padding, a round-robin wrap-around,
or a slot MXNet leaves holding the previous batch's example are all rows too.
So shipping `source_arrays()` to a worker once and `batch_rows()` per batch
reproduces every batch exactly, which is what a data plane needs.
"""
import functools

import numpy as np

from ..ndarray import NDArray
from .batch_rows import BatchRows, GatherOnRead, RowSource
from .desc import DataBatch, DataDesc
from .iter import DataIter


class RowBatchIter(DataIter):
    """Batches that are rows of in-memory arrays (see the module docstring).

    Subclasses fill the arrays and implement `_advance()`, which returns the
    next batch's `(rows, pad)` or None at the end of the epoch, and `reset()`.

    Parameters
    ----------
    batch_size : int
    data : list of (str, numpy.ndarray)
    label : list of (str, numpy.ndarray)
    """

    def __init__(self, batch_size, data, label):
        super().__init__(batch_size)
        self._data = list(data)
        self._label = list(label)
        self._rows = None
        self._pad = 0
        self._rows_source = None

    # ------------------------------------------------------------------ the row view

    def source_arrays(self):
        """The arrays every batch is taken from: `(data, label)`, lists of (name, array)."""
        return list(self._data), list(self._label)

    def batch_rows(self):
        """The current batch's row numbers into `source_arrays()` (int64, length batch_size)."""
        self._check_current()
        return self._rows.copy()

    @property
    def num_data(self):
        """The number of examples (rows) held."""
        return len(self._data[0][1])

    # ------------------------------------------------------------------ DataIter

    @property
    def provide_data(self):
        """`DataDesc` of each data array, batch axis first."""
        return self._descs(self._data)

    @property
    def provide_label(self):
        """`DataDesc` of each label array, batch axis first."""
        return self._descs(self._label)

    def _descs(self, source):
        return [DataDesc(name, (self.batch_size,) + arr.shape[1:], arr.dtype.type)
                for name, arr in source]

    def iter_next(self):
        step = self._advance()
        if step is None:
            self._rows = None
            return False
        rows, self._pad = step
        self._rows = np.asarray(rows, dtype=np.int64)
        return True

    def next(self):
        if not self.iter_next():
            raise StopIteration
        # The data is gathered when first read: a module whose workers gather the
        # rows themselves never reads it here.
        rows = self._rows.copy()          # its own: the order may be reshuffled in place
        data = GatherOnRead(functools.partial(_take_rows, rows=rows),
                            [arr for _, arr in self._data],
                            [(len(rows),) + arr.shape[1:] for _, arr in self._data])
        batch = DataBatch(data=data, label=self.getlabel(), pad=self.getpad(),
                          index=self.getindex())
        if self._rows_source is None:     # made on first use: the arrays never change
            self._rows_source = RowSource(self._data, self._label)
        batch.rows = BatchRows(self._rows_source, rows, data, batch.label)
        return batch

    def getdata(self):
        self._check_current()
        return [self._take(arr) for _, arr in self._data]

    def getlabel(self):
        self._check_current()
        return [self._take(arr) for _, arr in self._label]

    def getpad(self):
        self._check_current()
        return self._pad

    def getindex(self):
        """The current batch's row numbers, as MXNet's C++ iterators report them (uint64)."""
        self._check_current()
        return self._rows.astype(np.uint64)

    def _take(self, arr):
        return _take_rows(arr, self._rows)

    def _check_current(self):
        if self._rows is None:
            raise RuntimeError(f"{type(self).__name__}: no current batch; call next() (or "
                               f"iter_next()) first, and reset() after the end of an epoch")

    def _advance(self):
        raise NotImplementedError


def _take_rows(arr, rows):
    return np.take(arr, rows, axis=0).view(NDArray)
