"""The exception for calls made in the wrong state (bind before forward, ...).

It is also an AssertionError, because MXNet raised bare asserts there and
ported tests catch AssertionError; our message says which call to make first.
"""
from ..base import MXNetError


class ModuleStateError(MXNetError, AssertionError):
    """A Module/executor-group call made before the call it depends on."""
