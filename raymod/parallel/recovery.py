"""A lost Ray worker is replaced and the work since the last snapshot is replayed.

Why snapshot and replay (and not "copy the state from a surviving replica"):
after a worker dies mid-step the survivors are in no clean state either (a
step whose exchange lost its peer has moved BatchNorm statistics, the RNG
and metric sums but not the weights), BatchNorm statistics, metric sums and
generators differ per worker, and with one worker or `kvstore=None` there
is no replica at all. A snapshot of every worker taken at a quiet point,
plus the log of what was sent since, rebuilds exactly the state the run
would have had, for every kvstore the driver or the workers hold, with one
mechanism.

- The snapshot: every worker's executors (arguments, aux states,
  accumulated gradients, generator), optimizer and metric sums, kept in the
  object store (owned by the driver, so it outlives any worker), plus the
  state of a kvstore the driver updates. Taken after the calls that build
  workers (bind, reshape, init_updater, ...: the group's journal) and, at
  the next quiet point, once `SNAPSHOT_SECONDS` have passed or the log
  holds `LOG_BYTES` of inputs.
- The log: each batch's record (inputs or row numbers and what to run) and
  each state-changing call since the snapshot.
- On a lost worker: a new actor in its bundle replays the journal, every
  worker restores the snapshot, the log is sent again; the call that was
  waiting is then retried. The driver's metrics are not rolled back: the
  workers' metric sums were drained into them by calls in the log, and the
  replay re-runs those drains and drops what they return.
"""
import logging
import time

from .errors import WorkerError, WorkerLost

SNAPSHOT_SECONDS = 60.0
LOG_BYTES = 256 * 1024**2
DEFAULT_RESTARTS = 3
_REBUILD_ONLY = frozenset(("hold_rows", "drop_rows"))   # journaled, but restore-neutral
# Calls that change nothing on a worker: never logged.
READS = frozenset(("outputs", "input_grads", "arrays", "grads", "get_params", "exec_arrays",
                   "get_updater_states", "busy_seconds", "exchange_profile", "executor_keys",
                   "held_row_sources", "ping", "pid", "node_id", "snapshot"))

logger = logging.getLogger("raymod")


class Replayed(Exception):
    """The work a caller was waiting for was replayed after a lost worker: retry."""


