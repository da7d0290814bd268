"""raymod.test_utils: the checks must catch wrong operators, and say clearly what is wrong.

Deliberately broken toy operators are registered only for the duration of a
test (the `toy_ops` fixture removes them from the registry afterwards).
"""
import numpy as np
import pytest

import raymod as rm
from raymod.ops import base as ops_base
from raymod.symbol.op_functions import call
from raymod.test_utils import (almost_equal, assert_almost_equal, check_numeric_gradient,
                               check_symbolic_backward, check_symbolic_forward, same_array)


class _Square(ops_base.Operator):
    """y = x * x, with a correct backward."""
    op_name = "_test_square"

    def forward(self, xp, inputs, outputs, ws, is_train):
        xp.multiply(inputs[0], inputs[0], out=outputs[0])

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        if in_grads[0] is not None:
            xp.multiply(out_grads[0], inputs[0], out=in_grads[0])
            in_grads[0] *= 2


class _WrongSquare(_Square):
    """Forgets the factor 2."""
    op_name = "_test_wrong_square"

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        xp.multiply(out_grads[0], inputs[0], out=in_grads[0])


class _AccumulatingSquare(_Square):
    """Adds into its gradient buffer instead of writing it (the executor owns 'add')."""
    op_name = "_test_accumulating_square"

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        in_grads[0] += 2 * out_grads[0] * inputs[0]


class _WrongLoss(ops_base.Operator):
    """A loss whose backward is not the gradient of its loss(): sum(x^2) vs gx = x."""
    op_name = "_test_wrong_loss"
    is_loss = True

    def forward(self, xp, inputs, outputs, ws, is_train):
        xp.copyto(outputs[0], inputs[0])

    def backward(self, xp, out_grads, inputs, outputs, in_grads, ws):
        xp.copyto(in_grads[0], inputs[0])

    def loss(self, xp, inputs, outputs):
        return float((inputs[0] ** 2).sum())


TOYS = (_Square, _WrongSquare, _AccumulatingSquare, _WrongLoss)


@pytest.fixture
def toy_ops():
    for cls in TOYS:
        ops_base.register(cls)
    try:
        yield
    finally:
        for cls in TOYS:
            ops_base._REGISTRY.pop(cls.op_name, None)
    assert not any(cls.op_name in ops_base._REGISTRY for cls in TOYS)


def _toy(op_name):
    return call(op_name, rm.sym.Variable("x"), name="t")


X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])


# ------------------------------------------------------------------ check_numeric_gradient

def test_numeric_gradient_accepts_a_correct_operator(toy_ops):
    check_numeric_gradient(_toy("_test_square"), [X])
    check_numeric_gradient(_toy("_test_square"), {"x": X}, grad_nodes=["x"], numeric_eps=1e-4,
                           rtol=1e-6)


def test_numeric_gradient_catches_a_wrong_gradient(toy_ops):
    with pytest.raises(AssertionError, match=r"NUMERICAL_x=.*BACKWARD_x="):
        check_numeric_gradient(_toy("_test_wrong_square"), [X])


def test_numeric_gradient_checks_a_loss_against_its_objective(toy_ops):
    with pytest.raises(AssertionError, match="NUMERICAL_x"):
        check_numeric_gradient(_toy("_test_wrong_loss"), [X])
    # A real loss operator passes: SoftmaxOutput's gradient is that of its cross-entropy.
    sm = rm.sym.SoftmaxOutput(rm.sym.Variable("x"), name="sm")
    check_numeric_gradient(sm, {"x": X, "sm_label": np.array([2.0, 0.0])}, grad_nodes=["x"])


def test_numeric_gradient_with_aux_states():
    bn = rm.sym.BatchNorm(rm.sym.Variable("x"), name="bn", fix_gamma=False)
    rng = np.random.default_rng(0)
    check_numeric_gradient(bn, [rng.normal(size=(4, 3)), rng.uniform(1, 2, 3),
                                rng.normal(size=3)],
                           aux_states=[np.zeros(3), np.ones(3)], numeric_eps=1e-4, rtol=1e-3)


def test_numeric_gradient_argument_errors(toy_ops):
    with pytest.raises(ValueError, match=r"grad_nodes \['y'\] are not in location"):
        check_numeric_gradient(_toy("_test_square"), [X], grad_nodes=["y"])
    with pytest.raises(ValueError, match="location has 2 arrays for arguments"):
        check_numeric_gradient(_toy("_test_square"), [X, X])


