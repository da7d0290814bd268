"""The operator framework: attribute parameters, the `Operator` base class, the registry.

An operator is one small class registered under MXNet's name. It is pure: it
parses its attributes once, infers shapes and types, and computes forward and
backward on arrays of whichever module `xp` (numpy or cupy) it is handed.
Outputs and input gradients are written into buffers the executor owns, so a
bound graph allocates nothing per step; anything forward must leave for
backward, and any scratch buffer, comes from the node's `Workspace`.

The executor plans memory from each operator's declarations
(`backward_inputs`, `backward_outputs`, `inplace_pairs`, `inplace_identity`,
`backward_inplace_pairs`): an intermediate's memory is reused once nothing
reads it. The defaults (backward reads everything, nothing in place) are
always safe; a new operator works without declaring anything.
"""
import ast

import numpy as np

from ..base import MXNetError, as_dtype

_REGISTRY = {}   # canonical name -> Operator subclass
_ALIASES = {}    # alias -> canonical name


# --------------------------------------------------------------------------- parameters

class Param:
    """One attribute of an operator: how to parse it, its default, whether required."""

    def __init__(self, kind, default=None, required=False, choices=None, optional=False):
        self.kind = kind          # 'int' 'float' 'bool' 'str' 'shape' 'dtype' 'any'
        self.default = default
        self.required = required
        self.choices = choices
        self.optional = optional  # None (or "None") is an accepted value

    def parse(self, value):
        if self.optional and (value is None or value == "None"):
            return None
        parse = getattr(self, "_parse_" + self.kind)
        value = parse(value)
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"expected one of {list(self.choices)}, received {value!r}")
        return value

    @staticmethod
    def _parse_int(v):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer, str, float)):
            raise TypeError(f"expected an int, received {type(v).__name__} {v!r}")
        if isinstance(v, float) and not v.is_integer():
            raise TypeError(f"expected an int, received {v!r}")
        return int(str(v).rstrip("L")) if isinstance(v, str) else int(v)

    @staticmethod
    def _parse_float(v):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number, str)):
            raise TypeError(f"expected a float, received {type(v).__name__} {v!r}")
        return float(v)

    @staticmethod
    def _parse_bool(v):
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, (int, np.integer)) and v in (0, 1):
            return bool(v)
        table = {"true": True, "false": False, "1": True, "0": False}
        if isinstance(v, str) and v.strip().lower() in table:
            return table[v.strip().lower()]
        raise TypeError(f"expected a bool, received {v!r}")

    @staticmethod
    def _parse_str(v):
        if not isinstance(v, str):
            raise TypeError(f"expected a string, received {type(v).__name__} {v!r}")
        return v

    @staticmethod
    def _parse_shape(v):
        return parse_shape(v)

    @staticmethod
    def _parse_dtype(v):
        return as_dtype(v)

    @staticmethod
    def _parse_any(v):
        return v


def parse_shape(v):
    """A tuple of ints from `(3, 3)`, `[3,3]`, `3`, `"(3, 3)"`, `"[3,3]"`, `"3"`, `"()"`."""
    if isinstance(v, str):
        text = v.strip().replace("L", "")
        if text in ("", "()", "[]"):
            return ()
        try:
            v = ast.literal_eval(text)
        except (ValueError, SyntaxError) as err:
            raise TypeError(f"expected a shape tuple, received {v!r}") from err
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v),)
    if isinstance(v, (tuple, list)):
        out = []
        for d in v:
            if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
                raise TypeError(f"expected a shape tuple of ints, received {v!r}")
            out.append(int(d))
        return tuple(out)
    raise TypeError(f"expected a shape tuple, received {type(v).__name__} {v!r}")


def attr_string(value):
    """How MXNet's Python front end stores an attribute value in the graph: str()."""
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    return str(value)


# --------------------------------------------------------------------------- shapes

def shape_known(shape):
    """A shape is fully known when it is given and no dimension is 0 (MXNet's 'unknown')."""
    return shape is not None and all(d > 0 for d in shape)


