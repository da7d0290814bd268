"""The flat plan an Executor runs: forward steps, backward steps, head-gradient rules.

`compile_plan` walks the graph once, at bind. It decides which entries need
a gradient and who writes each one (grad_req is applied here), then
describes every intermediate -- op outputs, their gradients, the scratch
that sums a gradient used twice -- as a `Value` written at one step and read
until another, from each operator's declarations of what its backward reads
and what it may compute in place. `raymod.executor_memory` decides where
each value lives in one arena; running the plan is a loop of operator calls
on views of that arena and allocates nothing.
"""
import bisect

import numpy as np

from .base import MXNetError
from .executor_memory import FOREVER, MemoryPool, Value, plan_values
from .ops.base import Workspace
from .symbol.node import aux_variable_ids, topo_order

HEAD_GRAD_REQUIRED = (
    "Because the last operator is not Loss function, head_gradient is required when "
    "calling backward. If you are attempting to minimize the output as an objective, "
    "please modify your network and pass it through the make_loss symbol.")
# Besides losses, outputs whose input gradient does not depend on a head gradient.
_NO_HEAD_GRAD_OPS = ("BlockGrad",)
# Debugging aid: plans compiled while this is True fill every block of the arena
# with NaN bytes as soon as its last value dies, so an operator that reads a value
# it did not declare (backward_inputs/backward_outputs) reads NaN. Tests set it.
POISON_FREED = False


def check_head_gradients(out_grads, shapes, required, checked=None):
    """The head gradients `backward` was given, one per output (None where none was),
    after checking their number, that the `required` outputs have one, and the shapes
    of those given for the `checked` outputs (all by default)."""
    n_out = len(shapes)
    if out_grads is not None and len(out_grads) > n_out:
        raise MXNetError(f"backward: received {len(out_grads)} head gradients for "
                         f"{n_out} outputs")
    given = [None] * n_out if out_grads is None else \
        list(out_grads) + [None] * (n_out - len(out_grads))
    if any(given[i] is None for i in required):
        raise MXNetError(HEAD_GRAD_REQUIRED)
    for index in range(n_out) if checked is None else checked:
        grad = given[index]
        if grad is not None and tuple(grad.shape) != tuple(shapes[index]):
            raise MXNetError(f"backward: head gradient {index} has shape "
                             f"{tuple(grad.shape)}, expected {tuple(shapes[index])}")
    return given


def ignores_head_grad(op):
    """True for ops whose backward never reads the head gradient (losses, BlockGrad)."""
    return op is not None and (op.is_loss or op.op_name in _NO_HEAD_GRAD_OPS)


class _Step:
    """One operator call on its arrays. While compiling, the lists hold what each array
    will be (a bound array or a planned Value); `_materialize` makes them arrays."""

    __slots__ = ("node", "op", "ws", "monitor_zeros", "ins", "outs", "in_grads",
                 "out_grads", "adds", "freed_forward", "freed_backward")

    def __init__(self, node, ins, outs, ws):
        self.node, self.op, self.ws = node, node.op, ws
        self.ins, self.outs = ins, outs
        self.in_grads = self.out_grads = None
        self.adds = ()
        self.monitor_zeros = None
        self.freed_forward = self.freed_backward = ()


class _Head:
    """How backward seeds one output's gradient: `write` or `add` the given array.

    A head gradient is `required` unless the output's op ignores it (losses,
    BlockGrad); one given anyway is still passed on (SoftmaxOutput with
    out_grad=True reads it), and a missing one reads as zeros.
    """
    __slots__ = ("index", "buf", "add", "required", "step", "slot")

    def __init__(self, index, ref, add, required):
        self.index, self.buf, self.add, self.required = index, ref, add, required
        self.step = self.slot = None   # set when the op gets the given array itself


