"""`Symbol`: a list of output entries of a graph, with MXNet's query and composition API."""
import numpy as np

from ..base import MXNetError
from .node import Node, aux_variable_ids, topo_order


class Symbol:
    """The outputs of a graph: `heads` is a list of (Node, output_index)."""

    def __init__(self, heads):
        self._heads = list(heads)

    # ------------------------------------------------------------------ structure
    def _order(self):
        return topo_order(self._heads)

    @property
    def name(self):
        """The node name when the symbol has one output, else None (as MXNet)."""
        if len(self._heads) != 1:
            return None
        return self._heads[0][0].name

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
        """The inputs of the head node, grouped; None for a variable."""
        if len(self._heads) != 1:
            raise MXNetError("get_children needs a symbol with one output")
        node = self._heads[0][0]
        return Symbol(node.inputs) if node.inputs else None

    def __len__(self):
        return len(self._heads)

    def __iter__(self):
        return (self[i] for i in range(len(self._heads)))

    def __getitem__(self, index):
        if isinstance(index, str):
            names = self.list_outputs()
            matches = [i for i, n in enumerate(names) if n == index]
            if not matches:
                raise ValueError(f"no output named {index!r}; outputs are {names}")
            if len(matches) > 1:
                raise ValueError(f"more than one output named {index!r}")
            index = matches[0]
        if isinstance(index, slice):
            return Symbol(self._heads[index])
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"symbol index must be an int or output name, received {index!r}")
        if not -len(self._heads) <= index < len(self._heads):
            raise IndexError(f"output index {index} out of range for {len(self._heads)} outputs")
        return Symbol([self._heads[index]])

    # ------------------------------------------------------------------ attributes
    def attr(self, key):
        """The head node's attribute `key` (or `__key__`), None when absent."""
        if len(self._heads) != 1:
            raise MXNetError("attr needs a symbol with one output")
        attrs = self._heads[0][0].attrs
        if key in attrs:
            return attrs[key]
        return attrs.get(f"__{key}__")

    def list_attr(self, recursive=False):
        if recursive:
            raise DeprecationWarning("list_attr(recursive=True) is attr_dict() in MXNet")
        return dict(self._heads[0][0].attrs)

    def attr_dict(self):
        """{node name: attributes} for every node that has attributes."""
        return {n.name: dict(n.attrs) for n in self._order() if n.attrs}

    def _set_attr(self, **kwargs):
        for key, value in kwargs.items():
            if not isinstance(value, str):
                raise ValueError(f"attribute {key!r} must be a string, received {value!r}")
            for node, _ in self._heads:
                node.attrs[key] = value

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
    def tojson(self):
        from .json_io import to_json
        return to_json(self)

    def save(self, fname, remove_amp_cast=True):
        from ..fileio import atomic_write_text
        atomic_write_text(fname, self.tojson())

    # ------------------------------------------------------------------ binding
    def simple_bind(self, ctx=None, grad_req="write", type_dict=None, stype_dict=None,
                    group2ctx=None, shared_arg_names=None, shared_exec=None,
                    shared_buffer=None, **kwargs):
        from ..executor import Executor
        return Executor.simple_bind(self, ctx, grad_req=grad_req, type_dict=type_dict,
                                    shared_exec=shared_exec, shapes=kwargs)

    def bind(self, ctx, args, args_grad=None, grad_req="write", aux_states=None,
             group2ctx=None, shared_exec=None):
        from ..executor import Executor
        return Executor(self, ctx, args, args_grad=args_grad, grad_req=grad_req,
                        aux_states=aux_states, shared_exec=shared_exec)

    # ------------------------------------------------------------------ arithmetic
    def _binary(self, other, op_name, scalar_op, reverse=False):
        from . import op_functions as F
        if isinstance(other, Symbol):
            a, b = (other, self) if reverse else (self, other)
            return F.call(op_name, a, b)
        if isinstance(other, (int, float, np.number)) and not isinstance(other, bool):
            return F.call(scalar_op, self, scalar=float(other))
        return NotImplemented

    def __add__(self, o):
        return self._binary(o, "elemwise_add", "_plus_scalar")

    def __radd__(self, o):
        return self._binary(o, "elemwise_add", "_plus_scalar")

    def __sub__(self, o):
        return self._binary(o, "elemwise_sub", "_minus_scalar")

    def __rsub__(self, o):
        return self._binary(o, "elemwise_sub", "_rminus_scalar", reverse=True)

    def __mul__(self, o):
        return self._binary(o, "elemwise_mul", "_mul_scalar")

    def __rmul__(self, o):
        return self._binary(o, "elemwise_mul", "_mul_scalar")

    def __truediv__(self, o):
        return self._binary(o, "elemwise_div", "_div_scalar")

    def __rtruediv__(self, o):
        return self._binary(o, "elemwise_div", "_rdiv_scalar", reverse=True)

    def __pow__(self, o):
        if isinstance(o, Symbol):
            raise MXNetError("symbol ** symbol is not supported; use a scalar exponent")
        return self._binary(o, None, "_power_scalar")

    def __rpow__(self, o):
        return self._binary(o, None, "_rpower_scalar")

    def __neg__(self):
        from . import op_functions as F
        return F.call("negative", self)

    def __copy__(self):
        return Symbol(self._heads)

    def __repr__(self):
        name = self.name
        if name is None:
            return f"<Symbol group [{', '.join(self.list_outputs())}]>"
        return f"<Symbol {name}>"

    def __bool__(self):
        raise NotImplementedError("the truth value of a Symbol is not defined")

    def __getstate__(self):
        return {"json": self.tojson()}

    def __setstate__(self, state):
        from .json_io import from_json
        self._heads = from_json(state["json"])._heads


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


def Variable(name, attr=None, shape=None, lr_mult=None, wd_mult=None, dtype=None,
             init=None, stype=None, **kwargs):
    """A named input of the graph (data, label or parameter), as mx.sym.Variable."""
    from ..attribute import AttrScope
    from ..base import DTYPE_TO_FLAG, as_dtype
    if not isinstance(name, str):
        raise TypeError(f"Variable name must be a string, received {type(name).__name__}")
    attrs = AttrScope.current().get(attr)
    if shape is not None:
        attrs["__shape__"] = str(tuple(shape))
    if lr_mult is not None:
        attrs["__lr_mult__"] = str(lr_mult)
    if wd_mult is not None:
        attrs["__wd_mult__"] = str(wd_mult)
    if dtype is not None:
        attrs["__dtype__"] = str(DTYPE_TO_FLAG[as_dtype(dtype)])
    if init is not None:
        attrs["__init__"] = init if isinstance(init, str) else init.dumps()
    if stype is not None:
        attrs["__storage_type__"] = str(stype)
    for key, value in kwargs.items():
        if not (key.startswith("__") and key.endswith("__")):
            raise ValueError(f"Variable attribute {key!r} must be of the form __key__")
        attrs[key] = str(value)
    return Symbol([(Node(None, name, attrs), 0)])


var = Variable
