"""Shape operators: Flatten, Reshape, transpose, expand_dims, SwapAxis, reverse.

Each copies its input into the output buffer in the new shape (outputs are
executor-owned buffers, never views of inputs); the gradient is the same
move in reverse. Shape inference runs both ways, so a known output shape
also fills in unknown (0) input dims where MXNet does.
"""
from .base import Operator, Param, register, shape_known


def _prod(values):
    out = 1
    for v in values:
        out *= v
    return out


def _fill_one_unknown(shape, total):
    """Fill the single unknown (0) dim of `shape` so its size is `total`; else leave it."""
    unknown = [i for i, d in enumerate(shape) if not d]
    if len(unknown) != 1:
        return tuple(shape)
    rest = _prod(d for d in shape if d)
    if not rest or total % rest:
        return tuple(shape)
    out = list(shape)
    out[unknown[0]] = total // rest
    return tuple(out)


class _Rearrange(Operator):
    """Forward: the input rearranged into the output; backward: the inverse move."""

    # Memory: backward reads only shapes. A rearranging copy cannot run in place.
    def backward_inputs(self):
        return ()

    def backward_outputs(self):
        return ()

    def forward(self, xp, inputs, outputs, ws, is_train):
        xp.copyto(outputs[0], self.arrange(xp, inputs[0]))

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None:
            xp.copyto(in_grads[0], self.unarrange(xp, out_grads[0]))

    def arrange(self, xp, x):
        raise NotImplementedError

    def unarrange(self, xp, gy):
        raise NotImplementedError


class _SameData(Operator):
    """The same elements in row-major order under a new shape, and back.

    Memory: the output is a view of the input's memory (forward's copy is then
    a copy onto itself, which numpy skips), and so is the input's gradient of
    the output's gradient.
    """

    inplace_identity = True

    def backward_inputs(self):
        return ()

    def backward_outputs(self):
        return ()

    def inplace_pairs(self):
        return ((0, 0),)

    def backward_inplace_pairs(self):
        return ((0, 0),)

    def forward(self, xp, inputs, outputs, ws, is_train):
        xp.copyto(outputs[0], inputs[0].reshape(outputs[0].shape))

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None:
            xp.copyto(in_grads[0], out_grads[0].reshape(inputs[0].shape))


@register
class Flatten(_SameData):
    """(N, d1, d2, ...) -> (N, d1*d2*...); a 1-D (N,) input becomes (N, 1)."""

    op_name = "Flatten"
    aliases = ("flatten",)

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        data, out = ins[0], outs[0]
        if data is None:
            return ins, outs
        if len(data) == 0:
            self.error(f"data: expected at least 1 dimension, received shape {data}")
        rest = data[1:]
        feat = _prod(rest) if all(rest) else 0
        new = (data[0], feat)
        if out is not None and len(out) == 2 and out[0] and not data[0]:
            ins[0] = (out[0],) + tuple(data[1:])
            new = (out[0], feat)
        outs[0] = self.merged_output(out, new)
        return ins, outs



