"""Embedding: rows of `weight` (input_dim, output_dim) looked up by the indices in `data`.

Indices arrive as floats; they are truncated to int and clipped to
[0, input_dim - 1] as MXNet does. The weight gradient scatter-adds the head
gradient's rows (`xp.add.at`, which numpy and cupy both have). MXNet has no
gradient for the indices and fails at backward when one is requested, so
does raymod. `sparse_grad` is accepted; the gradient is always dense here.
"""
import numpy as np

from ..base import MXNetError
from .base import Operator, Param, register


@register
class Embedding(Operator):
    """Map integer indices (stored as floats) to dense vectors."""

    op_name = "Embedding"
    params = {
        "input_dim": Param("int", required=True),
        "output_dim": Param("int", required=True),
        "dtype": Param("dtype", np.dtype("float32")),
        "sparse_grad": Param("bool", False),
    }

    def check_attrs(self):
        for name in ("input_dim", "output_dim"):
            if getattr(self, name) < 1:
                self.error(f"{name} must be >= 1, received {getattr(self, name)}", ValueError)

    def list_arguments(self):
        return ["data", "weight"]

    # Memory: the weight gradient scatters by the indices; nothing else is read.
    def backward_inputs(self):
        return (0,)

    def backward_outputs(self):
        return ()

    def infer_shape(self, in_shapes, out_shapes):
        ins, outs = list(in_shapes), list(out_shapes)
        V, D = self.input_dim, self.output_dim
        weight = ins[1]
        if weight is not None and weight != (V, D) and (len(weight) != 2 or any(
                w and w != e for w, e in zip(weight, (V, D)))):
            self.error(f"weight: expected shape ({V}, {D}) from input_dim={V}, "
                       f"output_dim={D}, received {weight}")
        self.assign_shape(ins, 1, (V, D), "weight")
        data, out = ins[0], outs[0]
        if data is None and out is not None and len(out) >= 2:
            ins[0] = data = tuple(out[:-1])
        if data is not None:
            outs[0] = self.merged_output(out, tuple(data) + (D,))
        return ins, outs

    def infer_type(self, in_types, out_types):
        """weight and output share a dtype: the one given for either, else `dtype` (MXNet).

        The indices keep their own dtype (float32 when unknown).
        """
        weight, out = in_types[1], out_types[0]
        if weight is not None and out is not None and np.dtype(weight) != np.dtype(out):
            self.error(f"weight has dtype {np.dtype(weight)} but the output {np.dtype(out)}: "
                       f"they must match")
        dtype = weight if weight is not None else out if out is not None else self.dtype
        data = in_types[0] if in_types[0] is not None else np.dtype("float32")
        return [data, dtype], [dtype]

    def _indices(self, xp, ws, data):
        idx = ws.buffer("idx", data.shape, np.intp)
        xp.copyto(idx, data, casting="unsafe")     # truncation toward zero, as static_cast
        xp.clip(idx, 0, self.input_dim - 1, out=idx)
        return idx

    def forward(self, xp, inputs, outputs, ws, is_train):
        data, weight = inputs
        idx = self._indices(xp, ws, data)
        xp.take(weight, idx.reshape(-1), axis=0,
                out=outputs[0].reshape(-1, self.output_dim))

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None:
            raise MXNetError(
                f"Embedding '{self.node_name}': Embedding cannot produce a gradient for its "
                f"data input (indices are not differentiable); bind with grad_req 'null' "
                f"for the indices, e.g. Module(inputs_need_grad=False)")
        gw = in_grads[1]
        if gw is None:
            return
        data = inputs[0]
        idx = self._indices(xp, ws, data)
        gw.fill(0)
        xp.add.at(gw, idx.reshape(-1), out_grads[0].reshape(-1, self.output_dim))
