"""Every operator's memory declarations are sufficient, checked on every gradient case.

Each case of tests/ops runs with its inputs and outputs turned into planned
intermediates (`x * 1` in front of every argument, a copy behind every
non-loss output), so the planner frees what the op says it does not read,
computes in place what it says it may, and -- with `POISON_FREED` -- fills
every freed block with NaN at once. The planned gradients must equal the
unplanned executor's, and (for non-loss outputs, whose objective reads only
the outputs) pass the finite-difference check through the planned executor.
"""
import numpy as np
import pytest

import raymod.executor_plan as executor_plan
from raymod.context import to_numpy
from raymod.executor import Executor
from raymod.ops.base import get_op_class
from raymod.symbol.node import Node, copy_graph, topo_order
from raymod.symbol.symbol import Symbol
from raymod.test_utils import assert_almost_equal, check_numeric_gradient
from tests.ops.cases import case_ids
from tests.ops.test_coverage import collected_cases

CASES = collected_cases()


@pytest.fixture
def poisoned(monkeypatch):
    monkeypatch.setattr(executor_plan, "POISON_FREED", True)


def _times_one(entry, name):
    op = get_op_class("_mul_scalar")(name, scalar=1.0)
    return Node(op, name, {"scalar": "1.0"}, [entry])


def _copy_out(entry, name):
    """A copy that never runs in place: the op's output dies there and is poisoned."""
    op = get_op_class("Cast")(name, dtype="float64")
    return Node(op, name, {"dtype": "float64"}, [entry])


def as_intermediates(sym):
    """The same math with every argument behind a `* 1` node and every non-loss output
    copied by a Cast (which never runs in place)."""
    heads = copy_graph(sym._heads)
    order = topo_order(heads)
    wrapped = {}
    for node in order:
        if node.is_variable:
            continue
        aux = set(node.aux_input_slots())
        for slot, (src, i) in enumerate(node.inputs):
            if src.is_variable and slot not in aux:
                if id(src) not in wrapped:
                    wrapped[id(src)] = _times_one((src, 0), f"in_{src.name}")
                node.inputs[slot] = (wrapped[id(src)], 0)
    out = []
    for k, (node, i) in enumerate(heads):
        if node.is_variable or node.op.is_loss:
            out.append((node, i))
        else:
            out.append((_copy_out((node, i), f"out{k}"), 0))
    return Symbol(out)


def _location(case, rng):
    loc = {}
    for name, shape in case.shapes.items():
        if name in case.values:
            loc[name] = np.asarray(case.values[name], dtype=np.float64)
        else:
            loc[name] = rng.uniform(case.low, case.high, size=shape)
    return loc


def _run(sym, ctx, loc, aux, grad_nodes, is_train, plan_memory):
    xp = ctx.xp
    args = {n: xp.asarray(loc[n]) for n in sym.list_arguments()}
    grads = {n: xp.zeros_like(args[n]) for n in grad_nodes}
    reqs = {n: ("write" if n in grad_nodes else "null") for n in args}
    aux = {n: xp.asarray(np.asarray(v, np.float64)) for n, v in (aux or {}).items()}
    exe = Executor(sym, ctx, args, args_grad=grads, grad_req=reqs, aux_states=aux or None,
                   seed=7, plan_memory=plan_memory)
    outs = [to_numpy(o).copy() for o in exe.forward(is_train=is_train)]
    rng = np.random.default_rng(3)
    heads = [xp.asarray(rng.normal(size=o.shape)) for o in outs]
    exe.backward(heads)
    after = [to_numpy(o).copy() for o in exe.outputs]
    return exe, outs, after, {n: to_numpy(g).copy() for n, g in exe.grad_dict.items()}


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_planned_gradients_equal_unplanned_with_freed_memory_poisoned(case, ctx, poisoned):
    sym = as_intermediates(case.build())
    loc = _location(case, np.random.default_rng(0))
    grad_nodes = case.grad_nodes or [n for n in case.shapes if n not in case.values]
    run = lambda plan: _run(sym, ctx, loc, case.aux, grad_nodes,  # noqa: E731
                            case.use_forward_train, plan)
    exe, outs, after, grads = run(True)
    _, want_outs, _, want_grads = run(False)
    assert exe._plan.poison
    for got, want, out_after in zip(outs, want_outs, after, strict=True):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(out_after, want)    # outputs survive backward
    for name in grad_nodes:
        assert_almost_equal(grads[name], want_grads[name], rtol=1e-12, atol=1e-300,
                            names=(f"PLANNED_{name}", f"UNPLANNED_{name}"))


FD_CASES = [c for c in CASES if not any(
    not n.is_variable and n.op.is_loss for n, _ in c.build()._heads)]


@pytest.mark.parametrize("case", FD_CASES, ids=case_ids(FD_CASES))
def test_finite_differences_pass_through_the_planned_executor(case, ctx, poisoned):
    sym = as_intermediates(case.build())
    loc = _location(case, np.random.default_rng(0))
    grad_nodes = case.grad_nodes or [n for n in case.shapes if n not in case.values]
    check_numeric_gradient(sym, loc, aux_states=case.aux or None, numeric_eps=case.eps,
                           rtol=case.rtol, atol=case.atol, grad_nodes=grad_nodes, ctx=ctx,
                           use_forward_train=case.use_forward_train)


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_inference_binds_compute_in_place_correctly(case, ctx, poisoned):
    """No gradients: every input dies at its consumer, so every declared pair runs in place."""
    sym = as_intermediates(case.build())
    loc = _location(case, np.random.default_rng(0))
    run = lambda plan: _run(sym, ctx, loc, case.aux, [], False, plan)  # noqa: E731
    _, outs, after, _ = run(True)
    _, want, _, _ = run(False)
    for got, expected, out_after in zip(outs, want, after, strict=True):
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(out_after, expected)
