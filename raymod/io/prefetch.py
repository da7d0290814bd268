"""`PrefetchingIter`: read the next batch of one or more iterators in background threads."""
import threading

from .batch_rows import BatchRows, GatherOnRead, raw_data
from .desc import DataBatch, DataDesc
from .iter import BatchWrapperIter

_JOIN_TIMEOUT_S = 10.0  # a child stuck inside next() is abandoned (the thread is a daemon)


class _Prefetcher:
    """One background thread that keeps the next batch of one iterator ready.

    The thread holds only this object, never the PrefetchingIter, so an
    abandoned PrefetchingIter is garbage-collected and its `__del__` stops
    the threads.
    """

    def __init__(self, data_iter, index):
        self.iter = data_iter
        self.ready = threading.Event()   # set when `batch`/`error` hold the next result
        self.taken = threading.Event()   # set when the thread may fetch again
        self.taken.set()
        self.running = True
        self.batch = None
        self.error = None
        self.thread = threading.Thread(target=self._run, name=f"PrefetchingIter-{index}",
                                       daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            self.taken.wait()
            if not self.running:
                return
            try:
                self.batch, self.error = self.iter.next(), None
            except StopIteration:
                self.batch, self.error = None, None
            except BaseException as err:  # handed to the consumer, raised in next()
                self.batch, self.error = None, err
            self.taken.clear()
            self.ready.set()

    def request(self):
        self.ready.clear()
        self.taken.set()

    def stop(self):
        self.running = False
        self.taken.set()
        if self.thread is not threading.current_thread():
            self.thread.join(_JOIN_TIMEOUT_S)


class PrefetchingIter(BatchWrapperIter):
    """Prefetch batches of `iters` in background threads; combine them into one batch.

    Each batch holds the data (and labels) of every iterator's batch, in the
    order of `iters`. An exception raised by an iterator in its thread is
    raised again by `next()` (and by every later call until `reset()`).
    Call `close()` (or use `with`) to stop the threads; dropping the last
    reference does it too.

    Parameters
    ----------
    iters : DataIter or list of DataIter
    rename_data : list of dict, optional
        One `{old_name: new_name}` map per iterator for `provide_data`;
        names not in a map are kept.
    rename_label : list of dict, optional
        The same for `provide_label`.
    """

    def __init__(self, iters, rename_data=None, rename_label=None):
        super().__init__()
        if not isinstance(iters, list):
            iters = [iters]
        if not iters:
            raise ValueError("PrefetchingIter needs at least one iterator, received []")
        for name, renames in (("rename_data", rename_data), ("rename_label", rename_label)):
            if renames is not None and len(renames) != len(iters):
                raise ValueError(f"PrefetchingIter: {name} needs one dict per iterator "
                                 f"({len(iters)}), received {len(renames)}")
        self.n_iter = len(iters)
        self.iters = iters
        self.rename_data = rename_data
        self.rename_label = rename_label
        self.batch_size = self.provide_data[0][1][0]
        self.current_batch = None
        self._workers = []
        self._closed = False
        self._workers = [_Prefetcher(it, i) for i, it in enumerate(iters)]

    @staticmethod
    def _renamed(descs_per_iter, renames):
        out = []
        for i, descs in enumerate(descs_per_iter):
            for desc in descs:
                if renames is None:
                    out.append(desc)
                    continue
                if not isinstance(desc, DataDesc):
                    desc = DataDesc(*desc)
                out.append(DataDesc(renames[i].get(desc.name, desc.name), desc.shape,
                                    desc.dtype, desc.layout))
        return out

    @property
    def provide_data(self):
        return self._renamed([it.provide_data for it in self.iters], self.rename_data)

    @property
    def provide_label(self):
        return self._renamed([it.provide_label for it in self.iters], self.rename_label)

    def _check_open(self):
        if self._closed:
            raise RuntimeError("PrefetchingIter is closed")

    def reset(self):
        self._check_open()
        for w in self._workers:
            w.ready.wait()
        for it in self.iters:
            it.reset()
        for w in self._workers:
            w.request()

    def iter_next(self):
        self._check_open()
        for w in self._workers:
            w.ready.wait()
        for w in self._workers:
            if w.error is not None:
                raise w.error
        batches = [w.batch for w in self._workers]
        if batches[0] is None:
            if any(b is not None for b in batches):
                raise ValueError("PrefetchingIter: Number of entry mismatches between "
                                 "iterators: some ended before others")
            return False
        if any(b is None or b.pad != batches[0].pad for b in batches):
            raise ValueError("PrefetchingIter: Number of entry mismatches between iterators: "
                             f"pads {[None if b is None else b.pad for b in batches]}")
        self.current_batch = self._combine(batches)
        for w in self._workers:
            w.request()
        return True

    def _combine(self, batches):
        first = batches[0]
        single = len(batches) == 1
        held = raw_data(first)
        # One iterator's batch keeps its rows (and a data gather not yet done), so
        # the workers can still gather it themselves (raymod.io.batch_rows).
        data = held if single and isinstance(held, GatherOnRead) else \
            sum([list(b.data) for b in batches], [])
        batch = DataBatch(data, sum([list(b.label or []) for b in batches], []),
                          first.pad, first.index,
                          bucket_key=getattr(first, "bucket_key", None),
                          provide_data=self.provide_data, provide_label=self.provide_label)
        rows = getattr(first, "rows", None)
        if single and rows is not None and rows.describes(first):
            batch.rows = BatchRows(rows.source, rows.rows, raw_data(batch), batch.label)
        return batch

    def next(self):
        if self.iter_next():
            return self.current_batch
        raise StopIteration


    def close(self):
        """Stop the background threads (idempotent)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        for w in self._workers:
            w.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
