"""Elementwise arithmetic: elemwise_* (equal shapes), broadcast_* (numpy broadcasting),
scalar forms (`_plus_scalar`, ...), and unary math (negative, abs, exp, log, sqrt,
square, clip).

Python operators on symbols map here: `a + b` -> elemwise_add (node `_plus0`),
`a + 2` -> _plus_scalar (`_plusscalar0`), `2 - a` -> _rminus_scalar,
`a ** 2` -> _power_scalar, `a ** b` -> _power, `-a` -> negative.
"""
import numpy as np

from .base import Operator, Param, register, merge_shape


def _copy(xp, src, out):
    xp.copyto(out, src)
    return out


def _reduce_to(xp, full, shape, out):
    """Sum a broadcast gradient back over the axes that were broadcast, into `out`."""
    lead = full.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and full.shape[lead + i] != 1)
    if not axes:
        xp.copyto(out, full.reshape(shape))
        return
    full.sum(axis=axes, keepdims=True, out=out.reshape((1,) * lead + tuple(shape)))


# --------------------------------------------------------------------------- binary math

class _AddMath:
    """y = a + b."""

    reads = ((), ())                      # (inputs, outputs) the gradients read
    grad_over_gy = ((0, 0), (0, 1))       # (output, input): gx written over gy's memory

    @staticmethod
    def _fwd(xp, a, b, out):
        xp.add(a, b, out=out)

    @staticmethod
    def _grad_a(xp, gy, a, b, y, out):
        return _copy(xp, gy, out)

    @staticmethod
    def _grad_b(xp, gy, a, b, y, out):
        return _copy(xp, gy, out)


class _SubMath:
    """y = a - b."""

    reads = ((), ())
    grad_over_gy = ((0, 0), (0, 1))

    @staticmethod
    def _fwd(xp, a, b, out):
        xp.subtract(a, b, out=out)

    @staticmethod
    def _grad_a(xp, gy, a, b, y, out):
        return _copy(xp, gy, out)

    @staticmethod
    def _grad_b(xp, gy, a, b, y, out):
        return xp.negative(gy, out=out)


class _MulMath:
    """y = a * b."""

    reads = ((0, 1), ())
    grad_over_gy = ((0, 1),)              # b's gradient is computed last

    @staticmethod
    def _fwd(xp, a, b, out):
        xp.multiply(a, b, out=out)

    @staticmethod
    def _grad_a(xp, gy, a, b, y, out):
        return xp.multiply(gy, b, out=out)

    @staticmethod
    def _grad_b(xp, gy, a, b, y, out):
        return xp.multiply(gy, a, out=out)


class _DivMath:
    """y = a / b; dy/db = -a / b^2 = -y / b."""

    reads = ((1,), (0,))
    grad_over_gy = ((0, 1),)

    @staticmethod
    def _fwd(xp, a, b, out):
        xp.divide(a, b, out=out)

    @staticmethod
    def _grad_a(xp, gy, a, b, y, out):
        return xp.divide(gy, b, out=out)

    @staticmethod
    def _grad_b(xp, gy, a, b, y, out):
        out = xp.multiply(gy, y, out=out)
        xp.divide(out, b, out=out)
        return xp.negative(out, out=out)


class _PowMath:
    """y = a ** b; dy/da = b * a^(b-1), dy/db = y * log(a)."""

    reads = ((0, 1), (0,))
    grad_over_gy = ()                     # both gradients write before reading gy

    @staticmethod
    def _fwd(xp, a, b, out):
        xp.power(a, b, out=out)

    @staticmethod
    def _grad_a(xp, gy, a, b, y, out):
        out = xp.power(a, b - 1, out=out)
        out *= b
        out *= gy
        return out

    @staticmethod
    def _grad_b(xp, gy, a, b, y, out):
        out[...] = xp.log(a)      # a may be broadcast against out
        out *= y
        out *= gy
        return out


class _Binary(Operator):
    def list_arguments(self):
        return ["lhs", "rhs"]

    # Memory: one ufunc with out=, so either operand may be overwritten by the
    # result (the planner only does it when the sizes match: never a broadcast one).
    def backward_inputs(self):
        return self.reads[0]

    def backward_outputs(self):
        return self.reads[1]

    def inplace_pairs(self):
        return ((0, 0), (1, 0))

    def backward_inplace_pairs(self):
        return self.grad_over_gy

    def forward(self, xp, inputs, outputs, ws, is_train):
        self._fwd(xp, inputs[0], inputs[1], outputs[0])


class _ElemwiseBinary(_Binary):
    """Equal shapes only: lhs, rhs and output unify in every direction (MXNet's ElemwiseShape)."""

    def infer_shape(self, in_shapes, out_shapes):
        lhs, rhs = in_shapes
        both = merge_shape(lhs, rhs)
        if both is None and lhs is not None and rhs is not None:
            self.error(f"lhs shape {tuple(lhs)} and rhs shape {tuple(rhs)} must be equal "
                       f"(no broadcasting here; the broadcast_* operators broadcast)")
        shape = merge_shape(both, out_shapes[0])
        if shape is None and both is not None and out_shapes[0] is not None:
            self.shape_error("output", both, out_shapes[0])
        return [shape, shape], [shape]

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gy, (a, b), y = out_grads[0], inputs, outputs[0]
        if in_grads[0] is not None:
            self._grad_a(xp, gy, a, b, y, in_grads[0])
        if in_grads[1] is not None:
            self._grad_b(xp, gy, a, b, y, in_grads[1])


