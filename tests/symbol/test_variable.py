"""rm.sym.Variable / var: the attributes it stores, and AttrScope merging (reference 12.1).

Expected strings are what MXNet 1.9.1 stores for the same calls.
"""
import pickle

import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError


def test_var_is_variable():
    assert rm.sym.var is rm.sym.Variable
    v = rm.sym.var("x")
    assert v.name == "x"
    assert v.list_arguments() == ["x"]
    assert v.list_outputs() == ["x"]
    assert v.list_attr() == {}


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="string for variable `name`"):
        rm.sym.Variable(3)


def test_stored_attributes_are_mxnets_strings():
    v = rm.sym.Variable("v", shape=(2, 3), lr_mult=0.5, wd_mult=2, dtype="float16",
                        init='["zero", {}]', stype="csr", __layout__="NC")
    assert v.list_attr() == {
        "__shape__": "(2, 3)", "__lr_mult__": "0.5", "lr_mult": "0.5",
        "__wd_mult__": "2", "wd_mult": "2", "__dtype__": "2",
        "__init__": '["zero", {}]', "__storage_type__": "2", "__layout__": "NC"}


def test_shape_is_stored_as_given():
    # MXNet stores str(shape): a list stays a list, and it still parses as a shape.
    v = rm.sym.Variable("v", shape=[2, 3])
    assert v.attr("__shape__") == "[2, 3]"
    arg_shapes, _, _ = v.infer_shape()
    assert arg_shapes == [(2, 3)]
    numpy_dims = rm.sym.Variable("v", shape=(np.int64(2), np.int32(3)))
    assert numpy_dims.attr("__shape__") == "(2, 3)"


@pytest.mark.parametrize("dtype, flag", [("float32", "0"), (np.float64, "1"), ("float16", "2"),
                                         ("uint8", "3"), (np.int32, "4"), ("int8", "5"),
                                         ("int64", "6")])
def test_dtype_is_the_mxnet_type_flag(dtype, flag):
    assert rm.sym.Variable("v", dtype=dtype).attr("__dtype__") == flag


@pytest.mark.parametrize("stype, sid", [("default", "0"), ("row_sparse", "1"), ("csr", "2")])
def test_storage_type_ids(stype, sid):
    assert rm.sym.Variable("v", stype=stype).attr("__storage_type__") == sid


def test_unknown_storage_type():
    with pytest.raises(ValueError, match="stype must be one of .* received 'dense'"):
        rm.sym.Variable("v", stype="dense")


def test_init_object_is_stored_by_dumps():
    class Custom:
        def dumps(self):
            return '["custom", {"k": 1}]'

    assert rm.sym.Variable("v", init=Custom()).attr("__init__") == '["custom", {"k": 1}]'
    # A real initializer: the same string MXNet 1.9.1 writes for Xavier(magnitude=3).
    xavier = rm.sym.Variable("w", init=rm.init.Xavier(magnitude=3))
    assert xavier.attr("__init__") == \
        '["xavier", {"rnd_type": "uniform", "factor_type": "avg", "magnitude": 3}]'


def test_extra_keyword_attributes_must_be_dunder():
    v = rm.sym.Variable("v", __layout__="NCHW", __mood__=3)
    assert v.attr("__layout__") == "NCHW"
    assert v.attr("__mood__") == "3"
    with pytest.raises(ValueError, match="Attribute name=layout is not supported"):
        rm.sym.Variable("v", layout="NCHW")


def test_attr_dict_argument_keeps_plain_keys_and_hides_hidden_ones():
    v = rm.sym.Variable("v", attr={"dtype": "data", "group": "1", "force_mirroring": "True"},
                        lr_mult=1)
    assert v.attr("group") == "1"
    assert v.attr("dtype") == "data"                     # a plain key, not __dtype__
    assert v.attr("__force_mirroring__") == "True"
    assert v.attr("force_mirroring") == "True"           # hidden keys answer plainly too
    assert v.attr("lr_mult") == "1" and v.attr("__lr_mult__") == "1"
    assert "__group__" not in v.list_attr()


def test_deprecated_prefixed_hidden_key():
    with pytest.raises(MXNetError, match="setting variable attributes with xlr_mult is "
                                         "deprecated"):
        rm.sym.Variable("v", attr={"xlr_mult": "2"})


def test_attr_values_must_be_strings():
    with pytest.raises(ValueError, match="only accepts string values"):
        rm.sym.Variable("v", attr={"group": 1})


def test_attr_scope_merging():
    # MXNet's test_attr_basic: scope values apply, explicit ones win, scopes nest.
    with rm.AttrScope(group="4", data="great"):
        data = rm.sym.Variable("data", attr={"group": "1"})
        gdata = rm.sym.Variable("data2")
        with rm.AttrScope(data="inner", ctx_group="dev1"):
            inner = rm.sym.Variable("data3")
    outside = rm.sym.Variable("data4")
    assert gdata.attr("group") == "4" and gdata.attr("data") == "great"
    assert data.attr("group") == "1" and data.attr("data") == "great"
    assert inner.list_attr() == {"group": "4", "data": "inner",
                                 "__ctx_group__": "dev1", "ctx_group": "dev1"}
    assert outside.list_attr() == {}


def test_attr_scope_is_rm_attribute_attr_scope():
    assert rm.AttrScope is rm.attribute.AttrScope is rm.sym.AttrScope


def test_attr_scope_values_must_be_strings():
    with pytest.raises(ValueError, match="must be strings"):
        rm.AttrScope(ctx_group=1)


def test_attr_scope_is_restored_after_an_exception():
    with pytest.raises(RuntimeError):
        with rm.AttrScope(group="x"):
            raise RuntimeError("boom")
    assert rm.sym.Variable("v").list_attr() == {}


def test_lr_mult_and_wd_mult_keep_the_python_text():
    assert rm.sym.Variable("v", lr_mult=0).attr("__lr_mult__") == "0"
    assert rm.sym.Variable("v", wd_mult=1e-3).attr("__wd_mult__") == "0.001"


def test_variable_pickles_with_its_attributes():
    v = rm.sym.Variable("v", shape=(2, 3), lr_mult=2, __layout__="NC")
    back = pickle.loads(pickle.dumps(v))
    assert back.list_attr() == v.list_attr()
    assert back.tojson() == v.tojson()
