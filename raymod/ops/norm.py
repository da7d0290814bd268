"""BatchNorm, with MXNet's CPU semantics (reference 12.3, quirk Q8).

* Training forward (`is_train and not use_global_stats`): batch mean and
  biased variance per channel; the moving statistics are NOT touched.
* The backward that follows a training forward updates them in place:
  `mm = mm*momentum + mean*(1-momentum)`, same for the variance. (GPU MXNet
  updates in forward; raymod follows the CPU build on every device.)
* `fix_gamma=True` overwrites the gamma array with 1 in forward (when it is
  writable) and gives it a zero gradient.
* The hidden `var` output holds the inverse standard deviation
  1/sqrt(var + eps), as MXNet's CPU kernel stores it; with `output_mean_var`
  it is visible as `<name>_var`.
* Inference (`not is_train` or `use_global_stats`) normalises with the moving
  statistics and has its own backward: dx = dy * gamma / sqrt(mv + eps).
* Memory: forward keeps only the per-channel mean and 1/std; backward reads
  data and gamma again, as MXNet's kernels do, so nothing of data's size is
  kept besides data itself.
"""
import numpy as np

from .base import Operator, Param, register


@register
class BatchNorm(Operator):
    """Per-channel normalisation of `data` along `axis`, then scale `gamma` and shift `beta`."""

    op_name = "BatchNorm"
    params = {
        "eps": Param("float", 1e-3),
        "momentum": Param("float", 0.9),
        "fix_gamma": Param("bool", True),
        "use_global_stats": Param("bool", False),
        "output_mean_var": Param("bool", False),
        "axis": Param("int", 1),
        "cudnn_off": Param("bool", False),
    }

    def check_attrs(self):
        if self.eps <= 0:
            self.error(f"eps must be > 0, received {self.eps}", ValueError)

    @property
    def num_hidden_outputs(self):
        return 0 if self.output_mean_var else 2

    def list_arguments(self):
        return ["data", "gamma", "beta"]

    def list_auxiliary_states(self):
        return ["moving_mean", "moving_var"]

    # Memory: backward reads data and gamma (and the aux states, always kept).
    # Forward reads each element of data before writing it to the output, so an
    # inference bind (no backward) computes it in place.
    def backward_inputs(self):
        return (0, 1)

    def backward_outputs(self):
        return ()

    def inplace_pairs(self):
        return ((0, 0),)

    def list_outputs(self):
        return ["output", "mean", "var"] if self.output_mean_var else ["output"]

    def input_attrs(self, input_name):
        if input_name == "moving_mean":
            return {"__init__": '["zero", {}]'}
        if input_name == "moving_var":
            return {"__init__": '["one", {}]'}
        return {}

    # ------------------------------------------------------------------ inference
    def _axis(self, ndim):
        axis = self.axis + ndim if self.axis < 0 else self.axis
        if not 0 <= axis < ndim:
            self.error(f"axis {self.axis} is out of range for data with {ndim} dimensions")
        return axis

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        data = self.merged_output(ins[0], outs[0], "data")
        if data is None:
            # the channel count can still come from any of the four vectors
            return ins, outs
        C = data[self._axis(len(data))]
        for i, name in enumerate(("gamma", "beta", "moving_mean", "moving_var"), start=1):
            given = ins[i]
            if given is not None and (len(given) != 1 or (C and given[0] and given[0] != C)):
                self.error(f"{name}: expected shape ({C},) (data has {C} channels along axis "
                           f"{self.axis}, shape {data}), received {given}")
            self.assign_shape(ins, i, (C,), name)
        if not C:
            C = next((s[0] for s in ins[1:] if s is not None and s[0]), 0)
            if C:
                data = tuple(C if j == self._axis(len(data)) else n for j, n in enumerate(data))
        ins[0] = data
        outs[0] = data
        if self.output_mean_var:
            outs[1] = self.merged_output(outs[1], (C,), "mean")
            outs[2] = self.merged_output(outs[2], (C,), "var")
        return ins, outs

    def infer_type(self, in_types, out_types):
        """Parameters and statistics follow data, except float16 data keeps them in float32."""
        data = in_types[0] if in_types[0] is not None else out_types[0]
        if data is None:
            return list(in_types), list(out_types)
        data = np.dtype(data)
        param = np.dtype(np.float32) if data == np.float16 else data
        ins = [data] + [t if t is not None else param for t in in_types[1:]]
        outs = [data] + [t if t is not None else param for t in out_types[1:]]
        return ins, outs

    # ------------------------------------------------------------------ compute
    def _views(self, x):
        """x as (outer, C, inner): the channel axis in the middle, no copy."""
        axis = self._axis(x.ndim)
        outer = int(np.prod(x.shape[:axis]))
        inner = int(np.prod(x.shape[axis + 1:]))
        return outer, x.shape[axis], inner

    def _set_gamma_one(self, gamma):
        # MXNet overwrites gamma with 1 under fix_gamma; a read-only numpy input is left
        # as is (cupy arrays have no `writeable` flag and are always writable)
        if getattr(getattr(gamma, "flags", None), "writeable", True):
            gamma.fill(1)

    def forward(self, xp, inputs, outputs, ws, is_train):
        x, gamma, beta, mm, mv = inputs
        outer, C, inner = self._views(x)
        x3 = x.reshape(outer, C, inner)
        y3 = outputs[0].reshape(outer, C, inner)
        if self.fix_gamma:
            self._set_gamma_one(gamma)
        acc = np.float32 if x.dtype == np.float16 else x.dtype
        mean = ws.buffer("mean", (C,), acc)
        invstd = ws.buffer("invstd", (C,), acc)
        train = is_train and not self.use_global_stats
        ws.saved["train"] = train
        if train:
            var = ws.buffer("var", (C,), acc)
            xp.mean(x3, axis=(0, 2), out=mean)
            # the deviations are formed in y itself: no buffer of data's size
            xp.subtract(x3, mean.reshape(1, C, 1), out=y3)
            # biased variance: mean of squared deviations
            xp.copyto(var, xp.einsum("ocj,ocj->c", y3, y3) / (outer * inner))
            xp.add(var, self.eps, out=invstd)
            xp.sqrt(invstd, out=invstd)
            xp.divide(1.0, invstd, out=invstd)
            y3 *= (invstd if self.fix_gamma else invstd * gamma).reshape(1, C, 1)
            y3 += beta.reshape(1, C, 1)
        else:
            xp.copyto(mean, mm)
            xp.add(mv, self.eps, out=invstd)
            xp.sqrt(invstd, out=invstd)
            xp.divide(1.0, invstd, out=invstd)
            scale = invstd if self.fix_gamma else invstd * gamma
            shift = beta - mean * scale
            xp.multiply(x3, scale.reshape(1, C, 1), out=y3)
            y3 += shift.reshape(1, C, 1)
        if self.output_mean_var:
            xp.copyto(outputs[1], mean)
            xp.copyto(outputs[2], invstd)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        x, gamma, _, mm, mv = inputs
        outer, C, inner = self._views(x)
        M = outer * inner
        x3 = x.reshape(outer, C, inner)
        gy3 = out_grads[0].reshape(outer, C, inner)
        gx, ggamma, gbeta = in_grads[0], in_grads[1], in_grads[2]
        acc = np.float32 if x.dtype == np.float16 else x.dtype
        w = xp.ones((C,), acc) if self.fix_gamma else gamma
        sum_gy = xp.sum(gy3, axis=(0, 2))
        if ws.saved.get("train"):
            mean = ws.buffer("mean", (C,), acc)
            invstd = ws.buffer("invstd", (C,), acc)
            var = ws.buffer("var", (C,), acc)
            # the moving statistics move here, after a training forward (MXNet CPU)
            mm *= self.momentum
            mm += mean * (1 - self.momentum)
            mv *= self.momentum
            mv += var * (1 - self.momentum)
            if gx is None:      # sum((x - mean) * dy) * invstd, without a temporary
                dot_hat = (xp.einsum("ocj,ocj->c", x3, gy3) - mean * sum_gy) * invstd
            else:
                gx3 = dev = gx.reshape(outer, C, inner)      # x - mean, formed in gx
                xp.subtract(x3, mean.reshape(1, C, 1), out=dev)
                dot_hat = xp.einsum("ocj,ocj->c", dev, gy3) * invstd
                # dx = (dy - mean(dy) - xhat * sum(xhat*dy)/M) * invstd * gamma
                xp.multiply(dev, (invstd * dot_hat / M).reshape(1, C, 1), out=gx3)
                xp.subtract(gy3, gx3, out=gx3)
                gx3 -= (sum_gy / M).reshape(1, C, 1)
                gx3 *= (invstd * w).reshape(1, C, 1)
        else:
            invstd = 1.0 / xp.sqrt(mv + self.eps)
            dot_hat = (xp.einsum("ocj,ocj->c", x3, gy3) - mm * sum_gy) * invstd
            if gx is not None:
                xp.multiply(gy3, (invstd * w).reshape(1, C, 1), out=gx.reshape(outer, C, inner))
        if ggamma is not None:
            if self.fix_gamma:
                ggamma.fill(0)
            else:
                xp.copyto(ggamma, dot_hat)
        if gbeta is not None:
            xp.copyto(gbeta, sum_gy)
