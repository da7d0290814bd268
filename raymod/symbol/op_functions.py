"""`rm.sym.<Op>(...)` functions, generated from the operator registry."""
from ..attribute import AttrScope, hidden_key, is_meta_key
from ..name import NameManager
from ..ops import get_op_class
from .node import Node
from .symbol import Symbol


def call(op_name, *args, name=None, attr=None, hint=None, **kwargs):
    """Apply operator `op_name` to input symbols, auto-creating missing arguments.

    As MXNet: symbols given by keyword are inputs (None means "create it");
    `__key__` keywords and the hidden keys (`lr_mult`, `ctx_group`, ...) become
    node attributes; the AttrScope's and `attr`'s plain keys are operator
    parameters, exactly like keyword arguments.
    """
    cls = get_op_class(op_name)
    inputs, params, meta = {}, {}, {}
    scope = AttrScope.current().get(attr)
    for key, value in list(kwargs.items()) + list(scope.items()):   # attr wins, as MXNet
        if isinstance(value, Symbol):
            inputs[key] = value
            continue
        if value is None and key not in cls.params:
            continue                  # an input left to be auto-created
        key = hidden_key(key)
        if is_meta_key(key):
            meta[key] = str(value)
        else:
            params[key] = value
    args = _positional_params(cls, args, params)
    if cls.variadic and "num_args" in cls.params:
        params.setdefault("num_args", len(args))
    node_name = NameManager.current().get(name, hint or cls.hint or cls.op_name.lower())
    op = cls(node_name=node_name, **params)
    node_attrs = dict(op.attrs)
    node_attrs.update(meta)
    node = _make_node(op, node_name, node_attrs, args, inputs)
    return Symbol([(node, i) for i in range(node.num_outputs)])


def _positional_params(cls, args, params):
    """MXNet's generated signatures take inputs, then attributes in declared order:
    `Dropout(data, 0.5)` is p=0.5, `zeros((2, 3))` is shape=(2, 3)."""
    n_symbols = 0
    while n_symbols < len(args) and isinstance(args[n_symbols], Symbol):
        n_symbols += 1
    rest = args[n_symbols:]
    declared = [k for k in cls.params if k != "num_args"]
    if len(rest) > len(declared):
        raise TypeError(f"{cls.op_name}: {len(rest)} positional attribute value(s) "
                        f"{list(rest)!r} for attributes {declared}")
    for key, value in zip(declared, rest):
        if isinstance(value, Symbol):
            raise TypeError(f"{cls.op_name}: positional Symbol after attribute values; "
                            f"pass inputs first")
        if key in params:
            raise TypeError(f"{cls.op_name}: attribute {key!r} given by position and keyword")
        params[key] = value
    return args[:n_symbols]


def _make_node(op, node_name, node_attrs, args, named):
    names = op.list_inputs()
    if len(args) > len(names):
        op.error(f"takes {len(names)} inputs {names}, received {len(args)} positional",
                 TypeError)
    unknown = sorted(set(named) - set(names))
    if unknown:
        op.error(f"unknown input(s) {unknown}; inputs are {names}", TypeError)
    entries = []
    for i, input_name in enumerate(names):
        given = args[i] if i < len(args) else named.get(input_name)
        if given is None:
            entries.append((_auto_variable(op, node_name, node_attrs, input_name), 0))
            continue
        if i < len(args) and input_name in named:
            op.error(f"input {input_name!r} given both by position and by keyword", TypeError)
        if len(given._heads) != 1:
            op.error(f"input {input_name!r} must have one output, received a group of "
                     f"{len(given._heads)}", TypeError)
        entries.append(given._heads[0])
    return Node(op, node_name, node_attrs, entries)


def _auto_variable(op, node_name, node_attrs, input_name):
    attrs = dict(node_attrs)     # MXNet copies the op's whole attribute dict
    for key, value in op.input_attrs(input_name).items():
        attrs.setdefault(key, value)
    return Node(None, f"{node_name}_{input_name}", attrs)


# MXNet's Python wrappers that call an internal op name their nodes after it.
_WRAPPER_HINTS = {"zeros": "_zeros", "ones": "_ones"}


def make_function(public_name, op_name):
    hint = _WRAPPER_HINTS.get(public_name, public_name.lower())

    def op_function(*args, name=None, attr=None, **kwargs):
        return call(op_name, *args, name=name, attr=attr, hint=hint, **kwargs)
    cls = get_op_class(op_name)
    op_function.__name__ = public_name
    op_function.__qualname__ = public_name
    op_function.__doc__ = (cls.__doc__ or f"MXNet's {op_name} operator.") + \
        f"\n\nAttributes: {', '.join(cls.params) or 'none'}."
    return op_function
