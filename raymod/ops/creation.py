"""Array creation and type conversion: Cast, _zeros, _ones, zeros_like, ones_like."""
import numpy as np

from .base import Operator, Param, register, shape_known


@register
class Cast(Operator):
    """Convert data to `dtype`; the gradient is cast back to the input's dtype."""

    op_name = "Cast"
    aliases = ("cast",)
    params = {"dtype": Param("dtype", required=True)}

    # Memory: the gradient is gy cast back; nothing of forward is read.
    def backward_inputs(self):
        return ()

    def backward_outputs(self):
        return ()

    def infer_type(self, in_types, out_types):
        return list(in_types), [self.dtype]

    def forward(self, xp, inputs, outputs, ws, is_train):
        xp.copyto(outputs[0], inputs[0], casting="unsafe")

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None:
            xp.copyto(in_grads[0], out_grads[0], casting="unsafe")


class _Filled(Operator):
    """An array of `shape` and `dtype` filled with `value`; no inputs.

    A 0 in `shape` (or `shape=()`) is an unknown dimension that the graph
    fills in from the consumers, as MXNet's `zeros(shape=(0, H))` begin states.
    """

    value = 0
    params = {
        "shape": Param("shape", ()),
        # MXNet uses ctx only for imperative calls; a graph runs where it is bound.
        "ctx": Param("str", ""),
        "dtype": Param("dtype", np.dtype("float32")),
    }

    def check_attrs(self):
        if any(d < 0 for d in self.shape):
            self.error(f"shape must not have negative dimensions, received {self.shape}",
                       ValueError)

    def list_arguments(self):
        return []

    def infer_shape(self, in_shapes, out_shapes):
        out = out_shapes[0]
        given = self.shape or None           # () is MXNet's 'unknown' here
        if shape_known(out) and not shape_known(given):
            return [], [out]                 # MXNet keeps an inferred output as it is
        if given is None:
            return [], [out]
        return [], [self.merged_output(out, given)]

    def infer_type(self, in_types, out_types):
        return [], [self.dtype]

    def forward(self, xp, inputs, outputs, ws, is_train):
        outputs[0].fill(self.value)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        """No inputs, so nothing to write."""


@register
class Zeros(_Filled):
    """An array of zeros."""

    op_name = "_zeros"
    aliases = ("zeros",)
    value = 0


@register
class Ones(_Filled):
    """An array of ones."""

    op_name = "_ones"
    aliases = ("ones",)
    value = 1


class _FilledLike(Operator):
    """An array shaped and typed like data, filled with `value`; zero gradient."""

    value = 0

    # Memory: only data's shape matters, so the output may take its memory.
    def backward_inputs(self):
        return ()

    def backward_outputs(self):
        return ()

    def inplace_pairs(self):
        return ((0, 0),)

    def forward(self, xp, inputs, outputs, ws, is_train):
        outputs[0].fill(self.value)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None:
            in_grads[0].fill(0)


@register
class ZerosLike(_FilledLike):
    """zeros shaped like data."""

    op_name = "zeros_like"
    value = 0


@register
class OnesLike(_FilledLike):
    """ones shaped like data."""

    op_name = "ones_like"
    value = 1
