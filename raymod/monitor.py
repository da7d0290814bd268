"""`rm.mon.Monitor`: statistics of op outputs, gradients and arguments every few batches."""
import logging
import re

import numpy as np

from .context import to_numpy


def _default_stat(x):
    x = to_numpy(x)
    return np.linalg.norm(x) / np.sqrt(x.size) if x.size else 0.0


class Monitor:
    """MXNet's Monitor: `install(exe)`, then `tic()` / `toc()` / `toc_print()` per batch."""

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

    def stat_helper(self, name, array):
        if not self.activated or not self.re_prog.match(name):
            return
        self.queue.append((self.step, name, self.stat_func(array)))

    def install(self, exe):
        exe.set_monitor_callback(self.stat_helper, self.monitor_all)
        self.exes.append(exe)

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
        for exe in self.exes:
            for name, array in list(exe.arg_dict.items()) + list(exe.aux_dict.items()):
                if self.re_prog.match(name):
                    self.queue.append((self.step, name, self.stat_func(array)))
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
