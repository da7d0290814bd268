"""Joining and cutting along one axis: Concat, SliceChannel (split), slice_axis."""
from .base import Operator, Param, register, merge_shape


def _axis(op, axis, ndim, name="axis"):
    if not -ndim <= axis < ndim:
        op.error(f"{name} {axis} is out of range for inputs with {ndim} dimensions "
                 f"(expected {-ndim} <= {name} < {ndim})")
    return axis % ndim


def _along(ndim, axis, start, stop):
    """Index selecting [start:stop] on `axis`, everything elsewhere."""
    return (slice(None),) * axis + (slice(start, stop),)


@register
class Concat(Operator):
    """Join `num_args` inputs (arg0, arg1, ...) along `dim`; other dims must agree."""

    op_name = "Concat"
    aliases = ("concat",)
    variadic = True
    params = {"num_args": Param("int", required=True), "dim": Param("int", 1)}

    def check_attrs(self):
        if self.num_args < 1:
            self.error(f"num_args must be >= 1, received {self.num_args}", ValueError)

    def list_arguments(self):
        return [f"arg{i}" for i in range(self.num_args)]

    # Memory: backward slices gy by the inputs' shapes; no forward value is read.
    def backward_inputs(self):
        return ()

    def backward_outputs(self):
        return ()

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        names = self.list_arguments() + ["output"]
        given = [(n, s) for n, s in zip(names, ins + outs) if s is not None]
        if not given:
            return ins, outs
        ndim = len(given[0][1])
        for n, s in given:
            if len(s) != ndim:
                self.error(f"{n} has shape {s} but {given[0][0]} has shape {given[0][1]}: "
                           f"all inputs of Concat need the same number of dimensions")
        a = _axis(self, self.dim, ndim, "dim")
        common = (0,) * ndim
        for n, s in given:
            masked = tuple(0 if j == a else d for j, d in enumerate(s))
            merged = merge_shape(common, masked)
            if merged is None:
                self.error(f"{n} has shape {s}, which disagrees with the other inputs "
                           f"{[g for g in given if g[0] != n]} outside dim {a}")
            common = merged
        for i in range(self.num_args):
            axis_len = ins[i][a] if ins[i] is not None else 0
            self.assign_shape(ins, i, common[:a] + (axis_len,) + common[a + 1:])
        lens = [s[a] for s in ins]
        out_len = outs[0][a] if outs[0] is not None else 0
        unknown = [i for i, d in enumerate(lens) if not d]
        if out_len and len(unknown) == 1:
            rest = out_len - sum(lens)
            if rest < 1:
                self.error(f"output has {out_len} along dim {a} but the known inputs already "
                           f"have {sum(lens)}")
            self.assign_shape(ins, unknown[0], common[:a] + (rest,) + common[a + 1:])
            lens[unknown[0]] = rest
        total = sum(lens) if all(lens) else 0
        outs[0] = self.merged_output(outs[0], common[:a] + (total,) + common[a + 1:])
        return ins, outs

    def forward(self, xp, inputs, outputs, ws, is_train):
        y = outputs[0]
        a = self.dim % y.ndim
        start = 0
        for x in inputs:
            stop = start + x.shape[a]
            y[_along(y.ndim, a, start, stop)] = x
            start = stop

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gy = out_grads[0]
        a = self.dim % gy.ndim
        start = 0
        for x, gx in zip(inputs, in_grads, strict=True):
            stop = start + x.shape[a]
            if gx is not None:
                xp.copyto(gx, gy[_along(gy.ndim, a, start, stop)])
            start = stop


