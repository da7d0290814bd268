"""Optimizer states (and optionally the optimizer) to bytes and back, without pickle.

The container is an ``.npz`` archive written with ``allow_pickle=False``:
arrays ``a0, a1, ...`` plus ``header``, a UTF-8 JSON document (stored as a
uint8 array) that describes the structure. Loading uses
``np.load(..., allow_pickle=False)`` and builds only plain values, numpy
arrays, registered `Optimizer` classes and `LRScheduler` subclasses, so a
states blob can never run code.

JSON encoding of a value (every JSON object is a tag):

* ``null``, booleans, numbers, strings: themselves;
* a list: a JSON array;
* ``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}`` (keys keep their
  type: ``3`` and ``"fc_weight"`` differ), ``{"array": i}`` (array ``a<i>``),
  ``{"lr_scheduler": class_name, "attrs": {"dict": ...}}``.

The header is ``{"format": "raymod.optimizer_states", "version": 1,
"states": <value>, "optimizer": null | {"name": registry name, "attrs": <dict>},
"progress": <dict>}``. ``progress`` (absent in files written before it existed)
holds the update counts, ``{"num_update": n, "index_update_counts": {index: n}}``,
so that states loaded without the optimizer still resume Adam's bias correction
and the learning-rate schedule where they stopped.
"""
import io
import json
from collections import namedtuple

import numpy as np

from ..context import to_numpy
from ..lr_scheduler import LRScheduler
from .optimizer import Optimizer

__all__ = ["dumps_states", "loads_states", "SavedStates", "loads_saved_states"]

FORMAT = "raymod.optimizer_states"
VERSION = 1
_HEADER = "header"

SavedStates = namedtuple("SavedStates", ["states", "optimizer", "progress"])
SavedStates.__doc__ = """What one states blob holds: the states dict, the optimizer
(None unless saved with ``dump_optimizer``) and the update counts (None in old files)."""


def _is_array(value):
    if isinstance(value, np.ndarray):
        return True
    return type(value).__module__.split(".")[0] == "cupy" and hasattr(value, "shape")


