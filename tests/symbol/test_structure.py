"""Symbol queries: arguments, outputs, aux states, attributes, internals, indexing, Group,
children, copies (reference 12.1; behaviour checked against MXNet 1.9.1)."""
import copy
import pickle

import pytest

import raymod as rm
from raymod.base import MXNetError


def _bn_net():
    data = rm.sym.Variable("data")
    h = rm.sym.FullyConnected(data, num_hidden=4, name="fc1")
    h = rm.sym.BatchNorm(h, name="bn1")
    h = rm.sym.Activation(h, act_type="relu", name="relu1")
    h = rm.sym.FullyConnected(h, num_hidden=3, name="fc2")
    return rm.sym.SoftmaxOutput(h, name="softmax")


def test_arguments_outputs_aux_states_inputs():
    net = _bn_net()
    assert net.list_arguments() == ["data", "fc1_weight", "fc1_bias", "bn1_gamma", "bn1_beta",
                                    "fc2_weight", "fc2_bias", "softmax_label"]
    assert net.list_auxiliary_states() == ["bn1_moving_mean", "bn1_moving_var"]
    assert net.list_inputs() == ["data", "fc1_weight", "fc1_bias", "bn1_gamma", "bn1_beta",
                                 "bn1_moving_mean", "bn1_moving_var", "fc2_weight",
                                 "fc2_bias", "softmax_label"]
    assert net.list_outputs() == ["softmax_output"]


def test_arguments_are_in_depth_first_post_order():
    a, b, c = (rm.sym.Variable(n) for n in "abc")
    s = (c * b) + a
    assert s.list_arguments() == ["c", "b", "a"]
    assert (a + a).list_arguments() == ["a"]       # one node, listed once


def test_multi_output_op_outputs_and_name():
    sp = rm.sym.SliceChannel(rm.sym.Variable("data"), num_outputs=3, name="sp")
    assert sp.list_outputs() == ["sp_output0", "sp_output1", "sp_output2"]
    assert len(sp) == 3
    assert sp.name == "sp"                   # every output comes from one node
    assert sp.attr("num_outputs") == "3"
    assert [s.list_outputs() for s in sp] == [["sp_output0"], ["sp_output1"], ["sp_output2"]]


def test_hidden_outputs_are_not_listed():
    bn = rm.sym.BatchNorm(rm.sym.Variable("data"), name="bn1")
    assert bn.list_outputs() == ["bn1_output"]
    assert bn.get_internals().list_outputs() == [
        "data", "bn1_gamma", "bn1_beta", "bn1_moving_mean", "bn1_moving_var", "bn1_output"]
    drop = rm.sym.Dropout(rm.sym.Variable("data"), name="dr")
    assert drop.get_internals().list_outputs() == ["data", "dr_output"]


def test_get_internals_and_selecting_an_internal_output():
    net = _bn_net()
    internals = net.get_internals()
    assert internals.list_outputs() == [
        "data", "fc1_weight", "fc1_bias", "fc1_output", "bn1_gamma", "bn1_beta",
        "bn1_moving_mean", "bn1_moving_var", "bn1_output", "relu1_output", "fc2_weight",
        "fc2_bias", "fc2_output", "softmax_label", "softmax_output"]
    feature = internals["relu1_output"]
    assert feature.list_outputs() == ["relu1_output"]
    assert feature.list_arguments() == ["data", "fc1_weight", "fc1_bias", "bn1_gamma",
                                        "bn1_beta"]
    assert feature.list_auxiliary_states() == ["bn1_moving_mean", "bn1_moving_var"]
    assert feature.infer_shape(data=(5, 7))[1] == [(5, 4)]


def test_getitem_by_index_name_and_slice():
    a, b = rm.sym.Variable("a"), rm.sym.Variable("b")
    fc = rm.sym.FullyConnected(a, num_hidden=2, name="fc")
    g = rm.sym.Group([fc, a, b])
    assert g[0].name == "fc" and g[-1].name == "b"
    assert g["fc_output"].name == "fc" and g["a"].name == "a"
    assert g[1:].list_outputs() == ["a", "b"]


def test_getitem_errors_are_mxnets():
    a = rm.sym.Variable("a")
    g = rm.sym.Group([a, a])
    with pytest.raises(ValueError, match='Cannot find output that matches name "nope"'):
        g["nope"]
    with pytest.raises(ValueError, match='There are multiple outputs with name "a"'):
        g["a"]
    with pytest.raises(IndexError):
        g[2]
    with pytest.raises(TypeError, match="only support integer index"):
        g[1.0]


