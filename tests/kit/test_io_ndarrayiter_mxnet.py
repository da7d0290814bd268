"""NDArrayIter replays MXNet 1.9.1 over several epochs (tests/fixtures/mxnet/ndarrayiter.json).

Recorded by tests/fixtures/mxnet/make_ndarrayiter_fixtures.py: shuffling (raymod
keeps a row order instead of permuting the data, MXNet copies the data at every
reset), padding, discarding, rolling over and hard_reset, epoch after epoch.
"""
import json
import os
import sys

import numpy as np
import pytest

import raymod as rm

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures", "mxnet")
sys.path.insert(0, FIXTURES)
import make_ndarrayiter_fixtures as maker  # noqa: E402

with open(os.path.join(FIXTURES, "ndarrayiter.json")) as _f:
    RECORDED = json.load(_f)


@pytest.mark.parametrize("name", sorted(RECORDED["cases"]))
def test_epochs_match_mxnet(name):
    case = RECORDED["cases"][name]
    state = np.random.get_state()
    try:
        got = maker.run_case(rm, case)
    finally:
        np.random.set_state(state)
    want = case["result"]
    assert got["provide_data"] == want["provide_data"]
    assert got["provide_label"] == want["provide_label"]
    assert len(got["epochs"]) == len(want["epochs"])
    for e, (g, w) in enumerate(zip(got["epochs"], want["epochs"])):
        assert g["batches"] == w["batches"], f"epoch {e}"
        assert g["data_attr"] == w["data_attr"], f"epoch {e}: the data attribute"


def test_the_fixture_covers_every_last_batch_handle_with_shuffle():
    handles = {c["last_batch_handle"] for c in RECORDED["cases"].values() if c["shuffle"]}
    assert handles == {"pad", "discard", "roll_over"}
    assert any(c["between"] for c in RECORDED["cases"].values() if c["shuffle"])


def _shuffled(n=10, batch_size=4, handle="pad", seed=0):
    np.random.seed(seed)
    x = 100 * np.arange(n, dtype=np.float32).reshape(n, 1) + np.arange(3, dtype=np.float32)
    return x, rm.io.NDArrayIter(x, np.arange(n, dtype=np.float32), batch_size=batch_size,
                                shuffle=True, last_batch_handle=handle)


def test_shuffling_leaves_the_data_in_place():
    """A reset permutes the row order only: the data given is neither copied nor written."""
    x, it = _shuffled()
    before = x.copy()
    (source,), _ = it.source_arrays()
    for _ in range(3):
        batches = list(it)
        it.reset()
        assert it.source_arrays()[0][0][1] is source[1]
    assert np.shares_memory(source[1], x) and np.array_equal(x, before)
    assert not any(np.shares_memory(b.data[0], x) for b in batches)


@pytest.mark.parametrize("handle", ["pad", "discard", "roll_over"])
def test_batch_rows_spell_every_batch(handle):
    """np.take(source, batch_rows()) is the batch (what a worker holding the arrays needs)."""
    _, it = _shuffled(n=11, batch_size=4, handle=handle, seed=3)
    (data,), (label,) = it.source_arrays()
    for _ in range(4):
        while True:
            try:
                batch = next(it)
            except StopIteration:
                break
            rows = it.batch_rows()
            assert rows.dtype == np.int64 and len(rows) == 4
            assert np.array_equal(batch.data[0], np.take(data[1], rows, axis=0))
            assert np.array_equal(batch.label[0], np.take(label[1], rows, axis=0))
        it.reset()


def test_batch_rows_without_shuffle_are_consecutive_and_batches_views():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    it = rm.io.NDArrayIter(x, batch_size=4)
    first = next(it)
    assert it.batch_rows().tolist() == [0, 1, 2, 3] and np.shares_memory(first.data[0], x)
    next(it)
    last = next(it)
    assert it.batch_rows().tolist() == [8, 9, 0, 1] and last.pad == 2


def test_getdata_before_the_first_batch_is_an_error():
    """MXNet fails in slice_axis (begin=-2, end=0); raymod says what is missing."""
    it = rm.io.NDArrayIter(np.arange(6, dtype=np.float32).reshape(6, 1), batch_size=2)
    with pytest.raises(RuntimeError, match="no current batch: call next"):
        it.getdata()
    next(it)
    assert it.getdata()[0].tolist() == [[0.0], [1.0]]


def test_shuffling_turned_on_later_makes_float32_arrays_and_rows_follow_them():
    """MXNet re-creates int arrays as float32 at the first shuffle: the rows a batch
    carries must then index the new arrays."""
    ints = rm.nd.array(np.arange(12).reshape(6, 2), dtype="int32")
    it = rm.io.NDArrayIter(ints, batch_size=2)
    first = next(it)
    assert first.data[0].dtype == np.int32
    it.shuffle = True
    it.reset()
    batch = next(it)
    source, rows = batch.rows.source, batch.rows.rows
    assert source.data[0].dtype == np.float32 and batch.data[0].dtype == np.float32
    assert np.array_equal(batch.data[0], np.take(source.data[0], rows, axis=0))
    assert source.token != first.rows.source.token
