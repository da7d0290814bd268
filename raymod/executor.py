"""`Executor`: a symbol bound to arrays on one device, compiled once into a flat plan.

Binding infers every shape, allocates every output and gradient buffer, and
turns the graph into two lists of steps (forward, and backward in reverse).
Running a step is one call into an operator with arrays it writes into, so a
bound executor allocates nothing per step. Gradients of a value that feeds
several consumers are summed: the first contribution is written in place, the
others go through a scratch buffer and are added. grad_req is applied here and
nowhere else: `write` overwrites, `add` accumulates, `null` skips the work.
"""
import numpy as np

from .base import MXNetError, as_dtype
from .context import current_context
from .executor_plan import HEAD_GRAD_REQUIRED, compile_plan  # noqa: F401
from .symbol.inference import graph_shapes, graph_types
from .ops.base import shape_known

_GRAD_REQS = ("write", "add", "null")


def _normalize_grad_req(grad_req, arg_names):
    if isinstance(grad_req, str):
        reqs = {n: grad_req for n in arg_names}
    elif isinstance(grad_req, (list, tuple)):
        if len(grad_req) != len(arg_names):
            raise ValueError(f"grad_req list has {len(grad_req)} entries for "
                             f"{len(arg_names)} arguments {arg_names}")
        reqs = dict(zip(arg_names, grad_req))
    elif isinstance(grad_req, dict):
        unknown = sorted(set(grad_req) - set(arg_names))
        if unknown:
            raise ValueError(f"grad_req names unknown arguments {unknown}; "
                             f"arguments are {arg_names}")
        reqs = {n: grad_req.get(n, "null") for n in arg_names}
    else:
        raise TypeError(f"grad_req must be a str, list or dict, received {type(grad_req).__name__}")
    for name, req in reqs.items():
        if req not in _GRAD_REQS:
            raise ValueError(f"grad_req for {name!r} must be one of {_GRAD_REQS}, received {req!r}")
    return reqs


def _named(values, names, what):
    """A list (in `names` order) or dict of arrays, as a dict; None entries dropped."""
    if values is None:
        return {}
    if isinstance(values, dict):
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"{what}: unknown names {unknown}; expected some of {names}")
        return {k: v for k, v in values.items() if v is not None}
    values = list(values)
    if len(values) != len(names):
        raise ValueError(f"{what}: received {len(values)} arrays for {len(names)} names {names}")
    return {n: v for n, v in zip(names, values) if v is not None}


