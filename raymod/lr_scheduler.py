"""Learning rate schedules (MXNet 1.x's `mx.lr_scheduler`), same formulas and log lines.

A scheduler is called with `num_update`, the largest number of updates applied
to any weight, and returns the learning rate. Like MXNet, the step schedulers
keep state (`count`, `base_lr`) and log through the root `logging` module.
"""
import logging
from math import cos, pi

__all__ = ["LRScheduler", "FactorScheduler", "MultiFactorScheduler", "PolyScheduler",
           "CosineScheduler"]


def _require_int(value, name):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, received {value!r}")


class LRScheduler:
    """Base class of a learning rate scheduler.

    Parameters
    ----------
    base_lr : float, default 0.01
        The initial learning rate.
    warmup_steps : int, default 0
        Number of warmup steps before the schedule proper starts.
    warmup_begin_lr : float, default 0
        The learning rate warmup starts from.
    warmup_mode : {'linear', 'constant'}, default 'linear'
        'linear' rises in equal increments to `base_lr`; 'constant' stays at
        `warmup_begin_lr` during warmup.
    """

    def __init__(self, base_lr=0.01, warmup_steps=0, warmup_begin_lr=0, warmup_mode='linear'):
        self.base_lr = base_lr
        _require_int(warmup_steps, "warmup_steps")
        self.warmup_steps = warmup_steps

        # Captured once: an optimizer overwriting `base_lr` later does not move
        # the warmup target (as in MXNet).
        self.warmup_final_lr = base_lr
        self.warmup_begin_lr = warmup_begin_lr
        if self.warmup_begin_lr > self.warmup_final_lr:
            raise ValueError("Base lr has to be higher than warmup_begin_lr")
        if self.warmup_steps < 0:
            raise ValueError("Warmup steps has to be positive or 0")
        if warmup_mode not in ['linear', 'constant']:
            raise ValueError("Supports only linear and constant modes of warmup")
        self.warmup_mode = warmup_mode

    def get_warmup_lr(self, num_update):
        """Learning rate at `num_update` during warmup (``num_update < warmup_steps``)."""
        if num_update >= self.warmup_steps:
            raise ValueError(f"get_warmup_lr: num_update {num_update} is not inside the "
                             f"warmup ({self.warmup_steps} steps)")
        if self.warmup_mode == 'linear':
            increase = (self.warmup_final_lr - self.warmup_begin_lr) \
                * float(num_update) / float(self.warmup_steps)
            return self.warmup_begin_lr + increase
        if self.warmup_mode == 'constant':
            return self.warmup_begin_lr
        raise ValueError(f"Invalid warmup mode {self.warmup_mode}")

    def __call__(self, num_update):
        """Return the learning rate for `num_update` (the maximal update count of any weight)."""
        raise NotImplementedError("must override this")


class FactorScheduler(LRScheduler):
    """Multiply the learning rate by `factor` every `step` updates.

    Each time ``num_update > count + step``: ``count += step`` and
    ``base_lr *= factor``, floored at `stop_factor_lr`; e.g. step=2, factor=0.5
    gives 1, 1, .5, .5, .25, .25 for updates 1..6 with base_lr=1.

    Parameters
    ----------
    step : int
        Changes the learning rate every `step` updates (>= 1).
    factor : float, default 1
        The factor (<= 1).
    stop_factor_lr : float, default 1e-8
        The learning rate never goes below this.
    base_lr, warmup_steps, warmup_begin_lr, warmup_mode
        As `LRScheduler`.
    """

    def __init__(self, step, factor=1, stop_factor_lr=1e-8, base_lr=0.01,
                 warmup_steps=0, warmup_begin_lr=0, warmup_mode='linear'):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if step < 1:
            raise ValueError("Schedule step must be greater or equal than 1 round")
        if factor > 1.0:
            raise ValueError("Factor must be no more than 1 to make lr reduce")
        self.step = step
        self.factor = factor
        self.stop_factor_lr = stop_factor_lr
        self.count = 0

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)

        # a loop, not an if: resuming at a late num_update catches up at once
        while num_update > self.count + self.step:
            self.count += self.step
            self.base_lr *= self.factor
            if self.base_lr < self.stop_factor_lr:
                self.base_lr = self.stop_factor_lr
                logging.info("Update[%d]: now learning rate arrived at %0.5e, will not "
                             "change in the future", num_update, self.base_lr)
            else:
                logging.info("Update[%d]: Change learning rate to %0.5e",
                             num_update, self.base_lr)
        return self.base_lr


