"""raymod.io: DataDesc, DataBatch, DataIter, NDArrayIter, ResizeIter, PrefetchingIter."""
import gc
import pickle
import threading
import time
import weakref

import numpy as np
import pytest

import raymod.ndarray as nd
from raymod.io import (DataBatch, DataDesc, DataIter, NDArrayIter, PrefetchingIter,
                       ResizeIter)


def _epoch(it):
    """[(data[0] as list, label[0] as list or None, pad)] for one pass."""
    return [(b.data[0].tolist(), b.label[0].tolist() if b.label else None, b.pad) for b in it]


# ---------------------------------------------------------------------- DataDesc / DataBatch

def test_datadesc_is_a_name_shape_tuple():
    desc = DataDesc("data", (10, 3), dtype=np.int32, layout="NC")
    name, shape = desc
    assert (name, shape) == ("data", (10, 3))
    assert desc == ("data", (10, 3)) and desc == DataDesc("data", (10, 3))  # dtype ignored
    assert desc.dtype == np.int32 and desc.layout == "NC"
    assert DataDesc("x", (1,)).dtype is np.float32 and DataDesc("x", (1,)).layout == "NCHW"
    assert repr(desc) == "DataDesc[data,(10, 3),<class 'numpy.int32'>,NC]"
    back = pickle.loads(pickle.dumps(desc))
    assert back == desc and back.dtype == np.int32 and back.layout == "NC"


@pytest.mark.parametrize("layout,axis", [(None, 0), ("NCHW", 0), ("NTC", 0), ("TNC", 1),
                                         ("TN", 1), ("N", 0), ("CHW", -1)])
def test_get_batch_axis(layout, axis):
    assert DataDesc.get_batch_axis(layout) == axis


def test_get_list():
    descs = DataDesc.get_list([("a", (1, 2)), ("b", (3,))], [("a", "int32"), ("b", "float16")])
    assert descs == [("a", (1, 2)), ("b", (3,))]
    assert [d.dtype for d in descs] == ["int32", "float16"]
    assert DataDesc.get_list([("a", (1,))], None)[0].dtype is np.float32
    with pytest.raises(ValueError, match=r"no dtype given for \['b'\]"):
        DataDesc.get_list([("a", (1,)), ("b", (2,))], [("a", "int32")])


def test_databatch():
    batch = DataBatch([nd.zeros((2, 3))], [nd.zeros(2)], pad=1, index=np.array([4, 5]),
                      bucket_key=7, provide_data=[DataDesc("data", (2, 3))])
    assert batch.pad == 1 and batch.bucket_key == 7 and batch.provide_label is None
    assert str(batch) == "DataBatch: data shapes: [(2, 3)] label shapes: [(2,)]"
    assert str(DataBatch([nd.zeros(1)])) == "DataBatch: data shapes: [(1,)] label shapes: None"
    with pytest.raises(TypeError, match="Data must be list of NDArrays"):
        DataBatch(nd.zeros(2))
    with pytest.raises(TypeError, match="Label must be list of NDArrays"):
        DataBatch([nd.zeros(2)], label=nd.zeros(2))


# ---------------------------------------------------------------------- DataIter

class _CountIter(DataIter):
    def __init__(self, n):
        super().__init__(batch_size=1)
        self.n, self.i = n, 0

    def reset(self):
        self.i = 0

    def iter_next(self):
        self.i += 1
        return self.i <= self.n

    def getdata(self):
        return [nd.array([self.i])]


def test_dataiter_protocol():
    it = _CountIter(3)
    assert iter(it) is it
    batches = list(it)
    assert [b.data[0].tolist() for b in batches] == [[1.0], [2.0], [3.0]]
    assert batches[0].label is None and batches[0].pad == 0 and batches[0].index is None
    with pytest.raises(StopIteration):
        it.next()
    it.reset()
    assert next(it).data[0].tolist() == [1.0]
    with pytest.raises(NotImplementedError, match="must implement iter_next"):
        DataIter().next()


# ---------------------------------------------------------------------- NDArrayIter

