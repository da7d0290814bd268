"""The driver as a scheduler for Ray workers: defer, fuse, submit, never wait per batch.

A batch's forward, backward, update and metric update arrive as separate
calls from the module; the scheduler holds them until something else is
asked for (or the next batch starts) and sends each worker one `step`.
How the optimizer step is taken depends on the kvstore:

- no kvstore: each worker steps on its own gradient inside `step`;
- `device`, or `local` updating on the devices: each `step` returns the
  worker's gradients as an ObjectRef, and every worker's `reduce_update`
  receives all of them (worker to worker, not through the driver);
- `local` updating on the kvstore: the driver sums the gradients, applies the
  optimizer to its master copy and publishes the weights with one `ray.put`;
- `dist_*`: the parameter-server actors reduce and update their shards.

Batches whose step needs nothing from other workers (no kvstore, inference,
score) are held and sent several at a time, one `steps` call and one object
store put per worker: on a small machine Ray's cost per call and per put
(about a millisecond of CPU each) would otherwise take cores from the math.

Results are fetched only when the user needs a value; every fetch also waits
on what was submitted before it, so a worker's failure surfaces there.
"""
import weakref

import numpy as np

from .dataplane import DataPlane, RowsInput
from .errors import WorkerLost
from .recovery import READS, Recovery, Replayed

_MAX_IN_FLIGHT = 16             # unchecked calls kept before waiting on the oldest
_COALESCE_BATCHES = 8           # batches held for one `steps` call, at most ...
_COALESCE_ROW_BATCHES = 32      # ... or, when they are row numbers (the data plane), this
_COALESCE_BYTES = 8 * 1024**2   # ... and input bytes per worker
_ALONE = ("exchange", "driver", "dist")    # update modes that need the other workers


