"""`GroupChain`: executor groups run as the stages of a pipeline.

Stage i's worker r hands its outputs to stage i+1's worker r as a handle
(an ObjectRef on Ray: the activations go from actor to actor, the driver
only orders the calls); backward hands input gradients back the same way.
This needs the stages to cut a batch identically: the same number of
devices, the same work loads and batch size, each output's batch axis equal
to the next stage's input's, and one placement for all. `incompatibility`
says why a list of groups cannot be chained; the caller then passes arrays
through the driver instead.

Micro-batches (`forward_backward(batch, k)`): the batch is cut into k
micro-batches that flow through the stages one after another, in the 1F1B
order (each stage alternates a forward and a backward once the pipeline is
full). Each stage holds as many micro-batches in flight as it needs on
"slot" executors sharing its parameter, gradient and aux buffers, so the
gradients of the micro-batches add up, into the stage's gradient buffers, to
those of the whole batch. The driver submits every call without waiting: on
Ray, stage i works on micro-batch j+1 while stage i+1 works on micro-batch j.

A lost Ray worker: the stages' schedulers recover as one
(raymod.parallel.recovery.RecoveryGroup). Each chain operation (forward,
backward, forward_backward) is logged with its batch's arrays and, after a
loss, run again from them, with new handles between the stages.
"""
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np

from ..context import to_numpy
from .errors import ModuleStateError
from .recovery import RecoveryGroup, Replayed
from .slicing import batch_axis, slice_along, sliced_shape, split_input_slice


def one_f_one_b(num_stages, num_micro):
    """Per stage, its ('F', j) and ('B', j) steps in 1F1B order.

    Stage i first runs min(k, S-i-1) forwards (filling the pipeline), then
    alternates forward and backward, then drains the remaining backwards; so
    it holds at most min(k, S-i) micro-batches in flight.
    """
    orders = []
    for stage in range(num_stages):
        warm = min(num_micro, num_stages - stage - 1)
        order = [("F", j) for j in range(warm)]
        for j in range(num_micro - warm):
            order += [("F", warm + j), ("B", j)]
        order += [("B", j) for j in range(num_micro - warm, num_micro)]
        orders.append(order)
    return orders


def submission_order(orders):
    """A driver order for all steps: each stage's own order, dependencies first.

    F(i, j) needs F(i-1, j); B(i, j) needs B(i+1, j). Returns a list of
    (kind, stage, micro-batch).
    """
    last = len(orders) - 1
    pos = [0] * len(orders)
    done, out = set(), []
    while any(p < len(o) for p, o in zip(pos, orders)):
        progressed = False
        for stage, order in enumerate(orders):
            while pos[stage] < len(order):
                kind, j = order[pos[stage]]
                dep = (("F", stage - 1, j) if kind == "F" and stage > 0 else
                       ("B", stage + 1, j) if kind == "B" and stage < last else None)
                if dep is not None and dep not in done:
                    break
                done.add((kind, stage, j))
                out.append((kind, stage, j))
                pos[stage] += 1
                progressed = True
        if not progressed:
            raise RuntimeError(f"pipeline orders {orders} deadlock")
    return out


def _host(array):
    return np.asarray(to_numpy(array))


def _cut(array, axis, *slices):
    """`array` sliced along `axis` by each slice in turn (micro-batch, then device)."""
    for sl in slices:
        array = slice_along(array, axis, sl)
    return array