@register
class SliceChannel(Operator):
    """Split `data` into `num_outputs` equal pieces along `axis` (outputs output0, ...)."""

    op_name = "SliceChannel"
    aliases = ("split",)
    params = {
        "num_outputs": Param("int", required=True),
        "axis": Param("int", 1),
        "squeeze_axis": Param("bool", False),
    }

    # The attribute `num_outputs` shares its name with Operator.num_outputs (the count of
    # visible outputs); here the two are the same number, so one property serves both.
    @property
    def num_outputs(self):
        return self._num_outputs

    @num_outputs.setter
    def num_outputs(self, value):
        self._num_outputs = value

    def check_attrs(self):
        if self.num_outputs < 1:
            self.error(f"num_outputs must be >= 1, received {self.num_outputs}", ValueError)

    def list_outputs(self):
        return [f"output{i}" for i in range(self.num_outputs)]

    # Memory: backward copies the pieces' gradients back; no forward value is read.
    def backward_inputs(self):
        return ()

    def backward_outputs(self):
        return ()

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        n, data = self.num_outputs, ins[0]
        known = [o for o in outs if o is not None]
        if data is None and known:
            # every piece has the same shape: any known output sizes the data
            out = known[0]
            for i, o in enumerate(outs):
                out = self.merged_output(out, o, f"output{i}") if o is not None else out
            ndim = len(out) + (1 if self.squeeze_axis else 0)
            a = _axis(self, self.axis, ndim)
            piece = out[:a] + (1,) + out[a:] if self.squeeze_axis else out
            self.assign_shape(ins, 0, piece[:a] + (piece[a] * n,) + piece[a + 1:], "data")
            data = ins[0]
        if data is None:
            return ins, outs
        a = _axis(self, self.axis, len(data))
        length = data[a]
        if length and length % n:
            self.error(f"data has {length} along axis {self.axis} (shape {data}), not "
                       f"divisible by num_outputs {n}")
        if length and self.squeeze_axis and length != n:
            self.error(f"squeeze_axis needs pieces of length 1: data has {length} along axis "
                       f"{self.axis} (shape {data}) but num_outputs is {n}")
        if self.squeeze_axis:
            piece = data[:a] + data[a + 1:]
        else:
            piece = data[:a] + (length // n,) + data[a + 1:]
        for i in range(n):
            outs[i] = self.merged_output(outs[i], piece, f"output{i}")
        return ins, outs

    def forward(self, xp, inputs, outputs, ws, is_train):
        x = inputs[0]
        a = self.axis % x.ndim
        size = x.shape[a] // self.num_outputs
        for i, y in enumerate(outputs):
            xp.copyto(y, x[_along(x.ndim, a, i * size, (i + 1) * size)].reshape(y.shape))

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gx = in_grads[0]
        if gx is None:
            return
        a = self.axis % gx.ndim
        size = gx.shape[a] // self.num_outputs
        for i, gy in enumerate(out_grads):
            part = gx[_along(gx.ndim, a, i * size, (i + 1) * size)]
            if gy is None:          # an unused output contributes nothing
                part[...] = 0
            else:
                part[...] = gy.reshape(part.shape)


@register
class SliceAxis(Operator):
    """data[..., begin:end, ...] on `axis`; negative begin/end count from the end, end=None
    means the end of the axis."""

    op_name = "slice_axis"
    params = {
        "axis": Param("int", required=True),
        "begin": Param("int", required=True),
        "end": Param("int", required=True, optional=True),
    }

    # Memory: backward scatters gy by data's shape; no forward value is read.
    def backward_inputs(self):
        return ()

    def backward_outputs(self):
        return ()

    def _bounds(self, shape):
        a = _axis(self, self.axis, len(shape))
        size = shape[a]
        if not size:
            return a, 0, 0
        begin = self.begin + size if self.begin < 0 else self.begin
        end = size if self.end is None else (self.end + size if self.end < 0 else self.end)
        if not (0 <= begin < end <= size):
            self.error(f"begin={self.begin}, end={self.end} select an empty or out-of-range "
                       f"slice of axis {self.axis} with length {size} (data shape "
                       f"{tuple(shape)})")
        return a, begin, end

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        data = ins[0]
        if data is None:
            return ins, outs
        a, begin, end = self._bounds(data)
        outs[0] = self.merged_output(outs[0], data[:a] + (end - begin,) + data[a + 1:])
        return ins, outs

    def forward(self, xp, inputs, outputs, ws, is_train):
        x = inputs[0]
        a, begin, end = self._bounds(x.shape)
        xp.copyto(outputs[0], x[_along(x.ndim, a, begin, end)])

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gx = in_grads[0]
        if gx is None:
            return
        a, begin, end = self._bounds(gx.shape)
        gx.fill(0)
        gx[_along(gx.ndim, a, begin, end)] = out_grads[0]