class _Encoder:
    def __init__(self):
        self.arrays = {}

    def encode(self, value, where):
        if value is None or isinstance(value, (bool, str, int, float)):
            return value
        if isinstance(value, np.generic):
            return value.item()
        if _is_array(value):
            name = f"a{len(self.arrays)}"
            self.arrays[name] = to_numpy(value)
            return {"array": len(self.arrays) - 1}
        if isinstance(value, tuple):
            return {"tuple": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {"dict": [[self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                             for k, v in value.items()]}
        if isinstance(value, LRScheduler):
            return {"lr_scheduler": type(value).__name__,
                    "attrs": self.encode(dict(vars(value)), f"{where}.__dict__")}
        raise TypeError(f"cannot save optimizer states: {where} is a {type(value).__name__}; "
                        "expected None, a number, str, array, tuple, list, dict or LRScheduler")


def _scheduler_class(name):
    found, todo = [], [LRScheduler]
    while todo:
        cls = todo.pop()
        if cls.__name__ == name:
            found.append(cls)
        todo.extend(cls.__subclasses__())
    if len(found) != 1:
        raise ValueError(f"optimizer states name lr_scheduler class {name!r}, which matches "
                         f"{len(found)} LRScheduler subclasses (expected exactly one)")
    return found[0]


class _Decoder:
    def __init__(self, arrays):
        self.arrays = arrays

    def decode(self, node):
        if node is None or isinstance(node, (bool, str, int, float)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if isinstance(node, dict):
            if set(node) == {"array"}:
                return self.arrays[f"a{int(node['array'])}"]
            if set(node) == {"tuple"}:
                return tuple(self.decode(v) for v in node["tuple"])
            if set(node) == {"dict"}:
                return {self._key(k): self.decode(v) for k, v in node["dict"]}
            if set(node) == {"lr_scheduler", "attrs"}:
                cls = _scheduler_class(node["lr_scheduler"])
                sched = cls.__new__(cls)
                sched.__dict__.update(self.decode(node["attrs"]))
                return sched
        raise ValueError(f"corrupt optimizer states: unexpected JSON node {node!r:.80}")

    def _key(self, node):
        key = self.decode(node)
        if isinstance(key, list):
            raise ValueError(f"corrupt optimizer states: a dict key is a list: {key!r:.80}")
        return key


def _encode_optimizer(encoder, optimizer):
    name = type(optimizer).__name__.lower()
    if Optimizer.opt_registry.get(name) is not type(optimizer):
        raise TypeError(f"cannot save optimizer {type(optimizer).__name__}: it is not "
                        "registered (decorate it with raymod.optimizer.register)")
    attrs = {k: v for k, v in vars(optimizer).items() if k not in Optimizer._TRANSIENT_ATTRS}
    return {"name": name, "attrs": encoder.encode(attrs, f"{type(optimizer).__name__}")}


def _decode_optimizer(decoder, node):
    name = node["name"]
    cls = Optimizer.opt_registry.get(name)
    if cls is None:
        raise ValueError(f"optimizer states name optimizer {name!r}, which is not registered")
    opt = cls.__new__(cls)  # like unpickling: restore attributes, do not re-run __init__
    opt.__dict__.update(decoder.decode(node["attrs"]))
    opt._restore_transients()
    return opt


def dumps_states(states, optimizer=None, progress=None):
    """Serialise `states` (dict index -> None / array / nested tuples) to bytes.

    Parameters
    ----------
    states : dict
        An `Updater`'s states; keys int or str.
    optimizer : Optimizer, optional
        Also save the optimizer's configuration and progress (learning rate,
        multipliers, update counts, scheduler...), as MXNet's ``dump_optimizer``.
    progress : dict, optional
        The update counts, ``{"num_update": int, "index_update_counts": {index: int}}``.

    Returns
    -------
    bytes
    """
    encoder = _Encoder()
    header = {"format": FORMAT, "version": VERSION,
              "states": encoder.encode(states, "states"),
              "optimizer": None if optimizer is None else _encode_optimizer(encoder, optimizer),
              "progress": None if progress is None else encoder.encode(progress, "progress")}
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **{_HEADER: blob}, **encoder.arrays)
    return buf.getvalue()


def loads_states(data):
    """Inverse of `dumps_states`: returns ``(states, optimizer_or_None)``; never unpickles."""
    saved = loads_saved_states(data)
    return saved.states, saved.optimizer


def loads_saved_states(data):
    """Inverse of `dumps_states`: a `SavedStates` (states, optimizer, progress); never unpickles."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"optimizer states must be bytes, received {type(data).__name__}")
    data = bytes(data)
    if data[:1] == b"\x80":
        raise ValueError("these optimizer states are a Python pickle (MXNet's .states format) "
                         "and set_states never unpickles; load MXNet files explicitly with "
                         "Updater.set_mxnet_states (a restricted reader of NDArray states)")
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
        arrays = {name: archive[name] for name in archive.files}
    except Exception as err:
        raise ValueError(f"not raymod optimizer states (expected an .npz archive): {err}") from err
    if _HEADER not in arrays:
        raise ValueError("not raymod optimizer states: the archive has no header")
    header = json.loads(arrays.pop(_HEADER).tobytes().decode("utf-8"))
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ValueError(f"not raymod optimizer states version {VERSION}: header says "
                         f"format={header.get('format')!r}, version={header.get('version')!r}")
    decoder = _Decoder(arrays)
    states = decoder.decode(header["states"])
    optimizer = None
    if header["optimizer"] is not None:
        optimizer = _decode_optimizer(decoder, header["optimizer"])
    progress = header.get("progress")
    if progress is not None:
        progress = decoder.decode(progress)
        if not (isinstance(progress, dict)
                and set(progress) == {"num_update", "index_update_counts"}):
            raise ValueError(f"corrupt optimizer states: progress is {progress!r:.80}, expected "
                             "a dict of num_update and index_update_counts")
    return SavedStates(states, optimizer, progress)
