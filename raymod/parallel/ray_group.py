"""`RayWorkerGroup`: each device's DeviceWorker on its own Ray actor.

The actors are gang-scheduled in one placement group (a bundle per device:
one GPU for a GPU context, the node's cores shared out among CPU contexts).
Calls are submitted without waiting; Ray runs one submitter's calls to an
actor in order, so forward, backward and update for a batch queue behind one
another. `wait` is the single place results are fetched, and it turns a
failed or dead actor into one `WorkerError` naming the device and the call.
"""
import logging
import math
import os
import re
import time
import weakref

from .errors import WorkerError, WorkerLost  # noqa: F401  (WorkerError: its public home)
from .runtime import ensure_ray
from .pool import POOL
from .scheduler import StepScheduler
from .worker import DeviceWorker
from .worker_group import WorkerGroup
from .worker_steps import WorkerStepsMixin

PLACEMENT_TIMEOUT_S = 60.0
_WORKER_MEMORY = 64 * 1024**2   # a worker's bundle when no core is free
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SETTLE_S = 5.0                  # how long a failure waits for the rest of its batch
_RECENT_RELEASE_S = 5.0          # a group released this recently may still look busy ...
_RELEASE_SETTLE_S = 1.5          # ... for up to this long
_last_release = [float("-inf")]


# Calls that build a worker's state (as opposed to running steps): a replacement
# worker replays them, in order, before it takes the others' state.
_JOURNALED = frozenset(("bind", "reshape", "release", "bind_slot", "init_updater",
                        "install_monitor", "hold_rows", "drop_rows"))


class _WorkerActor(WorkerStepsMixin, DeviceWorker):
    """The actor class: a DeviceWorker whose BLAS uses the cores it was given."""

    def __init__(self, context, rank, num_threads):
        _limit_threads(num_threads)
        super().__init__(context, rank)

    def pid(self):
        return os.getpid()

    def node_id(self):
        import ray
        return ray.get_runtime_context().get_node_id()


def _limit_threads(n):
    # A core dependency: without it every worker's BLAS would use all the node's cores.
    from threadpoolctl import threadpool_limits
    threadpool_limits(n)


