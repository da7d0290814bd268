"""`DeviceWorker`: one device's executors, optimizer state and metric.

A worker lives in the driver's process or inside a Ray actor; either way it
is driven through named methods that take and return plain data (shapes,
dicts of arrays, symbols that pickle as JSON), so nothing about it needs the
driver's memory. Executors are keyed: a Module's group binds one key, each
bucket of a BucketingModule another, all sharing the first key's parameter
and gradient buffers.
"""
import copy

import numpy as np

from ..base import MXNetError
from ..context import to_numpy
from ..executor import Executor
from .dataplane import RowsInput
from .worker_chain import ChainStepsMixin


class DeviceWorker(ChainStepsMixin):
    def __init__(self, context, rank=0):
        self.context = context
        self.rank = rank
        self.xp = context.xp
        self._execs = {}
        self._root = {}          # key -> the key whose parameters it shares
        self._updater = None
        self._monitors = {}      # monitor id -> this worker's copy of a driver Monitor
        self._monitored = {}     # key -> monitor id installed on that key's executor
        self._row_sources = {}   # token -> {'data': [...], 'label': [...]} (data plane)

    # ------------------------------------------------------------------ binding
    def bind(self, key, symbol, shapes, dtypes, grad_req, shared_key=None, seed=None):
        """Bind `symbol` under `key`; share parameters with `shared_key`'s executor."""
        shared = self._execs.get(shared_key) if shared_key is not None else None
        if shared_key is not None and shared is None:
            raise MXNetError(f"worker {self.rank}: no executor {shared_key!r} to share with")
        # Executors bound on one worker never run interleaved: buckets share memory.
        exe = Executor.simple_bind(symbol, self.context, grad_req=grad_req, type_dict=dtypes,
                                   shared_exec=shared, shapes=shapes, seed=seed,
                                   share_memory=shared is not None)
        self._execs[key] = exe
        self._root[key] = self._root.get(shared_key, shared_key) if shared_key else key
        return self._describe(exe)

    def reshape(self, key, shapes):
        """Rebind `key` for new input shapes, keeping its parameter/gradient buffers."""
        exe = self._exec(key)
        # MXNet's group reshapes with allow_up_sizing=True: a larger batch gets new
        # data buffers, parameters and gradients stay the very same arrays.
        new = exe.reshape(allow_up_sizing=True, **shapes)
        if exe._monitor is not None:
            new.set_monitor_callback(*exe._monitor)
        self._execs[key] = new
        return self._describe(new)

    def release(self, key):
        self._execs.pop(key, None)
        self._root.pop(key, None)
        self._monitored.pop(key, None)

    def _describe(self, exe):
        heads = getattr(getattr(exe, "_plan", None), "_heads", ())
        return {"output_shapes": [tuple(o.shape) for o in exe.outputs],
                "output_dtypes": [np.dtype(o.dtype).name for o in exe.outputs],
                "arg_dtypes": {n: np.dtype(a.dtype).name for n, a in exe.arg_dict.items()},
                "arg_shapes": {n: tuple(a.shape) for n, a in exe.arg_dict.items()},
                "aux_shapes": {n: tuple(a.shape) for n, a in exe.aux_dict.items()},
                # Outputs whose head gradient backward needs, so the driver can check
                # a deferred backward's arguments at the call, as in-process.
                "required_heads": sorted(h.index for h in heads if h.required),
                "nbytes": exe.nbytes()}

    def _exec(self, key):
        try:
            return self._execs[key]
        except KeyError:
            raise MXNetError(f"worker {self.rank}: nothing bound under key {key!r}") from None

    def executor_keys(self):
        """The keys bound on this worker, in binding order."""
        return list(self._execs)

    def executor(self, key):
        """The Executor itself (in-process placement only: it does not cross processes)."""
        return self._exec(key)

    # ------------------------------------------------------------------ parameters
    def set_params(self, key, arg_params, aux_params, allow_extra=False):
        exe = self._exec(key)
        for name, value in (arg_params or {}).items():
            if name in exe.arg_dict:
                self._copy(exe.arg_dict[name], value, name)
            elif not allow_extra:
                raise ValueError(f'Find name "{name}" that is not in the arguments')
        for name, value in (aux_params or {}).items():
            if name in exe.aux_dict:
                self._copy(exe.aux_dict[name], value, name)
            elif not allow_extra:
                raise ValueError(f'Find name "{name}" that is not in the auxiliary states')

    def get_params(self, key, arg_names, aux_names):
        """Host copies of the named parameters and aux states."""
        exe = self._exec(key)
        return ({n: to_numpy(exe.arg_dict[n]).copy() for n in arg_names},
                {n: to_numpy(exe.aux_dict[n]).copy() for n in aux_names})

    def _copy(self, dst, value, name="array"):
        if tuple(value.shape) != tuple(dst.shape):
            raise ValueError(f"worker {self.rank}: {name!r} expected shape {tuple(dst.shape)}, "
                             f"received {tuple(value.shape)}")
        dst[...] = self.xp.asarray(value)

    # ------------------------------------------------------------------ compute
    def load(self, key, inputs):
        """Copy input slices (data, labels, states) into the bound arrays, or gather
        them from a source this worker holds (`RowsInput`, the data plane)."""
        exe = self._exec(key)
        if isinstance(inputs, RowsInput):
            inputs.gather(self._row_sources, exe.arg_dict, self.xp)
            return
        for name, value in inputs.items():
            self._copy(exe.arg_dict[name], value, name)

    def forward(self, key, inputs, is_train):
        if inputs:
            self.load(key, inputs)
        self._exec(key).forward(is_train=is_train)

    def backward(self, key, out_grads=None):
        exe = self._exec(key)
        if out_grads is not None:
            out_grads = [None if g is None else self.xp.asarray(g) for g in out_grads]
        exe.backward(out_grads)

    def outputs(self, key, host=False):
        outs = self._exec(key).outputs
        return [to_numpy(o) for o in outs] if host else list(outs)

    def input_grads(self, key, names, host=False):
        exe = self._exec(key)
        grads = [exe.grad_dict[n] for n in names]
        return [to_numpy(g) for g in grads] if host else grads

    def arrays(self, key, names, host=False):
        exe = self._exec(key)
        arrs = [exe.arg_dict[n] for n in names]
        return [to_numpy(a) for a in arrs] if host else arrs

    def grads(self, key, names, host=False):
        exe = self._exec(key)
        out = {n: exe.grad_dict[n] for n in names if n in exe.grad_dict}
        return {n: to_numpy(g) for n, g in out.items()} if host else out

    def set_grads(self, key, grads):
        exe = self._exec(key)
        for name, value in grads.items():
            self._copy(exe.grad_dict[name], value, name)

    # ------------------------------------------------------------------ optimizer
    def init_updater(self, optimizer):
        """Take a private copy of the optimizer; states are keyed by parameter name."""
        from ..optimizer import get_updater
        self._updater = get_updater(copy.deepcopy(optimizer))

    def update(self, key, names):
        """Apply this worker's optimizer to every named parameter that has a gradient."""
        if self._updater is None:
            raise MXNetError(f"worker {self.rank}: init_updater before update")
        exe = self._exec(key)
        names = [n for n in names if exe.grad_dict.get(n) is not None]
        if names:
            # One Updater call for all parameters (its list form): less per-step overhead.
            self._updater(names, [exe.grad_dict[n] for n in names],
                          [exe.arg_dict[n] for n in names])

    def get_updater_states(self, dump_optimizer=False):
        if self._updater is None:
            raise MXNetError(f"worker {self.rank}: no optimizer installed")
        return self._updater.get_states(dump_optimizer)

    def set_updater_states(self, states):
        if self._updater is None:
            raise MXNetError(f"worker {self.rank}: no optimizer installed")
        self._updater.set_states(states)

    # ------------------------------------------------------------------ recovery
    def snapshot(self):
        """This worker's state, for a replay to start from after a worker is lost:
        every executor's arguments, aux states, gradients, outputs and generator,
        the optimizer's states and the metrics' sums. (Gradients and outputs: a
        snapshot may fall between a backward and its update, or a forward and
        the read of its outputs, which the replay then does not run again.)"""
        execs = {}
        for key, exe in self._execs.items():
            execs[key] = {
                "arg": {n: to_numpy(a).copy() for n, a in exe.arg_dict.items()},
                "aux": {n: to_numpy(a).copy() for n, a in exe.aux_dict.items()},
                "grad": {n: to_numpy(g).copy() for n, g in exe.grad_dict.items()
                         if g is not None},
                "out": [None if o is None else to_numpy(o).copy() for o in exe.outputs],
                "rng": exe.rng_state()}
        # Whole objects (pickled as the call returns): counters and schedules included.
        return {"execs": execs, "updater": copy.deepcopy(self._updater),
                "metrics": copy.deepcopy(getattr(self, "_metrics", {}))}

    def restore(self, state):
        """Go back to a `snapshot` (executors bound since then keep their values)."""
        for key, saved in state["execs"].items():
            exe = self._execs.get(key)
            if exe is None:
                continue
            for which in ("arg", "aux", "grad"):
                arrays = getattr(exe, {"arg": "arg_dict", "aux": "aux_dict",
                                       "grad": "grad_dict"}[which])
                for name, value in saved[which].items():
                    arrays[name][...] = self.xp.asarray(value)
            for out, value in zip(exe.outputs, saved["out"]):
                if out is not None and value is not None:
                    out[...] = self.xp.asarray(value)
            exe.set_rng_state(saved["rng"])
        self._updater = copy.deepcopy(state["updater"])
        self._metrics = copy.deepcopy(state["metrics"])
        # A replaced peer has new exchange buffers: map them afresh.
        self._grad_exchange = None
        for mon in self._monitors.values():
            mon.queue, mon.activated = [], False

    # ------------------------------------------------------------------ data plane
    def hold_rows(self, token, arrays):
        """Keep an iterator's arrays (read-only, zero-copy from the object store)."""
        self._row_sources[token] = arrays

    def drop_rows(self, token):
        self._row_sources.pop(token, None)

    def held_row_sources(self):
        return list(self._row_sources)

    # ------------------------------------------------------------------ executor views
    def exec_arrays(self, key, which):
        """Host copies of one of the executor's dicts ('arg_dict', 'grad_dict',
        'aux_dict') or of its outputs ('outputs'), for the driver's executor views."""
        exe = self._exec(key)
        if which == "outputs":
            return [to_numpy(o).copy() for o in exe.outputs]
        return {n: to_numpy(a).copy() for n, a in getattr(exe, which).items()
                if a is not None}

    # ------------------------------------------------------------------ monitor
    def install_monitor(self, key, monitor_id, monitor):
        """Install this worker's copy of a driver Monitor on executor `key`.

        The statistics are computed here, where the arrays live; the driver
        activates the copy for a batch (`monitor_tic`) and collects (`monitor_toc`).
        """
        mon = self._monitors.setdefault(monitor_id, monitor)
        self._exec(key).set_monitor_callback(mon.stat_helper, mon.monitor_all)
        self._monitored[key] = monitor_id

    def monitor_tic(self, monitor_id, step):
        mon = self._monitors[monitor_id]
        mon.queue, mon.step, mon.activated = [], step, True

    def monitor_toc(self, monitor_id):
        """(the statistics collected since `monitor_tic`, those of every argument and
        aux state of the monitored executors), as MXNet's toc gathers them."""
        mon = self._monitors[monitor_id]
        if not mon.activated:
            return [], []
        collected, mon.queue, mon.activated = mon.queue, [], False
        args = []
        for key, mid in self._monitored.items():
            if mid == monitor_id and key in self._execs:
                exe = self._execs[key]
                args += mon.argument_stats(exe, mon.step)
        return collected, args

    def relabel(self, context):
        """Serve another CPU context (a label: every CPU worker computes with numpy)."""
        if context.device_type != self.context.device_type:
            raise MXNetError(f"worker {self.rank}: cannot serve {context} as {self.context}")
        self.context = context

    def reset(self):
        """Drop everything modules put here (executors, optimizer, metrics, monitors,
        exchange buffers): the worker is lent to the next module as if new."""
        context, rank = self.context, self.rank
        self.__dict__.clear()
        DeviceWorker.__init__(self, context, rank)
        return rank

    def ping(self):
        return self.rank
