"""Read MXNet 1.x `.states` files (pickled dicts of NDArrays) without unpickling code.

MXNet writes ``pickle.dumps(updater.states)``: a dict index -> None, NDArray
or tuple of them, where an NDArray pickles as ``(NDArray, (None,),
{'handle': <bytes of one NDArray record>})``. A restricted `Unpickler` maps
``mxnet.ndarray.ndarray.NDArray`` to a stub that decodes the record into a
numpy array and refuses every other global, so a hostile file cannot run code.
A file saved with ``dump_optimizer=True`` also pickles MXNet's optimizer
object; that is refused (the states alone can be re-saved from MXNet).
"""
import codecs
import io
import pickle
import struct

import numpy as np

from ..base import FLAG_TO_DTYPE

__all__ = ["read_mxnet_states"]

_V2_MAGIC = 0xF993FAC9
_V3_MAGIC = 0xF993FACA


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError("truncated NDArray record in MXNet optimizer states")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values


def decode_ndarray_record(data):
    """One dense V2/V3 NDArray record (reference section 11.3) -> numpy array, or None."""
    r = _Reader(bytes(data))
    (magic,) = r.take("<I")
    if magic not in (_V2_MAGIC, _V3_MAGIC):
        raise ValueError(f"unsupported NDArray record magic 0x{magic:08X} in MXNet "
                         "optimizer states (expected V2 0xF993FAC9 or V3 0xF993FACA)")
    (stype,) = r.take("<i")
    if stype != 0:
        raise ValueError(f"sparse NDArray (stype {stype}) in MXNet optimizer states "
                         "is not supported")
    (ndim,) = r.take("<i")
    if (magic == _V2_MAGIC and ndim == 0) or (magic == _V3_MAGIC and ndim == -1):
        return None
    shape = r.take(f"<{ndim}q") if ndim > 0 else ()
    r.take("<ii")  # dev_type, dev_id: loaded to host regardless
    (flag,) = r.take("<i")
    if flag not in FLAG_TO_DTYPE:
        raise ValueError(f"unsupported MXNet type flag {flag} in optimizer states")
    dtype = FLAG_TO_DTYPE[flag]
    count = int(np.prod(shape)) if shape else 1
    nbytes = count * dtype.itemsize
    if r.pos + nbytes > len(r.data):
        raise ValueError("truncated NDArray data in MXNet optimizer states")
    arr = np.frombuffer(r.data, dtype=dtype.newbyteorder("<"), count=count, offset=r.pos)
    return arr.astype(dtype).reshape(shape)


class _NDArrayStub:
    """Stands in for mxnet.ndarray.ndarray.NDArray while unpickling."""

    def __init__(self, *args):
        self.array = None

    def __setstate__(self, state):
        handle = state.get("handle") if isinstance(state, dict) else None
        self.array = None if handle is None else decode_ndarray_record(handle)


def _latin1_encode(text, encoding="latin1"):
    # Protocol-2 pickles store bytes as _codecs.encode(str, 'latin1'); allow only that.
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


_ALLOWED = {
    ("mxnet.ndarray.ndarray", "NDArray"): _NDArrayStub,
    ("mxnet.ndarray", "NDArray"): _NDArrayStub,
    ("builtins", "bytearray"): bytearray,
    ("__builtin__", "bytearray"): bytearray,
    ("_codecs", "encode"): _latin1_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(
            f"MXNet optimizer states reference {module}.{name}; only NDArray states are "
            "read (files saved with dump_optimizer=True pickle the optimizer: not supported)")


def _unwrap(value):
    if isinstance(value, _NDArrayStub):
        return value.array
    if isinstance(value, tuple):
        return tuple(_unwrap(v) for v in value)
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if value is None:
        return None
    raise ValueError(f"unexpected {type(value).__name__} inside MXNet optimizer states")


def read_mxnet_states(data):
    """Decode MXNet `.states` bytes (or a file name) into ``{index: state}`` of numpy arrays.

    Parameters
    ----------
    data : bytes or str
        The pickled bytes MXNet's ``Updater.get_states()`` returned, or the
        path of a `.states` file.

    Returns
    -------
    dict
        Index (int, or parameter name) -> None, numpy array or tuple of them;
        pass it to ``Updater.states`` (and mark ``states_synced`` False).
    """
    if isinstance(data, str):
        with open(data, "rb") as f:
            data = f.read()
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"read_mxnet_states expects bytes or a file name, "
                        f"received {type(data).__name__}")
    states = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    if not isinstance(states, dict):
        raise ValueError("MXNet optimizer states hold a "
                         f"{type(states).__name__}, expected a dict (dump_optimizer=True "
                         "files are not supported)")
    return {(k.decode() if isinstance(k, bytes) else k): _unwrap(v) for k, v in states.items()}
