"""`rm.recordio`: MXNet's RecordIO files (`.rec` + `.idx`) and image record headers.

The format is dmlc-core's, byte for byte, so files written here read in
MXNet and the other way round:

- a record is a 4-byte little-endian magic ``0xced7230a``, a 4-byte word
  ``cflag << 29 | length``, `length` bytes of data and zero padding to the
  next multiple of 4;
- data that holds the magic at a 4-byte-aligned position is split there into
  parts (cflag 1 = first, 2 = middle, 3 = last; 0 = a whole record); the
  magic itself is not stored and a reader puts it back between the parts;
- the `.idx` file is text, one ``key\\toffset`` line per record, the offset of
  the record's first header in the `.rec` file.

A record of an image data set starts with an `IRHeader` (``struct 'IfQQ'``:
flag, label, id, id2); a flag > 0 means `flag` float32 labels follow the
header and `label` is 0.

Files are written to a temporary name and renamed into place by `close()`
(or the end of a ``with`` block); an exception inside ``with`` discards the
file, so a crash never leaves half a `.rec` under the real name.
"""
import numbers
import os
import struct
from collections import namedtuple
from multiprocessing import current_process

import numpy as np

from . import fileio
from .base import MXNetError

__all__ = ["MXRecordIO", "MXIndexedRecordIO", "IRHeader", "pack", "unpack", "pack_img",
           "unpack_img", "RecordIOError", "read_record_at", "scan_record_offsets"]

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LENGTH_BITS = 29
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1
_HEAD = struct.Struct("<II")


class RecordIOError(MXNetError, ValueError):
    """A `.rec` or `.idx` file that is truncated or not what it should be.

    The message names the file, the byte offset and what was expected there.
    """

    def __init__(self, uri, offset, expected):
        where = f"byte offset {offset}" if isinstance(offset, int) else offset
        super().__init__(f"{uri}: at {where}: expected {expected}")
        self.uri, self.offset = uri, offset


# ------------------------------------------------------------------ the byte format


def encode_record(buf):
    """The bytes MXNet's writer puts in the file for one record `buf`."""
    size = len(buf)
    if size >= 1 << _LENGTH_BITS:
        raise ValueError(f"RecordIO only accepts records under 2**29 bytes, received {size}")
    out, start, search = [], 0, 0
    while True:
        hit = buf.find(_MAGIC_BYTES, search)
        if hit < 0:
            break
        if hit % 4:            # unaligned magic: readers never mistake it for a header
            search = hit + 1
            continue
        out.append(_HEAD.pack(MAGIC, (1 if start == 0 else 2) << _LENGTH_BITS | (hit - start)))
        out.append(buf[start:hit])
        start = search = hit + 4
    out.append(_HEAD.pack(MAGIC, (0 if start == 0 else 3) << _LENGTH_BITS | (size - start)))
    out.append(buf[start:])
    out.append(b"\0" * (-size % 4))
    return b"".join(out)


def read_record_at(pread, offset, uri):
    """Read the record whose first header is at `offset`.

    `pread(n, offset)` returns up to `n` bytes at `offset` (fewer at the end
    of the file). Returns ``(payload, next_offset)``, or ``(None, offset)``
    at the end of the file.
    """
    parts, pos = [], offset
    while True:
        head = pread(8, pos)
        if not head and not parts:
            return None, pos
        if len(head) < 8:
            what = (f"the next part of the record that starts at byte {offset}"
                    if parts else "an 8-byte record header")
            raise RecordIOError(uri, pos, f"{what}, found {len(head)} bytes before the end of "
                                "the file (truncated file?)")
        magic, lrec = _HEAD.unpack(head)
        if magic != MAGIC:
            raise RecordIOError(uri, pos, f"the RecordIO magic 0xced7230a, found 0x{magic:08x} "
                                "(not a RecordIO file, or an .idx offset that is not a record)")
        cflag, length = lrec >> _LENGTH_BITS, lrec & _LENGTH_MASK
        wanted = (2, 3) if parts else (0, 1)
        if cflag not in wanted:
            raise RecordIOError(uri, pos, f"a record part with continuation flag in {wanted}, "
                                f"found flag {cflag}")
        padded = (length + 3) & ~3
        body = pread(padded, pos + 8) if padded else b""
        if len(body) < padded:
            raise RecordIOError(uri, pos + 8, f"{padded} bytes of record data ({length} + "
                                f"padding), found {len(body)} before the end of the file "
                                "(truncated file?)")
        parts.append(body[:length])
        pos += 8 + padded
        if cflag in (0, 3):
            return _MAGIC_BYTES.join(parts), pos


