"""Language-model data: `encode_sentences` and `BucketSentenceIter` (MXNet's mx.rnn.io)."""
import bisect
import numbers

import numpy as np

from .. import ndarray
from .. import random as _random
from ..io import DataBatch, DataDesc, DataIter
from .base_cell import _positive_int


def encode_sentences(sentences, vocab=None, invalid_label=-1, invalid_key='\n',
                     start_label=0, unknown_token=None):
    """Encode tokenised sentences as integer ids, building the vocabulary if none is given.

    Parameters
    ----------
    sentences : list of list of str
        The sentences, each a list of tokens.
    vocab : dict of str to int, optional
        An existing vocabulary. When None a new one is built, starting as
        `{invalid_key: invalid_label}`; new tokens get `start_label`,
        `start_label + 1`, ... (skipping `invalid_label`).
    invalid_label : int, default -1
        Id of the invalid token (e.g. end of sentence).
    invalid_key : str, default '\\n'
        The invalid token.
    start_label : int, default 0
        Lowest id given to a new token.
    unknown_token : str, optional
        Needed to encode, with a given `vocab`, tokens it lacks. As in MXNet,
        each such token (re)binds `unknown_token` to the next id counted from
        `start_label` and is encoded with it; with a new vocab every new token
        is encoded this way.

    Returns
    -------
    result : list of list of int
        The encoded sentences.
    vocab : dict of str to int
        The vocabulary (the given dict, updated in place, or the new one).

    Raises
    ------
    ValueError
        A token is missing from a given `vocab` and no `unknown_token` is given.
    """
    idx = start_label
    if vocab is None:
        vocab = {invalid_key: invalid_label}
        new_vocab = True
    else:
        if not isinstance(vocab, dict):
            raise TypeError(f"vocab must be a dict of str to int or None, received "
                            f"{type(vocab).__name__}")
        new_vocab = False
    res = []
    for sent in sentences:
        coded = []
        for word in sent:
            if word not in vocab:
                if not (new_vocab or unknown_token):
                    raise ValueError("Unknown token %s" % word)
                if idx == invalid_label:
                    idx += 1
                if unknown_token:
                    word = unknown_token
                vocab[word] = idx
                idx += 1
            coded.append(vocab[word])
        res.append(coded)
    return res, vocab


