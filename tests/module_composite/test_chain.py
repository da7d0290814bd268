"""The pipeline schedule of GroupChain and its slot executors."""
import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch
from raymod.parallel.chain import GroupChain, one_f_one_b, submission_order

from .nets import IP, classification, stage_syms


@pytest.mark.parametrize("stages,k", [(2, 1), (2, 4), (3, 2), (3, 5), (4, 3)])
def test_one_f_one_b_runs_every_step_once_forward_before_backward(stages, k):
    orders = one_f_one_b(stages, k)
    for stage, order in enumerate(orders):
        assert sorted(order) == sorted([("F", j) for j in range(k)] + [("B", j) for j in range(k)])
        in_flight = peak = 0
        for kind, j in order:
            if kind == "F":
                in_flight += 1
            else:
                assert order.index(("F", j)) < order.index(("B", j))
                in_flight -= 1
            peak = max(peak, in_flight)
        assert peak == min(k, stages - stage)       # the slots a stage needs


def test_one_f_one_b_alternates_once_the_pipeline_is_full():
    assert one_f_one_b(2, 4) == [
        [("F", 0), ("F", 1), ("B", 0), ("F", 2), ("B", 1), ("F", 3), ("B", 2), ("B", 3)],
        [("F", 0), ("B", 0), ("F", 1), ("B", 1), ("F", 2), ("B", 2), ("F", 3), ("B", 3)]]


@pytest.mark.parametrize("stages,k", [(2, 4), (3, 3), (4, 6)])
def test_submission_order_keeps_each_stage_order_and_dependencies(stages, k):
    orders = one_f_one_b(stages, k)
    seq = submission_order(orders)
    assert len(seq) == 2 * stages * k
    pos = {step: i for i, step in enumerate(seq)}
    for stage, order in enumerate(orders):
        assert [(kind, j) for kind, s, j in seq if s == stage] == order
    for kind, s, j in seq:
        if kind == "F" and s > 0:
            assert pos[("F", s - 1, j)] < pos[(kind, s, j)]
        if kind == "B" and s < stages - 1:
            assert pos[("B", s + 1, j)] < pos[(kind, s, j)]


def test_submission_order_reports_a_deadlock():
    with pytest.raises(RuntimeError, match="deadlock"):
        submission_order([[("B", 0), ("F", 0)], [("F", 0), ("B", 0)]])


def bound_groups(context2=None):
    s1, s2 = stage_syms()
    m1 = rm.mod.Module(s1, label_names=None, context=[rm.cpu(0), rm.cpu(1)])
    m2 = rm.mod.Module(s2, context=context2 or [rm.cpu(0), rm.cpu(1)])
    m1.bind([("data", (8, 5))], inputs_need_grad=False)
    m2.bind([("data", (8, 6))], [("softmax_label", (8,))], inputs_need_grad=True)
    m1.init_params()
    m2.init_params()
    return m1, m2


def test_incompatible_groups_are_named():
    m1, m2 = bound_groups(context2=[rm.cpu(0)])
    reason = GroupChain.incompatibility([m1._exec_group, m2._exec_group])
    assert "stage 1 has 1 devices" in reason
    with pytest.raises(ValueError, match="cannot be chained"):
        GroupChain([m1._exec_group, m2._exec_group], [False, True])


@pytest.mark.in_process_only("inspects the executors' own arrays and memory plan")
def test_slots_share_parameters_and_gradients_but_not_inputs():
    m1, m2 = bound_groups()
    chain = GroupChain([m1._exec_group, m2._exec_group], [False, True])
    x, y = classification(8)
    chain.forward_backward(DataBatch([x], [y]), 4)
    worker = m1._exec_group._workers.workers[0]
    main = worker.executor(m1._exec_group._key)
    slots = [worker.executor(k) for (stage, _, _), k in chain._slots.items() if stage == 0]
    assert len(slots) == 2                               # stage 0 of 2 holds 2 in flight
    for exe in slots:
        assert exe.arg_dict["fc1_weight"] is main.arg_dict["fc1_weight"]
        assert exe.grad_dict["fc1_weight"] is main.grad_dict["fc1_weight"]
        assert exe.grad_req["fc1_weight"] == "add"
        assert not np.shares_memory(exe.arg_dict["data"], main.arg_dict["data"])
    assert not np.shares_memory(slots[0].arg_dict["data"], slots[1].arg_dict["data"])
    assert chain.slot_bytes > 0
    keys = list(chain._slots.values())
    chain.release()
    assert chain.slot_bytes == 0
    with pytest.raises(rm.MXNetError, match="nothing bound"):
        worker.executor(keys[0])
