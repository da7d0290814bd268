"""Activation functions: Activation, LeakyReLU, softmax, log_softmax.

Backward formulas follow MXNet's kernels (mshadow_op.h, leaky_relu-inl.h,
softmax-inl.h): most are written in terms of the output, as MXNet's are, so
edge cases (a negative `slope`, softrelu's cut-off at 20) behave the same.
"""
import math

import numpy as np

from .base import Operator, Param, register, merge_shape

# SELU constants (Klambauer et al. 2017), as in MXNet's mshadow_op.h.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946
_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def erf(xp, x):
    """The error function, elementwise, with any array module.

    numpy has no erf and cupy's lives in cupyx, so this is the Numerical
    Recipes `erfcc` Chebyshev fit: relative error below 1.2e-7 in erfc, hence
    absolute error below 1.2e-7 in erf everywhere -- finer than float32, the
    precision MXNet computes gelu in.
    """
    z = xp.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * xp.exp(-z * z + poly)
    return xp.where(x >= 0, 1.0 - erfc, erfc - 1.0)


# --------------------------------------------------------------------------- Activation

@register
class Activation(Operator):
    """Elementwise activation: relu, sigmoid, tanh, softrelu (log(1+e^x)), softsign."""

    op_name = "Activation"
    params = {"act_type": Param("str", required=True,
                                choices=("relu", "sigmoid", "tanh", "softrelu", "softsign"))}

    # Memory: backward reads the output (softsign: the input); forward computes in
    # place except softrelu and softsign, which read x after writing y; backward
    # writes gx in its last pass, so gx may be gy's memory.
    def backward_inputs(self):
        return (0,) if self.act_type == "softsign" else ()

    def backward_outputs(self):
        return () if self.act_type == "softsign" else (0,)

    def inplace_pairs(self):
        return () if self.act_type in ("softrelu", "softsign") else ((0, 0),)

    def backward_inplace_pairs(self):
        return ((0, 0),)

    def forward(self, xp, inputs, outputs, ws, is_train):
        x, y = inputs[0], outputs[0]
        act = self.act_type
        if act == "relu":
            xp.maximum(x, 0, out=y)
        elif act == "sigmoid":
            xp.negative(x, out=y)
            with np.errstate(over="ignore"):   # exp(-x) = inf gives the right 0
                xp.exp(y, out=y)
            y += 1
            xp.reciprocal(y, out=y)
        elif act == "tanh":
            xp.tanh(x, out=y)
        elif act == "softrelu":
            # MXNet returns x itself above 20, where log1p(exp(x)) == x in float32.
            xp.minimum(x, 20.0, out=y)
            xp.exp(y, out=y)
            xp.log1p(y, out=y)
            xp.copyto(y, x, where=x > 20.0)
        else:  # softsign
            xp.abs(x, out=y)
            y += 1
            xp.divide(x, y, out=y)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gx = in_grads[0]
        if gx is None:
            return
        gy, x, y = out_grads[0], inputs[0], outputs[0]
        act = self.act_type
        # dy/dx goes through a scratch buffer of gx's dtype (no bool array or cast per
        # step); gx is written last, from gy, so it may share gy's memory.
        d = ws.scratch("dydx", gx.shape, gx.dtype)
        if act == "relu":
            xp.greater(y, 0, out=d)
        elif act == "sigmoid":
            xp.subtract(1, y, out=d)
            d *= y
        elif act == "tanh":
            xp.multiply(y, y, out=d)
            xp.subtract(1, d, out=d)
        elif act == "softrelu":
            xp.negative(y, out=d)
            xp.expm1(d, out=d)
            xp.negative(d, out=d)
        else:  # softsign: 1 / (1 + |x|)^2, from the input as MXNet
            xp.abs(x, out=d)
            d += 1
            xp.multiply(d, d, out=d)
            xp.divide(gy, d, out=gx)
            return
        xp.multiply(gy, d, out=gx)


# --------------------------------------------------------------------------- LeakyReLU

