"""The embedded Ray runtime: join a cluster if there is one, else start a local Ray.

With `RAY_ADDRESS` set, or `ray.init` already called, raymod uses that
cluster. Otherwise the first worker that needs Ray starts one sized for this
machine (no dashboard, a bounded object store, no auth prompt, quiet logs),
and raymod shuts it down at exit because it started it.
"""
import atexit
import logging
import os

_state = {"started_here": False}
_OBJECT_STORE_MAX = 2 * 1024**3


def _object_store_bytes():
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 512 * 1024**2
    return int(max(256 * 1024**2, min(_OBJECT_STORE_MAX, total * 0.1)))


def ensure_ray():
    """Return the `ray` module, initialised (started here only when no cluster is given)."""
    import ray
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # Ray would set OMP_NUM_THREADS per worker only when it is unset; keep it so.
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], logging_level=logging.WARNING,
                 log_to_driver=True)
        return ray
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False,
             object_store_memory=_object_store_bytes(), logging_level=logging.WARNING,
             configure_logging=True, log_to_driver=True)
    _state["started_here"] = True
    atexit.register(shutdown_ray)
    return ray


def shutdown_ray():
    """Shut Ray down if raymod started it (idempotent)."""
    if not _state["started_here"]:
        return
    import ray
    if ray.is_initialized():
        ray.shutdown()
    _state["started_here"] = False


def started_here():
    return _state["started_here"]
