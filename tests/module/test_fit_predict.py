"""BaseModule.fit / score / predict / iter_predict on Module (reference sections 2.3-2.6)."""
import logging

import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch, NDArrayIter
from raymod.module import FitParams

from .nets import CPU2, classification_data, mlp


def _fresh_module(ctx=None, seed=5):
    rm.random.seed(seed)
    return rm.mod.Module(mlp(), context=ctx or [rm.cpu()])


def _params_after_fit(mod, **kwargs):
    x, y = classification_data()
    mod.fit(NDArrayIter(x, y, batch_size=16), **kwargs)
    return {k: v.copy() for k, v in mod.get_params()[0].items()}


# ---------------------------------------------------------------- fit
def test_fit_with_fitparams_equals_fit_with_keywords():
    opt = {"learning_rate": 0.5, "momentum": 0.9}
    by_keywords = _params_after_fit(_fresh_module(), num_epoch=2, optimizer_params=opt,
                                    initializer=rm.init.Xavier())
    by_params = _params_after_fit(_fresh_module(), params=FitParams(
        num_epoch=2, optimizer_params=opt, initializer=rm.init.Xavier()))
    assert by_keywords.keys() == by_params.keys()
    for k in by_keywords:
        np.testing.assert_array_equal(by_keywords[k], by_params[k])
    # a keyword overrides the same FitParams field: one epoch is a different result
    overridden = _params_after_fit(_fresh_module(), num_epoch=1, params=FitParams(
        num_epoch=2, optimizer_params=opt, initializer=rm.init.Xavier()))
    assert not np.allclose(overridden["fc2_weight"], by_params["fc2_weight"])
    one_epoch = _params_after_fit(_fresh_module(), num_epoch=1, optimizer_params=opt,
                                  initializer=rm.init.Xavier())
    np.testing.assert_array_equal(overridden["fc2_weight"], one_epoch["fc2_weight"])


def test_fitparams_defaults_and_validation():
    p = FitParams()
    assert p.eval_metric == "acc" and p.kvstore == "local" and p.optimizer == "sgd"
    assert p.optimizer_params == (("learning_rate", 0.01),)
    assert isinstance(p.initializer, rm.init.Uniform) and p.num_epoch is None
    assert p.begin_epoch == 0 and p.validation_metric is None
    with pytest.raises(ValueError, match="num_epoch"):
        FitParams(num_epoch=-1)
    with pytest.raises(ValueError, match="begin_epoch"):
        FitParams(begin_epoch=-2)
    with pytest.raises(TypeError, match="FitParams"):
        _fresh_module().fit(NDArrayIter(*classification_data(), batch_size=8),
                            params={"num_epoch": 1})


def test_fit_needs_num_epoch():
    mod = _fresh_module()
    with pytest.raises(ValueError, match="num_epoch"):
        mod.fit(NDArrayIter(*classification_data(), batch_size=8))
    assert not mod.binded


def test_fit_learns_and_logs_global_train_metric(caplog):
    mod = _fresh_module()
    x, y = classification_data(n=128)
    train = NDArrayIter(x, y, batch_size=16, shuffle=False)
    seen = []

    def reset_every_batch(param):       # like Speedometer(auto_reset=True)
        seen.append((param.epoch, param.nbatch))
        param.eval_metric.reset_local()

    metric = rm.metric.Accuracy()
    with caplog.at_level(logging.INFO):
        mod.fit(train, eval_data=NDArrayIter(x, y, batch_size=32), num_epoch=8,
                optimizer_params={"learning_rate": 0.5}, initializer=rm.init.Xavier(),
                batch_end_callback=reset_every_batch, eval_metric=metric,
                validation_metric="acc")
    assert seen == [(e, b) for e in range(8) for b in range(8)]
    train_acc = [float(r.message.split("=")[1]) for r in caplog.records
                 if "Train-accuracy" in r.message]
    val_acc = [float(r.message.split("=")[1]) for r in caplog.records
               if "Validation-accuracy" in r.message]
    assert len(train_acc) == len(val_acc) == 8
    assert val_acc[-1] > 0.8
    # the logged value is the whole epoch's (global) one, not the reset local one
    assert metric.num_inst == 0          # the callback reset the local stats
    assert train_acc[-1] == pytest.approx(metric.get_global()[1], abs=1e-6)
    assert metric.global_num_inst == 128
    assert "Epoch[0] Time cost=" in caplog.text


