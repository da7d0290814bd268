"""BucketingModule (reference section 6), on both placements."""
import logging
import os
import shutil
import warnings

import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.io import DataBatch, DataDesc
from raymod.module.bucketing_module import BucketingModule

from .nets import IP, lstm_sym_gen, sentences, token_batch

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "mxnet")


def bound(default_key=10, batch_size=4, grad_req="write", **kwargs):
    mod = BucketingModule(lstm_sym_gen(), default_bucket_key=default_key,
                          **kwargs)
    mod.bind([("data", (batch_size, default_key))],
             [("softmax_label", (batch_size, default_key))], grad_req=grad_req)
    mod.init_params(rm.init.Xavier())
    return mod


def execs(mod, key):
    return mod._buckets[key]._exec_group.execs


def test_sym_gen_runs_in_a_fresh_name_scope_for_every_bucket():
    mod = bound()
    mod.switch_bucket(5, [("data", (4, 5))], [("softmax_label", (4, 5))])
    for key in (10, 5):
        assert mod._buckets[key].symbol.list_arguments()[1] == "embedding0_weight"


def test_a_bucket_with_parameters_the_default_lacks_is_refused():
    """An automatic name that differs per bucket (or a layer only some buckets have)
    would compute with a weight nobody initialised: refused, naming it."""
    def sym_gen(key):
        data = rm.sym.Variable("data")
        net = rm.sym.FullyConnected(data, num_hidden=3, name="fc")
        if key > 5:
            net = rm.sym.FullyConnected(net, num_hidden=3, name=f"extra{key}")
        return rm.sym.SoftmaxOutput(net, name="softmax"), ("data",), ("softmax_label",)

    mod = BucketingModule(sym_gen, default_bucket_key=5)
    mod.bind([("data", (4, 5))], [("softmax_label", (4,))])
    mod.init_params()
    with pytest.raises(ValueError, match=r"bucket 8: .* lacks: \['extra8_weight', "
                                         r"'extra8_bias'\]"):
        mod.switch_bucket(8, [("data", (4, 8))], [("softmax_label", (4,))])
    assert mod._curr_bucket_key == 5 and 8 not in mod._buckets


@pytest.mark.in_process_only("inspects the executors' own arrays and memory plan")
def test_switch_bucket_shares_parameter_and_gradient_buffers():
    mod = bound()
    mod.forward_backward(token_batch(5))
    big, small = execs(mod, 10)[0], execs(mod, 5)[0]
    for name in mod._buckets[10]._param_names:
        assert small.arg_dict[name] is big.arg_dict[name]
        assert small.grad_dict[name] is big.grad_dict[name]
    # a smaller bucket's inputs are views of the default bucket's buffers
    for name in ("data", "softmax_label"):
        assert small.arg_dict[name].shape == (4, 5)
        assert np.shares_memory(small.arg_dict[name], big.arg_dict[name])
    assert mod._curr_bucket_key == 5 and mod.data_shapes[0].shape == (4, 5)
    assert mod.get_outputs()[0].shape == (20, 12)


@pytest.mark.in_process_only("inspects the executors' own arrays and memory plan")
def test_bucket_memory_reports_what_each_bucket_adds():
    mod = bound(default_key=10)
    mod.switch_bucket(5, [("data", (4, 5))], [("softmax_label", (4, 5))])
    mem = mod.bucket_memory()
    plan_bytes = execs(mod, 5)[0]._plan.nbytes()
    assert mem[5] == plan_bytes                       # nothing but its intermediates
    params = sum(a.nbytes for a in mod.get_params()[0].values())
    assert mem[10] > 2 * params                       # weights + gradients live there
    del mod._buckets[5]                               # MXNet's test_module_switch_bucket
    mod.switch_bucket(5, [("data", (4, 5))], [("softmax_label", (4, 5))])
    assert mod.bucket_memory()[5] == mem[5]


@pytest.mark.in_process_only("inspects the executors' own arrays and memory plan")
def test_a_bucket_larger_than_the_default_reallocates_and_later_buckets_reuse_it(caplog):
    mod = bound(default_key=5)
    with caplog.at_level(logging.WARNING):
        mod.switch_bucket(12, [("data", (4, 12))], [("softmax_label", (4, 12))])
    assert "larger than already allocated shape" in caplog.text
    inputs = 2 * 4 * 12 * 4                           # data and label, float32
    assert mod.bucket_memory()[12] == execs(mod, 12)[0]._plan.nbytes() + inputs
    mod.switch_bucket(8, [("data", (4, 8))], [("softmax_label", (4, 8))])
    assert mod.bucket_memory()[8] == execs(mod, 8)[0]._plan.nbytes()
    assert np.shares_memory(execs(mod, 8)[0].arg_dict["data"], execs(mod, 12)[0].arg_dict["data"])
    assert execs(mod, 8)[0].arg_dict["embedding0_weight"] is \
        execs(mod, 5)[0].arg_dict["embedding0_weight"]


