"""MNISTIter and CSVIter beyond MXNet's recorded batches: the row view, arguments, bad files.

(tests/kit/test_io_mxnet_iterators.py compares the batches with MXNet's.)
"""
import struct

import numpy as np
import pytest

import raymod as rm
from raymod.io.csv_parse import CSVFormatError
from raymod.io.cxx_shuffle import std_shuffle_order
from raymod.io.idx import IDXFormatError, read_idx


def _idx(path, arr, magic=None):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(struct.pack(">I", 0x800 + arr.ndim if magic is None else magic))
        for d in arr.shape:
            f.write(struct.pack(">I", d))
        f.write(arr.tobytes())
    return str(path)


@pytest.fixture
def mnist(tmp_path):
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(10, 4, 4))
    labels = np.arange(10) % 3
    return (_idx(tmp_path / "img", images), _idx(tmp_path / "lbl", labels), images, labels)


def _write(path, text):
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------------- the row view

def test_every_batch_is_rows_of_the_source_arrays(mnist, tmp_path):
    image, label, _, _ = mnist
    data_csv = _write(tmp_path / "d.csv", "".join(f"{i},{i * 2}\n" for i in range(7)))
    iters = [rm.io.MNISTIter(image=image, label=label, batch_size=3, seed=4, silent=True),
             rm.io.CSVIter(data_csv=data_csv, data_shape=(2,), batch_size=3),
             rm.io.CSVIter(data_csv=data_csv, data_shape=(2,), batch_size=3, round_batch=False)]
    for it in iters:
        (data_name, data), (label_name, lbl) = [s[0] for s in it.source_arrays()]
        assert (data_name, label_name) == ("data", "softmax_label")
        for _ in range(3):
            for batch in it:
                rows = it.batch_rows()
                assert rows.dtype == np.int64 and len(rows) == it.batch_size
                np.testing.assert_array_equal(batch.data[0], data[rows])
                np.testing.assert_array_equal(batch.label[0], lbl[rows])
                np.testing.assert_array_equal(batch.index, rows)
                # the rows a data plane ships instead of the arrays
                np.testing.assert_array_equal(batch.rows.rows, rows)
                assert batch.rows.source is it._rows_source
                np.testing.assert_array_equal(batch.rows.source.data[0][rows], batch.data[0])
            it.reset()


def test_batches_are_writable_ndarrays_that_do_not_alias_the_source(mnist):
    image, label, _, _ = mnist
    it = rm.io.MNISTIter(image=image, label=label, batch_size=2, shuffle=False, silent=True)
    batch = next(it)
    assert isinstance(batch.data[0], rm.nd.NDArray) and batch.data[0].flags.writeable
    batch.data[0][:] = 7
    it.reset()
    assert float(next(it).data[0].max()) < 1


def test_getters_before_next_raise(mnist):
    image, label, _, _ = mnist
    it = rm.io.MNISTIter(image=image, label=label, batch_size=2, silent=True)
    with pytest.raises(RuntimeError, match="no current batch"):
        it.getdata()


# ---------------------------------------------------------------------- MNISTIter

def test_mnist_scales_by_1_over_256_and_drops_the_last_partial_batch(mnist):
    image, label, images, labels = mnist
    it = rm.io.MNISTIter(image=image, label=label, batch_size=4, shuffle=False, flat=True,
                         silent=True)
    batches = list(it)
    assert len(batches) == 2 and all(b.pad == 0 for b in batches)
    np.testing.assert_array_equal(batches[1].data[0] * 256, images[4:8].reshape(4, 16))
    np.testing.assert_array_equal(batches[1].label[0], labels[4:8])
    assert batches[0].label[0].dtype == np.float32


def test_mnist_keeps_its_shuffled_order_every_epoch(mnist):
    image, label, _, _ = mnist
    it = rm.io.MNISTIter(image=image, label=label, batch_size=5, seed=11, silent=True)
    first = [it.batch_rows().tolist() for _ in it]
    it.reset()
    assert [it.batch_rows().tolist() for _ in it] == first
    assert sum(first, []) == std_shuffle_order(10, 11)[:10].tolist()


