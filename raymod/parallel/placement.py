"""Where a module's device workers run: in this process, or one Ray actor per device.

Ray actors are the default (issue "Devices as Ray actors"); the in-process
placement is the explicit choice for debugging and for tests of the math.
`Module(..., placement='in_process')` picks one for a module,
`set_default_placement` for every module made afterwards, and the
environment variable RAYMOD_PLACEMENT the default of a process (so a script
can be run on either placement without changing it).
"""
import os

from .worker_group import InProcessWorkerGroup

PLACEMENTS = ("ray", "in_process")
PLACEMENT_ENV = "RAYMOD_PLACEMENT"
_default = {"placement": None, "placement_timeout_s": None, "cpu_threads": None}


def set_default_placement(placement):
    """Make `placement` ('ray' or 'in_process') the default for new modules."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, received {placement!r}")
    _default["placement"] = placement


def default_placement():
    """The placement of new modules: set_default_placement's, else RAYMOD_PLACEMENT's,
    else 'ray'."""
    if _default["placement"] is not None:
        return _default["placement"]
    placement = os.environ.get(PLACEMENT_ENV) or "ray"
    if placement not in PLACEMENTS:
        raise ValueError(f"{PLACEMENT_ENV} must be one of {PLACEMENTS}, "
                         f"received {placement!r}")
    return placement


def set_placement_timeout(seconds):
    """How long Ray placement may take before a module's bind fails (None: 60 s).

    Returns the previous setting, so a caller can put it back.
    """
    if seconds is not None and not (isinstance(seconds, (int, float)) and seconds > 0):
        raise ValueError(f"placement timeout must be a positive number of seconds or None, "
                         f"received {seconds!r}")
    previous, _default["placement_timeout_s"] = _default["placement_timeout_s"], seconds
    return previous


def set_cpu_worker_threads(threads):
    """Cores and BLAS threads of each Ray CPU worker made from now on.

    None (the default) shares the cluster's cores out among a module's CPU
    workers. Returns the previous setting.
    """
    if threads is not None and not (isinstance(threads, int) and threads >= 1):
        raise ValueError(f"CPU worker threads must be a positive int or None, "
                         f"received {threads!r}")
    previous, _default["cpu_threads"] = _default["cpu_threads"], threads
    return previous


def create_worker_group(contexts, placement=None):
    """The worker group for `contexts`: Ray actors or workers in this process."""
    placement = placement or default_placement()
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, received {placement!r}")
    if placement == "in_process":
        return InProcessWorkerGroup(contexts)
    from .ray_group import RayWorkerGroup
    return RayWorkerGroup(contexts, placement_timeout_s=_default["placement_timeout_s"],
                          cpu_threads=_default["cpu_threads"])
