"""`DataParallelExecutorGroup`: one executor per device, batches sliced across them.

The group is MXNet's (section 4 of the reference) with the devices behind a
worker group: each device's executors live in a `DeviceWorker`, in this
process or on a Ray actor, and the group only slices inputs, schedules calls
and merges results. Groups made with `shared_group` (buckets) use the same
workers and share the first group's parameter and gradient buffers.
"""
import itertools
import logging
from collections import OrderedDict

import numpy as np

from ..context import to_numpy
from .errors import ModuleStateError
from .executor_views import WorkerExecutorView, handed_back
from .slicing import batch_axis, slice_along, sliced_shape, split_input_slice

_keys = itertools.count()


def _as_desc(entries):
    from ..io import DataDesc
    if entries is None:
        return None
    return [e if isinstance(e, DataDesc) else DataDesc(*e) for e in entries]


def _merge(per_device, axes):
    """One array per output: device arrays concatenated along each output's batch axis."""
    merged = []
    for arrays, axis in zip(per_device, axes):
        if len(arrays) == 1 or axis < 0:
            merged.append(arrays[0])
        else:
            xp = type(arrays[0]).__module__.split(".")[0]
            if xp == "cupy":
                import cupy
                merged.append(cupy.concatenate(arrays, axis=axis))
            else:
                merged.append(np.concatenate([np.asarray(a) for a in arrays], axis=axis))
    return merged


