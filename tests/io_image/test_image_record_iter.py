"""rm.io.ImageRecordIter: batch for batch MXNet 1.9.1's on deterministic settings, MXNet's
statistics on random ones (expectations in tests/fixtures/mxnet_image/iter_expected.*)."""
import json
import pickle

import numpy as np
import pytest

import raymod as rm
from raymod.io.image_record_source import decode_records

from .conftest import MF, fixture

EXPECTED = np.load(fixture("iter_expected.npz"))
META = json.load(open(fixture("iter_expected.json")))
N = len(MF.IMAGE_SIZES)


def make_iter(**kw):
    for key in ("path_imgrec", "path_imgidx", "path_imglist"):
        if kw.get(key):
            kw[key] = fixture(kw[key])
    kw.setdefault("path_imgrec", fixture("images.rec"))
    return rm.io.ImageRecordIter(**kw)


def run_epochs(it, epochs):
    data, label, pad, index = [], [], [], []
    for _ in range(epochs):
        for batch in it:
            data.append(batch.data[0].asnumpy())
            label.append(batch.label[0].asnumpy())
            pad.append(batch.pad)
            index.append(batch.index)
        it.reset()
    return np.stack(data), np.stack(label), np.array(pad), np.stack(index)


@pytest.mark.parametrize("name", sorted(MF.ITER_CASES))
def test_batches_equal_mxnet(name):
    case = dict(MF.ITER_CASES[name])
    epochs = case.pop("epochs")
    it = make_iter(preprocess_threads=3, **case)
    data, label, pad, _ = run_epochs(it, epochs)
    shapes = [list(d.shape) for d in it.provide_data + it.provide_label]
    assert shapes == META[name + ":shapes"]
    want_pad = EXPECTED[name + ":pad"]
    if not case.get("round_batch", True):
        # raymod zero-fills the unfilled tail and counts it as pad (MXNet: garbage, pad=0)
        filled = META[name + ":filled_last"]
        assert (pad[pad > 0] == case["batch_size"] - filled).all()
        assert (data[pad > 0, filled:] == 0).all() and (label[pad > 0, filled:] == 0).all()
        pad = np.zeros_like(pad)
    assert pad.tolist() == want_pad.tolist()
    np.testing.assert_array_equal(label, EXPECTED[name + ":label"])
    assert data.dtype == EXPECTED[name + ":data"].dtype
    np.testing.assert_array_equal(data, EXPECTED[name + ":data"])


@pytest.mark.parametrize("name", sorted(MF.PART_CASES))
def test_num_parts_split_as_mxnet(name):
    case = MF.PART_CASES[name]
    for part, want in enumerate(META[name]):
        kw = dict(data_shape=(3, 12, 12), batch_size=2, num_parts=case["num_parts"],
                  part_index=part, path_imgidx="images.idx" if case["idx"] else "")
        if not want["labels"]:      # MXNet cannot build an iterator on an empty part either
            with pytest.raises(ValueError, match="has no records"):
                make_iter(**kw)
            continue
        _, label, pad, _ = run_epochs(make_iter(**kw), 2)
        assert label.tolist() == want["labels"] and pad.tolist() == want["pad"]


@pytest.mark.parametrize("idx", ["images.idx", ""])
def test_parts_cover_every_record_once_per_epoch_with_shuffle(idx):
    seen = []
    for part in range(3):
        it = make_iter(path_imgidx=idx, data_shape=(3, 12, 12), batch_size=2, shuffle=True,
                       num_parts=3, part_index=part, round_batch=False, seed=5)
        epochs = []
        for _ in range(3):
            epochs.append([int(i) for b in it for i in b.index[:len(b.index) - b.pad]])
            it.reset()
        assert all(sorted(e) == sorted(epochs[0]) for e in epochs)
        assert len(set(map(tuple, epochs))) > 1           # reshuffled each epoch
        seen += epochs[0]
    assert sorted(seen) == list(range(N))


def stat_z(name, data):
    mean, meansq = EXPECTED[name + ":mean"].astype(np.float64), EXPECTED[name + ":meansq"]
    var = np.maximum(meansq - mean ** 2, 1e-6)
    se = np.sqrt(var * (1 / len(data) + 1 / META[name + ":n"]))
    return np.abs((data.mean(axis=0) - mean) / se).max(), data.var(axis=0).mean() / var.mean()


def random_run(name, epochs=MF.STAT_EPOCHS, **override):
    kw = dict(MF.STAT_CASES[name], batch_size=12)
    kw.update(override)
    data, _, _, _ = run_epochs(make_iter(**kw), epochs)
    return data.reshape((-1,) + data.shape[2:]).astype(np.float64)


@pytest.mark.parametrize("name", sorted(MF.STAT_CASES))
def test_random_augmentations_match_mxnet_statistics(name):
    """Per-pixel means over 720 samples within 4.5 standard errors of MXNet's, variance
    within 10%; the same test rejects the augmentation turned off."""
    z, var_ratio = stat_z(name, random_run(name))
    assert z < 4.5 and abs(var_ratio - 1) < 0.1, (z, var_ratio)
    off = {"rand_crop": False, "rand_mirror": False, "max_random_scale": 1.0}
    z_off, ratio_off = stat_z(name, random_run(name, epochs=10, **{
        k: v for k, v in off.items() if k in MF.STAT_CASES[name]}))
    assert z_off > 4.5 or abs(ratio_off - 1) > 0.1


