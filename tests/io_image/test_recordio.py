"""rm.recordio against files MXNet 1.9.1 wrote (tests/fixtures/mxnet_image/make_fixtures.py)."""
import pickle
import struct

import numpy as np
import pytest

import raymod as rm
from raymod.recordio import RecordIOError, encode_record, scan_record_offsets

from .conftest import MF, fixture


def read_all(rec):
    out = []
    while True:
        item = rec.read()
        if item is None:
            return out
        out.append(item)


def test_reads_mxnet_sequential_file():
    with rm.recordio.MXRecordIO(fixture("plain.rec"), "r") as rec:
        assert read_all(rec) == MF.record_payloads()
        assert rec.read() is None


def test_reads_mxnet_indexed_file_by_key():
    rec = rm.recordio.MXIndexedRecordIO(fixture("records.idx"), fixture("records.rec"), "r")
    assert rec.keys == MF.record_keys()
    for key, payload in reversed(list(zip(MF.record_keys(), MF.record_payloads()))):
        assert rec.read_idx(key) == payload
    rec.close()


def test_writes_mxnet_files_byte_for_byte(tmp_path):
    """Byte-identical files are files MXNet reads: escapes, flags, padding and the index."""
    with rm.recordio.MXIndexedRecordIO(str(tmp_path / "r.idx"), str(tmp_path / "r.rec"),
                                       "w") as rec:
        assert rec.tell() == 0
        for key, payload in zip(MF.record_keys(), MF.record_payloads()):
            rec.write_idx(key, payload)
    with rm.recordio.MXRecordIO(str(tmp_path / "p.rec"), "w") as rec:
        for payload in MF.record_payloads():
            rec.write(payload)
    assert (tmp_path / "r.rec").read_bytes() == open(fixture("records.rec"), "rb").read()
    assert (tmp_path / "r.idx").read_bytes() == open(fixture("records.idx"), "rb").read()
    assert (tmp_path / "p.rec").read_bytes() == open(fixture("plain.rec"), "rb").read()


def test_aligned_magic_splits_the_record_with_continuation_flags():
    magic = struct.pack("<I", 0xCED7230A)
    encoded = encode_record(b"abcd" + magic + b"ef")
    heads = [struct.unpack("<II", encoded[i:i + 8]) for i in (0, 12)]
    assert [(h >> 29, h & (2 ** 29 - 1)) for _, h in heads] == [(1, 4), (3, 2)]
    assert len(encoded) == 8 + 4 + 8 + 4        # the last part is padded to 4 bytes
    assert encode_record(b"ab" + magic)[4:8] == struct.pack("<I", 6)   # unaligned: whole


def test_scan_finds_every_record_start():
    idx = [int(line.split("\t")[1]) for line in open(fixture("records.idx"))]
    assert scan_record_offsets(fixture("records.rec")).tolist() == idx


def test_truncated_file_names_file_offset_and_expectation(tmp_path):
    data = open(fixture("plain.rec"), "rb").read()
    cut = tmp_path / "cut.rec"
    cut.write_bytes(data[:-5])
    with rm.recordio.MXRecordIO(str(cut), "r") as rec:
        with pytest.raises(RecordIOError, match=r"cut\.rec: at byte offset \d+: expected 304 "
                                                r"bytes of record data.*truncated"):
            read_all(rec)
    with pytest.raises(RecordIOError, match="truncated"):
        scan_record_offsets(str(cut))


def test_corrupt_magic_and_bad_index_line(tmp_path):
    bad = tmp_path / "bad.rec"
    bad.write_bytes(b"\x00" * 16)
    with rm.recordio.MXRecordIO(str(bad), "r") as rec:
        with pytest.raises(RecordIOError, match=r"bad\.rec: at byte offset 0: expected the "
                                                r"RecordIO magic 0xced7230a, found 0x00000000"):
            rec.read()
    idx = tmp_path / "bad.idx"
    idx.write_text("0\t0\nnot-a-line\n")
    with pytest.raises(RecordIOError, match=r"bad\.idx: at line 2: expected"):
        rm.recordio.MXIndexedRecordIO(str(idx), fixture("records.rec"), "r")
    # an offset that points into the middle of a record
    idx.write_text("0\t4\n")
    rec = rm.recordio.MXIndexedRecordIO(str(idx), fixture("records.rec"), "r")
    with pytest.raises(RecordIOError, match="at byte offset 4: expected the RecordIO magic"):
        rec.read_idx(0)
    with pytest.raises(KeyError, match="no record with key 7"):
        rec.read_idx(7)


