"""Symbol JSON in MXNet 1.x's layout (nnvm SaveJSON), and a reader for MXNet's files."""
import json

from ..base import MXNetError
from ..ops import get_op_class
from .node import Node, aux_variable_ids, topo_order
from .symbol import Symbol

MXNET_VERSION = 10901           # written as MXNet 1.9.1 does
_LEGACY_META = ("lr_mult", "wd_mult", "ctx_group", "force_mirroring", "mirror_stage")


def to_json(symbol):
    order = topo_order(symbol._heads)
    index = {id(n): i for i, n in enumerate(order)}
    aux = aux_variable_ids(order)
    nodes, row_ptr = [], [0]
    for node in order:
        entry = {"op": "null" if node.is_variable else node.op.op_name, "name": node.name}
        if node.attrs:
            entry["attrs"] = {k: node.attrs[k] for k in sorted(node.attrs)}
        aux_slots = set(node.aux_input_slots())
        entry["inputs"] = [[index[id(src)], i, int(slot in aux_slots and id(src) in aux)]
                           for slot, (src, i) in enumerate(node.inputs)]
        nodes.append(entry)
        hidden = 0 if node.is_variable else node.op.num_hidden_outputs
        row_ptr.append(row_ptr[-1] + node.num_outputs + hidden)
    doc = {
        "nodes": nodes,
        "arg_nodes": [i for i, n in enumerate(order) if n.is_variable],
        "node_row_ptr": row_ptr,
        "heads": [[index[id(n)], i, 0] for n, i in symbol._heads],
        "attrs": {"mxnet_version": ["int", MXNET_VERSION]},
    }
    return json.dumps(doc, indent=2)


def _malformed(message):
    return MXNetError(f"malformed symbol JSON: {message}")


def _version(doc):
    attrs = doc.get("attrs", {})
    version = attrs.get("mxnet_version")
    if version is None:
        return 800          # MXNet: a file without a version is 0.8.0
    if not (isinstance(version, list) and len(version) == 2):
        raise _malformed(f"attrs.mxnet_version should be ['int', N], received {version!r}")
    return int(version[1])


def _node_attrs(raw, i):
    attrs = {}
    for key in ("param", "attr", "attrs"):     # legacy names first, 'attrs' wins
        value = raw.get(key, {})
        if not isinstance(value, dict):
            raise _malformed(f"node {i} {key!r} should be an object, received {value!r}")
        attrs.update({str(k): str(v) for k, v in value.items()})
    attrs.pop("backward_source_id", None)
    return attrs


def _entry(value, i, n_nodes):
    if not (isinstance(value, list) and len(value) in (2, 3)
            and all(isinstance(v, int) for v in value)):
        raise _malformed(f"node {i}: input entry should be [node, output(, version)], "
                         f"received {value!r}")
    if not 0 <= value[0] < i:
        raise _malformed(f"node {i}: input refers to node {value[0]}, which is not an "
                         f"earlier node (0..{i - 1})")
    return value[0], value[1]


def from_json(text):
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise _malformed(f"not JSON: {err}") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list) \
            or not isinstance(doc.get("heads"), list):
        raise _malformed("expected an object with 'nodes' and 'heads' lists")
    version = _version(doc)
    nodes = []
    for i, raw in enumerate(doc["nodes"]):
        if not isinstance(raw, dict) or "op" not in raw or "name" not in raw:
            raise _malformed(f"node {i} needs 'op' and 'name', received {raw!r}")
        nodes.append(_build_node(raw, i, nodes, version))
    heads = []
    for h in doc["heads"]:
        src, out = _entry(h, len(nodes), len(nodes))
        if out >= nodes[src].num_outputs:
            raise _malformed(f"head {h} names output {out} of '{nodes[src].name}', "
                             f"which has {nodes[src].num_outputs}")
        heads.append((nodes[src], out))
    return Symbol(heads)


def _build_node(raw, i, nodes, version):
    attrs = _node_attrs(raw, i)
    inputs = [_entry(e, i, len(nodes)) for e in raw.get("inputs", [])]
    entries = [(nodes[src], out) for src, out in inputs]
    if raw["op"] == "null":
        for key in _LEGACY_META:
            if key in attrs:
                attrs[f"__{key}__"] = attrs.pop(key)
        return Node(None, raw["name"], attrs)
    cls = get_op_class(raw["op"])
    params = {k: v for k, v in attrs.items() if not (k.startswith("__") and k.endswith("__"))}
    meta = {k: v for k, v in attrs.items() if k not in params}
    per_input = {}       # legacy `<input>_lr_mult` op attributes, moved to that input
    for key in list(params):
        if key in _LEGACY_META:
            meta[f"__{key}__"] = params.pop(key)
            continue
        for m in _LEGACY_META:
            if key.endswith("_" + m) and key not in cls.params:
                per_input[(key[: -len(m) - 1], m)] = params.pop(key)
                break
    op = cls(node_name=raw["name"], **params)
    names = op.list_inputs()
    if len(entries) < len(names) and version < 900:
        # Files before 0.9.0 did not store aux states and omitted some inputs.
        for name in names[len(entries):]:
            entries.append((Node(None, f"{raw['name']}_{name}", op.input_attrs(name)), 0))
    if len(entries) != len(names):
        raise _malformed(f"{op.op_name} '{raw['name']}' takes inputs {names}, "
                         f"received {len(entries)} input entries")
    for (arg, m), value in per_input.items():
        if arg in names and entries[names.index(arg)][0].is_variable:
            entries[names.index(arg)][0].attrs[f"__{m}__"] = value
    if version < 904:
        for slot, name in enumerate(names):
            src = entries[slot][0]
            if src.is_variable and "__init__" not in src.attrs:
                src.attrs.update(op.input_attrs(name))
    node_attrs = dict(op.attrs)
    node_attrs.update(meta)
    for src, out in entries:
        if out >= src.num_outputs:
            raise _malformed(f"'{raw['name']}' reads output {out} of '{src.name}', "
                             f"which has {src.num_outputs}")
    return Node(op, raw["name"], node_attrs, entries)


def load_json(json_str):
    return from_json(json_str)


def load(fname):
    with open(fname, "r", encoding="utf-8") as f:
        return from_json(f.read())