def test_toy_operators_do_not_leak_into_the_registry():
    assert not any(cls.op_name in rm.ops.registered_ops() for cls in TOYS)


# ------------------------------------------------------------------ symbolic checks

def test_check_symbolic_forward(toy_ops):
    sym = _toy("_test_square")
    outs = check_symbolic_forward(sym, [X], [X * X], dtype=np.float64)
    np.testing.assert_array_equal(outs[0], X * X)
    check_symbolic_forward(sym, {"x": X}, {"t_output": X * X})
    with pytest.raises(AssertionError, match="FORWARD_t_output=.*EXPECTED_t_output="):
        check_symbolic_forward(sym, [X], [X * X + 1e-2], dtype=np.float64)


def test_check_symbolic_backward_write_must_overwrite(toy_ops):
    gy = np.ones_like(X)
    check_symbolic_backward(_toy("_test_square"), [X], [gy], [2 * X], dtype=np.float64)
    # Gradient buffers start at random values, so an op that adds instead of writing fails.
    with pytest.raises(AssertionError, match="BACKWARD_x"):
        check_symbolic_backward(_toy("_test_accumulating_square"), [X], [gy], [2 * X],
                                dtype=np.float64)
    with pytest.raises(AssertionError, match="BACKWARD_x"):
        check_symbolic_backward(_toy("_test_wrong_square"), [X], [gy], {"x": 2 * X},
                                dtype=np.float64)


def test_check_symbolic_backward_grad_req_add(toy_ops):
    sym = _toy("_test_square")
    grads = check_symbolic_backward(sym, [X], [np.ones_like(X)], [2 * X], grad_req="add",
                                    dtype=np.float64)
    # The returned gradient is the random start plus the op's contribution.
    assert not np.allclose(grads["x"], 2 * X)
    check_symbolic_backward(sym, [X], [np.ones_like(X)], [2 * X], grad_req=["add"],
                            dtype=np.float64)
    with pytest.raises(AssertionError, match="BACKWARD_x"):
        check_symbolic_backward(_toy("_test_wrong_square"), [X], [np.ones_like(X)], [2 * X],
                                grad_req="add", dtype=np.float64)


# ------------------------------------------------------------------ comparisons

def test_assert_almost_equal_passes_within_tolerance():
    assert_almost_equal(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-6]))
    assert_almost_equal([1.0, np.nan], [1.0, np.nan], equal_nan=True)
    assert almost_equal(np.ones(3), np.ones(3) + 1e-7)
    assert not almost_equal(np.ones(3), np.ones(3) + 1e-3)


def test_assert_almost_equal_message_names_the_worst_element():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = a.copy()
    b[1, 0] = 3.5
    b[0, 1] = 2.01
    with pytest.raises(AssertionError) as err:
        assert_almost_equal(a, b, rtol=1e-3, atol=1e-4, names=("got", "want"))
    msg = str(err.value)
    assert "exceeds tolerance rtol=1.000000e-03, atol=1.000000e-04" in msg
    assert "(2 of 4 elements)" in msg
    assert "Location of maximum error: (np.int64(1), np.int64(0)), got=np.float64(3.0), " \
           "want=np.float64(3.5)" in msg
    err_value = 0.5 / (1e-4 + 1e-3 * 3.5)
    assert msg.startswith(f"Error {err_value:f}")


def test_assert_almost_equal_shape_and_nan_errors():
    with pytest.raises(AssertionError, match=r"shape mismatch: a \(2,\) vs b \(1, 2\)"):
        assert_almost_equal(np.ones(2), np.ones((1, 2)))
    with pytest.raises(AssertionError, match="Error inf"):
        assert_almost_equal(np.array([np.nan]), np.array([1.0]))


def test_same_array():
    a = np.arange(6.0).reshape(2, 3)
    assert same_array(a, a)
    assert same_array(a, a.reshape(2, 3))          # a view of the same memory
    assert not same_array(a, a.copy())
    assert not same_array(a[:, 1:], a[:, :2])        # overlapping, not the same
    square = np.arange(4.0).reshape(2, 2)
    assert not same_array(square, square.T)          # same start, other layout
    assert not same_array(a, a.reshape(3, 2))