def grad_req_sym_gen(_):
    data = rm.sym.Variable("data")
    weight = rm.sym.Variable("a", shape=(1,), init=rm.init.One())
    return rm.sym.make_loss(rm.sym.broadcast_mul(data, weight)), ("data",), None


@pytest.mark.parametrize("grad_req,second", [("write", 1), ("add", 2)])
def test_grad_req_add_accumulates_across_buckets(grad_req, second):
    """MXNet's test_bucket_module_grad_req."""
    batch_size = 2
    mod = BucketingModule(grad_req_sym_gen, default_bucket_key=10)
    mod.bind(data_shapes=[["data", (batch_size,)]], for_training=True, grad_req=grad_req)
    mod.init_params()

    def batch(key):
        return DataBatch(data=[rm.nd.ones((batch_size,))], label=None, bucket_key=key,
                         provide_data=[DataDesc(name="data", shape=(batch_size,), layout="N")])

    mod.forward_backward(batch(10))
    assert float(mod._curr_module._exec_group.execs[0].grad_dict["a"][0]) == batch_size
    mod.forward_backward(batch(5))
    assert float(mod._curr_module._exec_group.execs[0].grad_dict["a"][0]) == second * batch_size


def test_a_new_bucket_without_provide_data_is_a_clear_error():
    mod = bound()
    batch = token_batch(5)
    batch.provide_data = None
    with pytest.raises(ValueError, match="bucket 5 is not bound yet"):
        mod.forward(batch)
    mod.forward(token_batch(5))
    batch.provide_data = None                       # a known bucket needs no shapes
    mod.forward(batch)


def test_state_errors_and_arguments():
    with pytest.raises(ValueError, match="default_bucket_key"):
        BucketingModule(lstm_sym_gen())
    with pytest.raises(ValueError, match="data_names"):
        BucketingModule(lambda k: (rm.sym.Variable("x") * 2, ("data",), None), 3)
    mod = BucketingModule(lstm_sym_gen(), default_bucket_key=10)
    assert mod.data_names == ("data",) and mod.output_names == ["softmax_output"]
    with pytest.raises(AssertionError):
        mod.switch_bucket(5, [("data", (4, 5))])
    mod.bind([("data", (4, 10))], [("softmax_label", (4, 10))])
    with pytest.raises(AssertionError, match="init_params"):   # MXNet: bare AssertionError
        mod.switch_bucket(5, [("data", (4, 5))], [("softmax_label", (4, 5))])
    with pytest.raises(ValueError, match="shared_module"):
        mod.bind([("data", (4, 10))], shared_module=mod)


def test_init_params_twice_is_silent_and_set_params_warns():
    mod = bound()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mod.init_params()                                        # Q14: no warning
    arg, aux = mod.get_params()
    with pytest.warns(UserWarning, match="set_params call ignored"):
        mod.set_params(arg, aux, allow_missing=True, force_init=False)


def test_params_round_trip_through_every_bucket():
    mod = bound()
    mod.switch_bucket(5, [("data", (4, 5))], [("softmax_label", (4, 5))])
    arg, _ = mod.get_params()
    new = {k: np.full_like(v, 0.25) for k, v in arg.items()}
    mod.set_params(new, {})
    for key in (10, 5):
        np.testing.assert_array_equal(execs(mod, key)[0].arg_dict["pred_weight"], 0.25)
    got, _ = mod.get_params()
    assert set(got) == set(new)


def test_one_optimizer_for_all_buckets_and_updates_reach_every_bucket():
    mod = bound()
    mod.switch_bucket(5, [("data", (4, 5))], [("softmax_label", (4, 5))])
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 1.0})
    mod.switch_bucket(7, [("data", (4, 7))], [("softmax_label", (4, 7))])
    opts = {id(m._optimizer) for m in mod._buckets.values()}
    assert len(opts) == 1 and all(m.optimizer_initialized for m in mod._buckets.values())
    before = mod.get_params()[0]["pred_weight"].copy()
    mod.forward_backward(token_batch(7))
    mod.update()
    after = mod.get_params()[0]["pred_weight"]
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(execs(mod, 10)[0].arg_dict["pred_weight"], after)


