"""The flat plan an Executor runs: forward steps, backward steps, head-gradient rules.

`compile_plan` walks the graph once, at bind. Every op output gets its buffer
and every entry that needs a gradient gets a gradient buffer there; running
the plan is a loop of operator calls on those arrays and allocates nothing.
"""
import numpy as np

from .base import MXNetError
from .ops.base import Workspace
from .symbol.node import aux_variable_ids, topo_order

HEAD_GRAD_REQUIRED = (
    "Because the last operator is not Loss function, head_gradient is required when "
    "calling backward. If you are attempting to minimize the output as an objective, "
    "please modify your network and pass it through the make_loss symbol.")
# Besides losses, outputs whose input gradient does not depend on a head gradient.
_NO_HEAD_GRAD_OPS = ("BlockGrad",)


def ignores_head_grad(op):
    """True for ops whose backward never reads the head gradient (losses, BlockGrad)."""
    return op is not None and (op.is_loss or op.op_name in _NO_HEAD_GRAD_OPS)


class _Step:
    __slots__ = ("node", "op", "ins", "outs", "ws", "in_grads", "out_grads", "adds",
                 "input_names", "monitor_zeros")

    def __init__(self, node, ins, outs, ws):
        self.node, self.op, self.ins, self.outs, self.ws = node, node.op, ins, outs, ws
        self.in_grads = self.out_grads = None
        self.adds = ()
        self.input_names = node.op.list_inputs()
        self.monitor_zeros = None


class _Head:
    """How backward seeds one output's gradient: `write` or `add` the given array.

    A head gradient is `required` unless the output's op ignores it (losses,
    BlockGrad); one given anyway is still passed on (SoftmaxOutput with
    out_grad=True reads it), and a missing one reads as zeros.
    """
    __slots__ = ("index", "buf", "add", "required")

    def __init__(self, index, buf, add, required):
        self.index, self.buf, self.add, self.required = index, buf, add, required


class Plan:
    def __init__(self, xp, steps, backward_steps, outputs, heads, allocated, named=None):
        self.xp = xp
        self.buffers = named or {}     # name -> buffer, the pool a sharing executor reuses
        self.steps = steps
        self.backward_steps = backward_steps
        self.outputs = outputs
        self._heads = heads            # _Head for every output that needs a head gradient
        self._allocated = allocated

    def forward(self, is_train, monitor=None):
        xp = self.xp
        if monitor is None:
            for s in self.steps:
                s.op.forward(xp, s.ins, s.outs, s.ws, is_train)
            return
        callback, monitor_all = monitor
        for s in self.steps:
            if monitor_all:
                for name, (src, _), arr in zip(s.input_names, s.node.inputs, s.ins):
                    if src.is_variable:
                        callback(src.name, arr)
                    callback(f"{s.node.name}_{name}", arr)
            s.op.forward(xp, s.ins, s.outs, s.ws, is_train)
            for name, arr in zip(s.node.output_names(), s.outs):
                callback(name, arr)

    def backward(self, out_grads, is_train=True, monitor=None):
        xp = self.xp
        n_out = len(self.outputs)
        if out_grads is not None and len(out_grads) > n_out:
            raise MXNetError(f"backward: received {len(out_grads)} head gradients for "
                             f"{n_out} outputs")
        given = [None] * n_out if out_grads is None else \
            list(out_grads) + [None] * (n_out - len(out_grads))
        for head in self._heads:       # check every head before changing anything
            g = given[head.index]
            if g is None:
                if head.required:
                    raise MXNetError(HEAD_GRAD_REQUIRED)
            elif tuple(g.shape) != head.buf.shape:
                raise MXNetError(f"backward: head gradient {head.index} has shape "
                                 f"{tuple(g.shape)}, expected {head.buf.shape}")
        for head in self._heads:
            g = given[head.index]
            if g is None:
                if not head.add:
                    head.buf.fill(0)
            elif head.add:
                head.buf += xp.asarray(g)
            else:
                head.buf[...] = xp.asarray(g)
        for s in self.backward_steps:
            s.op.backward(xp, s.out_grads, s.ins, s.outs, s.in_grads, s.ws)
            for dst, tmp in s.adds:
                dst += tmp
            if monitor is not None:
                self._report_backward(s, monitor[0])

    def _report_backward(self, step, callback):
        """MXNet names a backward node's outputs <node>_backward_output[<i>], one per
        argument; an argument whose gradient is not needed reports zeros."""
        n_args = len(step.op.list_arguments())
        for i, g in enumerate(step.in_grads[:n_args]):
            if g is None:
                if step.monitor_zeros is None:      # once, only when monitoring
                    step.monitor_zeros = [self.xp.zeros(a.shape, dtype=a.dtype)
                                          for a in step.ins[:n_args]]
                g = step.monitor_zeros[i]
            suffix = "" if n_args == 1 else str(i)
            callback(f"{step.node.name}_backward_output{suffix}", g)

    def nbytes(self):
        return sum(int(a.nbytes) for a in self._allocated) + \
            sum(s.ws.nbytes() for s in self.steps)

    def describe(self):
        lines = []
        for s in self.steps:
            ins = [tuple(a.shape) for a in s.ins]
            outs = [tuple(a.shape) for a in s.outs]
            lines.append(f"{s.op.op_name} {s.node.name}: in {ins} -> out {outs}")
        return "\n".join(lines)


