"""raymod.metric: MXNet 1.9.1's metrics, registry, local/global statistics and mergeable state."""
import importlib.util
import json
import math
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import raymod.metric as metric
import raymod.ndarray as nd

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mxnet")
_spec = importlib.util.spec_from_file_location("mxnet_make_fixtures",
                                               os.path.join(FIXTURES, "make_fixtures.py"))
MAKE = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(MAKE)

PREDS = np.array([[.3, .7], [.9, .1], [.4, .6], [.2, .8]], dtype=np.float32)
LABELS = np.array([1, 0, 0, 1], dtype=np.float32)


def _value(m):
    return m.get()[1]


# ---------------------------------------------------------------------- reference numbers

@pytest.mark.parametrize("name,expected", [("acc", 0.75), ("f1", 0.8), ("ce", 0.40037),
                                           ("loss", 0.5), ("mcc", 0.57735)])
def test_reference_examples(name, expected):
    # reference 10.5 [verified]
    m = metric.create(name)
    m.update([nd.array(LABELS)], [nd.array(PREDS)])
    assert _value(m) == pytest.approx(expected, abs=1e-5)


def test_reference_perplexity_example():
    m = metric.Perplexity(ignore_label=-1)
    m.update([np.array([1, 0, -1])], [np.array([[.3, .7], [.9, .1], [.5, .5]])])
    assert _value(m) == pytest.approx(math.exp(-(math.log(.7) + math.log(.9)) / 2))
    assert m.num_inst == 2


# Values printed by mxnet 1.9.1 (`make_fixtures.py metric-values`) for MAKE.metric_inputs():
# first one update call with the batch split in two slices (as two devices would), then a
# second call with the whole batch.
MXNET_1_9_1 = {
    "acc": (0.3333333333333333, 0.3333333333333333),
    "top3": (0.8333333333333334, 0.8333333333333334),
    "ce": (1.325032075246175, 1.325032075246175),
    "nll": (1.325032075246175, 1.325032075246175),
    "perplexity": (3.7623060299566573, 3.7623060299566573),
    "perplexity_ignore2": (3.7780445213218536, 3.7780445213218536),
    "loss": (0.25, 0.25),
    "pcc": (0.06358558550989461, 0.06358558550989461),
    "f1_macro": (0.6153846153846153, 0.6153846153846153),
    "f1_micro": (0.6153846153846153, 0.6153846153846153),
    "mcc_macro": (-0.0890870806374748, -0.0890870806374748),
    "mcc_micro": (-0.0890870806374748, -0.0890870806374748),
    "mae": (0.2978523075580597, 0.314987579981486),
    "mse": (0.13135498762130737, 0.14636199176311493),
    "rmse": (0.33689218014478683, 0.3645852655172348),
    "pearsonr_macro": (-0.10178452200130994, 0.20661264145388006),
    "pearsonr_micro": (0.8234069683642602, 0.8234069683642602),
}


def _mxnet_cases():
    return {
        "acc": (metric.Accuracy, {}, "multi"), "top3": (metric.TopKAccuracy, {"top_k": 3}, "multi"),
        "ce": (metric.CrossEntropy, {}, "multi"),
        "nll": (metric.NegativeLogLikelihood, {}, "multi"),
        "perplexity": (metric.Perplexity, {"ignore_label": None}, "multi"),
        "perplexity_ignore2": (metric.Perplexity, {"ignore_label": 2}, "multi"),
        "loss": (metric.Loss, {}, "multi"), "pcc": (metric.PCC, {}, "multi"),
        "f1_macro": (metric.F1, {}, "bin"),
        "f1_micro": (metric.F1, {"average": "micro"}, "bin"),
        "mcc_macro": (metric.MCC, {}, "bin"),
        "mcc_micro": (metric.MCC, {"average": "micro"}, "bin"),
        "mae": (metric.MAE, {}, "reg"), "mse": (metric.MSE, {}, "reg"),
        "rmse": (metric.RMSE, {}, "reg"),
        "pearsonr_macro": (metric.PearsonCorrelation, {}, "reg"),
        "pearsonr_micro": (metric.PearsonCorrelation, {"average": "micro"}, "reg"),
    }