def merge_shape(old, new):
    """Unify two partial shapes; None when they conflict."""
    if old is None:
        return tuple(new) if new is not None else None
    if new is None:
        return tuple(old)
    if len(old) != len(new):
        return None
    out = []
    for a, b in zip(old, new):
        if a and b and a != b:
            return None
        out.append(a or b)
    return tuple(out)


# Memory an operator works in: Workspace (per node), Scratch (per call), Keep (forward
# to backward), in workspace.py; re-exported here, where operators import from.
from .workspace import Keep, Scratch, Workspace  # noqa: E402,F401


# --------------------------------------------------------------------------- operators

class Operator:
    """Base class of every operator.

    Subclasses set `op_name` (MXNet's canonical name), `params`, and override
    `list_arguments`, `infer_shape`, `forward` and `backward`. Inputs are the
    arguments followed by the auxiliary states. Shapes use None for unknown,
    and 0 for an unknown dimension, as MXNet.
    """

    op_name = None
    aliases = ()
    hint = None          # auto-name prefix; defaults to op_name.lower()
    params = {}
    is_loss = False      # a loss ignores the head gradient (section 12.2)
    num_hidden_outputs = 0   # outputs MXNet counts in node_row_ptr but does not expose
    # Variadic ops (Concat) take `num_args` inputs named arg0..; set True there.
    variadic = False

    def __init__(self, node_name="", **attrs):
        self.node_name = node_name
        self.attrs = {}
        for key, value in attrs.items():
            if key not in self.params:
                self.error(f"unknown attribute {key!r}; {self.op_name} accepts "
                           f"{sorted(self.params) or 'no attributes'}", TypeError)
            try:
                parsed = self.params[key].parse(value)
            except (TypeError, ValueError) as err:
                self.error(f"attribute {key!r}: {err}", type(err))
            setattr(self, key, parsed)
            self.attrs[key] = attr_string(value)
        for key, spec in self.params.items():
            if key in attrs:
                continue
            if spec.required:
                self.error(f"required attribute {key!r} is missing", TypeError)
            setattr(self, key, spec.default)
        self.check_attrs()

    # ---- errors
    def error(self, message, kind=MXNetError):
        raise kind(f"{self.op_name} '{self.node_name}': {message}")

    # ---- declarations
    def check_attrs(self):
        """Validate attribute combinations after parsing (override where needed)."""

    def list_arguments(self):
        return ["data"]

    def list_auxiliary_states(self):
        return []

    def list_outputs(self):
        return ["output"]

    def input_attrs(self, input_name):
        """Attributes (`__init__` ...) an auto-created input variable receives."""
        return {}

    def list_inputs(self):
        return self.list_arguments() + self.list_auxiliary_states()

    @property
    def num_inputs(self):
        return len(self.list_inputs())

    @property
    def num_outputs(self):
        return len(self.list_outputs())

    def no_grad_inputs(self):
        """Argument names that never receive a gradient (labels, indices)."""
        return ()

    # ---- memory declarations, read by the executor's planner (raymod/executor_memory.py)
    #
    # The executor frees an intermediate as soon as nothing reads it any more and
    # gives its memory to a later value; these declarations say what this op reads
    # and where it may write over its inputs. The defaults are safe for any op:
    # backward reads every input and output, and nothing happens in place. Declare
    # less only where forward/backward guarantee it; tests/executor/test_memory_ops.py
    # runs every gradient case with freed memory poisoned to prove the declarations.
    # A value backward does not read still arrives with its right shape (and
    # garbage contents), so reading `.shape` of it is fine.

    def backward_inputs(self):
        """Indices of the inputs whose values backward reads (default: all).

        Aux states are the bound arrays and never freed; list them or not.
        """
        return range(self.num_inputs)

    def backward_outputs(self):
        """Indices of the outputs whose values backward reads (default: all)."""
        return range(self.num_outputs)

    def inplace_pairs(self):
        """(input index, output index) pairs forward may compute in place.

        The executor then hands forward the same array (reshaped to the
        output's shape) as that input and that output when the input has no
        reader after this op. Only declare pairs where forward reads every
        element of the input before (or as) it writes the same element of the
        output, e.g. a ufunc with `out=`. Default: none.
        """
        return ()

    # True when every in-place pair's output holds its input's elements unchanged,
    # in row-major order (Reshape, Flatten, identity): then the two share memory even
    # while the input stays alive, and forward's copy is a copy onto itself.
    inplace_identity = False

    def backward_inplace_pairs(self):
        """(output index, input index) pairs: backward may write the input's gradient
        into the memory of that output's gradient, which it must read elementwise
        before (or as) it writes there. Default: none."""
        return ()

    # ---- inference
    def infer_shape(self, in_shapes, out_shapes):
        """Fill what can be known. Default: one output shaped like the first input."""
        shape = merge_shape(in_shapes[0], out_shapes[0])
        if shape is None and (in_shapes[0] is not None or out_shapes[0] is not None):
            self.shape_error("data", in_shapes[0], out_shapes[0])
        return [shape] + list(in_shapes[1:]), [shape]

    def infer_type(self, in_types, out_types):
        """Default: every input and output shares one dtype (MXNet's ElemwiseType).

        The graph's inference raises, naming this node, when a known dtype
        differs from the shared one. Operators whose inputs differ (indices,
        labels of another type, Cast) override this.
        """
        known = next((t for t in list(in_types) + list(out_types) if t is not None), None)
        return [known] * len(in_types), [known] * len(out_types)

    def shape_error(self, what, expected, received):
        self.error(f"{what}: expected shape {expected}, received {received}")

    def merged_output(self, old, new, what="output"):
        """The unified output shape, or raise naming the output."""
        if new is None or old is None:
            return new if old is None else old
        merged = merge_shape(old, new)
        if merged is None:
            self.shape_error(what, new, old)
        return merged

    def assign_shape(self, shapes, i, shape, what=None):
        """Merge `shape` into shapes[i] (in place) or raise naming the input."""
        if shape is None:
            return
        merged = merge_shape(shapes[i], shape)
        if merged is None:
            names = self.list_inputs()
            what = what or (names[i] if i < len(names) else f"input {i}")
            self.shape_error(what, shape, shapes[i])
        shapes[i] = merged

    # ---- compute
    def forward(self, xp, inputs, outputs, ws, is_train):
        """Write the outputs into `outputs` (preallocated, any previous content)."""
        raise NotImplementedError

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        """Write each input gradient into in_grads[i]; in_grads[i] is None when not needed.

        out_grads holds one head gradient per output (None for a loss op's
        head when none was given). Aux states never receive gradients.
        """
        raise NotImplementedError

    def loss(self, xp, inputs, outputs):
        """A loss op's objective: the scalar whose gradient its backward writes.

        Loss ops (is_loss = True) ignore the head gradient, so finite
        differences cannot check them against sum(output * proj);
        `raymod.test_utils.check_numeric_gradient` differentiates this value
        instead. It must include grad_scale and the normalization, e.g. for
        SoftmaxOutput sum(-log p[label]) * grad_scale / valid_count.
        """
        raise NotImplementedError(
            f"{self.op_name} is a loss operator (is_loss=True) and must define "
            f"loss(self, xp, inputs, outputs) -> float: the objective whose gradient its "
            f"backward computes (see Operator.loss in raymod/ops/base.py)")

    def __repr__(self):
        return f"{self.op_name}({self.node_name!r}, {self.attrs})"


def register(cls):
    """Class decorator: put an operator under its name and aliases."""
    name = cls.op_name
    if not name or name in _REGISTRY:
        raise ValueError(f"operator name {name!r} missing or registered twice")
    _REGISTRY[name] = cls
    for alias in cls.aliases:
        _ALIASES[alias] = name
    return cls


def get_op_class(name):
    canonical = _ALIASES.get(name, name)
    if canonical not in _REGISTRY:
        raise MXNetError(f"unknown operator {name!r}")
    return _REGISTRY[canonical]


def registered_ops():
    """Canonical name -> class, for generating `rm.sym.*` and for test coverage."""
    return dict(_REGISTRY)


def alias_table():
    return dict(_ALIASES)