@register
class Reshape(_SameData):
    """Reshape with MXNet's special values 0, -1, -2, -3, -4 (and `reverse`).

    0 copies the input dim, -1 is inferred (at most one), -2 copies all the
    remaining input dims, -3 merges two consecutive input dims, -4 splits one
    input dim into the next two values (one may be -1). With `reverse` the
    special values are matched right to left. The legacy `target_shape` (0 =
    infer) and `keep_highest` are honoured when `shape` is not given.
    """

    op_name = "Reshape"
    aliases = ("reshape",)
    params = {
        "shape": Param("shape", ()),
        "reverse": Param("bool", False),
        "target_shape": Param("shape", ()),
        "keep_highest": Param("bool", False),
    }

    def check_attrs(self):
        bad = [d for d in self.shape if d < -4]
        if bad:
            self.error(f"shape {self.shape}: values must be positive or one of 0, -1, -2, "
                       f"-3, -4, received {bad[0]}", ValueError)
        if self.shape.count(-1) > 1 and -4 not in self.shape:
            self.error(f"shape {self.shape}: at most one dimension can be -1 (inferred)",
                       ValueError)

    def _fail(self, data, why):
        spec = f"shape={self.shape}" + (", reverse=True" if self.reverse else "")
        self.error(f"cannot reshape data of shape {tuple(data)} with {spec}: {why}")

    def _target(self, data):
        """MXNet's InferReshapeShape; 0 in `data` and in the result means unknown."""
        dvec, pvec = list(data), list(self.shape)
        if self.reverse:
            dvec.reverse()
            pvec.reverse()
        out, src, inferred, i = [], 0, -1, 0
        while i < len(pvec):
            p = pvec[i]
            if p == 0:
                if src >= len(dvec):
                    self._fail(data, f"0 at position {i} copies input dim {src}, but the "
                                     f"input has only {len(dvec)} dims")
                out.append(dvec[src])
                src += 1
            elif p == -1:
                if inferred >= 0:
                    self._fail(data, "only one dimension can be inferred (-1)")
                inferred = len(out)
                out.append(1)
                src += 1
            elif p == -2:
                out.extend(dvec[src:])
                src = len(dvec)
            elif p == -3:
                if src + 1 >= len(dvec):
                    self._fail(data, f"-3 at position {i} merges input dims {src} and "
                                     f"{src + 1}, but the input has {len(dvec)} dims")
                d1, d2 = dvec[src], dvec[src + 1]
                out.append(d1 * d2)         # 0 (unknown) stays unknown
                src += 2
            elif p == -4:
                if i + 2 >= len(pvec):
                    self._fail(data, f"-4 at position {i} must be followed by two values")
                if src >= len(dvec):
                    self._fail(data, f"-4 at position {i} splits input dim {src}, but the "
                                     f"input has only {len(dvec)} dims")
                d0 = dvec[src]
                src += 1
                d1, d2 = pvec[i + 1], pvec[i + 2]
                i += 2
                if d1 == -1 and d2 == -1:
                    self._fail(data, "-4 split dims cannot both be -1")
                if d1 == -1:
                    d1 = d0 // d2 if d0 else 0
                if d2 == -1:
                    d2 = d0 // d1 if d0 else 0
                if d0 and d1 * d2 != d0:
                    self._fail(data, f"split dims {d1} x {d2} do not make input dim {d0}")
                out.extend([d1, d2])
            else:
                out.append(p)
                src += 1
            i += 1
        if inferred >= 0:
            if shape_known(data):
                rest = _prod(out)
                if not rest or _prod(data) % rest:
                    self._fail(data, f"{_prod(data)} elements do not divide into the "
                                     f"known dims' {rest}")
                out[inferred] = _prod(data) // rest
            else:
                out[inferred] = 0
        if self.reverse:
            out.reverse()
        return tuple(out)

    def _legacy_target(self, data):
        out = list(self.target_shape)
        start = 1 if self.keep_highest else 0
        if self.keep_highest:
            out[0] = data[0]
        zeros = [i for i in range(start, len(out)) if out[i] == 0]
        if len(zeros) == 1 and shape_known(data):
            out[zeros[0]] = 1
            out[zeros[0]] = _prod(data) // _prod(out)
        return tuple(out)

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        data = ins[0]
        if data is not None and (self.shape or self.target_shape):
            new = self._target(data) if self.shape else self._legacy_target(data)
            if shape_known(data) and shape_known(new) and _prod(new) != _prod(data):
                self._fail(data, f"the target {new} has {_prod(new)} elements, the input "
                                 f"{_prod(data)}")
            outs[0] = self.merged_output(outs[0], new)
        return self._reverse_size(ins, outs)

    def _reverse_size(self, ins, outs):
        """Element counts agree: fill one unknown dim on either side from the other."""
        data, out = ins[0], outs[0]
        if data is None or out is None:
            return ins, outs
        if shape_known(out) and not shape_known(data):
            ins[0] = _fill_one_unknown(data, _prod(out))
        elif shape_known(data) and not shape_known(out):
            outs[0] = _fill_one_unknown(out, _prod(data))
        if shape_known(ins[0]) and shape_known(outs[0]) and _prod(ins[0]) != _prod(outs[0]):
            self._fail(ins[0], f"the output shape {outs[0]} has {_prod(outs[0])} elements, "
                               f"the input {_prod(ins[0])}")
        return ins, outs


def _norm_axis(op, axis, ndim, what="axis"):
    if not -ndim <= axis < ndim:
        op.error(f"{what} {axis} is out of range for data with {ndim} dimensions "
                 f"(expected {-ndim} <= {what} < {ndim})")
    return axis % ndim


