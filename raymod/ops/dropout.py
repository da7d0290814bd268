"""Dropout: y = x * mask, mask = Bernoulli(1-p) / (1-p), active in training or mode='always'.

The mask is drawn from the node's `ws.rng`, the generator the executor seeds,
so a seeded executor replays the same masks. A Workspace without one (an op
driven by hand) gets `default_rng(0)` of its array module on first use, so
runs are repeatable there too. The mask is kept for backward: dx = dy * mask.
With `axes`, one mask value is shared along those axes (broadcast).
"""
import numpy as np

from .base import Operator, Param, register

FALLBACK_SEED = 0


def _uniform(rng, out):
    """Fill `out` with U[0, 1) draws, in place where the generator allows it."""
    try:
        rng.random(out=out, dtype=out.dtype)
    except TypeError:       # a generator without out=/dtype= support
        out[...] = rng.random(out.shape)


@register
class Dropout(Operator):
    """Randomly zero elements with probability p and scale the rest by 1/(1-p)."""

    op_name = "Dropout"
    num_hidden_outputs = 1       # MXNet's hidden `mask` output
    params = {
        "p": Param("float", 0.5),
        "mode": Param("str", "training", choices=("training", "always")),
        "axes": Param("shape", ()),
        "cudnn_off": Param("bool", False, optional=True),
    }

    # Memory: the mask lives in the workspace (kept only when backward runs), so
    # backward reads no forward value; y = x * mask and dx = dy * mask run in place.
    def backward_inputs(self):
        return ()

    def backward_outputs(self):
        return ()

    def inplace_pairs(self):
        return ((0, 0),)

    def backward_inplace_pairs(self):
        return ((0, 0),)

    def check_attrs(self):
        if not 0.0 <= self.p <= 1.0:
            self.error(f"p must be in [0, 1], received {self.p}", ValueError)

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = super().infer_shape(in_shapes, out_shapes)
        if ins[0] is not None:
            self._mask_shape(ins[0])
        return ins, outs

    def _mask_shape(self, shape):
        ndim = len(shape)
        mask = list(shape)
        for a in self.axes:
            if not -ndim <= a < ndim:
                self.error(f"axes {self.axes}: axis {a} is out of range for data shape "
                           f"{tuple(shape)}")
            mask[a % ndim] = 1
        return tuple(mask)

    def forward(self, xp, inputs, outputs, ws, is_train):
        x, y = inputs[0], outputs[0]
        active = (is_train or self.mode == "always") and self.p > 0
        ws.saved["active"] = active
        if not active:
            xp.copyto(y, x)
            return
        mask = ws.for_backward("mask", self._mask_shape(x.shape), x.dtype)
        if self.p >= 1.0:
            mask.fill(0)
        else:
            if ws.rng is None:
                ws.rng = xp.random.default_rng(FALLBACK_SEED)
            draw_dtype = np.float64 if x.dtype == np.float64 else np.float32
            u = ws.scratch("uniform", mask.shape, draw_dtype)
            _uniform(ws.rng, u)
            keep = 1.0 - self.p
            xp.less(u, keep, out=mask)
            mask *= 1.0 / keep
        xp.multiply(x, mask, out=y)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gx = in_grads[0]
        if gx is None:
            return
        if ws.saved.get("active"):
            mask = ws.for_backward("mask", self._mask_shape(inputs[0].shape), inputs[0].dtype)
            xp.multiply(out_grads[0], mask, out=gx)
        else:
            xp.copyto(gx, out_grads[0])
