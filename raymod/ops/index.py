"""Selecting by index or mask: SequenceMask, where, take.

Index and condition inputs never receive gradients (`no_grad_inputs`); when
the executor still hands a buffer for one, it gets zeros.
"""
import numpy as np

from ..base import MXNetError
from .base import Operator, Param, register


def _axis(op, axis, ndim, name="axis"):
    if not -ndim <= axis < ndim:
        op.error(f"{name} {axis} is out of range for data with {ndim} dimensions "
                 f"(expected {-ndim} <= {name} < {ndim})")
    return axis % ndim


def _to_int(xp, ws, key, values):
    """Float-stored indices as ints, truncated toward zero like MXNet's static_cast."""
    idx = ws.buffer(key, values.shape, np.intp)
    xp.copyto(idx, values, casting="unsafe")
    return idx


def _typed_apart(in_types, out_types, apart):
    """Unify every input and output dtype except input `apart`, which defaults to theirs."""
    shared = [t for i, t in enumerate(in_types) if i != apart and t is not None]
    shared += [t for t in out_types if t is not None]
    if not shared:
        return list(in_types), list(out_types)
    dtype = shared[0]
    # shared entries all get the first known dtype, so the graph reports any conflict
    ins = [t if i == apart and t is not None else dtype for i, t in enumerate(in_types)]
    return ins, [dtype] * len(out_types)


@register
class SequenceMask(Operator):
    """Set every step at or after each sequence's length to `value`.

    `data` is (max_len, batch, ...) for axis=0 or (batch, max_len, ...) for
    axis=1; `sequence_length` (batch,) is an input only when
    `use_sequence_length` is True (otherwise the op is the identity).
    """

    op_name = "SequenceMask"
    params = {
        "use_sequence_length": Param("bool", False),
        "value": Param("float", 0.0),
        "axis": Param("int", 0),
    }

    def check_attrs(self):
        if self.axis not in (0, 1):
            self.error(f"axis must be 0 or 1, received {self.axis}", ValueError)

    def list_arguments(self):
        return ["data", "sequence_length"] if self.use_sequence_length else ["data"]

    def no_grad_inputs(self):
        return ("sequence_length",)

    # Memory: backward reads the lengths only; forward copies then masks, in place.
    def backward_inputs(self):
        return (1,) if self.use_sequence_length else ()

    def backward_outputs(self):
        return ()

    def inplace_pairs(self):
        return ((0, 0),)

    def backward_inplace_pairs(self):
        return ((0, 0),)

    def infer_type(self, in_types, out_types):
        """data and output share a dtype; the lengths keep theirs (data's when unknown)."""
        return _typed_apart(in_types, out_types, apart=1)

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        data = self.merged_output(ins[0], outs[0], "data")
        if data is not None:
            if len(data) < 2:
                self.error(f"data: expected at least 2 dimensions (max_len and batch), "
                           f"received shape {data}")
            ins[0] = outs[0] = data
            if self.use_sequence_length:
                batch = data[1 - self.axis]
                self.assign_shape(ins, 1, (batch,), "sequence_length")
        return ins, outs

    def _keep(self, xp, ws, data, lengths):
        """Boolean (T, N) or (N, T) mask, shaped to broadcast over data's trailing dims."""
        steps = data.shape[self.axis]
        lens = _to_int(xp, ws, "lengths", lengths)
        t = xp.arange(steps)
        keep = t[:, None] < lens[None, :] if self.axis == 0 else lens[:, None] > t[None, :]
        return keep.reshape(keep.shape + (1,) * (data.ndim - 2))

    def forward(self, xp, inputs, outputs, ws, is_train):
        x, y = inputs[0], outputs[0]
        xp.copyto(y, x)
        if self.use_sequence_length:
            keep = self._keep(xp, ws, x, inputs[1])
            xp.copyto(y, xp.asarray(self.value, dtype=y.dtype), where=~keep)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gx = in_grads[0]
        if gx is not None:
            if self.use_sequence_length:
                xp.multiply(out_grads[0], self._keep(xp, ws, inputs[0], inputs[1]), out=gx)
            else:
                xp.copyto(gx, out_grads[0])
        if self.use_sequence_length and in_grads[1] is not None:
            in_grads[1].fill(0)


