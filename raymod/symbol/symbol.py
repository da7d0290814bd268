"""`Symbol`: a list of output entries of a graph, with MXNet's query and composition API."""
import numpy as np

from ..attribute import HIDDEN_KEYS, hidden_key, is_meta_key, with_plain_hidden_keys
from ..base import MXNetError
from .node import Node, aux_variable_ids, copy_graph, topo_order

# Python operator -> ((op, node-name hint) with a Symbol, (op, hint) with a scalar).
# The hints are MXNet's: `a + b` is node `_plus0`, `a * 2` is `_mulscalar0`.
_PYTHON_OPS = {
    "add": (("elemwise_add", "_plus"), ("_plus_scalar", "_plusscalar")),
    "sub": (("elemwise_sub", "_minus"), ("_minus_scalar", "_minusscalar")),
    "rsub": (None, ("_rminus_scalar", "_rminusscalar")),
    "mul": (("elemwise_mul", "_mul"), ("_mul_scalar", "_mulscalar")),
    "div": (("elemwise_div", "_div"), ("_div_scalar", "_divscalar")),
    "rdiv": (None, ("_rdiv_scalar", "_rdivscalar")),
    "pow": (("_power", "_power"), ("_power_scalar", "_powerscalar")),
    "rpow": (None, ("_rpower_scalar", "_rpower_scalar")),
}


