"""Devices: DeviceWorker, where workers run, DataParallelExecutorGroup, KVStore.

This is the only layer that may import Ray (lazily, in ray_group and the
dist kvstore), so the math and the modules stay testable in one process.
"""
from .placement import (  # noqa: F401
    default_placement, set_cpu_worker_threads, set_default_placement, set_placement_timeout)
from .pool import release_idle_workers, set_idle_worker_limit  # noqa: F401
from .recovery import kill_worker  # noqa: F401