def test_fit_callbacks_and_begin_epoch():
    mod = _fresh_module()
    x, y = classification_data(n=32)
    epochs, evals, eval_batches = [], [], []
    mod.fit(NDArrayIter(x, y, batch_size=8), eval_data=NDArrayIter(x, y, batch_size=16),
            begin_epoch=2, num_epoch=4,
            epoch_end_callback=lambda e, sym, arg, aux: epochs.append((e, sym, set(arg), aux)),
            eval_end_callback=lambda p: evals.append((p.epoch, p.nbatch)),
            eval_batch_end_callback=[lambda p: eval_batches.append(p.nbatch)])
    assert [e[0] for e in epochs] == [2, 3]
    assert epochs[0][1] is mod.symbol
    assert epochs[0][2] == {"fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"}
    assert evals == [(2, 2), (3, 2)]
    assert eval_batches == [0, 1, 0, 1]


@pytest.mark.in_process_only("counts calls on the driver's metric; Ray workers update copies")
def test_fit_validation_metric_sharing():
    x, y = classification_data(n=32)
    metric = rm.metric.Accuracy()
    updates = []
    orig = metric.update_dict

    def counting(label, pred):
        updates.append(1)
        return orig(label, pred)

    metric.update_dict = counting
    _fresh_module().fit(NDArrayIter(x, y, batch_size=8), eval_data=NDArrayIter(x, y, batch_size=8),
                        eval_metric=metric, num_epoch=1)
    assert len(updates) == 4 + 4      # training and validation share the object


def test_fit_validation_metric_is_the_one_given():
    x, y = classification_data(n=32)
    val = rm.metric.MSE()
    _fresh_module().fit(NDArrayIter(x, y, batch_size=8), eval_data=NDArrayIter(x, y, batch_size=8),
                        eval_metric="acc", validation_metric=val, num_epoch=1)
    assert val.num_inst > 0


def test_fit_call_order_and_reset_at_epoch_end():
    """BaseModule.fit drives only the intermediate API, in MXNet's order."""
    calls = []

    class Iter:
        provide_data = [("data", (2, 3))]
        provide_label = None

        def __init__(self):
            self._i = 0

        def __iter__(self):
            return self

        def __next__(self):
            if self._i == 2:
                raise StopIteration
            self._i += 1
            calls.append(("next", self._i))
            return DataBatch([np.zeros((2, 3))], label=[np.zeros(2)])

        def reset(self):
            calls.append(("reset",))
            self._i = 0

    class Recorder(rm.mod.BaseModule):
        def __getattribute__(self, name):
            if name in ("bind", "init_params", "init_optimizer", "forward", "backward",
                        "update", "update_metric", "get_params", "set_params", "prepare",
                        "install_monitor"):
                def record(*args, **kwargs):
                    calls.append((name,))
                    return ({}, {}) if name == "get_params" else None
                return record
            return object.__getattribute__(self, name)

    Recorder().fit(Iter(), num_epoch=2)
    names = [c[0] for c in calls]
    assert names[:3] == ["bind", "init_params", "init_optimizer"]
    epoch = ["next", "forward", "backward", "update", "update_metric", "next", "prepare",
             "forward", "backward", "update", "update_metric", "get_params", "set_params",
             "reset"]
    assert names[3:] == epoch * 2


