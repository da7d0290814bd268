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
- SequentialModule's chained stages (one scheduler each) recover as one
  `RecoveryGroup`: a stage's calls take handles from another stage's
  workers, so they snapshot together, share one log and replay together.
"""
import logging
import time
import weakref

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
    """The snapshot, the log and the restart budget of one scheduler.

    A stage of SequentialModule's chained stages joins a `RecoveryGroup`:
    then the group keeps the log and decides when to snapshot and how to
    recover, for every stage at once.
    """

    def __init__(self, scheduler):
        self._scheduler = scheduler
        self.restarts_left = DEFAULT_RESTARTS
        self.max_restarts = DEFAULT_RESTARTS
        self.unsupported = None         # why this group cannot recover, when it cannot
        self.group = None               # the RecoveryGroup of chained stages it is in
        # A training forward's backward is still to come: no snapshot then, as the
        # forward's intermediates (which its backward reads) are in none.
        self.awaiting_backward = False
        self._replaying = False
        self._snapshot = None           # per-rank ObjectRefs of DeviceWorker.snapshot()
        self._journal_len = 0           # journal entries the snapshot includes
        self._kvstores = {}             # id -> (kvstore, its state at the snapshot)
        self._taken = 0.0
        self._log = []
        self._log_bytes = 0

    @property
    def replaying(self):
        return self._replaying or (self.group is not None and self.group.replaying)

    @property
    def workers(self):
        return self._scheduler.workers

    # ------------------------------------------------------------------ settings
    def set_max_restarts(self, count):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"max_worker_restarts must be a non-negative int, "
                             f"received {count!r}")
        self.restarts_left = self.max_restarts = count
        self._publish()

    def refuse(self, reason):
        """Recovery is impossible for this group (e.g. dist kvstores)."""
        self.unsupported = self.unsupported or reason
        self._publish()

    def _publish(self):
        if self.group is not None:
            self.group.publish()
            return
        workers = self.workers
        workers.recoverable = self.unrecoverable_reason() is None
        workers.unrecoverable_reason = self.unrecoverable_reason()

    def unrecoverable_reason(self):
        if self.group is not None:
            return self.group.unrecoverable_reason()
        return self.own_reason()

    def own_reason(self):
        """Why this scheduler's own state cannot be recovered (None when it can)."""
        if self.restarts_left <= 0:
            return "max_worker_restarts is 0" if self.max_restarts == 0 else \
                f"all {self.max_restarts} of max_worker_restarts were used"
        if self.unsupported:
            return self.unsupported
        if self._snapshot is None:
            return "no snapshot of the workers was taken yet"
        journal = self.workers.journal
        if any(m not in _REBUILD_ONLY for _, m, _, _ in journal[self._journal_len:]):
            return "the workers were rebuilt since the last snapshot"
        return None

    def recording(self):
        """Whether what is sent now is logged (a snapshot stands and restarts are left)."""
        return not (self._snapshot is None or self.restarts_left <= 0 or self.unsupported)

    # ------------------------------------------------------------------ groups
    def join(self, group):
        """Snapshot, log and recover with `group` from now on (its first snapshot is
        taken at the next point where every member is quiet)."""
        if self.group is not None and self.group is not group:
            self.group.dissolve()
        self.group = group
        self._forget_snapshot()

    def leave(self, group):
        if self.group is group:
            self.group = None
            self._forget_snapshot()     # the group's log went with it
            self._publish()

    def _forget_snapshot(self):
        self._snapshot = None
        self._log, self._log_bytes = [], 0

    # ------------------------------------------------------------------ the log
    def log(self, entry, nbytes=0):
        if self.group is not None:
            self.group.log(self._scheduler.replay, entry, nbytes)
            return
        if self.replaying or not self.recording():
            return
        self._log.append(_frozen(entry))
        self._log_bytes += nbytes

    def log_full(self):
        if self.group is not None:
            return self.group.log_full()
        return self._log_bytes > LOG_BYTES

    def note_kvstore(self, kvstore):
        """A kvstore the driver updates: its state joins the snapshot. The first time,
        before its first update here, its state is the one the snapshot had."""
        if id(kvstore) not in self._kvstores:
            self._kvstores[id(kvstore)] = (kvstore, kvstore.state())

    # ------------------------------------------------------------------ snapshots
    def snapshot_due(self):
        if self.group is not None:
            return self.group.snapshot_due()
        if self.awaiting_backward:
            return False
        return self.own_snapshot_due() or self._log_bytes > LOG_BYTES

    def own_snapshot_due(self):
        if self.restarts_left <= 0 or self.unsupported:
            return False
        return (self._snapshot is None or len(self.workers.journal) != self._journal_len
                or time.monotonic() - self._taken > SNAPSHOT_SECONDS)

    def take_snapshot(self):
        """At a quiet point (nothing in flight): every worker's state, kept in the store."""
        if self.group is not None:
            self.group.take_snapshot()
            return
        refs = self.submit_snapshot()
        try:
            self.workers.wait_refs(refs)
        except WorkerLost as lost:       # the last snapshot and the log still stand
            self.recover(lost)
            return
        self.commit_snapshot(refs)
        self._publish()

    def submit_snapshot(self):
        workers = self.workers
        return [workers.submit_one(rank, "snapshot") for rank in range(len(workers))]

    def commit_snapshot(self, refs):
        self._snapshot = refs
        self._journal_len = len(self.workers.journal)
        self._kvstores = {k: (kv, kv.state()) for k, (kv, _) in self._kvstores.items()}
        self._taken = time.monotonic()
        self._log, self._log_bytes = [], 0

    def submit_restore(self):
        workers = self.workers
        return [workers.submit_one(rank, "restore", ref)
                for rank, ref in enumerate(self._snapshot)]

    def restore_kvstores(self):
        for kvstore, state in self._kvstores.values():
            if state is not None:
                kvstore.set_state(state)

    # ------------------------------------------------------------------ recovery
    def recover(self, lost):
        """Replace the lost workers, restore the snapshot, replay the log."""
        if self.group is not None:
            self.group.recover(self, lost)
            return
        scheduler, workers = self._scheduler, self.workers
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
                workers.wait_refs(self.submit_restore())
                self.restore_kvstores()
                scheduler.reset_in_flight()
                self._replaying = True
                try:
                    for entry in self._log:
                        scheduler.replay(entry)
                    scheduler.sync_replay()
                finally:
                    self._replaying = False
                self._publish()
                return
            except Exception as again:  # noqa: BLE001 - another loss while recovering
                if not isinstance(again, WorkerLost) or self.unrecoverable_reason():
                    self._publish()
                    workers.give_up(f"recovery from the loss of {names} failed: {again}")
                    raise
                lost = again