class Plan:
    """Forward and backward step lists over views of one memory pool's arena.

    Only arrays are kept once compiled (no per-value bookkeeping), so a bound
    bucket costs little beyond its views; `summary` holds the plan's numbers.
    """

    def __init__(self, xp, steps, backward_steps, outputs, heads, pool, owned, summary,
                 backward_consumes, seed_freed):
        self.xp = xp
        self.pool = pool               # the arena this plan shares with its buckets
        self.steps = steps
        self.backward_steps = backward_steps
        self.poison = POISON_FREED     # debugging: fill freed memory with NaN (0xFF bytes)
        self.summary = summary         # the memory plan's numbers (see report)
        self._outputs = outputs
        self._heads = heads            # _Head for every output that needs a head gradient
        self._owned = owned            # arrays this plan allocated outside the pool
        self._added_bytes = 0
        # Backward reuses memory of forward values it has read: a second backward needs
        # a new forward first (checked, where MXNet would read overwritten values).
        self._backward_consumes = backward_consumes
        self._seed_freed = seed_freed
        self._fresh = False            # a forward ran since the last backward

    # ------------------------------------------------------------------ arrays
    def _arrays(self):
        """Every list of this plan that holds arrays, with its owner and attribute."""
        for s in self.steps:
            yield s.ins
            yield s.outs
            if s.in_grads is not None:
                yield s.in_grads
                yield s.out_grads

    def rebase(self, old, new):
        """The pool replaced its arena `old` by `new`: view the same offsets of `new`."""
        start, end = _address(old), _address(old) + int(old.size)
        moved = {}

        def move(a):
            if a is None:
                return None
            if id(a) not in moved:
                addr = _address(a)
                inside = start <= addr < end or (a.size == 0 and a.base is old)
                moved[id(a)] = self.pool.view(addr - start, a.shape, a.dtype) if inside \
                    else a
            return moved[id(a)]
        # (views that were one object stay one object: `moved` is keyed by the old one)

        for arrays in self._arrays():
            arrays[:] = [move(a) for a in arrays]
        for s in self.backward_steps:
            s.adds = tuple((move(d), move(t)) for d, t in s.adds)
        for h in self._heads:
            h.buf = move(h.buf)
        self._outputs[:] = [move(a) for a in self._outputs]

    @property
    def outputs(self):
        return self._outputs

    # ------------------------------------------------------------------ running
    def forward(self, is_train, monitor=None):
        self._fresh = True
        self.pool.keep.reset()         # what the last forward kept is no one's any more
        xp, scratch = self.xp, self.pool.scratch
        if monitor is None and not self.poison:
            for s in self.steps:
                scratch.top = 0
                s.op.forward(xp, s.ins, s.outs, s.ws, is_train)
            return
        callback, monitor_all = monitor if monitor is not None else (None, False)
        for s in self.steps:
            if monitor_all:
                for name, (src, _), arr in zip(s.op.list_inputs(), s.node.inputs, s.ins):
                    if src.is_variable:
                        callback(src.name, arr)
                    callback(f"{s.node.name}_{name}", arr)
            scratch.top = 0
            s.op.forward(xp, s.ins, s.outs, s.ws, is_train)
            if callback is not None:     # reported before any later step reuses them
                for name, arr in zip(s.node.output_names(), s.outs):
                    callback(name, arr)
            self._poison(s.freed_forward)

    def backward(self, out_grads, is_train=True, monitor=None):
        xp, scratch = self.xp, self.pool.scratch
        # every head checked before anything changes
        given = check_head_gradients(out_grads, [o.shape for o in self._outputs],
                                     [h.index for h in self._heads if h.required],
                                     [h.index for h in self._heads])
        if not self._fresh and self._backward_consumes:
            raise MXNetError(
                "backward: run forward again before this backward. The last backward "
                "reused the memory of forward values it had read (the executor's memory "
                "plan), so they are gone; bind with plan_memory=False to call backward "
                "several times after one forward")
        for head in self._heads:
            g = given[head.index]
            if head.step is not None:  # a loss reads the given array, if any, as it is
                head.step.out_grads[head.slot] = None if g is None else xp.asarray(g)
            elif g is None:
                if not head.add:
                    head.buf.fill(0)
            elif head.add:
                head.buf += xp.asarray(g)
            else:
                head.buf[...] = xp.asarray(g)
        self._poison(self._seed_freed)
        for s in self.backward_steps:
            scratch.top = 0
            s.op.backward(xp, s.out_grads, s.ins, s.outs, s.in_grads, s.ws)
            for dst, tmp in s.adds:
                dst += tmp
            if monitor is not None:
                self._report_backward(s, monitor[0])
            if self.poison:
                self._poison(s.freed_backward)
        self._fresh = False

    def _poison(self, ranges):
        if self.poison:
            for offset, size in ranges:
                self.pool.poison(offset, size)

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

    # ------------------------------------------------------------------ accounting
    def workspace_bytes(self):
        return sum(s.ws.nbytes() for s in self.steps)

    def nbytes(self):
        """Bytes this plan added: arena growth at bind, zero gradients, workspaces."""
        return self._added_bytes + sum(int(a.nbytes) for a in self._owned) + \
            self.workspace_bytes()

    def report(self):
        """Bytes of the plan's parts; see Executor.memory_report."""
        report = dict(self.summary)
        report["workspace"] = self.workspace_bytes() + sum(int(a.nbytes) for a in self._owned)
        report["scratch"] = self.pool.scratch.nbytes
        report["kept"] = self.pool.keep.nbytes
        report["pool"] = self.pool.nbytes
        return report

    def describe(self):
        lines = []
        for s in self.steps:
            ins = [tuple(a.shape) for a in s.ins]
            outs = [tuple(a.shape) for a in s.outs]
            lines.append(f"{s.op.op_name} {s.node.name}: in {ins} -> out {outs}")
        return "\n".join(lines)