class _BroadcastBinary(_Binary):
    """numpy broadcasting: shapes right-aligned, each dimension equal or 1 (MXNet's rule)."""

    def infer_shape(self, in_shapes, out_shapes):
        lhs, rhs = in_shapes
        if lhs is None or rhs is None:        # MXNet waits for both operands
            return list(in_shapes), list(out_shapes)
        if tuple(lhs) == tuple(rhs):
            out = tuple(lhs)
        else:
            nd = max(len(lhs), len(rhs))
            lp = (1,) * (nd - len(lhs)) + tuple(lhs)
            rp = (1,) * (nd - len(rhs)) + tuple(rhs)
            out = []
            for l, r in zip(lp, rp):
                if not l or not r:
                    out.append(0)             # unknown stays unknown
                elif l != r and l != 1 and r != 1:
                    self.error(f"operands could not be broadcast together with shapes "
                               f"{tuple(lhs)} {tuple(rhs)}")
                else:
                    out.append(max(l, r))
            out = tuple(out)
        return list(in_shapes), [self.merged_output(out_shapes[0], out)]

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gy, (a, b), y = out_grads[0], inputs, outputs[0]
        for i, grad_fn in ((0, self._grad_a), (1, self._grad_b)):
            gx = in_grads[i]
            if gx is None:
                continue
            if gx.shape == y.shape:
                grad_fn(xp, gy, a, b, y, gx)
            else:
                full = grad_fn(xp, gy, a, b, y, ws.scratch("full", y.shape, gx.dtype))
                _reduce_to(xp, full, gx.shape, gx)


def _binary_op(name, hint, aliases, math, base):
    cls = type(f"_{name}", (math, base), {
        "op_name": name, "hint": hint, "aliases": aliases,
        "__doc__": f"{name}: {math.__doc__}",
    })
    return register(cls)


_binary_op("elemwise_add", "_plus", ("_Plus", "_plus", "_add"), _AddMath, _ElemwiseBinary)
_binary_op("elemwise_sub", "_minus", ("_Minus", "_minus", "_sub"), _SubMath, _ElemwiseBinary)
_binary_op("elemwise_mul", "_mul", ("_Mul", "_mul"), _MulMath, _ElemwiseBinary)
_binary_op("elemwise_div", "_div", ("_Div", "_div"), _DivMath, _ElemwiseBinary)
_binary_op("_power", "_power", ("_Power",), _PowMath, _ElemwiseBinary)
_binary_op("broadcast_add", None, ("broadcast_plus",), _AddMath, _BroadcastBinary)
_binary_op("broadcast_sub", None, ("broadcast_minus",), _SubMath, _BroadcastBinary)
_binary_op("broadcast_mul", None, (), _MulMath, _BroadcastBinary)
_binary_op("broadcast_div", None, (), _DivMath, _BroadcastBinary)


# --------------------------------------------------------------------------- scalar ops

class _ScalarOp(Operator):
    """data (op) scalar, elementwise; `scalar` defaults to 1 as in MXNet."""

    params = {"scalar": Param("float", 1.0)}


def _memory(reads_x, reads_y, grad_over_gy):
    """The memory declarations of a one-input elementwise op (forward is one ufunc)."""
    return {
        "backward_inputs": lambda self: (0,) if reads_x else (),
        "backward_outputs": lambda self: (0,) if reads_y else (),
        "inplace_pairs": lambda self: ((0, 0),),
        "backward_inplace_pairs": lambda self: ((0, 0),) if grad_over_gy else (),
    }


def _scalar_op(name, hint, alias, doc, fwd, grad, memory):
    def forward(self, xp, inputs, outputs, ws, is_train):
        fwd(xp, inputs[0], self.scalar, outputs[0])

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None:
            grad(xp, out_grads[0], inputs[0], self.scalar, outputs[0], in_grads[0])

    cls = type(f"_{name}", (_ScalarOp,), {
        "op_name": name, "hint": hint, "aliases": (alias,), "__doc__": doc,
        "forward": forward, "backward": backward, **memory,
    })
    return register(cls)


def _times(xp, g, factor, out):
    xp.multiply(g, factor, out=out)


def _rdiv_grad(xp, gy, x, s, y, gx):      # d(s/x) = -y / x
    xp.multiply(gy, y, out=gx)
    gx /= x
    xp.negative(gx, out=gx)


def _pow_grad(xp, gy, x, s, y, gx):       # d(x^s) = s * x^(s-1)
    xp.power(x, s - 1, out=gx)
    gx *= s
    gx *= gy


def _rpow_grad(xp, gy, x, s, y, gx):      # d(s^x) = y * log(s)
    xp.multiply(gy, y, out=gx)
    gx *= np.log(s)


