"""`RayWorkerGroup`: each device's DeviceWorker on its own Ray actor.

The actors are gang-scheduled in one placement group (a bundle per device:
one GPU for a GPU context, the node's cores shared out among CPU contexts).
Calls are submitted without waiting; Ray runs one submitter's calls to an
actor in order, so forward, backward and update for a batch queue behind one
another. `wait` is the single place results are fetched, and it turns a
failed or dead actor into one `WorkerError` naming the device and the call.
"""
import logging
import os
import weakref

from ..base import MXNetError
from .runtime import ensure_ray
from .scheduler import StepScheduler
from .worker import DeviceWorker
from .worker_group import WorkerGroup
from .worker_steps import WorkerStepsMixin

PLACEMENT_TIMEOUT_S = 60.0


class WorkerError(MXNetError):
    """A device worker failed (an exception in a call, or the actor process died)."""


class _WorkerActor(WorkerStepsMixin, DeviceWorker):
    """The actor class: a DeviceWorker whose BLAS uses the cores it was given."""

    def __init__(self, context, rank, num_threads):
        _limit_threads(num_threads)
        super().__init__(context, rank)

    def pid(self):
        return os.getpid()


def _limit_threads(n):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(n)


def _bundles(contexts, total_cpus, free_cpus):
    """One bundle per device and the BLAS threads of each CPU worker.

    CPU workers divide the node's cores among them. When other workers hold
    some (a second module alive beside the first), the new ones ask only for
    what is free, so both can run (sharing cores) rather than wait forever.
    """
    n = max(1, len(contexts))
    threads = max(1, int(total_cpus) // n)
    ask = float(threads)
    if ask * n > free_cpus:
        ask = max(0.001, round(free_cpus / n, 3) - 0.001)
        logging.getLogger(__name__).info(
            "raymod: %d CPU(s) free for %d device workers; they will share cores",
            free_cpus, n)
    bundles = [{"CPU": 1, "GPU": 1} if ctx.device_type == "gpu" else {"CPU": ask}
               for ctx in contexts]
    return bundles, threads


class RayWorkerGroup(WorkerGroup):
    in_process = False

    def __init__(self, contexts, placement_timeout_s=PLACEMENT_TIMEOUT_S):
        super().__init__(contexts)
        ray = ensure_ray()
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
        self._ray = ray
        bundles, threads = _bundles(self.contexts, ray.cluster_resources().get("CPU", 1),
                                    ray.available_resources().get("CPU", 0))
        self._pg = placement_group(bundles, strategy="PACK")
        try:
            ray.get(self._pg.ready(), timeout=placement_timeout_s)
        except ray.exceptions.GetTimeoutError:
            remove_placement_group(self._pg)
            raise WorkerError(
                f"could not place {len(bundles)} device workers within "
                f"{placement_timeout_s:.0f} s: asked for bundles {bundles}, the cluster has "
                f"{ray.cluster_resources()} ({ray.available_resources()} available)") from None
        actor_cls = ray.remote(_WorkerActor)
        self.actors = []
        for rank, (ctx, bundle) in enumerate(zip(self.contexts, bundles)):
            strategy = PlacementGroupSchedulingStrategy(placement_group=self._pg,
                                                        placement_group_bundle_index=rank)
            self.actors.append(actor_cls.options(
                num_cpus=bundle["CPU"], num_gpus=bundle.get("GPU", 0),
                scheduling_strategy=strategy, max_restarts=0, max_task_retries=0,
            ).remote(ctx, rank, threads if ctx.device_type != "gpu" else 1))
        self._handles = {}
        self._closed = False
        self.scheduler = StepScheduler(self)
        self._finalizer = weakref.finalize(self, _release, ray, list(self.actors), self._pg)
        self.wait([a.ping.remote() for a in self.actors])

    def submit_one(self, rank, method, *args, **kwargs):
        ref = getattr(self.actors[rank], method).remote(*args, **kwargs)
        self._handles[ref] = (rank, method)
        return ref

    def submit(self, method, *args, per_worker=None, **kwargs):
        # Large arguments sent to every worker go through the object store once.
        args = tuple(self._share(a) for a in args)
        return super().submit(method, *args, per_worker=per_worker, **kwargs)

    def _share(self, value):
        if len(self) > 1 and _is_large(value):
            return self._ray.put(value)
        return value

    def wait_one(self, handle):
        return self.wait([handle])[0]

    def wait(self, handles):
        ray = self._ray
        try:
            return ray.get(list(handles))
        except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError) as err:
            raise self._describe_failure(handles, err) from None
        finally:
            for h in handles:
                self._handles.pop(h, None)

    def _describe_failure(self, handles, err):
        ray = self._ray
        for h in handles:
            try:
                ray.get(h, timeout=0)
            except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError) as e:
                rank, method = self._handles.get(h, (None, "?"))
                where = f"{self.contexts[rank]} (worker {rank})" if rank is not None else "?"
                if isinstance(e, ray.exceptions.RayActorError):
                    return WorkerError(f"device worker {where} died during {method}(): "
                                       f"{type(e).__name__}: {e}")
                return WorkerError(f"device worker {where} failed in {method}():\n{e}")
            except Exception:  # noqa: BLE001 - still running or other: keep looking
                continue
        return WorkerError(f"a device worker failed: {err}")

    def put(self, value):
        return self._ray.put(value)

    def pids(self):
        return self.wait([a.pid.remote() for a in self.actors])

    def shutdown(self):
        if not self._closed:
            self._closed = True
            self._finalizer()


def _is_large(value, threshold=1 << 16):
    nbytes = getattr(value, "nbytes", None)
    if nbytes is not None:
        return nbytes >= threshold
    if isinstance(value, dict):
        return sum(getattr(v, "nbytes", 0) for v in value.values()) >= threshold
    return False


def _release(ray, actors, pg):
    """Kill the actors and free their placement group (at shutdown, del or exit)."""
    if not ray.is_initialized():
        return
    from ray.util.placement_group import remove_placement_group
    for actor in actors:
        try:
            ray.kill(actor)
        except Exception:  # noqa: BLE001 - already dead
            pass
    try:
        remove_placement_group(pg)
    except Exception:  # noqa: BLE001 - already removed
        pass
