"""`rm.nd`: MXNet's NDArray functions on numpy arrays.

`NDArray` is a `numpy.ndarray` subclass with MXNet's methods; `save` and
`load` read and write MXNet's binary `.params` format byte for byte.
"""
from .ndarray import (NDArray, arange, array, concat, concatenate, empty, full, ones,
                      slice_axis, waitall, zeros)
from .serialization import (BFLOAT16, atomic_write, load, load_frombuffer, load_record, save,
                            save_tobuffer)
from . import contrib, random  # noqa: F401  (mx.nd.contrib, mx.nd.random)

__all__ = ["NDArray", "arange", "array", "concat", "concatenate", "empty", "full", "ones",
           "slice_axis", "waitall", "zeros", "BFLOAT16", "atomic_write", "load",
           "load_frombuffer", "load_record", "save", "save_tobuffer"]
