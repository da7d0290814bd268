"""Devices: `Context`, `cpu(i)`, `gpu(i)` and the array module of each."""
import threading

import numpy as np

try:  # cupy is the optional `gpu` extra; raymod works without it.
    import cupy as _cupy
    CUPY_AVAILABLE = True
except Exception:  # ImportError, or a CUDA library that fails to load
    _cupy = None
    CUPY_AVAILABLE = False


def gpu_available():
    """True when cupy imports and sees at least one GPU."""
    if not CUPY_AVAILABLE:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


class Context:
    """A device: `Context('cpu', 0)` or `Context('gpu', 1)`, as MXNet's."""

    devtype2str = {1: "cpu", 2: "gpu", 3: "cpu_pinned", 5: "cpu_shared"}
    devstr2type = {v: k for k, v in devtype2str.items()}
    _default_ctx = threading.local()      # `with ctx:` scopes are per thread, as MXNet

    def __init__(self, device_type, device_id=0):
        if isinstance(device_type, Context):
            device_type, device_id = device_type.device_type, device_type.device_id
        if device_type not in self.devstr2type:
            raise ValueError(f"device_type must be one of {sorted(self.devstr2type)}, "
                             f"received {device_type!r}")
        self.device_type = device_type
        self.device_id = int(device_id)

    @property
    def device_typeid(self):
        return self.devstr2type[self.device_type]

    @property
    def xp(self):
        """The array module that computes on this device: numpy or cupy."""
        if self.device_type == "gpu":
            if not CUPY_AVAILABLE:
                raise RuntimeError(f"{self} needs cupy: pip install 'raymod[gpu]'")
            return _cupy
        return np

    def __eq__(self, other):
        return (isinstance(other, Context) and self.device_type == other.device_type
                and self.device_id == other.device_id)

    def __hash__(self):
        return hash((self.device_type, self.device_id))

    def __repr__(self):
        return f"{self.device_type}({self.device_id})"

    def __reduce__(self):
        return (Context, (self.device_type, self.device_id))

    def __enter__(self):
        self._old_ctx = getattr(Context._default_ctx, "value", None)
        Context._default_ctx.value = self
        return self

    def __exit__(self, *exc):
        Context._default_ctx.value = self._old_ctx

    @classmethod
    def default_ctx(cls):
        """The context of the innermost `with ctx:` block of this thread, else cpu(0)."""
        return getattr(cls._default_ctx, "value", None) or Context("cpu", 0)


def cpu(device_id=0):
    return Context("cpu", device_id)


def gpu(device_id=0):
    return Context("gpu", device_id)


def cpu_pinned(device_id=0):
    """MXNet's page-locked host memory context; raymod computes there with numpy."""
    return Context("cpu_pinned", device_id)


def num_gpus():
    """How many GPUs cupy sees (0 without cupy or a GPU), as mx.context.num_gpus()."""
    if not CUPY_AVAILABLE:
        return 0
    try:
        return int(_cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


def current_context():
    return Context.default_ctx()


def array_module(*arrays):
    """numpy or cupy, whichever owns the first cupy array given (chainer's get_array_module)."""
    if CUPY_AVAILABLE:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def to_numpy(a):
    """A host copy of a numpy or cupy array (numpy arrays pass through)."""
    if CUPY_AVAILABLE and isinstance(a, _cupy.ndarray):
        return _cupy.asnumpy(a)
    return np.asarray(a)
