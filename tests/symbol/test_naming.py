"""Node names and auto-created arguments (reference 11.2 and 12.1).

Every expectation here was checked against MXNet 1.9.1.
"""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError


def _node(sym):
    return sym._heads[0][0]


def test_auto_names_count_per_hint():
    with rm.name.NameManager():
        data = rm.sym.Variable("data")
        fc0 = rm.sym.FullyConnected(data, num_hidden=2)
        act0 = rm.sym.Activation(fc0, act_type="relu")
        fc1 = rm.sym.FullyConnected(act0, num_hidden=2)
        act1 = rm.sym.Activation(fc1, act_type="relu")
        out = rm.sym.SoftmaxOutput(act1)
    assert [s.name for s in (fc0, act0, fc1, act1, out)] == \
        ["fullyconnected0", "activation0", "fullyconnected1", "activation1", "softmaxoutput0"]
    assert out.list_arguments() == [
        "data", "fullyconnected0_weight", "fullyconnected0_bias",
        "fullyconnected1_weight", "fullyconnected1_bias", "softmaxoutput0_label"]


def test_the_hint_is_the_function_name():
    # Softmax is an alias of SoftmaxOutput, softmax another op: the hint follows the
    # Python name, so Softmax and softmax share the counter 'softmax'.
    with rm.name.NameManager():
        a = rm.sym.Variable("a")
        assert rm.sym.Softmax(a).name == "softmax0"
        assert rm.sym.SoftmaxOutput(a).name == "softmaxoutput0"
        assert rm.sym.softmax(a).name == "softmax1"
        assert rm.sym.elemwise_add(a, a).name == "elemwise_add0"


def test_name_manager_scope_is_fresh_and_restored():
    a = rm.sym.Variable("a")
    with rm.name.NameManager():
        assert rm.sym.Activation(a, act_type="relu").name == "activation0"
        with rm.name.NameManager():
            assert rm.sym.Activation(a, act_type="relu").name == "activation0"
        assert rm.sym.Activation(a, act_type="relu").name == "activation1"


def test_given_names_do_not_use_the_counter():
    with rm.name.NameManager():
        a = rm.sym.Variable("a")
        assert rm.sym.Activation(a, act_type="relu", name="r").name == "r"
        assert rm.sym.Activation(a, act_type="relu").name == "activation0"


def test_prefix_applies_to_auto_and_given_names_not_variables():
    with rm.name.NameManager():
        a = rm.sym.Variable("a")
        with rm.name.Prefix("p_"):
            auto = rm.sym.FullyConnected(a, num_hidden=2)
            named = rm.sym.FullyConnected(a, num_hidden=2, name="named")
            var = rm.sym.Variable("zz")
    assert (auto.name, named.name, var.name) == ("p_fullyconnected0", "p_named", "zz")
    assert auto.list_arguments() == ["a", "p_fullyconnected0_weight", "p_fullyconnected0_bias"]


def test_auto_created_arguments_copy_the_op_attributes():
    data = rm.sym.Variable("data")
    fc = rm.sym.FullyConnected(data, num_hidden=4, name="fc1", lr_mult=0, __layout__="NC")
    assert fc.list_arguments() == ["data", "fc1_weight", "fc1_bias"]
    attrs = fc.attr_dict()
    want = {"num_hidden": "4", "__lr_mult__": "0", "lr_mult": "0", "__layout__": "NC"}
    assert attrs["fc1"] == attrs["fc1_weight"] == attrs["fc1_bias"] == want
    assert "data" not in attrs
    loss = rm.sym.SoftmaxOutput(fc, name="softmax")
    assert loss.list_arguments()[-1] == "softmax_label"
    assert "softmax_label" not in loss.attr_dict()     # SoftmaxOutput given no attributes


def test_auto_created_inputs_get_the_op_input_attributes():
    bn = rm.sym.BatchNorm(rm.sym.Variable("data"), name="bn1", momentum=0.8)
    attrs = bn.attr_dict()
    assert attrs["bn1_moving_mean"] == {"momentum": "0.8", "__init__": '["zero", {}]'}
    assert attrs["bn1_moving_var"] == {"momentum": "0.8", "__init__": '["one", {}]'}
    assert attrs["bn1_gamma"] == {"momentum": "0.8"}
    pr = rm.sym.LeakyReLU(rm.sym.Variable("data"), act_type="prelu", name="pr")
    assert pr.attr_dict()["pr_gamma"]["__init__"] == '["Constant", {"value": 0.25}]'


def test_attr_scope_attributes_reach_the_op_and_its_arguments():
    with rm.AttrScope(ctx_group="dev1", __mood__="calm"):
        fc = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=2, name="fc")
    attrs = fc.attr_dict()
    assert attrs["fc"] == attrs["fc_weight"] == {
        "num_hidden": "2", "__ctx_group__": "dev1", "ctx_group": "dev1", "__mood__": "calm"}
    assert attrs["data"] == {"__ctx_group__": "dev1", "ctx_group": "dev1", "__mood__": "calm"}


def test_plain_attributes_on_an_op_are_parameters():
    a = rm.sym.Variable("a")
    # MXNet passes attr= entries to the op like keyword parameters (attr wins).
    fc = rm.sym.FullyConnected(a, num_hidden=2, name="fc", attr={"num_hidden": "5"})
    assert fc.attr("num_hidden") == "5"
    assert fc.infer_shape(a=(1, 3))[1] == [(1, 5)]
    with pytest.raises(TypeError, match="FullyConnected 'fc': unknown attribute 'mood'"):
        rm.sym.FullyConnected(a, num_hidden=2, name="fc", attr={"mood": "angry"})
    with pytest.raises(TypeError, match="unknown attribute 'group'"):
        with rm.AttrScope(group="4"):
            rm.sym.FullyConnected(a, num_hidden=2, name="fc")