def scan_record_offsets(path):
    """Byte offsets of every record in the `.rec` file `path`, reading headers only."""
    offsets = []
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        pos, in_record = 0, False
        while pos < size:
            f.seek(pos)
            head = f.read(8)
            if len(head) < 8:
                raise RecordIOError(path, pos, f"an 8-byte record header, found {len(head)} "
                                    "bytes before the end of the file (truncated file?)")
            magic, lrec = _HEAD.unpack(head)
            if magic != MAGIC:
                raise RecordIOError(path, pos, f"the RecordIO magic 0xced7230a, found "
                                    f"0x{magic:08x} (not a RecordIO file?)")
            cflag, length = lrec >> _LENGTH_BITS, lrec & _LENGTH_MASK
            if cflag in (0, 1):
                if in_record:
                    raise RecordIOError(path, pos, "the last part (flag 3) of the record "
                                        f"before, found a new record (flag {cflag})")
                offsets.append(pos)
            in_record = cflag in (1, 2)
            pos += 8 + ((length + 3) & ~3)
        if pos > size:
            raise RecordIOError(path, size, f"{pos - size} more bytes of record data "
                                "(truncated file?)")
        if in_record:
            raise RecordIOError(path, size, "the last part of the final record, found the "
                                "end of the file")
    return np.asarray(offsets, dtype=np.int64)


def _file_pread(f):
    def pread(n, offset):
        f.seek(offset)
        return f.read(n)
    return pread


def _check_local(uri, what):
    uri = os.fspath(uri) if isinstance(uri, os.PathLike) else uri
    if not isinstance(uri, str):
        raise TypeError(f"{what} must be a path (str or os.PathLike), received "
                        f"{type(uri).__name__}")
    return uri


# ------------------------------------------------------------------ sequential files


class MXRecordIO:
    """Read or write a RecordIO file record by record.

    Parameters
    ----------
    uri : str
        Path of the `.rec` file (writing also accepts URLs raymod's fileio knows).
    flag : {'r', 'w'}
        'r' to read, 'w' to write (the file appears when closed).

    Examples
    --------
    >>> with rm.recordio.MXRecordIO('tmp.rec', 'w') as rec:
    ...     rec.write(b'record_0')
    >>> rm.recordio.MXRecordIO('tmp.rec', 'r').read()
    b'record_0'
    """

    def __init__(self, uri, flag):
        self.uri = _check_local(uri, "uri")
        self.flag = flag
        self.pid = None
        self.is_open = False
        self.writable = flag == "w"
        self._file = None
        self._writer = None
        self._pos = 0
        self.open()

    def open(self):
        """Open the file (for 'w': start a new, empty one)."""
        if self.flag == "w":
            self._writer = fileio.atomic_write(self.uri)
            self._file = self._writer.__enter__()
            self.writable = True
        elif self.flag == "r":
            if fileio.is_remote(self.uri):
                raise ValueError(f"MXRecordIO reads local files only, received {self.uri!r}")
            try:
                self._file = open(fileio.local_path(self.uri), "rb")
            except FileNotFoundError:
                raise FileNotFoundError(f"RecordIO file {self.uri!r} does not exist") from None
            self.writable = False
        else:
            raise ValueError(f"Invalid flag {self.flag!r}: 'r' to read, 'w' to write")
        self._pos = 0
        self.pid = current_process().pid
        self.is_open = True

    def close(self):
        """Close the file; a writer's file appears under its name now."""
        self._finish(None)

    def _finish(self, exc):
        if not getattr(self, "is_open", False):
            return
        self.is_open = False
        self.pid = None
        if self._writer is not None:
            writer, self._writer = self._writer, None
            if exc is None:
                writer.__exit__(None, None, None)
            else:   # the atomic writer deletes its temporary file
                writer.__exit__(type(exc), exc, exc.__traceback__)
        else:
            self._file.close()
        self._file = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self._finish(exc)

    def __getstate__(self):
        """Pickle as MXNet does: the path and flag; an open file reopens on unpickling."""
        is_open = self.is_open
        self.close()
        state = {k: v for k, v in self.__dict__.items() if k not in ("_file", "_writer")}
        state["is_open"] = is_open
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._file, self._writer = None, None
        self.is_open = False
        if state["is_open"]:
            self.open()

    def _check_pid(self, allow_reset=False):
        if self.pid != current_process().pid:
            if allow_reset:
                self.reset()
            else:
                raise RuntimeError("Forbidden operation in multiple processes: this "
                                   "MXRecordIO was opened in another process")

    def _check_open(self, want_writer):
        if not self.is_open:
            raise ValueError(f"RecordIO file {self.uri!r} is closed")
        if want_writer != self.writable:
            mode = "writing ('w')" if want_writer else "reading ('r')"
            raise ValueError(f"RecordIO file {self.uri!r} was not opened for {mode}")

    def reset(self):
        """Go back to the first record (a writer starts the file over, as in MXNet)."""
        self.close()
        self.open()

    def write(self, buf):
        """Append one record.

        Parameters
        ----------
        buf : bytes
        """
        self._check_open(want_writer=True)
        self._check_pid(allow_reset=False)
        if not isinstance(buf, (bytes, bytearray, memoryview)):
            raise TypeError(f"write() takes bytes, received {type(buf).__name__}")
        data = encode_record(bytes(buf))
        self._file.write(data)
        self._pos += len(data)

    def read(self):
        """The next record as bytes, or None after the last one."""
        self._check_open(want_writer=False)
        self._check_pid(allow_reset=False)
        payload, self._pos = read_record_at(_file_pread(self._file), self._pos, self.uri)
        return payload

    def tell(self):
        """The byte offset where the next record will be written (or read)."""
        self._check_open(want_writer=self.writable)
        return self._pos


