"""The parallel layer's exceptions.

`ModuleStateError`: calls made in the wrong state (bind before forward, ...).

It is also an AssertionError, because MXNet raised bare asserts there and
ported tests catch AssertionError; our message says which call to make first.
"""
from ..base import MXNetError


class ModuleStateError(MXNetError, AssertionError):
    """A Module/executor-group call made before the call it depends on."""


class WorkerError(MXNetError):
    """A device worker failed (an exception in a call, or the actor process died)."""


class WorkerLost(WorkerError):
    """A device worker's process died, in a group that may recover (the scheduler
    replaces the worker and replays); raised instead of shutting the group down."""

    def __init__(self, message, ranks):
        super().__init__(message)
        self.ranks = ranks
