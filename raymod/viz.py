"""`rm.viz.print_summary` (MXNet's `mx.viz.print_summary`): a network's layer table.

The table is MXNet 1.9.1's, character for character (checked against the
wheel: tests/fixtures/mxnet/viz_summaries.json), including how it counts:

- parameters are counted for Convolution, FullyConnected, BatchNorm (gamma
  and beta) and Embedding only, from the node's attributes and the first
  axis after the batch of its input layers' output shapes (so a
  FullyConnected after a (5, 16) Embedding counts 5 inputs, as MXNet does);
- the first node of the graph, and any input that is node 0, is listed as a
  layer ("data(null)") and as a previous layer; other variables are not.
"""
import json

from .symbol import Symbol

__all__ = ["print_summary"]


def print_summary(symbol, shape=None, line_length=120, positions=(.44, .64, .74, 1.)):
    """Print each layer's name and type, output shape, parameter count and inputs.

    Parameters
    ----------
    symbol : Symbol
    shape : dict of str to tuple, optional
        Input shapes; without them the shapes (and the parameters counted
        from them) are left blank.
    line_length : int, default 120
    positions : sequence of 4 numbers, default (.44, .64, .74, 1.)
        Where each column ends: fractions of `line_length`, or absolute
        character positions when the last one is above 1.
    """
    if not isinstance(symbol, Symbol):
        raise TypeError(f"symbol must be a Symbol, received {type(symbol).__name__}")
    if len(positions) != 4:
        raise ValueError(f"positions needs 4 column ends, received {list(positions)}")
    shapes = _output_shapes(symbol, shape) if shape is not None else None
    graph = json.loads(symbol.tojson())
    table = _Table(line_length, positions)
    table.rule("_")
    table.row(["Layer (type)", "Output Shape", "Param #", "Previous Layer"])
    table.rule("=")
    nodes = graph["nodes"]
    # MXNet builds this set from the first head's [node, index, version] triple, so it
    # holds the output node's id and 0: node 0 always counts as a layer and an input.
    listed = set(graph["heads"][0])
    total = 0
    for i, node in enumerate(nodes):
        if node["op"] == "null" and i > 0:
            continue
        layer = _Layer(node, nodes, listed, shapes)
        out_shape = layer.own_shape(i)
        total += layer.params()
        inputs = layer.inputs()
        table.row([f"{node['name']}({node['op']})", "x".join(str(d) for d in out_shape),
                   layer.params(), inputs[0] if inputs else ""])
        for extra in inputs[1:]:
            table.row(["", "", "", extra])
        table.rule("=" if i == len(nodes) - 1 else "_")
    print(f"Total params: {total}")
    table.rule("_")


def _output_shapes(symbol, shape):
    internals = symbol.get_internals()
    _, out_shapes, _ = internals.infer_shape(**shape)
    if out_shapes is None:
        raise ValueError(f"Input shape is incomplete: {shape} does not determine every "
                         f"output of the network")
    return dict(zip(internals.list_outputs(), out_shapes, strict=True))


class _Table:
    """Rows whose fields are cut or padded to end at fixed columns."""

    def __init__(self, line_length, positions):
        if positions[-1] <= 1:
            positions = [int(line_length * p) for p in positions]
        self.line_length = line_length
        self.ends = [int(p) for p in positions]

    def rule(self, char):
        print(char * self.line_length)

    def row(self, fields):
        line = ""
        for field, end in zip(fields, self.ends, strict=True):
            line = (line + str(field))[:end]
            line += " " * (end - len(line))
        print(line)


class _Layer:
    """One operator node (or node 0) of the graph JSON, with MXNet's counting rules."""

    def __init__(self, node, nodes, listed, shapes):
        self.node, self.nodes, self.listed, self.shapes = node, nodes, listed, shapes

    def _shape_of(self, index):
        """The output shape of node `index` without its batch axis ([] when unknown)."""
        if self.shapes is None:
            return []
        node = self.nodes[index]
        key = node["name"] if node["op"] == "null" else node["name"] + "_output"
        return list(self.shapes[key][1:]) if key in self.shapes else []

    def own_shape(self, index):
        if self.node["op"] == "null" and index not in self.listed:
            return []
        return self._shape_of(index)

    def _input_ids(self):
        if self.node["op"] == "null":
            return []
        return [item[0] for item in self.node["inputs"]
                if self.nodes[item[0]]["op"] != "null" or item[0] in self.listed]

    def inputs(self):
        return [self.nodes[i]["name"] for i in self._input_ids()]

    def _input_width(self):
        """Sum over the listed inputs of their first non-batch dimension (MXNet's pre_filter)."""
        return sum(int(shape[0]) for shape in map(self._shape_of, self._input_ids()) if shape)

    def params(self):
        op, attrs = self.node["op"], self.node.get("attrs", {})
        with_bias = attrs.get("no_bias") != "True"
        if op == "Convolution":
            count = self._input_width() * int(attrs["num_filter"]) // int(attrs.get("num_group",
                                                                                    "1"))
            for k in _ints(attrs["kernel"]):
                count *= k
            return count + (int(attrs["num_filter"]) if with_bias else 0)
        if op == "FullyConnected":
            return (self._input_width() + with_bias) * int(attrs["num_hidden"])
        if op == "BatchNorm":
            if self.shapes is None:
                return 0
            return 2 * int(self.shapes[self.node["name"] + "_output"][1])
        if op == "Embedding":
            return int(attrs["input_dim"]) * int(attrs["output_dim"])
        return 0


def _ints(text):
    """'(5, 5)' or '[3,3]' -> [5, 5]."""
    return [int(part) for part in text.strip("()[] ").split(",") if part.strip()]