def test_missing_files_and_wrong_use():
    with pytest.raises(FileNotFoundError, match="nope.rec"):
        rm.recordio.MXRecordIO("/nonexistent/nope.rec", "r")
    with pytest.raises(FileNotFoundError, match="nope.idx"):
        rm.recordio.MXIndexedRecordIO("/nonexistent/nope.idx", fixture("records.rec"), "r")
    with pytest.raises(ValueError, match="Invalid flag"):
        rm.recordio.MXRecordIO(fixture("plain.rec"), "a")
    rec = rm.recordio.MXRecordIO(fixture("plain.rec"), "r")
    with pytest.raises(ValueError, match="not opened for writing"):
        rec.write(b"x")
    rec.close()
    with pytest.raises(ValueError, match="closed"):
        rec.read()


def test_writer_is_atomic(tmp_path):
    path = tmp_path / "w.rec"
    rec = rm.recordio.MXIndexedRecordIO(str(tmp_path / "w.idx"), str(path), "w")
    rec.write_idx(0, b"abc")
    assert not path.exists()              # nothing under the real name until close()
    rec.close()
    assert path.exists()
    with pytest.raises(RuntimeError):
        with rm.recordio.MXIndexedRecordIO(str(tmp_path / "x.idx"), str(tmp_path / "x.rec"),
                                           "w") as rec:
            rec.write_idx(0, b"abc")
            raise RuntimeError("crash while writing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.idx", "w.rec"]
    with pytest.raises(TypeError, match="takes bytes"):
        with rm.recordio.MXRecordIO(str(tmp_path / "y.rec"), "w") as rec:
            rec.write("a str")


def test_reset_and_pickle_reopen_the_reader():
    rec = rm.recordio.MXIndexedRecordIO(fixture("records.idx"), fixture("records.rec"), "r")
    first = rec.read()
    rec.read()
    rec.reset()
    assert rec.read() == first
    clone = pickle.loads(pickle.dumps(rec))
    assert clone.read_idx(MF.record_keys()[-1]) == MF.record_payloads()[-1]
    assert clone.keys == rec.keys


def test_pack_matches_mxnet_records():
    """pack(header, image bytes) rebuilds MXNet's records exactly, one label or several."""
    for name, count in (("images", len(MF.IMAGE_SIZES)), ("multilabel", MF.N_MULTI)):
        rec = rm.recordio.MXIndexedRecordIO(fixture(f"{name}.idx"), fixture(f"{name}.rec"), "r")
        for i in range(count):
            raw = rec.read_idx(i)
            header, img = rm.recordio.unpack(raw)
            if name == "images":
                assert header == (0, float(i), i, 0)
                label = float(i)
            else:
                assert header.flag == 3 and header.id == 1000 + i
                np.testing.assert_array_equal(header.label, MF.multilabel(i))
                label = MF.multilabel(i)
            assert rm.recordio.pack(rm.recordio.IRHeader(0, label, header.id, 0), img) == raw


def test_unpack_img_of_mxnet_records():
    rec = rm.recordio.MXIndexedRecordIO(fixture("images.idx"), fixture("images.rec"), "r")
    for i in range(len(MF.IMAGE_SIZES)):
        header, img = rm.recordio.unpack_img(rec.read_idx(i))
        err = np.abs(img.astype(int) - MF.source_image(i))
        if MF.image_format(i)[0] == ".png":
            assert err.max() == 0, i
        else:   # JPEG at quality 90 of a noisy image
            assert err.mean() < 15, (i, err.mean())


def test_pack_img_round_trip():
    img = MF.source_image(3)
    header = rm.recordio.IRHeader(0, [1.5, 2.5], 42, 0)
    h, png = rm.recordio.unpack_img(rm.recordio.pack_img(header, img, quality=3, img_fmt=".png"))
    np.testing.assert_array_equal(png, img)
    assert h.flag == 2 and h.id == 42
    y, x = np.mgrid[0:32, 0:40]
    smooth = np.stack([x * 6, y * 7, (x + y) * 3], -1).astype(np.uint8)
    _, jpg = rm.recordio.unpack_img(rm.recordio.pack_img(header, smooth, quality=95))
    assert np.abs(jpg.astype(int) - smooth).mean() < 2
    with pytest.raises(ValueError, match="img_fmt"):
        rm.recordio.pack_img(header, img, img_fmt=".bmpx")


def test_unpack_errors():
    with pytest.raises(ValueError, match="24-byte IRHeader, received 3 bytes"):
        rm.recordio.unpack(b"abc")
    short = struct.pack("<IfQQ", 5, 0.0, 1, 0) + b"\0" * 8
    with pytest.raises(ValueError, match="says 5 labels"):
        rm.recordio.unpack(short)
    with pytest.raises(ValueError, match="could not decode the image of record id 1"):
        rm.recordio.unpack_img(rm.recordio.pack(rm.recordio.IRHeader(0, 1.0, 1, 0), b"junk"))
