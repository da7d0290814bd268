"""`rm.nd.random` (MXNet's `mx.nd.random`): NDArrays of random samples.

Every sampler draws from raymod's process-wide generator
(`raymod.random.generator()`), so `rm.random.seed(n)` makes a run
repeatable, on the host: a seed gives the same numbers on every context
(a GPU context receives a copy). The numbers are numpy's, not MXNet's.

MXNet's signatures and defaults: a scalar parameter with no `shape` and no
`out` draws one sample (shape `(1,)`); `shape` may be an int or a tuple;
with `out` the samples fill `out` and `out` is returned. Parameters given as
NDArrays (all of one shape S) draw `shape` samples for each element, so the
result has shape `S + shape`.
"""
import numpy as np

from ..context import array_module, current_context
from ..random import generator
from .ndarray import NDArray, _place

__all__ = ["uniform", "normal", "randn", "poisson", "exponential", "gamma", "multinomial",
           "negative_binomial", "generalized_negative_binomial", "shuffle", "randint"]

_FLOAT_DTYPES = ("float16", "float32", "float64")
_INT_DTYPES = ("int32", "int64")
_MULTINOMIAL_DTYPES = ("float16", "float32", "float64", "int32", "uint8")


def _dtype(fn, dtype, allowed, default):
    name = default
    if dtype is not None:
        name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if name not in allowed:
        raise TypeError(f"{fn}: dtype must be one of {allowed}, received {dtype!r}")
    return np.dtype(name)


def _sample_shape(fn, shape, out, scalar_params):
    """The shape drawn per parameter value: MXNet's `shape`, `(1,)` by default."""
    if shape is not None:
        if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
            shape = (int(shape),)
        try:
            shape = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            raise TypeError(f"{fn}: shape must be an int or a tuple of ints, "
                            f"received {shape!r}") from None
        if any(d < 0 for d in shape):
            raise ValueError(f"{fn}: shape must not have negative dimensions, received {shape}")
    if out is not None:
        if shape is not None and scalar_params and shape != tuple(out.shape):
            raise ValueError(f"{fn}: shape {shape} does not match out's shape "
                             f"{tuple(out.shape)}")
        return tuple(out.shape) if scalar_params else shape or ()
    if shape is None:
        return (1,) if scalar_params else ()
    return shape


def _params(fn, names, values):
    """Scalar parameters as floats, or NDArray parameters as arrays of one shape."""
    arrays = [isinstance(v, np.ndarray) or hasattr(v, "__cuda_array_interface__")
              for v in values]
    if any(arrays) and not all(arrays):
        raise TypeError(f"{fn}: distribution parameters {names} must all be numbers or all "
                        f"NDArrays, received {[type(v).__name__ for v in values]}")
    if not any(arrays):
        for name, value in zip(names, values, strict=True):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise TypeError(f"{fn}: {name} must be a number or an NDArray, "
                                f"received {type(value).__name__}")
        return [float(v) for v in values], True
    host = [np.asarray(v.get() if hasattr(v, "get") and not isinstance(v, np.ndarray) else v,
                       dtype=np.float64) for v in values]
    shapes = {h.shape for h in host}
    if len(shapes) > 1:
        raise ValueError(f"{fn}: parameter arrays {names} must have one shape, received "
                         f"{[h.shape for h in host]}")
    return host, False


def _check(fn, name, ok, expected, value):
    if not np.all(ok):
        raise ValueError(f"{fn}: {name} must be {expected}, received {value!r}")


def _context(ctx, values):
    for v in values:
        if isinstance(v, NDArray):
            return v.context   # MXNet: a parameter array's context overrides ctx
    return ctx if ctx is not None else current_context()


def _deliver(samples, dtype, ctx, out):
    samples = np.asarray(samples).astype(dtype, copy=False)
    if out is None:
        return _place(samples, ctx, copy=False)
    if tuple(out.shape) != samples.shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, the samples have shape "
                         f"{samples.shape}")
    if isinstance(out, np.ndarray):
        out[...] = samples
    else:  # a cupy array: copy onto its own device
        with out.device:
            out[...] = array_module(out).asarray(samples)
    return out


