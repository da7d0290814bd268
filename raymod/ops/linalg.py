"""Matrix products: dot (N-D, MXNet's flattening rule) and batch_dot (3-D).

dot views lhs as a matrix (prod(shape[:-1]), shape[-1]) -- or, with
transpose_a, (shape[0], prod(shape[1:])) transposed -- and rhs as
(shape[0], prod(shape[1:])) -- or, with transpose_b, (prod(shape[:-1]),
shape[-1]) transposed. The output keeps the non-contracted dimensions of
each operand that has more than one dimension; vector . vector is (1,).
"""
from .base import Operator, Param, register


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class _Product(Operator):
    params = {
        "transpose_a": Param("bool", False),
        "transpose_b": Param("bool", False),
        # MXNet picks a sparse output storage with this; raymod is dense only.
        "forward_stype": Param("str", None, optional=True, choices=("default",)),
    }

    def list_arguments(self):
        return ["lhs", "rhs"]

    # Memory: each operand's gradient is a product with the other operand.
    def backward_inputs(self):
        return (0, 1)

    def backward_outputs(self):
        return ()


@register
class Dot(_Product):
    """Matrix product of lhs and rhs (flattened to matrices as MXNet's dot)."""

    op_name = "dot"

    def _blocks(self, lshape, rshape):
        """(L0, L1, R0, R1): each operand as a matrix (rows, cols) before transposing."""
        l, r = tuple(lshape), tuple(rshape)
        if self.transpose_a:
            L = ((l[0],), l[1:] or (1,))
        else:
            L = (l[:-1] or (1,), (l[-1],))
        if self.transpose_b:
            R = (r[:-1] or (1,), (r[-1],))
        else:
            R = ((r[0],), r[1:] or (1,))
        return L, R

    def infer_shape(self, in_shapes, out_shapes):
        lhs, rhs = in_shapes
        if lhs is None or rhs is None:       # MXNet infers nothing backward here
            return list(in_shapes), list(out_shapes)
        if len(lhs) == 0 or len(rhs) == 0:
            self.error(f"lhs and rhs need at least 1 dimension, received {tuple(lhs)} "
                       f"and {tuple(rhs)}")
        if len(lhs) == 1 and len(rhs) == 1:
            if self.transpose_a or self.transpose_b:
                self.error("cannot transpose vectors (lhs and rhs are both 1-D)")
            if lhs[0] and rhs[0] and lhs[0] != rhs[0]:
                self.error(f"dot shape error: {tuple(lhs)} X {tuple(rhs)}")
            return list(in_shapes), [self.merged_output(out_shapes[0], (1,))]
        L, R = self._blocks(lhs, rhs)
        Ta, Tb = self.transpose_a, self.transpose_b
        k_left, k_right = _prod(L[0 if Ta else 1]), _prod(R[1 if Tb else 0])
        if k_left and k_right and k_left != k_right:
            self.error(f"dot shape error: {tuple(lhs)} X {tuple(rhs)} (transpose_a={Ta}, "
                       f"transpose_b={Tb}): contracting {k_left} with {k_right}")
        out = (tuple(L[1 if Ta else 0]) if len(lhs) > 1 else ()) + \
              (tuple(R[0 if Tb else 1]) if len(rhs) > 1 else ())
        return list(in_shapes), [self.merged_output(out_shapes[0], out)]

    def _matrices(self, a, b):
        """(A, B): the operands as the 2-D matrices actually multiplied (views)."""
        L, R = self._blocks(a.shape, b.shape)
        a2 = a.reshape(_prod(L[0]), _prod(L[1]))
        b2 = b.reshape(_prod(R[0]), _prod(R[1]))
        return a2, b2, (a2.T if self.transpose_a else a2), (b2.T if self.transpose_b else b2)

    def forward(self, xp, inputs, outputs, ws, is_train):
        _, _, A, B = self._matrices(inputs[0], inputs[1])
        xp.dot(A, B, out=outputs[0].reshape(A.shape[0], B.shape[1]))

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        a2, b2, A, B = self._matrices(inputs[0], inputs[1])
        gy = out_grads[0].reshape(A.shape[0], B.shape[1])
        if in_grads[0] is not None:
            ga = in_grads[0].reshape(a2.shape)
            if self.transpose_a:
                xp.dot(B, gy.T, out=ga)
            else:
                xp.dot(gy, B.T, out=ga)
        if in_grads[1] is not None:
            gb = in_grads[1].reshape(b2.shape)
            if self.transpose_b:
                xp.dot(gy.T, A, out=gb)
            else:
                xp.dot(A.T, gy, out=gb)


@register
class BatchDot(_Product):
    """Batched matrix product of 3-D lhs (B, M, K) and rhs (B, K, N) -> (B, M, N)."""

    op_name = "batch_dot"

    def infer_shape(self, in_shapes, out_shapes):
        lhs, rhs = in_shapes
        if lhs is None or rhs is None:
            return list(in_shapes), list(out_shapes)
        if len(lhs) != 3 or len(rhs) != 3:
            self.error(f"batch_dot supports only 3-D x 3-D arrays, received {tuple(lhs)} "
                       f"and {tuple(rhs)}")
        Ta, Tb = self.transpose_a, self.transpose_b
        k_left, k_right = lhs[1 if Ta else 2], rhs[2 if Tb else 1]
        if (lhs[0] and rhs[0] and lhs[0] != rhs[0]) or (k_left and k_right and k_left != k_right):
            self.error(f"batch_dot shape error: {tuple(lhs)} X {tuple(rhs)} "
                       f"(transpose_a={Ta}, transpose_b={Tb})")
        out = (lhs[0] or rhs[0], lhs[2 if Ta else 1], rhs[1 if Tb else 2])
        return list(in_shapes), [self.merged_output(out_shapes[0], out)]

    def _operands(self, a, b):
        return (a.transpose(0, 2, 1) if self.transpose_a else a,
                b.transpose(0, 2, 1) if self.transpose_b else b)

    def forward(self, xp, inputs, outputs, ws, is_train):
        A, B = self._operands(inputs[0], inputs[1])
        xp.matmul(A, B, out=outputs[0])

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        A, B = self._operands(inputs[0], inputs[1])
        gy = out_grads[0]
        if in_grads[0] is not None:
            if self.transpose_a:
                xp.matmul(B, gy.transpose(0, 2, 1), out=in_grads[0])
            else:
                xp.matmul(gy, B.transpose(0, 2, 1), out=in_grads[0])
        if in_grads[1] is not None:
            if self.transpose_b:
                xp.matmul(gy.transpose(0, 2, 1), A, out=in_grads[1])
            else:
                xp.matmul(A.transpose(0, 2, 1), gy, out=in_grads[1])