def _address(a):
    """The address of an array's first element (numpy or cupy)."""
    data = a.data
    return data.ptr if hasattr(data, "ptr") else a.__array_interface__["data"][0]


def _direct_heads(head_plan, routes, variables, head_ops):
    """Heads a loss reads straight from what backward is given: no buffer at all.

    A loss (or BlockGrad) ignores its head gradient, so unless its output is also
    used inside the graph or listed twice, backward hands the op the given array
    (or None) instead of copying it into memory of the output's size. SoftmaxOutput
    with out_grad=True reads the head gradient and keeps a buffer (zeros if none).
    """
    routed = {key for _, route in routes for how, key in route if how is not None}
    listed = {}
    for _, key, _, _ in head_plan:
        listed[key] = listed.get(key, 0) + 1
    direct = {}
    for index, key, add, required in head_plan:
        if required or add or key in variables or key in routed or listed[key] > 1 or \
                getattr(head_ops[key], "out_grad", False):
            continue
        direct[key] = _Head(index, None, add, required)
    return direct


def _backward_reuses_saved(blocks, saved, n):
    """True when a region written in backward overlaps one a saved forward value left.

    Regions holding saved values are all alive at the seam (time n), so they never
    overlap each other: sorted by offset, a bisection finds the ones under a region.
    """
    saved_ids = {id(v) for v in saved}
    dead = sorted((b.offset, b.offset + b.size, b.last) for b in blocks
                  if b.last != FOREVER and any(id(v) in saved_ids for v in b.values))
    starts = [d[0] for d in dead]
    for b in blocks:
        if b.born <= n:
            continue
        i = bisect.bisect_left(starts, b.offset + b.size)
        while i > 0 and dead[i - 1][1] > b.offset:
            i -= 1
            if dead[i][2] < b.born:
                return True
    return False


def _inplace_candidates(op, ins, outs, pairs):
    for i, j in pairs:
        if i < len(ins) and j < len(outs) and isinstance(ins[i], Value):
            outs[j].may_take((ins[i],))