def test_hidden_keys_on_ops_and_the_deprecated_input_form():
    a = rm.sym.Variable("a")
    fc = rm.sym.FullyConnected(a, num_hidden=2, name="fc", attr={"wd_mult": "x"})
    assert fc.attr("__wd_mult__") == "x"
    with pytest.raises(MXNetError, match="setting variable attributes with weight_lr_mult"):
        rm.sym.FullyConnected(a, num_hidden=2, name="fc", weight_lr_mult=2)


def test_none_input_means_auto_create():
    fc = rm.sym.FullyConnected(rm.sym.Variable("a"), weight=None, num_hidden=2, name="fcz")
    assert fc.list_arguments() == ["a", "fcz_weight", "fcz_bias"]


def test_inputs_by_keyword_and_given_arguments():
    w = rm.sym.Variable("shared_w", lr_mult=2)
    fc = rm.sym.FullyConnected(data=rm.sym.Variable("x"), weight=w, num_hidden=3, name="fc")
    assert fc.list_arguments() == ["x", "shared_w", "fc_bias"]
    assert fc.attr_dict()["shared_w"] == {"__lr_mult__": "2", "lr_mult": "2"}


# expression -> (op, node name, attributes), as MXNet 1.9.1 builds them
PYTHON_OPERATORS = [
    ("a + b", "elemwise_add", "_plus0", {}),
    ("a - b", "elemwise_sub", "_minus0", {}),
    ("a * b", "elemwise_mul", "_mul0", {}),
    ("a / b", "elemwise_div", "_div0", {}),
    ("a ** b", "_power", "_power0", {}),
    ("a + 2", "_plus_scalar", "_plusscalar0", {"scalar": "2"}),
    ("2 + a", "_plus_scalar", "_plusscalar0", {"scalar": "2"}),
    ("a - 2", "_minus_scalar", "_minusscalar0", {"scalar": "2"}),
    ("2 - a", "_rminus_scalar", "_rminusscalar0", {"scalar": "2"}),
    ("a * 2", "_mul_scalar", "_mulscalar0", {"scalar": "2"}),
    ("a * 2.0", "_mul_scalar", "_mulscalar0", {"scalar": "2.0"}),
    ("2 * a", "_mul_scalar", "_mulscalar0", {"scalar": "2"}),
    ("a / 2", "_div_scalar", "_divscalar0", {"scalar": "2"}),
    ("2 / a", "_rdiv_scalar", "_rdivscalar0", {"scalar": "2"}),
    ("a ** 2", "_power_scalar", "_powerscalar0", {"scalar": "2"}),
    ("2 ** a", "_rpower_scalar", "_rpower_scalar0", {"scalar": "2"}),
    ("-a", "_mul_scalar", "_mulscalar0", {"scalar": "-1.0"}),
    ("a * np.float32(0.5)", "_mul_scalar", "_mulscalar0", {"scalar": "0.5"}),
]


@pytest.mark.parametrize("expr, op, name, attrs", PYTHON_OPERATORS,
                         ids=[e[0] for e in PYTHON_OPERATORS])
def test_python_operators(expr, op, name, attrs):
    with rm.name.NameManager():
        a, b = rm.sym.Variable("a"), rm.sym.Variable("b")
        node = _node(eval(expr, {"a": a, "b": b, "np": np}))
    assert (node.op.op_name, node.name, node.attrs) == (op, name, attrs)


def test_python_operators_share_counters():
    with rm.name.NameManager():
        a = rm.sym.Variable("a")
        assert [s.name for s in (a + 1, 1 + a, a + a, a + a)] == \
            ["_plusscalar0", "_plusscalar1", "_plus0", "_plus1"]


def test_python_operators_reject_other_types():
    a = rm.sym.Variable("a")
    for bad in (True, "2", [1, 2], None):
        with pytest.raises(TypeError):
            a + bad


def test_positional_values_after_the_inputs_are_attributes_in_declared_order():
    a = rm.sym.Variable("a")
    assert rm.sym.FullyConnected(a, 3, name="fc").attr_dict()["fc"]["num_hidden"] == "3"
    assert rm.sym.Dropout(a, 0.25, name="d").attr_dict()["d"]["p"] == "0.25"
    with pytest.raises(TypeError, match="given by position and keyword"):
        rm.sym.FullyConnected(a, 3, num_hidden=4)
    with pytest.raises(TypeError, match="positional Symbol after attribute values"):
        rm.sym.Dropout(a, 0.5, a)


def test_zeros_and_ones_are_named_as_mxnet_internal_ops():
    with rm.name.NameManager():
        z = rm.sym.zeros((2, 3))
        o = rm.sym.ones(shape=(2, 3))
    assert z.name == "_zeros0" and o.name == "_ones0"


def test_bad_inputs_name_the_op():
    a = rm.sym.Variable("a")
    with pytest.raises(TypeError, match=r"FullyConnected 'fc': unknown input\(s\) \['wieght'\]"):
        rm.sym.FullyConnected(a, wieght=a, num_hidden=2, name="fc")
    with pytest.raises(TypeError, match="'fc': input 'data' given both by position and by "
                                        "keyword"):
        rm.sym.FullyConnected(a, data=a, num_hidden=2, name="fc")
    group = rm.sym.Group([a, a])
    with pytest.raises(TypeError, match="'fc': input 'data' must have one output"):
        rm.sym.FullyConnected(group, num_hidden=2, name="fc")
    with pytest.raises(TypeError, match="'fc': required attribute 'num_hidden' is missing"):
        rm.sym.FullyConnected(a, name="fc")
