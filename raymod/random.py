"""raymod's seeded random state (MXNet's `mx.random.seed`).

Initializers draw from `generator()`; executors derive their own generator
(Dropout masks) from it at bind, so one `seed(n)` makes a run repeatable.
"""
import numpy as np

_generator = np.random.default_rng(0)


def seed(seed_state, ctx="all"):
    """Reset the random state; `ctx` is accepted for MXNet compatibility."""
    global _generator
    if isinstance(seed_state, bool) or not isinstance(seed_state, (int, np.integer)):
        raise TypeError(f"seed_state must be an int, received {type(seed_state).__name__}")
    _generator = np.random.default_rng(int(seed_state))


def generator():
    """The numpy Generator every raymod random draw on the host comes from."""
    return _generator