# ------------------------------------------------------------------ indexed files


class MXIndexedRecordIO(MXRecordIO):
    """A RecordIO file with an `.idx` index for random access by key.

    Parameters
    ----------
    idx_path : str
        Path of the index file.
    uri : str
        Path of the `.rec` file.
    flag : {'r', 'w'}
    key_type : type, optional
        Keys are read back through it; default `int`.

    Examples
    --------
    >>> with rm.recordio.MXIndexedRecordIO('tmp.idx', 'tmp.rec', 'w') as rec:
    ...     for i in range(5):
    ...         rec.write_idx(i, b'record_%d' % i)
    >>> rm.recordio.MXIndexedRecordIO('tmp.idx', 'tmp.rec', 'r').read_idx(3)
    b'record_3'
    """

    def __init__(self, idx_path, uri, flag, key_type=int):
        self.idx_path = _check_local(idx_path, "idx_path")
        self.idx = {}
        self.keys = []
        self.key_type = key_type
        self.fidx = None
        self._idx_writer = None
        super().__init__(uri, flag)

    def open(self):
        super().open()
        self.idx = {}
        self.keys = []
        if self.writable:
            self._idx_writer = fileio.atomic_write(self.idx_path)
            self.fidx = self._idx_writer.__enter__()
        else:
            self._read_index()

    def _read_index(self):
        try:
            with fileio.open_read(self.idx_path, "r") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            self._finish(None)
            raise FileNotFoundError(f"RecordIO index {self.idx_path!r} does not exist") from None
        for number, line in enumerate(lines, 1):
            fields = line.strip().split("\t")
            if fields == [""]:
                continue
            try:
                key, offset = self.key_type(fields[0]), int(fields[1])
            except (ValueError, IndexError):
                self._finish(None)
                raise RecordIOError(self.idx_path, f"line {number}",
                                    f"'<key>\\t<offset>', found {line!r}") from None
            self.idx[key] = offset
            self.keys.append(key)

    def _finish(self, exc):
        if getattr(self, "is_open", False) and self._idx_writer is not None:
            writer, self._idx_writer = self._idx_writer, None
            super()._finish(exc)      # the .rec first: an .idx never names a missing file
            if exc is None:
                writer.__exit__(None, None, None)
            else:
                writer.__exit__(type(exc), exc, exc.__traceback__)
            self.fidx = None
            return
        super()._finish(exc)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_idx_writer", None)
        state["fidx"] = None
        return state

    def __setstate__(self, state):
        self._idx_writer = None
        super().__setstate__(state)

    def seek(self, idx):
        """Move the reader to the record with key `idx`."""
        self._check_open(want_writer=False)
        self._check_pid(allow_reset=True)
        try:
            self._pos = self.idx[idx]
        except KeyError:
            raise KeyError(f"{self.idx_path}: no record with key {idx!r} "
                           f"({len(self.keys)} keys)") from None

    def read_idx(self, idx):
        """The record with key `idx`."""
        self.seek(idx)
        return self.read()

    def write_idx(self, idx, buf):
        """Append record `buf` under key `idx`."""
        key = self.key_type(idx)
        pos = self.tell()
        self.write(buf)
        self.fidx.write(f"{key}\t{pos}\n".encode("utf-8"))
        self.idx[key] = pos
        self.keys.append(key)


