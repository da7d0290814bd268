"""Reductions over axes: sum, mean, max, min (MXNet's ReduceAxesParam).

`axis` is an int or a tuple of ints (negative counts from the end); None or
() reduces everything (and then `exclude` does not apply, as in MXNet).
`exclude=True` reduces every axis *not* listed. Without `keepdims`, a full
reduction gives shape (1,), MXNet's legacy (non-numpy) shape rule.
"""
from .base import Operator, Param, register


class _Reduce(Operator):
    params = {
        "axis": Param("shape", None, optional=True),
        "keepdims": Param("bool", False),
        "exclude": Param("bool", False),
    }

    # Memory: sum and mean spread gy by shapes only; max and min compare x with y.
    reads_values = False

    def backward_inputs(self):
        return (0,) if self.reads_values else ()

    def backward_outputs(self):
        return (0,) if self.reads_values else ()

    def _axes(self, ndim):
        """The sorted axes actually reduced, after validating `axis` against ndim."""
        if not self.axis:
            return tuple(range(ndim))
        axes = []
        for given in self.axis:
            a = given + ndim if given < 0 else given
            if not 0 <= a < ndim:
                self.error(f"axis {given} is out of range for data with {ndim} dimensions")
            axes.append(a)
        if len(set(axes)) != len(axes):
            self.error(f"axis {self.axis} has duplicates")
        axes.sort()
        if self.exclude:
            return tuple(i for i in range(ndim) if i not in axes)
        return tuple(axes)

    def _out_shape(self, shape):
        axes = self._axes(len(shape))
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(shape))
        kept = tuple(d for i, d in enumerate(shape) if i not in axes)
        return kept or (1,)

    @staticmethod
    def _keep_shape(shape, axes):
        return tuple(1 if i in axes else d for i, d in enumerate(shape))

    def infer_shape(self, in_shapes, out_shapes):
        data = in_shapes[0]
        if data is None:         # MXNet infers nothing backward through a reduction
            return list(in_shapes), list(out_shapes)
        return list(in_shapes), [self.merged_output(out_shapes[0], self._out_shape(data))]

    def forward(self, xp, inputs, outputs, ws, is_train):
        x = inputs[0]
        axes = self._axes(x.ndim)
        out = outputs[0].reshape(self._keep_shape(x.shape, axes))
        self._reduce(xp, x, axes, out)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        gx = in_grads[0]
        if gx is None:
            return
        x = inputs[0]
        keep = self._keep_shape(x.shape, self._axes(x.ndim))
        self._spread(xp, out_grads[0].reshape(keep), x, outputs[0].reshape(keep), gx)


@register
class Sum(_Reduce):
    """Sum over `axis`."""

    op_name = "sum"
    aliases = ("sum_axis",)

    @staticmethod
    def _reduce(xp, x, axes, out):
        x.sum(axis=axes, keepdims=True, out=out)

    @staticmethod
    def _spread(xp, gy, x, y, gx):
        xp.copyto(gx, gy)


@register
class Mean(_Reduce):
    """Mean over `axis`."""

    op_name = "mean"

    @staticmethod
    def _reduce(xp, x, axes, out):
        x.mean(axis=axes, keepdims=True, out=out)

    @staticmethod
    def _spread(xp, gy, x, y, gx):
        xp.copyto(gx, gy)
        gx /= x.size // y.size      # the number of elements averaged into each output


class _Extremum(_Reduce):
    reads_values = True
    @staticmethod
    def _spread(xp, gy, x, y, gx):
        # MXNet sends the gradient to every position equal to the extremum.
        xp.multiply(gy, x == y, out=gx)


@register
class Max(_Extremum):
    """Maximum over `axis`; the gradient goes to every position holding the maximum."""

    op_name = "max"
    aliases = ("max_axis",)

    @staticmethod
    def _reduce(xp, x, axes, out):
        x.max(axis=axes, keepdims=True, out=out)


@register
class Min(_Extremum):
    """Minimum over `axis`; the gradient goes to every position holding the minimum."""

    op_name = "min"
    aliases = ("min_axis",)

    @staticmethod
    def _reduce(xp, x, axes, out):
        x.min(axis=axes, keepdims=True, out=out)