def test_std_shuffle_order_matches_libstdcxx_through_a_rejected_draw():
    """Seed 3 with 60000 elements rejects one draw; a plain reference of the algorithm."""
    n, seed = 60000, 3
    state = np.random.RandomState(seed).get_state()
    bits = np.random.MT19937()
    bits.state = {"bit_generator": "MT19937", "state": {"key": state[1], "pos": state[2]}}
    draws = iter(bits.random_raw(n + 10).tolist())
    order, rejected = list(range(n)), 0
    for i in range(1, n):
        scaling = 0xFFFFFFFF // (i + 1)
        r = next(draws)
        while r >= (i + 1) * scaling:
            rejected += 1
            r = next(draws)
        j = r // scaling
        order[i], order[j] = order[j], order[i]
    assert rejected == 1
    assert std_shuffle_order(n, seed).tolist() == order


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 11}, "batch_size=11 exceeds the 10 examples"),
    ({"num_parts": 2, "part_index": 2}, "part_index"),
    ({"dtype": "float16"}, "dtype"),
    ({"ctx": "tpu"}, "ctx"),
])
def test_mnist_rejects_bad_arguments(mnist, kwargs, match):
    image, label, _, _ = mnist
    with pytest.raises(ValueError, match=match):
        rm.io.MNISTIter(image=image, label=label, silent=True, **kwargs)


def test_mnist_takes_keywords_only_and_ignores_data_shape_like_mxnet(mnist):
    image, label, _, _ = mnist
    with pytest.raises(TypeError):
        rm.io.MNISTIter(image, label)
    it = rm.io.MNISTIter(image=image, label=label, batch_size=2, data_shape=(784,),
                         input_shape=(1, 28, 28), silent=True)
    assert it.provide_data[0].shape == (2, 1, 4, 4)
    with pytest.raises(TypeError, match="mean_r"):
        rm.io.MNISTIter(image=image, label=label, mean_r=1.0)


def test_mnist_bad_files_name_the_file_and_the_offset(mnist, tmp_path):
    image, label, images, _ = mnist
    raw = open(image, "rb").read()
    (tmp_path / "short").write_bytes(raw[:100])
    with pytest.raises(IDXFormatError, match=r"short.*needs 176 bytes.*has 100"):
        rm.io.MNISTIter(image=str(tmp_path / "short"), label=label)
    bad_magic = _idx(tmp_path / "magic", images, magic=0x12345678)
    with pytest.raises(IDXFormatError, match=r"magic.*offset 0.*12 34 56 78"):
        rm.io.MNISTIter(image=bad_magic, label=label)
    with pytest.raises(IDXFormatError, match="expected a 3-dimensional IDX file"):
        rm.io.MNISTIter(image=label, label=label)
    few = _idx(tmp_path / "few", np.arange(9))
    with pytest.raises(ValueError, match="10 images but .* 9 labels"):
        rm.io.MNISTIter(image=image, label=few)
    with pytest.raises(FileNotFoundError):
        rm.io.MNISTIter(image=str(tmp_path / "missing"), label=label)


def test_read_idx_reads_gzip(tmp_path, mnist):
    import gzip
    image, _, images, _ = mnist
    (tmp_path / "img.gz").write_bytes(gzip.compress(open(image, "rb").read()))
    np.testing.assert_array_equal(read_idx(str(tmp_path / "img.gz")), images)


# ---------------------------------------------------------------------- CSVIter

