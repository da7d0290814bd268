"""BucketingModule and SequentialModule on Ray actors (the session's Ray)."""
import numpy as np
import pytest

import raymod as rm
from raymod.io import DataBatch
from raymod.module.bucketing_module import BucketingModule
from raymod.module.sequential_module import SequentialModule

from .nets import (IP, classification, grads_of, lstm_sym_gen, seeded_params, sentences,
                   stage_syms, whole_sym)

PARAM_SHAPES = {"fc1_weight": (6, 5), "fc1_bias": (6,), "fc2_weight": (3, 6), "fc2_bias": (3,)}


def ray_sequential(micro_batches):
    s1, s2 = stage_syms()
    m1 = rm.mod.Module(s1, label_names=None, context=rm.cpu(0), placement="ray")
    m2 = rm.mod.Module(s2, context=rm.cpu(0), placement="ray")
    seq = SequentialModule(micro_batches=micro_batches).add(m1)
    return seq.add(m2, take_labels=True, auto_wiring=True), m1, m2


class CallLog:
    """Records the calls a RayWorkerGroup submits and whether the driver waited."""

    def __init__(self, monkeypatch, group):
        self.calls, self.waits = [], 0
        workers = group._workers
        submit_one, wait = workers.submit_one, workers.wait

        def logged_submit(rank, method, *args, **kwargs):
            self.calls.append((method, args))
            return submit_one(rank, method, *args, **kwargs)

        def logged_wait(handles):
            self.waits += 1
            return wait(handles)

        monkeypatch.setattr(workers, "submit_one", logged_submit)
        monkeypatch.setattr(workers, "wait", logged_wait)


def test_sequential_on_ray_hands_activations_actor_to_actor(ray_session, monkeypatch):
    params = seeded_params(PARAM_SHAPES)
    seq, m1, m2 = ray_sequential(micro_batches=4)
    seq.bind([("data", (8, 5))], [("softmax_label", (8,))], inputs_need_grad=True)
    seq.init_params(arg_params=params)
    assert seq.chained
    assert set(m1._exec_group._workers.pids()).isdisjoint(m2._exec_group._workers.pids())
    x, y = classification(8)
    batch = DataBatch([rm.nd.array(x)], [rm.nd.array(y)], pad=0)
    seq.forward_backward(batch)            # binds the slot executors (blocking, once)
    first, second = CallLog(monkeypatch, m1._exec_group), CallLog(monkeypatch, m2._exec_group)
    seq.forward_backward(batch)
    assert first.waits == 0 and second.waits == 0            # the driver did not wait
    forwards = [args for method, args in second.calls if method == "chain_forward"]
    backwards = [args for method, args in first.calls if method == "chain_backward"]
    assert len(forwards) == 4 and len(backwards) == 4
    assert all(isinstance(args[1], ray_session.ObjectRef) for args in forwards)
    assert all(isinstance(args[1], ray_session.ObjectRef) for args in backwards)

    one = rm.mod.Module(whole_sym(), context=rm.cpu(0), placement=IP)
    one.bind([("data", (8, 5))], [("softmax_label", (8,))], inputs_need_grad=True)
    one.init_params(arg_params=params)
    one.forward_backward(batch)
    want = grads_of(one)
    for module in (m1, m2):
        for name, grad in grads_of(module).items():
            np.testing.assert_allclose(grad, want[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(seq.get_input_grads()[0], one.get_input_grads()[0],
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(seq.get_outputs()[0], one.get_outputs()[0], rtol=1e-5)


@pytest.mark.parametrize("micro_batches", [1, 2])
def test_sequential_fit_and_score_on_ray(ray_session, micro_batches):
    rm.random.seed(0)
    x, y = classification(96, seed=1)
    train = rm.io.NDArrayIter(x, y, batch_size=16, shuffle=True)
    seq, _, _ = ray_sequential(micro_batches)
    seq.fit(train, num_epoch=15, optimizer="sgd", initializer=rm.init.Xavier(),
            optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    ((_, acc),) = seq.score(rm.io.NDArrayIter(x, y, batch_size=16), "acc")
    assert acc > 0.95
    assert seq.predict(rm.io.NDArrayIter(x, y, batch_size=16)).shape == (96, 3)


def test_bucketing_on_ray_shares_weights_and_trains(ray_session):
    rm.random.seed(0)
    train = rm.rnn.BucketSentenceIter(sentences(), batch_size=8, buckets=[4, 6, 9],
                                      invalid_label=0)
    mod = BucketingModule(lstm_sym_gen(), default_bucket_key=train.default_bucket_key,
                          context=rm.cpu(0), placement="ray")
    mod.bind(train.provide_data, train.provide_label, grad_req="add")
    mod.init_params(rm.init.Xavier())
    batches = {}
    for batch in train:
        batches.setdefault(batch.bucket_key, batch)
    mod.forward_backward(batches[9])
    (g9,) = mod._buckets[9]._exec_group.get_grads()
    mod.forward_backward(batches[4])
    (both,) = mod._buckets[4]._exec_group.get_grads()
    (from_default,) = mod._buckets[9]._exec_group.get_grads()   # the very same buffers
    mod2 = BucketingModule(lstm_sym_gen(), default_bucket_key=9, placement=IP)
    mod2.bind(train.provide_data, train.provide_label)
    mod2.set_params(*mod.get_params())
    mod2.forward_backward(batches[4])
    (g4,) = mod2._buckets[4]._exec_group.get_grads()
    for name in g9:
        np.testing.assert_allclose(both[name], g9[name] + g4[name], rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(from_default[name], both[name])
    assert set(mod.bucket_memory()) == {9, 4}
    assert mod.bucket_memory()[4] < mod.bucket_memory()[9]

    mod.bind(train.provide_data, train.provide_label, force_rebind=True)
    metric = rm.metric.Perplexity(ignore_label=0)
    train.reset()
    before = dict(mod.score(train, rm.metric.Perplexity(ignore_label=0)))["perplexity"]
    train.reset()
    mod.fit(train, eval_metric=metric, num_epoch=3, optimizer="adam",
            optimizer_params={"learning_rate": 0.05})
    after = dict(mod.score(train, rm.metric.Perplexity(ignore_label=0)))["perplexity"]
    assert after < before * 0.8, (before, after)
    assert sorted(mod._buckets) == [4, 6, 9]
