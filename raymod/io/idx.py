"""Reading IDX files (the MNIST format: `train-images-idx3-ubyte` and friends).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the
number of dimensions), one big-endian uint32 per dimension, then the values
in C order. Gzip-compressed files (`*.gz`, as MXNet's `get_mnist` downloads
them) are read the same way. Every defect is reported with the file, the
byte offset and what was expected there.
"""
import gzip

import numpy as np

from ..fileio import read_bytes

# IDX type codes and the big-endian numpy dtypes they hold
_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """A file that is not a well-formed IDX file (names the file, the offset, the defect)."""


def read_idx(fname, ndim=None):
    """The array stored in IDX file `fname` (a path or URL; gzip is detected).

    Parameters
    ----------
    fname : str
    ndim : int, optional
        The number of dimensions the caller needs (3 for images, 1 for labels).

    Returns
    -------
    numpy.ndarray in the file's dtype (uint8 for MNIST) and native byte order.
    """
    raw = read_bytes(fname)
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise IDXFormatError(f"{fname}: gzip data is corrupt ({err})") from None
    return parse_idx(raw, fname, ndim)


def parse_idx(raw, fname="<bytes>", ndim=None):
    """The array held by the IDX bytes `raw` (see `read_idx`)."""
    if len(raw) < 4:
        raise IDXFormatError(f"{fname}: {len(raw)} bytes, too short for the 4-byte IDX magic "
                             f"number at offset 0")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise IDXFormatError(f"{fname}: offset 0: expected an IDX magic number (00 00, a type "
                             f"code in {sorted(hex(t) for t in _TYPES)}, the number of "
                             f"dimensions), found bytes {raw[:4].hex(' ')}")
    dtype, dims = _TYPES[raw[2]], raw[3]
    if ndim is not None and dims != ndim:
        raise IDXFormatError(f"{fname}: offset 3: expected a {ndim}-dimensional IDX file, the "
                             f"header says {dims} dimensions")
    header = 4 + 4 * dims
    if len(raw) < header:
        raise IDXFormatError(f"{fname}: {len(raw)} bytes, too short for the {dims} dimension "
                             f"sizes that end at offset {header}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=dims, offset=4))
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != header + size:
        raise IDXFormatError(f"{fname}: the header (shape {shape}, {dtype.itemsize}-byte "
                             f"values) needs {header + size} bytes up to offset "
                             f"{header + size}, the file has {len(raw)}")
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))