@register
class LeakyReLU(Operator):
    """Leaky rectifiers: leaky, prelu (learned `gamma` per channel), elu, selu, gelu, rrelu.

    rrelu draws a slope per element uniformly in [lower_bound, upper_bound)
    when training (from the executor's seeded generator, kept for backward)
    and uses (lower_bound + upper_bound) / 2 otherwise, as MXNet.
    """

    op_name = "LeakyReLU"
    params = {
        "act_type": Param("str", "leaky",
                          choices=("leaky", "prelu", "elu", "selu", "gelu", "rrelu")),
        "slope": Param("float", 0.25),
        "lower_bound": Param("float", 0.125),
        "upper_bound": Param("float", 0.334),
    }

    def check_attrs(self):
        # MXNet's rrelu also produces a hidden `mask` output (its random slopes).
        self.num_hidden_outputs = 1 if self.act_type == "rrelu" else 0
        if self.act_type == "rrelu" and self.lower_bound > self.upper_bound:
            self.error(f"lower_bound ({self.lower_bound}) must not exceed upper_bound "
                       f"({self.upper_bound})", ValueError)

    def list_arguments(self):
        return ["data", "gamma"] if self.act_type == "prelu" else ["data"]

    # Memory: leaky, rrelu, elu and selu differentiate from the output, prelu and
    # gelu from the inputs; forward reads x after writing y, so nothing is in place.
    def backward_inputs(self):
        return (0, 1) if self.act_type == "prelu" else \
            (0,) if self.act_type == "gelu" else ()

    def backward_outputs(self):
        return () if self.act_type in ("prelu", "gelu") else (0,)

    def input_attrs(self, input_name):
        if input_name == "gamma":
            return {"__init__": '["Constant", {"value": 0.25}]'}
        return {}

    def infer_shape(self, in_shapes, out_shapes):
        ins = list(in_shapes)
        data = ins[0]
        if data is None:        # MXNet infers nothing backward here
            return ins, list(out_shapes)
        if self.act_type == "prelu":
            if len(data) < 2:
                self.error(f"prelu needs data with a channel axis 1, received shape {data}")
            gamma = ins[1]
            # MXNet broadcasts a (1,) gamma over every channel; else one per channel.
            if not (gamma is not None and tuple(gamma) == (1,)):
                self.assign_shape(ins, 1, (data[1],), "gamma")
        return ins, [self.merged_output(out_shapes[0], data)]

    def forward(self, xp, inputs, outputs, ws, is_train):
        x, y = inputs[0], outputs[0]
        act = self.act_type
        if act == "leaky":
            self._xelu(xp, x, self.slope, y)
        elif act == "prelu":
            self._xelu(xp, x, self._gamma_view(inputs[1], x.ndim), y)
        elif act == "rrelu":
            if is_train:
                if ws.rng is None:
                    self.error("rrelu in training needs the executor's random generator")
                slope = ws.buffer("mask", x.shape, y.dtype)
                slope[...] = ws.rng.random(size=x.shape)
                slope *= self.upper_bound - self.lower_bound
                slope += self.lower_bound
            else:
                slope = (self.lower_bound + self.upper_bound) / 2.0
            ws.saved["slope"] = slope
            self._xelu(xp, x, slope, y)
        elif act == "elu":
            self._elu(xp, x, self.slope, y)
        elif act == "selu":
            self._elu(xp, x, SELU_ALPHA, y)
            y *= SELU_LAMBDA
        else:  # gelu, MXNet's erf form: x * Phi(x)
            y[...] = erf(xp, x / _SQRT_2)
            y += 1
            y *= x
            y *= 0.5

    @staticmethod
    def _xelu(xp, x, slope, y):
        """y = x where x > 0 else slope * x (slope a scalar or broadcastable array)."""
        xp.multiply(x, slope, out=y)
        xp.copyto(y, x, where=x > 0)

    @staticmethod
    def _elu(xp, x, alpha, y):
        xp.minimum(x, 0, out=y)    # keeps expm1 finite where x > 0
        xp.expm1(y, out=y)
        y *= alpha
        xp.copyto(y, x, where=x > 0)

    @staticmethod
    def _gamma_view(gamma, ndim):
        return gamma.reshape((1, -1) + (1,) * (ndim - 2))

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gy, x, y = out_grads[0], inputs[0], outputs[0]
        gx = in_grads[0]
        act = self.act_type
        if act == "prelu":
            gamma = inputs[1]
            if len(in_grads) > 1 and in_grads[1] is not None:
                # d/dgamma = x where x <= 0, summed over every axis but the channel one.
                axes = tuple(i for i in range(x.ndim) if i != 1 or gamma.size == 1)
                contrib = xp.where(x > 0, 0, x) * gy
                in_grads[1][...] = contrib.sum(axis=axes).reshape(in_grads[1].shape)
            if gx is not None:
                xp.multiply(gy, self._gamma_view(gamma, x.ndim), out=gx)
                xp.copyto(gx, gy, where=x > 0)
            return
        if gx is None:
            return
        if act in ("leaky", "rrelu"):
            slope = self.slope if act == "leaky" else ws.saved["slope"]
            xp.multiply(gy, slope, out=gx)
            xp.copyto(gx, gy, where=y > 0)
        elif act in ("elu", "selu"):
            # From the output: y + alpha (times lambda for selu) where y <= 0.
            alpha = self.slope if act == "elu" else SELU_LAMBDA * SELU_ALPHA
            scale = 1.0 if act == "elu" else SELU_LAMBDA
            xp.add(y, alpha, out=gx)
            xp.copyto(gx, scale, where=y > 0)
            gx *= gy
        else:  # gelu: Phi(x) + x * phi(x)
            gx[...] = erf(xp, x / _SQRT_2)
            gx += 1
            gx *= 0.5
            gx += x * xp.exp(-0.5 * x * x) * _INV_SQRT_2PI
            gx *= gy


# --------------------------------------------------------------------------- softmax