class Recovery:
    """The snapshot, the log and the restart budget of one scheduler."""

    def __init__(self, scheduler):
        self._scheduler = scheduler
        self.restarts_left = DEFAULT_RESTARTS
        self.max_restarts = DEFAULT_RESTARTS
        self.unsupported = None         # why this group cannot recover, when it cannot
        self.replaying = False
        self._snapshot = None           # per-rank ObjectRefs of DeviceWorker.snapshot()
        self._journal_len = 0           # journal entries the snapshot includes
        self._kvstores = {}             # id -> (kvstore, its state at the snapshot)
        self._taken = 0.0
        self._log = []
        self._log_bytes = 0

    # ------------------------------------------------------------------ settings
    def set_max_restarts(self, count):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"max_worker_restarts must be a non-negative int, "
                             f"received {count!r}")
        self.restarts_left = self.max_restarts = count
        self._publish()

    def refuse(self, reason):
        """Recovery is impossible for this group (e.g. dist kvstores, chained stages)."""
        self.unsupported = self.unsupported or reason
        self._publish()

    def _publish(self):
        workers = self._scheduler.workers
        workers.recoverable = self.unrecoverable_reason() is None
        workers.unrecoverable_reason = self.unrecoverable_reason()

    def unrecoverable_reason(self):
        if self.restarts_left <= 0:
            return "max_worker_restarts is 0" if self.max_restarts == 0 else \
                f"all {self.max_restarts} of max_worker_restarts were used"
        if self.unsupported:
            return self.unsupported
        if self._snapshot is None:
            return "no snapshot of the workers was taken yet"
        journal = self._scheduler.workers.journal
        if any(m not in _REBUILD_ONLY for _, m, _, _ in journal[self._journal_len:]):
            return "the workers were rebuilt since the last snapshot"
        return None

    # ------------------------------------------------------------------ the log
    def log(self, entry, nbytes=0):
        if self.replaying or self._snapshot is None or self.restarts_left <= 0 \
                or self.unsupported:
            return
        self._log.append(entry)
        self._log_bytes += nbytes

    def log_full(self):
        return self._log_bytes > LOG_BYTES

    def note_kvstore(self, kvstore):
        """A kvstore the driver updates: its state joins the snapshot. The first time,
        before its first update here, its state is the one the snapshot had."""
        if id(kvstore) not in self._kvstores:
            self._kvstores[id(kvstore)] = (kvstore, kvstore.state())

    # ------------------------------------------------------------------ snapshots
    def snapshot_due(self):
        workers = self._scheduler.workers
        if self.restarts_left <= 0 or self.unsupported:
            return False
        return (self._snapshot is None or len(workers.journal) != self._journal_len
                or time.monotonic() - self._taken > SNAPSHOT_SECONDS
                or self._log_bytes > LOG_BYTES)

    def take_snapshot(self):
        """At a quiet point (nothing in flight): every worker's state, kept in the store."""
        workers = self._scheduler.workers
        refs = [workers.submit_one(rank, "snapshot") for rank in range(len(workers))]
        try:
            workers.wait_refs(refs)
        except WorkerLost as lost:       # the last snapshot and the log still stand
            self.recover(lost)
            return
        self._snapshot = refs
        self._journal_len = len(workers.journal)
        self._kvstores = {k: (kv, kv.state()) for k, (kv, _) in self._kvstores.items()}
        self._taken = time.monotonic()
        self._log, self._log_bytes = [], 0
        self._publish()

    # ------------------------------------------------------------------ recovery
    def recover(self, lost):
        """Replace the lost workers, restore the snapshot, replay the log."""
        scheduler, workers = self._scheduler, self._scheduler.workers
        while True:
            why_not = self.unrecoverable_reason()
            if why_not is not None:     # the workers changed since it was last published
                first = str(lost).split("\n", 1)[0]
                workers.give_up(first)
                raise WorkerError(f"{lost}\n(not recovered: {why_not})") from None
            self.restarts_left -= 1
            names = ", ".join(f"{workers.contexts[r]} (worker {r})" for r in lost.ranks)
            logger.warning("raymod: device worker %s lost (%s); replacing it and replaying "
                           "%d steps since the last snapshot (restarts left: %d)", names,
                           str(lost).split("\n", 1)[0].rstrip("."), len(self._log),
                           self.restarts_left)
            workers.settle()
            try:
                for rank in lost.ranks:
                    workers.replace(rank)
                workers.wait_refs([workers.submit_one(rank, "restore", ref)
                                   for rank, ref in enumerate(self._snapshot)])
                for kvstore, state in self._kvstores.values():
                    if state is not None:
                        kvstore.set_state(state)
                scheduler.reset_in_flight()
                self.replaying = True
                try:
                    for entry in self._log:
                        scheduler.replay(entry)
                    scheduler.sync_replay()
                finally:
                    self.replaying = False
                self._publish()
                return
            except Exception as again:  # noqa: BLE001 - another loss while recovering
                if not isinstance(again, WorkerLost) or self.unrecoverable_reason():
                    self._publish()
                    workers.give_up(f"recovery from the loss of {names} failed: {again}")
                    raise
                lost = again


def kill_worker(module, rank=0):
    """SIGKILL the process of `module`'s Ray device worker `rank` (a drill of a lost
    worker: `fit` replaces it and goes on). The worker must run on this machine.

    Returns the killed process id.
    """
    import os
    import signal
    groups = module._executor_groups()
    if not groups or groups[0]._workers.in_process:
        raise ValueError("kill_worker needs a bound module whose workers are Ray actors "
                         "(placement='ray')")
    pid = groups[0]._workers.pids()[rank]
    os.kill(pid, signal.SIGKILL)
    return pid
