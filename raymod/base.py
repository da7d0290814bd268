"""Errors and dtype tables shared by every layer."""
import numpy as np


class MXNetError(Exception):
    """Graph, operator and module errors (MXNet's name, so ports catch it)."""


# MXNet's type flags (include/mxnet/base.h), used in JSON `__dtype__` and .params.
DTYPE_TO_FLAG = {
    np.dtype("float32"): 0, np.dtype("float64"): 1, np.dtype("float16"): 2,
    np.dtype("uint8"): 3, np.dtype("int32"): 4, np.dtype("int8"): 5,
    np.dtype("int64"): 6, np.dtype("bool"): 7, np.dtype("int16"): 8,
    np.dtype("uint16"): 9, np.dtype("uint32"): 10, np.dtype("uint64"): 11,
}
FLAG_TO_DTYPE = {v: k for k, v in DTYPE_TO_FLAG.items()}


def as_dtype(value):
    """numpy dtype from a dtype, a name, or an MXNet type flag (int or str)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if int(value) not in FLAG_TO_DTYPE:
            raise TypeError(f"unknown MXNet type flag {value!r}")
        return FLAG_TO_DTYPE[int(value)]
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return as_dtype(int(value))
    try:
        return np.dtype(value)
    except TypeError as err:
        raise TypeError(f"expected a dtype, received {value!r}") from err
