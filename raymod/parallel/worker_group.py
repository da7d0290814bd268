"""Worker groups: run a named DeviceWorker method on every worker, results in rank order.

`InProcessWorkerGroup` keeps the workers in the driver's process (for debugging
and for tests of the math); `RayWorkerGroup` (raymod.parallel.ray_group) puts
each on a Ray actor. Both answer the same calls, so nothing above this layer
knows where a worker runs.
"""
from .dataplane import DataPlane
from .worker import DeviceWorker


class WorkerGroup:
    """The interface: `call` (blocking), `submit`/`wait` (asynchronous), `put`, `shutdown`."""

    in_process = False

    def __init__(self, contexts):
        self.contexts = list(contexts)

    def __len__(self):
        return len(self.contexts)

    def call(self, method, *args, per_worker=None, **kwargs):
        """Run `method` on every worker and return the results in rank order.

        `per_worker` is a list (one entry per worker) of extra positional
        arguments appended after `args`.
        """
        return self.wait(self.submit(method, *args, per_worker=per_worker, **kwargs))

    def submit(self, method, *args, per_worker=None, **kwargs):
        extra = per_worker or [()] * len(self)
        return [self.submit_one(rank, method, *args, *extra[rank], **kwargs)
                for rank in range(len(self))]

    def wait(self, handles):
        return [self.wait_one(h) for h in handles]

    def put(self, value):
        """A handle for a value sent to several workers (an ObjectRef on Ray)."""
        return value

    def forget(self, handles):
        """Drop what is kept about calls nobody will wait for (nothing, by default)."""

    def submit_one(self, rank, method, *args, **kwargs):
        raise NotImplementedError

    def wait_one(self, handle):
        raise NotImplementedError

    def shutdown(self):
        """Release the workers (idempotent)."""


class InProcessWorkerGroup(WorkerGroup):
    """Workers as plain objects in the driver's process: calls run immediately."""

    in_process = True

    def __init__(self, contexts):
        super().__init__(contexts)
        self.workers = [DeviceWorker(ctx, rank) for rank, ctx in enumerate(self.contexts)]
        self.plane = DataPlane(self.put, self.call)     # in-memory datasets, not copied

    def submit_one(self, rank, method, *args, **kwargs):
        return getattr(self.workers[rank], method)(*args, **kwargs)

    def wait_one(self, handle):
        return handle
