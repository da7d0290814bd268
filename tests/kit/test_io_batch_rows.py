"""Batches of in-memory iterators carry their rows: every batch equals its rows of the source."""
import pickle

import numpy as np
import pytest

import raymod as rm
from raymod.io import NDArrayIter, ResizeIter
from raymod.io.batch_rows import GatherOnRead, data_shapes, raw_data


def _check_rows(batch):
    source, rows = batch.rows.source, batch.rows.rows
    for arr, src in zip(batch.data, source.data):
        np.testing.assert_array_equal(arr, np.take(src, rows, axis=source.axis))
    for arr, src in zip(batch.label or [], source.label):
        np.testing.assert_array_equal(arr, np.take(src, rows, axis=source.axis))
    assert not batch.rows.unchanged        # only the module loops vouch for that


@pytest.mark.parametrize("handle", ["pad", "discard", "roll_over"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_ndarray_iter_batches_are_their_rows(handle, shuffle):
    x = np.arange(26 * 3, dtype=np.float32).reshape(26, 3)
    y = np.arange(26, dtype=np.float32)
    it = NDArrayIter(x, y, batch_size=8, shuffle=shuffle, last_batch_handle=handle)
    tokens = set()
    for _ in range(3):
        for batch in it:
            _check_rows(batch)
            tokens.add(batch.rows.source.token)
        it.reset()
    assert len(tokens) == 1                 # one source per iterator, shipped once


def test_rows_are_the_batchs_own_and_resize_iter_passes_them_on():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    it = NDArrayIter(x, np.zeros(10, np.float32), batch_size=4, shuffle=True)
    batch = next(iter(it))
    rows = batch.rows.rows.copy()
    it.reset()                              # a reshuffle does not move a batch's rows
    np.testing.assert_array_equal(batch.rows.rows, rows)
    resized = ResizeIter(NDArrayIter(x, batch_size=4), 5)
    batches = list(resized)
    assert len(batches) == 5 and all(b.rows is not None for b in batches)
    for b in batches:
        _check_rows(b)


def test_other_layouts_keep_their_batch_axis():
    x = np.arange(2 * 6 * 3, dtype=np.float32).reshape(2, 6, 3)     # TNC
    it = NDArrayIter({"data": x}, batch_size=4, layout="TNC", last_batch_handle="pad")
    for batch in it:
        assert batch.rows.source.axis == 1
        _check_rows(batch)


def test_module_loops_mark_their_batches(monkeypatch):
    seen = []
    mod = rm.mod.Module(rm.sym.LinearRegressionOutput(rm.sym.Variable("data"), name="lro"),
                        label_names=["lro_label"], placement="in_process")
    original = mod.forward

    def recording(batch, is_train=None):
        seen.append(batch.rows.unchanged)
        return original(batch, is_train)

    monkeypatch.setattr(mod, "forward", recording)
    x = np.ones((8, 2), np.float32)
    it = NDArrayIter(x, x, batch_size=4, label_name="lro_label")
    mod.fit(it, num_epoch=1, optimizer_params={"learning_rate": 0.0})
    mod.score(it, "mse")
    mod.predict(it)
    assert seen == [True] * 6


def test_a_copy_given_other_data_is_not_its_rows():
    """SequentialModule passes a copy of the batch with the previous stage's outputs."""
    import copy
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    batch = next(iter(NDArrayIter(x, x[:, 0], batch_size=4)))
    assert batch.rows.describes(batch)
    other = copy.copy(batch)
    other.data = [np.zeros((4, 7), np.float32)]
    assert not other.rows.describes(other)


def test_only_modules_that_hand_batches_on_unchanged_mark_them():
    assert rm.mod.Module._batches_reach_groups_unchanged
    assert rm.mod.BucketingModule._batches_reach_groups_unchanged
    assert not rm.mod.SequentialModule._batches_reach_groups_unchanged
    assert not rm.mod.PythonModule._batches_reach_groups_unchanged


def test_batch_data_is_gathered_when_first_read():
    """A shuffled batch's data is made only when read, and is its own even after resets."""
    x = np.arange(26 * 3, dtype=np.float32).reshape(26, 3)
    it = NDArrayIter(x, np.arange(26, dtype=np.float32), batch_size=8, shuffle=True)
    batch = next(iter(it))
    held = raw_data(batch)
    assert isinstance(held, GatherOnRead) and not held.gathered
    assert data_shapes(batch) == [(8, 3)] and not held.gathered     # shapes gather nothing
    rows = batch.rows.rows.copy()
    it.reset()
    it.reset()                              # reshuffles before the batch is read
    np.testing.assert_array_equal(batch.data[0], x[rows])
    assert held.gathered and batch.data is batch.data               # one list, made once
    assert isinstance(batch.data[0], rm.nd.NDArray)
    assert batch.rows.describes(batch)


def test_a_deferred_batch_pickles_and_can_be_given_other_data():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    batch = next(iter(NDArrayIter(x, batch_size=4, shuffle=True)))
    again = pickle.loads(pickle.dumps(batch))
    np.testing.assert_array_equal(again.data[0], batch.data[0])
    other = [rm.nd.zeros((4, 2))]
    batch.data = other
    assert batch.data is other and data_shapes(batch) == [(4, 2)]
    assert not batch.rows.describes(batch)


def test_whole_runs_of_rows_stay_views_and_resize_iter_keeps_the_deferral():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    batch = next(iter(NDArrayIter(x, batch_size=4)))
    assert isinstance(raw_data(batch), list)         # a view costs nothing to make
    resized = next(iter(ResizeIter(NDArrayIter(x, batch_size=4, shuffle=True), 2)))
    assert isinstance(raw_data(resized), GatherOnRead) and resized.rows.describes(resized)
    _check_rows(resized)


def test_csv_iter_batches_are_gathered_when_read(tmp_path):
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    path = tmp_path / "x.csv"
    np.savetxt(path, x, delimiter=",")
    it = rm.io.CSVIter(data_csv=str(path), data_shape=(3,), batch_size=4)
    batches = list(it)
    assert all(not raw_data(b).gathered for b in batches)
    for batch in batches:
        _check_rows(batch)


def test_prefetching_iter_over_one_iterator_keeps_rows_and_the_deferred_gather():
    x = np.arange(26 * 3, dtype=np.float32).reshape(26, 3)
    y = np.arange(26, dtype=np.float32)
    with rm.io.PrefetchingIter(NDArrayIter(x, y, batch_size=8, shuffle=True)) as it:
        batches = list(it)
    assert len(batches) == 4
    for batch in batches:
        assert isinstance(raw_data(batch), GatherOnRead) and not raw_data(batch).gathered
        assert batch.rows.describes(batch)
        _check_rows(batch)
    with rm.io.PrefetchingIter([NDArrayIter(x, batch_size=8),
                                NDArrayIter({"b": x}, batch_size=8)]) as two:
        assert getattr(next(iter(two)), "rows", None) is None    # two sources: arrays