def _draw(fn, names, values, shape, dtype, ctx, out, sampler, checks=()):
    """Common path: validate, broadcast parameters over the sample shape, draw, deliver."""
    params, scalar = _params(fn, names, values)
    dtype = _dtype(fn, dtype, _FLOAT_DTYPES, "float32")
    for index, expected, predicate in checks:
        _check(fn, names[index], predicate(*params), expected, values[index])
    sample_shape = _sample_shape(fn, shape, out, scalar)
    if scalar:
        full = sample_shape
        args = params
    else:
        full = params[0].shape + sample_shape
        args = [p.reshape(p.shape + (1,) * len(sample_shape)) for p in params]
    return _deliver(sampler(generator(), *args, full), dtype, _context(ctx, values), out)


def uniform(low=0, high=1, shape=None, dtype=None, ctx=None, out=None):
    """Samples from the uniform distribution on [low, high).

    Parameters
    ----------
    low, high : float or NDArray, default 0 and 1
    shape : int or tuple of ints, optional
        Samples per parameter value; one sample by default.
    dtype : {'float16', 'float32', 'float64'}, default 'float32'
    ctx : Context, optional
        Default: the current context (a parameter NDArray's context wins).
    out : NDArray, optional
        Filled with the samples and returned.
    """
    return _draw("uniform", ("low", "high"), (low, high), shape, dtype, ctx, out,
                 lambda g, lo, hi, s: g.uniform(lo, hi, size=s),
                 checks=[(1, "greater than or equal to low", lambda lo, hi: hi >= lo)])


def normal(loc=0, scale=1, shape=None, dtype=None, ctx=None, out=None):
    """Samples from the normal distribution N(loc, scale**2); arguments as `uniform`."""
    return _draw("normal", ("loc", "scale"), (loc, scale), shape, dtype, ctx, out,
                 lambda g, m, s, size: g.normal(m, s, size=size),
                 checks=[(1, "non-negative", lambda m, s: s >= 0)])


def randn(*shape, loc=0, scale=1, dtype=None, ctx=None, out=None):
    """Normal samples with the shape given positionally: `randn(2, 3)` (MXNet's `randn`)."""
    if not shape:
        raise ValueError("randn: give the shape positionally, e.g. randn(2, 3); MXNet "
                         "cannot infer a shape from no dimensions either")
    return normal(loc, scale, shape=shape, dtype=dtype, ctx=ctx, out=out)


def poisson(lam=1, shape=None, dtype=None, ctx=None, out=None):
    """Samples from the Poisson distribution of rate `lam` (returned as floats)."""
    return _draw("poisson", ("lam",), (lam,), shape, dtype, ctx, out,
                 lambda g, lam_, s: g.poisson(lam_, size=s),
                 checks=[(0, "non-negative", lambda lam_: lam_ >= 0)])


def exponential(scale=1, shape=None, dtype=None, ctx=None, out=None):
    """Samples from the exponential distribution of scale `scale` (= 1 / rate)."""
    return _draw("exponential", ("scale",), (scale,), shape, dtype, ctx, out,
                 lambda g, b, s: g.exponential(b, size=s),
                 checks=[(0, "positive", lambda b: b > 0)])


def gamma(alpha=1, beta=1, shape=None, dtype=None, ctx=None, out=None):
    """Samples from the gamma distribution of shape `alpha` and scale `beta`."""
    return _draw("gamma", ("alpha", "beta"), (alpha, beta), shape, dtype, ctx, out,
                 lambda g, a, b, s: g.gamma(a, b, size=s),
                 checks=[(0, "positive", lambda a, b: a > 0), (1, "positive", lambda a, b: b > 0)])


def negative_binomial(k=1, p=1, shape=None, dtype=None, ctx=None, out=None):
    """Failures before the `k`-th success, with success probability `p` per trial.

    MXNet's docstring calls `p` a failure probability, but its sampler
    (Poisson of Gamma(k, (1 - p) / p)) has mean k (1 - p) / p: numpy's
    `negative_binomial(k, p)`, which this is.
    """
    return _draw("negative_binomial", ("k", "p"), (k, p), shape, dtype, ctx, out,
                 lambda g, k_, p_, s: g.negative_binomial(k_, p_, size=s),
                 checks=[(0, "positive", lambda k_, p_: k_ > 0),
                         (1, "in (0, 1]", lambda k_, p_: (p_ > 0) & (p_ <= 1))])


