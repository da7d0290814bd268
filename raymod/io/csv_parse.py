"""Reading CSV files of numbers for CSVIter, with errors that say where a file is wrong.

What MXNet 1.9.1's CSV reader accepts, it accepts: blank lines are skipped,
spaces around a value and one trailing comma are allowed, a directory
means every non-empty file in it (raymod reads them in name order), and an
integer dtype keeps the leading integer of each value ("2.7" is 2, "1e3"
is 1, as C's strtol reads them). Where MXNet would drop a non-numeric field
and then complain about the row length, raymod names the field.

Floats are rounded correctly to float32. MXNet's reader is not at the
extremes: it reads 3.4e38 two ulps high, 3.4028235e38 as inf and 1e-40
(a subnormal) as 1.1754942e-38; ordinary values agree bit for bit.
"""
import io
import os
import re

import numpy as np

from ..fileio import is_remote, read_bytes

_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


class CSVFormatError(ValueError):
    """A CSV file that does not hold what the iterator was told (names file, line, field)."""


def csv_files(path, arg):
    """The file(s) `path` names: itself, or the non-empty files of a directory, by name."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"CSVIter: {arg} must be a path, received {type(path).__name__}")
    path = os.fspath(path)
    if is_remote(path):
        return [path]
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        files = [os.path.join(path, n) for n in names
                 if os.path.isfile(os.path.join(path, n))
                 and os.path.getsize(os.path.join(path, n)) > 0]
        if not files:
            raise FileNotFoundError(f"CSVIter: {arg}={path!r} is a directory without a "
                                    f"non-empty file")
        return files
    if not os.path.exists(path):
        raise FileNotFoundError(f"CSVIter: {arg}={path!r} does not exist")
    if os.path.getsize(path) == 0:
        raise CSVFormatError(f"CSVIter: {arg}={path!r} is empty")
    return [path]


def read_csv(path, arg, width, dtype, what):
    """The rows of the CSV file(s) at `path` as an (n, width) array of `dtype`.

    Parameters
    ----------
    path : str
    arg : str
        The argument `path` came from, for error messages ('data_csv').
    width : int
        Values per row.
    dtype : numpy.dtype
        float32, int32 or int64.
    what : str
        What a row must match, for error messages ("data_shape (3,)").
    """
    blocks = [_read_file(f, width, dtype, what) for f in csv_files(path, arg)]
    rows = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    if len(rows) == 0:
        raise CSVFormatError(f"CSVIter: {arg}={path!r} holds no rows")
    return rows


def _read_file(fname, width, dtype, what):
    text = read_bytes(fname).decode("utf-8", errors="replace")
    fast_dtype = np.float32 if dtype == np.float32 else np.int64
    try:   # numpy's C reader, for the common case of a clean file
        rows = np.loadtxt(io.StringIO(text), delimiter=",", dtype=fast_dtype, ndmin=2,
                          comments=None)
    except ValueError:
        rows = None
    if rows is None or (rows.size and rows.shape[1] != width):
        rows = _parse(text, fname, width, dtype, what)   # exact rules and precise errors
    return rows.reshape(-1, width).astype(dtype, copy=False)


def _parse(text, fname, width, dtype, what):
    convert = _to_float if dtype == np.float32 else _to_int
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) > 1 and not fields[-1].strip():
            fields.pop()   # one trailing comma, which MXNet's reader allows
        if len(fields) != width:
            raise CSVFormatError(f"{fname}: line {lineno}: expected {width} comma-separated "
                                 f"values ({what}), found {len(fields)}: {line.strip()[:80]!r}")
        rows.append([convert(f, fname, lineno, col) for col, f in enumerate(fields, start=1)])
    return np.asarray(rows, dtype=np.float64 if dtype == np.float32 else np.int64)


def _to_float(field, fname, lineno, col):
    try:
        return np.float32(float(field))
    except ValueError:
        raise CSVFormatError(f"{fname}: line {lineno}, field {col}: expected a number, found "
                             f"{field.strip()[:40]!r}") from None


def _to_int(field, fname, lineno, col):
    match = _LEADING_INT.match(field)
    if not match:
        raise CSVFormatError(f"{fname}: line {lineno}, field {col}: expected an integer, "
                             f"found {field.strip()[:40]!r}")
    return int(match.group(1))
