"""RowsInput.gather: a worker fills its bound inputs from rows of a source it holds."""
import numpy as np

from raymod.parallel.dataplane import RowsInput


def _source():
    return {"data": [np.arange(24, dtype=np.float32).reshape(8, 3)],
            "label": [np.arange(8, dtype=np.float32)]}


def test_gather_writes_the_rows_into_the_bound_arrays_in_place():
    rows = np.array([5, 0, 7, 7], dtype=np.int64)
    bound = {"data": np.full((4, 3), -1, np.float32), "softmax_label": np.zeros(4, np.float32)}
    before = bound["data"]
    RowsInput("t", rows, [("data", "data", 0), ("softmax_label", "label", 0)]).gather(
        {"t": _source()}, bound, np)
    assert bound["data"] is before
    np.testing.assert_array_equal(bound["data"], _source()["data"][0][rows])
    np.testing.assert_array_equal(bound["softmax_label"], rows.astype(np.float32))


def test_gather_casts_into_inputs_bound_with_another_dtype_or_layout():
    rows = np.array([1, 2], dtype=np.int64)
    bound = {"data": np.zeros((2, 3), np.float16),
             "strided": np.zeros((2, 6), np.float32)[:, ::2]}
    RowsInput("t", rows, [("data", "data", 0), ("strided", "data", 0)]).gather(
        {"t": _source()}, bound, np)
    expected = _source()["data"][0][rows]
    np.testing.assert_array_equal(bound["data"], expected.astype(np.float16))
    np.testing.assert_array_equal(bound["strided"], expected)
