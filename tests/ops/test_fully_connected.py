"""FullyConnected: y = flatten(x) . W^T + b."""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.test_utils import check_symbolic_backward, check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731


def _fc(**kw):
    return lambda: rm.sym.FullyConnected(data(), name="fc", **kw)


GRAD_CASES = [
    GradCase("FullyConnected", "default", _fc(num_hidden=3),
             {"data": (2, 4), "fc_weight": (3, 4), "fc_bias": (3,)}),
    GradCase("FullyConnected", "flatten-4d", _fc(num_hidden=2),
             {"data": (2, 3, 2, 2), "fc_weight": (2, 12), "fc_bias": (2,)}),
    GradCase("FullyConnected", "no_bias", _fc(num_hidden=3, no_bias=True),
             {"data": (2, 4), "fc_weight": (3, 4)}),
    GradCase("FullyConnected", "flatten-false", _fc(num_hidden=2, flatten=False),
             {"data": (2, 3, 4), "fc_weight": (2, 4), "fc_bias": (2,)}),
    GradCase("FullyConnected", "column-bias", _fc(num_hidden=3),
             {"data": (2, 4), "fc_weight": (3, 4), "fc_bias": (3, 1)}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


RNG = np.random.default_rng(0)


def test_forward_backward_flatten(ctx):
    x, w, bias = RNG.normal(size=(2, 3, 2)), RNG.normal(size=(4, 6)), RNG.normal(size=(4,))
    sym = rm.sym.FullyConnected(data(), num_hidden=4, name="fc")
    x2 = x.reshape(2, 6)
    check_symbolic_forward(sym, [x, w, bias], [x2 @ w.T + bias], ctx=ctx, dtype=np.float64,
                           rtol=1e-12)
    gy = RNG.normal(size=(2, 4))
    check_symbolic_backward(sym, [x, w, bias], [gy],
                            [(gy @ w).reshape(x.shape), gy.T @ x2, gy.sum(axis=0)],
                            ctx=ctx, dtype=np.float64, rtol=1e-12)


def test_forward_backward_no_flatten(ctx):
    x, w, bias = RNG.normal(size=(2, 3, 5)), RNG.normal(size=(4, 5)), RNG.normal(size=(4,))
    sym = rm.sym.FullyConnected(data(), num_hidden=4, flatten=False, name="fc")
    check_symbolic_forward(sym, [x, w, bias], [x @ w.T + bias], ctx=ctx, dtype=np.float64,
                           rtol=1e-12)
    gy = RNG.normal(size=(2, 3, 4))
    check_symbolic_backward(sym, [x, w, bias], [gy],
                            [gy @ w, np.einsum("abh,abk->hk", gy, x), gy.sum(axis=(0, 1))],
                            ctx=ctx, dtype=np.float64, rtol=1e-12)


def test_no_bias_forward(ctx):
    x, w = RNG.normal(size=(3, 4)), RNG.normal(size=(2, 4))
    sym = rm.sym.FullyConnected(data(), num_hidden=2, no_bias=True, name="fc")
    assert sym.list_arguments() == ["data", "fc_weight"]
    check_symbolic_forward(sym, [x, w], [x @ w.T], ctx=ctx, dtype=np.float64, rtol=1e-12)


def test_column_bias_is_accepted(ctx):
    x, w, bias = RNG.normal(size=(2, 4)), RNG.normal(size=(3, 4)), RNG.normal(size=(3, 1))
    sym = rm.sym.FullyConnected(data(), num_hidden=3, name="fc")
    assert sym.infer_shape(data=(2, 4), fc_bias=(3, 1))[0] == [(2, 4), (3, 4), (3, 1)]
    check_symbolic_forward(sym, [x, w, bias], [x @ w.T + bias[:, 0]], ctx=ctx,
                           dtype=np.float64, rtol=1e-12)


@pytest.mark.parametrize("kwargs, data_shape, args, out", [
    ({"num_hidden": 5}, (2, 3, 4), [(2, 3, 4), (5, 12), (5,)], (2, 5)),
    ({"num_hidden": 5, "flatten": False}, (2, 3, 4), [(2, 3, 4), (5, 4), (5,)], (2, 3, 5)),
    ({"num_hidden": 5, "no_bias": True}, (7, 3), [(7, 3), (5, 3)], (7, 5)),
])
def test_shape_inference(kwargs, data_shape, args, out):
    sym = rm.sym.FullyConnected(data(), name="fc", **kwargs)
    assert sym.infer_shape(data=data_shape) == (args, [out], [])
    assert sym.list_outputs() == ["fc_output"]


def test_batch_dim_inferred_from_the_output():
    fc = rm.sym.FullyConnected(data(), num_hidden=3, name="fc")
    sym = fc + rm.sym.Variable("other")
    arg_shapes, _, _ = sym.infer_shape_partial(data=(0, 4), other=(6, 3))
    assert arg_shapes[0] == (6, 4)


def test_missing_num_hidden_names_node_and_attribute():
    with pytest.raises(TypeError, match="FullyConnected 'fc1'.*num_hidden"):
        rm.sym.FullyConnected(data(), name="fc1")


def test_num_hidden_must_be_positive():
    with pytest.raises(ValueError, match="FullyConnected 'fc1'.*num_hidden"):
        rm.sym.FullyConnected(data(), num_hidden=0, name="fc1")


def test_unknown_attribute():
    with pytest.raises(TypeError, match="FullyConnected 'fc1'.*'num_output'"):
        rm.sym.FullyConnected(data(), num_hidden=2, num_output=3, name="fc1")


def test_weight_data_mismatch():
    sym = rm.sym.FullyConnected(data(), num_hidden=4, name="fc1")
    with pytest.raises(MXNetError, match="FullyConnected 'fc1': data has 3 features.*weight "
                                         "expects 5"):
        sym.infer_shape(data=(2, 3), fc1_weight=(4, 5))


def test_weight_rows_must_match_num_hidden():
    sym = rm.sym.FullyConnected(data(), num_hidden=4, name="fc1")
    with pytest.raises(MXNetError, match="FullyConnected 'fc1'.*weight"):
        sym.infer_shape(data=(2, 3), fc1_weight=(5, 3))


def test_bias_of_the_wrong_size():
    sym = rm.sym.FullyConnected(data(), num_hidden=4, name="fc1")
    with pytest.raises(MXNetError, match="FullyConnected 'fc1'.*bias"):
        sym.infer_shape(data=(2, 3), fc1_bias=(3,))


def test_auto_created_weights_carry_the_op_attributes():
    sym = rm.sym.FullyConnected(data(), num_hidden=4, name="fc1")
    attrs = sym.attr_dict()
    assert attrs["fc1_weight"] == {"num_hidden": "4"} == attrs["fc1_bias"]
