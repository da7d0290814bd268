"""raymod's global random state (MXNet's `mx.random`): `seed(n)` and the generator.

Initializers draw from `generator()`; executors derive their own generator
(Dropout masks) from it at bind, so one `seed(n)` makes a run repeatable.
Like MXNet, whose global seed defaults to 0, an unseeded process starts from
seed 0. The samplers (`uniform`, `normal`, ...) are `rm.nd.random`'s, as in
MXNet: they draw on the host and copy into the target array, so a seed gives
the same numbers on numpy and cupy.
"""
import numpy as np

_DEFAULT_SEED = 0
_state = {"generator": None, "executor_seeds": None}


def seed(seed_state, ctx="all"):
    """Seed the global random generator (MXNet's `mx.random.seed`).

    Parameters
    ----------
    seed_state : int
        A non-negative integer seed.
    ctx : Context or 'all', default 'all'
        Accepted for MXNet compatibility; raymod has one generator per process.
    """
    if isinstance(seed_state, bool) or not isinstance(seed_state, (int, np.integer)):
        raise TypeError(f"seed_state must be an int, received {seed_state!r}")
    if seed_state < 0:
        raise ValueError(f"seed_state must be non-negative, received {seed_state}")
    _state["generator"] = np.random.default_rng(int(seed_state))
    _state["executor_seeds"] = np.random.default_rng([int(seed_state), 1])


def executor_seed():
    """A seed for one executor's generator (Dropout masks).

    Drawn from a stream of its own, so binding executors (here or on a Ray
    worker) never shifts the numbers initializers draw from `generator()`.
    """
    if _state["executor_seeds"] is None:
        _state["executor_seeds"] = np.random.default_rng([_DEFAULT_SEED, 1])
    return int(_state["executor_seeds"].integers(0, 2**31 - 1))


def generator():
    """The process-wide `numpy.random.Generator` (seeded with 0 until `seed` is called)."""
    if _state["generator"] is None:
        _state["generator"] = np.random.default_rng(_DEFAULT_SEED)
    return _state["generator"]


# MXNet's `mx.random.uniform` is `mx.nd.random.uniform`: the samplers are the
# ndarray module's (imported on use: raymod.ndarray.random draws from `generator()`).
_SAMPLERS = ("uniform", "normal", "randn", "poisson", "exponential", "gamma",
             "negative_binomial", "generalized_negative_binomial", "randint", "multinomial",
             "shuffle")
__all__ = ["seed", "generator", "executor_seed", *_SAMPLERS]


def __getattr__(name):
    if name in _SAMPLERS:
        from .ndarray import random as nd_random
        return getattr(nd_random, name)
    raise AttributeError(f"module 'raymod.random' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SAMPLERS))
