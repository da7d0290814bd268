"""`Executor`: a symbol bound to arrays on one device, compiled once into a flat plan.

Binding infers every shape, plans the memory of every intermediate and
gradient, and turns the graph into two lists of steps (forward, and backward
in reverse). Running a step is one call into an operator with arrays it
writes into, so a bound executor allocates nothing per step. Gradients of a
value that feeds several consumers are summed: the first contribution is
written in place, the others go through a temporary and are added. grad_req
is applied here and nowhere else: `write` overwrites, `add` accumulates,
`null` skips the work.

The memory plan (raymod/executor_plan.py, raymod/executor_memory.py, MXNet's
PlanMemory in small): an intermediate lives from the step that writes it to
the last step -- forward or backward -- that reads it, as each operator
declares what its backward reads; then its memory goes to a later value, and
an operator that declares it computes in place over an input that dies
there. A bind without gradients keeps nothing for backward. `outputs` stay
valid after forward and after backward; `memory_report()` gives the figures.
A second backward after one forward may find what it needs reused: call
forward again (or bind with plan_memory=False).

Differences from MXNet, on purpose: `grad_dict` has no entry for an argument
whose grad_req is 'null' (MXNet maps it to None; `grad_arrays` does hold None);
simple_bind with `shared_exec` shares every same-named array (parameters:
the same array; data of a smaller size: a view), which is what executor groups
and buckets need, instead of MXNet's `shared_arg_names`/`shared_buffer` split.
"""
import numpy as np

from .base import MXNetError, as_dtype
from .context import current_context
from .executor_plan import HEAD_GRAD_REQUIRED, compile_plan  # noqa: F401
from .symbol.inference import graph_shapes, graph_types
from .ops.base import merge_shape, shape_known

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


def _named(values, names, what, allow_missing):
    """A list (in `names` order) or dict of arrays, as a dict; None entries dropped."""
    if values is None:
        return {}
    if isinstance(values, dict):
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"{what}: unknown names {unknown}; expected some of {names}")
        out = {k: v for k, v in values.items() if v is not None}
    else:
        values = list(values)
        if len(values) != len(names):
            raise ValueError(f"Length of {what} does not match the number of arguments: "
                             f"received {len(values)} arrays for {len(names)} names {names}")
        out = {n: v for n, v in zip(names, values) if v is not None}
    if not allow_missing:
        for name in names:
            if name not in out:
                raise ValueError(f"key `{name}` is missing in `{what}`")
    return out


def _view_or_new(xp, old, shape, allow_up_sizing, name, owned):
    """`old` itself, a view of its first elements (smaller), or a new array (up-sizing)."""
    if old.shape == shape:
        return old
    size = int(np.prod(shape))
    if size > old.size:
        if not allow_up_sizing:
            raise MXNetError(
                f"New shape of arg: {name} is larger than original. First making a big "
                f"executor and then down sizing it is more efficient than the reverse. If you "
                f"really want to up size, set allow_up_sizing=True to enable allocation of "
                f"new arrays.")
    elif old.flags.c_contiguous:
        return old.reshape(-1)[:size].reshape(shape)
    arr = xp.zeros(shape, dtype=old.dtype)
    owned.add(id(arr))
    return arr


