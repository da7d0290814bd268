"""rm.rnn.BucketSentenceIter and encode_sentences (MXNet's mx.rnn.io)."""
import numpy as np
import pytest

import raymod as rm
import raymod.rnn  # noqa: F401  (until raymod/__init__ exports rm.rnn)
from raymod.io import DataBatch, DataDesc


def sentences_of(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [list(rng.integers(1, 50, size=n)) for n in lengths]


def all_batches(it):
    return list(it)


def test_bucketing_padding_labels_and_shapes(capsys):
    sents = sentences_of([2] * 5 + [3] * 4 + [5] * 6 + [9] * 2)
    it = rm.rnn.BucketSentenceIter(sents, batch_size=2, buckets=[3, 6, 8],
                                   invalid_label=-1)
    out = capsys.readouterr().out
    assert "WARNING: discarded 2 sentences longer than the largest bucket." in out
    assert it.buckets == [3, 6]          # bucket 8 got no sentence: dropped
    assert it.default_bucket_key == 6
    assert isinstance(it.provide_data[0], DataDesc)
    assert it.provide_data[0].name == 'data' and it.provide_data[0].shape == (2, 6)
    assert it.provide_label[0].name == 'softmax_label'
    assert it.provide_label[0].shape == (2, 6)
    assert it.provide_data[0].layout == 'NT'

    batches = all_batches(it)
    # bucket 3 holds 9 sentences -> 4 full batches; bucket 6 holds 6 -> 3 batches
    keys = sorted(b.bucket_key for b in batches)
    assert keys == [3] * 4 + [6] * 3
    by_len = {}
    for s in sents:
        by_len.setdefault(len(s), []).append(s)
    seen = []
    for b in batches:
        assert isinstance(b, DataBatch)
        data, label = b.data[0], b.label[0]
        assert data.shape == label.shape == (2, b.bucket_key)
        assert data.dtype == np.float32
        assert b.pad == 0
        assert b.provide_data[0].name == 'data' and b.provide_data[0].shape == data.shape
        assert b.provide_label[0].shape == label.shape
        np.testing.assert_array_equal(label[:, :-1], data[:, 1:])
        np.testing.assert_array_equal(label[:, -1], -1)
        for row in data:
            n = int(np.sum(row != -1))
            np.testing.assert_array_equal(row[n:], -1)        # padded at the end
            seen.append([int(v) for v in row[:n]])
    # each bucketed sentence appears at most once, unchanged
    originals = [[int(v) for v in s] for s in sents if len(s) <= 6]
    for s in seen:
        assert s in originals
    assert len(seen) == 14


def test_auto_buckets_and_partial_batches_dropped():
    sents = sentences_of([4] * 7 + [6] * 3 + [7] * 1)
    it = rm.rnn.BucketSentenceIter(sents, batch_size=3)
    # only lengths with >= batch_size sentences become buckets; the length-7
    # sentence is longer than every bucket and is discarded
    assert it.buckets == [4, 6]
    assert it.default_bucket_key == 6
    batches = all_batches(it)
    assert sorted(b.bucket_key for b in batches) == [4, 4, 6]


def test_time_major_layout():
    sents = sentences_of([3] * 4)
    it = rm.rnn.BucketSentenceIter(sents, batch_size=2, layout='TN', invalid_label=0,
                                   data_name='words', label_name='next')
    assert it.provide_data[0].shape == (3, 2)
    assert it.provide_data[0].name == 'words'
    assert it.provide_label[0].name == 'next'
    for b in it:
        d, lab = b.data[0], b.label[0]
        assert d.shape == (3, 2) and b.provide_data[0].shape == (3, 2)
        assert b.provide_data[0].layout == 'TN'
        np.testing.assert_array_equal(lab[:-1], d[1:])
        np.testing.assert_array_equal(lab[-1], 0)


def test_reset_reshuffles_and_is_seeded():
    sents = sentences_of([5] * 40, seed=1)
    rm.random.seed(7)
    first = [b.data[0].copy() for b in rm.rnn.BucketSentenceIter(sents, batch_size=4)]
    rm.random.seed(7)
    again = [b.data[0].copy() for b in rm.rnn.BucketSentenceIter(sents, batch_size=4)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    it = rm.rnn.BucketSentenceIter(sents, batch_size=4)
    epoch1 = np.concatenate([b.data[0] for b in it])
    with pytest.raises(StopIteration):
        it.next()
    it.reset()
    epoch2 = np.concatenate([b.data[0] for b in it])
    assert epoch1.shape == epoch2.shape == (40, 5)
    assert not np.array_equal(epoch1, epoch2)
    # the same sentences, in another order
    np.testing.assert_array_equal(np.sort(epoch1, axis=0), np.sort(epoch2, axis=0))


def test_dtype_and_bad_arguments():
    sents = sentences_of([3] * 4)
    it = rm.rnn.BucketSentenceIter(sents, batch_size=2, dtype='int32')
    assert next(iter(it)).data[0].dtype == np.int32
    with pytest.raises(ValueError, match="Invalid layout 'CT'"):
        rm.rnn.BucketSentenceIter(sents, batch_size=2, layout='CT')
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        rm.rnn.BucketSentenceIter(sents, batch_size=0)
    with pytest.raises(ValueError, match="no sentence fits a bucket"):
        rm.rnn.BucketSentenceIter(sents, batch_size=10)
    with pytest.raises(TypeError, match="dtype: expected a numpy dtype"):
        rm.rnn.BucketSentenceIter(sents, batch_size=2, dtype='floaty')
    with pytest.raises(ValueError, match="buckets must be non-negative ints"):
        rm.rnn.BucketSentenceIter(sents, batch_size=2, buckets=[3, 'x'])


def test_encode_sentences_builds_vocab():
    sents = [['a', 'b', 'c'], ['b', 'd']]
    coded, vocab = rm.rnn.encode_sentences(sents, invalid_label=1, start_label=0)
    # ids start at start_label and skip invalid_label
    assert vocab == {'\n': 1, 'a': 0, 'b': 2, 'c': 3, 'd': 4}
    assert coded == [[0, 2, 3], [2, 4]]
    coded2, vocab2 = rm.rnn.encode_sentences([['d', 'a']], vocab=vocab)
    assert coded2 == [[4, 0]] and vocab2 is vocab
    with pytest.raises(ValueError, match="Unknown token z"):
        rm.rnn.encode_sentences([['z']], vocab=dict(vocab))


def test_encode_sentences_unknown_token_is_mxnets():
    vocab = {'\n': -1, 'a': 0, 'b': 1}
    coded, out = rm.rnn.encode_sentences([['a', 'x', 'y', 'b']], vocab=vocab,
                                         unknown_token='<unk>', start_label=5)
    # MXNet binds '<unk>' to the next id each time an unknown token is met
    assert coded == [[0, 5, 6, 1]]
    assert out['<unk>'] == 6 and 'x' not in out