class GroupChain:
    """DataParallelExecutorGroups run as stages, outputs passed worker to worker.

    Parameters
    ----------
    groups : list of DataParallelExecutorGroup
        The stages, bound, first to last.
    take_labels : list of bool
        Whether each stage receives the batch's labels.
    """

    def __init__(self, groups, take_labels):
        reason = self.incompatibility(groups)
        if reason is not None:
            raise ValueError(f"these executor groups cannot be chained: {reason}")
        self.groups = list(groups)
        self.take_labels = list(take_labels)
        # The stages recover together: one snapshot, one log (this chain's operations
        # in it), a loss in any stage replayed on all (Ray workers only).
        schedulers = [g._scheduler for g in self.groups if g._scheduler is not None]
        self._recovery = RecoveryGroup([s.recovery for s in schedulers]) if schedulers \
            else None
        self._slots = {}          # (stage, slot, rows) -> executor key on the stage's workers
        self.slot_bytes = 0       # bytes the slot executors allocated
        self.micro = None         # the handles of the last micro-batched run

    @staticmethod
    def incompatibility(groups):
        """Why `groups` cannot be chained worker to worker, or None when they can."""
        first = groups[0]
        for i, g in enumerate(groups):
            if g._workers.in_process != first._workers.in_process:
                return f"stage {i} runs in another placement than stage 0"
            if len(g.contexts) != len(first.contexts) or list(g.workload) != list(first.workload):
                return (f"stage {i} has {len(g.contexts)} devices with work loads "
                        f"{g.workload}, stage 0 {len(first.contexts)} with {first.workload}")
            if g.batch_size != first.batch_size or g.slices != first.slices:
                return f"stage {i} cuts batches as {g.slices}, stage 0 as {first.slices}"
        for i, (prev, nxt) in enumerate(zip(groups, groups[1:]), start=1):
            if prev.num_outputs != len(nxt.data_names):
                return (f"stage {i - 1} has {prev.num_outputs} outputs, stage {i} takes "
                        f"{len(nxt.data_names)} inputs")
            if list(prev.output_layouts) != list(nxt.data_layouts):
                return (f"batch axes of stage {i - 1}'s outputs {prev.output_layouts} differ "
                        f"from those of stage {i}'s inputs {nxt.data_layouts}")
        return None

    # ------------------------------------------------------------------ calls
    @property
    def _copy(self):
        # In-process handles are the arrays themselves: copy, since slots are reused.
        return self.groups[0]._workers.in_process

    @staticmethod
    def _submit(group, method, key, per_worker):
        sched = group._scheduler
        if sched is None:
            return group._workers.submit(method, key, per_worker=per_worker)
        return sched._submit(method, key, per_worker=per_worker)

    @staticmethod
    def _fetch(group, handles):
        sched = group._scheduler
        if sched is None:
            return list(handles)
        return sched.sync(handles)

    def _flush(self):
        """Send whatever the groups' schedulers deferred, so calls stay in order."""
        for g in self.groups:
            if g._scheduler is not None:
                g._scheduler.flush()

    def _stage_inputs(self, stage, batch, *slices):
        """Per-device dicts of what stage `stage` takes from the batch (data, labels)."""
        g = self.groups[stage]
        dev_slices = slices[-1]
        outer = slices[:-1]
        per_device = [{} for _ in dev_slices]
        if stage == 0:
            for name, axis, arr in zip(g.data_names, g.data_layouts, batch.data, strict=True):
                arr = _host(arr)
                for r, sl in enumerate(dev_slices):
                    per_device[r][name] = _cut(arr, axis, *outer, sl)
        label = getattr(batch, "label", None)
        if g.label_shapes and label:
            for name, axis, arr in zip(g.label_names, g.label_layouts, label, strict=True):
                arr = _host(arr)
                for r, sl in enumerate(dev_slices):
                    per_device[r][name] = _cut(arr, axis, *outer, sl)
        return per_device

    def _input_grad_names(self, stage):
        g = self.groups[stage]
        if stage == 0 and not g.inputs_need_grad:
            return None
        if not g.inputs_need_grad:
            raise ModuleStateError(f"stage {stage} must be bound with inputs_need_grad=True "
                                   f"to pass gradients back")
        return [n for n in g.data_names if n in g.arg_names]

    def _check_training(self):
        for i, g in enumerate(self.groups):
            if not g.for_training:
                raise ModuleStateError(f"re-bind with for_training=True to run backward "
                                       f"(stage {i} is bound for inference)")

    def _run_logged(self, kind, *args, nbytes=0):
        """Log an operation (to be run again after a lost worker), then run it.

        Logged before it is sent: a loss noticed while sending it (waiting on
        older calls) replays the log, this operation included, with fresh
        handles between the stages; the handles of this attempt are then stale.
        """
        entry = (kind,) + args
        recovery = self._recovery
        if kind != "backward":          # a new forward ends the wait for a backward
            self._await_backward(False)
        if recovery is not None:
            # A full log: snapshot before this operation, not after it (a snapshot
            # keeps no handles between stages, so the operation must stay in the log
            # for what it hands on to be read).
            if recovery.log_full() and recovery.snapshot_due():
                recovery.take_snapshot()
            recovery.log(self._replay, entry, nbytes)
        self._note_backward_to_come(kind, args)
        try:
            self._replay(entry)
        except Replayed:
            pass

    def _note_backward_to_come(self, kind, args):
        """A training forward's backward is to come: the stages take no snapshot until
        it ran (the forward's intermediates, which it reads, are in none)."""
        waiting = False
        if kind == "forward":
            is_train = args[1]
            waiting = any(g.for_training if is_train is None else is_train
                          for g in self.groups)
        self._await_backward(waiting)

    def _await_backward(self, waiting):
        for g in self.groups:
            if g._scheduler is not None:
                g._scheduler.recovery.awaiting_backward = bool(waiting)

    def _replay(self, entry):
        """Send a logged operation (again): its handles between stages are new."""
        kind, args = entry[0], entry[1:]
        {"forward": self._forward, "backward": self._backward,
         "forward_backward": self._forward_backward}[kind](*args)

    def _kept(self, data_batch):
        """What the stages read of a batch, copied while a log is kept: the batch may
        be a view of a buffer its iterator refills. Returns (batch, bytes)."""
        if self._recovery is None or not self._recovery.recording():
            return data_batch, 0
        data = [np.array(_host(a)) for a in data_batch.data]
        label = getattr(data_batch, "label", None)
        label = [np.array(_host(a)) for a in label] if label else None
        kept = SimpleNamespace(data=data, label=label)
        return kept, sum(a.nbytes for a in data + (label or []))

    # ------------------------------------------------------------------ whole batch
    def forward(self, data_batch, is_train=None):
        """Forward through every stage on the stages' own executors."""
        self._flush()
        kept, nbytes = self._kept(data_batch)
        self._run_logged("forward", kept, is_train, nbytes=nbytes)

    def _forward(self, data_batch, is_train):
        self.micro = None
        handles = None
        last = len(self.groups) - 1
        for i, g in enumerate(self.groups):
            train = g.for_training if is_train is None else is_train
            inputs = self._stage_inputs(i, data_batch, g.slices)
            per_worker = [(None if handles is None else handles[r], g.data_names, inputs[r],
                           train, i < last, self._copy) for r in range(len(g.slices))]
            handles = self._submit(g, "chain_forward", g._key, per_worker)

    def backward(self, out_grads=None):
        """Backward from the last stage to the first, input gradients worker to worker."""
        self._check_training()
        if self.micro is not None:
            raise ModuleStateError("backward after a micro-batched forward_backward: the "
                                   "gradients are already computed")
        self._flush()
        nbytes = 0
        if out_grads is not None and self._recovery is not None and \
                self._recovery.recording():       # kept for a replay: copies
            out_grads = [np.array(_host(og)) for og in
                         (out_grads if isinstance(out_grads, (list, tuple)) else [out_grads])]
            nbytes = sum(og.nbytes for og in out_grads)
        self._run_logged("backward", out_grads, nbytes=nbytes)

    def _backward(self, out_grads):
        handles = None
        for i in reversed(range(len(self.groups))):
            g = self.groups[i]
            if handles is None:
                heads = self._head_grads(g, out_grads)
            else:
                heads = handles
            names = self._input_grad_names(i)
            per_worker = [(heads[r], (), names, self._copy) for r in range(len(g.slices))]
            handles = self._submit(g, "chain_backward", g._key, per_worker)

    @staticmethod
    def _head_grads(group, out_grads):
        if out_grads is None:
            return [None] * len(group.slices)
        if not isinstance(out_grads, (list, tuple)):
            out_grads = [out_grads]
        return [[slice_along(_host(og), axis, sl)
                 for og, axis in zip(out_grads, group.output_layouts, strict=True)]
                for sl in group.slices]

    # ------------------------------------------------------------------ micro-batches
    def forward_backward(self, data_batch, num_micro):
        """Forward and backward of `data_batch` as `num_micro` pipelined micro-batches."""
        self._check_training()
        self._micro_keys(num_micro)     # binds the slot executors (once), before the log
        self._flush()
        kept, nbytes = self._kept(data_batch)
        self._run_logged("forward_backward", kept, num_micro, nbytes=nbytes)

    def _micro_keys(self, num_micro):
        """(micro-batch slices, their device slices, per stage the slot key of each)."""
        first = self.groups[0]
        try:
            micro = split_input_slice(first.batch_size, [1] * num_micro)
        except ValueError:
            raise ValueError(f"micro_batches={num_micro} is more than the batch size "
                             f"{first.batch_size}") from None
        try:
            dev = [split_input_slice(sl.stop - sl.start, first.workload) for sl in micro]
        except ValueError:
            raise ValueError(f"micro_batches={num_micro}: micro-batches of "
                             f"{first.batch_size // num_micro} rows cannot be split over "
                             f"{len(first.contexts)} devices") from None
        num_stages = len(self.groups)
        slots = [min(num_micro, num_stages - i) for i in range(num_stages)]
        keys = [[self._slot_key(i, j % slots[i], micro[j], dev[j]) for j in range(num_micro)]
                for i in range(num_stages)]
        return micro, dev, keys

    def _forward_backward(self, data_batch, num_micro):
        micro, dev, keys = self._micro_keys(num_micro)
        num_stages = len(self.groups)
        fwd = [[None] * num_micro for _ in range(num_stages)]
        bwd = [[None] * num_micro for _ in range(num_stages)]
        for kind, i, j in submission_order(one_f_one_b(num_stages, num_micro)):
            g = self.groups[i]
            if kind == "F":
                inputs = self._stage_inputs(i, data_batch, micro[j], dev[j])
                prev = fwd[i - 1][j] if i > 0 else [None] * len(dev[j])
                per_worker = [(prev[r], g.data_names, inputs[r], True, True, self._copy)
                              for r in range(len(dev[j]))]
                fwd[i][j] = self._submit(g, "chain_forward", keys[i][j], per_worker)
            else:
                heads = bwd[i + 1][j] if i < num_stages - 1 else [None] * len(dev[j])
                zero = self._zeroed_grads(g) if j == 0 else ()
                names = self._input_grad_names(i)
                per_worker = [(heads[r], zero, names, self._copy) for r in range(len(dev[j]))]
                bwd[i][j] = self._submit(g, "chain_backward", keys[i][j], per_worker)
        self.micro = {"micro": micro, "dev": dev, "outputs": fwd, "input_grads": bwd[0]}

    @staticmethod
    def _zeroed_grads(group):
        """Gradients that start from zero each batch: those bound 'write' (not 'add')."""
        return tuple(n for n in group.param_names if group.grad_req.get(n) == "write")

    def _slot_key(self, stage, slot, micro_slice, dev_slices):
        rows = micro_slice.stop - micro_slice.start
        key = self._slots.get((stage, slot, rows))
        if key is not None:
            return key
        g = self.groups[stage]
        key = f"{g._key}:slot{slot}:{rows}"
        # Parameters accumulate over the micro-batches (into the stage's own gradient
        # buffers); input gradients are each micro-batch's own, passed back at once.
        reqs = {n: ("add" if r == "write" else r) if n in g.param_names else
                ("write" if r == "add" else r) for n, r in g.grad_req.items()}
        attrs = g.symbol.attr_dict()
        descs = g.data_shapes + (g.label_shapes or [])
        from ..random import executor_seed
        per_worker = []
        for sl in dev_slices:
            shapes = {d.name: sliced_shape(d.shape, batch_axis(d.layout), sl) for d in descs}
            dtypes = {d.name: np.dtype(d.dtype) for d in descs
                      if "__dtype__" not in attrs.get(d.name, {})}
            per_worker.append((shapes, dtypes, reqs, g._key, g.param_names, executor_seed()))
        infos = g._call("bind_slot", key, g.symbol, per_worker=per_worker)
        self._slots[(stage, slot, rows)] = key
        self.slot_bytes += sum(info["nbytes"] for info in infos)
        return key

    def micro_outputs(self, stage):
        """Stage `stage`'s outputs of the last micro-batched run: [micro][device][output]."""
        return self._fetch_micro(stage, lambda: self.micro["outputs"][stage])

    def _fetch_micro(self, stage, handles_of):
        """[micro][device] results of the handles `handles_of()` gives, fetched again
        from the new handles when a lost worker made the run replay."""
        g = self.groups[stage]
        while True:
            handles = handles_of()
            try:
                flat = self._fetch(g, [h for per_micro in handles for h in per_micro])
            except Replayed:
                continue
            n = len(g.slices)
            return [flat[j * n:(j + 1) * n] for j in range(len(handles))]

    def merged_outputs(self, stage=-1):
        """One array per output of `stage`, the micro-batches' rows back in batch order."""
        g = self.groups[stage]
        return _merge_micro(self.micro_outputs(stage % len(self.groups)), g.output_layouts)

    def merged_input_grads(self):
        per = self._fetch_micro(0, lambda: self.micro["input_grads"])
        return _merge_micro(per, self.groups[0].data_layouts)

    def update_metric(self, eval_metric, labels, stage):
        """Update `eval_metric` with stage `stage`'s outputs, per micro-batch and device."""
        g = self.groups[stage]
        outs = self.micro_outputs(stage)
        labels = [_host(l) for l in (labels or [])]
        axes = g.label_layouts or [0] * len(labels)
        for j, (mb, dev) in enumerate(zip(self.micro["micro"], self.micro["dev"])):
            for r, sl in enumerate(dev):
                device_labels = [_cut(l, a, mb, sl) for l, a in zip(labels, axes)]
                eval_metric.update_dict(OrderedDict(zip(g.label_names, device_labels)),
                                        OrderedDict(zip(g.output_names, outs[j][r])))

    def release(self):
        """Free the slot executors on the workers; each stage recovers alone again."""
        if self._recovery is not None:
            self._recovery.dissolve()
            self._recovery = None
        for (stage, _, _), key in self._slots.items():
            self.groups[stage]._call("release", key)
        self._slots = {}
        self.slot_bytes = 0
        self.micro = None


def _merge_micro(per_micro, axes):
    """[micro][device][i] -> one array per i, concatenated along each one's batch axis."""
    merged = []
    for i, axis in enumerate(axes):
        parts = [per_device[r][i] for per_device in per_micro for r in range(len(per_device))]
        if axis < 0:
            merged.append(np.asarray(parts[0]))
        else:
            merged.append(np.concatenate([np.asarray(p) for p in parts], axis=axis))
    return merged
