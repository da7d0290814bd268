"""`CSVIter` (MXNet's `mx.io.CSVIter`): batches from CSV files of numbers.

Batches follow MXNet 1.9.1's BatchLoader exactly (checked batch by batch
against the wheel: tests/fixtures/mxnet/iterators.json, made by
make_iterator_fixtures.py):

- `round_batch=True` (the default): a short last batch is completed with
  rows from the start of the data and reports those as `pad`; the next
  epoch then does NOT restart: it continues after the rows the wrap used
  (4 rows, batch 3: [0 1 2] [3 0 1] pad 2; next epoch [2 3 0] pad 1; then
  [1 2 3]; then [0 1 2] again). A wrap that would need more rows than the
  data holds fails, as in MXNet.
- `round_batch=False`: a short last batch reports the missing rows as
  `pad`, and those slots keep what the previous batch put there (MXNet's
  buffer is reused), e.g. [3 1 2] pad 2 after [0 1 2]. Where no earlier
  batch filled a slot (fewer rows than batch_size) MXNet returns
  uninitialised memory; raymod repeats rows from the start of the data.
- without `label_csv` labels are zeros of shape (batch,); a label of one
  value per row comes out with shape (batch,), as in MXNet;
- `dtype` may be None (float32), 'float32', 'int32' or 'int64' (MXNet
  rejects the others).

Built on RowBatchIter: the files are read into memory at construction and
every batch is rows of those arrays (`batch_rows()`, also MXNet's
`getindex()`). Differences from MXNet: no prefetch thread, so `reset()` in
the middle of an epoch always rewinds (MXNet's answer there depends on how
far its prefetcher had read); `batch_size` must be at least 1; a label file
with MORE rows than the data is an error (MXNet ignores the extra rows);
MXNet ignores unknown keyword arguments, raymod rejects them.
"""
import numpy as np

from .csv_parse import read_csv
from .rows import RowBatchIter

_DTYPES = {None: np.float32, "float32": np.float32, "int32": np.int32, "int64": np.int64}
_CTX_CHOICES = ("cpu", "gpu")