class Symbol:
    """The outputs of a graph: `heads` is a list of (Node, output_index)."""

    def __init__(self, heads):
        self._heads = list(heads)

    # ------------------------------------------------------------------ structure
    def _order(self):
        return topo_order(self._heads)

    def _single_node(self):
        """The node every output comes from, or None for a group of several nodes."""
        node = self._heads[0][0] if self._heads else None
        if any(n is not node for n, _ in self._heads):
            return None
        return node

    @property
    def name(self):
        """The node name when all outputs come from one node, else None (as MXNet)."""
        node = self._single_node()
        return node.name if node is not None else None

    def list_outputs(self):
        return [node.output_names()[i] for node, i in self._heads]

    def list_arguments(self):
        order = self._order()
        aux = aux_variable_ids(order)
        return [n.name for n in order if n.is_variable and id(n) not in aux]

    def list_auxiliary_states(self):
        order = self._order()
        aux = aux_variable_ids(order)
        return [n.name for n in order if n.is_variable and id(n) in aux]

    def list_inputs(self):
        return [n.name for n in self._order() if n.is_variable]

    def get_internals(self):
        heads = []
        for node in self._order():
            heads.extend((node, i) for i in range(node.num_outputs))
        return Symbol(heads)

    def get_children(self):
        """The inputs of the output nodes, grouped; None when there are none (variables)."""
        heads, seen = [], set()
        for node, _ in self._heads:
            if id(node) not in seen:
                seen.add(id(node))
                heads.extend(node.inputs)
        return Symbol(heads) if heads else None

    def __len__(self):
        return len(self._heads)

    def __iter__(self):
        return (self[i] for i in range(len(self._heads)))

    def __getitem__(self, index):
        """One output by position or by name (`sym['fc1_output']`), or a slice of them."""
        if isinstance(index, str):
            matches = [i for i, n in enumerate(self.list_outputs()) if n == index]
            if not matches:
                raise ValueError(f'Cannot find output that matches name "{index}"')
            if len(matches) > 1:
                raise ValueError(f'There are multiple outputs with name "{index}"')
            index = matches[0]
        if isinstance(index, slice):
            return Symbol(self._heads[index])
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError("Symbol only support integer index to fetch i-th output")
        if not -len(self._heads) <= index < len(self._heads):
            raise IndexError(f"output index {index} out of range for {len(self._heads)} outputs")
        return Symbol([self._heads[index]])

    # ------------------------------------------------------------------ attributes
    def attr(self, key):
        """The output node's attribute `key`; None when absent or for a group of nodes.

        As MXNet: `attr('name')` is the node name, and a hidden key asked by its
        plain name (`attr('lr_mult')`) reads `__lr_mult__`.
        """
        node = self._single_node()
        if node is None:
            return None
        if key == "name":
            return node.name
        if key in node.attrs:
            return node.attrs[key]
        if key in HIDDEN_KEYS:
            return node.attrs.get(f"__{key}__")
        return None

    def list_attr(self, recursive=False):
        """The first output node's attributes (MXNet also lists `lr_mult` for `__lr_mult__`)."""
        if recursive:
            raise DeprecationWarning("Symbol.list_attr with recursive=True has been deprecated. "
                                     "Please use attr_dict instead.")
        return with_plain_hidden_keys(self._heads[0][0].attrs)

    def attr_dict(self):
        """{node name: attributes} for every node that has attributes."""
        return {n.name: with_plain_hidden_keys(n.attrs) for n in self._order() if n.attrs}

    def _set_attr(self, **kwargs):
        """Set string attributes on the output node (hidden keys become `__key__`)."""
        node = self._single_node()
        if node is None:
            raise MXNetError("Symbol.SetAttrs only works for non-grouped symbol")
        for key, value in kwargs.items():
            if not isinstance(value, str):
                raise ValueError("Set Attr only accepts string values")
            node.attrs[hidden_key(key)] = value

    # ------------------------------------------------------------------ inference
    def infer_shape(self, *args, **kwargs):
        from .inference import infer_shape
        return infer_shape(self, args, kwargs, partial=False)

    def infer_shape_partial(self, *args, **kwargs):
        from .inference import infer_shape
        return infer_shape(self, args, kwargs, partial=True)

    def infer_type(self, *args, **kwargs):
        from .inference import infer_type
        return infer_type(self, args, kwargs)

    # ------------------------------------------------------------------ serialisation
    def tojson(self, remove_amp_cast=True):
        """The graph as MXNet 1.9.1 writes it (nnvm SaveJSON layout and formatting)."""
        from .json_io import to_json
        return to_json(self)

    def save(self, fname, remove_amp_cast=True):
        """Write `tojson()` to `fname` atomically (temporary file, then rename)."""
        from ..fileio import atomic_write_text
        atomic_write_text(fname, self.tojson())

    # ------------------------------------------------------------------ binding
    def simple_bind(self, ctx=None, grad_req="write", type_dict=None, stype_dict=None,
                    group2ctx=None, shared_arg_names=None, shared_exec=None,
                    shared_buffer=None, **kwargs):
        """Bind with arrays allocated from the shapes in `kwargs` (MXNet's signature).

        `shared_exec`: same-named arrays of the same shape are shared, and
        intermediate memory is reused (see Executor). Model parallelism
        (`group2ctx`), sparse storage and `shared_buffer` pools are refused.
        """
        from ..executor import Executor
        _refuse_unsupported(group2ctx=group2ctx, stype_dict=stype_dict,
                            shared_buffer=shared_buffer)
        return Executor.simple_bind(self, ctx, grad_req=grad_req, type_dict=type_dict,
                                    shared_exec=shared_exec, shapes=kwargs,
                                    share_memory=shared_exec is not None)

    def bind(self, ctx, args, args_grad=None, grad_req="write", aux_states=None,
             group2ctx=None, shared_exec=None):
        from ..executor import Executor
        _refuse_unsupported(group2ctx=group2ctx)
        return Executor(self, ctx, args, args_grad=args_grad, grad_req=grad_req,
                        aux_states=aux_states, shared_exec=shared_exec)

    # ------------------------------------------------------------------ arithmetic
    def _binary(self, other, python_op):
        """`self <python_op> other` as MXNet builds it: op, node-name hint, scalar as given."""
        from . import op_functions as F
        sym_op, scalar_op = _PYTHON_OPS[python_op]
        if isinstance(other, Symbol):
            if sym_op is None:
                return NotImplemented
            op_name, hint = sym_op
            return F.call(op_name, self, other, hint=hint)
        if isinstance(other, (int, float, np.number)) and not isinstance(other, (bool, np.bool_)):
            op_name, hint = scalar_op
            # MXNet stores str() of the Python value: `a * 2` gives scalar "2".
            return F.call(op_name, self, hint=hint, scalar=other)
        return NotImplemented

    def __add__(self, o):
        return self._binary(o, "add")

    def __radd__(self, o):
        return self._binary(o, "add")

    def __sub__(self, o):
        return self._binary(o, "sub")

    def __rsub__(self, o):
        return self._binary(o, "rsub")

    def __mul__(self, o):
        return self._binary(o, "mul")

    def __rmul__(self, o):
        return self._binary(o, "mul")

    def __truediv__(self, o):
        return self._binary(o, "div")

    def __rtruediv__(self, o):
        return self._binary(o, "rdiv")

    def __pow__(self, o):
        return self._binary(o, "pow")

    def __rpow__(self, o):
        return self._binary(o, "rpow")

    def __neg__(self):
        return self * -1.0          # MXNet: _mul_scalar with scalar "-1.0"

    def __copy__(self):
        """An independent copy of the graph (MXNet's copy: attributes set later do not leak)."""
        return Symbol(copy_graph(self._heads))

    def __deepcopy__(self, memo):
        return self.__copy__()

    def __repr__(self):
        name = self.name
        if name is None:
            return f"<Symbol group [{', '.join(n.name for n, _ in self._heads)}]>"
        return f"<Symbol {name}>"

    def __bool__(self):
        raise NotImplementedError("the truth value of a Symbol is not defined")

    def __getstate__(self):
        return {"json": self.tojson()}

    def __setstate__(self, state):
        from .json_io import from_json
        self._heads = from_json(state["json"])._heads