class StepScheduler:
    """One per worker group (buckets' executor groups share it and their workers)."""

    def __init__(self, workers):
        # A proxy: the group owns the scheduler, not the other way round, so a
        # module that goes out of scope frees its actors without waiting for gc.
        self.workers = weakref.proxy(workers)
        self._record = None
        self._held = []          # complete records waiting to go as one `steps` call
        self._held_bytes = []    # their input bytes per worker, summed as they come
        self._hold_limit = 1     # batches per `steps` call: 1 after a wait, doubling to the cap
        self._in_flight = []
        self._metric_links = {}
        self._forwards = 0       # forward calls so far, to say which batch failed
        self._note = None
        from ..ndarray.ndarray import register_pending_work
        register_pending_work(self)       # nd.waitall() waits for this group's workers
        # datasets the workers hold (through the proxy: the plane must not keep them alive)
        self.plane = DataPlane(lambda value: self.workers.put(value), self.submit)
        self.recovery = Recovery(self)    # snapshot + log: a lost worker is replaced

    def _open(self, key, fresh=False):
        """The deferred record for executor `key`, retiring one for another key."""
        if self._record is not None and (fresh or self._record["key"] != key):
            self._retire()
        if self._record is None:
            self._record = {"key": key}
        return self._record

    # ------------------------------------------------------------------ deferral
    def forward(self, key, per_device, is_train):
        # A new forward ends the wait for the last one's backward (nothing reads its
        # intermediates any more): a full log may be snapshotted away here, so a
        # loop of training forwards without backward keeps it bounded.
        self.recovery.awaiting_backward = False
        self._empty_full_log()
        record = self._open(key, fresh=True)
        record["n"] = len(per_device)      # a group sharing a larger one's workers uses n
        self._forwards += 1
        record["batch"] = self._forwards
        # Copies: the batch may be a view of a buffer its iterator refills. (Rows of a
        # source the workers hold are the scheduler's own: nothing to copy.)
        record["inputs"] = [i if isinstance(i, RowsInput) else
                            {n: np.array(a) for n, a in i.items()} for i in per_device]
        record["is_train"] = is_train
        self.recovery.awaiting_backward = bool(is_train)

    def backward(self, key, per_device_grads):
        self.recovery.awaiting_backward = False
        record = self._open(key)
        if "inputs" not in record or "backward" in record or "update" in record:
            self.flush()
            self._submit_logged("backward", key, per_worker=[(g,) for g in per_device_grads],
                                n=len(per_device_grads))
            return
        record["backward"] = [None if g is None else [None if a is None else np.array(a)
                                                      for a in g] for g in per_device_grads]

    def update(self, key, names, kvstore, update_on_kvstore, n=None):
        record = self._open(key)
        if "update" in record or "metric" in record:
            record = self._open(key, fresh=True)
        record.setdefault("n", n or len(self.workers))
        record["update"] = (self._update_mode(kvstore, update_on_kvstore), kvstore, names)

    def update_metric(self, key, eval_metric, label_names, per_device_labels):
        link = self._metric_links.get(id(eval_metric))
        if link is None or link.metric is not eval_metric:
            link = _MetricLink(self, eval_metric)
            self._metric_links[id(eval_metric)] = link
        metric = (link.metric_id, link.template(), label_names)
        record = self._open(key)
        if "metric" in record:
            record = self._open(key, fresh=True)
        record.setdefault("n", len(per_device_labels))
        # None: the labels are the batch's, which the workers loaded as inputs.
        record["metric"] = (metric, [None if labels is None else [np.array(a) for a in labels]
                                     for labels in per_device_labels])
        link.dirty = True

    def submit(self, method, *args, per_worker=None, n=None):
        """A call in order after everything deferred, not waited for here."""
        self.flush()
        return self._submit_logged(method, *args, per_worker=per_worker, n=n)

    def call(self, method, *args, per_worker=None, n=None):
        """A blocking call on the first `n` workers (all by default), after everything
        deferred and in flight. After a lost worker was replaced it is made again."""
        while True:
            self.flush()
            handles = self._on_workers(method, *args, per_worker=per_worker, n=n)
            try:
                results = self.sync(handles)
            except Replayed:
                continue
            if method not in READS:
                self.recovery.log(("call", method, args, per_worker, n))
            self._snapshot_if_due()
            return results

    def _on_workers(self, method, *args, per_worker=None, n=None):
        n = len(self.workers) if n is None else n
        extra = per_worker or [()] * n
        return [self.workers.submit_one(rank, method, *args, *extra[rank])
                for rank in range(n)]

    @staticmethod
    def _update_mode(kvstore, update_on_kvstore):
        if kvstore is None:
            return "local_workers"
        if kvstore.type.startswith("dist"):
            return "dist"
        if update_on_kvstore:
            return "driver"
        return "exchange"

    # ------------------------------------------------------------------ submission
    def _ship(self, inputs):
        """One object-store put per large slice; small ones travel inline."""
        from .ray_group import _is_large
        return self.workers.put(inputs) if _is_large(inputs) else inputs

    def track(self, handles):
        """Calls made outside the workers (parameter servers) to wait on with the rest."""
        self._track(list(handles))

    def submit_now(self, method, *args, per_worker=None, n=None):
        """Submit at once, in order with what was sent (no flush: used while sending)."""
        return self._submit(method, *args, per_worker=per_worker, n=n)

    def _submit(self, method, *args, per_worker=None, n=None):
        handles = self._on_workers(method, *args, per_worker=per_worker, n=n)
        self._track(handles)
        return handles

    def _submit_logged(self, method, *args, per_worker=None, n=None):
        handles = self._on_workers(method, *args, per_worker=per_worker, n=n)
        self.recovery.log(("submit", method, args, per_worker, n))
        try:
            self._track(handles)
        except Replayed:
            return []            # sent again by the replay
        return handles

    def _track(self, handles):
        """Keep `handles` to check later; past the bound, wait on the oldest ones.

        Waiting on just the excess keeps the workers' queues full and steady
        (waiting on half of them at once stalled a worker now and then).
        """
        if self._note:
            self.workers.annotate(handles, self._note)
        self._in_flight.extend(handles)
        excess = len(self._in_flight) - _MAX_IN_FLIGHT
        if excess > 0:
            older, self._in_flight = self._in_flight[:excess], self._in_flight[excess:]
            try:
                self.workers.wait(older)
            except WorkerLost as lost:
                if self.recovery.replaying:
                    raise
                self.recovery.recover(lost)
                # The log (this call's own submission included) was sent again: the
                # operation that was submitting must not go on with stale handles.
                raise Replayed from None
            except BaseException:
                # One error per failure: the rest went with it, and is forgotten.
                dropped, self._in_flight = self._in_flight, []
                self.workers.forget(dropped)
                raise

    def flush(self):
        """Send everything deferred: the open record and the held batches."""
        self._retire()
        self._send_held()

    def _retire(self):
        """The open record is complete: hold it to go with the next batches, or send it."""
        record, self._record = self._record, None
        if not record:
            return
        self._send_or_hold(record)
        self._empty_full_log()

    def _empty_full_log(self):
        """A full log: wait here (a quiet point) for a snapshot that empties it, unless
        a training forward's backward is to come (no snapshot may fall before it)."""
        recovery = self.recovery
        if recovery.log_full() and not recovery.replaying and not recovery.awaiting_backward:
            self.sync()

    def _send_or_hold(self, record):
        mode = record["update"][0] if "update" in record else None
        if "inputs" not in record or mode in _ALONE:
            self._send_held()
            self._send(record)
            return
        if self._held and self._held[0]["key"] != record["key"]:
            self._send_held()
        self._held.append(record)
        sizes = [_input_bytes(inputs) for inputs in record["inputs"]]     # per worker
        self._held_bytes = sizes if len(self._held) == 1 else \
            [a + b for a, b in zip(self._held_bytes, sizes)]
        if len(self._held) >= self._hold_limit or max(self._held_bytes) >= _COALESCE_BYTES:
            self._send_held()
            # The workers are idle after a wait: feed them at once, then in larger calls.
            cap = _COALESCE_ROW_BATCHES if isinstance(record["inputs"][0], RowsInput) \
                else _COALESCE_BATCHES
            self._hold_limit = min(cap, 2 * self._hold_limit)

    def _send_held(self):
        """The held batches, as one `steps` call per worker with one put of their inputs."""
        held, self._held = self._held, []
        if len(held) <= 1:
            if held:
                self._send(held[0])
            return
        try:
            self._track(self._submit_held(held))
        except Replayed:
            pass                 # a worker was lost: the replay sent these batches again

    def _submit_held(self, held):
        first, last = held[0]["batch"], held[-1]["batch"]
        self._note = f"batches {first}-{last} (counting this module's forward calls)"
        try:
            handles = []
            for rank in range(held[0]["n"]):
                plans = [(r["is_train"], self._step_kwargs(r, rank)) for r in held]
                inputs = self._ship([r["inputs"][rank] for r in held])
                handles.append(self.workers.submit_one(rank, "steps", held[0]["key"], inputs,
                                                       plans, first))
            if self._note:
                self.workers.annotate(handles, self._note)
            self.recovery.log(("held", held), sum(_input_bytes(r["inputs"][0]) for r in held))
            return handles
        finally:
            self._note = None

    def _send(self, record):
        """One record as one fused call per worker (plus the exchange its update needs)."""
        self._note = f"batch {record['batch']} (counting this module's forward calls)" \
            if "batch" in record else None
        try:
            self._send_record(record)
        except Replayed:
            pass                 # a worker was lost while sending: the replay sent it
        finally:
            self._note = None

    @staticmethod
    def _step_kwargs(record, rank):
        kwargs = {}
        mode, _, names = record.get("update") or (None, None, None)
        if "inputs" in record:
            kwargs["backward"] = "backward" in record
            kwargs["out_grads"] = record["backward"][rank] if "backward" in record else None
        if mode == "local_workers":
            kwargs["update"] = names
        elif mode is not None:
            kwargs["return_grads"] = names
            # only reduce_update reads what an exchange publishes (shared-buffer refs)
            kwargs["exchange"] = mode == "exchange"
        if "metric" in record:
            metric, labels = record["metric"]
            kwargs["metric"] = metric + (labels[rank],)
        return kwargs

    def _send_record(self, record):
        key = record["key"]
        mode, kvstore, names = record.get("update") or (None, None, None)
        n = record.get("n", len(self.workers))
        per_worker = [self._step_kwargs(record, rank) for rank in range(n)]
        if "inputs" in record:
            handles = [self.workers.submit_one(rank, "step", key,
                                               self._ship(record["inputs"][rank]),
                                               record["is_train"], **kw)
                       for rank, kw in enumerate(per_worker)]
        else:
            handles = [self.workers.submit_one(rank, "apply", key, **kw)
                       for rank, kw in enumerate(per_worker)]
        if mode == "dist":
            self.recovery.note_kvstore(kvstore)     # its servers join the snapshots
        self.recovery.log(("record", record),
                          _input_bytes(record["inputs"][0]) if "inputs" in record else 0)
        self._track(handles)
        if mode == "exchange":
            self._submit("reduce_update", key, names, *handles, n=n)
        elif mode == "driver":
            self._driver_update(key, kvstore, names, handles)
        elif mode == "dist":
            kvstore.exchange(self, key, names, handles)

    def _driver_update(self, key, kvstore, names, handles):
        self.recovery.note_kvstore(kvstore)
        grads = self.sync(handles)
        for name in names:
            if name in grads[0]:
                kvstore.push(name, [g[name] for g in grads])
        weights = self.workers.put({n: kvstore.value(n) for n in names if n in grads[0]})
        self._submit("set_weights", key, weights, n=len(handles))

    def wait_all(self):
        """Everything deferred and in flight, finished (`nd.waitall`); nothing once the
        workers were released (a module collected, or shut down after a failure)."""
        try:
            if getattr(self.workers, "_closed", None) is None:
                self.sync()
                return
        except ReferenceError:
            pass
        self._record, self._held, self._in_flight = None, [], []

    def sync(self, handles=()):
        """Flush, then wait for everything in flight plus `handles`; return their results.

        A lost worker is replaced and the log replayed here; then a plain sync
        waits again, and one for `handles` raises Replayed (they are stale).
        """
        handles = list(handles)
        while True:
            if not self.recovery.replaying:    # what is deferred comes after the log
                self.flush()
            pending, self._in_flight = self._in_flight, []
            self._hold_limit = 1
            extra = [h for h in handles if h not in pending]
            try:
                results = self.workers.wait(pending + extra)
            except WorkerLost as lost:
                if self.recovery.replaying:
                    raise
                self.recovery.recover(lost)
                if handles:
                    raise Replayed from None
                continue
            if not handles:
                self._snapshot_if_due()
            by_handle = dict(zip(pending + extra, results))
            return [by_handle[h] for h in handles]

    def _snapshot_if_due(self):
        """At a quiet point (all waited for), snapshot the workers when it is time."""
        if self.recovery.replaying or self._in_flight or self._record or self._held:
            return
        if self.recovery.snapshot_due():
            self.recovery.take_snapshot()

    # ------------------------------------------------------------------ replay
    def replay(self, entry):
        """Send one logged entry again (after the workers restored the snapshot)."""
        kind = entry[0]
        if kind == "record":
            self._send_record(entry[1])
        elif kind == "held":
            self._track(self._submit_held(entry[1]))
        else:
            _, method, args, per_worker, n = entry
            self._track(self._on_workers(method, *args, per_worker=per_worker, n=n))

    def sync_replay(self):
        pending, self._in_flight = self._in_flight, []
        self.workers.wait(pending)

    def reset_in_flight(self):
        """Forget what was in flight when a worker was lost, consuming its errors (so
        Ray does not log them as unhandled: they are the loss's, already reported)."""
        dropped, self._in_flight = self._in_flight, []
        self.workers.consume(dropped)


