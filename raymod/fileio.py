"""Writing files so that a crash never leaves half a file under the final name."""
import os
import tempfile


def atomic_write_bytes(fname, data):
    """Write `data` to a temporary file beside `fname`, then rename it into place."""
    fname = os.fspath(fname)
    directory = os.path.dirname(os.path.abspath(fname))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(fname),
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, fname)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(fname, text):
    atomic_write_bytes(fname, text.encode("utf-8"))