def generalized_negative_binomial(mu=1, alpha=1, shape=None, dtype=None, ctx=None, out=None):
    """Samples with mean `mu` and dispersion `alpha` (`alpha = 0` is Poisson(`mu`))."""
    return _draw("generalized_negative_binomial", ("mu", "alpha"), (mu, alpha), shape, dtype,
                 ctx, out, _generalized_negative_binomial,
                 checks=[(0, "non-negative", lambda m, a: m >= 0),
                         (1, "non-negative", lambda m, a: a >= 0)])


def _generalized_negative_binomial(g, mu, alpha, size):
    mu = np.broadcast_to(mu, size)
    alpha = np.broadcast_to(alpha, size)
    poisson_only = alpha == 0
    shape_ = np.where(poisson_only, 1.0, 1.0 / np.where(poisson_only, 1.0, alpha))
    lam = np.where(poisson_only, mu, g.gamma(shape_, mu * alpha + poisson_only, size=size))
    return g.poisson(lam, size=size)


def randint(low, high, shape=None, dtype=None, ctx=None, out=None):
    """Integers drawn uniformly from [low, high).

    Parameters
    ----------
    low, high : int
    shape : int or tuple of ints, optional
    dtype : {'int32', 'int64'}, default 'int32'
    ctx : Context, optional
    out : NDArray, optional
    """
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"randint: {name} must be an int, received {value!r}")
    if high <= low:
        raise ValueError(f"randint: high must be greater than low, received low={low}, "
                         f"high={high}")
    dtype = _dtype("randint", dtype, _INT_DTYPES, "int32")
    sample_shape = _sample_shape("randint", shape, out, True)
    samples = generator().integers(int(low), int(high), size=sample_shape, dtype=np.int64)
    return _deliver(samples, dtype, _context(ctx, ()), out)


def multinomial(data, shape=None, get_prob=False, out=None, dtype="int32"):
    """Category indices drawn from the distributions in the last axis of `data`.

    Parameters
    ----------
    data : NDArray
        Shape `(d1, ..., dn-1, k)`: each row holds k probabilities summing to 1.
    shape : int or tuple of ints, optional
        Samples per distribution; one (and no extra axis) by default.
    get_prob : bool, default False
        Also return the log-probability of each sample (dtype of `data`).
    out : NDArray, optional
    dtype : {'int32', 'uint8', 'float16', 'float32', 'float64'}, default 'int32'

    Returns
    -------
    NDArray of shape `(d1, ..., dn-1) + shape`, or `[samples, log_probs]` with `get_prob`.
    """
    if not isinstance(data, np.ndarray):
        raise TypeError(f"multinomial: data must be an NDArray, received {type(data).__name__}")
    if data.ndim < 1 or data.shape[-1] < 1:
        raise ValueError(f"multinomial: data needs a last axis of probabilities, received "
                         f"shape {data.shape}")
    dtype = _dtype("multinomial", dtype, _MULTINOMIAL_DTYPES, "int32")
    probs = np.asarray(data, dtype=np.float64)
    if np.any(probs < 0):
        raise ValueError("multinomial: data holds negative probabilities")
    sample_shape = _sample_shape("multinomial", shape, None, False)
    rows = probs.reshape(-1, probs.shape[-1])
    draws = int(np.prod(sample_shape, dtype=np.int64))
    cdf = np.cumsum(rows, axis=1)
    u = generator().random((rows.shape[0], draws))
    picks = np.minimum((u[:, :, None] >= cdf[:, None, :]).sum(axis=2), rows.shape[1] - 1)
    out_shape = probs.shape[:-1] + sample_shape
    ctx = _context(None, (data,))
    samples = _deliver(picks.reshape(out_shape), dtype, ctx, out)
    if not get_prob:
        return samples
    chosen = np.take_along_axis(rows, picks, axis=1).reshape(out_shape)
    with np.errstate(divide="ignore"):
        log_probs = np.log(chosen).astype(data.dtype)
    return [samples, _place(log_probs, ctx, copy=False)]


def shuffle(data, out=None):
    """A copy of `data` with its first axis randomly permuted (`data` is unchanged)."""
    if not isinstance(data, np.ndarray) or data.ndim < 1:
        raise TypeError(f"shuffle: data must be an NDArray with at least one axis, received "
                        f"{type(data).__name__} {getattr(data, 'shape', '')}")
    order = generator().permutation(data.shape[0])
    ctx = data.context if isinstance(data, NDArray) else current_context()
    return _deliver(np.asarray(data)[order], data.dtype, ctx, out)
