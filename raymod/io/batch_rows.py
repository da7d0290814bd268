"""Where a batch came from: rows of arrays an iterator holds in memory.

NDArrayIter, MNISTIter and CSVIter (and ResizeIter over them) make every
batch by taking rows of arrays they hold and never change. They attach a
`BatchRows` to each batch: the `RowSource` (those arrays, made once per
iterator) and the batch's row numbers. A data plane can then ship the
arrays to where the batches are used once, and only the row numbers with
each batch: the batch is the same, row for row, padding and roll-over
included. Nothing here knows who uses it (io never imports the parallel
layer); a batch without `rows` is simply sent as arrays.

Those iterators also leave a batch's data arrays ungathered until someone
reads `batch.data` (`GatherOnRead`): when the rows go to the workers in
place of the arrays, the driver never copies the batch at all.
"""
import itertools

import numpy as np

_tokens = itertools.count()


class RowSource:
    """The arrays an iterator's batches are rows of (along `axis`), with a unique token.

    Parameters
    ----------
    data, label : list of (str, numpy.ndarray)
    axis : int
        The batch axis of every array.
    """

    def __init__(self, data, label, axis=0):
        self.data = [np.asarray(a) for _, a in data]
        self.label = [np.asarray(a) for _, a in label]
        self.axis = axis
        self.token = f"rows{next(_tokens)}"

    @property
    def nbytes(self):
        return sum(a.nbytes for a in self.data + self.label)


class BatchRows:
    """A batch as rows: `source.data[i][rows]` is its i-th data array (along source.axis).

    `unchanged` is set by the loops of Module and BucketingModule (fit,
    score, predict), which hand a batch from the iterator straight to their
    executor groups: only then is it certain that nobody wrote into the
    batch's arrays, so only then are rows used in place of them (and only
    while the batch still holds the lists of arrays it was made with).
    """

    __slots__ = ("source", "rows", "unchanged", "_lists")

    def __init__(self, source, rows, data, label):
        self.source = source
        self.rows = np.array(rows, dtype=np.int64)     # its own: an order may be reshuffled
        self.unchanged = False
        self._lists = (data, label)

    def describes(self, batch):
        """Whether `batch` still holds the very arrays these rows were taken for (a
        copy of the batch given other data, as a SequentialModule makes, does not).
        Asking gathers nothing."""
        return raw_data(batch) is self._lists[0] and batch.label is self._lists[1]


class GatherOnRead:
    """A batch's list of data arrays, gathered only when first read.

    `take(array)` makes one batch array from one source array (the
    iterator's own gather, so the arrays are exactly those it would have
    made); `shapes` are theirs, known without gathering. `DataBatch.data`
    returns `arrays()`: one list, made once.
    """

    __slots__ = ("shapes", "_take", "_sources", "_list")

    def __init__(self, take, sources, shapes):
        self.shapes = [tuple(s) for s in shapes]
        self._take = take
        self._sources = list(sources)
        self._list = None

    @property
    def gathered(self):
        """Whether the arrays were made (someone read the batch's data)."""
        return self._list is not None

    def arrays(self):
        if self._list is None:
            self._list = [self._take(a) for a in self._sources]
            self._take = self._sources = None       # the batch no longer pins them
        return self._list


def raw_data(batch):
    """What `batch` holds as its data: a list, or a `GatherOnRead` not yet read."""
    held = getattr(batch, "_data", None)
    return held if isinstance(held, GatherOnRead) else batch.data


def data_shapes(batch):
    """The shapes of `batch`'s data arrays, without gathering arrays not yet read."""
    held = raw_data(batch)
    if isinstance(held, GatherOnRead):
        return list(held.shapes)
    return [tuple(a.shape) for a in held]
