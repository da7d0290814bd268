"""Shape and type inference over a whole graph, forward and backward to a fixed point."""
import numpy as np

from ..base import MXNetError, as_dtype
from ..ops.base import merge_shape, parse_shape, shape_known
from .node import aux_variable_ids, topo_order

_MAX_PASSES = 50


def _split_inputs(symbol, args, kwargs, what):
    """Positional (list_arguments order) and keyword inputs as one {name: value} dict."""
    arg_names = symbol.list_arguments()
    given = {}
    if args:
        if kwargs:
            raise ValueError(f"infer_{what}: give values either positionally or by "
                             f"keyword, not both")
        if len(args) > len(arg_names):
            raise ValueError(f"infer_{what}: {len(args)} positional values for "
                             f"{len(arg_names)} arguments {arg_names}")
        given.update({n: v for n, v in zip(arg_names, args) if v is not None})
    inputs = symbol.list_inputs()
    for name, value in kwargs.items():
        if name not in inputs:
            candidates = "".join(f"\n\t[{i}]{n}" for i, n in enumerate(inputs))
            raise MXNetError(f"infer_{what}: keyword argument name {name} not found."
                             f"\nCandidate arguments:{candidates}")
        if value is not None:
            given[name] = value
    return given


def graph_shapes(heads, given):
    """Infer every entry's shape. Returns (order, {(id(node), i): shape or None})."""
    order = topo_order(heads)
    shapes = {}
    for node in order:
        if node.is_variable:
            shape = given.get(node.name)
            if shape is None and "__shape__" in node.attrs:
                shape = parse_shape(node.attrs["__shape__"]) or None
            shapes[(id(node), 0)] = tuple(shape) if shape is not None else None

    def unify(key, new, node, what):
        old = shapes.get(key)
        if new is None:
            return False
        merged = merge_shape(old, new)
        if merged is None:
            raise MXNetError(f"{node.op.op_name} '{node.name}': {what}: "
                             f"expected shape {new}, received {old}")
        if merged != old:
            shapes[key] = merged
            return True
        return False

    for _ in range(_MAX_PASSES):
        changed = False
        for node in order + order[::-1]:
            if node.is_variable:
                continue
            in_keys = [(id(src), i) for src, i in node.inputs]
            out_keys = [(id(node), i) for i in range(node.num_outputs)]
            ins = [shapes.get(k) for k in in_keys]
            outs = [shapes.get(k) for k in out_keys]
            new_ins, new_outs = node.op.infer_shape(list(ins), list(outs))
            names = node.op.list_inputs()
            for k, name, new in zip(in_keys, names, new_ins):
                changed |= unify(k, new, node, name)
            for k, name, new in zip(out_keys, node.op.list_outputs(), new_outs):
                changed |= unify(k, new, node, f"output {name}")
        if not changed:
            break
    return order, shapes


def graph_types(heads, given):
    """Infer every entry's dtype (None where unknown)."""
    order = topo_order(heads)
    types = {}
    for node in order:
        if node.is_variable:
            dtype = given.get(node.name)
            if dtype is None and "__dtype__" in node.attrs:
                dtype = node.attrs["__dtype__"]
            types[(id(node), 0)] = as_dtype(dtype) if dtype is not None else None
    for _ in range(_MAX_PASSES):
        changed = False
        for node in order + order[::-1]:
            if node.is_variable:
                continue
            in_keys = [(id(src), i) for src, i in node.inputs]
            out_keys = [(id(node), i) for i in range(node.num_outputs)]
            new_ins, new_outs = node.op.infer_type([types.get(k) for k in in_keys],
                                                   [types.get(k) for k in out_keys])
            labels = node.op.list_inputs() + [f"output {n}" for n in node.op.list_outputs()]
            for k, label, new in zip(in_keys + out_keys, labels, list(new_ins) + list(new_outs)):
                if new is None:
                    continue
                new = np.dtype(new)
                old = types.get(k)
                if old is None:
                    types[k] = new
                    changed = True
                elif old != new:
                    raise MXNetError(f"{node.op.op_name} '{node.name}': {label}: expected "
                                     f"dtype {new}, received {old}")
        if not changed:
            break
    return order, types


def _collect(symbol, order, table):
    aux = aux_variable_ids(order)
    args = [table.get((id(n), 0)) for n in order if n.is_variable and id(n) not in aux]
    auxs = [table.get((id(n), 0)) for n in order if n.is_variable and id(n) in aux]
    outs = [table.get((id(node), i)) for node, i in symbol._heads]
    return args, outs, auxs


def infer_shape(symbol, args, kwargs, partial):
    given = _split_inputs(symbol, args, kwargs, "shape")
    given = {k: parse_shape(v) for k, v in given.items()}
    order, shapes = graph_shapes(symbol._heads, given)
    arg_s, out_s, aux_s = _collect(symbol, order, shapes)
    if partial:
        fix = lambda lst: [s if s is not None else () for s in lst]   # noqa: E731
        return fix(arg_s), fix(out_s), fix(aux_s)
    if not all(shape_known(s) for s in arg_s + out_s + aux_s):
        return None, None, None
    return arg_s, out_s, aux_s


def infer_type(symbol, args, kwargs):
    given = _split_inputs(symbol, args, kwargs, "type")
    order, types = graph_types(symbol._heads, given)
    arg_t, out_t, aux_t = _collect(symbol, order, types)
    if not all(t is not None for t in arg_t + out_t + aux_t):
        return None, None, None
    return [t.type for t in arg_t], [t.type for t in out_t], [t.type for t in aux_t]


def unknown_arguments(symbol, given_shapes):
    """Names of inputs whose shape cannot be decided from `given_shapes`."""
    order, shapes = graph_shapes(symbol._heads, given_shapes)
    return [n.name for n in order if n.is_variable and not shape_known(shapes[(id(n), 0)])]
