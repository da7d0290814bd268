"""Embedding: lookup with truncation and clipping, scatter-add weight gradient, errors."""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.test_utils import check_symbolic_backward, check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

data = lambda: rm.sym.Variable("data")   # noqa: E731

INDICES = np.array([[0.0, 3.0, 3.0], [1.9, 0.0, 4.0]])   # repeats: the gradient must add up

GRAD_CASES = [
    GradCase("Embedding", "weight", lambda: rm.sym.Embedding(data(), input_dim=5,
                                                              output_dim=3, name="emb"),
             {"data": (2, 3), "emb_weight": (5, 3)}, values={"data": INDICES}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


def test_lookup_truncates_and_clips(ctx, rng):
    w = rng.normal(size=(4, 2))
    idx = np.array([0.0, 2.7, -3.0, 9.0, 3.0, -0.5])
    sym = rm.sym.Embedding(data(), input_dim=4, output_dim=2, name="emb")
    expected = w[[0, 2, 0, 3, 3, 0]]
    check_symbolic_forward(sym, [idx, w], [expected], ctx=ctx, dtype=np.float64)


def test_weight_gradient_scatter_adds(ctx, rng):
    w = rng.normal(size=(5, 3))
    gy = rng.normal(size=(2, 3, 3))
    expected = np.zeros_like(w)
    for idx, row in zip(INDICES.astype(int).reshape(-1), gy.reshape(-1, 3)):
        expected[idx] += row
    sym = rm.sym.Embedding(data(), input_dim=5, output_dim=3, name="emb")
    check_symbolic_backward(sym, [INDICES, w], [gy], {"emb_weight": expected}, ctx=ctx,
                            dtype=np.float64, rtol=1e-12)


def test_data_gradient_request_fails_at_backward_naming_the_node(ctx):
    sym = rm.sym.Embedding(data(), input_dim=5, output_dim=3, name="emb")
    exe = sym.simple_bind(ctx, data=(2, 3))           # grad_req 'write' for data too
    exe.forward(is_train=True, data=INDICES)
    with pytest.raises(MXNetError, match=r"Embedding 'emb': Embedding cannot produce a "
                                         r"gradient for its data input"):
        exe.backward([ctx.xp.ones((2, 3, 3), dtype=np.float32)])


def test_shapes_and_types():
    sym = rm.sym.Embedding(data(), input_dim=10, output_dim=4, name="emb")
    assert sym.list_arguments() == ["data", "emb_weight"]
    args, outs, _ = sym.infer_shape(data=(3, 7))
    assert args == [(3, 7), (10, 4)] and outs == [(3, 7, 4)]
    arg_t, out_t, _ = sym.infer_type(data=np.int32)
    assert arg_t == [np.int32, np.float32] and out_t == [np.float32]
    half = rm.sym.Embedding(data(), input_dim=10, output_dim=4, dtype="float16", name="e")
    assert half.infer_type(data=np.float32)[1] == [np.float16]
    # a weight given with its own dtype wins over `dtype`, as in MXNet
    assert sym.infer_type(data=np.float32, emb_weight=np.float64)[1] == [np.float64]


def test_weight_shape_mismatch():
    sym = rm.sym.Embedding(data(), input_dim=10, output_dim=4, name="emb")
    with pytest.raises(MXNetError, match=r"Embedding 'emb': weight: expected shape \(10, 4\) "
                                         r"from input_dim=10, output_dim=4, received \(4, 10\)"):
        sym.infer_shape(data=(3,), emb_weight=(4, 10))


@pytest.mark.parametrize("kw, match", [
    (dict(output_dim=3), r"required attribute 'input_dim'"),
    (dict(input_dim=0, output_dim=3), r"input_dim must be >= 1"),
    (dict(input_dim=3, output_dim=3, dtype="nonsense"), r"dtype"),
])
def test_bad_attributes(kw, match):
    with pytest.raises((TypeError, ValueError), match=r"Embedding 'eb'.*" + match):
        rm.sym.Embedding(data(), name="eb", **kw)


def test_sparse_grad_is_accepted_and_dense(ctx):
    sym = rm.sym.Embedding(data(), input_dim=5, output_dim=3, sparse_grad=True, name="emb")
    exe = sym.simple_bind(ctx, grad_req={"emb_weight": "write"}, data=(2, 3))
    exe.forward(is_train=True, data=INDICES)
    exe.backward([ctx.xp.ones((2, 3, 3), dtype=np.float32)])
    counts = np.bincount(INDICES.astype(int).reshape(-1), minlength=5)
    np.testing.assert_allclose(to_numpy(exe.grad_dict["emb_weight"]),
                               np.repeat(counts[:, None], 3, axis=1))
