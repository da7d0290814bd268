"""`rm.io`: data descriptions, batches and iterators (MXNet's `mx.io`).

Arrays an iterator yields are `raymod.ndarray.NDArray`s.
"""
from .desc import DataBatch, DataDesc
from .iter import DataIter, NDArrayIter, ResizeIter
from .prefetch import PrefetchingIter
from .mnist import MNISTIter
from .csv_iter import CSVIter
from .image_record import ImageRecordIter

__all__ = ["DataBatch", "DataDesc", "DataIter", "NDArrayIter", "ResizeIter", "PrefetchingIter",
           "MNISTIter", "CSVIter",
           "ImageRecordIter"]
