"""Symbol JSON: MXNet 1.9.1's layout byte for byte, reading MXNet's files (also legacy
ones), malformed input, and save/load (reference 11.2).

`mxnet_json/` holds files written by a real MXNet 1.9.1 from the builders in
mxnet_graphs.py (regenerate with make_mxnet_json.py); tests/fixtures/mxnet/ holds
the checkpoint fixtures made by tests/fixtures/mxnet/make_fixtures.py.
"""
import json
import os

import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from tests.symbol.mxnet_graphs import GRAPHS, build

HERE = os.path.dirname(os.path.abspath(__file__))
MX_JSON = os.path.join(HERE, "mxnet_json")
FIXTURES = os.path.join(HERE, "..", "fixtures", "mxnet")
with open(os.path.join(MX_JSON, "expected.json")) as _f:
    EXPECTED = json.load(_f)


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _mlp_bn(hidden, classes):
    data = rm.sym.Variable("data")
    net = rm.sym.FullyConnected(data, name="fc1", num_hidden=hidden)
    net = rm.sym.BatchNorm(net, name="bn1")
    net = rm.sym.Activation(net, name="relu1", act_type="relu")
    net = rm.sym.FullyConnected(net, name="fc2", num_hidden=classes)
    return rm.sym.SoftmaxOutput(net, name="softmax")


# ------------------------------------------------------------------ writing

@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_tojson_is_mxnets_text(name):
    sym = build(name, rm.sym, rm.name, rm.AttrScope)
    assert sym.tojson() == _read(os.path.join(MX_JSON, f"{name}-symbol.json"))


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_queries_answer_as_mxnet(name):
    sym = build(name, rm.sym, rm.name, rm.AttrScope)
    want = EXPECTED[name]
    shapes = GRAPHS[name][1]
    assert sym.list_arguments() == want["list_arguments"]
    assert sym.list_outputs() == want["list_outputs"]
    assert sym.list_auxiliary_states() == want["list_auxiliary_states"]
    assert sym.attr_dict() == want["attr_dict"]
    got = sym.infer_shape_partial(**shapes)
    assert [[list(s) for s in part] for part in got] == want["infer_shape_partial"]
    types = sym.infer_type(**{k: "float32" for k in shapes})
    assert [[np.dtype(t).name for t in part] for part in types] == want["infer_type"]


def test_mlp_bn_checkpoint_fixture_is_byte_identical():
    assert _mlp_bn(16, 3).tojson() == _read(os.path.join(FIXTURES, "mlp_bn-symbol.json"))


# The example of reference section 11.2 (a real 1.9.1 file, formatting abbreviated there).
REFERENCE_EXAMPLE = r'''
{"nodes": [
  {"op": "null", "name": "data", "inputs": []},
  {"op": "null", "name": "fc1_weight", "attrs": {"num_hidden": "4"}, "inputs": []},
  {"op": "null", "name": "fc1_bias", "attrs": {"num_hidden": "4"}, "inputs": []},
  {"op": "FullyConnected", "name": "fc1", "attrs": {"num_hidden": "4"}, "inputs": [[0,0,0],[1,0,0],[2,0,0]]},
  {"op": "null", "name": "bn1_gamma", "inputs": []},
  {"op": "null", "name": "bn1_beta", "inputs": []},
  {"op": "null", "name": "bn1_moving_mean", "attrs": {"__init__": "[\"zero\", {}]"}, "inputs": []},
  {"op": "null", "name": "bn1_moving_var", "attrs": {"__init__": "[\"one\", {}]"}, "inputs": []},
  {"op": "BatchNorm", "name": "bn1", "inputs": [[3,0,0],[4,0,0],[5,0,0],[6,0,1],[7,0,1]]},
  {"op": "Activation", "name": "relu1", "attrs": {"act_type": "relu"}, "inputs": [[8,0,0]]},
  {"op": "null", "name": "fc2_weight", "attrs": {"num_hidden": "3"}, "inputs": []},
  {"op": "null", "name": "fc2_bias", "attrs": {"num_hidden": "3"}, "inputs": []},
  {"op": "FullyConnected", "name": "fc2", "attrs": {"num_hidden": "3"}, "inputs": [[9,0,0],[10,0,0],[11,0,0]]},
  {"op": "null", "name": "softmax_label", "inputs": []},
  {"op": "SoftmaxOutput", "name": "softmax", "inputs": [[12,0,0],[13,0,0]]}],
 "arg_nodes": [0, 1, 2, 4, 5, 6, 7, 10, 11, 13],
 "node_row_ptr": [0,1,2,3,4,5,6,7,8,11,12,13,14,15,16,17],
 "heads": [[14, 0, 0]],
 "attrs": {"mxnet_version": ["int", 10901]}}
'''