@register
class Transpose(_Rearrange):
    """Permute the axes (`axes=()` reverses them)."""

    op_name = "transpose"
    params = {"axes": Param("shape", ())}

    def _perm(self, ndim):
        if not self.axes:
            return tuple(range(ndim - 1, -1, -1))
        if len(self.axes) != ndim:
            self.error(f"axes {self.axes} has {len(self.axes)} entries but data has {ndim} "
                       f"dimensions")
        perm = tuple(_norm_axis(self, a, ndim, "axes entry") for a in self.axes)
        if sorted(perm) != list(range(ndim)):
            self.error(f"axes {self.axes} is not a permutation of 0..{ndim - 1}")
        return perm

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        data, out = ins[0], outs[0]
        ndim = len(data) if data is not None else len(out) if out is not None else None
        if ndim is None:
            return ins, outs
        perm = self._perm(ndim)
        if out is not None:
            back = [0] * ndim
            for i, p in enumerate(perm):
                back[p] = out[i]
            self.assign_shape(ins, 0, tuple(back), "data")
        data = ins[0]
        outs[0] = self.merged_output(out, tuple(data[p] for p in perm))
        return ins, outs

    def arrange(self, xp, x):
        return x.transpose(self._perm(x.ndim))

    def unarrange(self, xp, gy):
        perm = self._perm(gy.ndim)
        inverse = [0] * len(perm)
        for i, p in enumerate(perm):
            inverse[p] = i
        return gy.transpose(inverse)


@register
class ExpandDims(_Rearrange):
    """Insert a length-1 axis at `axis` (negative counts from the end of the result)."""

    op_name = "expand_dims"
    params = {"axis": Param("int", required=True)}
    # The same elements in the same order: a view of the input, as Reshape.
    inplace_identity = True

    def inplace_pairs(self):
        return ((0, 0),)

    def backward_inplace_pairs(self):
        return ((0, 0),)

    def _where(self, ndim):
        if not -ndim - 1 <= self.axis <= ndim:
            self.error(f"axis {self.axis} is out of range for data with {ndim} dimensions "
                       f"(expected {-ndim - 1} <= axis <= {ndim})")
        return self.axis % (ndim + 1)

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        data, out = ins[0], outs[0]
        if data is None and out is not None:
            a = self._where(len(out) - 1)
            self.assign_shape(ins, 0, tuple(out[:a]) + tuple(out[a + 1:]), "data")
            data = ins[0]
        if data is not None:
            a = self._where(len(data))
            outs[0] = self.merged_output(out, tuple(data[:a]) + (1,) + tuple(data[a:]))
        return ins, outs

    def arrange(self, xp, x):
        return xp.expand_dims(x, self._where(x.ndim))

    def unarrange(self, xp, gy):
        return gy.reshape(tuple(d for i, d in enumerate(gy.shape)
                                if i != self._where(gy.ndim - 1)))


@register
class SwapAxis(_Rearrange):
    """Swap two axes, `dim1` and `dim2`."""

    op_name = "SwapAxis"
    aliases = ("swapaxes",)
    params = {"dim1": Param("int", 0), "dim2": Param("int", 0)}

    def _dims(self, ndim):
        return (_norm_axis(self, self.dim1, ndim, "dim1"),
                _norm_axis(self, self.dim2, ndim, "dim2"))

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        data, out = ins[0], outs[0]
        for src, is_in in ((out, True), (data, False)):
            if src is None:
                continue
            a, b = self._dims(len(src))
            swapped = list(src)
            swapped[a], swapped[b] = swapped[b], swapped[a]
            if is_in:
                self.assign_shape(ins, 0, tuple(swapped), "data")
            else:
                outs[0] = self.merged_output(outs[0], tuple(swapped))
        return ins, outs

    def arrange(self, xp, x):
        return x.swapaxes(*self._dims(x.ndim))

    def unarrange(self, xp, gy):
        return gy.swapaxes(*self._dims(gy.ndim))


@register
class Reverse(_Rearrange):
    """Reverse the order of elements along each of `axis` (MXNet's `reverse`, alias `flip`)."""

    op_name = "reverse"
    aliases = ("flip",)
    params = {"axis": Param("shape", required=True)}

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = super().infer_shape(in_shapes, out_shapes)
        if ins[0] is not None:
            self._index(len(ins[0]))          # validate the axes before any compute
        return ins, outs

    def _index(self, ndim):
        index = [slice(None)] * ndim
        for a in self.axis:
            index[_norm_axis(self, a, ndim, "axis")] = slice(None, None, -1)
        return tuple(index)

    def arrange(self, xp, x):
        return x[self._index(x.ndim)]

    def unarrange(self, xp, gy):
        return gy[self._index(gy.ndim)]
