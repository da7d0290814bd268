"""Where a module's device workers run: in this process, or one Ray actor per device.

Ray actors are the default (issue "Devices as Ray actors"); the in-process
placement is the explicit choice for debugging and for tests of the math.
`Module(..., placement='in_process')` picks one for a module,
`set_default_placement` for every module made afterwards.
"""
from .worker_group import InProcessWorkerGroup

PLACEMENTS = ("ray", "in_process")
_default = {"placement": "ray"}


def set_default_placement(placement):
    """Make `placement` ('ray' or 'in_process') the default for new modules."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, received {placement!r}")
    _default["placement"] = placement


def default_placement():
    return _default["placement"]


def create_worker_group(contexts, placement=None):
    placement = placement or _default["placement"]
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, received {placement!r}")
    if placement == "in_process":
        return InProcessWorkerGroup(contexts)
    from .ray_group import RayWorkerGroup
    return RayWorkerGroup(contexts)
