"""LRN: local response normalisation across channels (MXNet's formula and attributes).

    y[:, c] = x[:, c] / (knorm + alpha / nsize * sum_{j in window(c)} x[:, j]^2) ^ beta

with window(c) = [c - nsize//2, c + nsize//2] clipped to the channels. The
window is symmetric (MXNet's own kernel accepts odd nsize only), so
backward is the same windowed sum over `gy * y / norm`:

    dx = gy * norm^-beta - 2 * alpha * beta / nsize * x * window_sum(gy * y / norm)

Both sums are one pass per window offset over the whole array (nsize
passes, not a loop over channels). `norm` is MXNet's hidden second output
(`tmp_norm`); here it lives in the node's workspace, kept only when backward runs.
"""
from .base import Operator, Param, register


def _window_sum(src, dst, half):
    """dst[:, c] = sum of src[:, c-half .. c+half] (clipped), one add per offset."""
    dst[...] = src
    C = src.shape[1]
    for k in range(1, min(half, C - 1) + 1):
        dst[:, k:] += src[:, :C - k]
        dst[:, :C - k] += src[:, k:]


@register
class LRN(Operator):
    """Normalise each value by the squares of its neighbours along the channel axis."""

    op_name = "LRN"
    num_hidden_outputs = 1       # MXNet's tmp_norm
    params = {
        "alpha": Param("float", 1e-4),
        "beta": Param("float", 0.75),
        "knorm": Param("float", 2.0),
        "nsize": Param("int", required=True),
    }

    # Memory (the executor's planner): backward reads data and the output (and the
    # norm it keeps); it writes gx in its last passes, after reading gy elementwise.
    def backward_inputs(self):
        return (0,)

    def backward_outputs(self):
        return (0,)

    def backward_inplace_pairs(self):
        return ((0, 0),)

    def check_attrs(self):
        if self.nsize < 1 or self.nsize % 2 == 0:
            self.error(f"nsize must be a positive odd number (LRN only supports odd "
                       f"window sizes, as MXNet), received {self.nsize}", ValueError)

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = super().infer_shape(in_shapes, out_shapes)
        if ins[0] is not None and len(ins[0]) < 2:
            self.error(f"data: expected at least 2 dimensions (N, C, ...), received "
                       f"{tuple(ins[0])}")
        return ins, outs

    def forward(self, xp, inputs, outputs, ws, is_train):
        x, y = inputs[0], outputs[0]
        sq = ws.scratch("sq", x.shape, x.dtype)
        norm = ws.for_backward("norm", x.shape, x.dtype)
        xp.multiply(x, x, out=sq)
        _window_sum(sq, norm, self.nsize // 2)
        norm *= self.alpha / self.nsize
        norm += self.knorm
        scale = ws.for_backward("scale", x.shape, x.dtype)     # norm^-beta
        xp.power(norm, -self.beta, out=scale)
        xp.multiply(x, scale, out=y)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gx = in_grads[0]
        if gx is None:
            return
        x, y, gy = inputs[0], outputs[0], out_grads[0]
        norm = ws.buffer("norm", x.shape, x.dtype)
        scale = ws.buffer("scale", x.shape, x.dtype)
        t = ws.scratch("t", x.shape, x.dtype)            # gy * y / norm
        s = ws.scratch("wsum", x.shape, x.dtype)
        xp.multiply(gy, y, out=t)
        t /= norm
        _window_sum(t, s, self.nsize // 2)
        s *= x
        s *= -2.0 * self.alpha * self.beta / self.nsize
        xp.multiply(gy, scale, out=gx)
        gx += s