def test_group_orders_outputs_and_checks_its_input():
    a, b = rm.sym.Variable("a"), rm.sym.Variable("b")
    fc = rm.sym.FullyConnected(a, num_hidden=2, name="fc")
    g = rm.sym.Group([rm.sym.Group([b, fc]), a])
    assert g.list_outputs() == ["b", "fc_output", "a"]
    assert g.list_arguments() == ["b", "a", "fc_weight", "fc_bias"]
    assert g.name is None
    with pytest.raises(TypeError, match="list of Symbols"):
        rm.sym.Group([a, "b"])
    with pytest.raises(ValueError, match="at least one"):
        rm.sym.Group([])


def test_get_children():
    a, b = rm.sym.Variable("a"), rm.sym.Variable("b")
    fc = rm.sym.FullyConnected(a, num_hidden=2, name="fc")
    assert fc.get_children().list_outputs() == ["a", "fc_weight", "fc_bias"]
    assert a.get_children() is None
    assert rm.sym.Group([a, b]).get_children() is None
    act = rm.sym.Activation(b, act_type="relu", name="act")
    assert rm.sym.Group([fc, act]).get_children().list_outputs() == \
        ["a", "fc_weight", "fc_bias", "b"]
    sp = rm.sym.SliceChannel(a, num_outputs=2, name="sp")
    assert sp.get_children().list_outputs() == ["a"]       # the node's inputs once


def test_attr_and_list_attr_and_attr_dict():
    data = rm.sym.Variable("data", attr={"mood": "angry"})
    op = rm.sym.Convolution(data=data, name="conv", kernel=(1, 1), num_filter=1,
                            attr={"__mood__": "so so", "lr_mult": "1"})
    assert op.attr("kernel") == "(1, 1)"
    assert op.attr("__mood__") == "so so"
    assert op.attr("mood") is None
    assert op.attr("lr_mult") == "1"
    assert op.attr("name") == "conv"
    assert op.list_attr() == {"kernel": "(1, 1)", "num_filter": "1", "__mood__": "so so",
                              "__lr_mult__": "1", "lr_mult": "1"}
    d = op.attr_dict()
    assert d["data"] == {"mood": "angry"}
    assert d["conv"] == d["conv_weight"] == d["conv_bias"] == op.list_attr()
    with pytest.raises(DeprecationWarning):
        op.list_attr(recursive=True)


def test_attr_of_a_group_of_nodes_is_none():
    g = rm.sym.Group([rm.sym.Variable("a", lr_mult=1), rm.sym.Variable("b")])
    assert g.attr("lr_mult") is None
    assert g.list_attr() == {"__lr_mult__": "1", "lr_mult": "1"}    # the first node's


def test_set_attr():
    a = rm.sym.Variable("a")
    a._set_attr(ctx_group="g1", __layout__="NC")
    assert a.list_attr() == {"__ctx_group__": "g1", "ctx_group": "g1", "__layout__": "NC"}
    with pytest.raises(ValueError, match="only accepts string values"):
        a._set_attr(__layout__=1)
    with pytest.raises(MXNetError, match="only works for non-grouped symbol"):
        rm.sym.Group([a, rm.sym.Variable("b")])._set_attr(__x__="1")


def test_copy_is_independent():
    fc = rm.sym.FullyConnected(rm.sym.Variable("a"), num_hidden=2, name="fc")
    for dup in (copy.copy(fc), copy.deepcopy(fc)):
        dup._set_attr(__z__="1")
        assert dup.attr("__z__") == "1"
        assert fc.attr("__z__") is None
        assert dup.list_arguments() == fc.list_arguments()


def test_pickle_round_trip():
    net = _bn_net()
    back = pickle.loads(pickle.dumps(net))
    assert back.tojson() == net.tojson()
    assert back.list_auxiliary_states() == net.list_auxiliary_states()


def test_repr_and_truth_value():
    a = rm.sym.Variable("a")
    fc = rm.sym.FullyConnected(a, num_hidden=2, name="fc")
    assert repr(a) == "<Symbol a>"
    assert repr(rm.sym.Group([a, fc])) == "<Symbol group [a, fc]>"    # node names
    assert repr(rm.sym.Group([a, a])) == "<Symbol a>"                 # one node
    with pytest.raises(NotImplementedError):
        bool(a)
