"""raymod's global random state (MXNet's `mx.random`): `seed(n)` and the generator.

Initializers draw from `generator()`; executors derive their own generator
(Dropout masks) from it at bind, so one `seed(n)` makes a run repeatable.
Like MXNet, whose global seed defaults to 0, an unseeded process starts from
seed 0. `uniform`/`normal` draw on the host and copy into the target array, so
a seed gives the same numbers on numpy and cupy.
"""
import numpy as np

from .context import array_module

__all__ = ["seed", "generator", "executor_seed", "uniform", "normal"]

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


def _fill(values, shape, dtype, out):
    if out is None:
        return values.astype(dtype).reshape(shape)
    xp = array_module(out)
    if xp is np:
        out[...] = values.reshape(out.shape)
    else:
        with out.device:  # copy onto the target's GPU, not the current one
            out[...] = xp.asarray(values.reshape(out.shape))
    return out


def _shape_of(shape, out):
    if out is not None:
        return tuple(out.shape)
    if shape is None:
        return ()
    return (shape,) if isinstance(shape, int) else tuple(shape)


def uniform(low=0, high=1, shape=None, dtype="float32", out=None):
    """Samples from U(low, high): a new numpy array, or written into `out` (numpy or cupy)."""
    shape = _shape_of(shape, out)
    return _fill(generator().uniform(low, high, size=shape), shape, dtype, out)


def normal(loc=0, scale=1, shape=None, dtype="float32", out=None):
    """Samples from N(loc, scale): a new numpy array, or written into `out` (numpy or cupy)."""
    shape = _shape_of(shape, out)
    return _fill(generator().normal(loc, scale, size=shape), shape, dtype, out)