class DataParallelExecutorGroup:
    """Executors for `symbol` on `contexts`, MXNet's constructor and attributes."""

    def __init__(self, symbol, contexts, workload, data_shapes, label_shapes, param_names,
                 for_training, inputs_need_grad, shared_group=None, logger=logging,
                 fixed_param_names=None, grad_req="write", state_names=None, group2ctxs=None,
                 workers=None):
        if group2ctxs is not None:
            raise NotImplementedError("group2ctxs (model parallelism) is not supported; "
                                      "pass group2ctxs=None")
        self.symbol = symbol
        self.contexts = list(contexts)
        self.workload = list(workload) if workload is not None else [1] * len(self.contexts)
        if len(self.workload) != len(self.contexts):
            raise ValueError(f"work_load_list has {len(self.workload)} entries for "
                             f"{len(self.contexts)} contexts")
        self.param_names = list(param_names)
        self.arg_names = symbol.list_arguments()
        self.aux_names = symbol.list_auxiliary_states()
        self.for_training = for_training
        self.inputs_need_grad = inputs_need_grad
        self.logger = logger
        self.fixed_param_names = list(fixed_param_names or [])
        self.state_names = list(state_names or [])
        self.output_names = symbol.list_outputs()
        self.num_outputs = len(self.output_names)
        self.output_layouts = [batch_axis(symbol[i].attr("__layout__"))
                               for i in range(self.num_outputs)]
        self.batch_size = None
        self.slices = None
        self._key = f"group{next(_keys)}"
        if shared_group is not None:
            if len(shared_group.contexts) < len(self.contexts):
                raise ValueError("shared_group has fewer devices than this group")
            self._workers = shared_group._workers
            # Share with that group's executors, as MXNet (shared_group.execs[i]); their
            # parameters are the root's arrays, so the parameters are shared either way.
            self._shared_key = shared_group._key
            self._root_key = shared_group._root_key
            self._owns_workers = False
        else:
            if workers is None:
                from .placement import create_worker_group
                workers = create_worker_group(self.contexts)
            self._workers = workers
            self._shared_key = None
            self._root_key = self._key
            self._owns_workers = shared_group is None
        self.data_shapes = self.label_shapes = None
        self._total_exec_bytes = 0
        self._monitor = None
        self._monitor_sent = None    # the monitor step already activated on the workers
        self._plane_labels = None    # the label list of the last batch sent as rows
        try:
            self.grad_req = self._resolve_grad_req(grad_req, _as_desc(data_shapes),
                                                   _as_desc(label_shapes))
            self.bind_exec(data_shapes, label_shapes, shared_group)
        except BaseException:
            # A bind that fails (bad shapes, too many slices) must not leak workers
            # (Ray actors) or leave half-bound executors behind.
            self.release()
            raise

    # ------------------------------------------------------------------ calls
    @property
    def _scheduler(self):
        """Ray worker groups defer and fuse calls; in-process ones run them at once."""
        return getattr(self._workers, "scheduler", None)

    def _call(self, method, *args, per_worker=None):
        # A group sharing a bigger group's workers (shared_module on more devices)
        # runs on the first n of them, as MXNet uses shared_group.execs[:n].
        n = len(self.contexts)
        if self._scheduler is None:
            if n == len(self._workers):
                return self._workers.call(method, *args, per_worker=per_worker)
            extra = per_worker or [()] * n
            return self._workers.wait([self._workers.submit_one(r, method, *args, *extra[r])
                                       for r in range(n)])
        return self._scheduler.call(method, *args, per_worker=per_worker, n=n)

    # ------------------------------------------------------------------ binding
    def _resolve_grad_req(self, grad_req, data_shapes, label_shapes):
        data_names = [d.name for d in data_shapes]
        if not self.for_training:
            grad_req = "null"
        if isinstance(grad_req, str):
            return self._grad_req_from_str(grad_req, data_names)
        if isinstance(grad_req, (list, tuple)):
            if len(grad_req) != len(self.arg_names):
                raise ValueError(f"grad_req list has {len(grad_req)} entries for arguments "
                                 f"{self.arg_names}")
            return dict(zip(self.arg_names, grad_req))
        if isinstance(grad_req, dict):
            reqs = self._grad_req_from_str("write", data_names)
            reqs.update(grad_req)
            return reqs
        raise ValueError("grad_req must be one of str, list, tuple, or dict.")

    def _grad_req_from_str(self, req, data_names):
        reqs = {}
        for name in self.arg_names:
            if name in self.param_names:
                reqs[name] = "null" if name in self.fixed_param_names else req
            elif name in data_names:
                reqs[name] = req if self.inputs_need_grad else "null"
            else:
                reqs[name] = "null"
        return reqs

    def decide_slices(self, data_shapes):
        for desc in data_shapes:
            axis = batch_axis(desc.layout)
            if axis < 0:
                continue
            size = desc.shape[axis]
            if self.batch_size is None:
                self.batch_size = size
                self.slices = split_input_slice(size, self.workload)
            elif size != self.batch_size:
                raise ValueError(f"all data must have the same batch size: batch_size = "
                                 f"{self.batch_size}, but {desc.name} has shape {desc.shape}")
        if self.batch_size is None:       # no input has a batch axis: replicate
            self.slices = [slice(i, i + 1) for i in range(len(self.contexts))]

    def _device_shapes(self, descs, rank):
        shapes, dtypes = {}, {}
        attrs = self.symbol.attr_dict()
        for desc in descs:
            shapes[desc.name] = sliced_shape(desc.shape, batch_axis(desc.layout),
                                             self.slices[rank])
            if "__dtype__" not in attrs.get(desc.name, {}):
                dtypes[desc.name] = np.dtype(desc.dtype)
        return shapes, dtypes

    def bind_exec(self, data_shapes, label_shapes, shared_group=None, reshape=False):
        data_shapes = _as_desc(data_shapes)
        label_shapes = _as_desc(label_shapes) or None
        self.batch_size = None
        self.decide_slices(data_shapes + (label_shapes or []))
        descs = data_shapes + (label_shapes or [])
        per_device = [self._device_shapes(descs, r) for r in range(len(self.contexts))]
        if reshape:
            infos = self._call("reshape", self._key,
                                       per_worker=[(s,) for s, _ in per_device])
        else:
            from ..random import executor_seed
            # Seeds come from the driver, so Dropout masks do not depend on placement.
            infos = self._call("bind", self._key, self.symbol,
                                       per_worker=[(s, t, self.grad_req, self._shared_key,
                                                    executor_seed()) for s, t in per_device])
        self.data_shapes, self.label_shapes = data_shapes, label_shapes
        self.data_names = [d.name for d in data_shapes]
        self.label_names = [d.name for d in label_shapes] if label_shapes else []
        self.data_layouts = [batch_axis(d.layout) for d in data_shapes]
        self.label_layouts = [batch_axis(d.layout) for d in label_shapes] \
            if label_shapes else None
        self._output_shapes = infos[0]["output_shapes"]
        self._required_heads = infos[0]["required_heads"]
        self._arg_dtypes = infos[0]["arg_dtypes"]
        self._device_shapes_of = [{"arguments": info["arg_shapes"],
                                   "auxiliary states": info["aux_shapes"]} for info in infos]
        self._total_exec_bytes = sum(info["nbytes"] for info in infos)

    def reshape(self, data_shapes, label_shapes):
        data_shapes, label_shapes = _as_desc(data_shapes), _as_desc(label_shapes) or None
        same_data = data_shapes == self.data_shapes
        same_label = (label_shapes or None) == (self.label_shapes or None)
        if same_data and same_label:
            return
        self.bind_exec(data_shapes, label_shapes, reshape=True)

    # ------------------------------------------------------------------ parameters
    def set_params(self, arg_params, aux_params, allow_extra=False):
        self._check_params(arg_params, aux_params, allow_extra)
        self._call("set_params", self._key, arg_params, aux_params, allow_extra)

    def _check_params(self, arg_params, aux_params, allow_extra):
        """Every name and shape checked here, before any device is written, with MXNet's
        errors (names of data and label inputs are arguments too)."""
        for given, what in ((arg_params, "arguments"), (aux_params, "auxiliary states")):
            for name, value in (given or {}).items():
                if name not in self._device_shapes_of[0][what]:
                    if allow_extra:
                        continue
                    raise ValueError(f'Find name "{name}" that is not in the {what}')
                for ctx, shapes in zip(self.contexts, self._device_shapes_of):
                    expected, received = shapes[what][name], tuple(value.shape)
                    if received != expected:
                        raise ValueError(f"{name!r} expected shape {expected}, received "
                                         f"{received} (device {ctx})")

    def get_params(self, arg_params, aux_params):
        """Average each parameter and aux state over the devices, into the given dicts."""
        results = self._call("get_params", self._key, self.param_names, self.aux_names)
        for target, index in ((arg_params, 0), (aux_params, 1)):
            names = self.param_names if index == 0 else self.aux_names
            for name in names:
                replicas = [r[index][name] for r in results]
                value = replicas[0] if len(replicas) == 1 else \
                    sum(r.astype(np.float64) for r in replicas) / len(replicas)
                dst = target.get(name)
                if dst is None:
                    continue
                dst[...] = np.asarray(value).astype(dst.dtype)

    # ------------------------------------------------------------------ compute
    def _slice_inputs(self, data_batch):
        """Per-device dicts {input name: array slice} for data (and labels when present)."""
        # Only a list means "one batch per device": a namedtuple batch is one batch.
        if isinstance(data_batch, list):
            if len(data_batch) != len(self.contexts):
                raise ValueError(f"a pre-sliced batch list needs one batch per device "
                                 f"({len(self.contexts)}), received {len(data_batch)}")
            return [self._inputs_of(b, None) for b in data_batch]
        return [self._inputs_of(data_batch, sl) for sl in self.slices]

    def _inputs_of(self, batch, sl):
        inputs = {}
        for name, axis, arr in zip(self.data_names, self.data_layouts, batch.data):
            inputs[name] = np.asarray(arr) if sl is None else slice_along(np.asarray(arr), axis, sl)
        label = getattr(batch, "label", None)
        if self.label_shapes and label:
            for name, axis, arr in zip(self.label_names, self.label_layouts, label):
                inputs[name] = np.asarray(arr) if sl is None else \
                    slice_along(np.asarray(arr), axis, sl)
        return inputs

    def forward(self, data_batch, is_train=None):
        if is_train is None:
            is_train = self.for_training
        if self._scheduler is not None:
            per_device = self._scheduler.plane.device_inputs(self, data_batch)
            # update_metric with this batch's labels takes them from the loaded inputs
            self._plane_labels = None if per_device is None else data_batch.label
            if per_device is None:
                per_device = self._slice_inputs(data_batch)
            self._activate_remote_monitor()
            self._scheduler.forward(self._key, per_device, is_train)
            return
        plane = getattr(self._workers, "plane", None)
        per_device = None if plane is None else plane.device_inputs(self, data_batch)
        if per_device is None:
            per_device = self._slice_inputs(data_batch)
        self._call("forward", self._key, per_worker=[(inputs, is_train) for inputs in per_device])

    def backward(self, out_grads=None):
        if not self.for_training:
            raise ModuleStateError("re-bind with for_training=True to run backward")
        if out_grads is not None and not isinstance(out_grads, (list, tuple)):
            out_grads = [out_grads]
        if self._scheduler is not None:
            self._check_head_grads(out_grads)
        if out_grads is None:
            per_device = [(None,)] * len(self.contexts)
        else:
            per_device = [([slice_along(np.asarray(to_numpy(g)), axis, sl)
                            for g, axis in zip(out_grads, self.output_layouts)],)
                          for sl in self.slices]
        if self._scheduler is not None:
            self._scheduler.backward(self._key, [g for (g,) in per_device])
            return
        self._call("backward", self._key, per_worker=per_device)

    def _check_head_grads(self, out_grads):
        """A deferred backward's head gradients, checked at the call (the workers would
        find the same faults later, far from the call that made them)."""
        from ..executor_plan import check_head_gradients
        check_head_gradients(out_grads, [shape for _, shape in self.get_output_shapes()],
                             self._required_heads)

    def get_outputs(self, merge_multi_context=True, begin=0, end=None):
        end = self.num_outputs if end is None else end
        per_worker = self._call("outputs", self._key, not self._workers.in_process)
        outputs = [[w[i] for w in per_worker] for i in range(begin, end)]
        return self._hand_back(outputs, self.output_layouts[begin:end], merge_multi_context)

    def _hand_back(self, per_array, axes, merge):
        """Per-device arrays as users get them: merged along the batch axis, or per device."""
        if merge:
            return [handed_back(a, self.contexts[0]) for a in _merge(per_array, axes)]
        return [[handed_back(a, ctx) for a, ctx in zip(arrays, self.contexts)]
                for arrays in per_array]

    def get_output_shapes(self):
        shapes = []
        for shape, axis in zip(self._output_shapes, self.output_layouts):
            shape = list(shape)
            if axis >= 0:
                shape[axis] = self.batch_size
            shapes.append(tuple(shape))
        return list(zip(self.output_names, shapes))

    def get_input_grads(self, merge_multi_context=True):
        if not self.inputs_need_grad:
            raise ModuleStateError("bind with inputs_need_grad=True to get input gradients")
        names = [n for n in self.data_names if n in self.arg_names]
        per_worker = self._call("input_grads", self._key, names,
                                        not self._workers.in_process)
        grads = [[w[i] for w in per_worker] for i in range(len(names))]
        return self._hand_back(grads, self.data_layouts, merge_multi_context)

    def get_states(self, merge_multi_context=True):
        if merge_multi_context:
            raise ModuleStateError("merge_multi_context=True is not supported for "
                                   "get_states yet.")
        per_worker = self._call("arrays", self._key, self.state_names,
                                        not self._workers.in_process)
        states = [[w[i] for w in per_worker] for i in range(len(self.state_names))]
        return self._hand_back(states, None, merge=False)

    def set_states(self, states=None, value=None):
        if states is not None and value is not None:
            raise ValueError("Only one of states & value can be specified.")
        if states is None and value is None:
            raise ValueError("At least one of states & value must be specified.")
        current = self.get_states(merge_multi_context=False)
        per_device = []
        for rank in range(len(self.contexts)):
            inputs = {}
            for i, name in enumerate(self.state_names):
                shape = current[i][rank].shape
                src = states[i][rank] if states is not None else np.full(shape, value)
                inputs[name] = np.asarray(to_numpy(src))
            per_device.append((inputs,))
        self._call("load", self._key, per_worker=per_device)

    def _device_labels(self, labels, pre_sliced):
        per_device = []
        for rank, sl in enumerate(self.slices):
            if labels is None:
                per_device.append([])
            elif pre_sliced:
                per_device.append(labels[rank])
            else:
                axes = self.label_layouts or [0] * len(labels)
                per_device.append([slice_along(np.asarray(to_numpy(l)), axis, sl)
                                   for l, axis in zip(labels, axes)])
        return per_device

    def update_metric(self, eval_metric, labels, pre_sliced=False):
        if self._scheduler is not None and labels is not None and \
                labels is self._plane_labels and not pre_sliced:
            per_device = [None] * len(self.contexts)
        else:
            per_device = self._device_labels(labels, pre_sliced)
        if self._scheduler is not None:
            # The metric is updated on the workers; the driver's copy drains their sums.
            self._scheduler.update_metric(self._key, eval_metric, self.label_names, per_device)
            return
        outputs = self._call("outputs", self._key, False)
        for device_labels, outs in zip(per_device, outputs):
            eval_metric.update_dict(OrderedDict(zip(self.label_names, device_labels)),
                                    OrderedDict(zip(self.output_names, outs)))

    # ------------------------------------------------------------------ optimizer
    def init_updater(self, optimizer):
        if self._scheduler is not None:
            self._warn_float16(optimizer)
        self._call("init_updater", optimizer)

    def _warn_float16(self, optimizer):
        """The optimizer's float16 advice, given here: warnings raised on a Ray worker
        never reach the user's warning filters."""
        if getattr(optimizer, "multi_precision", False):
            return
        if any(self._arg_dtypes.get(n) == "float16" for n in self.param_names):
            import warnings
            warnings.warn("Accumulating with float16 in optimizer can lead to poor accuracy "
                          "or slow convergence. Consider using multi_precision=True option "
                          "of the optimizer", stacklevel=3)

    def schedule_update(self, kvstore, update_on_kvstore):
        """Ray workers: defer the optimizer step into the batch's fused call.

        Returns False for in-process workers, which the caller updates directly.
        """
        if self._scheduler is None:
            return False
        self._scheduler.update(self._key, self.param_names, kvstore, update_on_kvstore,
                               n=len(self.contexts))
        return True

    def update(self):
        """Each worker applies its own optimizer to its own gradients."""
        self._call("update", self._key, self.param_names)

    def get_grads(self):
        """Per device, {param name: gradient} for parameters that have one."""
        return self._call("grads", self._key, self.param_names,
                                  not self._workers.in_process)

    def set_grads(self, grads):
        self._call("set_grads", self._key, grads)

    def set_max_worker_restarts(self, count):
        """Ray workers: how many lost workers may be replaced (and the work since the
        last snapshot replayed) before a loss ends the run. In-process: nothing to do."""
        if self._scheduler is not None:
            self._scheduler.recovery.set_max_restarts(count)

    def wait_all(self):
        """Run everything deferred for the workers and wait for it (in-process: nothing
        is deferred)."""
        if self._scheduler is not None:
            self._scheduler.wait_all()

    def get_updater_states(self, dump_optimizer=False):
        return self._call("get_updater_states", dump_optimizer)[0]

    def set_updater_states(self, states):
        self._call("set_updater_states", states)

    # ------------------------------------------------------------------ executors
    @property
    def execs(self):
        """One executor per device: the Executor itself in-process, a view of it
        (read-only host copies fetched on access) on Ray workers."""
        if self._workers.in_process:
            return [w.executor(self._key) for w in self._workers.workers[:len(self.contexts)]]
        return [WorkerExecutorView(self, rank) for rank in range(len(self.contexts))]

    def _per_arg(self, source, names):
        dicts = [getattr(e, source) for e in self.execs]     # one fetch per executor
        return [[d.get(n) for d in dicts] for n in names]

    @property
    def param_arrays(self):
        return self._per_arg("arg_dict", self.param_names)

    @property
    def grad_arrays(self):
        return self._per_arg("grad_dict", self.param_names) if self.for_training else None

    @property
    def aux_arrays(self):
        return self._per_arg("aux_dict", self.aux_names)

    @property
    def state_arrays(self):
        return self._per_arg("arg_dict", self.state_names)

    def _input_arrays(self, names):
        dicts = [e.arg_dict for e in self.execs]
        return [[(sl, d[n]) for sl, d in zip(self.slices, dicts)] for n in names]

    @property
    def data_arrays(self):
        return self._input_arrays(self.data_names)

    @property
    def label_arrays(self):
        return self._input_arrays(self.label_names) if self.label_shapes else None

    @property
    def input_grad_arrays(self):
        if not self.inputs_need_grad:
            return None
        return self._per_arg("grad_dict", [n for n in self.data_names if n in self.arg_names])

    # ------------------------------------------------------------------ monitor
    _monitor_ids = itertools.count()

    def install_monitor(self, mon):
        """MXNet installs `mon` on every executor; on Ray workers each worker runs a
        copy of it and `mon.toc()` collects their statistics (`monitor_collect`)."""
        if self._workers.in_process:
            for exe in self.execs:
                mon.install(exe)
            return
        if getattr(mon, "_worker_id", None) is None:
            mon._worker_id = f"monitor{next(self._monitor_ids)}"
        self._call("install_monitor", self._key, mon._worker_id, mon)
        self._monitor = mon
        mon.install_remote(self)

    def _activate_remote_monitor(self):
        """Before the forward of a batch the monitor collects: activate the workers' copies."""
        mon = self._monitor
        if mon is None or not mon.activated or self._monitor_sent == (id(mon), mon.step):
            return
        self._monitor_sent = (id(mon), mon.step)
        self._scheduler.submit("monitor_tic", mon._worker_id, mon.step, n=len(self.contexts))

    def monitor_collect(self, mon):
        """(op statistics, argument statistics) of every worker, in rank order."""
        ops, args = [], []
        for worker_ops, worker_args in self._call("monitor_toc", mon._worker_id):
            ops += worker_ops
            args += worker_args
        return ops, args

    def release(self):
        """Free this group's executors on the workers (and the workers, if it owns them)."""
        if self._owns_workers:
            self._workers.shutdown()
        else:
            self._call("release", self._key)
