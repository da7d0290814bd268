"""The flat plan an Executor runs: forward steps, backward steps, head-gradient rules."""
import numpy as np

from .base import MXNetError
from .ops.base import Workspace
from .symbol.node import aux_variable_ids, topo_order

HEAD_GRAD_REQUIRED = (
    "Because the last operator is not Loss function, head_gradient is required when "
    "calling backward. If you are attempting to minimize the output as an objective, "
    "please modify your network and pass it through the make_loss symbol.")
_NO_HEAD_GRAD_OPS = ("BlockGrad",)     # besides losses: outputs that need no head gradient


class _Step:
    __slots__ = ("node", "op", "ins", "outs", "ws", "in_grads", "out_grads", "adds")

    def __init__(self, node, ins, outs, ws):
        self.node, self.op, self.ins, self.outs, self.ws = node, node.op, ins, outs, ws
        self.in_grads = self.out_grads = None
        self.adds = ()


class Plan:
    def __init__(self, xp, steps, backward_steps, outputs, heads, allocated):
        self.xp = xp
        self.steps = steps
        self.backward_steps = backward_steps
        self.outputs = outputs
        self._heads = heads            # (index, grad buffer, add?, producer op or None)
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
                for name, arr in zip(s.op.list_inputs(), s.ins):
                    callback(f"{s.node.name}_{name}", arr)
            s.op.forward(xp, s.ins, s.outs, s.ws, is_train)
            for name, arr in zip(s.node.output_names(), s.outs):
                callback(name, arr)

    def backward(self, out_grads, is_train=True):
        xp = self.xp
        if out_grads is not None and len(out_grads) != len(self.outputs):
            raise MXNetError(f"backward: received {len(out_grads)} head gradients for "
                             f"{len(self.outputs)} outputs")
        for index, buf, add, producer in self._heads:
            given = out_grads[index] if out_grads is not None else None
            if given is None:
                if producer is not None and not (producer.is_loss
                                                 or producer.op_name in _NO_HEAD_GRAD_OPS):
                    raise MXNetError(HEAD_GRAD_REQUIRED)
                if not add:
                    buf.fill(0)
                continue
            if tuple(given.shape) != buf.shape:
                raise MXNetError(f"backward: head gradient {index} has shape "
                                 f"{tuple(given.shape)}, expected {buf.shape}")
            if add:
                buf += xp.asarray(given)
            else:
                buf[...] = xp.asarray(given)
        for s in self.backward_steps:
            s.op.backward(xp, s.out_grads, s.ins, s.outs, s.in_grads, s.ws)
            for dst, tmp in s.adds:
                dst += tmp

    def nbytes(self):
        return sum(int(a.nbytes) for a in self._allocated) + \
            sum(s.ws.nbytes() for s in self.steps)

    def describe(self):
        lines = []
        for s in self.steps:
            lines.append(f"{s.op.op_name} {s.node.name}: in "
                         f"{[tuple(a.shape) for a in s.ins]} -> out {[tuple(a.shape) for a in s.outs]}")
        return "\n".join(lines)


def compile_plan(symbol, arg_dict, aux_dict, grad_dict, grad_req, shapes, types, xp, rng):
    order = topo_order(symbol._heads)
    aux_ids = aux_variable_ids(order)
    allocated = []

    def new_buffer(key):
        arr = xp.zeros(shapes[key], dtype=types.get(key) or np.float32)
        allocated.append(arr)
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
        outs = [new_buffer((id(node), i)) for i in range(node.num_outputs)]
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

    # Gradient buffers: an argument's grad array, or one buffer per op output.
    grad, accumulate = {}, set()
    for node in order:
        for i in range(node.num_outputs):
            key = (id(node), i)
            if not needs[key]:
                continue
            if node.is_variable:
                grad[key] = grad_dict[node.name]
                if grad_req[node.name] == "add":
                    accumulate.add(key)
            else:
                grad[key] = new_buffer(key)

    # Head gradients are the first contribution to their entries.
    heads, written = [], set()
    for index, (node, i) in enumerate(symbol._heads):
        key = (id(node), i)
        if key in grad and key not in written:
            heads.append((index, grad[key], key in accumulate, node.op))
            written.add(key)

    backward_steps = []
    for step in reversed(steps):
        node = step.node
        if not node_needs[id(node)]:
            continue
        aux_slots = set(node.aux_input_slots())
        in_grads, adds = [], []
        for slot, (src, i) in enumerate(node.inputs):
            key = (id(src), i)
            if slot in aux_slots or not needs[key]:
                in_grads.append(None)
            elif key in written or key in accumulate:
                tmp = xp.zeros(shapes[key], dtype=types.get(key) or np.float32)
                allocated.append(tmp)
                in_grads.append(tmp)
                adds.append((grad[key], tmp))
            else:
                in_grads.append(grad[key])
                written.add(key)
        step.in_grads = in_grads
        step.adds = tuple(adds)
        step.out_grads = [grad[(id(node), i)] for i in range(node.num_outputs)]
        backward_steps.append(step)

    outputs = [value[(id(n), i)] for n, i in symbol._heads]
    return Plan(xp, steps, backward_steps, outputs, heads, allocated)
