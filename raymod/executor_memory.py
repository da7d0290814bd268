"""The executor's memory plan: which intermediates may share storage, decided once at bind.

`compile_plan` describes every intermediate as a `Value`: the step that
writes it (`born`), the last step that reads it (`last`; forward and backward
steps share one timeline), and the dying inputs whose memory it may take
over (in place, as the operator declares). `plan_values` walks that timeline
once, greedily, as MXNet's PlanMemory does: a new value takes over an input
that dies at its step, or else the best-fitting free interval of one arena
of bytes (dead values' regions, merged with free neighbours), or else the
arena's end.

A `MemoryPool` owns that arena and the shared scratch of operator calls for
every executor that never runs interleaved with the others (a module's
buckets, an executor and the one `reshape` made from it): it is as large as
the largest plan, not the sum. A plan that needs more grows it; the others
then rebuild their views of the new arena on their next run.
"""
import bisect
import weakref

import numpy as np

from .ops.base import Keep, Scratch

ALIGN = 64            # bytes: every region starts on a cache line
FOREVER = float("inf")


class Value:
    """One intermediate array: its size, when it is written and when last read."""

    __slots__ = ("shape", "dtype", "nbytes", "born", "last", "candidates", "identity",
                 "block")

    def __init__(self, shape, dtype, born):
        self.shape, self.dtype = shape, dtype
        nbytes = dtype.itemsize
        for d in shape:
            nbytes *= d
        self.nbytes = nbytes
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
    """A region of the arena: one value, or several sharing it in place."""

    __slots__ = ("offset", "size", "live", "values", "claimed", "born", "last")

    def __init__(self, offset, size, born):
        self.offset, self.size = offset, size
        self.live = []             # values stored here that are still to be read
        self.values = []           # every value stored here
        self.claimed = None        # the time a value last took this region over
        self.born, self.last = born, born


class Layout:
    """The result of planning: where every value lives and what that costs."""

    def __init__(self, blocks, values, freed, arena_bytes):
        self.blocks = blocks
        self.values = values
        self.freed = freed                   # time -> regions whose last value died then
        self.arena_bytes = arena_bytes

    def peak(self):
        """(most bytes alive at once, a time when that happens): one sweep over regions.

        Values sharing a region at once (in place, or a reshape's view) count once.
        """
        events = {}
        for b in self.blocks:
            events[b.born] = events.get(b.born, 0) + b.size
            if b.last != FOREVER:
                events[b.last + 1] = events.get(b.last + 1, 0) - b.size
        live, best = 0, (0, None)
        for t in sorted(events):
            live += events[t]
            if live > best[0]:
                best = (live, t)
        return best


class _FreeSpace:
    """The arena's free intervals: best fit by size, neighbours merged when freed."""

    def __init__(self):
        self.by_size = []          # sorted (size, offset)
        self.at = {}               # offset -> size of the free interval starting there
        self.ending = {}           # offset + size -> offset
        self.top = 0               # the arena's size so far

    def _add(self, offset, size):
        bisect.insort(self.by_size, (size, offset))
        self.at[offset] = size
        self.ending[offset + size] = offset

    def _remove(self, offset, size):
        del self.by_size[bisect.bisect_left(self.by_size, (size, offset))]
        del self.at[offset]
        del self.ending[offset + size]

    def take(self, size):
        """The offset of `size` free bytes: the smallest interval that holds them (the
        rest stays free), else the end of the arena, which grows."""
        i = bisect.bisect_left(self.by_size, (size, -1))
        if i < len(self.by_size):
            have, offset = self.by_size[i]
            self._remove(offset, have)
            if have > size:
                self._add(offset + size, have - size)
            return offset
        offset = self.ending.get(self.top, self.top)     # a free tail grows in place
        if offset != self.top:
            self._remove(offset, self.top - offset)
        self.top = offset + size
        return offset

    def give(self, offset, size):
        before = self.ending.get(offset)
        if before is not None:
            self._remove(before, offset - before)
            size += offset - before
            offset = before
        after = self.at.get(offset + size)
        if after is not None:
            self._remove(offset + size, after)
            size += after
        self._add(offset, size)


def _take_over(value, time):
    """The region of a candidate this value may take over at `time`, or None."""
    for cand in value.candidates or ():
        block = cand.block
        if block is None or cand.nbytes != value.nbytes or block.claimed == time:
            continue
        if value.identity or all(v.last <= time for v in block.live):
            return block
    return None


def plan_values(values):
    """Give every value a region of the arena; values are given in birth order.

    Time by time: each value born takes over a dying input's region where its op
    computes in place, or else the best-fitting free interval (the arena grows
    when none fits); then the regions whose last value died are freed.
    """
    blocks, space, freed = [], _FreeSpace(), {}
    deaths, born_at = {}, {}
    for v in values:
        born_at.setdefault(v.born, []).append(v)
        if v.last != FOREVER:
            deaths.setdefault(v.last, []).append(v)
    for t in sorted(set(born_at) | set(deaths)):
        for v in born_at.get(t, ()):
            block = _take_over(v, t)
            if block is not None:
                block.claimed = t
            else:
                size = -(-max(v.nbytes, 1) // ALIGN) * ALIGN
                block = Block(space.take(size), size, t)
                blocks.append(block)
            v.block = block
            block.live.append(v)
            block.values.append(v)
            block.last = max(block.last, v.last)
        for v in deaths.get(t, ()):
            block = v.block
            block.live.remove(v)
            if not block.live:
                space.give(block.offset, block.size)
                freed.setdefault(t, []).append(block)
    return Layout(blocks, values, freed, space.top)


class MemoryPool:
    """The arena, operator scratch and kept memory of executors that never run interleaved.

    Parameters
    ----------
    xp : module
        numpy or cupy: where the arena lives.
    """

    def __init__(self, xp):
        self.xp = xp
        self.arena = xp.empty(0, dtype=np.uint8)
        self.scratch = Scratch(xp)       # operator temporaries, one call at a time
        self.keep = Keep(xp)             # what one forward leaves for its backward
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
        return int(self.arena.size) + self.scratch.nbytes + self.keep.nbytes