class RecoveryGroup:
    """The Recovery of SequentialModule's chained stages: one snapshot, one log.

    A stage's calls take handles from another stage's workers (the previous
    stage's outputs, the next one's input gradients), so no stage can replay
    its log alone. The stages snapshot together, at a point where every one
    is quiet; everything sent to any of them since is logged here, in order
    (the stages' own records and calls, and the chain's operations, which the
    chain sends again from their inputs, with fresh handles between stages);
    a loss in any stage replaces the lost workers of whichever stage died,
    every stage restores its snapshot, and the log is sent again.

    Parameters
    ----------
    members : list of Recovery
        The stages' Recovery objects, first stage first.
    """

    def __init__(self, members):
        self.members = []
        for member in members:
            if all(member is not m for m in self.members):
                self.members.append(member)
        self.replaying = False
        self._snapshotting = False
        self._log = []                  # (weak method that replays it, entry)
        self._log_bytes = 0
        for member in self.members:
            member.join(self)
        self.publish()

    def dissolve(self):
        """The chain was released: each stage snapshots and logs on its own again."""
        members, self.members = self.members, []
        self._log, self._log_bytes = [], 0
        for member in members:
            member.leave(self)

    # ------------------------------------------------------------------ state
    def publish(self):
        """Every loss in a member reaches `recover` (which frees every stage when it
        cannot recover): a stage freed alone would leave the others' workers behind."""
        why_not = self.unrecoverable_reason()
        for member in self.members:
            member.workers.recoverable = True
            member.workers.unrecoverable_reason = why_not

    def unrecoverable_reason(self):
        for member in self.members:
            why_not = member.own_reason()
            if why_not is not None:
                return why_not
        return None

    def recording(self):
        return bool(self.members) and all(m.recording() for m in self.members)

    # ------------------------------------------------------------------ the log
    def log(self, replay, entry, nbytes=0):
        """Keep `entry`, to be sent again by the bound method `replay(entry)` after a
        loss. Held weakly: the stages' schedulers (which metrics link to) must not keep
        the chain, hence its modules' workers, alive."""
        if self.replaying or not self.recording():
            return
        self._log.append((weakref.WeakMethod(replay), _frozen(entry)))
        self._log_bytes += nbytes

    def log_full(self):
        return self._log_bytes > LOG_BYTES

    # ------------------------------------------------------------------ snapshots
    def snapshot_due(self):
        if self.replaying or self._snapshotting or not self.members or \
                any(m.restarts_left <= 0 or m.unsupported or m.awaiting_backward
                    for m in self.members):
            return False
        return any(m.own_snapshot_due() for m in self.members) or self.log_full()

    def take_snapshot(self):
        """Wait for every stage (a point where all are quiet), then snapshot them all."""
        if self._snapshotting:
            return
        self._snapshotting = True
        try:
            for member in self.members:
                member._scheduler.sync()     # its own snapshot attempt returns at once
            refs = [member.submit_snapshot() for member in self.members]
            for member, member_refs in zip(self.members, refs):
                try:
                    member.workers.wait_refs(member_refs)
                except WorkerLost as lost:   # the last snapshot and the log still stand
                    self.recover(member, lost)
                    return
            for member, member_refs in zip(self.members, refs):
                member.commit_snapshot(member_refs)
            self._log, self._log_bytes = [], 0
            self.publish()
        finally:
            self._snapshotting = False

    # ------------------------------------------------------------------ recovery
    def recover(self, origin, lost):
        """Replace the dead workers of every stage, restore all, replay the log."""
        while True:
            dead = self._dead_workers(origin, lost)
            names = ", ".join(f"stage {i}'s device worker {m.workers.contexts[r]} "
                              f"(worker {r})" for i, m, ranks in dead for r in ranks) \
                or "a device worker"
            seen = str(lost).split("\n", 1)[0].rstrip(".")
            if origin is not None and all(m is not origin for _, m, _ in dead):
                seen = f"stage {self._stage(origin)} saw: {seen}"
            why_not = self.unrecoverable_reason()
            if why_not is not None:
                self._give_up(f"{names} lost ({seen})")
                raise WorkerError(f"{names} lost\n{lost}\n(not recovered: {why_not})") \
                    from None
            for member in self.members:
                member.restarts_left -= 1
            logger.warning("raymod: %s lost (%s); replacing it and replaying %d steps of the "
                           "chained stages since their last snapshot (restarts left: %d)",
                           names, seen, len(self._log), self.members[0].restarts_left)
            try:
                self._restart(dead)
                return
            except Exception as again:  # noqa: BLE001 - another loss while recovering
                if not isinstance(again, WorkerLost) or self.unrecoverable_reason():
                    self.publish()
                    self._give_up(f"recovery from the loss of {names} failed: {again}")
                    raise
                origin, lost = None, again

    def _restart(self, dead):
        for _, member, ranks in dead:
            for rank in ranks:
                member.workers.replace(rank)
        restores = [member.submit_restore() for member in self.members]
        for member, refs in zip(self.members, restores):
            member.workers.wait_refs(refs)
        for member in self.members:
            member.restore_kvstores()
            member._scheduler.reset_in_flight()
        self.replaying = True
        try:
            for replay, entry in self._log:
                replay = replay()
                if replay is not None:        # None: its chain was released
                    replay(entry)
            for member in self.members:
                member._scheduler.sync_replay()
        finally:
            self.replaying = False
        self.publish()

    def _dead_workers(self, origin, lost):
        """[(stage, member, dead ranks)]: a stage's call that took a dead actor's output
        fails with that actor's error, so ask every stage which of its actors are gone."""
        for member in self.members:
            member.workers.settle()
        dead = []
        for i, member in enumerate(self.members):
            ranks = set(member.workers.dead_ranks())
            if member is origin:
                ranks |= set(lost.ranks)
            if ranks:
                dead.append((i, member, sorted(ranks)))
        return dead

    def _stage(self, member):
        return next(i for i, m in enumerate(self.members) if m is member)

    def _give_up(self, reason):
        for member in self.members:
            member.workers.give_up(reason)