def compile_plan(symbol, arg_dict, aux_dict, grad_dict, grad_req, shapes, types, xp, rng,
                 pool=None, plan_memory=True):
    """Turn the graph into forward and backward step lists over one planned arena.

    pool: the MemoryPool of another executor that never runs interleaved with
    this one (a bucket sharing the default bucket's memory); by default a new
    one. plan_memory=False gives every intermediate its own memory for the
    whole step (no reuse, nothing in place), for debugging declarations.
    """
    order = topo_order(symbol._heads)
    aux_ids = aux_variable_ids(order)
    pool = pool if pool is not None else MemoryPool(xp)
    values = []          # every planned Value, in birth order

    def new_value(key, born):
        shape, dtype = tuple(shapes[key]), np.dtype(types.get(key) or np.float32)
        v = Value(shape, dtype, born)
        values.append(v)
        return v

    # Forward: variables are the bound arrays; every op output is a Value born at its step.
    ref, needs, steps, node_needs = {}, {}, [], {}
    for node in order:
        if node.is_variable:
            is_aux = id(node) in aux_ids
            ref[(id(node), 0)] = (aux_dict if is_aux else arg_dict)[node.name]
            needs[(id(node), 0)] = not is_aux and grad_req[node.name] != "null"
            continue
        time = len(steps)
        ins = [ref[(id(src), i)] for src, i in node.inputs]
        for r in ins:
            if isinstance(r, Value):
                r.read_at(time)
        outs = [new_value((id(node), i), time) for i in range(node.num_outputs)]
        for i, v in enumerate(outs):
            ref[(id(node), i)] = v
            v.identity = node.op.inplace_identity
        _inplace_candidates(node.op, ins, outs, node.op.inplace_pairs())
        aux_slots = set(node.aux_input_slots())
        nb = any(needs[(id(src), i)] for slot, (src, i) in enumerate(node.inputs)
                 if slot not in aux_slots)
        node_needs[id(node)] = nb
        for i in range(node.num_outputs):
            needs[(id(node), i)] = nb
        steps.append(_Step(node, ins, outs, Workspace(
            xp, rng, scratch=pool.scratch if plan_memory else None,
            keeps_for_backward=nb or not plan_memory,
            keep=pool.keep if plan_memory else None)))
    for node, i in symbol._heads:        # graph outputs stay valid after forward and backward
        if isinstance(ref[(id(node), i)], Value):
            ref[(id(node), i)].last = FOREVER

    head_plan, routes = _gradient_routes(symbol, order, steps, needs, node_needs, grad_req)
    head_ops = {(id(n), i): n.op for n, i in symbol._heads}
    heads, backward_steps, saved, owned = _backward_values(
        steps, order, routes, head_plan, head_ops, grad_dict, new_value, shapes, types, xp)

    if not plan_memory:                 # every value its own block, as before the plan
        for v in values:
            v.last, v.candidates = FOREVER, None
    layout = plan_values(values)
    heads_refs = [ref[(id(n), i)] for n, i in symbol._heads]
    plan = Plan(xp, steps, backward_steps, list(heads_refs), heads, pool, owned,
                _summary(layout, saved, heads_refs),
                _backward_reuses_saved(layout.blocks, saved, len(steps)),
                _freed_ranges(layout, len(steps)) if POISON_FREED else ())
    if POISON_FREED:
        _attach_freed(steps, backward_steps, layout)
    plan._added_bytes = pool.reserve(plan, layout.arena_bytes)
    _materialize(plan, pool)
    return plan


def _materialize(plan, pool):
    """Turn every ref into its array (a view of the arena) and forget the refs.

    Values at one offset with one shape and dtype (a block reused by values
    alike, an op computed in place) share one view object.
    """
    views = {}

    def resolve(ref):
        if not isinstance(ref, Value):
            return ref
        key = (ref.block.offset, ref.shape, ref.dtype)
        view = views.get(key)
        if view is None:
            view = views[key] = pool.view(*key)
        return view

    for s in plan.steps:
        s.ins = [resolve(r) for r in s.ins]
        s.outs = [resolve(r) for r in s.outs]
        if s.in_grads is not None:
            s.in_grads = [None if r is None else resolve(r) for r in s.in_grads]
            s.out_grads = [resolve(r) for r in s.out_grads]
            s.adds = tuple((resolve(d), resolve(t)) for d, t in s.adds)
    for h in plan._heads:
        h.buf = resolve(h.buf)
    plan._outputs[:] = [resolve(r) for r in plan._outputs]


def _summary(layout, saved, heads_refs):
    outputs = {id(r) for r in heads_refs if isinstance(r, Value)}
    return {
        "outputs": sum(v.nbytes for v in layout.values if id(v) in outputs),
        "saved": sum(v.nbytes for v in saved if id(v) not in outputs),
        "arena": layout.arena_bytes,
        "peak_live": layout.peak()[0],
        "unplanned": sum(v.nbytes for v in layout.values),
    }


