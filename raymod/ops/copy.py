"""`_copy` (MXNet's `identity`): y = x, dx = dy.

MXNet's image-classification networks put it first (`identity(data, name='id')`)
so the data is a node of its own; a checkpoint of such a network names it
`_copy` in its JSON.
"""
from .base import Operator, register


@register
class Copy(Operator):
    """The identity: the output is a copy of the input, the gradient passes through."""

    op_name = "_copy"
    aliases = ("identity",)

    def forward(self, xp, inputs, outputs, ws, is_train):
        if outputs[0] is not inputs[0]:
            xp.copyto(outputs[0], inputs[0])

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None and in_grads[0] is not out_grads[0]:
            xp.copyto(in_grads[0], out_grads[0])
