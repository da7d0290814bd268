"""`rm.kv`: MXNet's KVStore for the Module API.

`local` (and `device`) keep a master copy of each key on the driver: `push`
sums the values it is given and, when an optimizer is set, applies it once to
the master copy; `pull` copies the master into each output. The dist types
run the same store in parameter-server actors (raymod.parallel.dist_kvstore).
"""
import numpy as np

from ..base import MXNetError
from ..context import array_module, to_numpy

KVSTORE_TYPES = ("local", "device", "local_allreduce_cpu", "local_allreduce_device",
                 "dist_sync", "dist_async", "dist_device_sync", "dist_device_async", "nccl")


def _keys_values(key, value):
    """Normalise (key, value) and (list of keys, list of values) call forms."""
    if isinstance(key, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(key) != len(value):
            raise ValueError(f"{len(key)} keys need a list of {len(key)} values")
        return list(key), list(value)
    return [key], [value]


class KVStore:
    """A key-value store of arrays with an optional updater applied on push."""

    def __init__(self, kvstore_type="local"):
        if kvstore_type not in KVSTORE_TYPES:
            raise ValueError(f"kvstore type must be one of {KVSTORE_TYPES}, "
                             f"received {kvstore_type!r}")
        self._type = kvstore_type
        self._store = {}
        self._updater = None
        self._optimizer = None
        self._compression = None

    @property
    def type(self):
        return self._type

    @property
    def rank(self):
        return 0

    @property
    def num_workers(self):
        return 1

    def is_capable(self, capability):
        """'optimizer': whether the store runs the optimizer itself.

        raymod's `device` store only sums: every device then applies the same
        update to the summed gradient (on Ray, workers exchange gradients
        among themselves and never through the driver). MXNet's `device`
        answers True and updates in the store; the numbers are the same.
        """
        if capability == "optimizer":
            return self._type not in ("device", "local_allreduce_device", "nccl")
        return False

    def init(self, key, value):
        for k, v in zip(*_keys_values(key, value)):
            if k in self._store:
                raise MXNetError(f"kvstore: key {k!r} is already initialized")
            self._store[k] = np.array(to_numpy(v), copy=True)

    def broadcast(self, key, value, out):
        self.init(key, value)
        self.pull(key, out)

    def _sum(self, values):
        """A host copy of the sum of one value or a list of them (one per device)."""
        if not isinstance(values, (list, tuple)):
            values = [values]
        total = np.array(to_numpy(values[0]), copy=True)
        for v in values[1:]:
            total += to_numpy(v)
        return total

    def push(self, key, value, priority=0):
        for k, v in zip(*_keys_values(key, value)):
            stored = self._stored(k)
            summed = self._sum(v)
            if summed.shape != stored.shape:
                raise MXNetError(f"kvstore push {k!r}: value shape {summed.shape} does not "
                                 f"match the stored shape {stored.shape}")
            if self._updater is not None:
                self._updater(k, summed, stored)
            else:
                stored[...] = summed

    def pull(self, key, out=None, priority=0, ignore_sparse=True):
        if out is None:
            raise ValueError("kvstore pull needs `out`")
        for k, o in zip(*_keys_values(key, out)):
            value = self.value(k)
            for dst in (o if isinstance(o, (list, tuple)) else [o]):
                dst[...] = array_module(dst).asarray(value)

    def pushpull(self, key, value, out=None, priority=0):
        self.push(key, value, priority)
        self.pull(key, value if out is None else out, priority)

    def value(self, key):
        """The stored master copy of `key` (raymod addition, read-only use)."""
        return self._stored(key)

    def _stored(self, k):
        if k not in self._store:
            raise MXNetError(f"kvstore: key {k!r} was not initialized; call init first")
        return self._store[k]

    def state(self):
        """A copy of what the store holds (values, optimizer states and counters), so a
        replay after a lost Ray worker starts from it (raymod.parallel.recovery)."""
        import copy
        updater = self._updater
        return copy.deepcopy({
            "store": self._store,
            "updater": None if updater is None else
            {k: v for k, v in vars(updater).items() if k != "optimizer"},
            "optimizer": None if self._optimizer is None else vars(self._optimizer)})

    def set_state(self, state):
        """Go back to a `state()` (the optimizer object stays the same one)."""
        import copy
        state = copy.deepcopy(state)
        self._store = state["store"]
        if state["updater"] is not None:
            vars(self._updater).update(state["updater"])
        if state["optimizer"] is not None:
            vars(self._optimizer).update(state["optimizer"])

    def set_optimizer(self, optimizer):
        from ..optimizer import get_updater
        self._optimizer = optimizer
        self._updater = get_updater(optimizer)

    def _set_updater(self, updater):
        self._updater = updater

    def set_gradient_compression(self, compression_params):
        self._compression = dict(compression_params)

    def save_optimizer_states(self, fname, dump_optimizer=False):
        from ..fileio import atomic_write_bytes
        if self._updater is None:
            raise MXNetError("Cannot save states before set_optimizer")
        atomic_write_bytes(fname, self._updater.get_states(dump_optimizer))

    def load_optimizer_states(self, fname):
        if self._updater is None:
            raise MXNetError("Cannot load states before set_optimizer")
        from ..fileio import read_bytes
        self._updater.set_states(read_bytes(fname))


def create(name="local"):
    """A KVStore of type `name` (MXNet's names)."""
    if not isinstance(name, str):
        raise TypeError(f"kvstore name must be a string, received {type(name).__name__}")
    if name.startswith("dist"):
        from .dist_kvstore import DistKVStore
        return DistKVStore(name)
    return KVStore(name)
