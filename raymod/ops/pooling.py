"""Pooling (max, avg, sum, lp; 1-D, 2-D, 3-D; valid/full/same; global), vectorised.

Forward and backward loop over kernel offsets, never over pixels: each
offset is one strided slice of the padded input covering every output
position, combined elementwise (maximum or add). Padding is the dtype's
lowest value for max (MXNet skips padded cells) and 0 otherwise. Averages
divide by MXNet's per-window count: the window clipped to the padded input
(`count_include_pad`, the default) or to the real input; a window lying
wholly in padding (possible in 'full' with stride > kernel) divides by 1
where MXNet divides by 0. Max routes each output's gradient to the FIRST
maximum of its window in row-major order, as MXNet's unpool_max does.
Global pooling reduces the flattened spatial axis directly.

Two refinements keep the passes few and contiguous: max and sums are
separable, so a k x k window is reduced (and an average's gradient spread)
one axis at a time, k + k passes instead of k * k, the first along whole
rows; and the strided max backward runs on the input split into its stride
phases (space to depth), where every kernel offset is a contiguous block.
"""
import numpy as np

from ._window import (check_layout, spatial_tuple, kernel_slices, padded_input,
                      grad_buffer, finish_grad)
from .base import Operator, Param, register

# Strided max backward runs on the input split into stride phases when the output is
# at least this wide: below, the phase copies' short runs cost more than they save.
PHASES_MIN_WIDTH = 24


