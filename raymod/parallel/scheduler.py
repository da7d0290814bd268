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

Results are fetched only when the user needs a value; every fetch also waits
on what was submitted before it, so a worker's failure surfaces there.
"""
import weakref

_MAX_IN_FLIGHT = 64      # bound on unchecked handles kept between fetches


class StepScheduler:
    """One per worker group (buckets' executor groups share it and their workers)."""

    def __init__(self, workers):
        # A proxy: the group owns the scheduler, not the other way round, so a
        # module that goes out of scope frees its actors without waiting for gc.
        self.workers = weakref.proxy(workers)
        self._record = None
        self._in_flight = []
        self._metric_links = {}

    def _open(self, key, fresh=False):
        """The deferred record for executor `key`, flushing one for another key."""
        if self._record is not None and (fresh or self._record["key"] != key):
            self.flush()
        if self._record is None:
            self._record = {"key": key}
        return self._record

    # ------------------------------------------------------------------ deferral
    def forward(self, key, per_device, is_train):
        record = self._open(key, fresh=True)
        record["inputs"] = [self._ship(i) for i in per_device]
        record["is_train"] = is_train

    def backward(self, key, per_device_grads):
        record = self._open(key)
        if "inputs" not in record or "backward" in record or "update" in record:
            self.flush()
            self._submit("backward", key, per_worker=[(g,) for g in per_device_grads])
            return
        record["backward"] = per_device_grads

    def update(self, key, names, kvstore, update_on_kvstore):
        record = self._open(key)
        if "update" in record or "metric" in record:
            record = self._open(key, fresh=True)
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
        record["metric"] = (metric, per_device_labels)
        link.dirty = True

    def call(self, method, *args, per_worker=None):
        """A blocking call, after everything deferred and in flight."""
        self.flush()
        return self.sync(self.workers.submit(method, *args, per_worker=per_worker))

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

    def _submit(self, method, *args, per_worker=None):
        handles = self.workers.submit(method, *args, per_worker=per_worker)
        self._in_flight.extend(handles)
        if len(self._in_flight) > _MAX_IN_FLIGHT:
            self.workers.wait(self._in_flight)
            self._in_flight = []
        return handles

    def flush(self):
        """Send the deferred step, if any."""
        record, self._record = self._record, None
        if not record:
            return
        key = record["key"]
        update = record.get("update")
        mode, kvstore, names = update if update else (None, None, None)
        metric = record.get("metric")
        per_worker = []
        for rank in range(len(self.workers)):
            kwargs = {}
            if "inputs" in record:
                kwargs["backward"] = "backward" in record
                kwargs["out_grads"] = record["backward"][rank] if "backward" in record else None
            if mode == "local_workers":
                kwargs["update"] = names
            elif mode is not None:
                kwargs["return_grads"] = names
            if metric is not None:
                kwargs["metric"] = metric[0] + (metric[1][rank],)
            per_worker.append(kwargs)
        if "inputs" in record:
            handles = [self.workers.submit_one(rank, "step", key, record["inputs"][rank],
                                               record["is_train"], **kw)
                       for rank, kw in enumerate(per_worker)]
        else:
            handles = [self.workers.submit_one(rank, "apply", key, **kw)
                       for rank, kw in enumerate(per_worker)]
        self._in_flight.extend(handles)
        if mode == "exchange":
            self._submit("reduce_update", key, names, *handles)
        elif mode == "driver":
            self._driver_update(key, kvstore, names, handles)
        elif mode == "dist":
            kvstore.exchange(self, key, names, handles)

    def _driver_update(self, key, kvstore, names, handles):
        grads = self.sync(handles)
        for name in names:
            if name in grads[0]:
                kvstore.push(name, [g[name] for g in grads])
        weights = self.workers.put({n: kvstore.value(n) for n in names if n in grads[0]})
        self._submit("set_weights", key, weights)

    def sync(self, handles=()):
        """Flush, then wait for everything in flight plus `handles`; return their results."""
        self.flush()
        pending, self._in_flight = self._in_flight, []
        handles = list(handles)
        extra = [h for h in handles if h not in pending]
        results = self.workers.wait(pending + extra)
        by_handle = dict(zip(pending + extra, results))
        return [by_handle[h] for h in handles]


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
        if not self.dirty or self._draining:
            return
        self._draining = True
        try:
            for state in self.scheduler.call("metric_state", self.metric_id):
                if state is not None:
                    self.metric.merge_state(state)
            self.dirty = False
        finally:
            self._draining = False