def _inputs(kind):
    probs, labels, bin_probs, bin_labels, reg_pred, reg_label = MAKE.metric_inputs()
    return {"multi": (labels, probs), "bin": (bin_labels, bin_probs),
            "reg": (reg_label, reg_pred)}[kind]


@pytest.mark.parametrize("case", sorted(MXNET_1_9_1))
def test_matches_mxnet_1_9_1(case, ctx):
    cls, kwargs, kind = _mxnet_cases()[case]
    label, pred = (ctx.xp.asarray(a) for a in _inputs(kind))   # numpy, or cupy on a GPU
    m = cls(**kwargs)
    m.update([label[:6], label[6:]], [pred[:6], pred[6:]])
    one = _value(m)
    m.update([label], [pred])
    expected_one, expected_two = MXNET_1_9_1[case]
    # float32 sums may differ in the last bits from MXNet's reduction order
    assert one == pytest.approx(expected_one, rel=1e-6)
    assert _value(m) == pytest.approx(expected_two, rel=1e-6)


# ---------------------------------------------------------------------- registry and create

@pytest.mark.parametrize("name,cls", [
    ("acc", metric.Accuracy), ("Accuracy", metric.Accuracy),
    ("top_k_accuracy", metric.TopKAccuracy), ("top_k_acc", metric.TopKAccuracy),
    ("topkaccuracy", metric.TopKAccuracy), ("f1", metric.F1), ("mcc", metric.MCC),
    ("mae", metric.MAE), ("mse", metric.MSE), ("rmse", metric.RMSE),
    ("ce", metric.CrossEntropy), ("crossentropy", metric.CrossEntropy),
    ("nll_loss", metric.NegativeLogLikelihood),
    ("negativeloglikelihood", metric.NegativeLogLikelihood),
    ("pearsonr", metric.PearsonCorrelation), ("pearsoncorrelation", metric.PearsonCorrelation),
    ("pcc", metric.PCC), ("loss", metric.Loss), ("torch", metric.Torch),
    ("caffe", metric.Caffe), ("composite", metric.CompositeEvalMetric),
    ("compositeevalmetric", metric.CompositeEvalMetric),
])
def test_registered_names(name, cls):
    kwargs = {"top_k": 2} if cls is metric.TopKAccuracy else {}
    assert type(metric.create(name, **kwargs)) is cls


def test_create_other_forms():
    assert metric.create("perplexity", -1).ignore_label == -1
    with pytest.raises(TypeError):
        metric.create("perplexity")          # ignore_label is required (Q18)
    acc = metric.Accuracy()
    assert metric.create(acc) is acc
    with pytest.raises(AssertionError, match="already an instance"):
        metric.create(acc, 1)
    custom = metric.create(lambda label, pred: 1.0)
    assert isinstance(custom, metric.CustomMetric) and custom.name == "custom(<lambda>)"
    comp = metric.create(["acc", "mse"])
    assert isinstance(comp, metric.CompositeEvalMetric)
    assert [type(m) for m in comp.metrics] == [metric.Accuracy, metric.MSE]
    assert metric.create('["top_k_accuracy", {"top_k": 3}]').top_k == 3
    assert metric.create('{"metric": "acc", "axis": 2}').axis == 2


def test_unknown_name_is_an_assertion_and_value_error():
    with pytest.raises(AssertionError, match="nosuch is not registered"):
        metric.create("NoSuch")
    with pytest.raises(ValueError, match="Please register with metric.register first"):
        metric.create("nosuch")


def test_register_and_alias():
    @metric.register
    @metric.alias("my_metric_alias")
    class MyMetricForTest(metric.Accuracy):
        pass

    assert type(metric.create("mymetricfortest")) is MyMetricForTest
    assert type(metric.create("my_metric_alias")) is MyMetricForTest
    with pytest.raises(TypeError, match="Can only register subclass of EvalMetric"):
        metric.register(dict)


