"""The executor's memory plan: which intermediates may share storage, decided once at bind.

`compile_plan` describes every intermediate as a `Value`: the step that
writes it (`born`), the last step that reads it (`last`; forward and backward
steps share one timeline), and the dying inputs whose memory it may take
over (in place, as the operator declares). `plan_values` walks that timeline
once, greedily, as MXNet's PlanMemory does: a new value takes over an input
that dies at its step, or else the best-fitting block a dead value left, or
else a new block. Blocks are laid end to end in one arena of bytes.

A `MemoryPool` owns that arena and the shared scratch of operator calls for
every executor that never runs interleaved with the others (a module's
buckets, an executor and the one `reshape` made from it): it is as large as
the largest plan, not the sum. A plan that needs more grows it; the others
then rebuild their views of the new arena on their next run.
"""
import bisect
import weakref

import numpy as np

from .ops.base import Scratch

ALIGN = 64            # bytes: every block starts on a cache line
MATCH_RANGE = 16      # a free block is reused for values from 1/16 to 16 times its size
FOREVER = float("inf")


class Value:
    """One intermediate array: its size, when it is written and when last read."""

    __slots__ = ("shape", "dtype", "nbytes", "born", "last", "candidates", "identity",
                 "block")

    def __init__(self, shape, dtype, born):
        self.shape, self.dtype = shape, dtype
        self.nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        self.born = born
        self.last = born           # raised by every read; FOREVER for graph outputs
        self.candidates = None     # values whose memory this one may take over
        self.identity = False      # it equals its candidate: share while both live
        self.block = None

    def may_take(self, values):
        if values:
            self.candidates = (self.candidates or []) + list(values)

    def read_at(self, time):
        if time > self.last:
            self.last = time


class Block:
    __slots__ = ("index", "size", "live", "values", "claimed", "offset")

    def __init__(self, index, size):
        self.index = index
        self.size = size
        self.live = []             # values stored here that are still to be read
        self.values = []           # every value ever stored here
        self.claimed = None        # the time a value last took this block over
        self.offset = 0


class Layout:
    """The result of planning: where every value lives and what that costs."""

    def __init__(self, blocks, values, freed):
        self.blocks = blocks
        self.values = values
        self.freed = freed                   # time -> blocks whose last value died then
        offset = 0
        for b in blocks:
            b.offset = offset
            offset += -(-b.size // ALIGN) * ALIGN
        self.arena_bytes = offset

    def live_bytes(self, time, values=None):
        """Bytes of values alive during `time` (written at or before it, read at or after)."""
        return sum(v.nbytes for v in (self.values if values is None else values)
                   if v.born <= time <= v.last)

    def peak(self):
        """(most bytes alive at once, a time when that happens): one sweep over blocks.

        Values sharing a block at the same time (in place, or a reshape's view)
        count once, at the size of the largest.
        """
        events = {}
        for block in self.blocks:
            for born, last, size in _segments(block.values):
                events[born] = events.get(born, 0) + size
                if last != FOREVER:
                    events[last + 1] = events.get(last + 1, 0) - size
        live, best = 0, (0, None)
        for t in sorted(events):
            live += events[t]
            if live > best[0]:
                best = (live, t)
        return best


def _segments(values):
    """A block's values merged into (born, last, bytes) runs of overlapping lifetimes."""
    runs = []
    for v in sorted(values, key=lambda v: v.born):
        if runs and v.born <= runs[-1][1]:
            born, last, size = runs[-1]
            runs[-1] = (born, max(last, v.last), max(size, v.nbytes))
        else:
            runs.append((v.born, v.last, v.nbytes))
    return runs


class _FreeBlocks:
    """Free blocks sorted by size, for best-fit lookups."""

    def __init__(self):
        self._sizes, self._blocks = [], []

    def add(self, block):
        i = bisect.bisect_left(self._sizes, block.size)
        self._sizes.insert(i, block.size)
        self._blocks.insert(i, block)

    def _pop(self, i):
        self._sizes.pop(i)
        return self._blocks.pop(i)

    def best_fit(self, nbytes):
        """The smallest free block holding nbytes, else the largest smaller one (to grow)."""
        i = bisect.bisect_left(self._sizes, nbytes)
        if i < len(self._sizes) and self._sizes[i] <= nbytes * MATCH_RANGE:
            return self._pop(i)
        if i > 0 and self._sizes[i - 1] * MATCH_RANGE >= nbytes:
            block = self._pop(i - 1)
            block.size = nbytes
            return block
        return None


def _take_over(value, time):
    """The block of a candidate this value may take over at `time`, or None."""
    for cand in value.candidates or ():
        block = cand.block
        if block is None or cand.nbytes != value.nbytes or block.claimed == time:
            continue
        if value.identity or all(v.last <= time for v in block.live):
            return block
    return None


def plan_values(values):
    """Assign every value a block; values are given in birth order."""
    blocks, free, freed = [], _FreeBlocks(), {}
    deaths = {}
    for v in values:
        if v.last != FOREVER:
            deaths.setdefault(v.last, []).append(v)
    times = sorted(set(v.born for v in values) | set(deaths))
    born_at = {}
    for v in values:
        born_at.setdefault(v.born, []).append(v)
    for t in times:
        for v in born_at.get(t, ()):
            block = _take_over(v, t)
            if block is not None:
                block.claimed = t
            else:
                block = free.best_fit(v.nbytes)
                if block is None:
                    block = Block(len(blocks), v.nbytes)
                    blocks.append(block)
            v.block = block
            block.live.append(v)
            block.values.append(v)
        for v in deaths.get(t, ()):
            block = v.block
            block.live.remove(v)
            if not block.live:
                free.add(block)
                freed.setdefault(t, []).append(block)
    return Layout(blocks, values, freed)


class MemoryPool:
    """The arena (and operator scratch) shared by executors that never run interleaved.

    Parameters
    ----------
    xp : module
        numpy or cupy: where the arena lives.
    """

    def __init__(self, xp):
        self.xp = xp
        self.arena = xp.empty(0, dtype=np.uint8)
        self.scratch = Scratch(xp)
        self._users = weakref.WeakSet()

    def reserve(self, user, nbytes):
        """Make the arena at least `nbytes`; returns the bytes this added.

        Every other user moves its views to the same offsets of the new arena
        (`rebase(old, new)`), so the old one is freed.
        """
        self._users.add(user)
        have = int(self.arena.size)
        if nbytes <= have:
            return 0
        old, self.arena = self.arena, self.xp.empty(int(nbytes), dtype=np.uint8)
        for other in list(self._users):
            if other is not user:
                other.rebase(old, self.arena)
        return int(nbytes) - have

    def view(self, offset, shape, dtype):
        """The arena's bytes at `offset` as a C-contiguous array of `shape` and `dtype`."""
        dtype = np.dtype(dtype)
        nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        return self.arena[offset:offset + nbytes].view(dtype).reshape(shape)

    def poison(self, offset, size):
        """Fill freed bytes with 0xFF (NaN in every float type): debugging aid."""
        self.arena[offset:offset + size].fill(255)

    @property
    def nbytes(self):
        return int(self.arena.size) + self.scratch.nbytes