class _SoftmaxBase(Operator):
    """softmax and log_softmax along `axis`, with temperature, dtype and use_length."""

    params = {
        "axis": Param("int", -1),
        "temperature": Param("float", None, optional=True),
        "dtype": Param("dtype", None, optional=True,
                       choices=(np.dtype("float16"), np.dtype("float32"), np.dtype("float64"))),
        "use_length": Param("bool", False, optional=True),
    }
    log = False

    def check_attrs(self):
        if self.temperature is not None and self.temperature == 0:
            self.error("temperature must be nonzero", ValueError)

    def list_arguments(self):
        return ["data", "length"] if self.use_length else ["data"]

    def no_grad_inputs(self):
        return ("length",) if self.use_length else ()

    # Memory: backward reads the output (and the lengths); forward reads x into its
    # scratch before writing y, backward forms gy - sum(...) before writing gx.
    def backward_inputs(self):
        return (1,) if self.use_length else ()

    def backward_outputs(self):
        return (0,)

    def inplace_pairs(self):
        return ((0, 0),)

    def backward_inplace_pairs(self):
        return ((0, 0),)

    def _axis(self, ndim):
        axis = self.axis + ndim if self.axis < 0 else self.axis
        if not 0 <= axis < ndim:
            self.error(f"axis {self.axis} is out of range for data with {ndim} dimensions")
        return axis

    def infer_shape(self, in_shapes, out_shapes):
        ins = list(in_shapes)
        data = merge_shape(ins[0], out_shapes[0])
        if data is None and ins[0] is not None and out_shapes[0] is not None:
            self.shape_error("data", out_shapes[0], ins[0])
        ins[0] = data
        if data is not None:
            axis = self._axis(len(data))
        if data is not None and self.use_length:
            length = tuple(d for i, d in enumerate(data) if i != axis) or (1,)
            self.assign_shape(ins, 1, length, "length")
        return ins, [data]

    def infer_type(self, in_types, out_types):
        ins, outs = list(in_types), list(out_types)
        # `is None` tests: a numpy 1.x dtype is falsy (len 0).
        if self.dtype is not None:
            outs[0] = self.dtype
            if ins[0] is None:                  # as MXNet's type_assign
                ins[0] = self.dtype
        elif ins[0] is None:
            ins[0] = outs[0]
        elif outs[0] is None:
            outs[0] = ins[0]
        return ins, outs     # `length` keeps its own (integer) dtype

    def _mask(self, xp, length, shape, axis):
        """True where the position along `axis` is below that row's length."""
        steps = xp.arange(shape[axis]).reshape((-1,) + (1,) * (len(shape) - axis - 1))
        rows = tuple(1 if i == axis else d for i, d in enumerate(shape))
        return steps < length.astype(np.int64).reshape(rows)

    def forward(self, xp, inputs, outputs, ws, is_train):
        x, y = inputs[0], outputs[0]
        axis = self._axis(x.ndim)
        mask = self._mask(xp, inputs[1], x.shape, axis) if self.use_length else None
        work = ws.scratch("work", x.shape, np.result_type(x.dtype, y.dtype))
        if mask is None:
            top = x.max(axis=axis, keepdims=True)
            xp.subtract(x, top, out=work)
        else:
            xp.copyto(work, x)
            xp.copyto(work, -np.inf, where=~mask)
            top = work.max(axis=axis, keepdims=True)
            top[~xp.isfinite(top)] = 0          # a row of length 0
            work -= top
        if self.temperature is not None and self.temperature != 1.0:
            work /= self.temperature
        if self.log:
            total = xp.log(xp.exp(work).sum(axis=axis, keepdims=True))
            xp.subtract(work, total, out=y)
            if mask is not None:
                xp.copyto(y, 0, where=~mask)
        else:
            xp.exp(work, out=work)
            total = work.sum(axis=axis, keepdims=True)
            total[total == 0] = 1               # a row of length 0 stays all zero
            xp.divide(work, total, out=y)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if self.use_length and in_grads[1] is not None:
            in_grads[1][...] = 0
        gx = in_grads[0]
        if gx is None:
            return
        gy, y = out_grads[0], outputs[0]
        axis = self._axis(y.ndim)
        if self.log:
            # dx = dy - softmax * sum(dy); masked positions get nothing.
            p = xp.exp(y)
            if self.use_length:
                mask = self._mask(xp, inputs[1], y.shape, axis)
                p *= mask
                g = gy * mask
            else:
                g = gy
            xp.subtract(g, p * g.sum(axis=axis, keepdims=True), out=gx)
        else:
            # dx = y * (dy - sum(dy * y)); y is 0 at masked positions.
            dot = (gy * y).sum(axis=axis, keepdims=True)
            xp.multiply(y, gy - dot, out=gx)
        if self.temperature is not None and self.temperature != 1.0:
            gx /= self.temperature


@register
class SoftmaxOp(_SoftmaxBase):
    """softmax(x / temperature) along `axis` (positions past `length` are 0 with use_length)."""

    op_name = "softmax"


@register
class LogSoftmaxOp(_SoftmaxBase):
    """log(softmax(x / temperature)) along `axis`."""

    op_name = "log_softmax"
    log = True
