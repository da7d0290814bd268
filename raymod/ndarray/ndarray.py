"""`NDArray`: a numpy array that also answers MXNet's NDArray methods.

MXNet code calls `asnumpy()`, `asscalar()`, `context`, `copyto`,
`as_in_context` and `wait_to_read` on arrays; numpy code expects a plain
`numpy.ndarray`. `NDArray` subclasses `numpy.ndarray` so both work: every
numpy function accepts it, and numpy operations on it return NDArrays that
keep its context.

An NDArray always lives in host memory. Its `context` is a label (MXNet's
unit tests use `cpu(0)` and `cpu(1)` as two "devices" on one machine).
Moving an array to a GPU context returns a cupy array on that GPU, since a
numpy subclass cannot hold device memory.
"""
import warnings
import weakref

import numpy as np

from ..context import Context, array_module, current_context, to_numpy

_CPU0 = Context("cpu", 0)
_HOST_TYPES = ("cpu", "cpu_pinned", "cpu_shared")
DEFAULT_DTYPE = np.dtype(np.float32)  # MXNet's mx_real_t


class NDArray(np.ndarray):
    """A host array with MXNet's NDArray methods (see the module docstring).

    Create one with `array`, `zeros`, `ones`, `empty`, `full`, or view any
    numpy array: `np_array.view(NDArray)`.
    """

    def __array_finalize__(self, obj):
        # Views, copies and ufunc results inherit the context of their source.
        self._ctx = getattr(obj, "_ctx", _CPU0)

    def __reduce__(self):
        reconstruct, args, state = super().__reduce__()
        return reconstruct, args, (state, self._ctx)

    def __setstate__(self, state):
        nd_state, self._ctx = state
        super().__setstate__(nd_state)

    def __repr__(self):
        shape = "x".join(str(d) for d in self.shape)
        return f"\n{np.asarray(self)!s}\n<NDArray {shape} @{self._ctx}>"

    # ------------------------------------------------------------------ MXNet's API

    @property
    def context(self):
        """The `Context` this array belongs to (`cpu(0)` unless moved)."""
        return self._ctx

    ctx = context

    @property
    def stype(self):
        """Storage type: always `'default'` (dense); raymod has no sparse arrays."""
        return "default"

    def asnumpy(self):
        """A plain `numpy.ndarray` copy of this array."""
        return np.array(self.view(np.ndarray), copy=True)

    def asscalar(self):
        """The single element of a size-1 array, as a numpy scalar."""
        if self.size != 1:
            raise ValueError(f"The current array is not a scalar: asscalar() needs "
                             f"exactly one element, this array has shape {self.shape}")
        return self.view(np.ndarray).reshape(-1)[0]

    def copyto(self, other):
        """Copy this array into `other` and return it.

        Parameters
        ----------
        other : NDArray, numpy.ndarray, cupy.ndarray or Context
            An array of the same shape (values are cast to its dtype), or a
            context: a new array is made there (an NDArray on a CPU context,
            a cupy array on a GPU context).
        """
        if isinstance(other, Context):
            return _place(self.view(np.ndarray), other, copy=True)
        if other is self:
            warnings.warn("You are attempting to copy an array to itself", RuntimeWarning,
                          stacklevel=2)
            return False
        if not hasattr(other, "shape") or not hasattr(other, "__setitem__"):
            raise TypeError(f"copyto does not support type {type(other).__name__}: "
                            "expected an array or a Context")
        if tuple(other.shape) != self.shape:
            raise ValueError(f"copyto: target shape {tuple(other.shape)} does not match "
                             f"source shape {self.shape}")
        if isinstance(other, np.ndarray):
            np.copyto(other, self, casting="unsafe")
        else:  # a cupy array: host-to-device copy
            other[...] = array_module(other).asarray(self.view(np.ndarray))
        return other

    def as_in_context(self, context):
        """This array if it already is on `context`, else a copy there."""
        if not isinstance(context, Context):
            raise TypeError(f"as_in_context expects a Context, received "
                            f"{type(context).__name__}")
        if context == self._ctx:
            return self
        return self.copyto(context)

    def wait_to_read(self):
        """No-op: numpy computes eagerly, so the value is always ready."""

    def wait_to_write(self):
        """No-op, as `wait_to_read`."""

    def slice_axis(self, axis, begin, end):
        """A view of `[begin, end)` along `axis` (MXNet's `slice_axis`; `end=None` = to the end)."""
        return slice_axis(self, axis, begin, end)


def _as_context(ctx):
    if ctx is None:
        return current_context()
    if not isinstance(ctx, Context):
        raise TypeError(f"ctx must be a Context or None, received {type(ctx).__name__}")
    return ctx


def _place(host, ctx, copy):
    """`host` (a plain numpy array) as an array of context `ctx`."""
    if ctx.device_type in _HOST_TYPES:
        out = np.array(host, copy=True) if copy else host
        out = out.view(NDArray)
        out._ctx = ctx
        return out
    xp = ctx.xp  # raises a clear error when cupy is missing
    with xp.cuda.Device(ctx.device_id):
        return xp.array(host, copy=True)


def _as_shape(shape):
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool)
            for d in _iterable(shape)):
        raise TypeError(f"shape must be an int or a tuple of ints, received {shape!r}")
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"shape must not have negative dimensions, received {shape}")
    return shape


def _iterable(value):
    try:
        return iter(value)
    except TypeError:
        return iter([None])  # not iterable: fails the int check


def _as_dtype(dtype, default=DEFAULT_DTYPE):
    if dtype is None:
        return default
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected a numpy dtype or its name, received {dtype!r}") from None


