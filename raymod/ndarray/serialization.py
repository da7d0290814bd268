"""MXNet's binary NDArray list format (`.params` files): `save`, `load`.

Byte-compatible with `mx.nd.save` / `mx.nd.load` of MXNet 1.x. Layout (all
little-endian; reference section 11.3)::

    uint64 0x112, uint64 0, uint64 N, N x record, uint64 K, K x (uint64 len, bytes)

K is N for a named (dict) save and 0 for a list. raymod writes V2 records
(`0xF993FAC9`: int32 stype=0, int32 ndim, int64 dims, int32 dev_type=1,
int32 dev_id=0, int32 type flag, raw C-order data), as MXNet 1.x does. A 0-d
array is written as a V3 record (`0xF993FACA`, numpy-shape semantics),
because in a V2 record ndim 0 means "no array" and MXNet's own V2 output for
a 0-d array cannot be read back; MXNet loads the V3 record under
`mx.npx.set_np()`.

The reader accepts V3, V2, V1 (`0xF993FAC8`) and pre-V1 legacy records, any
device type and id. Decisions where numpy and MXNet differ:

* bfloat16 (type flag 12) loads as float32, exactly (the 16 stored bits are
  the top half of the float32). To write bfloat16, pass an array of MXNet's
  stand-in dtype `BFLOAT16` (`[('bfloat16', '<u2')]`, raw bits) or of
  `ml_dtypes.bfloat16`.
* A "none" record (no shape: V2/V1/legacy ndim 0, V3 ndim -1) loads as None.
* Sparse records (row_sparse, csr) raise `MXNetError`: raymod arrays are dense.
"""
import io
import math
import os
import struct

import numpy as np

from ..base import DTYPE_TO_FLAG, FLAG_TO_DTYPE, MXNetError
from ..context import to_numpy
from ..fileio import atomic_write, open_read
from .ndarray import NDArray

LIST_MAGIC = 0x112          # kMXAPINDArrayListMagic
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA
BFLOAT16_FLAG = 12
BFLOAT16 = np.dtype([("bfloat16", "<u2")])   # what MXNet 1.x's asnumpy() gives for bfloat16
_STYPE_NAMES = {1: "row_sparse", 2: "csr"}
_MAX_NDIM = 64              # a sanity bound: MXNet's TShape has no lower one


# ---------------------------------------------------------------------- writing

def save(fname, data):
    """Save arrays to `fname` in MXNet's format, atomically.

    Parameters
    ----------
    fname : str or os.PathLike
        A local path or an fsspec URL (``s3://``, ``memory://``, ...).
    data : array, list of arrays, or dict of str to array
        A single array is saved as a one-element list. Arrays may be
        NDArrays, numpy arrays or cupy arrays (copied to the host).
    """
    records, names = _as_records(data)
    with atomic_write(fname) as f:
        _write(f, records, names)


def save_tobuffer(data):
    """The bytes `save` would write for `data`."""
    records, names = _as_records(data)
    buf = io.BytesIO()
    _write(buf, records, names)
    return buf.getvalue()


def _as_records(data):
    """Validate everything before a byte is written: (list of arrays, list of names or None)."""
    if _is_array(data):
        data = [data]
    if isinstance(data, dict):
        for key in data:
            if not isinstance(key, str):
                raise TypeError(f"save only accepts dict str->NDArray or list of NDArray: "
                                f"key {key!r} is a {type(key).__name__}")
        names = list(data)
        arrays = [_host_array(v, repr(k)) for k, v in data.items()]
    elif isinstance(data, (list, tuple)):
        names = None
        arrays = [_host_array(v, f"item {i}") for i, v in enumerate(data)]
    else:
        raise ValueError("data needs to either be an NDArray, dict of str, NDArray pairs "
                         f"or a list of NDArrays; received {type(data).__name__}")
    return arrays, names


def _is_array(x):
    return isinstance(x, np.ndarray) or hasattr(x, "__cuda_array_interface__")