def _refuse_unsupported(group2ctx=None, stype_dict=None, shared_buffer=None):
    """Options raymod cannot honour raise instead of being silently ignored."""
    if group2ctx:
        raise NotImplementedError("group2ctx (model parallelism) is not supported; "
                                  "pass group2ctx=None")
    if stype_dict and any(v != "default" for v in stype_dict.values()):
        raise NotImplementedError(f"sparse storage types are not supported: {stype_dict}")
    if shared_buffer is not None:
        raise NotImplementedError("shared_buffer is not supported; share memory through "
                                  "shared_exec")


def Group(symbols):
    """One symbol whose outputs are the outputs of `symbols`, in order."""
    heads = []
    for s in symbols:
        if not isinstance(s, Symbol):
            raise TypeError(f"Group expects a list of Symbols, received {type(s).__name__}")
        heads.extend(s._heads)
    if not heads:
        raise ValueError("Group needs at least one symbol")
    return Symbol(heads)


_STORAGE_TYPES = {"default": 0, "row_sparse": 1, "csr": 2}


def Variable(name, attr=None, shape=None, lr_mult=None, wd_mult=None, dtype=None,
             init=None, stype=None, **kwargs):
    """A named input of the graph (data, label or parameter), as mx.sym.Variable.

    Parameters
    ----------
    name : str
    attr : dict of str to str, optional
        Attributes, merged over the current AttrScope's.
    shape : tuple, optional
        Stored as `__shape__` (a hint for shape inference; 0 = unknown dimension).
    lr_mult, wd_mult : float, optional
        Stored as `__lr_mult__`, `__wd_mult__`.
    dtype : str or numpy dtype, optional
        Stored as `__dtype__`, MXNet's type flag.
    init : str or Initializer, optional
        Stored as `__init__`: the string, or `init.dumps()`.
    stype : str, optional
        Stored as `__storage_type__` ('default' 0, 'row_sparse' 1, 'csr' 2).
    **kwargs
        Further attributes, which must be of the form `__key__` (e.g. `__layout__='NC'`).
    """
    from ..attribute import AttrScope
    from ..base import DTYPE_TO_FLAG, as_dtype
    if not isinstance(name, str):
        raise TypeError("Expect a string for variable `name`")
    attrs = AttrScope.current().get(attr)
    if shape is not None:
        if isinstance(shape, (tuple, list)):   # numpy ints would print as np.int64(2)
            shape = type(shape)(int(d) for d in shape)
        attrs["__shape__"] = str(shape)
    if lr_mult is not None:
        attrs["__lr_mult__"] = str(lr_mult)
    if wd_mult is not None:
        attrs["__wd_mult__"] = str(wd_mult)
    if dtype is not None:
        attrs["__dtype__"] = str(DTYPE_TO_FLAG[as_dtype(dtype)])
    if init is not None:
        attrs["__init__"] = init if isinstance(init, str) else init.dumps()
    if stype is not None:
        if stype not in _STORAGE_TYPES:
            raise ValueError(f"Variable {name!r}: stype must be one of "
                             f"{sorted(_STORAGE_TYPES)}, received {stype!r}")
        attrs["__storage_type__"] = str(_STORAGE_TYPES[stype])
    for key, value in kwargs.items():
        if not is_meta_key(key):
            raise ValueError(f"Attribute name={key} is not supported. Additional attributes "
                             f"must start and end with double underscores, e.g, __yourattr__")
        attrs[key] = str(value)
    node = Node(None, name)
    sym = Symbol([(node, 0)])
    sym._set_attr(**attrs)
    return sym


var = Variable