class MultiFactorScheduler(LRScheduler):
    """Multiply the learning rate by `factor` each time `num_update` passes a step.

    Parameters
    ----------
    step : list of int
        Increasing update counts (each >= 1); when ``num_update > step[k]`` the
        k-th reduction happens.
    factor : float, default 1
        The factor (<= 1).
    base_lr, warmup_steps, warmup_begin_lr, warmup_mode
        As `LRScheduler`.
    """

    def __init__(self, step, factor=1, base_lr=0.01, warmup_steps=0, warmup_begin_lr=0,
                 warmup_mode='linear'):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if not isinstance(step, list) or len(step) < 1:
            raise TypeError(f"step must be a non-empty list of int, received {step!r}")
        for i, _step in enumerate(step):
            if i != 0 and step[i] <= step[i - 1]:
                raise ValueError("Schedule step must be an increasing integer list")
            if _step < 1:
                raise ValueError("Schedule step must be greater or equal than 1 round")
        if factor > 1.0:
            raise ValueError("Factor must be no more than 1 to make lr reduce")
        self.step = step
        self.cur_step_ind = 0
        self.factor = factor
        self.count = 0

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)

        while self.cur_step_ind <= len(self.step) - 1:
            if num_update > self.step[self.cur_step_ind]:
                self.count = self.step[self.cur_step_ind]
                self.cur_step_ind += 1
                self.base_lr *= self.factor
                logging.info("Update[%d]: Change learning rate to %0.5e",
                             num_update, self.base_lr)
            else:
                return self.base_lr
        return self.base_lr


class _DecayToFinalLR(LRScheduler):
    """After warmup, base_lr decays to final_lr over max_update updates, then stays.

    Subclasses give the share of (base_lr - final_lr) left after `steps`
    updates past warmup.
    """

    def __init__(self, max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr,
                 warmup_mode):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        _require_int(max_update, "max_update")
        if max_update < 1:
            raise ValueError("maximum number of updates must be strictly positive")
        self.base_lr_orig = self.base_lr
        self.max_update = max_update
        self.final_lr = final_lr
        self.max_steps = self.max_update - self.warmup_steps

    def _remaining(self, steps):
        raise NotImplementedError

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        if num_update <= self.max_update:
            self.base_lr = self.final_lr + (self.base_lr_orig - self.final_lr) * \
                self._remaining(num_update - self.warmup_steps)
        return self.base_lr


class PolyScheduler(_DecayToFinalLR):
    """Polynomial decay after warmup::

        T = max_update - warmup_steps
        final_lr + (base_lr - final_lr) * (1 - (nup - warmup_steps)/T)**pwr

    for ``nup <= max_update``; afterwards the last value is kept.

    Parameters
    ----------
    max_update : int
        Updates until the learning rate reaches `final_lr` (>= 1).
    base_lr : float, default 0.01
    pwr : float, default 2
        The power of the decay (stored as `power`).
    final_lr : float, default 0
    warmup_steps, warmup_begin_lr, warmup_mode
        As `LRScheduler`.
    """

    def __init__(self, max_update, base_lr=0.01, pwr=2, final_lr=0,
                 warmup_steps=0, warmup_begin_lr=0, warmup_mode='linear'):
        super().__init__(max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr,
                         warmup_mode)
        self.power = pwr

    def _remaining(self, steps):
        return pow(1 - float(steps) / float(self.max_steps), self.power)


class CosineScheduler(_DecayToFinalLR):
    """Cosine decay after warmup::

        T = max_update - warmup_steps
        final_lr + (base_lr - final_lr) * (1 + cos(pi * (nup - warmup_steps)/T)) / 2

    for ``nup <= max_update``; afterwards the last value is kept.

    Parameters
    ----------
    max_update : int
        Updates until the learning rate reaches `final_lr` (>= 1).
    base_lr : float, default 0.01
    final_lr : float, default 0
    warmup_steps, warmup_begin_lr, warmup_mode
        As `LRScheduler`.
    """

    def __init__(self, max_update, base_lr=0.01, final_lr=0,
                 warmup_steps=0, warmup_begin_lr=0, warmup_mode='linear'):
        super().__init__(max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr,
                         warmup_mode)

    def _remaining(self, steps):
        return (1 + cos(pi * steps / self.max_steps)) / 2
