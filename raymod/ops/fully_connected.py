"""FullyConnected: y = x2d . W^T + b."""
from .base import Operator, Param, register


@register
class FullyConnected(Operator):
    op_name = "FullyConnected"
    params = {
        "num_hidden": Param("int", required=True),
        "no_bias": Param("bool", False),
        "flatten": Param("bool", True),
    }

    def check_attrs(self):
        if self.num_hidden < 1:
            self.error(f"num_hidden must be >= 1, received {self.num_hidden}", ValueError)

    def list_arguments(self):
        return ["data", "weight"] if self.no_bias else ["data", "weight", "bias"]

    # Memory: backward reads data and weight, never the bias or the output.
    def backward_inputs(self):
        return (0, 1)

    def backward_outputs(self):
        return ()

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        H = self.num_hidden
        if not self.no_bias and ins[2] != (H, 1):    # MXNet also accepts a (H, 1) bias
            self.assign_shape(ins, 2, (H,), "bias")
        data = ins[0]
        if data is None:
            self.assign_shape(ins, 1, (H, 0), "weight")
            return ins, outs
        if self.flatten:
            k = 1
            for d in data[1:]:
                k *= d
            out = (data[0], H)
        else:
            k = data[-1]
            out = tuple(data[:-1]) + (H,)
        weight = ins[1]
        if weight is not None and len(weight) == 2 and weight[1] and k and weight[1] != k:
            self.error(f"data has {k} features (shape {data}) but weight expects "
                       f"{weight[1]} (shape {weight})")
        self.assign_shape(ins, 1, (H, k), "weight")
        if outs[0] is not None and len(outs[0]) == len(out) and data[0] == 0:
            ins[0] = (outs[0][0],) + tuple(data[1:])
            out = (outs[0][0],) + out[1:]
        outs[0] = self.merged_output(outs[0], out)
        return ins, outs

    def forward(self, xp, inputs, outputs, ws, is_train):
        x2 = self._as_2d(inputs[0])
        y2 = outputs[0].reshape(x2.shape[0], self.num_hidden)
        xp.dot(x2, inputs[1].T, out=y2)
        if not self.no_bias:
            y2 += inputs[2].reshape(-1)

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        x2, w = self._as_2d(inputs[0]), inputs[1]
        gy2 = out_grads[0].reshape(x2.shape[0], self.num_hidden)
        if in_grads[0] is not None:
            xp.dot(gy2, w, out=in_grads[0].reshape(x2.shape))
        if in_grads[1] is not None:
            xp.dot(gy2.T, x2, out=in_grads[1].reshape(w.shape))
        if not self.no_bias and in_grads[2] is not None:
            xp.sum(gy2, axis=0, out=in_grads[2].reshape(-1))

    def _as_2d(self, x):
        return x.reshape(x.shape[0], -1) if self.flatten else x.reshape(-1, x.shape[-1])
