"""infer_shape / infer_shape_partial / infer_type over whole graphs (reference 12.1).

Shapes use MXNet's legacy convention: 0 is an unknown dimension, () an unknown
shape in partial results. Expected values were checked against MXNet 1.9.1.
"""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError


def _fc_plus_b():
    a, b = rm.sym.Variable("a"), rm.sym.Variable("b")
    return rm.sym.FullyConnected(a, num_hidden=3, name="fc") + b


def test_forward_inference_sizes_the_parameters():
    net = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=3, name="fc1")
    net = rm.sym.SoftmaxOutput(net, name="sm")
    arg, out, aux = net.infer_shape(data=(8, 5))
    assert dict(zip(net.list_arguments(), arg)) == {
        "data": (8, 5), "fc1_weight": (3, 5), "fc1_bias": (3,), "sm_label": (8,)}
    assert out == [(8, 3)] and aux == []


def test_backward_inference_fills_an_unknown_batch_dimension():
    # fc's output unifies with b (elemwise), and FullyConnected then gives data its batch.
    arg, out, _ = _fc_plus_b().infer_shape(a=(0, 5), b=(4, 3))
    assert arg == [(4, 5), (3, 5), (3,), (4, 3)]
    assert out == [(4, 3)]


def test_partial_keeps_unknown_dimensions_as_zero():
    sym = _fc_plus_b()
    assert sym.infer_shape(a=(0, 5)) == (None, None, None)
    arg, out, aux = sym.infer_shape_partial(a=(0, 5))
    assert arg == [(0, 5), (3, 5), (3,), (0, 3)]
    assert out == [(0, 3)] and aux == []


def test_partial_reports_unknown_shapes_as_empty_tuples():
    a = rm.sym.Variable("a")
    arg, out, aux = (a * 2).infer_shape_partial()
    assert (arg, out, aux) == ([()], [()], [])


def test_aux_states_are_inferred():
    bn = rm.sym.BatchNorm(rm.sym.Variable("data"), name="bn")
    assert bn.infer_shape(data=(2, 3, 4)) == ([(2, 3, 4), (3,), (3,)], [(2, 3, 4)],
                                              [(3,), (3,)])


def test_positional_shapes_follow_list_arguments():
    sym = _fc_plus_b()
    by_position = sym.infer_shape((4, 5), None, None, (4, 3))
    assert by_position == sym.infer_shape(a=(4, 5), b=(4, 3))
    with pytest.raises(ValueError, match="either positionally or by keyword"):
        sym.infer_shape((4, 5), b=(4, 3))
    with pytest.raises(ValueError, match="5 positional values for 4 arguments"):
        sym.infer_shape(*[(1,)] * 5)


def test_shape_attribute_is_a_hint_that_given_shapes_override():
    v = rm.sym.Variable("v", shape=(3, 4))
    assert (v * 2).infer_shape() == ([(3, 4)], [(3, 4)], [])
    assert (v * 2).infer_shape(v=(5, 4)) == ([(5, 4)], [(5, 4)], [])
    partial = rm.sym.Variable("p", shape=(0, 4))
    assert (partial * 2).infer_shape_partial() == ([(0, 4)], [(0, 4)], [])


def test_shape_conflicts_name_the_node_and_both_shapes():
    with rm.name.NameManager():
        a, b = rm.sym.Variable("a"), rm.sym.Variable("b")
        s = a + b
    with pytest.raises(MXNetError, match=r"elemwise_add '_plus0'.*\(2, 3\).*\(3, 2\)"):
        s.infer_shape(a=(2, 3), b=(3, 2))
    fc = rm.sym.FullyConnected(a, num_hidden=3, name="fc1")
    with pytest.raises(MXNetError, match=r"FullyConnected 'fc1': data has 5 features .* "
                                         r"weight expects 4"):
        fc.infer_shape(a=(2, 5), fc1_weight=(3, 4))


def test_conflict_between_two_inferred_shapes_names_the_node():
    # fc's output is (4, 3) by num_hidden, b says (4, 2): the add that joins them reports it.
    with rm.name.NameManager():
        sym = _fc_plus_b()
    with pytest.raises(MXNetError, match=r"elemwise_add '_plus0'.*\(4, 3\).*\(4, 2\)"):
        sym.infer_shape(a=(4, 5), b=(4, 2))


def test_unknown_keyword_is_an_error_listing_the_candidates():
    with pytest.raises(MXNetError, match=r"keyword argument name nope not found.\n"
                                         r"Candidate arguments:\n\t\[0\]a"):
        _fc_plus_b().infer_shape(nope=(2, 5))


def test_infer_type_follows_the_data():
    fc = rm.sym.FullyConnected(rm.sym.Variable("a"), num_hidden=3, name="fc")
    assert fc.infer_type(a=np.float16) == ([np.float16] * 3, [np.float16], [])
    assert fc.infer_type("float64") == ([np.float64] * 3, [np.float64], [])
    assert fc.infer_type() == (None, None, None)


def test_infer_type_uses_the_dtype_attribute():
    a, c = rm.sym.Variable("a"), rm.sym.Variable("c", dtype="float64")
    assert (a + c).infer_type() == ([np.float64, np.float64], [np.float64], [])


def test_infer_type_conflict_names_node_and_input():
    with rm.name.NameManager():
        s = rm.sym.Variable("a") + rm.sym.Variable("b")
    with pytest.raises(MXNetError, match="elemwise_add '_plus0': rhs: expected dtype float32, "
                                         "received float64"):
        s.infer_type(a="float32", b="float64")


def test_batchnorm_keeps_float32_parameters_for_float16_data():
    bn = rm.sym.BatchNorm(rm.sym.Variable("data"), name="bn")
    assert bn.infer_type(data="float16") == ([np.float16, np.float32, np.float32],
                                             [np.float16], [np.float32, np.float32])


def test_long_chain_converges_from_both_ends():
    # A shape known only at the far end must travel back through every node.
    x = rm.sym.Variable("x")
    h = x
    for _ in range(20):
        h = rm.sym.Activation(h, act_type="tanh")
    s = h + rm.sym.Variable("y")
    arg, out, _ = s.infer_shape(y=(3, 2))
    assert arg == [(3, 2), (3, 2)] and out == [(3, 2)]
