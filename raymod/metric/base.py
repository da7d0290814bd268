"""`EvalMetric` (local and global sums, mergeable state) and `check_label_shapes`.

Labels and predictions may be numpy arrays, NDArrays or cupy arrays. Metrics
whose update is a plain reduction compute on the predictions' device and
bring back only the sums; the others work on host copies, as MXNet does.

`get_state()` / `merge_state(state)` let a metric be updated where the
outputs live (a remote worker) and summed up elsewhere (the driver):
updating two metrics on two parts of the data and merging one's state into
the other gives the same sums as one metric updated on all of it, with the
same update calls (MXNet's per-update-call metrics, such as MSE or macro F1,
depend on how the data is split into calls, never on which object got them).
"""
import functools
import numpy as np

from ..context import array_module, to_numpy


class MetricArgumentError(ValueError, AssertionError):
    """Bad metric input. Also an AssertionError, which is what MXNet raises in these places."""


def _is_array(x):
    return isinstance(x, np.ndarray) or hasattr(x, "__cuda_array_interface__")


def check_label_shapes(labels, preds, wrap=False, shape=False):
    """Check that labels and predictions line up; optionally wrap single arrays in lists.

    Parameters
    ----------
    labels, preds : list of arrays, or arrays
    wrap : bool
        Wrap a single array into a one-element list (after the check).
    shape : bool
        Compare `.shape` instead of `len()`.

    Raises
    ------
    ValueError
        "Shape of labels {} does not match shape of predictions {}".
    """
    if not shape:
        label_shape, pred_shape = len(labels), len(preds)
    else:
        label_shape, pred_shape = labels.shape, preds.shape
    if label_shape != pred_shape:
        raise ValueError(f"Shape of labels {label_shape} does not match shape of "
                         f"predictions {pred_shape}")
    if wrap:
        if _is_array(labels):
            labels = [labels]
        if _is_array(preds):
            preds = [preds]
    return labels, preds


def on_one_device(label, pred):
    """(xp, label, pred) as plain arrays of one module: cupy if either is on a GPU."""
    xp = array_module(label, pred)
    return xp, xp.asarray(label), xp.asarray(pred)


def host(a):
    """A plain numpy array with `a`'s values (no copy for host arrays)."""
    return to_numpy(a)


