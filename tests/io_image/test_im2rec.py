"""python -m raymod.tools.im2rec against MXNet 1.9.1's own tools/im2rec.py outputs."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import raymod as rm
from raymod.tools import im2rec

from .conftest import fixture

SRC = fixture("im2rec_src")
MX_OUT = fixture("im2rec_out")


def read_records(prefix):
    rec = rm.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "r")
    out = {k: rm.recordio.unpack_img(rec.read_idx(k)) for k in rec.keys}
    return rec.keys, out


def test_list_matches_mxnet_byte_for_byte(tmp_path, capsys):
    im2rec.main([str(tmp_path / "pets"), SRC, "--list", "--recursive", "--train-ratio", "0.6"])
    assert capsys.readouterr().out.splitlines() == ["cat 0", "dog 1", "eel 2"]
    for name in ("pets_train.lst", "pets_val.lst"):
        assert (tmp_path / name).read_text() == open(os.path.join(MX_OUT, name)).read()
    im2rec.main([str(tmp_path / "flat"), os.path.join(SRC, "cat"), "--list", "--no-shuffle"])
    assert (tmp_path / "flat.lst").read_text() == open(os.path.join(MX_OUT, "flat.lst")).read()


def test_test_ratio_and_chunks_split_the_list(tmp_path):
    im2rec.main([str(tmp_path / "a"), SRC, "--list", "--recursive", "--train-ratio", "0.5",
                 "--test-ratio", "0.25", "--chunks", "2"])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"a_{c}_{part}.lst" for c in (0, 1) for part in ("test", "train", "val")]
    lines = [line for p in tmp_path.iterdir() for line in p.read_text().splitlines()]
    assert sorted(int(line.split("\t")[0]) for line in lines) == list(range(9))


def test_pack_matches_mxnet(tmp_path):
    """Same keys, headers and pixels as MXNet's im2rec: resized PNG exactly, JPEG closely
    (with the same libjpeg-turbo the bytes are identical too)."""
    for name in ("pets_train.lst", "pets_val.lst"):
        shutil.copy(os.path.join(MX_OUT, name), tmp_path / name)
    im2rec.main([str(tmp_path / "pets_train"), SRC, "--resize", "7", "--encoding", ".png",
                 "--quality", "4"])
    im2rec.main([str(tmp_path / "pets_val"), SRC, "--quality", "80", "--num-thread", "2"])
    for stem, tol, short_edges in (("pets_train", 0, {7}), ("pets_val", 3, {9, 10, 11})):
        keys, ours = read_records(str(tmp_path / stem))
        mx_keys, theirs = read_records(os.path.join(MX_OUT, stem))
        assert keys == mx_keys
        for k in keys:
            assert ours[k][0] == theirs[k][0]
            assert ours[k][1].shape == theirs[k][1].shape
            assert np.abs(ours[k][1].astype(int) - theirs[k][1]).mean() <= tol
        assert {min(img.shape[:2]) for _, img in ours.values()} <= short_edges


def test_pass_through_pack_label_and_bad_images(tmp_path, capsys):
    lst = tmp_path / "x.lst"
    lst.write_text("0\t1.000000\t2.000000\tcat/cat0.png\n"
                   "1\t3.000000\t4.000000\tcat/missing.png\n"
                   "bad line\n")
    im2rec.main([str(tmp_path / "x"), SRC, "--pass-through", "--pack-label"])
    err = capsys.readouterr().err
    assert "missing.png" in err and "three parts" in err
    keys, recs = read_records(str(tmp_path / "x"))
    assert keys == [0]
    np.testing.assert_array_equal(recs[0][0].label, [1, 2])
    raw = rm.recordio.MXIndexedRecordIO(str(tmp_path / "x.idx"), str(tmp_path / "x.rec"),
                                        "r").read_idx(0)
    assert raw.endswith(open(os.path.join(SRC, "cat", "cat0.png"), "rb").read())


def test_command_line_entry_point_and_errors(tmp_path):
    out = subprocess.run([sys.executable, "-m", "raymod.tools.im2rec", str(tmp_path / "p"),
                          SRC, "--list", "--recursive"], capture_output=True, text=True)
    assert out.returncode == 0 and (tmp_path / "p.lst").exists()
    out = subprocess.run([sys.executable, "-m", "raymod.tools.im2rec", str(tmp_path / "q"),
                          SRC], capture_output=True, text=True)
    assert out.returncode == 1 and "Did not find and list file" in out.stderr
    with pytest.raises(SystemExit):
        im2rec.main([str(tmp_path / "p"), str(tmp_path / "no-such-dir"), "--list"])
