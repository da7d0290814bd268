"""The data plane: in-memory iterators' batches reach Ray workers as row numbers.

Every result equals the in-process run (and so the scatter path) exactly;
the arrays went to the workers once.
"""
import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch, NDArrayIter

from ..module.nets import CPU2, mlp

pytestmark = pytest.mark.usefixtures("ray_session")


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 5), dtype=np.float32), rng.integers(0, 3, n).astype(np.float32)


def _fit(placement, kvstore, handle, epochs=2):
    x, y = _data()
    rm.random.seed(7)
    np.random.seed(7)                        # NDArrayIter's shuffle
    train = NDArrayIter(x, y, batch_size=16, shuffle=True, last_batch_handle=handle)
    val = NDArrayIter(x[:20], y[:20], batch_size=8)
    mod = rm.mod.Module(mlp(), context=CPU2, placement=placement)
    metric = rm.metric.Accuracy()
    mod.fit(train, eval_data=val, eval_metric=metric, kvstore=kvstore, num_epoch=epochs,
            optimizer_params={"learning_rate": 0.5, "momentum": 0.9},
            initializer=rm.init.Xavier())
    scores = mod.score(val, ["acc", "ce"])
    return mod, metric.get(), scores, mod.predict(val)


@pytest.mark.parametrize("kvstore,handle", [("device", "roll_over"), (None, "pad"),
                                            ("local", "discard")])
def test_fit_score_predict_equal_in_process_with_data_on_the_workers(kvstore, handle):
    ref, ref_metric, ref_scores, ref_pred = _fit("in_process", kvstore, handle)
    mod, metric, scores, pred = _fit("ray", kvstore, handle)
    for name, value in ref.get_params()[0].items():
        np.testing.assert_array_equal(mod.get_params()[0][name], value, err_msg=name)
    assert metric == ref_metric and scores == ref_scores
    np.testing.assert_array_equal(pred, ref_pred)
    held = mod._exec_group._scheduler.plane._held
    assert len(held) == 2                   # the training and the validation iterator


def test_a_batch_written_into_goes_as_arrays():
    """Outside the module loops nobody vouches for a batch: what it holds now is used."""
    x, y = _data(16)
    it = NDArrayIter(x, y, batch_size=16)
    mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    mod.bind(it.provide_data, it.provide_label, for_training=False)
    mod.init_params()
    batch = next(iter(it))
    batch.data[0][...] = 0.0                # the user's own preprocessing, in place
    mod.forward(batch, is_train=False)
    zeros = mod.get_outputs()[0]
    mod.forward(DataBatch([rm.nd.zeros((16, 5))], [rm.nd.array(y)]), is_train=False)
    np.testing.assert_array_equal(zeros, mod.get_outputs()[0])
    assert not mod._exec_group._scheduler.plane._held


def test_workers_keep_a_bounded_number_of_sources():
    x, y = _data(16)
    mod = rm.mod.Module(mlp(), context=CPU2, placement="ray")
    mod.bind([("data", (8, 5))], [("softmax_label", (8,))], for_training=False)
    mod.init_params()
    tokens = []
    for _ in range(6):
        it = NDArrayIter(x, y, batch_size=8)
        mod.score(it, "acc")
        tokens.append(it._rows_source.token)
    held = mod._exec_group._scheduler.plane._held
    assert list(held) == tokens[-4:]
    kept = mod._exec_group._workers.call("held_row_sources")
    assert kept == [tokens[-4:]] * 2


def _losses_per_batch(placement):
    x, y = _data()
    rm.random.seed(7)
    np.random.seed(7)
    train = NDArrayIter(x, y, batch_size=16, shuffle=True, last_batch_handle="roll_over")
    mod = rm.mod.Module(mlp(), context=CPU2, placement=placement)
    losses = []
    mod.fit(train, eval_metric=rm.metric.CrossEntropy(), kvstore="device", num_epoch=2,
            optimizer_params={"learning_rate": 0.5, "momentum": 0.9},
            initializer=rm.init.Xavier(),
            batch_end_callback=lambda p: losses.append(p.eval_metric.get()[1]))
    return losses


def test_both_placements_give_the_same_loss_batch_for_batch():
    """Read at every batch end (each read drains the Ray workers' sums): the same values."""
    ref = _losses_per_batch("in_process")
    assert len(ref) == 7 and ref == _losses_per_batch("ray")
