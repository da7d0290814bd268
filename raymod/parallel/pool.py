"""Warm device workers: a module's Ray actors outlive it, for the next module to lease.

Starting a gang of actors (a placement group, one actor per device, numpy
imported in each) takes about a second; a notebook or a test suite makes
many modules on the same contexts. So a released gang is reset (everything
a module put on its workers is dropped) and parked here, and the next
module that asks for the same contexts and cores leases it at once.

- A gang is reused only for the same contexts and CPU-thread setting, in
  the same Ray session, and only when its reset answered: a worker that
  died while parked is never lent (the gang is freed and a new one placed).
- Asking for other contexts frees parked gangs (the oldest first) until
  the cores the new workers want are free; the others stay warm.
- `release_idle_workers()` frees the parked gangs now;
  `set_idle_worker_limit(0)` turns parking off.
"""
import atexit

_state = {"max_idle": 2, "exiting": False}


@atexit.register
def _at_exit():
    # Registered after weakref's own exit hook, so it runs first: gangs whose
    # modules are collected at exit are freed, not reset and parked.
    _state["exiting"] = True


class _Parked:
    def __init__(self, key, gang, reset_handles):
        self.key = key
        self.gang = gang
        self.reset_handles = reset_handles


class WorkerPool:
    """The parked gangs of this process (one pool per process)."""

    def __init__(self):
        self._parked = []

    def __len__(self):
        return len(self._parked)

    def lease(self, key, create, free_cpus=None, needed_cpus=None):
        """A parked gang for `key` whose workers were reset, else `create()`'s.

        Before creating, parked gangs (oldest first) are freed until `free_cpus()`
        plus what they held covers `needed_cpus()`: the new gang gets whole cores,
        and parked gangs of other shapes stay warm where the cluster has room. (Both
        are asked only when no parked gang fits: a lease asks the cluster nothing.)
        """
        for index in reversed(range(len(self._parked))):    # the warmest first
            parked = self._parked[index]
            if parked.key != key:
                continue
            del self._parked[index]
            if parked.gang.wait_reset(parked.reset_handles):
                return parked.gang
            parked.gang.release()        # a worker died while parked: never lend it
            break
        needed = needed_cpus() if needed_cpus is not None else 0.0
        free = free_cpus() if free_cpus is not None else 0.0
        while self._parked and free < needed:
            oldest = self._parked.pop(0)
            free += oldest.gang.cpus
            oldest.gang.release()
        return create()

    def give_back(self, key, gang):
        """Reset `gang`'s workers (without waiting) and park it, or free it."""
        if _state["exiting"] or _state["max_idle"] == 0 or not gang.alive():
            gang.release()
            return
        try:
            handles = gang.reset()
        except Exception:  # noqa: BLE001 - Ray gone or an actor dead: nothing to keep
            gang.release()
            return
        self._parked.append(_Parked(key, gang, handles))
        while len(self._parked) > _state["max_idle"]:
            self._parked.pop(0).gang.release()

    def release_idle(self):
        """Free every parked gang (its actors and placement group)."""
        parked, self._parked = self._parked, []
        for entry in parked:
            entry.gang.release()


POOL = WorkerPool()


def release_idle_workers():
    """Free the Ray actors kept warm for the next module (and the cores they hold)."""
    POOL.release_idle()


def set_idle_worker_limit(count):
    """How many released worker gangs stay warm for reuse (default 2; 0: none).

    Returns the previous setting.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"idle worker limit must be a non-negative int, received {count!r}")
    previous, _state["max_idle"] = _state["max_idle"], count
    if count < len(POOL):
        while len(POOL._parked) > count:
            POOL._parked.pop(0).gang.release()
    return previous
