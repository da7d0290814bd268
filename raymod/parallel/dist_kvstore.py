"""`dist_sync` / `dist_async` KVStores: parameter-server actors holding shards of the keys.

Each server actor owns the keys that hash to it, keeps their master values
and, once `set_optimizer` is called, their optimizer states. In a step the
device workers' gradients go to the servers as ObjectRefs; a server sums
them for its keys (sync) or applies them one by one (async), updates, and
returns the new values, which every worker copies in. Servers are spread
over the cluster's nodes.
"""
import weakref
import zlib

import numpy as np

from ..base import MXNetError
from ..context import to_numpy
from .kvstore import KVStore, _keys_values
from .runtime import ensure_ray


class _ParameterServer:
    """One shard: master values and optimizer state for the keys it owns."""

    def __init__(self, sync):
        self._sync = sync
        self._store = {}
        self._updater = None

    def init(self, key, value):
        self._store[key] = np.array(value, copy=True)

    def set_optimizer(self, optimizer):
        from ..optimizer import get_updater
        self._updater = get_updater(optimizer)

    def _apply(self, key, grad):
        stored = self._store[key]
        if self._updater is not None:
            self._updater(key, grad, stored)
        else:
            stored[...] = grad

    def push(self, key, value):
        self._apply(key, np.array(value, copy=True))

    def pull(self, keys):
        return {k: self._store[k] for k in keys}

    def push_pull(self, keys, *grads_per_worker):
        """Reduce the workers' gradients for `keys`, update, return the new values."""
        for key in keys:
            present = [g[key] for g in grads_per_worker if key in g]
            if not present:
                continue
            if self._sync:
                # one pass for the first two (a copy and then += read the first twice)
                total = np.array(present[0], copy=True) if len(present) == 1 else \
                    np.add(present[0], present[1])
                for g in present[2:]:
                    total += g
                self._apply(key, total)
            else:                       # async: each worker's push is applied on its own
                for g in present:
                    self._apply(key, np.array(g, copy=True))
        return {k: self._store[k] for k in keys}

    def get_states(self, dump_optimizer=False):
        return None if self._updater is None else self._updater.get_states(dump_optimizer)

    def snapshot(self):
        """Values and optimizer (pickled as the call returns), for a replay after a lost
        device worker to start from."""
        return {"store": self._store, "updater": self._updater}

    def restore(self, state):
        import copy
        self._store = copy.deepcopy(state["store"])
        self._updater = copy.deepcopy(state["updater"])

    def node_id(self):
        """The Ray node this shard runs on (servers are spread over the nodes)."""
        import ray
        return ray.get_runtime_context().get_node_id()

    def set_states(self, states):
        if self._updater is None:
            raise MXNetError("load optimizer states after set_optimizer")
        self._updater.set_states(states)


class DistKVStore(KVStore):
    """MXNet's dist kvstore API over parameter-server actors.

    The master values live on the servers: `init`, `push` and `value` go to
    the server owning the key; `pull`, `pushpull` and `broadcast` are the
    local store's, built on those.
    """

    def __init__(self, kvstore_type="dist_sync", num_servers=None):
        if kvstore_type not in ("dist_sync", "dist_async", "dist_device_sync",
                                "dist_device_async"):
            raise ValueError(f"unknown dist kvstore type {kvstore_type!r}")
        super().__init__(kvstore_type)
        ray = ensure_ray()
        self._ray = ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        num_servers = num_servers or max(1, len(nodes))
        server_cls = ray.remote(num_cpus=0)(_ParameterServer)
        # Server i on node i (mod the node count), pinned: Ray's SPREAD, and even
        # soft node affinity, left zero-CPU servers on one node in tests.
        self._servers = [server_cls.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            nodes[i % len(nodes)], soft=False) if nodes else "SPREAD").remote(
            "async" not in kvstore_type) for i in range(num_servers)]
        # The servers go with the store (on del, at exit), like a module's workers.
        self._finalizer = weakref.finalize(self, _kill, ray, list(self._servers))

    def _server_of(self, key):
        index = zlib.crc32(str(key).encode()) % len(self._servers)
        return self._servers[index]

    def shards(self, names):
        """[(server, keys)] for the servers owning some of `names`."""
        groups = {}
        for name in names:
            groups.setdefault(id(self._server_of(name)), (self._server_of(name), []))[1].append(name)
        return list(groups.values())

    def state(self):
        """The servers' snapshots (ObjectRefs owned by the driver), taken now."""
        refs = [s.snapshot.remote() for s in self._servers]
        self._ray.wait(refs, num_returns=len(refs))
        return refs

    def set_state(self, state):
        """Every server back to `state()`; a lost server has no replica to come from."""
        try:
            self._ray.get([s.restore.remote(ref) for s, ref in zip(self._servers, state)])
        except (self._ray.exceptions.RayActorError, self._ray.exceptions.RayTaskError) as err:
            from .errors import WorkerError
            raise WorkerError(f"a {self.type} parameter server was lost, and its keys have "
                              f"no replica to recover from: {err}") from None

    def init(self, key, value):
        keys, values = _keys_values(key, value)
        self._ray.get([self._server_of(k).init.remote(k, to_numpy(v))
                       for k, v in zip(keys, values)])

    def push(self, key, value, priority=0):
        self._ray.get([self._server_of(k).push.remote(k, self._sum(v))
                       for k, v in zip(*_keys_values(key, value))])

    def value(self, key):
        return self._ray.get(self._server_of(key).pull.remote([key]))[key]

    def set_optimizer(self, optimizer):
        self._ray.get([s.set_optimizer.remote(optimizer) for s in self._servers])

    def set_gradient_compression(self, compression_params):
        raise NotImplementedError("gradient compression is not implemented for dist kvstores")

    def exchange(self, scheduler, key, names, grad_handles):
        """One step: servers reduce the workers' gradient refs; workers copy the results."""
        weight_refs = [server.push_pull.remote(keys, *grad_handles)
                       for server, keys in self.shards(names)]
        scheduler.track(weight_refs)       # a server's failure surfaces at the next wait
        scheduler.submit_now("set_weights", key, *weight_refs, n=len(grad_handles))

    def save_optimizer_states(self, fname, dump_optimizer=False):
        """All shards' optimizer states in one file (MXNet refused this for dist stores)."""
        import json
        from ..fileio import atomic_write_bytes
        blobs = self._ray.get([s.get_states.remote(dump_optimizer) for s in self._servers])
        header = json.dumps([len(b or b"") for b in blobs]).encode()
        atomic_write_bytes(fname, len(header).to_bytes(8, "little") + header +
                           b"".join(b or b"" for b in blobs))

    def load_optimizer_states(self, fname):
        import json
        from ..fileio import read_bytes
        data = read_bytes(fname)
        n = int.from_bytes(data[:8], "little")
        sizes = json.loads(data[8:8 + n])
        if len(sizes) != len(self._servers):
            raise MXNetError(f"{fname} holds {len(sizes)} shards, this kvstore has "
                             f"{len(self._servers)} servers")
        offset, refs = 8 + n, []
        for server, size in zip(self._servers, sizes):
            if size:
                refs.append(server.set_states.remote(data[offset:offset + size]))
            offset += size
        self._ray.get(refs)

    def close(self):
        """Stop the parameter servers (idempotent; also done when the store is collected)."""
        self._finalizer()
        self._servers = []


def _kill(ray, servers):
    if not ray.is_initialized():
        return
    for server in servers:
        try:
            ray.kill(server)
        except Exception:  # noqa: BLE001 - already dead
            pass
