"""MNISTIter and CSVIter replay MXNet 1.9.1's batches (tests/fixtures/mxnet/iterators.json).

The fixture was recorded from the mxnet 1.9.1 wheel by
tests/fixtures/mxnet/make_iterator_fixtures.py, which also writes the input
files; here the same files are written and every case is read with raymod.
"""
import json
import os
import sys

import pytest

import raymod as rm

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures", "mxnet")
sys.path.insert(0, FIXTURES)
import make_iterator_fixtures as maker  # noqa: E402

with open(os.path.join(FIXTURES, "iterators.json")) as _f:
    RECORDED = json.load(_f)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("iterator_inputs"))
    maker.write_inputs(folder)
    return folder


def _compare_batch(case, got, want, where):
    assert got["pad"] == want["pad"], where
    if "rows" in want:
        assert got["rows"] == want["rows"], where
        return
    assert got["data_shape"] == want["data_shape"], where
    real = len(want["label"]) - (want["pad"] if case.get("uninitialised_pad") else 0)
    width = len(want["data"]) // len(want["label"])
    assert got["data"][:real * width] == want["data"][:real * width], where
    assert got["label"][:real] == want["label"][:real], where
    if case["iter"] == "CSVIter":   # MXNet's MNISTIter reports zeros as its index
        assert got["index"][:real] == want["index"][:real], where


@pytest.mark.parametrize("name", sorted(RECORDED["cases"]))
def test_batches_match_mxnet(name, inputs):
    case = RECORDED["cases"][name]
    want = case["result"]
    got = maker.run_case(rm, case, inputs)
    if "error" in want:
        assert "error" in got, f"MXNet fails at {want['error']}, raymod does not"
        assert (got["error"]["epoch"], got["error"]["batch"]) == \
            (want["error"]["epoch"], want["error"]["batch"])
    else:
        assert "error" not in got, got.get("error")
    for key in ("provide_data", "provide_label"):
        assert json.loads(json.dumps(got.get(key))) == want.get(key), key
    assert [len(e) for e in got["epochs"]] == [len(e) for e in want["epochs"]]
    for e, (got_epoch, want_epoch) in enumerate(zip(got["epochs"], want["epochs"])):
        for b, (g, w) in enumerate(zip(got_epoch, want_epoch)):
            _compare_batch(case, g, w, f"epoch {e} batch {b}")


def test_silent_false_prints_mxnets_summary(inputs, capsys):
    rm.io.MNISTIter(image=os.path.join(inputs, "mnist23-images"),
                    label=os.path.join(inputs, "mnist23-labels"), batch_size=5, flat=True)
    assert capsys.readouterr().err.strip() == RECORDED["mnist_silent_false_line"]