@register
class Pooling(Operator):
    """Window reduction over the spatial dims of `data` (N, C, *spatial)."""

    op_name = "Pooling"
    params = {
        "kernel": Param("shape", ()),
        "pool_type": Param("str", "max", choices=("max", "avg", "sum", "lp")),
        "global_pool": Param("bool", False),
        "cudnn_off": Param("bool", False),
        "pooling_convention": Param("str", "valid", choices=("valid", "full", "same")),
        "stride": Param("shape", ()),
        "pad": Param("shape", ()),
        "p_value": Param("int", None, optional=True),
        "count_include_pad": Param("bool", None, optional=True),
        "layout": Param("str", None, optional=True),
    }

    # Memory (the executor's planner): avg and sum spread gy by shapes alone; max
    # and lp compare or divide the input by the output.
    def backward_inputs(self):
        return () if self.pool_type in ("avg", "sum") else (0,)

    def backward_outputs(self):
        return () if self.pool_type in ("avg", "sum") else (0,)

    def check_attrs(self):
        d = len(self.kernel)
        if not self.global_pool:
            if d not in (1, 2, 3):
                self.error(f"kernel must have 1, 2 or 3 dimensions (or set global_pool=True), "
                           f"received {self.kernel}", ValueError)
            if any(k < 1 for k in self.kernel):
                self.error(f"kernel sizes must be >= 1, received {self.kernel}", ValueError)
            self._stride = spatial_tuple(self, "stride", self.stride, d, 1)
            self._pad = spatial_tuple(self, "pad", self.pad, d, 0)
            if any(s < 1 for s in self._stride):
                self.error(f"stride values must be >= 1, received {self._stride}", ValueError)
            if any(p < 0 for p in self._pad):
                self.error(f"pad values must be >= 0, received {self._pad}", ValueError)
            if self.pooling_convention == "same" and any(self._pad):
                self.error(f"pooling_convention 'same' disables pad, received pad "
                           f"{self.pad}", ValueError)
            check_layout(self, self.layout, d)
        else:
            check_layout(self, self.layout)
        if self.pool_type == "lp" and self.p_value not in (1, 2, 3):
            self.error(f"pool_type 'lp' needs p_value 1, 2 or 3, received {self.p_value}",
                       ValueError)
        self._include_pad = True if self.count_include_pad is None else self.count_include_pad

    # ------------------------------------------------------------------ shapes
    def _plan(self, data):
        """kernel, stride, pad, output spatial dims, right padding (full convention)."""
        spatial = tuple(data[2:])
        if self.global_pool:
            d = len(spatial)
            return spatial, (1,) * d, (0,) * d, (1,) * d, (0,) * d
        out, hi = [], []
        for i, S in enumerate(spatial):
            k, s, p = self.kernel[i], self._stride[i], self._pad[i]
            n = self._out_len(S, i)
            out.append(n)
            # the last window may run past the padded input (full/same): pad it too
            hi.append(max(p, (n - 1) * s + k - S - p))
        return tuple(self.kernel), self._stride, self._pad, tuple(out), tuple(hi)

    def _out_len(self, S, i):
        """Output length along spatial dim i for input length S (MXNet's three conventions)."""
        k, s, p = self.kernel[i], self._stride[i], self._pad[i]
        if self.pooling_convention == "valid":
            return (S + 2 * p - k) // s + 1
        if self.pooling_convention == "full":
            return -(-(S + 2 * p - k) // s) + 1
        return -(-(S + 2 * p) // s)

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        data = ins[0]
        if data is None:
            return ins, outs
        if len(data) not in (3, 4, 5):
            self.error(f"data: expected a 3-D, 4-D or 5-D shape (N, C, spatial...), "
                       f"received {data}")
        d = len(data) - 2
        if not self.global_pool and len(self.kernel) != d:
            self.error(f"data: a {len(self.kernel)}-D kernel {self.kernel} needs a "
                       f"{len(self.kernel) + 2}-D input, received shape {data}")
        if self.global_pool:
            check_layout(self, self.layout, d)
        if self.pooling_convention == "same" and d != 1:
            self.error(f"pooling_convention 'same' supports 1-D pooling only (3-D data), "
                       f"received data shape {data}")
        out_spatial = []
        for i in range(d):
            S = data[2 + i]
            if self.global_pool:
                out_spatial.append(1)
                continue
            k, p = self.kernel[i], self._pad[i]
            if S and k > S + 2 * p:
                self.error(f"kernel {self.kernel} is larger than the padded input along "
                           f"spatial dim {i}: data shape {data} with pad {self._pad} gives "
                           f"{S + 2 * p}")
            out_spatial.append(self._out_len(S, i) if S else 0)
        outs[0] = self.merged_output(outs[0], tuple(data[:2]) + tuple(out_spatial))
        if outs[0] is not None:
            merged = list(data)
            merged[0], merged[1] = data[0] or outs[0][0], data[1] or outs[0][1]
            self.assign_shape(ins, 0, tuple(merged), "data")
        return ins, outs

    # ------------------------------------------------------------------ compute
    def _fill(self, dtype):
        if self.pool_type == "max":
            dt = np.dtype(dtype)
            return np.finfo(dt).min if dt.kind == "f" else np.iinfo(dt).min
        return 0

    def _divisor(self, xp, ws, spatial, kernel, stride, pad, out_spatial, dtype):
        """Per-output-position averaging count, MXNet's pool_sum rule, cached per shape."""
        key = ("divisor", spatial, out_spatial, dtype)
        cached = ws.saved.get("divisor")
        if cached is not None and cached[0] == key:
            return cached[1]
        counts = []
        for S, k, s, p, n in zip(spatial, kernel, stride, pad, out_spatial):
            start = np.arange(n) * s - p
            end = np.minimum(start + k, S + p)
            if not self._include_pad:
                start, end = np.maximum(start, 0), np.minimum(end, S)
            counts.append(np.maximum(end - start, 1))    # a window wholly in padding: 1
        div = counts[0]
        for c in counts[1:]:
            div = np.multiply.outer(div, c)
        div = xp.asarray(div.astype(dtype))
        ws.saved["divisor"] = (key, div)
        return div

    def forward(self, xp, inputs, outputs, ws, is_train):
        x, y = inputs[0], outputs[0]
        src = x
        if self.pool_type == "lp" and self.p_value != 1:
            src = ws.scratch("xpow", x.shape, x.dtype)
            xp.power(x, self.p_value, out=src)
        if self.global_pool:
            self._global_reduce(xp, src, y)
        else:
            self._window_reduce(xp, ws, src, y)
        if self.pool_type == "lp" and self.p_value == 2:
            xp.sqrt(y, out=y)
        elif self.pool_type == "lp" and self.p_value == 3:
            xp.cbrt(y, out=y)

    def _global_reduce(self, xp, src, y):
        """One window per channel: a reduction over the flattened spatial axis."""
        src3, y3 = src.reshape(src.shape[0], src.shape[1], -1), y.reshape(y.shape[:2])
        if self.pool_type == "max":
            xp.max(src3, axis=-1, out=y3)
        elif self.pool_type == "avg":
            xp.mean(src3, axis=-1, out=y3)
        else:
            xp.sum(src3, axis=-1, out=y3)

    def _window_reduce(self, xp, ws, src, y):
        """Combine the kernel offsets' strided slices elementwise.

        One pass per kernel offset over the whole output: numpy reduces small
        trailing window axes of a strided view an order of magnitude slower.
        Max and sums are separable, so when the kernel has more offsets than
        the sum of its sides the window is reduced one axis at a time
        (3x3: 3 + 3 passes instead of 9; the first along whole rows).
        """
        kernel, stride, pad, out_spatial, hi = self._plan(src.shape)
        xpad = padded_input(xp, ws, "xpad", src, pad, hi, self._fill(src.dtype))
        combine = xp.maximum if self.pool_type == "max" else xp.add
        if _separable_pays(kernel):
            _reduce_by_axis(xp, ws, xpad, y, kernel, stride, out_spatial, combine)
        else:
            full = (slice(None), slice(None))
            for i, (_, slices) in enumerate(kernel_slices(kernel, stride, (1,) * len(kernel),
                                                          out_spatial)):
                if i == 0:
                    xp.copyto(y, xpad[full + slices])
                else:
                    combine(y, xpad[full + slices], out=y)
        if self.pool_type == "avg":
            y /= self._divisor(xp, ws, src.shape[2:], kernel, stride, pad, out_spatial, y.dtype)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gx = in_grads[0]
        if gx is None:
            return
        x, y, gy = inputs[0], outputs[0], out_grads[0]
        if self.global_pool:
            self._global_backward(xp, x, y, gy, gx, ws)
            return
        kernel, stride, pad, out_spatial, hi = self._plan(x.shape)
        d = len(kernel)
        # disjoint windows (stride >= kernel) write each input cell at most once; when
        # they also tile the input exactly, every cell is written and nothing needs zeroing
        disjoint = all(s >= k for s, k in zip(stride, kernel))
        tiles = disjoint and self.pool_type == "max" and not any(pad) and all(
            s == k and n * s == S for s, k, n, S in zip(stride, kernel, out_spatial,
                                                        x.shape[2:]))
        gpad = grad_buffer(xp, ws, "gxpad", gx, pad, hi, zero=not tiles)
        full = (slice(None), slice(None))
        offsets = list(kernel_slices(kernel, stride, (1,) * d, out_spatial))
        part = ws.scratch("part", y.shape, gy.dtype)
        if self.pool_type == "max" and all(st > 1 for st in stride) \
                and out_spatial[-1] >= PHASES_MIN_WIDTH:
            self._max_backward_phases(xp, ws, x, y, gy, gx, kernel, stride, pad,
                                      out_spatial, disjoint)
            return
        if self.pool_type == "max":
            xpad = padded_input(xp, ws, "xpad", x, pad, hi, self._fill(x.dtype))
            _route_to_first_max(xp, ws, xpad, y, gy, gpad, offsets, disjoint, part)
        elif self.pool_type == "lp" and self.p_value != 1:
            # d y / d x = (x / y)^(p-1) for every x in the window (padding is discarded)
            xpad = padded_input(xp, ws, "xpad", x, pad, hi, 0)
            for _, slices in offsets:
                xp.divide(xpad[full + slices], y, out=part)
                if self.p_value == 3:
                    xp.square(part, out=part)
                part *= gy
                gpad[full + slices] += part
        else:
            share = gy
            if self.pool_type == "avg":
                share = part
                xp.divide(gy, self._divisor(xp, ws, x.shape[2:], kernel, stride, pad,
                                            out_spatial, gy.dtype), out=share)
            if _separable_pays(kernel):
                _spread_by_axis(xp, ws, share, gpad, kernel, stride, out_spatial)
            else:
                for _, slices in offsets:
                    gpad[full + slices] += share
        finish_grad(xp, gpad, gx, pad)

    def _max_backward_phases(self, xp, ws, x, y, gy, gx, kernel, stride, pad, out_spatial,
                             disjoint):
        """Max backward on the input split into stride phases (space to depth).

        Along a dim of stride s, kernel offset o reads every s-th cell from o on:
        in the layout (s phases, cells // s) that is phase o % s, a contiguous
        run from o // s. One transposing copy in, one out, and every per-offset
        pass runs over contiguous memory instead of strided.
        """
        d = len(kernel)
        # padded extent: a multiple of the stride covering the data and every window
        ext = [-(-max(p + S, st * (n - 1) + k) // st) * st
               for p, S, st, n, k in zip(pad, x.shape[2:], stride, out_spatial, kernel)]
        hi = tuple(e - p - S for e, p, S in zip(ext, pad, x.shape[2:]))
        xpad = padded_input(xp, ws, "xpad", x, pad, hi, self._fill(x.dtype))
        xph = ws.scratch("xph", _phase_shape(xpad.shape, stride), x.dtype)
        xp.copyto(xph, _as_phases(xpad, stride))
        gph = ws.scratch("gph", xph.shape, gy.dtype)
        gph.fill(0)
        offsets = [(None, tuple(o % st for o, st in zip(offset, stride))
                    + tuple(slice(o // st, o // st + n)
                            for o, st, n in zip(offset, stride, out_spatial)))
                   for offset, _ in kernel_slices(kernel, stride, (1,) * d, out_spatial)]
        part = ws.scratch("part", y.shape, gy.dtype)
        _route_to_first_max(xp, ws, xph, y, gy, gph, offsets, disjoint, part)
        if not any(pad) and not any(hi):
            xp.copyto(_as_phases(gx, stride), gph)
            return
        gpad = ws.scratch("gxpad", xpad.shape, gy.dtype)
        xp.copyto(_as_phases(gpad, stride), gph)
        finish_grad(xp, gpad, gx, pad)

    def _global_backward(self, xp, x, y, gy, gx, ws):
        """One window per channel: broadcast instead of looping over every pixel."""
        N, C = x.shape[:2]
        if self.pool_type == "max":
            x3, gx3 = x.reshape(N, C, -1), gx.reshape(N, C, -1)
            first = xp.argmax(x3, axis=-1)[..., None]
            positions = xp.arange(x3.shape[-1]).reshape(1, 1, -1)
            xp.multiply(positions == first, gy.reshape(N, C, 1), out=gx3)
        elif self.pool_type == "lp" and self.p_value != 1:
            xp.divide(x, y, out=gx)
            if self.p_value == 3:
                xp.square(gx, out=gx)
            gx *= gy
        elif self.pool_type == "avg":
            xp.copyto(gx, gy / float(np.prod(x.shape[2:])))
        else:
            xp.copyto(gx, gy)


# --------------------------------------------------------------------------- separable

def _separable_pays(kernel):
    """Axis by axis takes sum(kernel) passes (plus buffers) instead of prod(kernel)."""
    total = 1
    for k in kernel:
        total *= k
    return len(kernel) > 1 and sum(kernel) < total


def _axis_slice(ndim, axis, offset, stride, count):
    index = [slice(None)] * ndim
    index[axis] = slice(offset, offset + stride * (count - 1) + 1, stride)
    return tuple(index)


def _reduce_by_axis(xp, ws, xpad, y, kernel, stride, out_spatial, combine):
    """y = the window reduction of xpad, one spatial axis at a time (max or sum)."""
    src, d = xpad, len(kernel)
    for i, (k, s, n) in enumerate(zip(kernel, stride, out_spatial)):
        axis = 2 + i
        shape = src.shape[:axis] + (n,) + src.shape[axis + 1:]
        dst = y if i == d - 1 else ws.scratch("axis%d" % i, shape, y.dtype)
        for j in range(k):
            piece = src[_axis_slice(src.ndim, axis, j, s, n)]
            if j == 0:
                xp.copyto(dst, piece)
            else:
                combine(dst, piece, out=dst)
        src = dst


def _spread_by_axis(xp, ws, share, gpad, kernel, stride, out_spatial):
    """gpad += every window's share, spread back one spatial axis at a time (sum's adjoint).

    The last axis is spread first, into a buffer that is full size along it and
    output size along the others; the first axis last, into gpad itself.
    """
    d = len(kernel)
    src = share
    for i in range(d - 1, -1, -1):
        axis = 2 + i
        k, s, n = kernel[i], stride[i], out_spatial[i]
        if i == 0:
            dst = gpad
        else:
            shape = src.shape[:axis] + (gpad.shape[axis],) + src.shape[axis + 1:]
            dst = ws.scratch("spread%d" % i, shape, share.dtype)
            dst.fill(0)
        for j in range(k):
            dst[_axis_slice(dst.ndim, axis, j, s, n)] += src
        src = dst


# --------------------------------------------------------------------------- max routing

def _route_to_first_max(xp, ws, src, y, gy, grad, offsets, disjoint, part):
    """grad[slices] += gy where src[slices] is its window's FIRST maximum (row-major).

    `offsets` are (_, slices) per kernel offset in row-major order; `src` and
    `grad` are indexed by (all, all) + slices.
    """
    taken = ws.scratch("taken", y.shape, np.bool_)
    hit = ws.scratch("hit", y.shape, np.bool_)
    taken.fill(False)
    full = (slice(None), slice(None))
    for i, (_, slices) in enumerate(offsets):
        xp.equal(src[full + slices], y, out=hit)
        xp.less(taken, hit, out=hit)              # hit and not yet taken
        if disjoint:
            xp.multiply(gy, hit, out=grad[full + slices])
        else:
            xp.multiply(gy, hit, out=part)
            grad[full + slices] += part
        if i + 1 < len(offsets):
            taken |= hit


def _phase_shape(shape, stride):
    return tuple(shape[:2]) + tuple(stride) + tuple(e // st for e, st in
                                                   zip(shape[2:], stride))


def _as_phases(a, stride):
    """View of a (N, C, *E), each E a multiple of its stride, as (N, C, *stride, *E//stride)."""
    d = len(stride)
    split = tuple(a.shape[:2])
    for e, st in zip(a.shape[2:], stride):
        split += (e // st, st)
    order = (0, 1) + tuple(3 + 2 * i for i in range(d)) + tuple(2 + 2 * i for i in range(d))
    return a.reshape(split).transpose(order)