@pytest.mark.parametrize("m", [metric.Accuracy(axis=2, name="a2"),
                               metric.F1(average="micro"), metric.CrossEntropy(eps=1e-5),
                               metric.Perplexity(ignore_label=0, axis=1),
                               metric.PearsonCorrelation(average="micro")])
def test_get_config_recreates(m):
    config = m.get_config()
    assert config["metric"] == type(m).__name__ and config["name"] == m.name
    again = metric.create(config)
    assert type(again) is type(m) and again.get_config() == config
    assert metric.create(json.dumps(config)).get_config() == config


def test_composite_config_and_custom_config():
    comp = metric.CompositeEvalMetric(["acc", "mae"])
    assert [c["metric"] for c in comp.get_config()["metrics"]] == ["Accuracy", "MAE"]
    assert metric.Accuracy().get_config() == {"axis": 1, "metric": "Accuracy",
                                              "name": "accuracy", "output_names": None,
                                              "label_names": None}
    with pytest.raises(NotImplementedError, match="cannot be serialized"):
        metric.create(lambda l, p: 0).get_config()


# ---------------------------------------------------------------------- EvalMetric base

def test_local_and_global_statistics():
    m = metric.Accuracy()
    assert math.isnan(_value(m)) and math.isnan(m.get_global()[1])
    m.update([LABELS], [PREDS])                              # 3 of 4
    m.reset_local()
    m.update([np.array([0.0])], [np.array([[0.9, 0.1]])])   # 1 of 1
    assert m.get() == ("accuracy", 1.0)
    assert m.get_global() == ("accuracy", 0.8)
    assert m.get_name_value() == [("accuracy", 1.0)]
    assert m.get_global_name_value() == [("accuracy", 0.8)]
    assert str(m) == "EvalMetric: {'accuracy': 1.0}"
    m.reset()
    assert m.num_inst == m.global_num_inst == 0


def test_update_dict_selects_names():
    m = metric.Accuracy(output_names=["out"], label_names=["lab"])
    m.update_dict(OrderedDict(lab=LABELS, other=np.zeros(4)),
                  OrderedDict(skip=np.zeros((4, 2)), out=PREDS))
    assert _value(m) == 0.75
    with pytest.raises(KeyError, match="no output named 'out'"):
        m.update_dict({"lab": LABELS}, {"x": PREDS})
    comp = metric.CompositeEvalMetric(["acc"], output_names=["out"], label_names=["lab"])
    comp.update_dict({"lab": LABELS, "other": np.zeros(4)}, {"skip": np.zeros((4, 2)),
                                                            "out": PREDS})
    assert comp.get() == (["accuracy"], [0.75])


