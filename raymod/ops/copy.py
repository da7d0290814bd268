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
    inplace_identity = True      # memory: the output may be the input's own memory

    # Memory (the executor's planner): backward reads no value; both directions may
    # run in place.
    def backward_inputs(self):
        return ()

    def backward_outputs(self):
        return ()

    def inplace_pairs(self):
        return ((0, 0),)

    def backward_inplace_pairs(self):
        return ((0, 0),)

    def forward(self, xp, inputs, outputs, ws, is_train):
        if not _same_memory(outputs[0], inputs[0]):
            xp.copyto(outputs[0], inputs[0])

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None and not _same_memory(in_grads[0], out_grads[0]):
            xp.copyto(in_grads[0], out_grads[0])


def _same_memory(a, b):
    """True when a and b are the same elements (the planner ran the op in place)."""
    if a is b:
        return True
    try:
        return a.__array_interface__["data"] == b.__array_interface__["data"] and \
            a.strides == b.strides
    except AttributeError:                       # cupy
        return a.data.ptr == b.data.ptr and a.strides == b.strides