def compile_plan(symbol, arg_dict, aux_dict, grad_dict, grad_req, shapes, types, xp, rng,
                 pool=None):
    """Turn the graph into forward and backward step lists over preallocated arrays.

    pool: {buffer name: array} of another executor's plan (a bucket sharing the
    default bucket's memory). An op output, or a gradient buffer that is
    written before it is read in every backward, becomes a view of the pool's
    buffer of the same name when that one is large enough, as MXNet's shared
    memory pool; buffers that must stay zero are always this plan's own.
    """
    order = topo_order(symbol._heads)
    aux_ids = aux_variable_ids(order)
    allocated, named = [], {}

    def new_buffer(key, name, shareable=True):
        shape, dtype = shapes[key], np.dtype(types.get(key) or np.float32)
        src = pool.get(name) if (pool and shareable) else None
        size = int(np.prod(shape))
        if src is not None and src.dtype == dtype and src.size >= size:
            arr = src.reshape(-1)[:size].reshape(shape)
        else:
            arr = xp.zeros(shape, dtype=dtype)
            allocated.append(arr)
        if shareable:
            named[name] = arr
        return arr

    # Values: variables are the bound arrays; op outputs get buffers once, here.
    value, needs = {}, {}
    steps, node_needs = [], {}
    for node in order:
        if node.is_variable:
            is_aux = id(node) in aux_ids
            value[(id(node), 0)] = (aux_dict if is_aux else arg_dict)[node.name]
            needs[(id(node), 0)] = not is_aux and grad_req[node.name] != "null"
            continue
        names = node.output_names()
        outs = [new_buffer((id(node), i), names[i]) for i in range(node.num_outputs)]
        for i, arr in enumerate(outs):
            value[(id(node), i)] = arr
        aux_slots = set(node.aux_input_slots())
        ins = [value[(id(src), i)] for src, i in node.inputs]
        steps.append(_Step(node, ins, outs, Workspace(xp, rng)))
        nb = any(needs[(id(src), i)] for slot, (src, i) in enumerate(node.inputs)
                 if slot not in aux_slots)
        node_needs[id(node)] = nb
        for i in range(node.num_outputs):
            needs[(id(node), i)] = nb

    accumulate = {(id(n), 0) for n in order
                  if n.is_variable and needs[(id(n), 0)] and grad_req[n.name] == "add"}

    # Who writes each gradient: head gradients first; an output listed twice adds
    # its second head gradient. Loss and BlockGrad outputs need none.
    head_plan, written = [], set()
    for index, (node, i) in enumerate(symbol._heads):
        key = (id(node), i)
        if not needs[key]:
            continue
        head_plan.append((index, key, key in written or key in accumulate,
                          not ignores_head_grad(node.op)))
        written.add(key)
    # Then consumers, in backward order: the first writes in place, later ones add.
    routes = []
    for step in reversed(steps):
        node = step.node
        if not node_needs[id(node)]:
            continue
        aux_slots = set(node.aux_input_slots())
        route = []
        for slot, (src, i) in enumerate(node.inputs):
            key = (id(src), i)
            if slot in aux_slots or not needs[key]:
                route.append((None, key))
            elif key in written or key in accumulate:
                route.append(("add", key))
            else:
                route.append(("write", key))
                written.add(key)
        routes.append((step, route))

    # Gradient buffers: an argument's grad array, or one buffer per op output.
    grad = {}
    for node in order:
        for i in range(node.num_outputs):
            key = (id(node), i)
            if not needs[key]:
                continue
            if node.is_variable:
                grad[key] = grad_dict[node.name]
            else:   # one nobody writes must stay zero: never a view of shared memory
                grad[key] = new_buffer(key, "grad:" + node.output_names()[i],
                                       shareable=key in written)
    heads = [_Head(index, grad[key], add, required=required)
             for index, key, add, required in head_plan]

    backward_steps = []
    for step, route in routes:
        in_grads, adds = [], []
        for slot, (how, key) in enumerate(route):
            if how is None:
                in_grads.append(None)
            elif how == "add":
                tmp = new_buffer(key, f"tmp:{step.node.name}:{slot}")
                in_grads.append(tmp)
                adds.append((grad[key], tmp))
            else:
                in_grads.append(grad[key])
        step.in_grads = in_grads
        step.adds = tuple(adds)
        step.out_grads = [grad[(id(step.node), i)] for i in range(step.node.num_outputs)]
        backward_steps.append(step)

    outputs = [value[(id(n), i)] for n, i in symbol._heads]
    return Plan(xp, steps, backward_steps, outputs, heads, allocated, named)