def test_check_label_shapes():
    labels, preds = metric.check_label_shapes(nd.zeros(3), nd.zeros((3, 2)), wrap=True)
    assert isinstance(labels, list) and isinstance(preds, list)
    with pytest.raises(ValueError, match="Shape of labels 2 does not match shape of "
                                         "predictions 3"):
        metric.check_label_shapes([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match=r"\(3,\) does not match shape of predictions \(3, 1\)"):
        metric.check_label_shapes(np.zeros(3), np.zeros((3, 1)), shape=True)


def test_ndarray_single_array_inputs():
    m = metric.Accuracy()
    m.update(nd.array(LABELS), nd.array(PREDS))  # single arrays are wrapped
    assert _value(m) == 0.75


# ---------------------------------------------------------------------- individual metrics

def test_accuracy_shapes_and_axis():
    m = metric.Accuracy()
    m.update([np.array([[1], [0]])], [np.array([[.2, .8], [.9, .1]])])  # (N,1) labels
    assert _value(m) == 1.0
    m = metric.Accuracy()
    m.update([np.array([1, 2, 3])], [np.array([1.2, 2.0, 0.0])])        # same shape: no argmax
    assert _value(m) == pytest.approx(2 / 3)
    m = metric.Accuracy(axis=0)
    m.update([np.array([1, 0])], [np.array([[.1, .9], [.9, .1]])])
    assert _value(m) == 1.0
    with pytest.raises(ValueError, match="does not match"):
        metric.Accuracy().update([np.zeros(3)], [np.zeros((2, 2))])


def test_topk():
    m = metric.TopKAccuracy(top_k=2)
    assert m.name == "top_k_accuracy_2"
    m.update([np.array([2, 0])], [np.array([[.1, .5, .4], [.2, .3, .5]])])
    assert _value(m) == 0.5 and m.get_global()[1] == 0.5
    with pytest.raises(AssertionError, match="Please use Accuracy"):
        metric.TopKAccuracy(top_k=1)
    with pytest.raises(ValueError, match="no more than 2 dims"):
        metric.TopKAccuracy(top_k=2).update([np.zeros(2)], [np.zeros((2, 2, 2))])


def test_f1_macro_is_per_call_and_micro_is_running():
    first = ([np.array([1, 1])], [np.array([[.2, .8], [.8, .2]])])  # tp 1 fn 1: f1 2/3
    second = ([np.array([0, 0])], [np.array([[.8, .2], [.8, .2]])])  # tn 2: f1 0
    macro, micro = metric.F1(), metric.F1(average="micro")
    for m in (macro, micro):
        m.update(*first)
        m.update(*second)
    assert _value(macro) == pytest.approx(1 / 3) and macro.num_inst == 2
    assert _value(micro) == pytest.approx(2 / 3) and micro.num_inst == 4
    assert micro.get_global()[1] == pytest.approx(2 / 3)
    assert micro.metrics.true_positives == 1 and micro.metrics.true_negatives == 2
    with pytest.raises(ValueError, match="F1 currently only supports binary"):
        metric.F1().update([np.array([0, 1, 2])], [np.zeros((3, 2))])
    with pytest.raises(ValueError, match="average must be 'macro' or 'micro'"):
        metric.F1(average="weighted")


def test_mcc_leaves_zero_factors_out():
    m = metric.MCC()
    m.update([np.array([1, 1])], [np.array([[.1, .9], [.1, .9]])])   # all tp: denominators 0
    assert _value(m) == 0.0
    with pytest.raises(ValueError, match="MCC currently only supports binary"):
        m.update([np.array([0, 1, 3])], [np.zeros((3, 2))])


def test_perplexity_clips_labels_and_takes_any_rank():
    m = metric.Perplexity(ignore_label=None)
    m.update([np.array([0, 5, -1])], [np.array([[.1, .2, .7], [.3, .3, .4], [.6, .2, .2]])])
    assert _value(m) == pytest.approx(3.466806453082441)  # mxnet 1.9.1 (metric-values)
    rows = np.random.RandomState(0).rand(2, 3, 4)
    rows /= rows.sum(axis=-1, keepdims=True)
    lab = np.array([[0, 1, 2], [3, 0, 1]])
    m3, m2 = metric.Perplexity(None), metric.Perplexity(None)
    m3.update([lab], [rows])
    m2.update([lab.ravel()], [rows.reshape(6, 4)])
    assert _value(m3) == pytest.approx(_value(m2))
    with pytest.raises(AssertionError, match=r"shape mismatch: \(2,\) vs. \(3, 4\)"):
        metric.Perplexity(None).update([np.zeros(2)], [np.zeros((3, 4))])
    with pytest.raises(ValueError, match="1 labels for 2 predictions"):
        metric.Perplexity(None).update([np.zeros(2)], [np.zeros((2, 2))] * 2)


def test_error_metrics_average_over_calls():
    label, pred = np.array([0.0, 0.0, 0.0, 4.0]), np.array([1.0, 1.0, 1.0, 1.0])
    whole, split = metric.MSE(), metric.MSE()
    whole.update([label], [pred])
    split.update([label[:2], label[2:]], [pred[:2], pred[2:]])
    assert _value(whole) == 3.0 and _value(split) == 3.0  # sum over slices / one call
    two_calls = metric.MSE()
    two_calls.update([label[:2]], [pred[:2]])
    two_calls.update([label[2:]], [pred[2:]])
    assert _value(two_calls) == 3.0 and two_calls.num_inst == 2
    rmse = metric.RMSE()
    rmse.update([label[:2]], [pred[:2]])
    rmse.update([label[2:]], [pred[2:]])
    assert _value(rmse) == pytest.approx((1.0 + math.sqrt(5.0)) / 2)  # mean of per-call RMSEs
    mae = metric.MAE()
    mae.update([label.reshape(4, 1)], [pred])
    assert _value(mae) == 1.5


def test_pearson_micro_global_is_the_correlation():
    m = metric.PearsonCorrelation(average="micro")
    m.update([np.array([1.0, 2.0, 3.0])], [np.array([1.0, 2.5, 2.9])])
    assert _value(m) == pytest.approx(0.9484206270843317)    # mxnet 1.9.1
    assert m.get_global()[1] == _value(m)                     # mxnet returns 0.0 (bug)
    with pytest.raises(ValueError, match="does not match"):
        m.update([np.zeros(3)], [np.zeros((3, 1))])


def test_pcc_grows_with_new_classes():
    m = metric.PCC()
    m.update([np.array([0, 1])], [np.array([0, 1])])
    m.update([np.array([2, 3, 3])], [np.array([2, 3, 1])])
    assert m.k == 4 and m.lcm.sum() == 5 and m.num_inst == 2
    cm = np.zeros((4, 4))
    np.add.at(cm, ([0, 1, 2, 3, 1], [0, 1, 2, 3, 3]), 1)
    assert _value(m) == pytest.approx(metric.PCC._calc_mcc(cm))


def test_loss_torch_caffe_ignore_labels():
    for cls, name in ((metric.Loss, "loss"), (metric.Torch, "torch"), (metric.Caffe, "caffe")):
        m = cls()
        m.update(None, nd.array([[1.0, 2.0], [3.0, 6.0]]))
        assert m.get() == (name, 3.0)


def test_custom_metric_and_np_decorator():
    seen = []

    def feval(label, pred):
        seen.append((type(label), type(pred)))
        pred[:] = -1          # must not leak into the caller's arrays
        return float(label.sum()), 2

    preds = nd.array([[1.0, 2.0]])
    m = metric.CustomMetric(feval)
    m.update([nd.array([3.0, 1.0])], [preds])
    assert m.get() == ("feval", 2.0) and seen == [(np.ndarray, np.ndarray)]
    assert preds.tolist() == [[1.0, 2.0]]
    extra = metric.CustomMetric(lambda l, p: 1.0, allow_extra_outputs=True)
    extra.update([np.zeros(1)], [np.zeros(1), np.zeros(1)])     # no length check
    assert extra.num_inst == 1
    with pytest.raises(ValueError, match="does not match"):
        metric.CustomMetric(lambda l, p: 1.0).update([np.zeros(1)], [np.zeros(1)] * 2)

    def rmse(label, pred):
        return np.sqrt(((label - pred) ** 2).mean())

    wrapped = metric.np(rmse)
    wrapped.update([np.array([0.0, 0.0])], [np.array([3.0, 4.0])])
    assert wrapped.get() == ("rmse", pytest.approx(math.sqrt(12.5)))
    with pytest.raises(TypeError, match="feval must be callable"):
        metric.CustomMetric(3)


def test_composite():
    comp = metric.CompositeEvalMetric()
    comp.add("acc")
    comp.add(metric.Loss())
    comp.update([LABELS], [PREDS])
    assert comp.get() == (["accuracy", "loss"], [0.75, 0.5])
    assert comp.get_name_value() == [("accuracy", 0.75), ("loss", 0.5)]
    assert comp.get_metric(1).name == "loss"
    with pytest.raises(ValueError, match="Metric index 5 is out of range 0 and 2"):
        comp.get_metric(5)
    comp.reset_local()
    assert comp.get_global()[1] == [0.75, 0.5] and math.isnan(comp.get()[1][0])
    comp.reset()
    assert all(math.isnan(v) for v in comp.get_global()[1])


def test_metrics_pickle():
    m = metric.F1(average="micro")
    m.update([LABELS], [PREDS])
    again = pickle.loads(pickle.dumps(m))
    assert again.get() == m.get()


# ---------------------------------------------------------------------- mergeable state

def _batches(kind):
    label, pred = _inputs(kind)
    return [([label[i:i + 3]], [pred[i:i + 3]]) for i in range(0, len(label) - 2, 3)]


MERGEABLE = [
    (metric.Accuracy, {}, "multi"), (metric.TopKAccuracy, {"top_k": 2}, "multi"),
    (metric.CrossEntropy, {}, "multi"), (metric.NegativeLogLikelihood, {}, "multi"),
    (metric.Perplexity, {"ignore_label": 1}, "multi"), (metric.Loss, {}, "multi"),
    (metric.PCC, {}, "multi"), (metric.F1, {}, "bin"), (metric.F1, {"average": "micro"}, "bin"),
    (metric.MCC, {}, "bin"), (metric.MCC, {"average": "micro"}, "bin"),
    (metric.MAE, {}, "reg"), (metric.MSE, {}, "reg"), (metric.RMSE, {}, "reg"),
    (metric.PearsonCorrelation, {}, "reg"),
    (metric.PearsonCorrelation, {"average": "micro"}, "reg"),
]


@pytest.mark.parametrize("cls,kwargs,kind", MERGEABLE,
                         ids=[f"{c.__name__}-{k}" for c, k, _ in MERGEABLE])
def test_merging_two_workers_equals_one(cls, kwargs, kind):
    batches = _batches(kind)
    single, left, right = cls(**kwargs), cls(**kwargs), cls(**kwargs)
    for i, (label, pred) in enumerate(batches):
        single.update(label, pred)
        (left if i % 2 == 0 else right).update(label, pred)
    state = right.get_state()
    json.dumps(state)                       # plain numbers only
    left.merge_state(state)
    assert left.get()[1] == pytest.approx(single.get()[1], rel=1e-9)
    assert left.get_global()[1] == pytest.approx(single.get_global()[1], rel=1e-9)
    assert left.num_inst == single.num_inst


def test_merge_into_a_fresh_driver_metric_keeps_local_and_global_apart():
    worker = metric.Accuracy()
    worker.update([LABELS], [PREDS])       # 3 of 4
    worker.reset_local()
    worker.update([LABELS[:1]], [PREDS[:1]])  # 1 of 1
    driver = metric.Accuracy()
    driver.merge_state(worker.get_state())
    assert driver.get() == ("accuracy", 1.0) and driver.get_global() == ("accuracy", 0.8)
    assert worker.get_state() == {"sum_metric": 1, "num_inst": 1, "global_sum_metric": 4,
                                  "global_num_inst": 5}


def test_composite_state_and_state_errors():
    a, b = metric.create(["acc", "loss"]), metric.create(["acc", "loss"])
    a.update([LABELS[:2]], [PREDS[:2]])
    b.update([LABELS[2:]], [PREDS[2:]])
    a.merge_state(b.get_state())
    assert a.get() == (["accuracy", "loss"], [0.75, 0.5])
    with pytest.raises(ValueError, match="2 child states"):
        a.merge_state({"metrics": [{}]})
    with pytest.raises(ValueError, match=r"expected keys .*false_negatives"):
        metric.F1().merge_state(metric.Accuracy().get_state())
    with pytest.raises(TypeError, match="expects a dict"):
        metric.Accuracy().merge_state([1, 2])
    assert set(metric.F1().get_state()) >= {"true_positives", "global_false_positives"}