class BucketSentenceIter(DataIter):
    """Bucketing iterator for language models: the label of each step is the next token.

    Batches hold `rm.nd.NDArray`s (host arrays), as MXNet's hold NDArrays.
    Each sentence goes to the smallest bucket at least as long
    (`bisect_left`), padded with `invalid_label`; longer sentences are
    discarded (MXNet's `WARNING: discarded %d sentences longer than the largest
    bucket.` is printed); buckets no sentence falls into are dropped. Every
    full batch inside a bucket is one batch of the epoch (a partial last batch
    of a bucket is dropped); `reset()` shuffles the batch order and the rows of
    each bucket with raymod's seeded generator (`rm.random.seed`).

    Parameters
    ----------
    sentences : list of list of int
        Encoded sentences.
    batch_size : int
        Batch size.
    buckets : list of int, optional
        Bucket lengths. When None (or empty), every sentence length that at
        least `batch_size` sentences have.
    invalid_label : int, default -1
        Padding value of data and label.
    data_name : str, default 'data'
    label_name : str, default 'softmax_label'
    dtype : str, default 'float32'
        dtype of data and label.
    layout : str, default 'NT'
        'NT' gives (batch_size, length) batches, 'TN' (length, batch_size).

    Attributes
    ----------
    buckets : list of int
        The non-empty buckets, sorted.
    default_bucket_key : int
        The largest bucket; `provide_data`/`provide_label` are shaped for it.
    """

    def __init__(self, sentences, batch_size, buckets=None, invalid_label=-1,
                 data_name='data', label_name='softmax_label', dtype='float32',
                 layout='NT'):
        super().__init__()
        batch_size = _positive_int(batch_size, 'batch_size')
        major_axis = layout.find('N') if isinstance(layout, str) else -1
        if major_axis not in (0, 1):
            raise ValueError(f"Invalid layout {layout!r}: Must be NT (batch major) or "
                             f"TN (time major)")
        try:
            np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype: expected a numpy dtype or its name, received "
                            f"{dtype!r}") from None
        lengths = [len(s) for s in sentences]
        if not buckets:
            buckets = [i for i, j in enumerate(np.bincount(lengths, minlength=1))
                       if j >= batch_size]
        buckets = sorted(_check_bucket(b) for b in buckets)

        ndiscard = 0
        rows = [[] for _ in buckets]
        for sent, n in zip(sentences, lengths, strict=True):
            buck = bisect.bisect_left(buckets, n)
            if buck == len(buckets):
                ndiscard += 1
                continue
            buff = np.full((buckets[buck],), invalid_label, dtype=dtype)
            buff[:n] = sent
            rows[buck].append(buff)
        print("WARNING: discarded %d sentences longer than the largest bucket." % ndiscard)

        kept = [i for i, r in enumerate(rows) if r]
        if not kept:
            raise ValueError(f"BucketSentenceIter: no sentence fits a bucket (buckets "
                             f"{buckets}, {len(lengths)} sentences, batch_size "
                             f"{batch_size}); give buckets explicitly or a smaller "
                             f"batch_size")
        self.buckets = [buckets[i] for i in kept]
        self.data = [np.asarray(rows[i], dtype=dtype) for i in kept]

        self.batch_size = batch_size
        self.data_name = data_name
        self.label_name = label_name
        self.dtype = dtype
        self.invalid_label = invalid_label
        self.nddata = []
        self.ndlabel = []
        self.major_axis = major_axis
        self.layout = layout
        self.default_bucket_key = max(self.buckets)
        shape = self._batch_shape(self.default_bucket_key)
        self.provide_data = [self._desc(data_name, shape)]
        self.provide_label = [self._desc(label_name, shape)]

        self.idx = []
        for i, buck in enumerate(self.data):
            self.idx.extend([(i, j) for j in range(0, len(buck) - batch_size + 1, batch_size)])
        self.curr_idx = 0
        self.reset()

    def _desc(self, name, shape):
        return DataDesc(name=name, shape=shape, dtype=np.dtype(self.dtype), layout=self.layout)

    def _batch_shape(self, length):
        if self.major_axis == 0:
            return (self.batch_size, length)
        return (length, self.batch_size)

    def reset(self):
        """Shuffle the batch order and each bucket's rows; rebuild the labels."""
        self.curr_idx = 0
        gen = _random.generator()
        self.idx = [self.idx[k] for k in gen.permutation(len(self.idx))]
        for buck in self.data:
            gen.shuffle(buck, axis=0)
        self.nddata = []
        self.ndlabel = []
        for buck in self.data:
            label = np.empty_like(buck)
            if buck.shape[1]:
                label[:, :-1] = buck[:, 1:]
                label[:, -1] = self.invalid_label
            # fresh arrays each epoch: batches handed out earlier stay intact
            self.nddata.append(ndarray.array(buck, dtype=self.dtype))
            self.ndlabel.append(ndarray.array(label, dtype=self.dtype))

    def next(self):
        """The next batch (a DataBatch with `bucket_key`); StopIteration at the end."""
        if self.curr_idx == len(self.idx):
            raise StopIteration
        i, j = self.idx[self.curr_idx]
        self.curr_idx += 1
        data = self.nddata[i][j:j + self.batch_size]
        label = self.ndlabel[i][j:j + self.batch_size]
        if self.major_axis == 1:
            data = ndarray.array(data.T, dtype=self.dtype)
            label = ndarray.array(label.T, dtype=self.dtype)
        return DataBatch([data], [label], pad=0, bucket_key=self.buckets[i],
                         provide_data=[self._desc(self.data_name, data.shape)],
                         provide_label=[self._desc(self.label_name, label.shape)])


def _check_bucket(b):
    if isinstance(b, bool) or not isinstance(b, numbers.Integral) or b < 0:
        raise ValueError(f"buckets must be non-negative ints, received {b!r}")
    return int(b)