def plain_number(x):
    """A Python int or float from a numpy/cupy scalar (so states are plain data)."""
    if isinstance(x, (bool, np.bool_)):
        return int(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    return float(x)


_READS = ("reset", "reset_local", "get", "get_global", "get_name_value",
          "get_global_name_value", "get_state")


def _drains_first(method):
    """Wrap a read or reset so sums still held by remote workers are merged first."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        for link in tuple(self.__dict__.get("_remote_links", ())):   # drain may unlink
            link.drain()
        return method(self, *args, **kwargs)
    wrapper._drains_first = True
    return wrapper


class _Statistic:
    """A metric's running sum or count; reading it first merges sums still held remotely.

    So `metric.sum_metric / metric.num_inst` is right on Ray workers too, not
    only `metric.get()`.
    """

    def __set_name__(self, owner, name):
        self.slot = "_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        for link in tuple(obj.__dict__.get("_remote_links", ())):
            link.drain()
        return obj.__dict__[self.slot]

    def __set__(self, obj, value):
        obj.__dict__[self.slot] = value


class EvalMetric:
    """Base class of evaluation metrics.

    Parameters
    ----------
    name : str
    output_names : list of str, optional
        Outputs `update_dict` passes to `update` (all, in order, when None).
    label_names : list of str, optional
        Labels `update_dict` passes to `update` (all, in order, when None).
    **kwargs
        Constructor arguments recorded in `get_config()`.
    """

    _state_keys = ("sum_metric", "num_inst", "global_sum_metric", "global_num_inst")
    sum_metric = _Statistic()
    num_inst = _Statistic()
    global_sum_metric = _Statistic()
    global_num_inst = _Statistic()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _READS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_drains_first", False):
                setattr(cls, name, _drains_first(method))

    def __getstate__(self):
        # Links to remote workers stay with the driver's object.
        return {k: v for k, v in self.__dict__.items() if k != "_remote_links"}

    def __init__(self, name, output_names=None, label_names=None, **kwargs):
        self.name = str(name)
        self.output_names = output_names
        self.label_names = label_names
        self._has_global_stats = kwargs.pop("has_global_stats", False)
        self._kwargs = kwargs
        self.reset()

    def __str__(self):
        return f"EvalMetric: {dict(self.get_name_value())}"

    def get_config(self):
        """The constructor arguments: `create(metric.get_config())` makes an equal metric."""
        config = self._kwargs.copy()
        config.update({"metric": self.__class__.__name__, "name": self.name,
                       "output_names": self.output_names, "label_names": self.label_names})
        return config

    def update_dict(self, label, pred):
        """Update from dicts name -> array, selecting `label_names` and `output_names`."""
        if self.output_names is not None:
            pred = [_pick(pred, name, "output") for name in self.output_names]
        else:
            pred = list(pred.values())
        if self.label_names is not None:
            label = [_pick(label, name, "label") for name in self.label_names]
        else:
            label = list(label.values())
        self.update(label, pred)

    def update(self, labels, preds):
        """Add one batch (lists of arrays, one per output) to the statistics."""
        raise NotImplementedError(f"{type(self).__name__} must implement update()")

    def reset(self):
        """Zero the local and the global statistics."""
        self.num_inst = 0
        self.sum_metric = 0.0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0

    def reset_local(self):
        """Zero the local statistics only (the global ones cover the whole epoch)."""
        self.num_inst = 0
        self.sum_metric = 0.0

    def get(self):
        """`(name, value)` of the local statistics; value is nan before any update."""
        if self.num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, self.sum_metric / self.num_inst)

    def get_global(self):
        """`(name, value)` of the global statistics."""
        if self._has_global_stats:
            if self.global_num_inst == 0:
                return (self.name, float("nan"))
            return (self.name, self.global_sum_metric / self.global_num_inst)
        return self.get()

    def get_name_value(self):
        """`[(name, value), ...]` of the local statistics."""
        return _zip_name_value(*self.get())

    def get_global_name_value(self):
        """`[(name, value), ...]` of the global statistics."""
        if self._has_global_stats:
            return _zip_name_value(*self.get_global())
        return self.get_name_value()

    # ------------------------------------------------------------------ mergeable state

    def get_state(self):
        """The metric's sums as a dict of plain numbers (see the module docstring)."""
        return {key: plain_number(getattr(self, key)) for key in self._state_keys}

    def merge_state(self, state):
        """Add the sums of another metric of the same kind (a `get_state()` dict)."""
        self._check_state(state)
        for key in ("sum_metric", "num_inst", "global_sum_metric", "global_num_inst"):
            setattr(self, key, getattr(self, key) + state[key])

    def _check_state(self, state):
        if not isinstance(state, dict):
            raise TypeError(f"{type(self).__name__}.merge_state expects a dict from "
                            f"get_state(), received {type(state).__name__}")
        expected = set(self.get_state())
        if set(state) != expected:
            raise ValueError(f"{type(self).__name__}.merge_state: expected keys "
                             f"{sorted(expected)}, received {sorted(state)}")


for _name in _READS:
    setattr(EvalMetric, _name, _drains_first(getattr(EvalMetric, _name)))
del _name


def _pick(arrays, name, what):
    if name not in arrays:
        raise KeyError(f"no {what} named {name!r}; have {list(arrays)}")
    return arrays[name]


def _zip_name_value(name, value):
    if not isinstance(name, list):
        name = [name]
    if not isinstance(value, list):
        value = [value]
    return list(zip(name, value))