def _gradient_routes(symbol, order, steps, needs, node_needs, grad_req):
    """Who writes each gradient: head gradients first (an output listed twice adds its
    second), then consumers in backward order (the first writes, later ones add)."""
    accumulate = {(id(n), 0) for n in order
                  if n.is_variable and needs[(id(n), 0)] and grad_req[n.name] == "add"}
    head_plan, written = [], set()
    for index, (node, i) in enumerate(symbol._heads):
        key = (id(node), i)
        if not needs[key]:
            continue
        head_plan.append((index, key, key in written or key in accumulate,
                          not ignores_head_grad(node.op)))
        written.add(key)
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
    return head_plan, routes


def _backward_values(steps, order, routes, head_plan, head_ops, grad_dict, new_value,
                     shapes, types, xp):
    """Gradient Values on the backward timeline; forward values backward reads are kept.

    Times: forward step k is k, seeding the head gradients is n = len(steps), the
    m-th backward step is n + 1 + m. A forward value backward reads lives until
    the last backward step that reads it (as MXNet's plan), so later backward
    steps may reuse its memory.
    """
    n = len(steps)
    variables = {(id(node), 0): node.name for node in order if node.is_variable}
    grad, owned, saved = {}, [], []
    direct = _direct_heads(head_plan, routes, variables, head_ops)

    def grad_target(key, time):
        """The array or Value a gradient is written into at `time` (first writer)."""
        if key in variables:
            return grad_dict[variables[key]]
        grad[key] = new_value(key, time)
        return grad[key]

    heads = []
    for index, key, add, required in head_plan:
        if key in direct:
            heads.append(direct[key])
            continue
        if key in grad:                  # an output listed twice: its second head adds
            target = grad[key]
            target.read_at(n)
        else:
            target = grad_target(key, n)
        heads.append(_Head(index, target, add, required))

    backward_steps = []
    seen_saved = set()
    for m, (step, route) in enumerate(routes):
        time = n + 1 + m
        node, op = step.node, step.op
        for i in op.backward_inputs():
            r = step.ins[i] if i < len(step.ins) else None
            if isinstance(r, Value):
                r.read_at(time)
                if id(r) not in seen_saved:
                    seen_saved.add(id(r))
                    saved.append(r)
        for j in op.backward_outputs():
            r = step.outs[j] if j < len(step.outs) else None
            if isinstance(r, Value):
                r.read_at(time)
                if id(r) not in seen_saved:
                    seen_saved.add(id(r))
                    saved.append(r)
        out_grads = []
        for j in range(node.num_outputs):
            key = (id(node), j)
            g = grad.get(key)
            if key in direct:   # filled in by backward with the given array (or None)
                direct[key].step, direct[key].slot = step, j
            elif g is None:     # nobody writes it: zeros, never shared memory
                g = grad[key] = xp.zeros(shapes[key], dtype=np.dtype(types.get(key)
                                                                     or np.float32))
                owned.append(g)
            elif isinstance(g, Value):
                g.read_at(time)
            out_grads.append(g)
        inplace = {}
        for j, i in op.backward_inplace_pairs():
            if j < len(out_grads) and isinstance(out_grads[j], Value):
                inplace.setdefault(i, []).append(out_grads[j])
        in_grads, adds = [], []
        for slot, (how, key) in enumerate(route):
            if how is None:
                in_grads.append(None)
                continue
            if how == "add":
                target = new_value(key, time)      # a temporary, summed right after
                dst = grad[key] if key in grad else grad_dict[variables[key]]
                if isinstance(dst, Value):
                    dst.read_at(time)
                adds.append((dst, target))
            else:
                target = grad_target(key, time)
            if isinstance(target, Value):
                target.may_take(inplace.get(slot, ()))
            in_grads.append(target)
        step.in_grads, step.out_grads, step.adds = in_grads, out_grads, tuple(adds)
        backward_steps.append(step)
    return heads, backward_steps, saved, owned


def _freed_ranges(layout, time):
    return tuple((b.offset, b.size) for b in layout.freed.get(time, ()))


def _attach_freed(steps, backward_steps, layout):
    """Which arena ranges die after each step (poisoned in debugging runs)."""
    n = len(steps)
    for k, s in enumerate(steps):
        s.freed_forward = _freed_ranges(layout, k)
    for m, s in enumerate(backward_steps):
        s.freed_backward = _freed_ranges(layout, n + 1 + m)