def test_reference_example_layout():
    ours = json.loads(_mlp_bn(4, 3).tojson())
    ref = json.loads(REFERENCE_EXAMPLE)
    assert list(ours) == ["nodes", "arg_nodes", "node_row_ptr", "heads", "attrs"]
    for key in ("nodes", "arg_nodes", "node_row_ptr", "heads", "attrs"):
        assert ours[key] == ref[key], key
    assert [list(n) for n in ours["nodes"][:2]] == [["op", "name", "inputs"],
                                                    ["op", "name", "attrs", "inputs"]]


def test_reference_example_loads():
    sym = rm.sym.load_json(REFERENCE_EXAMPLE)
    assert sym.list_auxiliary_states() == ["bn1_moving_mean", "bn1_moving_var"]
    assert json.loads(sym.tojson()) == json.loads(REFERENCE_EXAMPLE)


# ------------------------------------------------------------------ reading MXNet's files

@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_mxnet_files_load_and_save_back_unchanged(name):
    text = _read(os.path.join(MX_JSON, f"{name}-symbol.json"))
    sym = rm.sym.load_json(text)
    assert sym.list_arguments() == EXPECTED[name]["list_arguments"]
    assert sym.list_outputs() == EXPECTED[name]["list_outputs"]
    assert sym.tojson() == text


def test_checkpoint_fixture_loads_binds_and_runs():
    sym = rm.sym.load(os.path.join(FIXTURES, "mlp_bn_ckpt-symbol.json"))
    exe = sym.simple_bind(rm.cpu(), data=(2, 5))
    out = exe.forward(is_train=False, data=np.ones((2, 5), np.float32))[0]
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-6)    # softmax rows


def test_small_cnn_fixture_round_trip():
    path = os.path.join(FIXTURES, "small_cnn-symbol.json")
    mx_doc = json.loads(_read(path))
    ours = json.loads(rm.sym.load(path).tojson())
    # node_row_ptr counts hidden outputs and is ignored by readers (11.2); MXNet's
    # MKLDNN wheel counts a hidden workspace output for Pooling, raymod does not.
    for key in ("nodes", "arg_nodes", "heads", "attrs"):
        assert ours[key] == mx_doc[key], key


ALIASES = [("Softmax", "SoftmaxOutput"), ("_Plus", "elemwise_add"), ("_plus", "elemwise_add"),
           ("_add", "elemwise_add"), ("_Mul", "elemwise_mul"), ("flatten", "Flatten"),
           ("stop_gradient", "BlockGrad"), ("_MulScalar", "_mul_scalar")]