def test_force_rebind_keeps_parameter_values():
    mod = bound()
    mod.switch_bucket(5, [("data", (4, 5))], [("softmax_label", (4, 5))])
    arg = {k: v.copy() for k, v in mod.get_params()[0].items()}
    mod.bind([("data", (4, 10))], [("softmax_label", (4, 10))], force_rebind=True)
    assert list(mod._buckets) == [10]
    for k, v in mod.get_params()[0].items():
        np.testing.assert_array_equal(v, arg[k])


def state_sym_gen(_):
    data, state = rm.sym.Variable("data"), rm.sym.Variable("state")
    weight = rm.sym.Variable("a", shape=(1,), init=rm.init.One())
    return rm.sym.make_loss(rm.sym.broadcast_mul(data, weight) * state, name="out"), \
        ("data",), None


def test_inputs_need_grad_states_and_monitor_delegate_to_the_current_bucket():
    mod = BucketingModule(state_sym_gen, default_bucket_key=6, state_names=["state"])
    with pytest.raises(AssertionError):
        mod.install_monitor(rm.monitor.Monitor(1))
    mod.bind([("data", (6,))], inputs_need_grad=True)
    mod.init_params()

    def batch(key, n):
        return DataBatch([rm.nd.ones((n,))], None, bucket_key=key,
                         provide_data=[DataDesc("data", (n,))])

    mod.switch_bucket(3, [("data", (3,))])
    mod.set_states(value=2.0)
    (states,) = mod.get_states(merge_multi_context=False)
    np.testing.assert_array_equal(states[0], [2.0, 2.0, 2.0])
    mod.forward_backward(batch(3, 3))
    (grad,) = mod.get_input_grads()
    np.testing.assert_array_equal(grad, [2.0, 2.0, 2.0])      # d(x * a * s)/dx = a * s
    mon = rm.monitor.Monitor(1, pattern="out.*")
    mod.install_monitor(mon)
    mon.tic()
    mod.forward(batch(6, 6), is_train=False)
    assert any(name.startswith("out") for _, name, _ in mon.toc())


def fresh(sym_gen, key):
    """sym_gen's symbol with auto-names from 0, as BucketingModule calls it."""
    with rm.name.NameManager():
        return sym_gen(key)[0]


def keys_and_params(mod):
    arg, aux = mod.get_params()
    return list(mod._buckets), {k: v.copy() for k, v in arg.items()}, aux


def test_checkpoint_round_trip_in_mxnet_layout(tmp_path):
    mod = bound(default_key=30)
    for key in (10, 20):
        mod.switch_bucket(key, [("data", (4, key))], [("softmax_label", (4, key))])
    prefix = str(tmp_path / "bk")
    mod.save_checkpoint(prefix, 2)
    names = sorted(os.listdir(tmp_path))
    assert names == ["bk-0002.params", "bk-10-symbol.json", "bk-20-symbol.json",
                     "bk-30-symbol.json", "bk.buckets"]
    # MXNet wrote this file for keys [10, 20, 30]; ours for [30, 10, 20] differs only in order
    keys = list(rm.nd.load(prefix + ".buckets")[0].asnumpy().astype("int32"))
    assert keys == [30, 10, 20]
    with open(os.path.join(FIXTURES, "model.buckets"), "rb") as f:
        mxnet_bytes = f.read()
    rm.nd.save(str(tmp_path / "ours.buckets"), rm.nd.array([10, 20, 30], dtype="int32"))
    assert (tmp_path / "ours.buckets").read_bytes() == mxnet_bytes

    loaded = BucketingModule.load(prefix, 2, sym_gen=lstm_sym_gen(), default_bucket_key=30)
    assert list(loaded._buckets) == [30, 10, 20] and loaded.params_initialized
    loaded.bind([("data", (4, 30))], [("softmax_label", (4, 30))], for_training=False)
    _, arg, _ = keys_and_params(mod)
    for k, v in loaded.get_params()[0].items():
        np.testing.assert_array_equal(v, arg[k])
    for key in (30, 10):
        mod.forward(token_batch(key), is_train=False)
        loaded.forward(token_batch(key), is_train=False)
        np.testing.assert_allclose(loaded.get_outputs()[0], mod.get_outputs()[0], rtol=1e-6)