@register
class Where(Operator):
    """x where condition is nonzero, else y; a 1-D condition selects whole rows."""

    op_name = "where"
    params = {}

    def list_arguments(self):
        return ["condition", "x", "y"]

    def no_grad_inputs(self):
        return ("condition",)

    # Memory: backward reads the condition; forward copies y first, so only y's
    # memory may take the output.
    def backward_inputs(self):
        return (0,)

    def backward_outputs(self):
        return ()

    def inplace_pairs(self):
        return ((2, 0),)

    def infer_type(self, in_types, out_types):
        """x, y and output share a dtype; the condition keeps its own (x's when unknown)."""
        return _typed_apart(in_types, out_types, apart=0)

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        shape = None
        for name, s in (("x", ins[1]), ("y", ins[2]), ("output", outs[0])):
            if s is not None:       # expected: what x (or y) already fixed
                shape = self.merged_output(s, shape, name)
        if shape is None:
            return ins, outs
        ins[1] = ins[2] = outs[0] = shape
        cond = ins[0]
        if cond is None:
            ins[0] = shape
        elif not (len(cond) == 1 and len(shape) >= 1 and cond[0] in (shape[0], 0)):
            self.assign_shape(ins, 0, shape, "condition (same shape as x, or (x.shape[0],))")
        return ins, outs

    def _take_x(self, xp, cond, shape):
        mask = cond != 0
        if mask.ndim == 1 and len(shape) > 1:
            mask = mask.reshape(mask.shape + (1,) * (len(shape) - 1))
        return mask

    def forward(self, xp, inputs, outputs, ws, is_train):
        cond, x, y = inputs
        xp.copyto(outputs[0], y)
        xp.copyto(outputs[0], x, where=self._take_x(xp, cond, x.shape))

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        cond, x, _ = inputs
        gy = out_grads[0]
        mask = self._take_x(xp, cond, x.shape)
        if in_grads[1] is not None:
            xp.multiply(gy, mask, out=in_grads[1])
        if in_grads[2] is not None:
            xp.multiply(gy, ~mask, out=in_grads[2])
        if in_grads[0] is not None:
            in_grads[0].fill(0)


@register
class Take(Operator):
    """Gather slices of `a` along `axis` at `indices`; mode clip, wrap or raise."""

    op_name = "take"
    params = {
        "axis": Param("int", 0),
        "mode": Param("str", "clip", choices=("clip", "wrap", "raise")),
    }

    def list_arguments(self):
        return ["a", "indices"]

    def no_grad_inputs(self):
        return ("indices",)

    # Memory: the gradient scatters gy by the indices; a's values are never read.
    def backward_inputs(self):
        return (1,)

    def backward_outputs(self):
        return ()

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        a, idx = ins
        if a is None or idx is None:
            return ins, outs
        if len(a) == 0:
            self.error(f"a: expected at least 1 dimension, received shape {a}")
        ax = _axis(self, self.axis, len(a))
        outs[0] = self.merged_output(outs[0], tuple(a[:ax]) + tuple(idx) + tuple(a[ax + 1:]))
        return ins, outs

    def infer_type(self, in_types, out_types):
        """a and the output share a dtype; the indices keep theirs (a's when unknown)."""
        return _typed_apart(in_types, out_types, apart=1)

    def _indices(self, xp, ws, indices, n):
        idx = _to_int(xp, ws, "idx", indices)
        if self.mode == "clip":
            xp.clip(idx, 0, n - 1, out=idx)
        elif self.mode == "wrap":
            xp.remainder(idx, n, out=idx)
        elif bool(((idx < 0) | (idx >= n)).any()):
            bad = idx[(idx < 0) | (idx >= n)].reshape(-1)[0]
            raise MXNetError(f"take '{self.node_name}': index {int(bad)} is out of range "
                             f"for axis {self.axis} of length {n} (mode='raise')")
        return idx.reshape(-1)

    def forward(self, xp, inputs, outputs, ws, is_train):
        a, indices = inputs
        ax = self.axis % a.ndim
        idx = self._indices(xp, ws, indices, a.shape[ax])
        pre = int(np.prod(a.shape[:ax]))
        post = int(np.prod(a.shape[ax + 1:]))
        out = outputs[0].reshape(pre, idx.size, post)
        xp.take(a.reshape(pre, a.shape[ax], post), idx, axis=1, out=out)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        ga = in_grads[0]
        if in_grads[1] is not None:
            in_grads[1].fill(0)
        if ga is None:
            return
        a, indices = inputs
        ax = self.axis % a.ndim
        idx = self._indices(xp, ws, indices, a.shape[ax])
        pre = int(np.prod(a.shape[:ax]))
        post = int(np.prod(a.shape[ax + 1:]))
        ga.fill(0)
        # scatter-add along the gathered axis, moved to the front of a view of ga
        target = ga.reshape(pre, a.shape[ax], post).transpose(1, 0, 2)
        source = out_grads[0].reshape(pre, idx.size, post).transpose(1, 0, 2)
        xp.add.at(target, idx, source)
