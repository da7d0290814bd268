"""_copy (identity): the value and the gradient pass through unchanged."""
import json

import numpy as np
import pytest

import raymod as rm
from raymod.name import NameManager
from raymod.test_utils import check_symbolic_backward, check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731

GRAD_CASES = [
    GradCase("_copy", "identity-4d", lambda: rm.sym.identity(data(), name="id"),
             {"data": (2, 3, 2, 2)}),
    GradCase("_copy", "_copy-1d", lambda: rm.sym._copy(data(), name="c"), {"data": (5,)}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


def test_forward_backward_are_copies(ctx, rng):
    x, gy = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    sym = rm.sym.identity(data(), name="id")
    check_symbolic_forward(sym, [x], [x], rtol=0, atol=0, ctx=ctx, dtype=np.float64)
    check_symbolic_backward(sym, [x], [gy], [gy], rtol=0, atol=0, ctx=ctx, dtype=np.float64)
    check_symbolic_backward(sym, [x], [gy], [gy], grad_req="add", rtol=1e-12, ctx=ctx,
                            dtype=np.float64)


def test_names_json_and_mxnet_graph():
    """[verified] mxnet 1.9.1: identity(data, name='id') is op `_copy`, output id_output;
    unnamed, the hint is the function's name (identity0, _copy0)."""
    sym = rm.sym.identity(data(), name="id")
    assert sym.list_outputs() == ["id_output"]
    node = json.loads(sym.tojson())["nodes"][-1]
    assert node["op"] == "_copy" and node["name"] == "id"
    with NameManager():
        assert rm.sym.identity(data()).name == "identity0"
        assert rm.sym._copy(data()).name == "_copy0"
    loaded = rm.sym.load_json(sym.tojson())
    assert loaded.list_outputs() == ["id_output"]
