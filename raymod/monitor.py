"""`rm.mon.Monitor`: statistics of op outputs, gradients and arguments every few batches."""
import logging
import re

import numpy as np

from .context import to_numpy


def _default_stat(x):
    x = to_numpy(x)
    return np.linalg.norm(x) / np.sqrt(x.size) if x.size else 0.0


def _as_ndarray(array):
    """MXNet hands `stat_func` an NDArray: host arrays become NDArray views (no copy)."""
    from .ndarray import NDArray
    if isinstance(array, np.ndarray) and not isinstance(array, NDArray):
        return array.view(NDArray)
    return array


class Monitor:
    """MXNet's Monitor: `install(exe)`, then `tic()` / `toc()` / `toc_print()` per batch.

    On Ray workers the module installs a copy of the monitor on each worker
    (`stat_func` travels with it, so it must pickle with cloudpickle, as
    lambdas and closures do); the statistics are computed there and `toc()`
    gathers them into the same list.
    """

    def __init__(self, interval, stat_func=None, pattern=".*", sort=False, monitor_all=False):
        self.interval = interval
        self.stat_func = stat_func or _default_stat
        self.re_prog = re.compile(pattern)
        self.sort = sort
        self.monitor_all = monitor_all
        self.activated = False
        self.queue = []
        self.step = 0
        self.exes = []
        self._remote = []        # executor groups on Ray workers that collect for us

    def __getstate__(self):
        # A copy sent to a worker takes the settings, not the driver's executors.
        state = dict(self.__dict__)
        state.update(exes=[], _remote=[], queue=[], activated=False)
        return state

    def stat_helper(self, name, array):
        if not self.activated or not self.re_prog.match(name):
            return
        self.queue.append((self.step, name, self.stat_func(_as_ndarray(array))))

    def install(self, exe):
        exe.set_monitor_callback(self.stat_helper, self.monitor_all)
        self.exes.append(exe)

    def install_remote(self, source):
        """Collect from `source` too: an object whose `monitor_collect(monitor)` returns
        (op statistics, argument statistics) computed on the workers."""
        if source not in self._remote:
            self._remote.append(source)

    def argument_stats(self, exe, step):
        """(step, name, stat) for every matching argument and aux state of `exe`."""
        return [(step, name, self.stat_func(_as_ndarray(array)))
                for name, array in list(exe.arg_dict.items()) + list(exe.aux_dict.items())
                if self.re_prog.match(name)]

    def tic(self):
        """Start collecting if this batch is one of every `interval`."""
        if self.step % self.interval == 0:
            self.queue = []
            self.activated = True
        self.step += 1

    def toc(self):
        """Stop collecting; add matching arguments and aux states; return (step, name, stat)."""
        if not self.activated:
            return []
        arg_stats = []
        for source in self._remote:
            ops, args = source.monitor_collect(self)
            self.queue.extend(ops)
            arg_stats.extend(args)
        for exe in self.exes:
            self.queue.extend(self.argument_stats(exe, self.step))
        self.queue.extend(arg_stats)
        self.activated = False
        res = []
        queue = sorted(self.queue, key=lambda x: x[1]) if self.sort else self.queue
        for n, k, v in queue:
            # MXNet's text: each stat (a list of stats allowed) followed by a tab;
            # a scalar prints as a number, anything else as its array.
            text = ""
            for value in (v if isinstance(v, list) else [v]):
                value = to_numpy(value)
                text += (str(value.reshape(())[()]) if value.size == 1 and value.ndim <= 1
                         else str(value)) + "\t"
            res.append((n, k, text))
        self.queue = []
        return res

    def toc_print(self):
        for n, k, v in self.toc():
            logging.info("Batch: {:7d} {:30s} {:s}".format(n, k, v))