def test_pad_wraps_to_the_start():
    it = NDArrayIter(np.arange(10), np.arange(10) * 10, batch_size=4)
    assert _epoch(it) == [([0, 1, 2, 3], [0, 10, 20, 30], 0),
                          ([4, 5, 6, 7], [40, 50, 60, 70], 0),
                          ([8, 9, 0, 1], [80, 90, 0, 10], 2)]
    it.reset()
    assert len(_epoch(it)) == 3


def test_pad_tiles_when_batch_exceeds_data():
    it = NDArrayIter(np.arange(3), batch_size=8)
    assert _epoch(it) == [([0, 1, 2, 0, 1, 2, 0, 1], None, 5)]


def test_discard_drops_the_partial_batch():
    it = NDArrayIter(np.arange(10), batch_size=3, last_batch_handle="discard")
    assert [d for d, _, _ in _epoch(it)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    it.reset()
    assert len(_epoch(it)) == 3


def test_roll_over_matches_mxnet():
    # mxnet 1.9.1 (`make_fixtures.py iter-values`): epoch 2 reports pad=2 (quirk Q16)
    it = NDArrayIter(np.arange(10), np.arange(10), batch_size=4, last_batch_handle="roll_over")
    epochs = []
    for _ in range(3):
        epochs.append([(d, pad) for d, _, pad in _epoch(it)])
        it.reset()
    assert epochs == [[([0, 1, 2, 3], 0), ([4, 5, 6, 7], 0)],
                      [([8, 9, 0, 1], 2), ([2, 3, 4, 5], 0), ([6, 7, 8, 9], 0)],
                      [([0, 1, 2, 3], 0), ([4, 5, 6, 7], 0)]]


def test_roll_over_labels_follow_data_and_hard_reset_drops_cache():
    it = NDArrayIter(np.arange(7), np.arange(7) + 100, batch_size=3,
                     last_batch_handle="roll_over")
    _epoch(it)
    it.reset()
    first = next(it)
    assert first.data[0].tolist() == [6, 0, 1] and first.label[0].tolist() == [106, 100, 101]
    it = NDArrayIter(np.arange(10), batch_size=4, last_batch_handle="roll_over")
    _epoch(it)
    it.hard_reset()
    assert [d for d, _, _ in _epoch(it)] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_shuffle_order_matches_mxnet_for_the_same_seed():
    # recorded from mxnet 1.9.1: `make_fixtures.py iter-values` (np.random.seed(7))
    np.random.seed(7)
    it = NDArrayIter(np.arange(10, dtype="float32").reshape(10, 1), np.arange(10),
                     batch_size=4, shuffle=True)
    epoch0 = [([8.0, 5.0, 0.0, 2.0], 0), ([1.0, 9.0, 7.0, 3.0], 0), ([6.0, 4.0, 8.0, 5.0], 2)]
    epoch1 = [([9.0, 0.0, 8.0, 4.0], 0), ([1.0, 6.0, 5.0, 3.0], 0), ([2.0, 7.0, 9.0, 0.0], 2)]
    for expected in (epoch0, epoch1):
        got = _epoch(it)
        assert [(np.ravel(d).tolist(), pad) for d, _, pad in got] == expected
        assert all(np.ravel(d).tolist() == lbl for d, lbl, _ in got)  # shuffled together
        it.reset()


def test_input_forms_names_and_dtypes():
    it = NDArrayIter({"b": np.zeros((5, 2)), "a": np.ones((5, 3), dtype=np.int64)},
                     [np.zeros(5), np.ones(5)], batch_size=2)
    assert it.provide_data == [("a", (2, 3)), ("b", (2, 2))]          # sorted by name
    assert it.provide_label == [("_0_softmax_label", (2,)), ("_1_softmax_label", (2,))]
    assert all(d.dtype is np.float32 and d.layout == "NCHW" for d in it.provide_data)
    batch = next(it)
    assert all(isinstance(a, nd.NDArray) and a.dtype == np.float32
               for a in batch.data + batch.label)
    assert batch.index is None and batch.bucket_key is None and batch.provide_data is None
    # NDArray inputs keep their dtype, until shuffling (MXNet re-creates them as float32)
    ints = nd.array(np.arange(6).reshape(6, 1), dtype="int32")
    assert NDArrayIter(ints, batch_size=2).provide_data[0].dtype is np.int32
    assert NDArrayIter(ints, batch_size=2, shuffle=True).provide_data[0].dtype is np.float32
    single = NDArrayIter([np.zeros((4, 1))], batch_size=2, data_name="x", label_name="y")
    assert single.provide_data == [("x", (2, 1))] and single.provide_label == []
    assert next(single).label == []


def test_layout_with_batch_axis_second():
    data = np.arange(2 * 6).reshape(2, 6)            # (T=2, N=6)
    it = NDArrayIter(data, batch_size=4, layout="TN")
    assert it.provide_data == [("data", (2, 4))] and it.provide_data[0].layout == "TN"
    batches = list(it)
    assert batches[0].data[0].tolist() == [[0, 1, 2, 3], [6, 7, 8, 9]]
    assert batches[1].data[0].tolist() == [[4, 5, 0, 1], [10, 11, 6, 7]] and batches[1].pad == 2


def test_batches_are_views_except_padding():
    data = nd.array(np.arange(8).reshape(8, 1))
    it = NDArrayIter(data, batch_size=3)
    first, _, last = list(it)
    assert np.shares_memory(first.data[0], data)
    assert not np.shares_memory(last.data[0], data)


def test_epoch_end_needs_reset():
    it = NDArrayIter(np.arange(4), batch_size=2)
    _epoch(it)
    with pytest.raises(StopIteration):
        next(it)
    with pytest.raises(RuntimeError, match="needs reset"):
        it.getdata()


@pytest.mark.parametrize("kwargs,error,match", [
    ({"batch_size": 0}, ValueError, "batch_size must be a positive int"),
    ({"last_batch_handle": "keep"}, ValueError, "last_batch_handle must be one of"),
    ({"layout": "CHW"}, ValueError, "batch axis 'N'"),
    ({"label": np.zeros(3)}, ValueError, "same number of samples"),
    ({"batch_size": 8, "last_batch_handle": "roll_over"}, ValueError,
     "needs at least batch_size=8 samples"),
])
def test_ndarrayiter_argument_errors(kwargs, error, match):
    args = {"data": np.zeros((5, 2)), "batch_size": 2, **kwargs}
    with pytest.raises(error, match=match):
        NDArrayIter(**args)


def test_ndarrayiter_rejects_bad_data():
    with pytest.raises(ValueError, match="must not be None"):
        NDArrayIter(None)
    with pytest.raises(TypeError, match="Input must be NDArray"):
        NDArrayIter("text")
    with pytest.raises(TypeError, match="Invalid type dict for 'x'"):
        NDArrayIter({"x": {"a": 1}})


# ---------------------------------------------------------------------- ResizeIter

def test_resize_iter_wraps_and_resets():
    base = NDArrayIter(np.arange(6), batch_size=2)            # 3 batches
    it = ResizeIter(base, 5)
    assert it.batch_size == 2 and it.provide_data == base.provide_data
    assert [d for d, _, _ in _epoch(it)] == [[0, 1], [2, 3], [4, 5], [0, 1], [2, 3]]
    it.reset()
    assert [d for d, _, _ in _epoch(it)][0] == [0, 1]
    cont = ResizeIter(NDArrayIter(np.arange(6), batch_size=2), 2, reset_internal=False)
    _epoch(cont)
    cont.reset()
    assert [d for d, _, _ in _epoch(cont)] == [[4, 5], [0, 1]]
    with pytest.raises(ValueError, match="size must be a non-negative int"):
        ResizeIter(base, -1)


class _BucketIter(DataIter):
    default_bucket_key = 5

    def __init__(self):
        super().__init__(batch_size=1)
        self.provide_data, self.provide_label = [DataDesc("data", (1, 5))], []
        self.done = False

    def reset(self):
        self.done = False

    def next(self):
        if self.done:
            raise StopIteration
        self.done = True
        return DataBatch([nd.zeros((1, 3))], [], pad=0, bucket_key=3,
                         provide_data=[DataDesc("data", (1, 3))])


def test_resize_iter_keeps_bucket_information():
    it = ResizeIter(_BucketIter(), 2)
    assert it.default_bucket_key == 5
    batches = list(it)
    assert [b.bucket_key for b in batches] == [3, 3]
    assert batches[0].provide_data == [("data", (1, 3))]


# ---------------------------------------------------------------------- PrefetchingIter

def test_prefetching_iter_yields_the_same_batches():
    with PrefetchingIter(NDArrayIter(np.arange(10), np.arange(10), batch_size=4)) as it:
        assert it.batch_size == 4
        assert _epoch(it) == _epoch(NDArrayIter(np.arange(10), np.arange(10), batch_size=4))
        it.reset()
        assert len(_epoch(it)) == 3


def test_prefetching_iter_combines_and_renames():
    a = NDArrayIter({"data": np.arange(8).reshape(8, 1)}, np.arange(8), batch_size=4)
    b = NDArrayIter({"data": np.arange(8).reshape(8, 1) + 100}, batch_size=4, layout="NC")
    with PrefetchingIter([a, b], rename_data=[{"data": "data_1"}, {"data": "data_2"}]) as it:
        assert it.provide_data == [("data_1", (4, 1)), ("data_2", (4, 1))]
        assert it.provide_data[1].layout == "NC"
        assert it.provide_label == [("softmax_label", (4,))]
        batch = next(it)
        assert [d.ravel().tolist() for d in batch.data] == [[0, 1, 2, 3], [100, 101, 102, 103]]
        assert len(batch.label) == 1 and batch.provide_data == it.provide_data
    with pytest.raises(ValueError, match="one dict per iterator"):
        PrefetchingIter([a, b], rename_data=[{}])


def test_prefetching_iter_mismatched_lengths():
    a = NDArrayIter(np.arange(8), batch_size=4)
    b = NDArrayIter(np.arange(12), batch_size=4)
    with PrefetchingIter([a, b]) as it:
        next(it), next(it)
        with pytest.raises(ValueError, match="mismatches between iterators"):
            next(it)


class _FailingIter(NDArrayIter):
    def next(self):
        if self.cursor >= 0:
            raise OSError("disk went away")
        return super().next()


def test_prefetching_iter_reraises_thread_errors():
    with PrefetchingIter(_FailingIter(np.arange(8), batch_size=2)) as it:
        next(it)
        for _ in range(2):  # raised again until reset
            with pytest.raises(OSError, match="disk went away"):
                next(it)
        it.reset()
        assert next(it).data[0].tolist() == [0, 1]


def test_prefetching_iter_close_and_garbage_collection():
    before = {t for t in threading.enumerate() if t.name.startswith("PrefetchingIter")}
    it = PrefetchingIter([NDArrayIter(np.arange(4), batch_size=2),
                          NDArrayIter(np.arange(4), batch_size=2)])
    threads = [w.thread for w in it._workers]
    assert all(t.is_alive() for t in threads)
    it.close()
    assert not any(t.is_alive() for t in threads)
    with pytest.raises(RuntimeError, match="closed"):
        next(it)
    it.close()  # idempotent

    it = PrefetchingIter(NDArrayIter(np.arange(4), batch_size=2))
    ref, thread = weakref.ref(it), it._workers[0].thread
    del it
    gc.collect()
    deadline = time.monotonic() + 5
    while thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ref() is None and not thread.is_alive()
    after = {t for t in threading.enumerate() if t.name.startswith("PrefetchingIter")}
    assert after <= before


def test_ndarrayiter_reads_float32_numpy_input_without_a_copy():
    """A float32 data set is not held twice (raymod deviation: MXNet copies)."""
    import numpy as np
    from raymod.io import NDArrayIter
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    it = NDArrayIter(x, batch_size=2)
    assert np.shares_memory(it.data[0][1], x)
    x64 = x.astype(np.float64)
    it64 = NDArrayIter(x64, batch_size=2)
    assert it64.data[0][1].dtype == np.float32 and not np.shares_memory(it64.data[0][1], x64)