@pytest.mark.parametrize("alias, canonical", ALIASES, ids=[a for a, _ in ALIASES])
def test_alias_op_names_are_read_and_written_canonically(alias, canonical):
    cls = rm.ops.get_op_class(canonical)
    n_in = len(cls(node_name="x", **({"scalar": "2"} if "scalar" in cls.params else {}))
               .list_inputs())
    attrs = ', "attrs": {"scalar": "2"}' if "scalar" in cls.params else ""
    nodes = [f'{{"op": "null", "name": "v{i}", "inputs": []}}' for i in range(n_in)]
    inputs = ", ".join(f"[{i}, 0, 0]" for i in range(n_in))
    nodes.append(f'{{"op": "{alias}", "name": "n"{attrs}, "inputs": [{inputs}]}}')
    text = f'{{"nodes": [{", ".join(nodes)}], "heads": [[{n_in}, 0, 0]], ' \
           f'"attrs": {{"mxnet_version": ["int", 10901]}}}}'
    sym = rm.sym.load_json(text)
    assert sym._heads[0][0].op.op_name == canonical
    assert json.loads(sym.tojson())["nodes"][-1]["op"] == canonical


LEGACY_0_8 = '''{"nodes": [
 {"op": "null", "name": "data", "inputs": []},
 {"op": "null", "name": "bn_gamma", "param": {}, "inputs": [], "backward_source_id": -1},
 {"op": "null", "name": "bn_beta", "inputs": [], "backward_source_id": -1},
 {"op": "BatchNorm", "name": "bn", "param": {"eps": "0.001", "fix_gamma": "True"},
  "attr": {"lr_mult": "2"}, "inputs": [[0, 0], [1, 0], [2, 0]], "backward_source_id": -1},
 {"op": "null", "name": "fc_weight", "attr": {"wd_mult": "0"}, "inputs": []},
 {"op": "FullyConnected", "name": "fc", "param": {"num_hidden": "3", "no_bias": "True"},
  "attr": {"weight_lr_mult": "0.1"}, "inputs": [[3, 0], [4, 0]]},
 {"op": "null", "name": "sm_label", "inputs": []},
 {"op": "Softmax", "name": "sm", "param": {"grad_scale": "1"}, "inputs": [[5, 0], [6, 0]]}
], "arg_nodes": [0, 1, 2, 4, 6], "heads": [[7, 0]]}'''


def test_legacy_file_is_upgraded_as_mxnet_does():
    # No version (0.8.0), 'param'/'attr' keys, 2-element entries, BatchNorm without aux
    # inputs, plain and per-input hidden keys; the expectations are MXNet 1.9.1's.
    sym = rm.sym.load_json(LEGACY_0_8)
    assert sym.list_arguments() == ["data", "bn_gamma", "bn_beta", "fc_weight", "sm_label"]
    assert sym.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    bn = {"__lr_mult__": "2", "lr_mult": "2", "eps": "0.001", "fix_gamma": "True"}
    assert sym.attr_dict() == {
        "bn_moving_mean": {"__init__": '["zero", {}]', **bn},
        "bn_moving_var": {"__init__": '["one", {}]', **bn},
        "bn": bn,
        "fc_weight": {"__lr_mult__": "0.1", "lr_mult": "0.1", "__wd_mult__": "0",
                      "wd_mult": "0"},
        "fc": {"num_hidden": "3", "no_bias": "True"},
        "sm": {"grad_scale": "1"}}
    doc = json.loads(sym.tojson())
    assert doc["attrs"] == {"mxnet_version": ["int", 10901]}
    assert doc["nodes"][-1]["op"] == "SoftmaxOutput"
    assert all(len(e) == 3 for n in doc["nodes"] for e in n["inputs"])
    assert sym.infer_shape(data=(2, 3, 4))[2] == [(3,), (3,)]


def test_attrs_wins_over_attr_and_param():
    text = '''{"nodes": [{"op": "null", "name": "x", "inputs": []},
      {"op": "Activation", "name": "a", "param": {"act_type": "tanh"},
       "attr": {"act_type": "sigmoid"}, "attrs": {"act_type": "relu"}, "inputs": [[0, 0]]}],
      "heads": [[1, 0]], "attrs": {"mxnet_version": ["int", 10901]}}'''
    assert rm.sym.load_json(text).attr("act_type") == "relu"


# ------------------------------------------------------------------ malformed input

