"""The embedded Ray runtime: join a cluster if there is one, else start a local Ray.

With `RAY_ADDRESS` set, or `ray.init` already called, raymod uses that
cluster. Otherwise the first worker that needs Ray starts one sized for this
machine (no dashboard, a bounded object store, no auth prompt, quiet logs),
and raymod shuts it down at exit because it started it.
"""
import atexit
import logging
import os
import shutil
import sys
import time

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
    if not _is_terminal(sys.stderr):
        # Ray colours the "(pid=...)" prefix of worker output even into files and CI logs.
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    # Ray would set OMP_NUM_THREADS per worker only when it is unset; keep it so.
    if os.environ.get("RAY_ADDRESS"):
        logging.getLogger(__name__).info("raymod: joining the Ray cluster at RAY_ADDRESS=%s",
                                         os.environ["RAY_ADDRESS"])
        ray.init(address=os.environ["RAY_ADDRESS"], logging_level=logging.WARNING,
                 log_to_driver=True)
        return ray
    log = logging.getLogger(__name__)
    log.info("raymod: starting a local Ray for the device workers (no RAY_ADDRESS given); "
             "this takes a few seconds")
    tic = time.perf_counter()
    # address="local": a cluster `ray start` left on this machine (which a bare
    # ray.init would join, refusing num_cpus) is not the one asked for.
    ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
             object_store_memory=_object_store_bytes(), logging_level=logging.WARNING,
             configure_logging=True, log_to_driver=True)
    log.info("raymod: local Ray started in %.1f s", time.perf_counter() - tic)
    _state["started_here"] = True
    _state["session_dir"] = _claim_session_dir()
    atexit.register(shutdown_ray)
    return ray


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def shutdown_ray():
    """Shut Ray down if raymod started it (idempotent), and remove its session folder."""
    if not _state["started_here"]:
        return
    import ray
    if ray.is_initialized():
        ray.shutdown()
    _state["started_here"] = False
    _remove_session_dir(_state.pop("session_dir", None))


# Ray leaves a session folder (logs, sockets) under its temp dir per ray.init;
# the embedded Ray's would pile up run after run. raymod marks the ones it
# starts, removes its own at shutdown, and at start removes marked ones whose
# process is gone (a driver that was killed).
_MARK = "raymod_embedded_pid"


def _claim_session_dir():
    try:
        import ray
        node = ray._private.worker._global_node     # no public accessor in Ray 2.x
        session_dir = node.get_session_dir_path()
        with open(os.path.join(session_dir, _MARK), "w", encoding="ascii") as f:
            f.write(str(os.getpid()))
        _prune_stale_sessions(os.path.dirname(session_dir), keep=session_dir)
        return session_dir
    except Exception:  # noqa: BLE001  (housekeeping only: never fail a run over it)
        return None


def _prune_stale_sessions(temp_dir, keep):
    for name in os.listdir(temp_dir):
        path = os.path.join(temp_dir, name)
        if not name.startswith("session_") or os.path.islink(path) or path == keep:
            continue
        try:
            with open(os.path.join(path, _MARK), encoding="ascii") as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            continue                          # not raymod's, or unreadable: leave it
        if not _process_alive(pid):
            _remove_session_dir(path)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_session_dir(path):
    if not path:
        return
    shutil.rmtree(path, ignore_errors=True)
    latest = os.path.join(os.path.dirname(path), "session_latest")
    if os.path.islink(latest) and os.path.realpath(latest) == os.path.realpath(path):
        try:
            os.unlink(latest)
        except OSError:
            pass


def started_here():
    return _state["started_here"]
