"""Fused calls for workers on Ray actors: one call per worker per batch where possible.

The driver defers a batch's forward, backward, update and metric update and
sends them as one `step` call. Gradient exchange between workers (`device`
kvstore) passes ObjectRefs from worker to worker: each step returns its
gradients, and `reduce_update` receives every worker's gradients as
top-level arguments (Ray resolves them before the call) and applies the same
update on each worker. Metrics stay on the workers; `metric_state` hands
their sums to the driver and starts them again from zero. `busy_seconds`
counts the time spent inside these calls (the computation), so a benchmark
can tell it from the time spent around them.
"""
import time
from collections import OrderedDict

from ..context import to_numpy


class WorkerStepsMixin:
    """Methods DeviceWorker gains on a Ray actor (it uses _exec, _updater, xp)."""

    def step(self, key, inputs, is_train, backward=False, out_grads=None, update=None,
             metric=None, return_grads=None):
        """forward [+ backward] [+ update] [+ metric], in that order, in one call.

        update: a list of parameter names to step with this worker's optimizer.
        metric: (metric_id, template or None, label_names, labels).
        return_grads: a list of names whose gradients come back (for an exchange).
        """
        tic = time.perf_counter()
        try:
            self.forward(key, inputs, is_train)
            if backward:
                self.backward(key, out_grads)
            return self._apply(key, update, metric, return_grads)
        finally:
            self._busy(tic)

    def steps(self, key, inputs, plans, first_batch=None):
        """Several batches' steps in one call: `inputs[i]` with `plans[i]` = (is_train, kwargs).

        Only for steps that return nothing (no gradient exchange). A failure
        says which of the batches it was (batches are counted by the driver).
        """
        for i, (batch_inputs, (is_train, kwargs)) in enumerate(zip(inputs, plans)):
            try:
                self.step(key, batch_inputs, is_train, **kwargs)
            except Exception as err:
                if first_batch is not None and hasattr(err, "add_note"):
                    err.add_note(f"raymod: in batch {first_batch + i} "
                                 f"(counting the module's forward calls)")
                raise

    def apply(self, key, update=None, metric=None, return_grads=None, **_):
        """The after-backward part of a step: update, metric, gradients to return."""
        tic = time.perf_counter()
        try:
            return self._apply(key, update, metric, return_grads)
        finally:
            self._busy(tic)

    def _busy(self, tic):
        self._busy_s = getattr(self, "_busy_s", 0.0) + time.perf_counter() - tic

    def busy_seconds(self):
        """Seconds spent inside step/apply/reduce_update since the worker started."""
        return getattr(self, "_busy_s", 0.0)

    def _apply(self, key, update, metric, return_grads):
        if update is not None:
            self.update(key, update)
        if metric is not None:
            self.update_metric(key, *metric)
        if return_grads is not None:
            exe = self._exec(key)
            return {n: to_numpy(exe.grad_dict[n]) for n in return_grads if n in exe.grad_dict}
        return None

    def reduce_update(self, key, names, *grads_per_worker):
        """Sum every worker's gradients into this worker's, then step the optimizer."""
        tic = time.perf_counter()
        exe = self._exec(key)
        for name in names:
            if name not in exe.grad_dict:
                continue
            dst = exe.grad_dict[name]
            dst[...] = self.xp.asarray(grads_per_worker[0][name])
            for grads in grads_per_worker[1:]:
                dst += self.xp.asarray(grads[name])
        self.update(key, names)
        self._busy(tic)

    def set_weights(self, key, *weight_dicts):
        """Copy new parameter values (dicts, e.g. one per parameter-server shard) in."""
        exe = self._exec(key)
        for weights in weight_dicts:
            for name, value in weights.items():
                exe.arg_dict[name][...] = self.xp.asarray(value)

    def update_metric(self, key, metric_id, template, label_names, labels):
        if not hasattr(self, "_metrics"):
            self._metrics = {}
        if template is not None:
            self._metrics[metric_id] = template
        exe = self._exec(key)
        self._metrics[metric_id].update_dict(
            OrderedDict(zip(label_names, labels)),
            OrderedDict(zip(exe.symbol.list_outputs(), exe.outputs)))

    def metric_state(self, metric_id):
        """The metric's sums since the last call; the worker's copy starts from zero again."""
        metric = getattr(self, "_metrics", {}).get(metric_id)
        if metric is None:
            return None
        state = metric.get_state()
        metric.reset()
        return state
