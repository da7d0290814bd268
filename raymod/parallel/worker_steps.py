"""Fused calls for workers on Ray actors: one call per worker per batch where possible.

The driver defers a batch's forward, backward, update and metric update and
sends them as one `step` call. Gradient exchange between workers (`device`
kvstore) passes ObjectRefs from worker to worker: each step publishes its
gradients (`exchange=True`: through a shared buffer on one machine, see
grad_exchange.py), and `reduce_update` receives what every worker published
as top-level arguments (Ray resolves them before the call), sums it in one
pass into the gradient arrays and applies the same update on each worker.
Metrics stay on the workers; `metric_state` hands their sums to the driver
and starts them again from zero. `busy_seconds` counts the time spent inside
these calls (the computation), so a benchmark can tell it from the time
spent around them; `exchange_profile` splits the exchange's part.
"""
import time
from collections import OrderedDict

from ..context import to_numpy
from .grad_exchange import GradientExchange, sum_into


class WorkerStepsMixin:
    """Methods DeviceWorker gains on a Ray actor (it uses _exec, _updater, xp)."""

    def step(self, key, inputs, is_train, backward=False, out_grads=None, update=None,
             metric=None, return_grads=None, exchange=False):
        """forward [+ backward] [+ update] [+ metric], in that order, in one call.

        update: a list of parameter names to step with this worker's optimizer.
        metric: (metric_id, template or None, label_names, labels).
        return_grads: a list of names whose gradients come back: a dict of arrays,
        or, with `exchange`, what `reduce_update` takes (possibly references to a
        buffer every worker maps; only `reduce_update` may consume those).
        """
        tic = time.perf_counter()
        try:
            self.forward(key, inputs, is_train)
            if backward:
                self.backward(key, out_grads)
            return self._apply(key, update, metric, return_grads, exchange)
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

    def apply(self, key, update=None, metric=None, return_grads=None, exchange=False, **_):
        """The after-backward part of a step: update, metric, gradients to return."""
        tic = time.perf_counter()
        try:
            return self._apply(key, update, metric, return_grads, exchange)
        finally:
            self._busy(tic)

    def _busy(self, tic):
        self._busy_s = getattr(self, "_busy_s", 0.0) + time.perf_counter() - tic

    def busy_seconds(self):
        """Seconds spent inside step/apply/reduce_update since the worker started."""
        return getattr(self, "_busy_s", 0.0)

    def _phase(self, name, tic):
        if not hasattr(self, "_phase_s"):
            self._phase_s = {"publish": 0.0, "sum": 0.0, "update": 0.0}
        self._phase_s[name] += time.perf_counter() - tic

    def exchange_profile(self):
        """Seconds in the exchange's phases (publish, sum, update) and messages by kind.

        Publishing is the copy into the shared buffer (serialising a dict of
        arrays happens in Ray, after the call); `sum` includes reading the
        peers' gradients; `update` is the optimizer step in `reduce_update`.
        """
        counts = self._exchange().counts
        return dict(getattr(self, "_phase_s", {"publish": 0.0, "sum": 0.0, "update": 0.0}),
                    shared=counts["shared"], by_value=counts["by_value"])

    def _apply(self, key, update, metric, return_grads, exchange=False):
        if update is not None:
            self.update(key, update)
        if metric is not None:
            self.update_metric(key, *metric)
        if return_grads is not None:
            exe = self._exec(key)
            grads = {n: exe.grad_dict[n] for n in return_grads if n in exe.grad_dict}
            if exchange:
                tic = time.perf_counter()
                published = self._exchange().publish(key, grads)
                self._phase("publish", tic)
                return published
            return {n: to_numpy(g) for n, g in grads.items()}
        return None

    def _exchange(self):
        if getattr(self, "_grad_exchange", None) is None:
            self._grad_exchange = GradientExchange()
        return self._grad_exchange

    def reduce_update(self, key, names, *published):
        """Sum every worker's gradients into this worker's, then step the optimizer.

        published: per worker in rank order, what its step returned with
        `exchange=True`, or a dict name -> gradient. The sum runs left to right,
        as the kvstore sums, so every placement gets the same numbers.
        """
        tic = time.perf_counter()
        exe = self._exec(key)
        sources = self._exchange().gather(key, self.rank, published)
        for name in names:
            dst = exe.grad_dict.get(name)
            if dst is not None:
                sum_into(self.xp, dst, [grads[name] for grads in sources])
        self._phase("sum", tic)
        toc = time.perf_counter()
        self.update(key, names)
        self._phase("update", toc)
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
        if labels is None:       # the batch's labels, loaded as inputs (the data plane)
            labels = [exe.arg_dict[n] for n in label_names]
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