def _doc(nodes, heads="[[1, 0, 0]]"):
    return f'{{"nodes": [{{"op": "null", "name": "x", "inputs": []}}, {nodes}], ' \
           f'"heads": {heads}, "attrs": {{"mxnet_version": ["int", 10901]}}}}'


MALFORMED = [
    ("not json", "{nodes", "not JSON"),
    ("no nodes", '{"heads": []}', "expected an object with 'nodes' and 'heads'"),
    ("bad entry", _doc('{"op": "Activation", "name": "act", "attrs": {"act_type": "relu"}, '
                       '"inputs": [["0", 0, 0]]}'),
     r"node 1 'act': entry should be \[node, output"),
    ("forward reference", _doc('{"op": "Activation", "name": "act", "attrs": {"act_type": '
                               '"relu"}, "inputs": [[1, 0, 0]]}'),
     r"node 1 'act': entry \[1, 0, 0\] refers to node 1, which is not an earlier node"),
    ("unknown op", _doc('{"op": "NoSuchOp", "name": "mystery", "inputs": [[0, 0, 0]]}'),
     r"node 1 'mystery' \(op 'NoSuchOp'\): unknown operator 'NoSuchOp'"),
    ("wrong input count", _doc('{"op": "FullyConnected", "name": "fc", "attrs": '
                               '{"num_hidden": "2"}, "inputs": [[0, 0, 0]]}'),
     r"node 1 'fc' \(op 'FullyConnected'\): takes inputs \['data', 'weight', 'bias'\], "
     r"received 1"),
    ("bad attribute", _doc('{"op": "Activation", "name": "act", "attrs": {"act_type": '
                           '"wiggle"}, "inputs": [[0, 0, 0]]}'),
     r"node 1 'act' \(op 'Activation'\): .*act_type"),
    ("output out of range", _doc('{"op": "Activation", "name": "act", "attrs": {"act_type": '
                                 '"relu"}, "inputs": [[0, 1, 0]]}'),
     r"node 1 'act'.*reads output 1 of 'x', which has 1"),
    ("variable with inputs", _doc('{"op": "null", "name": "v", "inputs": [[0, 0, 0]]}'),
     r"node 1 'v': a variable has no inputs"),
    ("head out of range", _doc('{"op": "null", "name": "v", "inputs": []}', "[[5, 0, 0]]"),
     r"heads: entry \[5, 0, 0\] refers to node 5"),
    ("bad version", '{"nodes": [], "heads": [], "attrs": {"mxnet_version": "1.9"}}',
     r"attrs.mxnet_version should be \['int', N\], received '1.9'"),
]


@pytest.mark.parametrize("text, pattern", [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_json_raises_naming_the_node(text, pattern):
    with pytest.raises(MXNetError, match="malformed symbol JSON: " + pattern):
        rm.sym.load_json(text)


def test_load_arguments_must_be_text_or_paths():
    with pytest.raises(TypeError, match="json_str must be a str"):
        rm.sym.load_json(b"{}")
    with pytest.raises(TypeError, match="fname must be a path"):
        rm.sym.load(3)


# ------------------------------------------------------------------ files

def test_save_load_round_trip(tmp_path):
    sym = _mlp_bn(5, 2)
    fname = tmp_path / "net-symbol.json"
    sym.save(str(fname))
    assert fname.read_text() == sym.tojson()
    back = rm.sym.load(str(fname))
    assert back.tojson() == sym.tojson()
    assert rm.sym.load(fname).list_auxiliary_states() == sym.list_auxiliary_states()


def test_save_is_atomic(tmp_path, monkeypatch):
    fname = tmp_path / "net-symbol.json"
    fname.write_text("previous content")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        _mlp_bn(5, 2).save(str(fname))
    assert fname.read_text() == "previous content"        # never half-written
    assert os.listdir(tmp_path) == ["net-symbol.json"]    # no temporary file left