def test_reference_single_batch_during_fit():
    """A batch's label is read before the next batch is fetched (C++ iterators free it)."""
    current = {"i": None}

    class MockBatch:
        def __init__(self, i):
            self.i = i

        @property
        def label(self):
            assert self.i == current["i"], "label read after the next batch was fetched"

    class MockTrainData:
        def __init__(self, batches):
            self._i, self._batches = 0, batches
            self.provide_data = self.provide_label = None
            self.reset = lambda: None

        def __iter__(self):
            self._i = 0
            return self

        def __next__(self):
            if self._i < self._batches:
                current["i"] = self._i
                self._i += 1
                return MockBatch(current["i"])
            raise StopIteration

    labels_read = []
    mod = rm.mod.BaseModule()

    def empty_fn(*args, **kwargs):
        pass

    mod.bind = mod.init_params = mod.init_optimizer = empty_fn
    mod.forward = mod.backward = mod.update = empty_fn
    mod.update_metric = lambda metric, labels, pre_sliced=False: labels_read.append(1)
    mod.get_params = lambda: (None, None)
    mod.set_params = empty_fn
    mod.fit(MockTrainData(batches=3), num_epoch=1)
    assert len(labels_read) == 3


def test_fit_on_empty_iterator_raises_stopiteration():
    mod = _fresh_module()
    it = NDArrayIter(*classification_data(n=8), batch_size=8)
    it.next()                              # exhaust it; fit does not reset first
    with pytest.raises(StopIteration):
        mod.fit(it, num_epoch=1)


def test_fit_with_fixed_param_names():
    rm.random.seed(1)
    mod = rm.mod.Module(mlp(), fixed_param_names=["fc1_weight"])
    x, y = classification_data()
    mod.bind([("data", (16, 5))], [("softmax_label", (16,))])
    mod.init_params(initializer=rm.init.Xavier())
    before = {k: v.copy() for k, v in mod.get_params()[0].items()}
    with pytest.warns(UserWarning, match="init_params call ignored"):
        mod.fit(NDArrayIter(x, y, batch_size=16), num_epoch=1,
                optimizer_params={"learning_rate": 1})
    after = mod.get_params()[0]
    np.testing.assert_array_equal(after["fc1_weight"], before["fc1_weight"])
    assert not np.allclose(after["fc2_weight"], before["fc2_weight"])
    assert mod._exec_group.grad_req["fc1_weight"] == "null"
    assert mod._exec_group.grad_arrays[0] == [None]


# ---------------------------------------------------------------- score
def _identity_module(n_out=2, batch=4, ctx=None, label=True):
    """Outputs = data (so predictions are known exactly)."""
    data = rm.sym.Variable("data")
    if label:
        sym = rm.sym.LinearRegressionOutput(data, name="lro")
        mod = rm.mod.Module(sym, label_names=["lro_label"], context=ctx or [rm.cpu()])
        mod.bind([("data", (batch, n_out))], [("lro_label", (batch, n_out))],
                 for_training=False)
    else:
        sym = rm.sym.Group([data * 1, data * 2])
        mod = rm.mod.Module(sym, label_names=None, context=ctx or [rm.cpu()])
        mod.bind([("data", (batch, n_out))], for_training=False)
    mod.init_params()
    return mod


def test_score_counts_pad_rows_and_num_batch():
    mod = _identity_module()
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    # labels equal data except the 2 pad rows wrap around to samples 0, 1 (pad)
    it = NDArrayIter(x, x, batch_size=4, last_batch_handle="pad", label_name="lro_label")
    res = mod.score(it, "mse")
    assert res == [("mse", 0.0)]
    lab = x + 1
    it = NDArrayIter(x, lab, batch_size=4, label_name="lro_label")
    ends = []
    res = mod.score(it, rm.metric.MSE(), num_batch=2, score_end_callback=ends.append)
    assert res == [("mse", 1.0)]
    assert ends[0].nbatch == 2 and ends[0].epoch == 0
    res = mod.score(it, ["mse", "mae"])
    assert dict(res) == {"mse": 1.0, "mae": 1.0}


def test_score_and_predict_need_bound_initialized_module():
    mod = rm.mod.Module(mlp())
    it = NDArrayIter(*classification_data(n=8), batch_size=4)
    for call in (lambda: mod.score(it, "acc"), lambda: mod.predict(it),
                 lambda: next(mod.iter_predict(it))):
        with pytest.raises(AssertionError, match="bind"):
            call()