def test_csv_errors_name_the_file_the_line_and_what_was_expected(tmp_path):
    bad = _write(tmp_path / "bad.csv", "1,2,3\n\n4,x,6\n")
    with pytest.raises(CSVFormatError, match=r"bad.csv: line 3, field 2: expected a number, "
                                             r"found 'x'"):
        rm.io.CSVIter(data_csv=bad, data_shape=(3,), batch_size=1)
    ragged = _write(tmp_path / "ragged.csv", "1,2,3\n4,5\n")
    with pytest.raises(CSVFormatError, match=r"ragged.csv: line 2: expected 3 comma-separated "
                                             r"values \(data_shape \(3,\)\), found 2"):
        rm.io.CSVIter(data_csv=ragged, data_shape=(3,), batch_size=1)
    ints = _write(tmp_path / "ints.csv", "1,2\nabc,4\n")
    with pytest.raises(CSVFormatError, match="line 2, field 1: expected an integer"):
        rm.io.CSVIter(data_csv=ints, data_shape=(2,), batch_size=1, dtype="int32")
    labels = _write(tmp_path / "labels.csv", "0\n1\n2\n")
    with pytest.raises(ValueError, match="3 label rows but .* 1 data rows"):
        rm.io.CSVIter(data_csv=_write(tmp_path / "one.csv", "1,2,3\n"), data_shape=(3,),
                      label_csv=labels, batch_size=1)
    with pytest.raises(CSVFormatError, match="is empty"):
        rm.io.CSVIter(data_csv=_write(tmp_path / "empty.csv", ""), data_shape=(3,),
                      batch_size=1)
    with pytest.raises(FileNotFoundError, match="data_csv=.*does not exist"):
        rm.io.CSVIter(data_csv=str(tmp_path / "nope.csv"), data_shape=(3,), batch_size=1)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 2, "dtype": "float64"}, TypeError, "float64.*not supported"),
    ({"batch_size": 2, "data_shape": (0,)}, ValueError, "data_shape"),
    ({"batch_size": 2, "ctx": "tpu"}, ValueError, "ctx"),
    ({"batch_size": 9}, ValueError, "needs at least 5 rows"),
])
def test_csv_rejects_bad_arguments(tmp_path, kwargs, error, match):
    args = {"data_csv": _write(tmp_path / "d.csv", "1,2,3\n" * 4), "data_shape": (3,)}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        rm.io.CSVIter(**args)


def test_csv_fast_and_exact_readers_agree(tmp_path):
    """numpy's loadtxt reads clean files; a trailing comma sends the file to the exact reader."""
    values = np.random.RandomState(0).normal(size=(50, 4)) * 10.0 ** np.arange(-3, 5, 2)
    text = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in values)
    clean = rm.io.CSVIter(data_csv=_write(tmp_path / "a.csv", text), data_shape=(4,),
                          batch_size=50)
    commas = rm.io.CSVIter(data_csv=_write(tmp_path / "b.csv", text.replace("\n", ",\n")),
                           data_shape=(4,), batch_size=50)
    a, b = next(clean).data[0], next(commas).data[0]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, values.astype(np.float32))


def test_csv_label_of_several_values_keeps_its_shape(tmp_path):
    data = _write(tmp_path / "d.csv", "1,2\n3,4\n")
    label = _write(tmp_path / "l.csv", "1,2,3\n4,5,6\n")
    it = rm.io.CSVIter(data_csv=data, data_shape=(2,), label_csv=label, label_shape=(1, 3),
                       batch_size=2)
    assert it.provide_label[0].shape == (2, 1, 3)   # MXNet would truncate this to (2,)
    np.testing.assert_array_equal(next(it).label[0].reshape(2, 3), [[1, 2, 3], [4, 5, 6]])


def test_csv_reset_mid_epoch_rewinds(tmp_path):
    it = rm.io.CSVIter(data_csv=_write(tmp_path / "d.csv", "".join(f"{i}\n" for i in range(7))),
                       data_shape=(1,), batch_size=3)
    next(it)
    it.reset()
    assert [b.index.tolist() for b in it] == [[0, 1, 2], [3, 4, 5], [6, 0, 1]]
