"""What an executor group hands to users: arrays of their own, and executor views.

`handed_back` is the one conversion at the group's boundary (outputs, input
gradients, states); `WorkerExecutorView` is `execs[i]` when the executor
lives on a Ray worker.
"""
import numpy as np

from ..ndarray import NDArray
from .errors import ModuleStateError


def handed_back(array, context, writable=True):
    """An array as the group hands it to users: an `NDArray` of its own (MXNet's type,
    writable, not changed by the next forward), or a read-only one for executor views.

    Device (cupy) arrays are copied and stay on their device.
    """
    if not isinstance(array, np.ndarray):
        return array.copy()
    out = np.array(array, copy=True).view(NDArray)
    out._ctx = context
    out.flags.writeable = writable
    return out


class WorkerExecutorView:
    """`execs[i]` on Ray workers: the executor's dicts as read-only host copies.

    Every access fetches the current values from the worker (after the work
    queued before it), so a view is a snapshot, not the live array: writing
    into it raises, as the executor's real arrays live in the worker process.
    """

    def __init__(self, group, rank):
        self._group = group
        self._rank = rank

    def _fetch(self, which):
        values = self._group._call("exec_arrays", self._group._key, which)[self._rank]
        ctx = self._group.contexts[self._rank]
        if which == "outputs":
            return [handed_back(v, ctx, writable=False) for v in values]
        return {n: handed_back(v, ctx, writable=False) for n, v in values.items()}

    @property
    def arg_dict(self):
        return self._fetch("arg_dict")

    @property
    def grad_dict(self):
        return self._fetch("grad_dict")

    @property
    def aux_dict(self):
        return self._fetch("aux_dict")

    @property
    def outputs(self):
        return self._fetch("outputs")

    @property
    def arg_arrays(self):
        values = self.arg_dict
        return [values[n] for n in self._group.arg_names]

    @property
    def grad_arrays(self):
        values = self.grad_dict
        return [values.get(n) for n in self._group.arg_names]

    @property
    def aux_arrays(self):
        values = self.aux_dict
        return [values[n] for n in self._group.aux_names]

    def set_monitor_callback(self, callback, monitor_all=False):
        raise ModuleStateError("the executor lives on a Ray worker: install a Monitor with "
                               "Module.install_monitor(mon), which runs it on the workers")
