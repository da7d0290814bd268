"""Loss outputs: SoftmaxOutput, the three *RegressionOutput, MakeLoss, make_loss, BlockGrad.

A loss (is_loss = True) produces its input gradient without the head
gradient (reference section 12.2). Each loss also gives `loss(xp, inputs,
outputs)`: the scalar objective whose gradient its backward computes, which
the finite-difference checker differentiates in place of `sum(output * head)`.
"""
import numpy as np

from .base import Operator, Param, register, shape_known

_NORMALIZATIONS = ("null", "batch", "valid")


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _logsumexp_rows(xp, x2):
    """log(sum(exp(row))) of each row of a 2-D array, max-shifted."""
    top = x2.max(axis=1, keepdims=True)
    return (xp.log(xp.exp(x2 - top).sum(axis=1, keepdims=True)) + top)[:, 0]


def _as_int(xp, a):
    """C's static_cast<int>: truncation toward zero, as MXNet reads float labels."""
    return xp.trunc(a).astype(np.int64)


# --------------------------------------------------------------------------- SoftmaxOutput

@register
class SoftmaxOutput(Operator):
    """Softmax forward; cross-entropy gradient `p - target` backward (head gradient ignored).

    The softmax runs over prod(shape[1:]) (default), axis 1 for every other
    position (`multi_output`) or the last axis (`preserve_shape`). A label of
    the output's shape is read as probabilities; otherwise labels are class
    indices (truncated to int, as MXNet), one per softmax row.
    """

    op_name = "SoftmaxOutput"
    aliases = ("Softmax",)
    is_loss = True
    params = {
        "grad_scale": Param("float", 1.0),
        "ignore_label": Param("float", -1.0),
        "multi_output": Param("bool", False),
        "use_ignore": Param("bool", False),
        "preserve_shape": Param("bool", False),
        "normalization": Param("str", "null", choices=_NORMALIZATIONS),
        "out_grad": Param("bool", False),
        "smooth_alpha": Param("float", 0.0),
    }

    def list_arguments(self):
        return ["data", "label"]

    def no_grad_inputs(self):
        return ("label",)

    # ---- memory: backward reads the probabilities and the label; the softmax is
    # computed in place over its logits (the max is taken before y is written).
    def backward_inputs(self):
        return (1,)

    def backward_outputs(self):
        return (0,)

    def inplace_pairs(self):
        return ((0, 0),)

    # ---- shapes
    def infer_shape(self, in_shapes, out_shapes):
        ins = list(in_shapes)
        data, label = ins
        if data is None:            # MXNet infers nothing from the label or the output
            return ins, list(out_shapes)
        if len(data) < 2:
            self.error(f"data must have at least 2 dimensions (batch, classes), "
                       f"received shape {data}")
        if label is None or tuple(label) != tuple(data):    # not probability labels
            if self.multi_output:
                self._check_multi_output_label(ins, data, label)
            else:
                self.assign_shape(ins, 1, tuple(data[:-1]), "label")
        return ins, [self.merged_output(out_shapes[0], data)]

    def _check_multi_output_label(self, ins, data, label):
        if not shape_known(data):
            return
        n, c = data[0], data[1]
        accepted = [(n, _size(data) // n // c), (n,) + tuple(data[2:]),
                    (n, 1) + tuple(data[2:])]
        if label is None:
            ins[1] = accepted[0]
        elif tuple(label) not in accepted:
            self.error(f"label: expected shape {accepted[0]} or {accepted[1]} "
                       f"(or {accepted[2]}) for multi_output data {data}, received {label}")

    def infer_type(self, in_types, out_types):
        # MXNet requires one dtype for data, label and output (uniform type).
        known = next((t for t in (in_types[0], out_types[0], in_types[1]) if t is not None),
                     None)
        return [known, known], [known]

    # ---- views
    def _view3(self, shape):
        """(rows, classes, positions): the softmax runs over axis 1 of this view."""
        n, total = shape[0], _size(shape)
        if self.multi_output:
            return (n, shape[1], total // n // shape[1])
        if self.preserve_shape:
            return (total // shape[-1], shape[-1], 1)
        return (n, total // n, 1)

    def _groups(self, a, v3):
        """(rows * positions, classes): one softmax group per row (a copy when S > 1)."""
        return a.reshape(v3).transpose(0, 2, 1).reshape(-1, v3[1])

    # ---- compute
    def forward(self, xp, inputs, outputs, ws, is_train):
        x, y = inputs[0], outputs[0]
        v3 = self._view3(x.shape)
        x3, y3 = x.reshape(v3), y.reshape(v3)
        xp.subtract(x3, x3.max(axis=1, keepdims=True), out=y3)
        xp.exp(y3, out=y3)
        y3 /= y3.sum(axis=1, keepdims=True)

    def _targets(self, xp, label, v3, dtype):
        """Per-group targets (G, C) and weights (G,) such that dx = w * (p - target)."""
        n, c, s = v3
        flat = label.reshape(-1)
        k = _as_int(xp, flat[:n * s])    # MXNet reads one label per softmax group
        alpha = self.smooth_alpha
        off = alpha / (c - 1) if alpha != 0.0 and c > 1 else 0.0
        target = xp.full((n * s, c), off, dtype=dtype)
        hit = xp.arange(c)[None, :] == k[:, None]       # nothing where k is out of range
        target[hit] = 1.0 - alpha
        weight = xp.full((n * s,), self._scale(xp, flat, v3), dtype=dtype)
        if self.use_ignore:
            weight[k == int(self.ignore_label)] = 0.0
        return target, weight

    def _scale(self, xp, flat_label, v3):
        n, _, s = v3
        if self.normalization == "batch":
            count = n if self.multi_output else flat_label.size
        elif self.normalization == "valid":
            # Counted even without use_ignore, as MXNet.
            count = max(1, int((_as_int(xp, flat_label) != int(self.ignore_label)).sum()))
        else:
            count = 1
        per_position = s if self.multi_output and self.normalization != "valid" else 1
        return self.grad_scale / per_position / count

    def _prepare(self, xp, inputs, outputs):
        """(view, targets, weights); a label shaped like the output holds probabilities."""
        x, label = inputs
        v3 = self._view3(x.shape)
        dtype = outputs[0].dtype
        if tuple(label.shape) == tuple(outputs[0].shape):
            weight = xp.full((v3[0] * v3[2],), self.grad_scale, dtype=dtype)
            return v3, self._groups(label, v3), weight
        target, weight = self._targets(xp, label, v3, dtype)
        return v3, target, weight

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[1] is not None:
            in_grads[1][...] = 0
        gx = in_grads[0]
        if gx is None:
            return
        if self._plain_class_labels(inputs, outputs):
            self._backward_class_labels(xp, inputs[1], outputs[0], gx, ws)
            return
        v3, target, weight = self._prepare(xp, inputs, outputs)
        p = self._groups(outputs[0], v3)
        g = (p - target) * weight[:, None]
        n, c, s = v3
        gx.reshape(v3)[...] = g.reshape(n, s, c).transpose(0, 2, 1)
        if self.out_grad and out_grads[0] is not None:
            gx *= out_grads[0]

    def _plain_class_labels(self, inputs, outputs):
        """The common case: one integer class label per row, no smoothing or scaling by head."""
        return (not self.multi_output and not self.preserve_shape and not self.out_grad
                and self.smooth_alpha == 0.0 and inputs[1].ndim == 1
                and tuple(inputs[1].shape) != tuple(outputs[0].shape))

    def _backward_class_labels(self, xp, label, out, gx, ws):
        """dx = (p - onehot(label)) * scale, in place with per-node buffers (no big temporaries)."""
        n = out.shape[0]
        c = out.size // n
        gx2 = gx.reshape(n, c)
        xp.copyto(gx2, out.reshape(n, c))
        k = ws.buffer("label_int", (n,), np.int64)
        xp.trunc(label, out=ws.buffer("label_trunc", (n,), label.dtype))
        k[...] = ws.buffer("label_trunc", (n,), label.dtype)
        rows = ws.saved.get("rows")
        if rows is None or rows.shape[0] != n:
            rows = ws.saved["rows"] = xp.arange(n)
        if int(k.min()) >= 0 and int(k.max()) < c:
            gx2[rows, k] -= 1.0
        else:                          # an out-of-range label leaves p (MXNet)
            ok = (k >= 0) & (k < c)
            gx2[rows[ok], k[ok]] -= 1.0
        if self.use_ignore:
            gx2[k == int(self.ignore_label)] = 0.0
        gx *= self._scale(xp, label.reshape(-1), (n, c, 1))

    def loss(self, xp, inputs, outputs):
        """sum over groups of w * (logsumexp(x) - target . x): its gradient is backward's."""
        if self.out_grad:
            self.error("with out_grad=True the gradient is scaled by the head gradient "
                       "and is not the gradient of a scalar loss")
        v3, target, weight = self._prepare(xp, inputs, outputs)
        x = self._groups(inputs[0], v3)
        per_group = _logsumexp_rows(xp, x) - (target * x).sum(axis=1)
        return float((weight * per_group).sum())


# --------------------------------------------------------------------------- regression

class _RegressionOutput(Operator):
    """Shared shape rules and gradient scale of the three regression outputs.

    Backward: dx = grad_scale / num_output * f(out - label), num_output =
    label.size / label.shape[0]; the label is read in flat order.
    """

    is_loss = True
    params = {"grad_scale": Param("float", 1.0)}

    def list_arguments(self):
        return ["data", "label"]

    def no_grad_inputs(self):
        return ("label",)

    # Memory: backward reads the output and the label; forward is one elementwise pass.
    def backward_inputs(self):
        return (1,)

    def backward_outputs(self):
        return (0,)

    def inplace_pairs(self):
        return ((0, 0),)

    def infer_shape(self, in_shapes, out_shapes):
        ins = list(in_shapes)
        data, label = ins
        if not shape_known(data):       # MXNet waits for the whole data shape
            return ins, list(out_shapes)
        if label is None:
            # A (N, 1) output takes an (N,) label by default, as MXNet.
            ins[1] = (data[0],) if len(data) == 2 and data[1] == 1 else tuple(data)
        elif len(label) == 0 or (shape_known(label) and (
                label[0] != data[0] or _size(label) != _size(data))):
            self.error(f"label: expected shape {tuple(data)} (or any shape with "
                       f"{data[0]} rows and {_size(data)} elements), received {tuple(label)}")
        elif not shape_known(label):
            self.assign_shape(ins, 1, (data[0],) + tuple(label[1:]), "label")
        return ins, [self.merged_output(out_shapes[0], data)]

    def forward(self, xp, inputs, outputs, ws, is_train):
        xp.copyto(outputs[0], inputs[0])

    def _coefficient(self, label):
        return self.grad_scale / (label.size // label.shape[0])

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[1] is not None:
            in_grads[1][...] = 0
        gx = in_grads[0]
        if gx is None:
            return
        out, label = outputs[0], inputs[1]
        xp.subtract(out, label.reshape(out.shape), out=gx)
        self._finish_grad(xp, gx)
        gx *= self._coefficient(label)

    def _finish_grad(self, xp, gx):
        """Turn out - label into f(out - label) in place (identity here)."""


@register
class LinearRegressionOutput(_RegressionOutput):
    """Identity forward; squared-error gradient `out - label` (scaled)."""

    op_name = "LinearRegressionOutput"

    def loss(self, xp, inputs, outputs):
        diff = outputs[0] - inputs[1].reshape(outputs[0].shape)
        return float(0.5 * self._coefficient(inputs[1]) * (diff * diff).sum())


@register
class LogisticRegressionOutput(_RegressionOutput):
    """Sigmoid forward; logistic-loss gradient `sigmoid(x) - label` (scaled)."""

    op_name = "LogisticRegressionOutput"

    def forward(self, xp, inputs, outputs, ws, is_train):
        y = outputs[0]
        xp.negative(inputs[0], out=y)
        with np.errstate(over="ignore"):     # exp(-x) = inf gives the right 0
            xp.exp(y, out=y)
        y += 1
        xp.reciprocal(y, out=y)

    def loss(self, xp, inputs, outputs):
        x, label = inputs[0], inputs[1].reshape(inputs[0].shape)
        # Binary cross-entropy on logits: log(1 + e^x) - label * x.
        softplus = xp.logaddexp(0, x)
        return float(self._coefficient(inputs[1]) * (softplus - label * x).sum())


@register
class MAERegressionOutput(_RegressionOutput):
    """Identity forward; absolute-error gradient `sign(out - label)` (scaled)."""

    op_name = "MAERegressionOutput"

    def _finish_grad(self, xp, gx):
        xp.sign(gx, out=gx)

    def loss(self, xp, inputs, outputs):
        diff = outputs[0] - inputs[1].reshape(outputs[0].shape)
        return float(self._coefficient(inputs[1]) * xp.abs(diff).sum())


# --------------------------------------------------------------------------- MakeLoss family

@register
class MakeLoss(Operator):
    """Identity forward; the gradient is `grad_scale` (normalized), whatever the head gradient."""

    op_name = "MakeLoss"
    is_loss = True
    params = {
        "grad_scale": Param("float", 1.0),
        "valid_thresh": Param("float", 0.0),
        "normalization": Param("str", "null", choices=_NORMALIZATIONS),
    }
    # Memory: the output is the input (a view of its memory); backward fills gx with
    # the scale, reading the data only to count valid elements.
    inplace_identity = True

    def backward_inputs(self):
        return (0,) if self.normalization == "valid" else ()

    def backward_outputs(self):
        return ()

    def inplace_pairs(self):
        return ((0, 0),)

    def backward_inplace_pairs(self):
        return ((0, 0),)

    def forward(self, xp, inputs, outputs, ws, is_train):
        xp.copyto(outputs[0], inputs[0])

    def _scale(self, xp, data):
        if self.normalization == "batch":
            return self.grad_scale / data.shape[0]
        if self.normalization == "valid":
            # Elements above valid_thresh over the whole tensor, at least 1.
            return self.grad_scale / max(1, int((data > self.valid_thresh).sum()))
        return self.grad_scale

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None:
            in_grads[0].fill(self._scale(xp, inputs[0]))

    def loss(self, xp, inputs, outputs):
        return float(self._scale(xp, inputs[0]) * inputs[0].sum())


@register
class MakeLossLower(Operator):
    """`make_loss`: identity forward, gradient ones_like(data); output named `loss`."""

    op_name = "make_loss"
    is_loss = True
    inplace_identity = True      # memory: as MakeLoss, the output is a view of the input

    def backward_inputs(self):
        return ()

    def backward_outputs(self):
        return ()

    def inplace_pairs(self):
        return ((0, 0),)

    def backward_inplace_pairs(self):
        return ((0, 0),)

    def list_outputs(self):
        return ["loss"]

    def forward(self, xp, inputs, outputs, ws, is_train):
        xp.copyto(outputs[0], inputs[0])

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None:
            in_grads[0].fill(1)

    def loss(self, xp, inputs, outputs):
        return float(inputs[0].sum())


@register
class BlockGrad(Operator):
    """Identity forward, zero gradient: exposes a value without training through it."""

    op_name = "BlockGrad"
    aliases = ("stop_gradient",)
    inplace_identity = True      # memory: the output is a view of the input

    def backward_inputs(self):
        return ()

    def backward_outputs(self):
        return ()

    def inplace_pairs(self):
        return ((0, 0),)

    def backward_inplace_pairs(self):
        return ((0, 0),)

    def forward(self, xp, inputs, outputs, ws, is_train):
        xp.copyto(outputs[0], inputs[0])

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None:
            in_grads[0].fill(0)
