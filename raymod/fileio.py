"""Writing files so that a crash never leaves half a file under the final name."""
import os
import tempfile
from contextlib import contextmanager


def _process_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _process_umask()


@contextmanager
def atomic_write(fname):
    """A binary file that appears under `fname` only once fully written and synced.

    Writes a temporary file in the same directory and renames it into place,
    so readers and crashes never see half a file; the file gets the mode a
    plain open() would give it.
    """
    fname = os.fspath(fname)
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


def atomic_write_bytes(fname, data):
    with atomic_write(fname) as f:
        f.write(data)


def atomic_write_text(fname, text):
    atomic_write_bytes(fname, text.encode("utf-8"))