def _shape(name, value):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        shape = tuple(int(d) for d in value)
    except (TypeError, ValueError):
        raise TypeError(f"CSVIter: {name} must be an int or a tuple of ints, received "
                        f"{value!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"CSVIter: {name} must hold positive dimensions, received {value!r}")
    return shape


def _dtype(dtype):
    key = dtype if dtype is None or isinstance(dtype, str) else np.dtype(dtype).name
    if key not in _DTYPES:
        raise TypeError(f"CSVIter: dtype {dtype!r} is not supported (MXNet's CSVIter reads "
                        f"None/'float32', 'int32' or 'int64')")
    return np.dtype(_DTYPES[key])


class CSVIter(RowBatchIter):
    """Iterate over CSV file(s) of numbers (keyword arguments only, as MXNet).

    Parameters
    ----------
    data_csv : str
        A CSV file, or a directory whose files are all read (in name order).
    data_shape : int or tuple of ints
        The shape of one example; each row holds prod(data_shape) values.
    label_csv : str, default 'NULL'
        Labels, one row per data row; 'NULL' (or None) gives zeros.
    label_shape : tuple of ints, default (1,)
    batch_size : int
    round_batch : bool, default True
        Complete a short last batch from the start of the data (see the
        module docstring for what the next epoch starts with).
    prefetch_buffer : int, default 4
        Accepted for MXNet compatibility (raymod loads everything at once).
    ctx : {'cpu', 'gpu'}, default 'gpu'
        Accepted for MXNet compatibility.
    dtype : {None, 'float32', 'int32', 'int64'}, default None (float32)
    data_name : str, default 'data'
    label_name : str, default 'softmax_label'
    """

    def __init__(self, *, data_csv, data_shape, label_csv="NULL", label_shape=(1,),
                 batch_size, round_batch=True, prefetch_buffer=4, ctx="gpu", dtype=None,
                 data_name="data", label_name="softmax_label"):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"CSVIter: batch_size must be a positive int, received "
                             f"{batch_size!r}")
        if isinstance(prefetch_buffer, bool) or not isinstance(prefetch_buffer, int) \
                or prefetch_buffer < 0:
            raise ValueError(f"CSVIter: prefetch_buffer must be a non-negative int, received "
                             f"{prefetch_buffer!r}")
        if ctx not in _CTX_CHOICES:
            raise ValueError(f"CSVIter: ctx must be one of {_CTX_CHOICES}, received {ctx!r}")
        data_shape, label_shape = _shape("data_shape", data_shape), _shape("label_shape",
                                                                           label_shape)
        dtype = _dtype(dtype)
        data = read_csv(data_csv, "data_csv", int(np.prod(data_shape)), dtype,
                        f"data_shape {data_shape}").reshape((-1,) + data_shape)
        label = self._read_label(label_csv, label_shape, dtype, data_csv, len(data))
        self.round_batch = bool(round_batch)
        batch_size = int(batch_size)
        if self.round_batch and len(data) < batch_size - len(data):
            raise ValueError(f"CSVIter: batch_size={batch_size} with round_batch=True needs "
                             f"at least {(batch_size + 1) // 2} rows, {data_csv!r} has "
                             f"{len(data)} (MXNet: number of input must be bigger than batch "
                             f"size)")
        super().__init__(batch_size, [(data_name, data)], [(label_name, label)])
        self.data_csv, self.label_csv = data_csv, label_csv
        self._cursor = 0      # the next row the reader returns
        self._overflow = 0    # rows a wrap-around read into the next epoch (MXNet's num_overflow_)
        self._slots = None    # the rows each batch slot holds (reused when not overwritten)

    @staticmethod
    def _read_label(label_csv, label_shape, dtype, data_csv, rows):
        if label_csv is None or label_csv == "NULL":
            return np.zeros((rows,), dtype=dtype)   # MXNet's dummy label: one 0 per row
        one_value = int(np.prod(label_shape)) == 1
        label = read_csv(label_csv, "label_csv", int(np.prod(label_shape)), dtype,
                         f"label_shape {label_shape}")
        if len(label) != rows:
            raise ValueError(f"CSVIter: {label_csv!r} has {len(label)} label rows but "
                             f"{data_csv!r} has {rows} data rows")
        # MXNet hands a (batch, 1, ...) label of one value per row back as (batch,)
        return label.reshape((rows,) if one_value else (rows,) + label_shape)

    def reset(self):
        """MXNet's BeforeFirst: rewind, unless the last batch wrapped into the next epoch."""
        if not self.round_batch or self._overflow == 0:
            self._cursor = 0
        else:
            self._overflow = 0
        self._rows = None

    def _advance(self):
        if self._overflow:
            return None          # the wrapped batch ended this epoch: wait for reset()
        n, size = self.num_data, self.batch_size
        take = np.arange(self._cursor, min(self._cursor + size, n), dtype=np.int64)
        self._cursor += len(take)
        if len(take) == size:
            rows, pad = take, 0
        elif len(take) == 0:
            return None
        elif self.round_batch:
            need = size - len(take)
            if need > n:
                raise ValueError(f"CSVIter: this epoch's last batch needs {need} rows from "
                                 f"the start of the data to reach batch_size={size}, there "
                                 f"are {n} (MXNet: number of input must be bigger than batch "
                                 f"size)")
            rows, pad = np.concatenate([take, np.arange(need, dtype=np.int64)]), need
            self._cursor = self._overflow = need
        else:
            pad = size - len(take)
            stale = (self._slots[len(take):] if self._slots is not None
                     else np.arange(pad, dtype=np.int64) % n)
            rows = np.concatenate([take, stale])
        self._slots = rows
        return rows, pad
