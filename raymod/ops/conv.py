"""Convolution (1-D, 2-D, 3-D; channel-first layouts) lowered to matrix products.

Pointwise (1x1, stride 1) and depthwise convolutions take the lowerings of
`_conv_paths` (no batch-wide columns). Every other one goes through im2col:
the padded input is read through a strided window view and copied once into
a column buffer laid out (C, *kernel, <columns>), so that group g's rows form
a contiguous (C/G * K, N * P) block and the forward is one product, batched
over the groups: `W_g (F/G, C/G * K) @ col_g`. Backward, likewise batched:
`dW_g = dy_g @ col_g^T`, `dcol_g = W_g^T @ dy_g`, then col2im adds dcol back
into the padded input gradient with one strided add per kernel offset
(a loop over kh*kw, never over pixels). The columns are ordered (N, *out)
or (*out, N), see BATCH_LAST_BELOW. Every buffer is scratch memory of the
node's Workspace, shared with the other operators of the executor, so
steady-state steps allocate nothing but numpy's internal temporaries and
nothing is kept from forward to backward: backward rebuilds the columns.
Only as_strided views, copyto, dot/matmul and basic slicing are used, so the
same code runs on cupy.
"""
from . import _conv_paths as paths
from ._window import (as_strided, check_layout, spatial_tuple, window_view, kernel_slices,
                      padded_input, grad_buffer, finish_grad, fill_border)
from .base import Operator, Param, register

# Below this output width the columns are ordered (*out, N) instead of (N, *out).
# numpy's strided copies and adds pay per innermost run: batch-last makes the
# im2col/col2im runs Wo*N elements long instead of Wo, which wins for the narrow
# outputs of deep layers; for wide outputs the final (P, N) -> (N, P) transpose
# costs more than it saves. Either order gives identical results.
BATCH_LAST_BELOW = 16


def _prod(values):
    out = 1
    for v in values:
        out *= v
    return out


