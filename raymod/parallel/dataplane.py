"""Data that lives with the workers: in-memory batches sent as row numbers.

A batch from NDArrayIter, MNISTIter or CSVIter carries `rows` (its row
numbers into arrays the iterator holds, raymod.io.batch_rows). On Ray
workers the group ships those arrays to the object store once (each worker
reads them zero-copy) and then sends each device only its share of the row
numbers; the worker gathers the batch straight into its bound input arrays.
The batch is the same row for row (padding, roll-over and shuffling are the
iterator's, worked out on the driver as before). Only batches the module
loops mark `unchanged` go this way; any other batch is sent as arrays.

In-process workers hold the iterator's arrays themselves and gather each
batch straight into their inputs: the batch is copied once, not gathered on
the driver and copied again.
"""
from collections import OrderedDict

_MAX_SOURCES = 4     # sources kept on the workers (train + eval iterators, and some)


class RowsInput:
    """One device's inputs of a batch: rows of a source held by the worker.

    names: [(input name, 'data' or 'label', index into the source's list)].
    """

    __slots__ = ("token", "rows", "names")

    def __init__(self, token, rows, names):
        self.token = token
        self.rows = rows
        self.names = names

    @property
    def nbytes(self):
        return self.rows.nbytes

    def __bool__(self):
        return True

    def gather(self, sources, arrays, xp):
        """Copy the rows into `arrays` ({name: bound input array})."""
        import numpy as np
        source = sources[self.token]
        for name, which, index in self.names:
            src, dst = source[which][index], arrays[name]
            if xp is np and _takes_into(src, dst, len(self.rows)):
                # one pass, no temporary ('clip' does not buffer `out` as 'raise' does;
                # the rows are the iterator's own order, all within the source)
                np.take(src, self.rows, axis=0, out=dst, mode="clip")
            else:
                values = np.take(src, self.rows, axis=0)
                dst[...] = values if xp is np else xp.asarray(values)


def _takes_into(src, dst, count):
    import numpy as np
    return (isinstance(dst, np.ndarray) and dst.dtype == src.dtype and dst.flags.c_contiguous
            and dst.shape == (count,) + src.shape[1:])


class DataPlane:
    """Which row sources a worker group holds, and how a batch becomes RowsInputs.

    `put(value)` makes the handle every worker reads a source from (an
    ObjectRef on Ray; the arrays themselves in-process, where the workers
    gather straight from the iterator's arrays into their inputs);
    `submit(method, *args)` calls every worker in order with the batches.
    """

    def __init__(self, put, submit):
        self._put = put
        self._submit = submit
        self._held = OrderedDict()     # token -> source, oldest first

    def device_inputs(self, group, batch):
        """Per-device RowsInputs for `batch`, or None when it must go as arrays."""
        rows = getattr(batch, "rows", None)
        if rows is None or not rows.unchanged or isinstance(batch, list) \
                or not rows.describes(batch):
            return None
        source = rows.source
        names = self._input_names(group, batch, source)
        if names is None:
            return None
        self._hold(source)
        return [RowsInput(source.token, rows.rows[sl], names) for sl in group.slices]

    @staticmethod
    def _input_names(group, batch, source):
        """Which source array feeds each bound input (MXNet's positional rule), or None
        when the plane cannot reproduce the batch (another batch axis, missing arrays)."""
        if source.axis != 0 or any(axis != 0 for axis in group.data_layouts):
            return None
        names = [(n, "data", i) for i, n in enumerate(group.data_names)]
        if group.label_shapes and getattr(batch, "label", None):
            if any(axis != 0 for axis in group.label_layouts):
                return None
            names += [(n, "label", i) for i, n in enumerate(group.label_names)]
        counts = {"data": len(source.data), "label": len(source.label)}
        if any(index >= counts[which] for _, which, index in names):
            return None
        return names

    def _hold(self, source):
        if source.token in self._held:
            self._held.move_to_end(source.token)
            return
        self._submit("hold_rows", source.token,
                     self._put({"data": source.data, "label": source.label}))
        self._held[source.token] = source
        while len(self._held) > _MAX_SOURCES:
            token, _ = self._held.popitem(last=False)
            self._submit("drop_rows", token)