def _host_array(value, where):
    if not _is_array(value):
        raise TypeError(f"save only accepts dict str->NDArray or list of NDArray: {where} is "
                        f"a {type(value).__name__}")
    arr = to_numpy(value)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    _type_flag(arr.dtype, where)
    # not np.ascontiguousarray: it would turn a 0-d array into shape (1,)
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def _type_flag(dtype, where):
    if dtype == BFLOAT16 or (dtype.name == "bfloat16" and dtype.itemsize == 2):
        return BFLOAT16_FLAG
    flag = DTYPE_TO_FLAG.get(dtype)
    if flag is None:
        raise TypeError(f"cannot save {where}: MXNet's format has no type for dtype {dtype} "
                        f"(supported: {sorted(str(d) for d in DTYPE_TO_FLAG)}, bfloat16)")
    return flag


def _write(f, arrays, names):
    f.write(struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays)))
    for arr in arrays:
        _write_record(f, arr)
    encoded = [n.encode("utf-8") for n in names] if names is not None else []
    f.write(struct.pack("<Q", len(encoded)))
    for name in encoded:
        f.write(struct.pack("<Q", len(name)))
        f.write(name)


def _write_record(f, arr):
    magic = V3_MAGIC if arr.ndim == 0 else V2_MAGIC
    f.write(struct.pack(f"<Iii{arr.ndim}q", magic, 0, arr.ndim, *arr.shape))
    f.write(struct.pack("<iii", 1, 0, _type_flag(arr.dtype, "array")))
    if arr.size:
        f.write(arr.reshape(-1).view(np.uint8).data)


# ---------------------------------------------------------------------- reading

def load(fname):
    """Load arrays saved by `save` or by MXNet's `mx.nd.save`, from a path or fsspec URL.

    Returns
    -------
    list of NDArray, or dict of str to NDArray
        A dict when the file holds names, else a list (a saved empty dict
        loads as an empty list, as in MXNet).
    """
    fname = os.fspath(fname)
    with open_read(fname) as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(0)
        return _Reader(f, size, repr(fname)).read_list()


def load_frombuffer(buf):
    """Load arrays from the bytes of a saved file (MXNet's `nd.load_frombuffer`)."""
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise TypeError(f"buf must be bytes, received {type(buf).__name__}")
    buf = bytes(buf)
    return _Reader(io.BytesIO(buf), len(buf), "<buffer>").read_list()