class Executor:
    """A bound symbol: `arg_dict`, `grad_dict`, `aux_dict`, `outputs`, forward, backward.

    Build one with `Symbol.bind` (your arrays, used in place) or
    `Symbol.simple_bind` (arrays allocated from the input shapes). With
    `shared_exec`, intermediates live in that executor's memory pool (MXNet's
    shared memory pool), as large as the larger plan: the two must not run
    interleaved. `plan_memory=False` gives every intermediate its own memory
    for the whole step (no reuse, nothing in place), to debug an operator's
    memory declarations.
    """

    def __init__(self, symbol, ctx, args, args_grad=None, grad_req="write",
                 aux_states=None, shared_exec=None, seed=None, *, plan_memory=True):
        self._symbol = symbol
        self._ctx = ctx or current_context()
        xp = self._ctx.xp
        self._xp = xp
        arg_names = symbol.list_arguments()
        aux_names = symbol.list_auxiliary_states()
        self._arg_names, self._aux_names = arg_names, aux_names   # a graph never changes
        dup = sorted({n for n in arg_names + aux_names if (arg_names + aux_names).count(n) > 1})
        if dup:
            raise MXNetError(f"bind: the symbol has several inputs named {dup}; input "
                             f"names must be unique")
        args = _named(args, arg_names, "args", allow_missing=False)
        aux_states = _named(aux_states, aux_names, "aux_states", allow_missing=False)
        self._grad_req = _normalize_grad_req(grad_req, arg_names)
        args_grad = _named(args_grad, arg_names, "args_grad", allow_missing=True)
        for name, req in self._grad_req.items():
            if req != "null" and name not in args_grad:
                if not isinstance(grad_req, str):
                    raise MXNetError(f"bind: grad_req {req!r} for {name!r} needs an "
                                     f"array in args_grad")
                self._grad_req[name] = "null"   # MXNet: no gradient array, no gradient

        self.arg_dict = {n: self._as_device(args[n], n) for n in arg_names}
        self.aux_dict = {n: self._as_device(aux_states[n], n) for n in aux_names}
        self.grad_dict = {n: self._as_device(args_grad[n], n) for n in arg_names
                          if self._grad_req[n] != "null"}
        self._check_arrays()
        self._owned = set()          # ids of arrays this executor allocated (simple_bind)
        self._monitor = None
        if seed is None:
            from .random import executor_seed
            seed = executor_seed()
        self._seed = int(seed)
        self._plan_memory = bool(plan_memory)
        self._rng = xp.random.default_rng(self._seed)
        self._plan = compile_plan(symbol, self.arg_dict, self.aux_dict, self.grad_dict,
                                  self._grad_req, self._entry_shapes, self._entry_types,
                                  xp, self._rng,
                                  pool=shared_exec._plan.pool if shared_exec else None,
                                  plan_memory=plan_memory)
        del self._entry_shapes, self._entry_types    # needed only to compile

    def rng_state(self):
        """The state of the executor's generator (Dropout masks), to resume it exactly."""
        return self._rng.bit_generator.state

    def set_rng_state(self, state):
        self._rng.bit_generator.state = state

    @property
    def outputs(self):
        """The output arrays (valid after forward, and still after backward)."""
        return self._plan.outputs

    # ------------------------------------------------------------------ construction
    @classmethod
    def simple_bind(cls, symbol, ctx=None, grad_req="write", type_dict=None,
                    shared_exec=None, shapes=None, seed=None, share_memory=False, *,
                    plan_memory=True):
        """Allocate every argument, gradient and aux array from `shapes`, then bind.

        `seed` seeds the executor's generator (Dropout masks); by default one
        is drawn from `raymod.random.executor_seed()`. With `share_memory`,
        intermediates live in `shared_exec`'s memory pool (MXNet's shared memory
        pool), which grows to the larger of the two plans: only for executors
        that never run interleaved with it, such as the buckets of one module.
        `plan_memory=False` gives every intermediate its own memory (see Executor).
        """
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
        exe = cls(symbol, ctx, args, args_grad=grads, grad_req=reqs, aux_states=aux, seed=seed,
                  shared_exec=shared if share_memory else None, plan_memory=plan_memory)
        exe._owned = owned
        return exe

    def _as_device(self, value, name):
        xp = self._xp
        if isinstance(value, xp.ndarray):
            return value
        if hasattr(value, "asnumpy"):
            value = value.asnumpy()
        return xp.asarray(np.asarray(value) if xp is not np else value)

    def _check_arrays(self):
        """Every shape and dtype must agree with inference, before anything runs."""
        for name, grad in self.grad_dict.items():
            arg = self.arg_dict[name]
            if grad.shape != arg.shape or grad.dtype != arg.dtype:
                raise MXNetError(f"bind: gradient array for {name!r} has shape {grad.shape} "
                                 f"{grad.dtype}, expected {arg.shape} {arg.dtype} like the "
                                 f"argument")
        # Gradients and aux states are written in place, also through reshaped views.
        for what, arrays in (("gradient", self.grad_dict), ("auxiliary state", self.aux_dict)):
            for name, arr in arrays.items():
                writeable = getattr(arr.flags, "writeable", True)   # cupy has no flag
                if not (arr.flags.c_contiguous and writeable):
                    raise MXNetError(f"bind: the {what} array for {name!r} must be a "
                                     f"writeable C-contiguous array")
        given = {n: a.shape for n, a in self.arg_dict.items()}
        given.update({n: a.shape for n, a in self.aux_dict.items()})
        order, shapes = graph_shapes(self._symbol._heads, given)
        for node in order:
            if not node.is_variable:
                for i in range(node.num_outputs):
                    if not shape_known(shapes[(id(node), i)]):
                        raise MXNetError(f"{node.op.op_name} '{node.name}': cannot infer the "
                                         f"shape of output {i} from the bound arrays")
        given_types = {n: a.dtype for n, a in self.arg_dict.items()}
        given_types.update({n: a.dtype for n, a in self.aux_dict.items()})
        _, types = graph_types(self._symbol._heads, given_types)
        self._entry_shapes, self._entry_types = shapes, types

    # ------------------------------------------------------------------ properties
    @property
    def arg_arrays(self):
        """Argument arrays in list_arguments() order."""
        return [self.arg_dict[n] for n in self._arg_names]

    @property
    def grad_arrays(self):
        """Gradient arrays in list_arguments() order; None where grad_req is 'null'."""
        return [self.grad_dict.get(n) for n in self._arg_names]

    @property
    def aux_arrays(self):
        """Auxiliary state arrays in list_auxiliary_states() order."""
        return [self.aux_dict[n] for n in self._aux_names]

    @property
    def output_dict(self):
        names = self._symbol.list_outputs()
        if len(set(names)) != len(names):
            raise ValueError(f"Duplicate names detected, {names}")
        return dict(zip(names, self.outputs))

    @property
    def symbol(self):
        return self._symbol

    @property
    def grad_req(self):
        return dict(self._grad_req)

    def nbytes(self, owned_only=True):
        """Bytes of memory this executor holds (owned_only: not shared with another).

        Intermediates count as the bytes this executor's plan added to its
        memory pool when it was bound (0 for a bucket that fits in the pool).
        """
        arrays = list(self.arg_dict.values()) + list(self.grad_dict.values()) + \
            list(self.aux_dict.values())
        total = sum(int(a.nbytes) for a in arrays
                    if not owned_only or id(a) in self._owned)
        return total + self._plan.nbytes()

    def memory_report(self):
        """Where this executor's memory goes, in bytes: the memory plan's accounting.

        Returns
        -------
        dict
            ``arguments``: the bound arguments (weights, data, labels);
            ``aux_states``: the auxiliary states; ``gradients``: the gradient
            arrays; ``outputs``: the graph outputs (kept after forward and
            backward); ``saved``: other intermediates backward reads, kept
            from forward to the end of backward; ``workspace``: operators' own
            buffers (small per-node state such as BatchNorm's batch
            statistics); ``kept``: the pool's memory for what operators keep
            from forward to backward themselves (Dropout's mask, the RNN
            operator's gates); ``arena``: the planned memory of every
            intermediate and gradient, after reuse; ``unplanned``: what the
            same values take with no reuse; ``peak_live``: the most
            intermediate bytes alive at one time (the arena's lower bound);
            ``pool``: the shared pool (arena, scratch, kept) this executor
            draws from, each part as large as the largest use of it;
            ``scratch``: the part of the pool holding operator temporaries;
            ``total``: arguments + aux_states + gradients + pool +
            workspace, this executor's footprint at its peak.
        """
        report = self._plan.report()
        report["arguments"] = sum(int(a.nbytes) for a in self.arg_dict.values())
        report["aux_states"] = sum(int(a.nbytes) for a in self.aux_dict.values())
        report["gradients"] = sum(int(a.nbytes) for a in self.grad_dict.values())
        report["total"] = report["arguments"] + report["aux_states"] + \
            report["gradients"] + report["pool"] + report["workspace"]
        return report

    # ------------------------------------------------------------------ running
    def forward(self, is_train=False, **kwargs):
        """Run the graph; keyword arrays are first copied into the bound arguments.

        Parameters
        ----------
        is_train : bool, default False
            Training mode (Dropout active, BatchNorm batch statistics).
        **kwargs
            name=array for arguments to overwrite; shapes must match the binding.
        """
        for name, value in kwargs.items():
            if name not in self.arg_dict:
                raise TypeError(f"Unknown argument {name}")
            if not hasattr(value, "shape"):
                raise ValueError("only accept keyword argument of NDArrays and numpy.ndarray")
            dst = self.arg_dict[name]
            if tuple(value.shape) != dst.shape:
                raise ValueError(f"Shape not match! Argument {name}, need: {dst.shape}, "
                                 f"received: {tuple(value.shape)}")
        for name, value in kwargs.items():
            self.arg_dict[name][...] = self._xp.asarray(value)
        self._plan.forward(bool(is_train), self._monitor)
        return self.outputs

    def backward(self, out_grads=None, is_train=True):
        """Compute gradients into grad_dict, following each argument's grad_req.

        Parameters
        ----------
        out_grads : array, list of arrays, or dict by output name, optional
            Head gradients. Outputs of loss operators (and BlockGrad) need none
            and ignore one given; every other output needs one.
        """
        if isinstance(out_grads, dict):
            out_grads = [out_grads.get(k) for k in self._symbol.list_outputs()]
        elif out_grads is not None and not isinstance(out_grads, (list, tuple)):
            out_grads = [out_grads]
        self._plan.backward(out_grads, is_train, self._monitor)

    def set_monitor_callback(self, callback, monitor_all=False):
        """Call `callback(name, array)` on every op output in forward and backward.

        Forward outputs are named `<node>_<output>`, backward ones
        `<node>_backward_output[<i>]` (one per argument of the op, as MXNet). With
        `monitor_all`, each op's inputs are reported before it runs, as
        `<node>_<input>` and, for variables, also by their own name.
        """
        self._monitor = (callback, bool(monitor_all)) if callback is not None else None

    # ------------------------------------------------------------------ parameters
    def copy_params_from(self, arg_params, aux_params=None, allow_extra_params=False):
        """Copy values (cast to each array's dtype) into the bound arguments / aux states."""
        for name, value in (arg_params or {}).items():
            if name in self.arg_dict:
                self._copy_into(self.arg_dict[name], value, name)
            elif not allow_extra_params:
                raise ValueError(f'Find name "{name}" that is not in the arguments')
        for name, value in (aux_params or {}).items():
            if name in self.aux_dict:
                self._copy_into(self.aux_dict[name], value, name)
            elif not allow_extra_params:
                raise ValueError(f"Find name {name} that is not in the auxiliary states")

    def _copy_into(self, dst, value, name):
        if hasattr(value, "asnumpy"):
            value = value.asnumpy()
        if tuple(value.shape) != dst.shape:
            raise ValueError(f"copy_params_from: {name!r} has shape {tuple(value.shape)}, "
                             f"the executor holds {dst.shape}")
        dst[...] = self._xp.asarray(value)

    def reshape(self, partial_shaping=False, allow_up_sizing=False, **kwargs):
        """A new executor for new input shapes, sharing this one's memory (MXNet's rules).

        Arrays whose shape is unchanged are the same arrays; smaller ones are
        views of the old ones; larger ones need `allow_up_sizing=True`. An
        argument not named in `kwargs` whose inferred shape changes is an
        error unless `partial_shaping=True`.
        """
        inputs = set(self._symbol.list_inputs())
        unknown = sorted(set(kwargs) - inputs)
        if unknown:
            raise MXNetError(f"reshape: {unknown} are not inputs of the symbol; inputs are "
                             f"{sorted(inputs)}")
        shapes = {n: tuple(s) for n, s in kwargs.items()}
        order, inferred = graph_shapes(self._symbol._heads, shapes)
        owned = set()
        new = {"arg": {}, "grad": {}, "aux": {}}
        for node in order:
            if not node.is_variable:
                continue
            name = node.name
            kind = "aux" if name in self.aux_dict else "arg"
            old = self.aux_dict[name] if kind == "aux" else self.arg_dict[name]
            shape = inferred[(id(node), 0)]
            if not shape_known(shape):      # undecided by the new shapes: keep the old one
                shape = merge_shape(shape, old.shape)
            if shape is None or not shape_known(shape):
                raise MXNetError(f"reshape: cannot infer the new shape of {name!r} from "
                                 f"{shapes}")
            if not (partial_shaping or name in shapes or shape == old.shape):
                raise MXNetError(
                    f"Shape of unspecified array arg:{name} changed ({old.shape} -> {shape}). "
                    f"This can cause the new executor to not share parameters with the old "
                    f"one. Please check for error in network. If this is intended, set "
                    f"partial_shaping=True to suppress this warning.")
            new[kind][name] = _view_or_new(self._xp, old, shape, allow_up_sizing, name, owned)
            if kind == "arg" and name in self.grad_dict:
                new["grad"][name] = _view_or_new(self._xp, self.grad_dict[name], shape,
                                                 allow_up_sizing, name, owned)
        # The reshaped executor replaces this one: it may reuse its intermediate memory.
        exe = Executor(self._symbol, self._ctx, new["arg"], args_grad=new["grad"],
                       grad_req=dict(self._grad_req), aux_states=new["aux"], seed=self._seed,
                       shared_exec=self, plan_memory=self._plan_memory)
        exe._owned = owned
        return exe

    def debug_str(self):
        return self._plan.describe()
