"""MXNet's .params format: raymod reads MXNet 1.9.1's files and writes them byte for byte.

The fixture files in tests/fixtures/mxnet/ were written by mxnet==1.9.1
(make_fixtures.py there); their content is `PARAMS_FIXTURES` in that script.
"""
import importlib.util
import os

from raymod import fileio
import pickle
import struct

import numpy as np
import pytest

import raymod.ndarray as nd
from raymod.base import MXNetError
from raymod.ndarray import serialization

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mxnet")


def _load_fixture_module():
    spec = importlib.util.spec_from_file_location(
        "mxnet_make_fixtures", os.path.join(FIXTURES, "make_fixtures.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE = _load_fixture_module()
CONTENT = MAKE.PARAMS_FIXTURES


def _fixture_bytes(fname):
    with open(os.path.join(FIXTURES, fname), "rb") as f:
        return f.read()


def _assert_same(loaded, expected, top=True):
    if top and isinstance(expected, np.ndarray):
        expected = [expected]   # nd.save(f, one_array) loads as a list
    if isinstance(expected, dict) and expected:
        assert isinstance(loaded, dict)
        assert list(loaded) == list(expected)  # file order is insertion order
        for key in expected:
            _assert_same(loaded[key], expected[key], top=False)
        return
    if isinstance(expected, (dict, list)):
        assert isinstance(loaded, list) and len(loaded) == len(expected)
        for got, want in zip(loaded, list(expected)):
            _assert_same(got, want, top=False)
        return
    assert isinstance(loaded, nd.NDArray)
    assert loaded.dtype == expected.dtype and loaded.shape == expected.shape
    np.testing.assert_array_equal(loaded.asnumpy(), expected)


def _as_written(fname, value):
    """The content raymod must save to reproduce the fixture (bfloat16 as raw bits)."""
    if fname in MAKE.BFLOAT16_FILES:
        return [MAKE._bfloat16_bits(v).view(nd.BFLOAT16) for v in value]
    return value


@pytest.mark.parametrize("fname", sorted(CONTENT))
def test_loads_mxnet_files_exactly(fname):
    _assert_same(nd.load(os.path.join(FIXTURES, fname)), CONTENT[fname])


@pytest.mark.parametrize("fname", sorted(CONTENT))
def test_writes_mxnet_bytes(fname, tmp_path):
    path = tmp_path / fname
    nd.save(path, _as_written(fname, CONTENT[fname]))
    assert path.read_bytes() == _fixture_bytes(fname)
    assert nd.save_tobuffer(_as_written(fname, CONTENT[fname])) == _fixture_bytes(fname)


def test_reference_worked_example():
    expected = bytes.fromhex(
        "1201000000000000" "0000000000000000" "0100000000000000"
        "c9fa93f9" "00000000" "01000000" "0200000000000000"
        "01000000" "00000000" "00000000" "0000803f00000040"
        "0100000000000000" "0500000000000000" "6172673a77")
    assert len(expected) == 85
    assert nd.save_tobuffer({"arg:w": nd.array([1.0, 2.0])}) == expected
    loaded = nd.load_frombuffer(expected)
    assert list(loaded) == ["arg:w"] and loaded["arg:w"].tolist() == [1.0, 2.0]


def test_forms_single_array_and_empty_dict(tmp_path):
    nd.save(tmp_path / "one", nd.array([3.0]))
    assert isinstance(nd.load(tmp_path / "one"), list)
    empty = nd.save_tobuffer({})
    assert empty == struct.pack("<QQQQ", 0x112, 0, 0, 0)
    assert nd.load_frombuffer(empty) == []


def test_checkpoint_fixture_is_arg_then_aux():
    loaded = nd.load(os.path.join(FIXTURES, "mlp_bn_ckpt-0003.params"))
    kinds = [k.split(":", 1)[0] for k in loaded]
    assert kinds == ["arg"] * 6 + ["aux"] * 2
    assert all(isinstance(v, nd.NDArray) and v.context == nd.array([0]).context
               for v in loaded.values())


def test_buckets_file_reads_back_as_int_keys():
    keys = list(nd.load(os.path.join(FIXTURES, "model.buckets"))[0].asnumpy().astype("int32"))
    assert keys == [10, 20, 30]


def test_bfloat16_loads_as_exact_float32():
    (arr,) = nd.load(os.path.join(FIXTURES, "bfloat16.params"))
    assert arr.dtype == np.float32
    assert arr.tolist() == [1.5, 2.0, -3.0, 3.140625, 0.0, -0.5]


def test_zero_dim_array_roundtrips_as_v3_record():
    buf = nd.save_tobuffer([np.array(2.5, dtype=np.float64)])
    assert struct.unpack_from("<I", buf, 24)[0] == serialization.V3_MAGIC
    (back,) = nd.load_frombuffer(buf)
    assert back.shape == () and back.dtype == np.float64 and back.asscalar() == 2.5


def test_every_dtype_roundtrips():
    data = {str(dt): np.arange(6).reshape(2, 3).astype(dt)
            for dt in ["float32", "float64", "float16", "uint8", "int32", "int8", "int64",
                       "bool", "int16", "uint16", "uint32", "uint64"]}
    back = nd.load_frombuffer(nd.save_tobuffer(data))
    for key, value in data.items():
        assert back[key].dtype == value.dtype, key
        np.testing.assert_array_equal(back[key], value)


def test_non_contiguous_big_endian_and_unicode(tmp_path):
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    data = {"tr\u00e4nspose": base.T, "big": base.astype(">f4")}
    back = nd.load_frombuffer(nd.save_tobuffer(data))
    np.testing.assert_array_equal(back["tr\u00e4nspose"], base.T)
    assert back["big"].dtype == np.float32
    assert nd.save_tobuffer([base.astype(">f4")]) == nd.save_tobuffer([base])


def _record(magic, body):
    return struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<I", magic) + body + \
        struct.pack("<Q", 0)


def test_reads_v1_and_legacy_records():
    data = struct.pack("<2f", 4.0, 5.0)
    v1 = _record(serialization.V1_MAGIC, struct.pack("<iq", 1, 2) +
                 struct.pack("<iii", 2, 1, 0) + data)         # gpu(1) context: loads to host
    legacy = _record(2, struct.pack("<II", 1, 2) + struct.pack("<iii", 1, 0, 0) + data)
    for buf, shape in ((v1, (2,)), (legacy, (1, 2))):
        (arr,) = nd.load_frombuffer(buf)
        assert arr.shape == shape
        assert arr.ravel().tolist() == [4.0, 5.0]


def test_none_records_load_as_none():
    v2_none = _record(serialization.V2_MAGIC, struct.pack("<ii", 0, 0))
    v3_none = _record(serialization.V3_MAGIC, struct.pack("<ii", 0, -1))
    assert nd.load_frombuffer(v2_none) == [None]
    assert nd.load_frombuffer(v3_none) == [None]


def test_sparse_record_is_a_clear_error():
    buf = _record(serialization.V2_MAGIC, struct.pack("<ii", 1, 1) + b"\0" * 40)
    with pytest.raises(MXNetError, match=r"<buffer> at byte offset 28: array 0 is stored "
                                         r"as row_sparse"):
        nd.load_frombuffer(buf)


def test_wrong_magic_names_file_offset_and_expectation(tmp_path):
    path = tmp_path / "not_params.bin"
    path.write_bytes(b"\x89PNG" + b"\0" * 40)
    with pytest.raises(MXNetError, match=r"not_params\.bin.*offset 0: expected list magic "
                                         r"0x112, found 0x"):
        nd.load(path)


def test_bad_record_magic_and_type_flag():
    bad_magic = _record(0xDEADBEEF, b"\0" * 32)
    with pytest.raises(MXNetError, match=r"offset 24: array 0: expected a record magic"):
        nd.load_frombuffer(bad_magic)
    bad_flag = _record(serialization.V2_MAGIC, struct.pack("<iiq", 0, 1, 1) +
                       struct.pack("<iii", 1, 0, 99) + b"\0" * 8)
    with pytest.raises(MXNetError, match=r"unknown type flag 99"):
        nd.load_frombuffer(bad_flag)


def test_name_count_must_match():
    buf = nd.save_tobuffer({"a": np.zeros(1, np.float32), "b": np.zeros(1, np.float32)})
    # rewrite K=2 as K=1: the names no longer line up with the arrays
    k_offset = buf.index(struct.pack("<Q", 2), len(buf) - 2 * 9 - 8)
    broken = buf[:k_offset] + struct.pack("<Q", 1) + buf[k_offset + 8:]
    with pytest.raises(MXNetError, match=r"expected 0 or 2 names"):
        nd.load_frombuffer(broken)


def test_every_truncation_is_a_clear_error(tmp_path):
    whole = _fixture_bytes("dtypes.params")
    for cut in range(len(whole)):
        path = tmp_path / "cut.params"
        path.write_bytes(whole[:cut])
        with pytest.raises(MXNetError, match=r"cut\.params.*at byte offset \d+: .*(expected|"
                                             r"needs|claims|says)"):
            nd.load(path)


def test_absurd_sizes_fail_before_allocating():
    huge = _record(serialization.V2_MAGIC, struct.pack("<ii3q", 0, 3, 2 ** 20, 2 ** 20, 2 ** 20)
                   + struct.pack("<iii", 1, 0, 0))
    with pytest.raises(MXNetError, match=r"needs \d+ bytes of data, only 8 remain"):
        nd.load_frombuffer(huge)
    many = struct.pack("<QQQ", 0x112, 0, 2 ** 60)
    with pytest.raises(MXNetError, match=r"says 1152921504606846976 arrays"):
        nd.load_frombuffer(many)


def test_save_rejects_bad_input_before_writing(tmp_path):
    path = tmp_path / "keep.params"
    nd.save(path, [nd.ones(2)])
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"key 3 is a int"):
        nd.save(path, {3: nd.ones(1)})
    with pytest.raises(TypeError, match=r"item 1 is a list"):
        nd.save(path, [nd.ones(1), [1, 2]])
    with pytest.raises(TypeError, match=r"no type for dtype complex64"):
        nd.save(path, {"c": np.zeros(2, np.complex64)})
    with pytest.raises(ValueError, match=r"received str"):
        nd.save(path, "not arrays")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.params"]


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.params"
    nd.save(path, [nd.ones(2)])
    before = path.read_bytes()

    def failing_write(f, arrays, names):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(serialization, "_write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        nd.save(path, [nd.zeros(3)])
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.params"]


def test_saved_file_has_the_usual_permissions(tmp_path):
    path = tmp_path / "p.params"
    nd.save(path, [nd.ones(1)])
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~fileio._UMASK


def test_symbol_and_states_files_have_the_usual_permissions_too(tmp_path):
    import raymod as rm
    path = tmp_path / "net-symbol.json"
    rm.sym.Variable("data").save(str(path))
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~fileio._UMASK


def test_load_record_reads_one_bare_record():
    arr = np.arange(6, dtype=np.int64).reshape(2, 3)
    record = nd.save_tobuffer([arr])[24:-8]          # strip list header and name count
    back = nd.load_record(record)
    assert back.dtype == np.int64 and back.tolist() == arr.tolist()
    with pytest.raises(MXNetError, match="<record> at byte offset"):
        nd.load_record(record[:-1])


def test_loaded_arrays_are_writable_and_picklable():
    loaded = nd.load(os.path.join(FIXTURES, "list_float32.params"))
    loaded[0][0, 0] = 42.0
    again = pickle.loads(pickle.dumps(loaded))
    assert again[0][0, 0] == 42.0 and isinstance(again[0], nd.NDArray)
