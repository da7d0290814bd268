"""`Updater`: applies an optimizer to (index, grad, weight) and owns the states."""
import numpy as np

from ..context import Context, array_module, to_numpy
from .optimizer import Optimizer, device_id_of
from .mxnet_states import read_mxnet_states
from .state_io import dumps_states, loads_saved_states

__all__ = ["Updater", "get_updater"]


class Updater:
    """Updater for a KVStore or a device worker (MXNet's `mx.optimizer.Updater`).

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer to apply.

    Attributes
    ----------
    states : dict
        Index (int or parameter name) -> optimizer state, created on first use.
    states_synced : dict
        Index -> False while a loaded state still has to move to its weight's device.
    """

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"Updater needs an Optimizer, received {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.states = {}
        self.states_synced = {}
        # Update counts loaded by set_states, for device contexts that have none yet.
        self._loaded_counts = {}

    def __call__(self, index, grad, weight):
        """Update `weight` in place from `grad`; index/grad/weight may be parallel lists."""
        if not isinstance(index, (list, tuple)):
            indices, grads, weights = [index], [grad], [weight]
        else:
            indices, grads, weights = list(index), list(grad), list(weight)
            if not len(indices) == len(grads) == len(weights):
                raise ValueError(f"Updater: {len(indices)} indices, {len(grads)} grads and "
                                 f"{len(weights)} weights; the lists must line up")
        if weights:
            self.optimizer._set_current_context(device_id_of(weights[0]))
        for i, idx in enumerate(indices):
            if isinstance(idx, bytes):  # a C-string key, as MXNet's kvstore may pass
                idx = indices[i] = idx.decode("utf-8")
            if idx not in self.states:
                self.states[idx] = self.optimizer.create_state_multi_precision(idx, weights[i])
                self.states_synced[idx] = True
            elif not self.states_synced[idx]:
                self.states[idx] = self.sync_state_context(self.states[idx], weights[i])
                self.states_synced[idx] = True
        if self._loaded_counts:
            self._fill_loaded_counts(indices)
        for idx, w, g in zip(indices, weights, grads, strict=True):
            self.optimizer.update_multi_precision(idx, w, g, self.states[idx])

    def sync_state_context(self, state, context):
        """Move a state (array or nested tuple/list) to `context`.

        `context` is a `Context` or an array whose device the state should share.
        """
        if state is None:
            return None
        if isinstance(state, (tuple, list)):
            synced = [self.sync_state_context(s, context) for s in state]
            return tuple(synced) if isinstance(state, tuple) else synced
        return _to_device(state, context)

    def _fill_loaded_counts(self, indices):
        # A loaded count applies on whichever device the index is next updated.
        counts = self.optimizer._index_update_count
        for idx in indices:
            if idx not in counts and idx in self._loaded_counts:
                counts[idx] = self._loaded_counts[idx]

    def set_states(self, states):
        """Load states saved by `get_states` (bytes); never unpickles.

        If the bytes also hold an optimizer (``dump_optimizer=True``), it
        replaces this updater's optimizer, as in MXNet. Otherwise the current
        optimizer keeps its settings and takes the saved update counts
        (``num_update`` and each index's count), so Adam's bias correction and
        the learning-rate schedule continue where they stopped (MXNet's
        states-only files lose them). States move to their weights' devices
        on the next update.
        """
        saved = loads_saved_states(states)
        if not isinstance(saved.states, dict):
            raise ValueError(f"optimizer states must hold a dict, found "
                             f"{type(saved.states).__name__}")
        self.states = saved.states
        if saved.optimizer is not None:
            self.optimizer = saved.optimizer
            self._loaded_counts = {}
        elif saved.progress is not None:
            self._restore_counts(saved.progress)
        self.states_synced = dict.fromkeys(self.states.keys(), False)

    def _restore_counts(self, progress):
        # Every device's counters become the saved ones (so get_states gives back
        # what was loaded); a device first seen later gets them on its first update.
        opt = self.optimizer
        self._loaded_counts = dict(progress["index_update_counts"])
        for counts in opt._all_index_update_counts.values():
            counts.clear()
            counts.update(self._loaded_counts)
        opt.num_update = int(progress["num_update"])

    def set_mxnet_states(self, states):
        """Load MXNet's pickled `.states` bytes (or file) with the restricted reader.

        Only NDArray states are read (see `read_mxnet_states`); the optimizer
        is kept. Explicit on purpose: `set_states` never unpickles anything.
        """
        self.states = read_mxnet_states(states)
        self.states_synced = dict.fromkeys(self.states.keys(), False)

    def get_states(self, dump_optimizer=False):
        """Return the states as bytes (a pickle-free .npz container, see `state_io`).

        Parameters
        ----------
        dump_optimizer : bool, default False
            Also save the optimizer (learning rate, multipliers, update counts,
            scheduler state).
        """
        return dumps_states(self.states, self.optimizer if dump_optimizer else None,
                            progress=_progress(self.optimizer))


def _progress(optimizer):
    """The optimizer's update counts: num_update and, per index, its largest count."""
    merged = {}
    for counts in optimizer._all_index_update_counts.values():
        for idx, n in counts.items():
            merged[idx] = max(n, merged.get(idx, n))
    return {"num_update": int(optimizer.num_update),
            "index_update_counts": {k: int(n) for k, n in merged.items()}}


def _to_device(arr, context):
    if isinstance(context, Context):
        if context.device_type != "gpu":
            return to_numpy(arr)
        xp = context.xp
        with xp.cuda.Device(context.device_id):
            return xp.asarray(arr)
    xp = array_module(context)
    if xp is np:
        return to_numpy(arr)
    with context.device:
        return xp.asarray(arr)


def get_updater(optimizer):
    """Return an `Updater` applying `optimizer` (MXNet's `get_updater`)."""
    return Updater(optimizer)
