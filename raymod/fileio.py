"""Reading and writing files: local paths and fsspec URLs, never half a file under the final name.

Every file raymod writes or reads (checkpoints, `.params`, `.states`, symbol
JSON, training histories) goes through here, so each of them accepts a local
path, a ``file://`` URL, or any URL fsspec knows (``s3://``, ``gs://``,
``memory://``, ``hdfs://``...). Local paths and ``file://`` need nothing
beyond the standard library; other URLs need fsspec (``pip install
'raymod[fsspec]'``) and the filesystem's own package (s3fs, gcsfs).

Atomic where the filesystem allows: a local file is written to a temporary
name in the same directory and renamed into place; an object store
(s3, gs, azure, memory) gets the whole object in one put, which readers see
all or nothing; any other filesystem gets a temporary name and a move.
"""
import io
import os
import posixpath
import re
import tempfile
import uuid
from contextlib import contextmanager


def _process_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _process_umask()
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_LOCAL_PROTOCOLS = frozenset({"file", "local"})
# Stores whose single put is all-or-nothing: the object appears only once complete.
_WHOLE_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl",
                                  "oss", "r2", "memory"})


def protocol(path):
    """The URL scheme of `path` ('s3', 'memory', ...), or None for a plain local path."""
    match = _URL.match(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else None
    return match.group(1).lower() if match else None


def is_remote(path):
    """True when `path` is a URL that is not on the local filesystem."""
    proto = protocol(path)
    return proto is not None and proto not in _LOCAL_PROTOCOLS


def local_path(path):
    """`path` as a local filesystem path (``file://`` stripped); raises for remote URLs."""
    path = os.fspath(path)
    proto = protocol(path)
    if proto is None:
        return path
    if proto in _LOCAL_PROTOCOLS:
        return path.split("://", 1)[1]
    raise ValueError(f"{path!r} is not a local path")


def _filesystem(url):
    """(fsspec filesystem, path within it) for a remote URL."""
    try:
        import fsspec
    except ImportError as err:
        raise ImportError(f"reading or writing {url!r} needs fsspec: "
                          f"pip install 'raymod[fsspec]' (plus s3fs for s3://, gcsfs "
                          f"for gs://)") from err
    return fsspec.core.url_to_fs(url)


def _check_path(fname, what="fname"):
    if not isinstance(fname, (str, os.PathLike)):
        raise TypeError(f"{what} must be a path or URL (str or os.PathLike), "
                        f"received {type(fname).__name__}")
    return os.fspath(fname)


def join(base, *names):
    """`base` joined with `names`: os.path.join for local paths, '/' for URLs."""
    base = _check_path(base, "base")
    if is_remote(base):
        return posixpath.join(base, *names)
    return os.path.join(local_path(base), *names)


def makedirs(path):
    """Create directory `path` and its parents if missing (object stores need none)."""
    path = _check_path(path, "path")
    if is_remote(path):
        fs, inner = _filesystem(path)
        fs.makedirs(inner, exist_ok=True)
    elif local_path(path):
        os.makedirs(local_path(path), exist_ok=True)


def exists(path):
    path = _check_path(path, "path")
    if is_remote(path):
        fs, inner = _filesystem(path)
        return fs.exists(inner)
    return os.path.exists(local_path(path))


def glob(pattern):
    """Paths matching `pattern` (shell wildcards in the last part), sorted.

    For URLs the paths come back as the filesystem gives them (without the
    protocol); callers here only use their base names.
    """
    pattern = _check_path(pattern, "pattern")
    if is_remote(pattern):
        fs, inner = _filesystem(pattern)
        return sorted(fs.glob(inner))
    import glob as globmod
    return sorted(globmod.glob(local_path(pattern)))


@contextmanager
def open_read(fname, mode="rb"):
    """Open `fname` (path or URL) for reading; 'rb' or 'r' (UTF-8 text)."""
    fname = _check_path(fname)
    if mode not in ("rb", "r"):
        raise ValueError(f"mode must be 'rb' or 'r', received {mode!r}")
    encoding = None if mode == "rb" else "utf-8"
    if is_remote(fname):
        fs, inner = _filesystem(fname)
        with fs.open(inner, "rb") as raw:
            yield raw if mode == "rb" else io.TextIOWrapper(raw, encoding=encoding)
        return
    with open(local_path(fname), mode, encoding=encoding) as f:
        yield f


def read_bytes(fname):
    """The whole content of `fname` (path or URL)."""
    with open_read(fname) as f:
        return f.read()


@contextmanager
def atomic_write(fname):
    """A binary file that appears under `fname` only once fully written.

    Local paths (and ``file://``): a temporary file in the same directory,
    synced and renamed into place, with the mode a plain open() would give.
    URLs: the bytes are gathered in memory and handed to the filesystem in
    one put (object stores), or as a temporary object moved into place.
    """
    fname = _check_path(fname)
    if is_remote(fname):
        buf = io.BytesIO()
        yield buf
        _put_remote(fname, buf.getvalue())
        return
    fname = local_path(fname)
    directory = os.path.dirname(os.path.abspath(fname))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(fname) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600
        os.replace(tmp, fname)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _put_remote(url, data):
    fs, inner = _filesystem(url)
    if protocol(url) in _WHOLE_OBJECT_STORES:
        fs.pipe_file(inner, data)
        return
    parent, base = posixpath.split(inner)
    tmp = posixpath.join(parent, f".{base}.{uuid.uuid4().hex}.tmp")
    fs.pipe_file(tmp, data)
    try:
        fs.mv(tmp, inner)
    except BaseException:
        try:
            fs.rm(tmp)
        except Exception:  # noqa: BLE001  (the move's error is the one to report)
            pass
        raise


def atomic_write_bytes(fname, data):
    with atomic_write(fname) as f:
        f.write(data)


def atomic_write_text(fname, text):
    atomic_write_bytes(fname, text.encode("utf-8"))
