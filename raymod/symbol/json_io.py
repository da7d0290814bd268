"""Symbol JSON in MXNet 1.x's layout (nnvm SaveJSON), and a reader for MXNet's files."""
import json
import os

from ..base import MXNetError
from ..ops import get_op_class
from .node import Node, aux_variable_ids, topo_order
from .symbol import Symbol

MXNET_VERSION = 10901           # written as MXNet 1.9.1 does
_LEGACY_META = ("lr_mult", "wd_mult", "ctx_group", "force_mirroring", "mirror_stage")


def to_json(symbol):
    """MXNet 1.9.1's symbol JSON for `symbol`, byte for byte (section 11.2)."""
    order = topo_order(symbol._heads)
    index = {id(n): i for i, n in enumerate(order)}
    aux = aux_variable_ids(order)
    nodes, row_ptr = [], [0]
    for node in order:
        fields = [("op", "null" if node.is_variable else node.op.op_name), ("name", node.name)]
        if node.attrs:
            fields.append(("attrs", _Object([(k, node.attrs[k]) for k in sorted(node.attrs)],
                                            multi_line=len(node.attrs) > 1)))
        aux_slots = set(node.aux_input_slots())
        fields.append(("inputs", [
            [index[id(src)], i, int(slot in aux_slots and id(src) in aux)]
            for slot, (src, i) in enumerate(node.inputs)]))
        nodes.append(_Object(fields))
        hidden = 0 if node.is_variable else node.op.num_hidden_outputs
        row_ptr.append(row_ptr[-1] + node.num_outputs + hidden)
    doc = _Object([
        ("nodes", _Array(nodes, multi_line=True)),
        ("arg_nodes", [i for i, n in enumerate(order) if n.is_variable]),
        ("node_row_ptr", row_ptr),
        ("heads", [[index[id(n)], i, 0] for n, i in symbol._heads]),
        ("attrs", _Object([("mxnet_version", ["int", MXNET_VERSION])], multi_line=False)),
    ])
    out = []
    _write(doc, out, 0)
    return "".join(out)


class _Object:
    """A JSON object with its key order and dmlc's line-breaking choice."""

    def __init__(self, fields, multi_line=True):
        self.fields, self.multi_line = fields, multi_line


class _Array:
    def __init__(self, items, multi_line):
        self.items, self.multi_line = items, multi_line


def _write(value, out, depth):
    """dmlc::JSONWriter's layout: ", " between items, and in a multi-line scope each
    item on its own line indented two spaces per open scope. Arrays of numbers or
    entries break lines only when longer than 10; objects of one key stay inline."""
    if isinstance(value, _Object):
        items, multi, opener, closer = value.fields, value.multi_line, "{", "}"
    elif isinstance(value, (_Array, list)):
        if isinstance(value, list):
            value = _Array(value, multi_line=len(value) > 10)
        items, multi, opener, closer = value.items, value.multi_line, "[", "]"
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
        return
    else:
        out.append(str(int(value)))
        return
    out.append(opener)
    for n, item in enumerate(items):
        if n:
            out.append(", ")
        if multi:
            out.append("\n" + "  " * (depth + 1))
        if opener == "{":
            key, item = item
            out.append(json.dumps(key, ensure_ascii=False) + ": ")
        _write(item, out, depth + 1)
    if multi and items:
        out.append("\n" + "  " * depth)
    out.append(closer)


def _malformed(message):
    return MXNetError(f"malformed symbol JSON: {message}")


def _version(doc):
    attrs = doc.get("attrs", {})
    version = attrs.get("mxnet_version")
    if version is None:
        return 800          # MXNet: a file without a version is 0.8.0
    if not (isinstance(version, list) and len(version) == 2 and isinstance(version[1], int)):
        raise _malformed(f"attrs.mxnet_version should be ['int', N], received {version!r}")
    return version[1]


def _node_attrs(raw, i):
    attrs = {}
    for key in ("param", "attr", "attrs"):     # legacy names first, 'attrs' wins
        value = raw.get(key, {})
        if not isinstance(value, dict):
            raise _malformed(f"node {i} {key!r} should be an object, received {value!r}")
        attrs.update({str(k): str(v) for k, v in value.items()})
    attrs.pop("backward_source_id", None)
    return attrs