def _frozen(entry):
    """A logged call with copies of the arrays it sends: the caller's arrays (a module's
    parameters handed to set_params) may change before a replay sends them again."""
    if entry[0] in ("call", "submit"):
        return _copied(entry)
    return entry


def _copied(value):
    if type(value) in (list, tuple):
        return type(value)(_copied(v) for v in value)
    if isinstance(value, dict):
        return type(value)((k, _copied(v)) for k, v in value.items())
    if hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "copy"):
        return value.copy()
    return value


def kill_worker(module, rank=0, group=0):
    """SIGKILL the process of `module`'s Ray device worker `rank` (a drill of a lost
    worker: `fit` replaces it and goes on). The worker must run on this machine.

    group : int, default 0
        Which of the module's executor groups (a SequentialModule's stage) it belongs to.

    Returns the killed process id.
    """
    import os
    import signal
    groups = module._executor_groups()
    if not groups or groups[0]._workers.in_process:
        raise ValueError("kill_worker needs a bound module whose workers are Ray actors "
                         "(placement='ray')")
    if not 0 <= group < len(groups):
        raise ValueError(f"group must be in [0, {len(groups)}), received {group!r}")
    pid = groups[group]._workers.pids()[rank]
    os.kill(pid, signal.SIGKILL)
    return pid
