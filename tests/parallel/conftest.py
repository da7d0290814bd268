"""One Ray for the whole test session (tests that need Ray ask for `ray_session`).

Ray starts once (about 2.5 s) with the settings of DESIGN.md's tests: few
CPUs, no dashboard, a 256 MiB object store and no auth token. Tests that
need a Ray of their own (several nodes, a driver that exits) run it in a
subprocess, so they never meet this one.
"""
import os

import pytest


@pytest.fixture(scope="session")
def ray_session():
    os.environ["RAY_AUTH_MODE"] = "disabled"
    import ray
    if ray.is_initialized():          # someone else's Ray: use it, leave it running
        yield ray
        return
    # Four logical CPUs and one BLAS thread per worker (on a 2-core machine): the
    # warm gangs of 1 and 2 workers the module tests alternate between both fit, so
    # they stay parked instead of being rebuilt for every other test.
    # address="local": never join a cluster another process started on this machine
    ray.init(address="local", num_cpus=4, include_dashboard=False,
             object_store_memory=256 * 1024 * 1024, log_to_driver=True)
    from raymod.parallel import set_cpu_worker_threads
    previous = set_cpu_worker_threads(1)
    try:
        yield ray
    finally:
        set_cpu_worker_threads(previous)
        ray.shutdown()