# ------------------------------------------------------------------ image record headers

IRHeader = namedtuple("HEADER", ["flag", "label", "id", "id2"])
IRHeader.__doc__ = """The header of an image record.

Parameters
----------
flag : int
    0 for one label in `label`; n > 0 means n float32 labels follow the header.
label : float or array of float
id : int
    Usually the record's unique id (the image's index in the .lst file).
id2 : int
    Higher bits of the id; 0 in most files.
"""
_IR_FORMAT = struct.Struct("<IfQQ")
_IR_SIZE = _IR_FORMAT.size


def pack(header, s):
    """Pack a header and a byte string into one image record.

    Parameters
    ----------
    header : IRHeader
        A number `label` is stored in the header (flag 0); an array of labels
        is stored after it (flag = its size).
    s : bytes

    Returns
    -------
    bytes
    """
    header = IRHeader(*header)
    if not isinstance(s, (bytes, bytearray)):
        raise TypeError(f"pack() takes bytes after the header, received {type(s).__name__}")
    if isinstance(header.label, numbers.Number):
        header = header._replace(flag=0)
    else:
        label = np.asarray(header.label, dtype=np.float32)
        header = header._replace(flag=label.size, label=0)
        s = label.tobytes() + bytes(s)
    return _IR_FORMAT.pack(*header) + bytes(s)


def unpack(s):
    """Split an image record into its `IRHeader` and the remaining bytes.

    Returns
    -------
    header : IRHeader
        With `label` a float32 array when the record holds several labels.
    s : bytes
    """
    if len(s) < _IR_SIZE:
        raise ValueError(f"unpack: an image record starts with a {_IR_SIZE}-byte IRHeader, "
                         f"received {len(s)} bytes")
    header = IRHeader(*_IR_FORMAT.unpack(s[:_IR_SIZE]))
    s = s[_IR_SIZE:]
    if header.flag > 0:
        if len(s) < 4 * header.flag:
            raise ValueError(f"unpack: the header says {header.flag} labels "
                             f"({4 * header.flag} bytes), the record has {len(s)} bytes left")
        header = header._replace(label=np.frombuffer(s, np.float32, header.flag))
        s = s[header.flag * 4:]
    return header, s


def unpack_img(s, iscolor=-1):
    """Unpack an image record and decode its image with OpenCV.

    Parameters
    ----------
    s : bytes
    iscolor : int
        OpenCV's imdecode flag: -1 as stored, 0 grayscale, 1 color (BGR).

    Returns
    -------
    header : IRHeader
    img : numpy.ndarray
        uint8, H x W (x C), channels in OpenCV's BGR order.
    """
    from .image.codec import imdecode_bgr
    header, s = unpack(s)
    return header, imdecode_bgr(s, iscolor, what=f"the image of record id {header.id}")


def pack_img(header, img, quality=95, img_fmt=".jpg"):
    """Encode an image with OpenCV and pack it into an image record.

    Parameters
    ----------
    header : IRHeader
    img : numpy.ndarray
        uint8 H x W x C in OpenCV's BGR order (or H x W).
    quality : int
        JPEG quality 1-100, or PNG compression 0-9.
    img_fmt : str
        '.jpg' (or '.jpeg') or '.png'.

    Returns
    -------
    bytes
    """
    from .image.codec import imencode
    return pack(header, imencode(img, img_fmt, quality))