# ---------------------------------------------------------------- predict
def test_predict_strips_pad_and_merges():
    mod = _identity_module(label=False)
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    it = NDArrayIter(x, batch_size=4, last_batch_handle="pad")
    out = mod.predict(it)
    assert isinstance(out, list) and len(out) == 2
    np.testing.assert_array_equal(out[0], x)
    np.testing.assert_array_equal(out[1], 2 * x)
    assert isinstance(out[0], rm.nd.NDArray)

    nested = mod.predict(it, merge_batches=False)
    assert len(nested) == 3 and [len(b) for b in nested] == [2, 2, 2]
    assert nested[2][0].shape == (2, 2)            # pad removed from the last batch
    np.testing.assert_array_equal(nested[2][1], 2 * x[8:])
    # copies: a later forward does not change what predict returned
    mod.forward(DataBatch([rm.nd.zeros((4, 2))]))
    np.testing.assert_array_equal(nested[0][0], x[:4])

    first_two = mod.predict(it, num_batch=2)
    assert first_two[0].shape == (8, 2)


def test_predict_single_output_and_always_output_list():
    mod = _identity_module()
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    it = NDArrayIter(x, np.zeros_like(x), batch_size=4, label_name="lro_label")
    out = mod.predict(it)
    assert not isinstance(out, list) and out.shape == (6, 2)
    np.testing.assert_array_equal(out, x)
    out = mod.predict(it, always_output_list=True)
    assert isinstance(out, list) and len(out) == 1
    np.testing.assert_array_equal(out[0], x)


def test_predict_empty_and_bad_input():
    mod = _identity_module()
    it = NDArrayIter(np.zeros((4, 2), np.float32), np.zeros((4, 2), np.float32), batch_size=4,
                     label_name="lro_label")
    assert mod.predict(it, num_batch=0) == []
    with pytest.raises(ValueError, match="eval_data must be of type NDArray or DataIter"):
        mod.predict([[1, 2]])


def test_predict_reset_false_continues():
    mod = _identity_module(label=False)
    x = np.arange(16, dtype=np.float32).reshape(8, 2)
    it = NDArrayIter(x, batch_size=4)
    it.next()
    out = mod.predict(it, reset=False)
    np.testing.assert_array_equal(out[0], x[4:])


def test_predict_ndarray_uses_training_mode_when_bound_for_training():
    """Q3: predict(array) runs forward(is_train=None), i.e. training mode if bound for it."""
    sym = rm.sym.Dropout(rm.sym.Variable("data"), p=0.5)
    mod = rm.mod.Module(sym, label_names=None)
    mod.bind([("data", (64, 8))], for_training=True)
    mod.init_params()
    out = mod.predict(np.ones((64, 8)))
    assert set(np.unique(out)) == {0.0, 2.0}
    mod.bind([("data", (64, 8))], for_training=False, force_rebind=True)
    np.testing.assert_array_equal(mod.predict(rm.nd.ones((64, 8))), np.ones((64, 8)))
    # only output 0 is returned, a numpy input becomes float32
    mod2 = _identity_module(label=False)
    out = mod2.predict(np.ones((4, 2), dtype=np.float64))
    assert out.dtype == np.float32 and out.shape == (4, 2)
    np.testing.assert_array_equal(out, np.ones((4, 2)))


def test_iter_predict_yields_views_without_pad():
    mod = _identity_module(label=False)
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    it = NDArrayIter(x, batch_size=4, last_batch_handle="pad")
    seen = []
    for outputs, nbatch, batch in mod.iter_predict(it):
        assert len(outputs) == 2
        seen.append(nbatch)
        lo = 4 * nbatch
        np.testing.assert_array_equal(outputs[0], x[lo:lo + outputs[0].shape[0]])
        assert outputs[0].shape[0] == 4 - batch.pad
    assert seen == [0, 1, 2]
    assert [o[1] for o in mod.iter_predict(it, num_batch=1)] == [0]


def test_predict_two_devices_equals_one():
    x, _ = classification_data(n=24)
    outs = []
    for ctx in ([rm.cpu()], CPU2):
        mod = rm.mod.Module(mlp(), context=ctx)
        mod.bind([("data", (8, 5))], [("softmax_label", (8,))], for_training=False)
        rm.random.seed(0)
        mod.init_params(initializer=rm.init.Xavier())
        outs.append(mod.predict(NDArrayIter(x, batch_size=8)))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6)