def load_record(data):
    """One NDArray record without the list header.

    For example the `handle` bytes MXNet pickles an NDArray as (reference 11.4).

    Returns an NDArray, or None for a "none" record.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, received {type(data).__name__}")
    data = bytes(data)
    return _Reader(io.BytesIO(data), len(data), "<record>").read_record(0)


class _Reader:
    """Parses one NDArray list stream; every error names the source, offset and expectation."""

    def __init__(self, f, size, source):
        self.f = f
        self.size = size
        self.source = source

    def fail(self, offset, message):
        raise MXNetError(f"Invalid NDArray file format: {self.source} at byte offset "
                         f"{offset}: {message}")

    def read(self, n, what):
        offset = self.f.tell()
        data = self.f.read(n)
        if len(data) != n:
            self.fail(offset, f"expected {n} bytes ({what}), the file ends after {len(data)}")
        return data

    def unpack(self, fmt, what):
        return struct.unpack("<" + fmt, self.read(struct.calcsize("<" + fmt), what))

    def remaining(self):
        return self.size - self.f.tell()

    def read_list(self):
        header, _reserved = self.unpack("QQ", "list header: magic 0x112 and a reserved word")
        if header != LIST_MAGIC:
            self.fail(0, f"expected list magic 0x112, found {header:#x} "
                      "(not an MXNet NDArray list file)")
        offset = self.f.tell()
        (count,) = self.unpack("Q", "number of arrays")
        if count * 12 > self.remaining():  # every record takes at least 12 bytes
            self.fail(offset, f"the header says {count} arrays, more than the "
                      f"{self.remaining()} remaining bytes can hold")
        arrays = [self.read_record(i) for i in range(count)]
        offset = self.f.tell()
        (num_names,) = self.unpack("Q", "number of names")
        if num_names not in (0, count):
            self.fail(offset, f"expected 0 or {count} names (one per array), found {num_names}")
        names = [self.read_name(i) for i in range(num_names)]
        if not names:
            return arrays
        return dict(zip(names, arrays))

    def read_name(self, index):
        offset = self.f.tell()
        (length,) = self.unpack("Q", f"length of name {index}")
        if length > self.remaining():
            self.fail(offset, f"name {index} claims {length} bytes, only "
                      f"{self.remaining()} remain")
        raw = self.read(length, f"name {index}")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            self.fail(offset + 8, f"name {index} is not valid UTF-8 ({err})")

    def read_record(self, index):
        start = self.f.tell()
        (magic,) = self.unpack("I", f"array {index}: record magic")
        if magic in (V2_MAGIC, V3_MAGIC):
            return self._read_v2(index, start, numpy_shape=(magic == V3_MAGIC))
        if magic == V1_MAGIC:
            (ndim,) = self.unpack("i", f"array {index}: ndim")
            shape = self._read_dims(index, ndim, "q")
            return self._read_body(index, shape, none=(ndim <= 0))
        # Pre-V1 files have no magic: the word just read is ndim, dims are uint32.
        if magic > _MAX_NDIM:
            self.fail(start, f"array {index}: expected a record magic (0xF993FAC8/9/A) or a "
                      f"legacy ndim <= {_MAX_NDIM}, found {magic:#x}")
        shape = self._read_dims(index, magic, "I")
        return self._read_body(index, shape, none=(magic == 0))

    def _read_v2(self, index, start, numpy_shape):
        offset = self.f.tell()
        (stype,) = self.unpack("i", f"array {index}: storage type")
        if stype != 0:
            kind = _STYPE_NAMES.get(stype, f"unknown storage type {stype}")
            self.fail(offset, f"array {index} is stored as {kind}; raymod loads dense "
                      "(storage type 0) arrays only")
        offset = self.f.tell()
        (ndim,) = self.unpack("i", f"array {index}: ndim")
        if ndim == -1 or (ndim == 0 and not numpy_shape):
            return None  # MXNet's "none" array: the record ends here
        if ndim < 0:
            self.fail(offset, f"array {index}: expected ndim >= -1, found {ndim}")
        return self._read_body(index, self._read_dims(index, ndim, "q"), none=False)

    def _read_dims(self, index, ndim, code):
        offset = self.f.tell()
        if not 0 <= ndim <= _MAX_NDIM:
            self.fail(offset, f"array {index}: expected 0 <= ndim <= {_MAX_NDIM}, found {ndim}")
        dims = self.unpack(code * ndim, f"array {index}: {ndim} dimensions")
        if any(d < 0 for d in dims):
            self.fail(offset, f"array {index}: negative dimension in shape {dims}")
        return dims

    def _read_body(self, index, shape, none):
        if none:
            return None
        _dev_type, _dev_id, flag = self.unpack("iii", f"array {index}: context and type flag")
        offset = self.f.tell()
        if flag == BFLOAT16_FLAG:
            dtype = np.dtype("<u2")
        elif flag in FLAG_TO_DTYPE:
            dtype = FLAG_TO_DTYPE[flag].newbyteorder("<")
        else:
            self.fail(offset - 4, f"array {index}: unknown type flag {flag} (expected 0-12)")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes > self.remaining():
            self.fail(offset, f"array {index} of shape {tuple(shape)} and dtype "
                      f"{'bfloat16' if flag == BFLOAT16_FLAG else dtype.name} needs {nbytes} "
                      f"bytes of data, only {self.remaining()} remain")
        arr = np.empty(shape, dtype)
        self._read_into(arr.reshape(-1).view(np.uint8), index, offset)
        if flag == BFLOAT16_FLAG:
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr.view(NDArray)

    def _read_into(self, buf, index, offset):
        view = memoryview(buf)
        done = 0
        while done < len(view):
            n = self.f.readinto(view[done:])
            if not n:
                self.fail(offset, f"array {index}: expected {len(view)} bytes of data, "
                          f"the file ends after {done}")
            done += n
