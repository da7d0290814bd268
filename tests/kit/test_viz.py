"""`rm.viz.print_summary` prints MXNet 1.9.1's table (tests/fixtures/mxnet/viz_summaries.json)."""
import json
import os
import sys

import pytest

import raymod as rm

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures", "mxnet")
sys.path.insert(0, FIXTURES)
import make_viz_fixtures as maker  # noqa: E402

with open(os.path.join(FIXTURES, "viz_summaries.json")) as _f:
    RECORDED = json.load(_f)["summaries"]


@pytest.mark.parametrize("name, symbol, kwargs", maker.networks(rm), ids=lambda v: str(v)[:20])
def test_summary_matches_mxnet_line_for_line(name, symbol, kwargs):
    got = maker.summary_text(rm, symbol, kwargs).splitlines()
    want = RECORDED[name].splitlines()
    for lineno, (g, w) in enumerate(zip(got, want, strict=True), start=1):
        assert g == w, f"{name} line {lineno}:\n raymod: {g!r}\n mxnet:  {w!r}"


def test_bad_arguments():
    with pytest.raises(TypeError, match="symbol must be a Symbol"):
        rm.viz.print_summary("not a symbol")
    net = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=2)
    with pytest.raises(ValueError, match="4 column ends"):
        rm.viz.print_summary(net, positions=[.5, 1.])
