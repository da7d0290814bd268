"""Gradients between device workers on one machine: a shared buffer per worker.

With the `device` kvstore every worker needs every worker's gradients.
Through Ray's object store each exchange is a fresh object per worker: a
copy into newly allocated store memory (here the first touch of those pages
cost more than the copy), a fetch of each peer's object, and Ray's
bookkeeping per object (about 2 ms a worker at 0.4 MB).

Workers on one machine instead keep their gradients in a buffer of their own
that the peers map once: publishing is one copy into it, reading a peer's
gradient is zero-copy, and what travels through Ray is a small reference.
The buffer has two slots used in turn. A worker writes a slot again at its
exchange m+2 only after its own reduce of exchange m+1, which Ray starts
only once every worker has published exchange m+1, which each of them did
after its reduce of exchange m: so every read of that slot is over.

The buffer is an anonymous memory file (memfd) that peers open through
/proc/<pid>/fd: nothing is left in /dev/shm, even when an actor is killed.
The first exchanges carry the gradients by value and teach the workers what
they need: the first says how many workers take part, the second announces
the buffers, in the third each worker says whether it mapped all of its
peers'. From the fourth on, when all did, only references travel.
Elsewhere (workers on several machines, no memfd) gradients keep travelling
by value through the object store.
"""
import mmap
import os
import weakref

import numpy as np

from ..base import MXNetError
from ..context import to_numpy

_ALIGN = 64                 # bytes: each gradient starts on a cache line
# Fault the pages in when mapping, not in the first exchanges (a first touch cost
# 10-30 us a page on the VMs we measured: 0.1-0.3 s per 40 MB slot).
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)
_host = []                  # this process's host key, computed once


def host_key():
    """The kernel and process-id namespace of this process (None where /proc is missing).

    Processes with the same key can open each other's /proc/<pid>/fd entries.
    """
    if not _host:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                boot = f.read().strip()
            _host.append(f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}")
        except OSError:
            _host.append(None)
    return _host[0]


def slot_layout(grads):
    """((name, byte offset, shape, dtype str), ...) of `grads` in one slot, and its size."""
    entries, offset = [], 0
    for name, g in grads.items():
        entries.append((name, offset, tuple(g.shape), np.dtype(g.dtype).str))
        offset += -(-int(g.nbytes) // _ALIGN) * _ALIGN
    return tuple(entries), max(offset, _ALIGN)


def _slot_views(buffer, layout, slot_bytes):
    """Per slot, name -> an array over `buffer` (read-only where the buffer is)."""
    return [{name: np.ndarray(shape, np.dtype(dtype), buffer, slot * slot_bytes + offset)
             for name, offset, shape, dtype in layout} for slot in (0, 1)]


class BufferRef:
    """A published gradient left in its worker's buffer: which buffer and slot.

    mapped: whether the sender mapped every buffer of its last exchange on this
    channel (as ByValue.mapped).
    """

    __slots__ = ("key", "slot", "mapped")

    def __init__(self, key, slot, mapped=True):
        self.key, self.slot, self.mapped = key, slot, mapped

    def __reduce__(self):
        return BufferRef, (self.key, self.slot, self.mapped)


class ByValue:
    """Gradients sent whole, with what the peers need to learn about the buffers.

    buffer: the sender's buffer description (None: it has none yet); mapped:
    whether the sender mapped every buffer of its last exchange on this channel.
    """

    __slots__ = ("grads", "buffer", "mapped")

    def __init__(self, grads, buffer=None, mapped=False):
        self.grads, self.buffer, self.mapped = grads, buffer, mapped

    def __reduce__(self):
        return ByValue, (self.grads, self.buffer, self.mapped)


class _OwnBuffer:
    """This worker's two slots in a memory file its peers can map."""

    def __init__(self, layout, slot_bytes):
        self.layout, self.slot_bytes = layout, slot_bytes
        fd = os.memfd_create("raymod-gradients", os.MFD_CLOEXEC)
        self._closer = weakref.finalize(self, os.close, fd)
        os.ftruncate(fd, 2 * slot_bytes)
        self._map = mmap.mmap(fd, 2 * slot_bytes, flags=mmap.MAP_SHARED | _POPULATE)
        self.fd = fd
        self.key = (os.getpid(), os.fstat(fd).st_ino)
        self.slots = _slot_views(self._map, layout, slot_bytes)
        self.writes = 0

    def describe(self):
        return (host_key(), self.key, self.fd, self.slot_bytes, self.layout)

    def write(self, grads):
        """Copy `grads` into the next slot (one copy: the publication); return the slot."""
        slot = self.writes % 2
        self.writes += 1
        for name, view in self.slots[slot].items():
            np.copyto(view, to_numpy(grads[name]))
        return slot


class _PeerBuffer:
    """A peer's buffer mapped read-only into this process."""

    def __init__(self, description):
        _, (pid, inode), fd, slot_bytes, layout = description
        handle = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY)
        try:
            stat = os.fstat(handle)
            if stat.st_ino != inode or stat.st_size != 2 * slot_bytes:
                raise OSError(f"/proc/{pid}/fd/{fd} is not the announced gradient buffer")
            self._map = mmap.mmap(handle, 2 * slot_bytes, flags=mmap.MAP_SHARED | _POPULATE,
                                  prot=mmap.PROT_READ)
        finally:
            os.close(handle)
        self.slots = _slot_views(self._map, layout, slot_bytes)