def _input_bytes(inputs):
    if isinstance(inputs, RowsInput):
        return inputs.nbytes
    return sum(a.nbytes for a in inputs.values())


class _MetricLink:
    """Ties a driver-side metric to its copies on the workers.

    Before the driver metric reports or resets, it drains the workers' sums
    into itself (EvalMetric calls `_remote_link.drain()`), so local/global
    statistics behave exactly as if it had been updated here.
    """

    _next_id = [0]

    def __init__(self, scheduler, metric):
        self.scheduler = scheduler
        self.metric = metric
        self.metric_id = f"metric{_MetricLink._next_id[0]}"
        _MetricLink._next_id[0] += 1
        self.dirty = False
        self._sent = False
        self._draining = False
        metric._remote_links = getattr(metric, "_remote_links", [])
        metric._remote_links.append(self)

    def template(self):
        """A zeroed copy of the metric for the workers, sent once."""
        if self._sent:
            return None
        self._sent = True
        import copy
        clone = copy.deepcopy(self.metric)     # EvalMetric.__getstate__ drops the links
        clone.reset()
        return clone

    def drain(self):
        if self._draining:
            return
        if self._workers_gone():             # its module was released: nothing to drain
            if self.dirty:
                import warnings
                warnings.warn(f"{self.metric.name}: sums held by the workers of a released "
                              f"module were lost (read the metric before releasing it)",
                              RuntimeWarning, stacklevel=3)
            self.detach()
            return
        if not self.dirty:
            return
        self._draining = True        # merge_state reads the metric: no drain from there
        try:
            try:
                states = self.scheduler.call("metric_state", self.metric_id)
            except BaseException:
                # The workers failed (the error says how) or are gone: their sums are
                # lost. Unlink, so the metric stays readable with what it had drained.
                self.detach()
                raise
            for state in states:
                if state is not None:
                    self.metric.merge_state(state)
            self.dirty = False
        finally:
            self._draining = False

    def _workers_gone(self):
        try:
            self.scheduler.workers.contexts
            return False
        except ReferenceError:
            return True

    def detach(self):
        self.dirty = False
        links = getattr(self.metric, "_remote_links", [])
        if self in links:
            links.remove(self)
        if self.scheduler._metric_links.get(id(self.metric)) is self:
            del self.scheduler._metric_links[id(self.metric)]