def _entry(value, where, n_before):
    """(node id, output index) of an input or head entry, checked against the nodes so far."""
    if not (isinstance(value, list) and len(value) in (2, 3)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and value[1] >= 0):
        raise _malformed(f"{where}: entry should be [node, output(, version)] of "
                         f"non-negative ints, received {value!r}")
    if not 0 <= value[0] < n_before:
        raise _malformed(f"{where}: entry {value!r} refers to node {value[0]}, which is not "
                         f"an earlier node (0..{n_before - 1})")
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
        if not isinstance(raw, dict) or not isinstance(raw.get("op"), str) \
                or not isinstance(raw.get("name"), str):
            raise _malformed(f"node {i} needs string 'op' and 'name', received {raw!r}")
        nodes.append(_build_node(raw, i, nodes, version))
    heads = []
    for h in doc["heads"]:
        src, out = _entry(h, "heads", len(nodes))
        if out >= nodes[src].num_outputs:
            raise _malformed(f"head {h} names output {out} of '{nodes[src].name}', "
                             f"which has {nodes[src].num_outputs}")
        heads.append((nodes[src], out))
    return Symbol(heads)


def _build_node(raw, i, nodes, version):
    where = f"node {i} '{raw['name']}'"
    attrs = _node_attrs(raw, i)
    raw_inputs = raw.get("inputs", [])
    if not isinstance(raw_inputs, list):
        raise _malformed(f"{where}: 'inputs' should be a list, received {raw_inputs!r}")
    inputs = [_entry(e, where, i) for e in raw_inputs]
    entries = [(nodes[src], out) for src, out in inputs]
    if raw["op"] == "null":
        if entries:
            raise _malformed(f"{where}: a variable has no inputs, received {raw_inputs!r}")
        for key in _LEGACY_META:
            if key in attrs:
                attrs[f"__{key}__"] = attrs.pop(key)
        return Node(None, raw["name"], attrs)
    try:
        return _build_op_node(raw, attrs, entries, version)
    except (MXNetError, TypeError, ValueError) as err:
        raise _malformed(f"{where} (op {raw['op']!r}): {err}") from err


def _build_op_node(raw, attrs, entries, version):
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
    node_attrs = dict(op.attrs)
    node_attrs.update(meta)
    names = op.list_inputs()
    if len(entries) < len(names) and version < 900:
        # Files before 0.9.0 did not store aux states and omitted some inputs; they are
        # created as composing does: a copy of the op's attributes, then the input's own.
        for name in names[len(entries):]:
            attrs = dict(node_attrs)
            for key, value in op.input_attrs(name).items():
                attrs.setdefault(key, value)
            entries.append((Node(None, f"{raw['name']}_{name}", attrs), 0))
    if len(entries) != len(names):
        raise MXNetError(f"takes inputs {names}, received {len(entries)} input entries")
    for (arg, m), value in per_input.items():
        if arg in names and entries[names.index(arg)][0].is_variable:
            entries[names.index(arg)][0].attrs[f"__{m}__"] = value
    if version < 904:
        for slot, name in enumerate(names):
            src = entries[slot][0]
            if src.is_variable and "__init__" not in src.attrs:
                src.attrs.update(op.input_attrs(name))
    for src, out in entries:
        if out >= src.num_outputs:
            raise _malformed(f"'{raw['name']}' reads output {out} of '{src.name}', "
                             f"which has {src.num_outputs}")
    return Node(op, raw["name"], node_attrs, entries)


def load_json(json_str):
    """A Symbol from JSON text written by MXNet (any 0.8+ version) or raymod."""
    if not isinstance(json_str, str):
        raise TypeError(f"json_str must be a str, received {type(json_str).__name__}")
    return from_json(json_str)


def load(fname):
    """A Symbol from a `-symbol.json` file (path or fsspec URL) written by MXNet or raymod."""
    from ..fileio import open_read
    if not isinstance(fname, (str, os.PathLike)):
        raise TypeError(f"fname must be a path, received {type(fname).__name__}")
    with open_read(fname, "r") as f:
        return from_json(f.read())