# ---------------------------------------------------------------------- constructors

def array(source_array, ctx=None, dtype=None):
    """A new array holding a copy of `source_array`.

    As in MXNet 1.x: an NDArray source keeps its dtype; any other source
    (numpy array, list, scalar, cupy array) becomes float32 unless `dtype`
    is given.

    Parameters
    ----------
    source_array : array_like
    ctx : Context, optional
        Defaults to the current context (`cpu(0)`).
    dtype : str or numpy.dtype, optional
    """
    ctx = _as_context(ctx)
    if isinstance(source_array, NDArray):
        dtype = _as_dtype(dtype, default=source_array.dtype)
        host = source_array.view(np.ndarray)
    else:
        dtype = _as_dtype(dtype)
        try:
            host = to_numpy(source_array)  # cupy arrays come to the host
        except (TypeError, ValueError) as err:
            raise TypeError(f"source_array must be an array-like object, received "
                            f"{type(source_array).__name__}: {err}") from None
        if host.dtype == object:
            raise TypeError("source_array must be an array-like object of numbers, "
                            f"received {type(source_array).__name__} of Python objects")
    return _place(host.astype(dtype, copy=True), ctx, copy=False)


def empty(shape, ctx=None, dtype=None):
    """An uninitialised array of `shape` (float32 unless `dtype`)."""
    ctx = _as_context(ctx)
    return _place(np.empty(_as_shape(shape), _as_dtype(dtype)), ctx, copy=False)


def zeros(shape, ctx=None, dtype=None, **kwargs):
    """An array of zeros (float32 unless `dtype`). `stype='default'` is the only storage."""
    _check_stype(kwargs)
    ctx = _as_context(ctx)
    return _place(np.zeros(_as_shape(shape), _as_dtype(dtype)), ctx, copy=False)


def ones(shape, ctx=None, dtype=None, **kwargs):
    """An array of ones (float32 unless `dtype`)."""
    _check_stype(kwargs)
    ctx = _as_context(ctx)
    return _place(np.ones(_as_shape(shape), _as_dtype(dtype)), ctx, copy=False)


def full(shape, val, ctx=None, dtype=DEFAULT_DTYPE, out=None):
    """An array of `shape` filled with `val`; with `out`, fill `out` instead and return it."""
    if out is not None:
        out[...] = val
        return out
    ctx = _as_context(ctx)
    return _place(np.full(_as_shape(shape), val, _as_dtype(dtype)), ctx, copy=False)


def arange(start, stop=None, step=1.0, repeat=1, infer_range=None, ctx=None,
           dtype=DEFAULT_DTYPE):
    """Evenly spaced values in `[start, stop)`, each `repeat` times (MXNet's `nd.arange`)."""
    del infer_range  # deprecated in MXNet, ignored there too
    if stop is None:
        start, stop = 0, start
    values = np.arange(start, stop, step, dtype=_as_dtype(dtype))
    if repeat != 1:
        values = np.repeat(values, int(repeat))
    return _place(values, _as_context(ctx), copy=False)


def _check_stype(kwargs):
    stype = kwargs.pop("stype", None)
    if stype not in (None, "default"):
        raise ValueError(f"raymod arrays are dense: stype must be 'default', received {stype!r}")
    if kwargs:
        raise TypeError(f"unexpected keyword arguments {sorted(kwargs)}")


# ---------------------------------------------------------------------- array functions

def concat(*data, dim=1):
    """Join arrays along axis `dim` (MXNet's `nd.concat`; the default joins columns)."""
    if not data:
        raise ValueError("concat needs at least one array")
    first = data[0]
    ndim = np.ndim(first)
    if not -ndim <= dim < ndim:
        raise ValueError(f"concat: dim {dim} is out of range for arrays of {ndim} dimensions")
    axis = dim % ndim
    for i, arr in enumerate(data[1:], start=1):
        shape_a, shape_b = np.shape(first), np.shape(arr)
        if len(shape_b) != ndim or any(a != b for k, (a, b) in enumerate(zip(shape_a, shape_b))
                                       if k != axis):
            raise ValueError(f"concat: array {i} has shape {shape_b}, incompatible with "
                             f"array 0's shape {shape_a} along dims other than {dim}")
    ctx = first.context if isinstance(first, NDArray) else _CPU0
    joined = np.concatenate([np.asarray(a) for a in data], axis=axis)
    return _place(joined, ctx, copy=False)


def concatenate(arrays, axis=0, always_copy=True):
    """Join a list of arrays along `axis` (MXNet's `nd.concatenate`)."""
    if not always_copy and len(arrays) == 1:
        return arrays[0]
    return concat(*arrays, dim=axis)


def slice_axis(data, axis, begin, end):
    """A view of `data` restricted to `[begin, end)` along `axis` (`end=None`: to the end)."""
    ndim = np.ndim(data)
    if not -ndim <= axis < ndim:
        raise ValueError(f"slice_axis: axis {axis} is out of range for an array of "
                         f"{ndim} dimensions")
    index = [slice(None)] * ndim
    index[axis] = slice(begin, end)
    return data[tuple(index)]


_PENDING_WORK = weakref.WeakSet()


def register_pending_work(source):
    """Make `waitall` wait for `source` too: an object whose `wait_all()` returns when
    the work it queued (e.g. calls to Ray device workers) has finished."""
    _PENDING_WORK.add(source)


def waitall():
    """Wait until all queued work has finished (MXNet's `nd.waitall`).

    numpy computes eagerly; the work that can still be queued is the calls a
    module deferred to its Ray device workers. Their errors raise here.
    """
    for source in list(_PENDING_WORK):
        source.wait_all()
