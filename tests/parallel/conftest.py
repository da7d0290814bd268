"""One Ray for the whole test session (tests that need Ray ask for `ray_session`).

Ray starts once (about 2.5 s) with the settings of DESIGN.md's tests: two
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
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024 * 1024,
             log_to_driver=True)
    try:
        yield ray
    finally:
        ray.shutdown()