class _Channel:
    """One buffer of this worker and what is known of its peers' mappings.

    A channel serves one slot layout and one number of workers n (always
    ranks 0..n-1): the slot-reuse argument above holds only among exchanges
    of the same workers, so a group sharing some of these workers (a
    shared_module with fewer devices) gets a channel of its own.
    """

    def __init__(self, own):
        self.own = own
        self.shared = False          # every peer maps our buffer: send references
        self.mapped_all = False      # our last gather here mapped every buffer


class GradientExchange:
    """One worker's side of the exchange: `publish` its gradients, `gather` everyone's."""

    def __init__(self):
        self._workers_of = {}        # executor key -> number of workers in its exchanges
        self._channels = {}          # (layout, n) -> _Channel
        self._by_key = {}            # own buffer key -> _Channel
        self._no_buffer = False      # memfd or /proc missing: always by value
        self._peers = {}             # peer buffer key -> _PeerBuffer
        self.counts = {"shared": 0, "by_value": 0}

    def publish(self, key, grads):
        """What this worker sends to the reduce for `grads` (name -> array) of `key`."""
        channel = self._channel(key, grads)
        if channel is None:
            return ByValue({n: to_numpy(g) for n, g in grads.items()})
        if channel.shared:
            return BufferRef(channel.own.key, channel.own.write(grads), channel.mapped_all)
        return ByValue({n: to_numpy(g) for n, g in grads.items()}, channel.own.describe(),
                       channel.mapped_all)

    def _channel(self, key, grads):
        n = self._workers_of.get(key)
        if n is None or self._no_buffer:
            return None              # the first exchange of `key` says how many take part
        layout, slot_bytes = slot_layout(grads)
        channel = self._channels.get((layout, n))
        if channel is None:
            if host_key() is None or not hasattr(os, "memfd_create"):
                self._no_buffer = True
                return None
            try:
                own = _OwnBuffer(layout, slot_bytes)
            except OSError:
                self._no_buffer = True
                return None
            channel = self._channels[(layout, n)] = self._by_key[own.key] = _Channel(own)
        return channel

    def gather(self, key, rank, published):
        """Per worker (in rank order), name -> its gradient; peers' are read in place.

        `published[rank]` is this worker's own message.
        """
        self._workers_of[key] = len(published)
        sources, mapped_all, all_ready = [], True, True
        for message in published:
            if isinstance(message, dict):          # gradients returned without `exchange`
                message = ByValue(message)
            if isinstance(message, BufferRef):
                sources.append(self._slot(message))
                self.counts["shared"] += 1
            elif isinstance(message, ByValue):
                sources.append(message.grads)
                self.counts["by_value"] += 1
                if message.buffer is None or not self._map(message.buffer):
                    mapped_all = False
            else:
                raise MXNetError(f"gradient exchange: expected published gradients, "
                                 f"received {type(message).__name__}")
            all_ready = all_ready and message.mapped
        own = published[rank]
        channel = self._by_key.get(own.key if isinstance(own, BufferRef) else
                                   own.buffer[1] if isinstance(own, ByValue) and own.buffer
                                   else None)
        if channel is not None:
            channel.mapped_all = mapped_all
            # Send references only once every worker said (in this exchange) that it
            # had mapped every buffer, ours included, and we have mapped theirs.
            channel.shared = all_ready and mapped_all
        return sources

    def _map(self, description):
        host, key = description[0], description[1]
        if key in self._by_key or key in self._peers:
            return True
        if host is None or host != host_key():
            return False
        try:
            self._peers[key] = _PeerBuffer(description)
        except (OSError, ValueError):
            return False
        return True

    def _slot(self, ref):
        channel = self._by_key.get(ref.key)
        if channel is not None:
            return channel.own.slots[ref.slot]
        peer = self._peers.get(ref.key)
        if peer is None:
            raise MXNetError(f"gradient exchange: a reference to buffer {ref.key} that this "
                             f"worker never mapped")
        return peer.slots[ref.slot]


def sum_into(xp, dst, parts):
    """dst = parts[0] + parts[1] + ..., left to right (the kvstore's order), in one pass each."""
    if xp is np:
        if len(parts) == 1:
            np.copyto(dst, parts[0])
            return
        np.add(parts[0], parts[1], out=dst)
        for part in parts[2:]:
            np.add(dst, part, out=dst)
        return
    dst[...] = xp.asarray(parts[0])
    for part in parts[1:]:
        dst += xp.asarray(part)