@register
class Convolution(Operator):
    """Cross-correlation of `data` (N, C, *spatial) with `weight` (F, C/G, *kernel), plus bias."""

    op_name = "Convolution"
    params = {
        "kernel": Param("shape", required=True),
        "stride": Param("shape", ()),
        "dilate": Param("shape", ()),
        "pad": Param("shape", ()),
        "num_filter": Param("int", required=True),
        "num_group": Param("int", 1),
        "workspace": Param("int", 1024),
        "no_bias": Param("bool", False),
        "cudnn_tune": Param("str", None, optional=True,
                            choices=("off", "limited_workspace", "fastest")),
        "cudnn_off": Param("bool", False),
        "layout": Param("str", None, optional=True),
    }

    def check_attrs(self):
        d = len(self.kernel)
        if d not in (1, 2, 3):
            self.error(f"kernel must have 1, 2 or 3 dimensions, received {self.kernel}",
                       ValueError)
        if any(k < 1 for k in self.kernel):
            self.error(f"kernel sizes must be >= 1, received {self.kernel}", ValueError)
        self._stride = spatial_tuple(self, "stride", self.stride, d, 1)
        self._dilate = spatial_tuple(self, "dilate", self.dilate, d, 1)
        self._pad = spatial_tuple(self, "pad", self.pad, d, 0)
        for name, values, low in (("stride", self._stride, 1), ("dilate", self._dilate, 1),
                                  ("pad", self._pad, 0)):
            if any(v < low for v in values):
                self.error(f"{name} values must be >= {low}, received {values}", ValueError)
        if self.num_filter < 1:
            self.error(f"num_filter must be >= 1, received {self.num_filter}", ValueError)
        if self.num_group < 1:
            self.error(f"num_group must be >= 1, received {self.num_group}", ValueError)
        if self.num_filter % self.num_group:
            self.error(f"num_filter ({self.num_filter}) must be divisible by num_group "
                       f"({self.num_group})", ValueError)
        check_layout(self, self.layout, d)

    def list_arguments(self):
        return ["data", "weight"] if self.no_bias else ["data", "weight", "bias"]

    # Memory (the executor's planner): backward reads data and weight, never the
    # bias or the output.
    def backward_inputs(self):
        return (0, 1)

    def backward_outputs(self):
        return ()

    # ------------------------------------------------------------------ shapes
    def _extent(self, i):
        """Spatial extent of the dilated kernel along dim i."""
        return self._dilate[i] * (self.kernel[i] - 1) + 1

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        d, F, G = len(self.kernel), self.num_filter, self.num_group
        if not self.no_bias:
            self.assign_shape(ins, 2, (F,), "bias")
        data, weight = ins[0], ins[1]
        if data is None:
            self.assign_shape(ins, 1, (F, 0) + tuple(self.kernel), "weight")
            return ins, outs
        if len(data) != 2 + d:
            self.error(f"data: expected a {2 + d}-D shape (N, C, {'spatial, ' * d}) for a "
                       f"{d}-D kernel {self.kernel}, received {data}")
        data = list(data)
        if not data[1] and weight is not None and len(weight) == 2 + d and weight[1]:
            data[1] = weight[1] * G
        C = data[1]
        if C and C % G:
            self.error(f"data has {C} channels (shape {tuple(data)}), not divisible by "
                       f"num_group {G}")
        per_group = C // G if C else 0
        if weight is not None and len(weight) == 2 + d and per_group and weight[1] \
                and weight[1] != per_group:
            self.error(f"data has {C} channels (shape {tuple(data)}, {per_group} per group "
                       f"with num_group {G}) but weight expects {weight[1]} "
                       f"(shape {weight})")
        self.assign_shape(ins, 1, (F, per_group) + tuple(self.kernel), "weight")
        out = outs[0]
        known_out = out is not None and len(out) == 2 + d
        if known_out and not data[0]:
            data[0] = out[0]
        spatial = []
        for i in range(d):
            S, p, s, ext = data[2 + i], self._pad[i], self._stride[i], self._extent(i)
            if not S and known_out and out[2 + i] and s == 1:
                S = data[2 + i] = out[2 + i] - 1 + ext - 2 * p   # MXNet back-fills stride 1
            if not S:
                spatial.append(0)
                continue
            if ext > S + 2 * p:
                self.error(f"kernel {tuple(self.kernel)} (dilated extent {ext} along "
                           f"spatial dim {i}) is larger than the padded input: data shape "
                           f"{tuple(data)} with pad {self._pad} gives {S + 2 * p}")
            spatial.append((S + 2 * p - ext) // s + 1)
        self.assign_shape(ins, 0, tuple(data), "data")
        outs[0] = self.merged_output(outs[0], (data[0], F) + tuple(spatial))
        return ins, outs

    # ------------------------------------------------------------------ compute
    def _geometry(self, x, y_shape):
        N, C = x.shape[:2]
        out_spatial = tuple(y_shape[2:])
        return N, C, out_spatial, _prod(self.kernel), _prod(out_spatial)

    def _lowering(self, channels, out_spatial):
        """'depthwise', 'pointwise' or 'im2col' for this input and output geometry."""
        if paths.is_depthwise(self, channels):
            return "depthwise"
        if paths.is_pointwise(self, out_spatial):
            return "pointwise"
        return "im2col"

    def forward(self, xp, inputs, outputs, ws, is_train):
        x, w, y = inputs[0], inputs[1], outputs[0]
        bias = None if self.no_bias else inputs[2]
        lowering = self._lowering(x.shape[1], y.shape[2:])
        if lowering == "depthwise":
            paths.depthwise_forward(self, xp, ws, x, w, bias, y)
            return
        if lowering == "pointwise":
            paths.pointwise_forward(self, xp, x, w, bias, y)
            return
        N, C, out_spatial, K, P = self._geometry(x, y.shape)
        F, G = self.num_filter, self.num_group
        batch_last = out_spatial[-1] < BATCH_LAST_BELOW
        ws.saved["batch_last"] = batch_last
        col2 = self._im2col(xp, ws, x, out_spatial, batch_last).reshape(C * K, N * P)
        y2 = ws.scratch("y2", (F, N * P), y.dtype)
        _grouped_product(xp, w.reshape(F, (C // G) * K), col2, y2, G)
        # y2's columns are (n, p) or (p, n): one transposing copy to (N, F, P), bias fused
        y2t = y2.reshape(F, P, N).transpose(2, 0, 1) if batch_last \
            else y2.reshape(F, N, P).transpose(1, 0, 2)
        if self.no_bias:
            xp.copyto(y.reshape(N, F, P), y2t)
        else:
            xp.add(y2t, inputs[2].reshape(1, F, 1), out=y.reshape(N, F, P))

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        x, w, gy = inputs[0], inputs[1], out_grads[0]
        lowering = self._lowering(x.shape[1], gy.shape[2:])
        if lowering != "im2col":
            gb = None if self.no_bias else in_grads[2]
            run = paths.depthwise_backward if lowering == "depthwise" \
                else paths.pointwise_backward
            run(self, xp, ws, x, w, gy, in_grads[0], in_grads[1], gb)
            return
        N, C, out_spatial, K, P = self._geometry(x, gy.shape)
        F, G = self.num_filter, self.num_group
        kg = (C // G) * K
        batch_last = ws.saved["batch_last"]
        gy2 = ws.scratch("gy2", (F, N * P), gy.dtype)
        if batch_last:
            xp.copyto(gy2.reshape(F, P, N), gy.reshape(N, F, P).transpose(1, 2, 0))
        else:
            xp.copyto(gy2.reshape(F, N, P), gy.reshape(N, F, P).transpose(1, 0, 2))
        if not self.no_bias and in_grads[2] is not None:
            xp.sum(gy2, axis=1, out=in_grads[2].reshape(F))
        w2 = w.reshape(F, kg)
        col2 = None
        if in_grads[1] is not None:
            # the columns are rebuilt from x (as MXNet does): nothing of K times the
            # input's size is kept from forward to backward
            col2 = self._im2col(xp, ws, x, out_spatial, batch_last).reshape(C * K, N * P)
            _grouped_product(xp, gy2, col2, in_grads[1].reshape(F, kg), G, transpose_b=True)
        if in_grads[0] is None:
            return
        # the columns are read no more: their gradient takes their memory
        gcol2 = col2 if col2 is not None else ws.scratch("gcol", (C * K, N * P), x.dtype)
        _grouped_product(xp, w2, gy2, gcol2, G, transpose_a=True)
        gcol = gcol2.reshape(self._col_shape(C, N, out_spatial, batch_last))
        if batch_last:
            self._col2im_batch_last(xp, gcol, in_grads[0], ws, out_spatial)
        else:
            self._col2im(xp, gcol, in_grads[0], ws, out_spatial)

    # ------------------------------------------------------------------ lowering
    def _col_shape(self, C, N, out_spatial, batch_last):
        if batch_last:
            return (C,) + tuple(self.kernel) + tuple(out_spatial) + (N,)
        return (C,) + tuple(self.kernel) + (N,) + tuple(out_spatial)

    def _im2col(self, xp, ws, x, out_spatial, batch_last):
        """The column buffer (C, *kernel, <N and *out in the chosen order>), filled."""
        d, N, C = len(self.kernel), x.shape[0], x.shape[1]
        col = ws.scratch("col", self._col_shape(C, N, out_spatial, batch_last), x.dtype)
        if batch_last:
            xt = self._batch_last_input(xp, ws, x)             # (C, *padded, N)
            s_c, s_sp, s_n = xt.strides[0], xt.strides[1:-1], xt.strides[-1]
            strides = (s_c,) + tuple(st * dl for st, dl in zip(s_sp, self._dilate)) \
                + tuple(st * sd for st, sd in zip(s_sp, self._stride)) + (s_n,)
            xp.copyto(col, as_strided(xp, xt, col.shape, strides))
            return col
        xpad = padded_input(xp, ws, "xpad", x, self._pad, self._pad, 0)
        win = window_view(xp, xpad, self.kernel, self._stride, self._dilate, out_spatial)
        # (N, C, *out, *k) -> (C, *k, N, *out): group blocks become contiguous rows
        order = (1,) + tuple(range(2 + d, 2 + 2 * d)) + (0,) + tuple(range(2, 2 + d))
        xp.copyto(col, win.transpose(order))
        return col

    def _batch_last_input(self, xp, ws, x):
        """x as (C, *padded spatial, N) in scratch memory, with its zero border."""
        d = len(self.kernel)
        shape = (x.shape[1],) + tuple(s + 2 * p for s, p in zip(x.shape[2:], self._pad)) \
            + (x.shape[0],)
        buf = ws.scratch("xt", shape, x.dtype)
        fill_border(buf, 1, x.shape[2:], self._pad, 0)
        inner = (slice(None),) + tuple(slice(p, p + s) for p, s in
                                       zip(self._pad, x.shape[2:])) + (slice(None),)
        xp.copyto(buf[inner], x.transpose(tuple(range(1, d + 2)) + (0,)))
        return buf

    def _col2im(self, xp, gcol, gx, ws, out_spatial):
        """Add every kernel offset's column block back into the (padded) input gradient."""
        gpad = grad_buffer(xp, ws, "gxpad", gx, self._pad, self._pad)
        gpad_cn = gpad.swapaxes(0, 1)                      # (C, N, *S): gcol's order
        for offset, slices in kernel_slices(self.kernel, self._stride, self._dilate,
                                            out_spatial):
            gpad_cn[(slice(None), slice(None)) + slices] += gcol[(slice(None),) + offset]
        finish_grad(xp, gpad, gx, self._pad)

    def _col2im_batch_last(self, xp, gcol, gx, ws, out_spatial):
        """col2im in the (C, *padded, N) layout, then one transposing copy into gx."""
        d = len(self.kernel)
        shape = (gx.shape[1],) + tuple(s + 2 * p for s, p in zip(gx.shape[2:], self._pad)) \
            + (gx.shape[0],)
        gt = ws.scratch("gxt", shape, gx.dtype)
        gt.fill(0)
        for offset, slices in kernel_slices(self.kernel, self._stride, self._dilate,
                                            out_spatial):
            gt[(slice(None),) + slices + (slice(None),)] += gcol[(slice(None),) + offset]
        inner = (slice(None),) + tuple(slice(p, p + s) for p, s in
                                       zip(self._pad, gx.shape[2:])) + (slice(None),)
        xp.copyto(gx, gt[inner].transpose((d + 1,) + tuple(range(d + 1))))


def _grouped_product(xp, a, b, out, groups, transpose_a=False, transpose_b=False):
    """out = a_g @ b_g for every group g (row blocks of a, b and out), one call.

    With transpose_a (transpose_b) the product uses a_g^T (b_g^T) instead.
    """
    if groups == 1:
        xp.dot(a.T if transpose_a else a, b.T if transpose_b else b, out=out)
        return
    a3 = a.reshape(groups, a.shape[0] // groups, a.shape[1])
    b3 = b.reshape(groups, b.shape[0] // groups, b.shape[1])
    xp.matmul(a3.transpose(0, 2, 1) if transpose_a else a3,
              b3.transpose(0, 2, 1) if transpose_b else b3,
              out=out.reshape(groups, out.shape[0] // groups, out.shape[1]))
