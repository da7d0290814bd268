"""Batches of in-memory iterators carry their rows: every batch equals its rows of the source."""
import numpy as np
import pytest

import raymod as rm
from raymod.io import NDArrayIter, ResizeIter


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
