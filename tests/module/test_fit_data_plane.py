"""fit hands in-memory batches to the workers as rows: the driver never gathers them.

On both placements the workers gather each batch from the iterator's arrays
straight into their bound inputs; the result equals that of batches sent as
arrays, exactly.
"""
import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch, DataIter, NDArrayIter
from raymod.io.batch_rows import GatherOnRead, raw_data

from .nets import CPU2, mlp


class _AsArrays(DataIter):
    """The same batches without their rows: the path of any other iterator."""

    def __init__(self, inner):
        super().__init__(inner.batch_size)
        self.inner = inner
        self.provide_data, self.provide_label = inner.provide_data, inner.provide_label

    def reset(self):
        self.inner.reset()

    def next(self):
        b = self.inner.next()
        return DataBatch(list(b.data), list(b.label), pad=b.pad)


def _fit(as_arrays, prefetch=False):
    rng = np.random.default_rng(0)
    x, y = rng.random((60, 5), dtype=np.float32), rng.integers(0, 3, 60).astype(np.float32)
    np.random.seed(3)                       # NDArrayIter's shuffle
    rm.random.seed(3)
    it = NDArrayIter(x, y, batch_size=16, shuffle=True, last_batch_handle="pad")
    if prefetch:
        it = rm.io.PrefetchingIter(it)
    seen = []
    mod = rm.mod.Module(mlp(), context=CPU2)
    mod.fit(_AsArrays(it) if as_arrays else it, num_epoch=2, kvstore="device",
            optimizer_params={"learning_rate": 0.5, "momentum": 0.9},
            initializer=rm.init.Xavier(),
            batch_end_callback=lambda param: seen.append(param.locals["data_batch"]))
    return mod, seen


@pytest.mark.parametrize("prefetch", [False, True])
def test_fit_gathers_batches_on_the_workers_exactly_as_arrays_would_be(prefetch):
    ref, _ = _fit(as_arrays=True)
    mod, seen = _fit(as_arrays=False, prefetch=prefetch)
    deferred = [raw_data(b) for b in seen if isinstance(raw_data(b), GatherOnRead)]
    assert len(deferred) == len(seen) == 8
    assert not any(d.gathered for d in deferred)        # never copied on the driver
    for name, value in ref.get_params()[0].items():
        np.testing.assert_array_equal(mod.get_params()[0][name].asnumpy(), value.asnumpy(),
                                      err_msg=name)
