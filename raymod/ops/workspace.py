"""The memory an operator works in besides its inputs and outputs.

A node's `Workspace` hands out three kinds of buffer:

- `buffer(key, ...)`: the node's own, kept across calls (small state such as
  BatchNorm's batch statistics, or anything costly to rebuild).
- `scratch(key, ...)`: a temporary for the current forward or backward call,
  from one `Scratch` every node of the executor (and of the executors sharing
  its memory pool) draws from, so temporaries of different operators share
  memory.
- `for_backward(key, ...)`: what forward fills for backward to read. When
  backward will run it comes from the pool's `Keep` (valid from this
  forward until the next forward of any executor of the pool, which never
  run interleaved), and `buffer(key)` finds it again in backward; when it
  will not (an inference bind), it is scratch.

A Workspace made by hand (no executor) keeps everything in its own buffers.
"""
import numpy as np

ALIGN = 64          # bytes: every region starts on a cache line


def _nbytes(shape, dtype):
    n = dtype.itemsize
    for d in shape:
        n *= int(d)
    return n


class Scratch:
    """Memory for temporaries that live during one operator call, shared by many nodes.

    The executor calls `reset()` (sets `top` to 0) before each operator call;
    `take` then hands out consecutive regions of one growing byte buffer.
    Once the first step has grown it, nothing more is allocated.
    """

    def __init__(self, xp=np):
        self.xp = xp
        self.buf = xp.empty(0, dtype=np.uint8)
        self.top = 0            # bytes handed out since the last reset

    def reset(self):
        self.top = 0

    def take(self, shape, dtype):
        dtype = np.dtype(dtype)
        start = self.top
        end = start + _nbytes(shape, dtype)
        if end > self.buf.size:
            # Earlier regions of this call keep the old buffer alive through their views.
            self.buf = self.xp.empty(end, dtype=np.uint8)
        self.top = -(-end // ALIGN) * ALIGN
        return self.buf[start:end].view(dtype).reshape(shape)

    @property
    def nbytes(self):
        return int(self.buf.size)


class Keep:
    """What forward leaves for backward, for every executor sharing one memory pool.

    Each forward starts a new epoch (`reset()`); `take(ws, key, ...)` hands out
    consecutive regions of one buffer, remembered per (workspace, key) so that
    backward finds them again (`find`). A region that repeats the last epoch's
    (same workspace, key, offset, shape and dtype) is the same array object, so
    the steady state allocates nothing. What does not fit gets an array of its
    own for this epoch, and the buffer grows at the next reset: it ends as large
    as the most any one forward keeps.
    """

    def __init__(self, xp=np):
        self.xp = xp
        self.buf = xp.empty(0, dtype=np.uint8)
        self.top = 0            # bytes this epoch has asked for
        self.epoch = 0
        self.regions = {}       # (id(ws), key) -> (epoch, offset, array)

    def reset(self):
        if self.top > self.buf.size:
            self.regions = {}                    # stale views would hold the old buffer
            self.buf = None
            self.buf = self.xp.empty(self.top, dtype=np.uint8)
        self.epoch += 1
        self.top = 0

    def find(self, ws, key):
        """The region `ws` took under `key` in this epoch, or None."""
        hit = self.regions.get((id(ws), key))
        return hit[2] if hit is not None and hit[0] == self.epoch else None

    def take(self, ws, key, shape, dtype):
        k = (id(ws), key)
        hit = self.regions.get(k)
        if hit is not None and hit[0] == self.epoch:
            return hit[2]                        # asked again in this forward, or backward
        dtype = np.dtype(dtype)
        start = self.top
        end = start + _nbytes(shape, dtype)
        self.top = -(-end // ALIGN) * ALIGN
        if end > self.buf.size:
            arr = self.xp.empty(tuple(shape), dtype=dtype)
        elif hit is not None and hit[1] == start and hit[2].shape == tuple(shape) and \
                hit[2].dtype == dtype and hit[2].base is self.buf:
            arr = hit[2]
        else:
            arr = self.buf[start:end].view(dtype).reshape(shape)
        self.regions[k] = (self.epoch, start, arr)
        return arr

    @property
    def nbytes(self):
        return int(self.buf.size)


class Workspace:
    """Per-node memory: its own buffers, shared scratch, and what backward needs.

    Parameters
    ----------
    xp : module, default numpy
    rng : generator, optional
        The executor's seeded generator (Dropout masks).
    scratch : Scratch, optional
        Shared temporaries; without one, `scratch` uses the node's own buffers.
    keep : Keep, optional
        Shared forward-to-backward memory; without one, `for_backward` uses the
        node's own buffers.
    keeps_for_backward : bool, default True
        Whether backward will run after forward (False in inference binds).
    """

    # Slots, and dicts made on first use: an executor holds one Workspace per node,
    # for every bucket of a module.
    __slots__ = ("xp", "rng", "scratch_arena", "keep_arena", "keeps_for_backward", "_saved",
                 "_own")

    def __init__(self, xp=np, rng=None, scratch=None, keeps_for_backward=True, keep=None):
        self.xp = xp
        self.rng = rng
        self.scratch_arena = scratch
        self.keep_arena = keep
        self.keeps_for_backward = keeps_for_backward
        self._saved = self._own = None

    @property
    def saved(self):
        """A dict: what forward leaves for backward (small values, flags)."""
        if self._saved is None:
            self._saved = {}
        return self._saved

    @property
    def _buffers(self):
        """{key: array} of the node's own buffers and of what it keeps in this epoch."""
        out = dict(self._own or {})
        if self.keep_arena is not None:
            me = id(self)
            out.update({k[1]: v[2] for k, v in self.keep_arena.regions.items()
                        if k[0] == me and v[0] == self.keep_arena.epoch})
        return out

    def buffer(self, key, shape, dtype):
        """A buffer of this shape and dtype, allocated once and reused while they hold.

        In backward, what forward kept under `key` (`for_backward`) is found here.
        """
        if self.keep_arena is not None:
            kept = self.keep_arena.find(self, key)
            if kept is not None:
                return kept
        if self._own is None:
            self._own = {}
        buf = self._own.get(key)
        if buf is not None and buf.shape == tuple(shape) and buf.dtype == dtype:
            return buf          # the steady state: no conversion, no allocation
        buf = self.xp.empty(tuple(int(d) for d in shape), dtype=dtype)
        self._own[key] = buf
        return buf

    def scratch(self, key, shape, dtype):
        """A temporary for this call only (contents undefined; call once per key per call)."""
        if self.scratch_arena is None:
            return self.buffer(("scratch", key), shape, dtype)
        return self.scratch_arena.take(shape, dtype)

    def for_backward(self, key, shape, dtype):
        """A buffer forward fills for backward: kept only when backward will run."""
        if not self.keeps_for_backward:
            return self.scratch(key, shape, dtype)
        if self.keep_arena is None:
            return self.buffer(key, shape, dtype)
        return self.keep_arena.take(self, key, shape, dtype)

    def nbytes(self):
        """Bytes of the node's own buffers (what it keeps in the pool is the pool's)."""
        return sum(int(b.nbytes) for b in (self._own or {}).values())
