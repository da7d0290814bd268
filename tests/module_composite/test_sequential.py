"""SequentialModule (reference section 7) and its micro-batch pipeline, in process."""
import logging

import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.io import DataBatch
from raymod.module.sequential_module import SequentialModule

from .nets import IP, classification, grads_of, seeded_params, stage_syms, whole_sym

CPU2 = [rm.cpu(0), rm.cpu(1)]


def two_stage(micro_batches=1, context=CPU2, context2=None, **kwargs):
    s1, s2 = stage_syms()
    m1 = rm.mod.Module(s1, label_names=None, context=context)
    m2 = rm.mod.Module(s2, context=context2 or context)
    seq = SequentialModule(micro_batches=micro_batches, **kwargs)
    return seq.add(m1).add(m2, take_labels=True, auto_wiring=True), m1, m2


PARAM_SHAPES = {"fc1_weight": (6, 5), "fc1_bias": (6,), "fc2_weight": (3, 6), "fc2_bias": (3,)}


def bound_pair(batch=8, micro_batches=1, grad_req="write", **kwargs):
    """A two-stage SequentialModule and the same network as one Module, same weights."""
    params = seeded_params(PARAM_SHAPES)
    seq, m1, m2 = two_stage(micro_batches, **kwargs)
    seq.bind([("data", (batch, 5))], [("softmax_label", (batch,))], inputs_need_grad=True,
             grad_req=grad_req)
    seq.init_params(arg_params=params)
    one = rm.mod.Module(whole_sym(), context=CPU2)
    one.bind([("data", (batch, 5))], [("softmax_label", (batch,))], inputs_need_grad=True,
             grad_req=grad_req)
    one.init_params(arg_params=params)
    return seq, one, (m1, m2)


def batch_of(n=8, seed=0):
    x, y = classification(n, seed=seed)
    return DataBatch([rm.nd.array(x)], [rm.nd.array(y)], pad=0)


def stage_grads(stages):
    out = {}
    for m in stages:
        out.update(grads_of(m))
    return out


def test_bind_wires_each_module_to_the_previous_outputs():
    seq, m1, m2 = two_stage()
    assert seq.add(rm.mod.Module(whole_sym())) is seq    # chainable
    seq._modules.pop(), seq._metas.pop()
    seq.bind([("data", (8, 5))], [("softmax_label", (8,))])
    assert m2.data_shapes[0].name == "data" and m2.data_shapes[0].shape == (8, 6)
    assert m1.label_shapes is None and m2.label_shapes[0].shape == (8,)
    assert seq.output_shapes == [("softmax_output", (8, 3))]
    assert seq.data_names == ["data"] and seq.output_names == ["softmax_output"]
    assert seq.label_shapes == [("softmax_label", (8,))]          # as given, like MXNet
    assert not m1.inputs_need_grad and m2.inputs_need_grad        # every non-first module
    assert seq.for_training and not seq.inputs_need_grad           # Q11: set by bind
    assert seq.chained


def test_without_auto_wiring_names_must_match():
    s1, s2 = stage_syms()
    seq = SequentialModule().add(rm.mod.Module(s1, label_names=None))
    seq.add(rm.mod.Module(s2), take_labels=True)
    with pytest.raises(ValueError, match="don't match names"):
        seq.bind([("data", (8, 5))], [("softmax_label", (8,))])


def test_add_checks_metas_and_resets_the_flags():
    seq, _, _ = two_stage()
    with pytest.raises(ValueError, match='Unknown meta "take_label", a typo?'):
        seq.add(rm.mod.Module(whole_sym()), take_label=True)
    seq.bind([("data", (8, 5))], [("softmax_label", (8,))])
    seq.init_params()
    seq.add(rm.mod.Module(whole_sym()))
    assert not (seq.binded or seq.params_initialized or seq.optimizer_initialized)
    with pytest.raises(MXNetError, match="empty"):
        SequentialModule().bind([("data", (8, 5))])
    with pytest.raises(ValueError, match="micro_batches"):
        SequentialModule(micro_batches=0)