def test_rand_mirror_flips_about_half_of_the_images():
    plain = make_iter(data_shape=(3, 14, 14), batch_size=12).next().data[0].asnumpy()
    it = make_iter(data_shape=(3, 14, 14), batch_size=12, rand_mirror=True)
    flips = []
    for _ in range(20):
        batch = it.next().data[0].asnumpy()
        it.reset()
        flipped = [np.array_equal(b, p[:, :, ::-1]) for b, p in zip(batch, plain)]
        same = [np.array_equal(b, p) for b, p in zip(batch, plain)]
        assert all(f or s for f, s in zip(flipped, same))
        flips += flipped
    assert 0.4 < np.mean(flips) < 0.6                      # 240 coin flips


def test_augmentation_reproducible_and_independent_of_threads():
    kw = dict(data_shape=(3, 10, 10), batch_size=5, rand_crop=True, rand_mirror=True,
              max_random_scale=1.3, shuffle=True, seed=3)
    a = run_epochs(make_iter(preprocess_threads=1, **kw), 2)[0]
    b = run_epochs(make_iter(preprocess_threads=4, prefetch_buffer=1, **kw), 2)[0]
    np.testing.assert_array_equal(a, b)
    c = run_epochs(make_iter(preprocess_threads=1, **dict(kw, seed=4)), 2)[0]
    assert not np.array_equal(a, c)


def test_seed_aug_repeats_each_record_augmentation():
    it = make_iter(data_shape=(3, 10, 10), batch_size=6, rand_crop=True, seed_aug=11)
    first, second = run_epochs(it, 1)[0], run_epochs(it, 1)[0]
    np.testing.assert_array_equal(first, second)
    it = make_iter(data_shape=(3, 10, 10), batch_size=6, rand_crop=True)
    first, second = run_epochs(it, 1)[0], run_epochs(it, 1)[0]
    assert not np.array_equal(first, second)


def test_decode_records_is_a_pure_picklable_function_of_the_plan():
    it = make_iter(data_shape=(3, 10, 10), batch_size=4, rand_crop=True, rand_mirror=True,
                   preprocess_threads=2, prefetch_buffer=1)
    source = pickle.loads(pickle.dumps(it.source))
    plan = it.next_plan()                                   # the iterator's next batch
    data, label, ids = decode_records(source, plan.offsets, plan.seeds)
    again = decode_records(it.source, plan.offsets[2:], plan.seeds[2:])
    np.testing.assert_array_equal(again[0], data[2:])
    batch = make_iter(data_shape=(3, 10, 10), batch_size=4, rand_crop=True, rand_mirror=True,
                      preprocess_threads=2).next()
    np.testing.assert_array_equal(batch.data[0], data)
    np.testing.assert_array_equal(batch.label[0], label[:, 0])
    assert batch.index.tolist() == ids.tolist() == [0, 1, 2, 3]


def test_reset_mid_epoch_starts_a_fresh_epoch():
    it = make_iter(data_shape=(3, 12, 12), batch_size=5)
    it.next()
    it.reset()
    labels = [b.label[0].tolist() for b in it]
    assert labels[0] == [0, 1, 2, 3, 4] and len(labels) == 3
    with pytest.raises(StopIteration):
        it.next()


def test_fit_and_score_through_module():
    net = rm.sym.SoftmaxOutput(rm.sym.FullyConnected(
        rm.sym.Flatten(rm.sym.Variable("data")), num_hidden=4, name="fc"), name="softmax")
    train = make_iter(data_shape=(3, 12, 12), batch_size=4, scale=1 / 255, shuffle=True)
    mod = rm.mod.Module(net, context=rm.cpu())
    mod.fit(train, num_epoch=2, optimizer_params={"learning_rate": 0.01})
    val = make_iter(data_shape=(3, 12, 12), batch_size=5, scale=1 / 255, round_batch=False)
    assert mod.predict(val).shape == (N, 4)                 # the zero filler is dropped (pad)


def bad(match, exc=ValueError, **kw):
    kw.setdefault("data_shape", (3, 12, 12))
    kw.setdefault("batch_size", 4)
    with pytest.raises(exc, match=match):
        it = make_iter(**kw)
        it.next()


def test_clear_errors_before_any_work():
    bad("path_imgrec '.*missing.rec' does not exist", FileNotFoundError,
        path_imgrec="missing.rec")
    bad("path_imgidx '.*missing.idx' does not exist", FileNotFoundError,
        path_imgidx="missing.idx")
    bad(r"data_shape must be \(channels, height, width\).*received \(12, 12\)",
        data_shape=(12, 12))
    bad(r"1, 3 or 4 channels, received \(2, 12, 12\)", data_shape=(2, 12, 12))
    bad("data_shape is required", data_shape=None)
    bad("batch_size must be a positive int, received 0", batch_size=0)
    bad(r"part_index must be in \[0, num_parts=2\), received 2", num_parts=2, part_index=2)
    bad("unexpected argument 'rand_crops'", TypeError, rand_crops=True)
    bad("random_h=5 is not supported", TypeError, random_h=5)
    bad("number of input images must be bigger than the batch size", batch_size=30)
    bad("inter_method must be one of", inter_method=7)


def test_clear_errors_about_a_record():
    bad(r"images\.rec: record id 0 at byte offset 0: image of 18x14 .* is smaller than "
        r"data_shape \(3, 15, 15\)", data_shape=(3, 15, 15))
    bad("record id 0 .* has one label in its header but label_width is 2", label_width=2)
    bad("record id 1000 .* has 3 labels but label_width is 1", path_imgrec="multilabel.rec")
    bad("image has 3 channels, data_shape .* expects 4", data_shape=(4, 12, 12))