class Executor:
    """A bound symbol: `arg_dict`, `grad_dict`, `aux_dict`, `outputs`, forward, backward."""

    def __init__(self, symbol, ctx, args, args_grad=None, grad_req="write",
                 aux_states=None, shared_exec=None):
        self._symbol = symbol
        self._ctx = ctx or current_context()
        xp = self._ctx.xp
        self._xp = xp
        arg_names = symbol.list_arguments()
        aux_names = symbol.list_auxiliary_states()
        args = _named(args, arg_names, "args")
        missing = [n for n in arg_names if n not in args]
        if missing:
            raise MXNetError(f"bind: no array given for argument(s) {missing}")
        aux_states = _named(aux_states, aux_names, "aux_states")
        missing = [n for n in aux_names if n not in aux_states]
        if missing:
            raise MXNetError(f"bind: no array given for auxiliary state(s) {missing}")
        self._grad_req = _normalize_grad_req(grad_req, arg_names)
        args_grad = _named(args_grad, arg_names, "args_grad")
        for name, req in self._grad_req.items():
            if req != "null" and name not in args_grad:
                if args_grad or grad_req != "write" or isinstance(grad_req, (dict, list)):
                    raise MXNetError(f"bind: grad_req {req!r} for {name!r} needs an "
                                     f"array in args_grad")
                self._grad_req[name] = "null"   # bind(args) alone computes no gradients

        self.arg_dict = {n: self._as_device(args[n], n) for n in arg_names}
        self.aux_dict = {n: self._as_device(aux_states[n], n) for n in aux_names}
        self.grad_dict = {n: self._as_device(args_grad[n], n) for n in arg_names
                          if self._grad_req[n] != "null"}
        self._check_shapes()
        self._owned = set()          # arrays this executor allocated (simple_bind)
        self._monitor = None
        self._is_train = False
        self._plan = compile_plan(symbol, self.arg_dict, self.aux_dict, self.grad_dict,
                                  self._grad_req, self._entry_shapes, self._entry_types,
                                  xp, self._make_rng())
        self.outputs = self._plan.outputs

    # ------------------------------------------------------------------ construction
    @classmethod
    def simple_bind(cls, symbol, ctx=None, grad_req="write", type_dict=None,
                    shared_exec=None, shapes=None):
        ctx = ctx or current_context()
        xp = ctx.xp
        shapes = {k: tuple(v) for k, v in (shapes or {}).items()}
        inputs = set(symbol.list_inputs())
        unknown = sorted(set(shapes) - inputs)
        if unknown:
            raise ValueError(f"simple_bind: {unknown} are not inputs of the symbol; "
                             f"inputs are {sorted(inputs)}")
        order, entry_shapes = graph_shapes(symbol._heads, shapes)
        types = {k: as_dtype(v) for k, v in (type_dict or {}).items()}
        _, entry_types = graph_types(symbol._heads, types)
        by_name = {n.name: (entry_shapes[(id(n), 0)], entry_types[(id(n), 0)])
                   for n in order if n.is_variable}
        undecided = [n for n, (s, _) in by_name.items() if not shape_known(s)]
        if undecided:
            raise MXNetError(f"simple_bind: cannot decide the shape of {undecided} from "
                             f"the given shapes {shapes}; pass them as keyword arguments")
        arg_names = symbol.list_arguments()
        reqs = _normalize_grad_req(grad_req, arg_names)
        shared = shared_exec
        owned = set()

        def alloc(name, pool):
            shape, dtype = by_name[name]
            dtype = dtype or np.dtype("float32")
            have = pool.get(name) if shared is not None else None
            if have is not None and have.dtype == dtype:
                if have.shape == shape:
                    return have               # parameters: one array for all buckets
                size = int(np.prod(shape))
                if have.size >= size and have.flags.c_contiguous:
                    return have.reshape(-1)[:size].reshape(shape)   # data: a view
            arr = xp.zeros(shape, dtype=dtype)
            owned.add(id(arr))
            return arr

        args = {n: alloc(n, shared.arg_dict if shared else {}) for n in arg_names}
        grads = {n: alloc(n, shared.grad_dict if shared else {}) for n in arg_names
                 if reqs[n] != "null"}
        aux = {n: alloc(n, shared.aux_dict if shared else {})
               for n in symbol.list_auxiliary_states()}
        exe = cls(symbol, ctx, args, args_grad=grads, grad_req=reqs, aux_states=aux)
        exe._owned = owned
        return exe

    def _as_device(self, value, name):
        xp = self._xp
        if isinstance(value, xp.ndarray):
            return value
        return xp.asarray(np.asarray(value) if xp is not np else value)

    def _make_rng(self):
        from . import random as rm_random
        seed = int(rm_random.generator().integers(0, 2**31 - 1))
        return self._xp.random.default_rng(seed)

    def _check_shapes(self):
        given = {n: a.shape for n, a in self.arg_dict.items()}
        given.update({n: a.shape for n, a in self.aux_dict.items()})
        order, shapes = graph_shapes(self._symbol._heads, given)
        for node in order:
            if not node.is_variable:
                for i in range(node.num_outputs):
                    if not shape_known(shapes[(id(node), i)]):
                        raise MXNetError(f"{node.op.op_name} '{node.name}': cannot infer the "
                                         f"shape of output {i} from the bound arrays")
        for name, grad in self.grad_dict.items():
            if grad.shape != self.arg_dict[name].shape:
                raise MXNetError(f"bind: gradient array for {name!r} has shape {grad.shape}, "
                                 f"expected {self.arg_dict[name].shape}")
        given_types = {n: a.dtype for n, a in self.arg_dict.items()}
        given_types.update({n: a.dtype for n, a in self.aux_dict.items()})
        _, types = graph_types(self._symbol._heads, given_types)
        self._entry_shapes, self._entry_types = shapes, types

    # ------------------------------------------------------------------ properties
    @property
    def arg_arrays(self):
        return [self.arg_dict[n] for n in self._symbol.list_arguments()]

    @property
    def grad_arrays(self):
        return [self.grad_dict.get(n) for n in self._symbol.list_arguments()]

    @property
    def aux_arrays(self):
        return [self.aux_dict[n] for n in self._symbol.list_auxiliary_states()]

    @property
    def output_dict(self):
        return dict(zip(self._symbol.list_outputs(), self.outputs))

    @property
    def symbol(self):
        return self._symbol

    @property
    def grad_req(self):
        return dict(self._grad_req)

    def nbytes(self, owned_only=True):
        """Bytes of memory this executor holds (owned_only: not shared with another)."""
        arrays = list(self.arg_dict.values()) + list(self.grad_dict.values()) + \
            list(self.aux_dict.values())
        total = sum(int(a.nbytes) for a in arrays
                    if not owned_only or id(a) in self._owned)
        return total + self._plan.nbytes()

    # ------------------------------------------------------------------ running
    def forward(self, is_train=False, **kwargs):
        for name, value in kwargs.items():
            if name not in self.arg_dict:
                raise MXNetError(f"forward: {name!r} is not an argument; arguments are "
                                 f"{list(self.arg_dict)}")
            dst = self.arg_dict[name]
            if tuple(value.shape) != dst.shape:
                raise MXNetError(f"forward: {name!r} has shape {tuple(value.shape)}, the "
                                 f"executor was bound with {dst.shape}")
            dst[...] = self._xp.asarray(value)
        self._is_train = bool(is_train)
        self._plan.forward(self._is_train, self._monitor)
        return self.outputs

    def backward(self, out_grads=None, is_train=True):
        if out_grads is not None and not isinstance(out_grads, (list, tuple)):
            out_grads = [out_grads]
        self._plan.backward(out_grads, is_train)

    def set_monitor_callback(self, callback, monitor_all=False):
        """Call `callback(name, array)` on every op output (and inputs with monitor_all)."""
        self._monitor = (callback, monitor_all) if callback is not None else None

    # ------------------------------------------------------------------ parameters
    def copy_params_from(self, arg_params, aux_params=None, allow_extra_params=False):
        for name, value in (arg_params or {}).items():
            if name in self.arg_dict:
                self._copy_into(self.arg_dict[name], value, name)
            elif not allow_extra_params:
                raise ValueError(f"copy_params_from: {name!r} is not an argument of the executor")
        for name, value in (aux_params or {}).items():
            if name in self.aux_dict:
                self._copy_into(self.aux_dict[name], value, name)
            elif not allow_extra_params:
                raise ValueError(f"copy_params_from: {name!r} is not an auxiliary state")

    def _copy_into(self, dst, value, name):
        if tuple(value.shape) != dst.shape:
            raise ValueError(f"{name!r}: expected shape {dst.shape}, received {tuple(value.shape)}")
        dst[...] = self._xp.asarray(value)

    def reshape(self, partial_shaping=False, allow_up_sizing=False, **kwargs):
        """A new executor for new input shapes that shares this one's parameters."""
        shapes = {n: tuple(s) for n, s in kwargs.items()}
        _, inferred = graph_shapes(self._symbol._heads, shapes)
        for node in self._symbol._order():
            # Inputs the new shapes do not decide keep their current shape.
            if node.is_variable and not shape_known(inferred[(id(node), 0)]):
                old = self.arg_dict.get(node.name, self.aux_dict.get(node.name))
                shapes[node.name] = old.shape
        return Executor.simple_bind(self._symbol, self._ctx, grad_req=self._grad_req,
                                    type_dict={n: a.dtype for n, a in self.arg_dict.items()},
                                    shared_exec=self, shapes=shapes)

    def debug_str(self):
        return self._plan.describe()