def _wanted_cpus(contexts, node_cpus, cpu_threads=None):
    """(cores each worker should get, BLAS threads of a CPU worker).

    A GPU worker takes one core. CPU workers share the cluster's cores evenly,
    as many each as still lets every one of them fit on some node: on nodes
    of 8 and 4 cores, two CPU workers get 4 each (6 each would not fit).
    """
    node_cpus = [int(c) for c in node_cpus if c >= 1] or [1]
    n_gpu = sum(ctx.device_type == "gpu" for ctx in contexts)
    n_cpu = len(contexts) - n_gpu
    threads = cpu_threads or max(1, (sum(node_cpus) - n_gpu) // max(1, n_cpu))
    while cpu_threads is None and threads > 1 and \
            sum(c // threads for c in node_cpus) < n_cpu:
        threads -= 1
    return [1.0 if ctx.device_type == "gpu" else float(threads) for ctx in contexts], threads


def _free_cpus(ray, needed):
    """Free cores. Right after a group was removed (a module deleted a moment ago) Ray
    reports its cores as free only at its next resource report: wait for that, briefly,
    rather than ask for too little and pack the new workers onto fewer cores."""
    recent = time.monotonic() - _last_release[0] < _RECENT_RELEASE_S
    deadline = time.monotonic() + (_RELEASE_SETTLE_S if recent else 0.0)
    while True:
        free = ray.available_resources().get("CPU", 0)
        if free >= needed or time.monotonic() >= deadline:
            return free
        time.sleep(0.02)


def _bundles(contexts, node_cpus, free_cpus, cpu_threads=None):
    """One bundle per device and the BLAS threads of each CPU worker.

    A GPU worker asks for its GPU and a core, a CPU worker for its share of
    the cores. When other workers hold cores (a second module alive beside
    the first), the new ones ask for a share of what is free, and for no core
    at all when none is free (a bundle of memory alone still places the
    gang), so both modules run, sharing cores, rather than wait forever.
    """
    wants, threads = _wanted_cpus(contexts, node_cpus, cpu_threads)
    scale = min(1.0, max(0.0, free_cpus) / sum(wants)) if wants else 1.0
    if scale < 1.0:
        logging.getLogger(__name__).info(
            "raymod: other Ray work holds the cores (%.4g of %.4g wanted are free); these %d "
            "device workers will share cores with it, which is expected with several "
            "modules or Tune trials at once; nothing to do", free_cpus, sum(wants), len(contexts))
        if cpu_threads is None:
            # Fewer BLAS threads where cores are shared: spinning threads of two
            # modules on the same cores slow both (a 2-stage chain ran 2.8x slower).
            threads = max(1, int(threads * scale))
    bundles = []
    for ctx, want in zip(contexts, wants):
        bundle = {"GPU": 1} if ctx.device_type == "gpu" else {}
        cpus = math.floor(want * scale * 1e4) / 1e4      # Ray counts in 1e-4 units
        if cpus > 0:
            bundle["CPU"] = cpus
        elif not bundle:
            bundle["memory"] = _WORKER_MEMORY
        bundles.append(bundle)
    return bundles, threads


def _resource_summary(resources):
    """CPU, GPU and memory of a Ray resource dict, without placement-group bookkeeping."""
    keep = {k: v for k, v in resources.items()
            if "_group_" not in k and not k.startswith(("node:", "bundle_group"))}
    keep.setdefault("CPU", 0.0)
    keep.setdefault("GPU", 0.0)
    return ", ".join(f"{k}={_fmt(keep[k], k)}" for k in sorted(keep))


def _fmt(value, key):
    if "memory" in key:
        return f"{value / 1024**3:.2f}GiB"
    return f"{value:g}"


def _node_cpus(ray):
    return [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]


def _gang_shape(contexts):
    """What a parked gang must match: the devices, except that CPU workers all compute
    with numpy, so any n CPU workers serve n CPU contexts (cpu(0) is only a label)."""
    if all(c.device_type == "cpu" for c in contexts):
        return ("cpu", len(contexts))
    return tuple(str(c) for c in contexts)


def _session(ray):
    """This Ray session's name: parked workers of an earlier session are never lent."""
    try:
        return ray._private.worker.global_worker.node.session_name
    except AttributeError:
        return None


class _ActorGang:
    """One actor per context in one placement group (a bundle per device)."""

    def __init__(self, ray, contexts, timeout, cpu_threads, node_cpus):
        from ray.util.placement_group import placement_group, remove_placement_group
        self._ray = ray
        wants = _wanted_cpus(contexts, node_cpus, cpu_threads)[0]
        bundles, threads = _bundles(contexts, node_cpus, _free_cpus(ray, sum(wants)),
                                    cpu_threads)
        self.pg = placement_group(bundles, strategy="PACK")
        try:
            ray.get(self.pg.ready(), timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            remove_placement_group(self.pg)
            raise WorkerError(
                f"could not place {len(bundles)} device workers for "
                f"{[str(c) for c in contexts]} within {timeout:g} s: asked for "
                f"bundles {bundles} (strategy PACK); the cluster has "
                f"{_resource_summary(ray.cluster_resources())}, of which "
                f"{_resource_summary(ray.available_resources())} are free") from None
        self._contexts, self._bundles, self._threads = list(contexts), bundles, threads
        self.cpus = sum(b.get("CPU", 0) for b in bundles)    # what it holds while parked
        self.actors = [self._start_actor(rank) for rank in range(len(contexts))]
        self._released = False

    def _start_actor(self, rank):
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
        ctx, bundle = self._contexts[rank], self._bundles[rank]
        strategy = PlacementGroupSchedulingStrategy(placement_group=self.pg,
                                                    placement_group_bundle_index=rank)
        return self._ray.remote(_WorkerActor).options(
            num_cpus=bundle.get("CPU", 0), num_gpus=bundle.get("GPU", 0),
            scheduling_strategy=strategy, max_restarts=0, max_task_retries=0,
        ).remote(ctx, rank, self._threads if ctx.device_type != "gpu" else 1)

    def replace_actor(self, rank, timeout):
        """A new actor in rank's bundle (Ray re-places the bundle if its node is gone)."""
        ray = self._ray
        try:
            ray.kill(self.actors[rank])
        except Exception:  # noqa: BLE001 - already dead
            pass
        try:
            ray.get(self.pg.ready(), timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise WorkerError(
                f"no resources to replace device worker {self._contexts[rank]} within "
                f"{timeout:g} s: its bundle {self._bundles[rank]} could not be placed again; "
                f"the cluster has {_resource_summary(ray.cluster_resources())}, of which "
                f"{_resource_summary(ray.available_resources())} are free") from None
        self.actors[rank] = self._start_actor(rank)
        ray.get(self.actors[rank].ping.remote(), timeout=timeout)
        return self.actors[rank]

    def relabel(self, contexts):
        """CPU workers are interchangeable: a leased gang takes the asked-for labels."""
        if [str(c) for c in contexts] != [str(c) for c in self._contexts]:
            self._ray.get([a.relabel.remote(c) for a, c in zip(self.actors, contexts)])
            self._contexts = list(contexts)

    def alive(self):
        return not self._released and self._ray.is_initialized()

    def reset(self):
        """Ask every worker to drop what the last module put there (not waited for)."""
        return [a.reset.remote() for a in self.actors]

    def wait_reset(self, handles, timeout=_SETTLE_S):
        """Whether every worker answered its reset (alive, and clean)."""
        if not self.alive():
            return False
        try:
            self._ray.get(handles, timeout=timeout)
            return True
        except Exception:  # noqa: BLE001 - dead, failed or hung: not to be lent
            return False

    def release(self):
        """Kill the actors and free the placement group (idempotent)."""
        if not self._released:
            self._released = True
            _release(self._ray, list(self.actors), self.pg)


class RayWorkerGroup(WorkerGroup):
    """One `DeviceWorker` actor per context, gang-placed in one placement group.

    Parameters
    ----------
    contexts : list of Context
    placement_timeout_s : float, optional
        How long to wait for the placement group before failing with a
        message listing what was asked and what the cluster has
        (default `PLACEMENT_TIMEOUT_S`).
    cpu_threads : int, optional
        Cores (and BLAS threads) of each CPU worker; default: the cluster's
        cores shared out among them.
    """

    in_process = False

    def __init__(self, contexts, placement_timeout_s=None, cpu_threads=None):
        super().__init__(contexts)
        if cpu_threads is not None and not (isinstance(cpu_threads, int) and cpu_threads >= 1):
            raise ValueError(f"cpu_threads must be a positive int or None, "
                             f"received {cpu_threads!r}")
        timeout = PLACEMENT_TIMEOUT_S if placement_timeout_s is None else placement_timeout_s
        if not timeout > 0:
            raise ValueError(f"placement_timeout_s must be a positive number of seconds, "
                             f"received {placement_timeout_s!r}")
        ray = ensure_ray()
        self._ray = ray
        key = (_gang_shape(self.contexts), cpu_threads, _session(ray))
        node_cpus = []           # asked of the cluster only when no parked gang fits

        def needed_cpus():
            node_cpus[:] = _node_cpus(ray)
            return sum(_wanted_cpus(self.contexts, node_cpus, cpu_threads)[0])

        self._gang = POOL.lease(
            key, lambda: _ActorGang(ray, self.contexts, timeout, cpu_threads,
                                    node_cpus or _node_cpus(ray)),
            free_cpus=lambda: ray.available_resources().get("CPU", 0.0),
            needed_cpus=needed_cpus)
        self._gang.relabel(self.contexts)
        self.actors, self._pg = self._gang.actors, self._gang.pg
        self._handles = {}
        self._closed = None          # why the group was shut down, once it is
        self._timeout = timeout
        self.journal = []            # (rank, method, args, kwargs) of _JOURNALED calls
        self.journal_version = 0     # bumped by each journaled call
        self.recoverable = False     # set by the scheduler while it can replay ...
        self.unrecoverable_reason = "no snapshot of the workers was taken yet"  # ... or why not
        self.scheduler = StepScheduler(self)
        # Released (by its owner, or when collected): the workers go back to the pool.
        self._finalizer = weakref.finalize(self, POOL.give_back, key, self._gang)
        self.wait([a.ping.remote() for a in self.actors])

    def submit_one(self, rank, method, *args, **kwargs):
        if self._closed is not None:
            if method == "release":          # the executors went with the actors
                return None
            raise WorkerError(f"the device workers for {[str(c) for c in self.contexts]} "
                              f"were shut down ({self._closed}); cannot run {method}(). "
                              f"Bind the module again for new workers.")
        ref = getattr(self.actors[rank], method).remote(*args, **kwargs)
        self._handles[ref] = (rank, method, None)
        if method in _JOURNALED:
            self.journal.append((rank, method, args, kwargs))
            self.journal_version += 1
        return ref

    def dead_ranks(self):
        """The ranks whose actor no longer answers."""
        refs = [a.ping.remote() for a in self.actors]
        self._ray.wait(refs, num_returns=len(refs), timeout=_SETTLE_S)
        dead = []
        for rank, ref in enumerate(refs):
            try:
                self._ray.get(ref, timeout=0)
            except Exception:  # noqa: BLE001 - dead, or hung past the settle time
                dead.append(rank)
        return dead

    def replace(self, rank):
        """A new actor for `rank`, in its bundle, rebuilt from the journal."""
        actor = self._gang.replace_actor(rank, self._timeout)
        self.actors = self._gang.actors
        self._finalizer.detach()      # the gang changed: release it, never park it
        self._finalizer = weakref.finalize(self, self._gang.release)
        for entry_rank, method, args, kwargs in self.journal:
            if entry_rank == rank:
                self._ray.get(getattr(actor, method).remote(*args, **kwargs))

    def consume(self, refs, timeout=_SETTLE_S):
        """Fetch (and drop) the outcome of calls nobody will wait for, once they end."""
        ready, _ = self._ray.wait(list(refs), num_returns=len(refs), timeout=timeout) \
            if refs else ([], [])
        for ref in ready:
            try:
                self._ray.get(ref, timeout=0)
            except Exception:  # noqa: BLE001 - the loss's consequences, reported once
                pass
            self._handles.pop(ref, None)

    def wait_refs(self, refs):
        return self.wait(refs)

    def give_up(self, reason):
        """Recovery failed: free everything, as after an unrecovered loss."""
        self._shut(reason)

    def settle(self):
        """Wait (briefly) for every call still running, ignoring their errors."""
        self.consume(list(self._handles))
        self._handles.clear()

    def annotate(self, handles, note):
        """Attach `note` (e.g. which batch) to the calls behind `handles`, for errors."""
        for h in handles:
            if h in self._handles:
                rank, method, _ = self._handles[h]
                self._handles[h] = (rank, method, note)

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
        """Results of `handles` in order; one WorkerError for the first that failed."""
        ray = self._ray
        handles = list(handles)
        refs = [h for h in handles if h is not None]
        try:
            results = iter(ray.get(refs))
            return [None if h is None else next(results) for h in handles]
        except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError) as err:
            error, died = self._describe_failure(refs, err)
            if died and self.recoverable:
                raise WorkerLost(str(error), self.dead_ranks()) from None
            if died:
                # A dead actor leaves the gang useless: free the others and the bundles.
                self._shut(str(error).split("\n", 1)[0])
                if self.unrecoverable_reason:
                    error = WorkerError(f"{error}\n(not recovered: "
                                        f"{self.unrecoverable_reason})")
            raise error from None
        finally:
            for h in refs:
                self._handles.pop(h, None)

    def _describe_failure(self, handles, err):
        """(WorkerError naming the device, the call and the batch; whether an actor died).

        Waits (briefly) for every call of the batch, so the first failure in
        submission order is the one reported and the errors of calls that
        failed only because of it (an exchange fed by a failed step) are
        consumed here instead of being logged by Ray as unhandled.
        """
        ray = self._ray
        ray.wait(handles, num_returns=len(handles), timeout=_SETTLE_S)
        first = None
        for h in handles:
            try:
                ray.get(h, timeout=0)
            except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError) as e:
                if first is None:
                    first = (h, e)
            except Exception:  # noqa: BLE001 - still running: not the one to report
                continue
        if first is None:
            died = isinstance(err, ray.exceptions.RayActorError)
            return WorkerError(f"a device worker failed: {err}"), died
        h, e = first
        rank, method, note = self._handles.get(h, (None, "?", None))
        where = f"{self.contexts[rank]} (worker {rank})" if rank is not None else "?"
        during = f"{method}()" + (f" of {note}" if note else "")
        if isinstance(e, ray.exceptions.RayActorError):
            return WorkerError(f"device worker {where} died during {during}: "
                               f"{type(e).__name__}: {e}"), True
        return WorkerError(f"device worker {where} failed in {during}:\n"
                           f"{_worker_traceback(e)}"), False

    def forget(self, handles):
        """Drop the bookkeeping of calls nobody will wait for (after a failure)."""
        for h in handles:
            self._handles.pop(h, None)

    def put(self, value):
        return self._ray.put(value)

    def pids(self):
        """The operating-system process id of each worker, in rank order."""
        return self.wait([a.pid.remote() for a in self.actors])

    def node_ids(self):
        """The Ray node id each worker runs on, in rank order."""
        return self.wait([a.node_id.remote() for a in self.actors])

    def _shut(self, reason, reuse=False):
        if self._closed is None:
            self._closed = reason
            if reuse:
                self._finalizer()        # healthy: reset and parked for the next module
            else:
                self._finalizer.detach()
                self._gang.release()

    def shutdown(self):
        self._shut("shut down by its owner", reuse=True)


def _worker_traceback(error):
    """Ray's text of a worker exception, as a plain Python traceback.

    Ray heads it with `ray::Class.method() (pid=..., ip=...)` in terminal
    colours and drops the `Traceback` line; keep the header (it says which
    process), restore the line, and drop colour codes and caret-only lines.
    """
    lines = [line for line in _ANSI.sub("", str(error)).splitlines()
             if line.strip(" ^")]
    if not lines:
        return ""
    return "\n".join(lines[:1] + ["Traceback (most recent call last):"] + lines[1:])


def _is_large(value, threshold=1 << 16):
    """Whether `value` (an array, or a dict/list of them) is worth an object-store put."""
    return _nbytes(value) >= threshold


def _nbytes(value):
    nbytes = getattr(value, "nbytes", None)
    if nbytes is not None:
        return nbytes
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 0


def _release(ray, actors, pg):
    """Kill the actors and free their placement group (at shutdown, del or exit)."""
    if not ray.is_initialized():
        return
    from ray.util.placement_group import remove_placement_group
    _last_release[0] = time.monotonic()
    for actor in actors:
        try:
            ray.kill(actor)
        except Exception:  # noqa: BLE001 - already dead
            pass
    try:
        remove_placement_group(pg)
    except Exception:  # noqa: BLE001 - already removed
        pass