def test_forward_backward_equals_the_same_network_in_one_module():
    seq, one, stages = bound_pair()
    batch = batch_of()
    seq.forward_backward(batch)
    one.forward_backward(batch)
    np.testing.assert_allclose(seq.get_outputs()[0], one.get_outputs()[0], rtol=1e-5)
    np.testing.assert_allclose(seq.get_input_grads()[0], one.get_input_grads()[0],
                               rtol=1e-5, atol=1e-7)
    want = grads_of(one)
    for name, grad in stage_grads(stages).items():
        np.testing.assert_allclose(grad, want[name], rtol=1e-5, atol=1e-7)


def test_chain_and_driver_paths_agree():
    """Stages on different device counts cannot chain: arrays go through the driver."""
    params = seeded_params(PARAM_SHAPES)
    results = []
    for context2 in (CPU2, [rm.cpu(0)]):
        seq, m1, m2 = two_stage(context2=context2)
        seq.bind([("data", (8, 5))], [("softmax_label", (8,))], inputs_need_grad=True)
        seq.init_params(arg_params=params)
        seq.forward_backward(batch_of())
        results.append((seq.chained, np.array(seq.get_input_grads()[0]),
                        stage_grads([m1, m2])))
    (chained, g_chain, p_chain), (driver, g_driver, p_driver) = results
    assert chained and not driver
    np.testing.assert_allclose(g_chain, g_driver, rtol=1e-5, atol=1e-7)
    for name in p_chain:
        np.testing.assert_allclose(p_chain[name], p_driver[name], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("batch,k", [(8, 2), (8, 4), (10, 3), (12, 5)])
def test_micro_batched_gradients_equal_whole_batch_gradients(batch, k):
    seq, one, stages = bound_pair(batch=batch, micro_batches=k)
    data = batch_of(batch)
    for _ in range(2):                    # the second batch zeroes the first's gradients
        seq.forward_backward(data)
    one.forward_backward(data)
    want = grads_of(one)
    for name, grad in stage_grads(stages).items():
        np.testing.assert_allclose(grad, want[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(seq.get_outputs()[0], one.get_outputs()[0], rtol=1e-5)
    np.testing.assert_allclose(seq.get_input_grads()[0], one.get_input_grads()[0],
                               rtol=1e-5, atol=1e-7)
    per_device = seq.get_outputs(merge_multi_context=False)
    assert len(per_device) == 1 and len(per_device[0]) == 2
    assert sum(a.shape[0] for a in per_device[0]) == batch


def test_micro_batches_with_grad_req_add_keep_accumulating():
    seq, one, stages = bound_pair(micro_batches=4, grad_req="add")
    data = batch_of()
    for _ in range(2):
        seq.forward_backward(data)
        one.forward_backward(data)
    want = grads_of(one)
    for name, grad in stage_grads(stages).items():
        np.testing.assert_allclose(grad, want[name], rtol=1e-5, atol=1e-6)


def test_micro_batched_metric_matches_the_whole_batch():
    seq, one, _ = bound_pair(micro_batches=4)
    data = batch_of()
    seq.forward_backward(data)
    one.forward_backward(data)
    got, want = rm.metric.create(["acc", "ce"]), rm.metric.create(["acc", "ce"])
    seq.update_metric(got, data.label)
    one.update_metric(want, data.label)
    for (n1, v1), (n2, v2) in zip(got.get_name_value(), want.get_name_value()):
        assert n1 == n2 and v1 == pytest.approx(v2, rel=1e-5)
    with pytest.raises(MXNetError, match="already computed"):
        seq.backward()


def test_micro_batches_need_chainable_stages():
    seq = SequentialModule(micro_batches=2)
    seq.add(rm.mod.Module(stage_syms()[0], label_names=None))
    seq.add(rm.mod.PythonLossModule(grad_func=lambda s, l: s), take_labels=True,
            auto_wiring=True)
    with pytest.raises(MXNetError, match="PythonLossModule, not a Module"):
        seq.bind([("data", (8, 5))], [("softmax_label", (8,))])
    seq, _, _ = two_stage(micro_batches=2, context2=[rm.cpu(0)])
    with pytest.raises(MXNetError, match="micro_batches=2 needs stages"):
        seq.bind([("data", (8, 5))], [("softmax_label", (8,))])
    seq, _, _ = two_stage(micro_batches=9)
    seq.bind([("data", (8, 5))], [("softmax_label", (8,))])
    seq.init_params()
    with pytest.raises(ValueError, match="more than the batch size"):
        seq.forward_backward(batch_of())
    seq._micro_batches = 8
    with pytest.raises(ValueError, match="micro-batches of 1 rows cannot be split over 2"):
        seq.forward_backward(batch_of())


def test_a_new_batch_size_reshapes_every_stage():
    seq, one, stages = bound_pair(micro_batches=2)
    data = batch_of(12, seed=3)
    seq.forward_backward(data)
    one.forward_backward(data)
    assert stages[1].data_shapes[0].shape == (12, 6)
    np.testing.assert_allclose(seq.get_outputs()[0], one.get_outputs()[0], rtol=1e-5)
    want = grads_of(one)
    for name, grad in stage_grads(stages).items():
        np.testing.assert_allclose(grad, want[name], rtol=1e-5, atol=1e-6)


def test_params_merge_and_duplicates_are_errors():
    seq, _, _ = two_stage()
    seq.bind([("data", (8, 5))], [("softmax_label", (8,))])
    seq.init_params()
    arg, aux = seq.get_params()
    assert sorted(arg) == sorted(PARAM_SHAPES) and aux == {}
    s1, _ = stage_syms()
    dup = SequentialModule().add(rm.mod.Module(s1, label_names=None))
    dup.add(rm.mod.Module(s1, label_names=None), auto_wiring=True)
    dup.bind([("data", (8, 6))], for_training=False)
    with pytest.raises(MXNetError, match='Duplicated parameter names: name "fc1_weight" in '
                                         'layer 1'):
        dup.init_params()


def test_init_twice_is_silent_and_optimizer_twice_warns(caplog):
    seq, _, _ = two_stage()
    seq.bind([("data", (8, 5))], [("softmax_label", (8,))])
    seq.init_params()
    seq.init_params()
    seq.init_optimizer()
    with caplog.at_level(logging.WARNING):
        seq.init_optimizer()
    assert "optimizer already initialized" in caplog.text


@pytest.mark.parametrize("micro_batches", [1, 4])
def test_fit_score_predict(micro_batches):
    rm.random.seed(0)
    x, y = classification(96, seed=1)
    train = rm.io.NDArrayIter(x, y, batch_size=16, shuffle=True)
    seq, _, _ = two_stage(micro_batches=micro_batches)
    seq.fit(train, num_epoch=15, optimizer="sgd", initializer=rm.init.Xavier(),
            optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    ((name, acc),) = seq.score(rm.io.NDArrayIter(x, y, batch_size=16), "acc")
    assert name == "accuracy" and acc > 0.95
    pred = seq.predict(rm.io.NDArrayIter(x, y, batch_size=16))
    assert pred.shape == (96, 3)
    assert np.mean(np.argmax(pred, axis=1) == y) == pytest.approx(acc)


def test_python_loss_module_as_the_last_stage():
    """The typical PythonLossModule use: gradients equal those of SoftmaxOutput."""
    def softmax_grad(scores, labels):
        scores = np.asarray(scores)
        p = np.exp(scores - scores.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(p)), np.asarray(labels).astype(int)] -= 1
        return p

    params = seeded_params(PARAM_SHAPES)
    fc = rm.sym.FullyConnected(rm.sym.Activation(rm.sym.FullyConnected(
        rm.sym.Variable("data"), num_hidden=6, name="fc1"), act_type="relu"), num_hidden=3,
        name="fc2")
    seq = SequentialModule().add(rm.mod.Module(fc, label_names=None, context=CPU2))
    loss = rm.mod.PythonLossModule(grad_func=softmax_grad)
    seq.add(loss, take_labels=True, auto_wiring=True)
    seq.bind([("data", (8, 5))], [("softmax_label", (8,))])
    seq.init_params(arg_params=params)
    assert not seq.chained
    _, one, _ = bound_pair()
    data = batch_of()
    seq.forward_backward(data)
    one.forward_backward(data)
    want = grads_of(one)
    for name, grad in grads_of(seq._modules[0]).items():
        np.testing.assert_allclose(grad, want[name], rtol=1e-5, atol=1e-6)
    assert loss.output_shapes == [("pyloss_output", (8, 3))]
    metric = rm.metric.create("acc")
    seq.update_metric(metric, data.label)
    assert metric.num_inst == 8
    with pytest.raises(ValueError, match="out_grads should be None"):
        loss.backward(out_grads=[np.zeros((8, 3))])
    with pytest.raises(ValueError, match="only support write"):
        rm.mod.PythonLossModule().bind([("data", (8, 3))], grad_req="add")