_scalar_op("_plus_scalar", "_plusscalar", "_PlusScalar", "data + scalar",
           lambda xp, x, s, y: xp.add(x, s, out=y),
           lambda xp, gy, x, s, y, gx: xp.copyto(gx, gy), _memory(False, False, True))
_scalar_op("_minus_scalar", "_minusscalar", "_MinusScalar", "data - scalar",
           lambda xp, x, s, y: xp.subtract(x, s, out=y),
           lambda xp, gy, x, s, y, gx: xp.copyto(gx, gy), _memory(False, False, True))
_scalar_op("_rminus_scalar", "_rminusscalar", "_RMinusScalar", "scalar - data",
           lambda xp, x, s, y: xp.subtract(s, x, out=y),
           lambda xp, gy, x, s, y, gx: xp.negative(gy, out=gx), _memory(False, False, True))
_scalar_op("_mul_scalar", "_mulscalar", "_MulScalar", "data * scalar",
           lambda xp, x, s, y: xp.multiply(x, s, out=y),
           lambda xp, gy, x, s, y, gx: _times(xp, gy, s, gx), _memory(False, False, True))
_scalar_op("_div_scalar", "_divscalar", "_DivScalar", "data / scalar",
           lambda xp, x, s, y: xp.divide(x, s, out=y),
           lambda xp, gy, x, s, y, gx: xp.divide(gy, s, out=gx), _memory(False, False, True))
_scalar_op("_rdiv_scalar", "_rdivscalar", "_RDivScalar", "scalar / data",
           lambda xp, x, s, y: xp.divide(s, x, out=y), _rdiv_grad, _memory(True, True, True))
_scalar_op("_power_scalar", "_powerscalar", "_PowerScalar", "data ** scalar",
           lambda xp, x, s, y: xp.power(x, s, out=y), _pow_grad, _memory(True, False, False))
_scalar_op("_rpower_scalar", "_rpower_scalar", "_RPowerScalar", "scalar ** data",
           lambda xp, x, s, y: xp.power(s, x, out=y), _rpow_grad, _memory(False, True, True))


# --------------------------------------------------------------------------- unary math

def _unary_op(name, doc, fwd, grad, memory):
    def forward(self, xp, inputs, outputs, ws, is_train):
        fwd(xp, inputs[0], outputs[0])

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None:
            grad(xp, out_grads[0], inputs[0], outputs[0], in_grads[0])

    cls = type(f"_{name}", (Operator,), {
        "op_name": name, "__doc__": doc, "forward": forward, "backward": backward, **memory,
    })
    return register(cls)


def _grad_then_times(fn):
    """A gradient written as gx = fn(x, y) * gy, computed in place in gx."""
    def grad(xp, gy, x, y, gx):
        fn(xp, x, y, gx)
        gx *= gy
    return grad


_unary_op("negative", "-data", lambda xp, x, y: xp.negative(x, out=y),
          lambda xp, gy, x, y, gx: xp.negative(gy, out=gx), _memory(False, False, True))
_unary_op("abs", "|data|; gradient sign(data)", lambda xp, x, y: xp.abs(x, out=y),
          _grad_then_times(lambda xp, x, y, gx: xp.sign(x, out=gx)), _memory(True, False, False))
_unary_op("exp", "e^data", lambda xp, x, y: xp.exp(x, out=y),
          lambda xp, gy, x, y, gx: xp.multiply(gy, y, out=gx), _memory(False, True, True))
_unary_op("log", "natural logarithm", lambda xp, x, y: xp.log(x, out=y),
          lambda xp, gy, x, y, gx: xp.divide(gy, x, out=gx), _memory(True, False, True))
_unary_op("sqrt", "square root; gradient 0.5 / output", lambda xp, x, y: xp.sqrt(x, out=y),
          lambda xp, gy, x, y, gx: (xp.divide(gy, y, out=gx), xp.multiply(gx, 0.5, out=gx)),
          _memory(False, True, True))
_unary_op("square", "data^2", lambda xp, x, y: xp.multiply(x, x, out=y),
          _grad_then_times(lambda xp, x, y, gx: xp.multiply(x, 2, out=gx)),
          _memory(True, False, False))


@register
class Clip(Operator):
    """Clip to [a_min, a_max]; the gradient passes only where a_min <= data <= a_max."""

    op_name = "clip"
    params = {"a_min": Param("float", required=True), "a_max": Param("float", required=True)}

    # Memory: backward reads x; forward reads x after writing y, so not in place.
    def backward_inputs(self):
        return (0,)

    def backward_outputs(self):
        return ()

    def forward(self, xp, inputs, outputs, ws, is_train):
        x, y = inputs[0], outputs[0]
        # MXNet's kernel order (x > a_max first), which also fixes a_min > a_max.
        xp.copyto(y, x)
        xp.copyto(y, self.a_min, where=x < self.a_min)
        xp.copyto(y, self.a_max, where=x > self.a_max)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gx = in_grads[0]
        if gx is None:
            return
        x = inputs[0]
        xp.copyto(gx, out_grads[0])
        xp.copyto(gx, 0, where=(x < self.a_min) | (x > self.a_max))