def test_load_reads_a_checkpoint_laid_out_by_mxnet(tmp_path):
    """prefix.buckets as MXNet wrote it, one symbol file per key, an arg:/aux: params file."""
    shutil.copy(os.path.join(FIXTURES, "model.buckets"), tmp_path / "model.buckets")
    gen = lstm_sym_gen()
    for key in (10, 20, 30):
        fresh(gen, key).save(str(tmp_path / f"model-{key}-symbol.json"))
    rng = np.random.default_rng(3)
    ref = BucketingModule(gen, 30)
    ref.bind([("data", (4, 30))], [("softmax_label", (4, 30))], for_training=False)
    ref.init_params()
    arg = {k: rng.uniform(-0.3, 0.3, v.shape).astype(np.float32)
           for k, v in ref.get_params()[0].items()}
    rm.model.save_checkpoint(str(tmp_path / "model"), 7, None, arg, {})
    mod = BucketingModule.load(str(tmp_path / "model"), 7, sym_gen=gen, default_bucket_key=30)
    assert list(mod._buckets) == [10, 20, 30]
    mod.bind([("data", (4, 30))], [("softmax_label", (4, 30))], for_training=False)
    mod.forward(token_batch(20), is_train=False)
    ref.set_params(arg, {})
    ref.forward(token_batch(20), is_train=False)
    np.testing.assert_allclose(mod.get_outputs()[0], ref.get_outputs()[0], rtol=1e-6)
    with pytest.raises(ValueError, match="not among the saved buckets"):
        BucketingModule.load(str(tmp_path / "model"), 7, sym_gen=gen, default_bucket_key=5)


def test_save_checkpoint_needs_buckets_and_integer_keys(tmp_path):
    mod = BucketingModule(lstm_sym_gen(), default_bucket_key=4)
    with pytest.raises(MXNetError, match="Empty BucketingModule"):
        mod.save_checkpoint(str(tmp_path / "x"), 0)
    mod = BucketingModule(lambda k: lstm_sym_gen()(int(k)), default_bucket_key="4")
    mod.bind([("data", (2, 4))], [("softmax_label", (2, 4))])
    mod.init_params()
    with pytest.raises(TypeError, match="integer bucket keys"):
        mod.save_checkpoint(str(tmp_path / "x"), 0)
    assert os.listdir(tmp_path) == []


def test_load_dict():
    gen = lstm_sym_gen()
    ref = bound(default_key=6)
    arg, aux = ref.get_params()
    mod = BucketingModule.load_dict({6: fresh(gen, 6), 3: fresh(gen, 3)}, sym_gen=gen,
                                    default_bucket_key=6, arg_params=arg, aux_params=aux)
    mod.bind([("data", (4, 6))], [("softmax_label", (4, 6))], for_training=False)
    mod.forward(token_batch(3), is_train=False)
    ref.forward(token_batch(3), is_train=False)
    np.testing.assert_allclose(mod.get_outputs()[0], ref.get_outputs()[0], rtol=1e-6)
    with pytest.raises(ValueError, match="arg_params"):
        BucketingModule.load_dict({6: fresh(gen, 6)}, sym_gen=gen, default_bucket_key=6)


def test_fit_score_predict_with_bucket_sentence_iter():
    rm.random.seed(0)
    train = rm.rnn.BucketSentenceIter(sentences(), batch_size=8, buckets=[4, 6, 9],
                                      invalid_label=0)
    mod = BucketingModule(lstm_sym_gen(), default_bucket_key=train.default_bucket_key)
    metric = rm.metric.Perplexity(ignore_label=0)
    mod.fit(train, eval_metric=metric, num_epoch=1, optimizer="adam",
            optimizer_params={"learning_rate": 0.05}, initializer=rm.init.Xavier())
    first = dict(mod.score(train, rm.metric.Perplexity(ignore_label=0)))["perplexity"]
    train.reset()
    mod.fit(train, eval_metric=metric, num_epoch=4, begin_epoch=1, optimizer="adam")
    last = dict(mod.score(train, rm.metric.Perplexity(ignore_label=0)))["perplexity"]
    assert sorted(mod._buckets) == [4, 6, 9]
    assert last < first * 0.8, (first, last)
    outputs = mod.predict(train, merge_batches=False)
    assert len(outputs) == len(train.idx)
    assert {o[0].shape[1] for o in outputs} == {12}
