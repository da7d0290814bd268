"""raymod.lr_scheduler: MXNet 1.x schedules step by step, with their log lines.

Expected values are written out by hand (or from the closed-form formula of
the reference), not computed with the code under test.
"""
import logging
import math

import pytest

from raymod import lr_scheduler as lrs


def _messages(caplog):
    return [r.getMessage() for r in caplog.records]


def test_factor_scheduler_known_answer_and_logs(caplog):
    caplog.set_level(logging.INFO)
    s = lrs.FactorScheduler(step=2, factor=0.5, base_lr=1.0)
    assert [s(n) for n in range(1, 7)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    assert _messages(caplog) == ["Update[3]: Change learning rate to 5.00000e-01",
                                 "Update[5]: Change learning rate to 2.50000e-01"]
    assert all(r.name == "root" for r in caplog.records)


def test_factor_scheduler_catches_up_and_floors(caplog):
    caplog.set_level(logging.INFO)
    s = lrs.FactorScheduler(step=1, factor=0.1, stop_factor_lr=5e-3, base_lr=1.0)
    assert s(5) == 5e-3   # one call applies every missed reduction
    assert s.count == 4
    assert _messages(caplog) == [
        "Update[5]: Change learning rate to 1.00000e-01",
        "Update[5]: Change learning rate to 1.00000e-02",
        "Update[5]: now learning rate arrived at 5.00000e-03, will not change in the future",
        "Update[5]: now learning rate arrived at 5.00000e-03, will not change in the future",
    ]


def test_factor_scheduler_warmup_linear_and_constant():
    s = lrs.FactorScheduler(step=10, factor=0.5, base_lr=1.0, warmup_steps=4,
                            warmup_begin_lr=0.2)
    assert [s(n) for n in range(0, 5)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    c = lrs.FactorScheduler(step=10, base_lr=1.0, warmup_steps=3, warmup_begin_lr=0.1,
                            warmup_mode="constant")
    assert [c(n) for n in range(0, 4)] == [0.1, 0.1, 0.1, 1.0]


def test_multi_factor_scheduler(caplog):
    caplog.set_level(logging.INFO)
    s = lrs.MultiFactorScheduler(step=[2, 4], factor=0.1, base_lr=1.0)
    assert [s(n) for n in range(1, 7)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert _messages(caplog) == ["Update[3]: Change learning rate to 1.00000e-01",
                                 "Update[5]: Change learning rate to 1.00000e-02"]
    jump = lrs.MultiFactorScheduler(step=[2, 4, 6], factor=0.5, base_lr=1.0)
    assert jump(7) == 0.125 and jump.count == 6 and jump.cur_step_ind == 3


def test_poly_scheduler_with_warmup():
    s = lrs.PolyScheduler(max_update=10, base_lr=1.0, pwr=2, final_lr=0.1, warmup_steps=2)
    got = [s(n) for n in range(0, 13)]
    expected = [0.0, 0.5] + [0.1 + 0.9 * (1 - (n - 2) / 8) ** 2 for n in range(2, 11)]
    expected += [expected[-1], expected[-1]]  # after max_update the last value stays
    assert got == pytest.approx(expected)
    assert got[10] == pytest.approx(0.1)


def test_cosine_scheduler():
    s = lrs.CosineScheduler(max_update=4, base_lr=2.0, final_lr=0.0)
    assert [s(n) for n in range(0, 6)] == pytest.approx(
        [2.0, 1.0 + math.sqrt(0.5), 1.0, 1.0 - math.sqrt(0.5), 0.0, 0.0])


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        lrs.LRScheduler()(1)


@pytest.mark.parametrize("make,err,match", [
    (lambda: lrs.FactorScheduler(step=0), ValueError, "greater or equal than 1"),
    (lambda: lrs.FactorScheduler(step=2, factor=1.5), ValueError, "no more than 1"),
    (lambda: lrs.MultiFactorScheduler(step=[3, 2]), ValueError, "increasing integer list"),
    (lambda: lrs.MultiFactorScheduler(step=(1, 2)), TypeError, "non-empty list"),
    (lambda: lrs.PolyScheduler(max_update=0), ValueError, "strictly positive"),
    (lambda: lrs.CosineScheduler(max_update=2.5), TypeError, "max_update must be an int"),
    (lambda: lrs.LRScheduler(warmup_steps=1.5), TypeError, "warmup_steps must be an int"),
    (lambda: lrs.LRScheduler(warmup_steps=-1), ValueError, "positive or 0"),
    (lambda: lrs.LRScheduler(base_lr=0.1, warmup_begin_lr=0.2), ValueError,
     "higher than warmup_begin_lr"),
    (lambda: lrs.LRScheduler(warmup_mode="cubic"), ValueError, "linear and constant"),
])
def test_invalid_arguments(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_warmup_target_is_fixed_at_construction():
    """An optimizer overwriting base_lr does not move the warmup target (as MXNet)."""
    s = lrs.FactorScheduler(step=100, base_lr=1.0, warmup_steps=2)
    s.base_lr = 0.5
    assert s(1) == 0.5   # halfway from 0 to the original 1.0
    assert s(2) == 0.5   # then the (overwritten) base_lr
