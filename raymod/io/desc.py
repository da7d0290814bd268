"""`DataDesc` (name, shape, dtype, layout of an input) and `DataBatch` (one batch of data)."""
from collections import namedtuple

import numpy as np

from .batch_rows import GatherOnRead


class DataDesc(namedtuple("DataDesc", ["name", "shape"])):
    """The name and shape of one input, plus its dtype and layout.

    A `(name, shape)` namedtuple: equality, hashing and unpacking
    (`name, shape = desc`) use only those two fields, so
    `DataDesc('data', (10, 10)) == ('data', (10, 10))`.

    Parameters
    ----------
    name : str
    shape : tuple of int
    dtype : numpy dtype, optional
        Default `numpy.float32`.
    layout : str, optional
        Axis letters, default `'NCHW'`; `'N'` marks the batch axis.
    """

    def __new__(cls, name, shape, dtype=np.float32, layout="NCHW"):
        ret = super().__new__(cls, name, shape)
        ret.dtype = dtype
        ret.layout = layout
        return ret

    def __repr__(self):
        return f"DataDesc[{self.name},{self.shape},{self.dtype},{self.layout}]"

    @staticmethod
    def get_batch_axis(layout):
        """The batch axis of `layout`: 0 for None, else the position of 'N' (-1 if absent).

        An axis of -1 means the array is not split across devices but copied
        to each.
        """
        if layout is None:
            return 0
        return layout.find("N")

    @staticmethod
    def get_list(shapes, types):
        """DataDescs from `[(name, shape)]` and optional `[(name, dtype)]`."""
        if types is not None:
            type_dict = dict(types)
            missing = [x[0] for x in shapes if x[0] not in type_dict]
            if missing:
                raise ValueError(f"get_list: no dtype given for {missing}; types has "
                                 f"{sorted(type_dict)}")
            return [DataDesc(x[0], x[1], type_dict[x[0]]) for x in shapes]
        return [DataDesc(x[0], x[1]) for x in shapes]


class DataBatch:
    """One batch: lists of data and label arrays plus bookkeeping.

    Parameters
    ----------
    data : list of arrays
    label : list of arrays, optional
    pad : int, optional
        Number of padding examples at the end of the batch (prediction
        drops them from the outputs).
    index : numpy array, optional
        Indices of the examples in the batch.
    bucket_key : optional
        The bucket of this batch, for `BucketingModule`.
    provide_data, provide_label : list of DataDesc, optional
        Per-batch shapes, used by `BucketingModule` and Module's reshape.

    Attributes
    ----------
    rows : BatchRows or None
        Set by iterators whose batches are rows of arrays they hold
        (raymod.io.batch_rows): lets Ray device workers gather the batch
        from arrays shipped to them once.
    """

    rows = None

    def __init__(self, data, label=None, pad=None, index=None,
                 bucket_key=None, provide_data=None, provide_label=None):
        if data is not None and not isinstance(data, (list, tuple, GatherOnRead)):
            raise TypeError(f"Data must be list of NDArrays, received {type(data).__name__}")
        if label is not None and not isinstance(label, (list, tuple)):
            raise TypeError(f"Label must be list of NDArrays, received {type(label).__name__}")
        self.data = data
        self.label = label
        self.pad = pad
        self.index = index
        self.bucket_key = bucket_key
        self.provide_data = provide_data
        self.provide_label = provide_label

    @property
    def data(self):
        """The list of data arrays (an in-memory iterator's are gathered on first read)."""
        data = self._data
        return data.arrays() if isinstance(data, GatherOnRead) else data

    @data.setter
    def data(self, value):
        self._data = value

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_data"] = self.data       # gathered: the gather refers to its iterator
        return state

    def __str__(self):
        data_shapes = [d.shape for d in self.data]
        label_shapes = [lbl.shape for lbl in self.label] if self.label else None
        return (f"{self.__class__.__name__}: data shapes: {data_shapes} "
                f"label shapes: {label_shapes}")
