"""The executor's memory plan: reuse, in place, what backward keeps, pools, the report.

Each behaviour is checked against the same executor bound with
plan_memory=False (every intermediate its own memory), which computes the
same numbers by construction.
"""
import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.executor import Executor

RNG = np.random.default_rng(0)


def _ptr(a):
    data = a.data
    return data.ptr if hasattr(data, "ptr") else a.__array_interface__["data"][0]


def same_memory(a, b):
    """Both arrays start at the same address (one block of the arena)."""
    return _ptr(a) == _ptr(b)


def bind(ctx, sym, grad_req="write", plan_memory=True, seed=0, **shapes):
    exe = Executor.simple_bind(sym, ctx, grad_req=grad_req, shapes=shapes, seed=seed,
                               plan_memory=plan_memory)
    rng = np.random.default_rng(seed)
    for name, arr in exe.arg_dict.items():
        arr[...] = ctx.xp.asarray(rng.uniform(-1, 1, arr.shape).astype(arr.dtype))
    return exe


def outputs_of(exe, name):
    """The output arrays of the step that computes node `name`."""
    return next(s.outs for s in exe._plan.steps if s.node.name == name)


def run(exe, head_grads=True, is_train=True):
    outs = [to_numpy(o).copy() for o in exe.forward(is_train=is_train)]
    if head_grads is not None:
        gy = [exe._xp.ones(o.shape, dtype=o.dtype) for o in outs] if head_grads else None
        exe.backward(gy)
    return outs, {n: to_numpy(g).copy() for n, g in exe.grad_dict.items()}


def assert_same_results(ctx, sym, grad_req="write", head_grads=True, is_train=True,
                        **shapes):
    planned = bind(ctx, sym, grad_req, **shapes)
    plain = bind(ctx, sym, grad_req, plan_memory=False, **shapes)
    got, want = run(planned, head_grads, is_train), run(plain, head_grads, is_train)
    for a, b in zip(got[0], want[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert got[1].keys() == want[1].keys()
    for name in got[1]:
        np.testing.assert_allclose(got[1][name], want[1][name], rtol=1e-6, atol=1e-7,
                                   err_msg=name)
    return planned


# --------------------------------------------------------------------------- reuse
def test_two_dead_intermediates_of_equal_size_share_memory(ctx):
    x = rm.sym.Variable("x")
    t1 = rm.sym.transpose(x, name="t1")        # (4, 3), dies when t2 is computed
    t2 = rm.sym.transpose(t1, name="t2")       # (3, 4)
    t3 = rm.sym.transpose(t2, name="t3")       # (4, 3): takes t1's memory
    out = rm.sym.transpose(t3, name="t4")
    exe = bind(ctx, out, grad_req="null", x=(3, 4))
    assert same_memory(outputs_of(exe, "t1")[0], outputs_of(exe, "t3")[0])
    assert not same_memory(outputs_of(exe, "t1")[0], outputs_of(exe, "t2")[0])
    plain = bind(ctx, out, grad_req="null", plan_memory=False, x=(3, 4))
    assert not same_memory(outputs_of(plain, "t1")[0], outputs_of(plain, "t3")[0])
    np.testing.assert_array_equal(to_numpy(exe.forward()[0]), to_numpy(plain.forward()[0]))
    report = exe.memory_report()
    assert report["arena"] < report["unplanned"]


def test_in_place_where_the_input_dies(ctx):
    fc = rm.sym.FullyConnected(rm.sym.Variable("x"), num_hidden=5, name="fc")
    act = rm.sym.Activation(fc, act_type="relu", name="act")
    out = rm.sym.FullyConnected(act, num_hidden=2, name="fc2")
    # relu's backward reads its output, not its input: in place in training too
    exe = assert_same_results(ctx, out, x=(4, 3))
    assert same_memory(outputs_of(exe, "fc")[0], outputs_of(exe, "act")[0])
    # softsign's backward reads its input: never in place while backward will run
    soft = rm.sym.FullyConnected(rm.sym.Activation(fc, act_type="softsign", name="act"),
                                 num_hidden=2, name="fc2")
    exe = assert_same_results(ctx, soft, x=(4, 3))
    assert not same_memory(outputs_of(exe, "fc")[0], outputs_of(exe, "act")[0])


def test_a_reshape_is_a_view_even_while_its_input_lives(ctx):
    a = rm.sym.Activation(rm.sym.Variable("x"), act_type="tanh", name="a")
    flat = rm.sym.Flatten(a, name="flat")
    out = rm.sym.Group([rm.sym.sum(flat, axis=1, name="s"), a * 2])
    exe = assert_same_results(ctx, out, x=(2, 3, 4))
    assert same_memory(outputs_of(exe, "a")[0], outputs_of(exe, "flat")[0])


def test_inference_binds_keep_nothing_for_backward(ctx):
    net = rm.sym.Variable("data")
    for i in range(3):
        net = rm.sym.FullyConnected(net, num_hidden=64, name=f"fc{i}")
        net = rm.sym.Activation(net, act_type="tanh", name=f"act{i}")
    net = rm.sym.SoftmaxOutput(rm.sym.FullyConnected(net, num_hidden=10, name="out"),
                               name="softmax")
    train = bind(ctx, net, data=(32, 100)).memory_report()
    infer = bind(ctx, net, grad_req="null", data=(32, 100)).memory_report()
    assert infer["saved"] == 0 and train["saved"] > 0
    # every intermediate dies at its consumer: two live at a time, plus the output
    assert infer["arena"] <= 2 * 32 * 64 * 4 + 32 * 10 * 4 * 2
    assert infer["arena"] < train["arena"]


def test_memory_report_adds_up(ctx):
    net = rm.sym.SoftmaxOutput(rm.sym.FullyConnected(
        rm.sym.Activation(rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=8,
                                                name="fc1"), act_type="relu"),
        num_hidden=3, name="fc2"), name="softmax")
    exe = bind(ctx, net, data=(5, 4))
    exe.forward(is_train=True)
    exe.backward()
    r = exe.memory_report()
    assert r["arguments"] == sum(a.nbytes for a in exe.arg_dict.values())
    assert r["gradients"] == sum(a.nbytes for a in exe.grad_dict.values())
    assert r["outputs"] == 5 * 3 * 4
    # backward reads fc1's input (data, a variable: not counted), relu's output, fc2's
    # input (relu's output again) and softmax's output (counted as an output)
    assert r["saved"] == 5 * 8 * 4
    assert r["peak_live"] <= r["arena"] <= r["unplanned"]
    assert r["pool"] == r["arena"] + r["scratch"] + r["kept"]
    assert r["total"] == r["arguments"] + r["aux_states"] + r["gradients"] + r["pool"] + \
        r["workspace"]


# --------------------------------------------------------------------------- subtle cases
def test_outputs_stay_valid_after_backward_also_when_used_inside(ctx):
    x = rm.sym.Variable("x")
    h = rm.sym.Activation(x * 3, act_type="sigmoid", name="h")     # an output, and used
    y = rm.sym.FullyConnected(h, num_hidden=4, name="fc")
    exe = bind(ctx, rm.sym.Group([h, y * y]), x=(3, 5))
    outs = [to_numpy(o).copy() for o in exe.forward(is_train=True)]
    exe.backward([exe._xp.ones(o.shape, dtype=o.dtype) for o in outs])
    for before, after in zip(outs, exe.outputs, strict=True):
        np.testing.assert_array_equal(before, to_numpy(after))
    assert_same_results(ctx, rm.sym.Group([h, y * y]), x=(3, 5))


def test_variables_used_twice_grad_req_add_and_block_grad(ctx):
    x, w = rm.sym.Variable("x"), rm.sym.Variable("w")
    a = rm.sym.broadcast_mul(x, w)
    b = rm.sym.Activation(a, act_type="tanh") + rm.sym.BlockGrad(a * x) + x * x
    sym = rm.sym.make_loss(rm.sym.sum(b * a))
    for req in ("write", "add"):
        planned = bind(ctx, sym, req, x=(3, 4), w=(1, 4))
        plain = bind(ctx, sym, req, plan_memory=False, x=(3, 4), w=(1, 4))
        for exe in (planned, plain):
            for g in exe.grad_dict.values():
                g[...] = 1.0                     # 'add' must keep this
            run(exe, head_grads=None)
            exe.backward()
        for name in planned.grad_dict:
            np.testing.assert_allclose(to_numpy(planned.grad_dict[name]),
                                       to_numpy(plain.grad_dict[name]), rtol=1e-6)


def test_aux_states_update_as_without_the_plan(ctx):
    net = rm.sym.BatchNorm(rm.sym.FullyConnected(rm.sym.Variable("x"), num_hidden=6,
                                                 name="fc"), fix_gamma=False, name="bn")
    net = rm.sym.Activation(net, act_type="relu") * 2
    planned, plain = bind(ctx, net, x=(8, 5)), bind(ctx, net, plan_memory=False, x=(8, 5))
    for exe in (planned, plain):
        run(exe)
    for name in planned.aux_dict:
        np.testing.assert_allclose(to_numpy(planned.aux_dict[name]),
                                   to_numpy(plain.aux_dict[name]), rtol=1e-6)


def test_inference_forward_of_a_training_bind_then_backward(ctx):
    net = rm.sym.BatchNorm(rm.sym.Variable("x"), fix_gamma=False, name="bn")
    net = rm.sym.Dropout(rm.sym.Activation(net, act_type="tanh"), p=0.5) * 3
    assert_same_results(ctx, net, is_train=False, x=(4, 3))
    assert_same_results(ctx, net, is_train=True, x=(4, 3))


def test_monitor_sees_every_value_before_its_memory_is_reused(ctx):
    x = rm.sym.Variable("x")
    net = x
    for i in range(4):
        net = rm.sym.transpose(rm.sym.Activation(net, act_type="tanh", name=f"a{i}"),
                               name=f"t{i}")
    seen = {}
    for plan in (True, False):
        exe = bind(ctx, net, plan_memory=plan, x=(3, 4))
        got = seen[plan] = {}
        exe.set_monitor_callback(lambda name, arr, got=got: got.setdefault(
            name, to_numpy(arr).copy()), monitor_all=True)
        run(exe)
    assert seen[True].keys() == seen[False].keys()
    for name in seen[False]:
        np.testing.assert_array_equal(seen[True][name], seen[False][name], err_msg=name)


def test_a_second_backward_needs_a_new_forward_when_the_plan_reused_memory(ctx):
    net = rm.sym.Variable("x")
    for i in range(3):
        net = rm.sym.FullyConnected(net, num_hidden=16, name=f"fc{i}")
        net = rm.sym.Activation(net, act_type="sigmoid", name=f"act{i}")
    exe = bind(ctx, net, x=(8, 16))
    gy = exe._xp.ones((8, 16), dtype=np.float32)
    exe.forward(is_train=True)
    exe.backward(gy)
    with pytest.raises(MXNetError, match="run forward again before this backward"):
        exe.backward(gy)
    exe.forward(is_train=True)
    exe.backward(gy)                                   # fine again
    plain = bind(ctx, net, plan_memory=False, x=(8, 16))
    plain.forward(is_train=True)
    plain.backward(gy)
    plain.backward(gy)


# --------------------------------------------------------------------------- pools
def _chain(width):
    net = rm.sym.Variable("data")
    for i in range(3):
        net = rm.sym.FullyConnected(net, num_hidden=width, name=f"fc{i}")
        net = rm.sym.Activation(net, act_type="tanh", name=f"act{i}")
    return rm.sym.SoftmaxOutput(rm.sym.FullyConnected(net, num_hidden=4, name="out"),
                                name="softmax")


def test_executors_sharing_memory_draw_from_one_pool_sized_by_the_largest(ctx):
    sym = _chain(32)
    big = bind(ctx, sym, data=(16, 8))
    small = Executor.simple_bind(sym, ctx, shapes={"data": (4, 8)}, shared_exec=big,
                                 share_memory=True)
    assert small._plan.pool is big._plan.pool
    assert big._plan.pool.arena.size == big.memory_report()["arena"]
    assert small.memory_report()["arena"] < big.memory_report()["arena"]
    assert small._plan.nbytes() == small._plan.workspace_bytes()      # nothing added
    reshaped = big.reshape(data=(2, 8), softmax_label=(2,))
    assert reshaped._plan.pool is big._plan.pool


def test_a_larger_plan_grows_the_pool_and_the_others_move_with_it(ctx):
    sym = _chain(32)
    small = bind(ctx, sym, data=(4, 8))
    small_out = to_numpy(small.forward(is_train=True)[0]).copy()
    big = small.reshape(allow_up_sizing=True, data=(16, 8), softmax_label=(16,))
    pool = small._plan.pool
    assert pool.arena.size == big.memory_report()["arena"]       # the larger, not the sum
    for s in small._plan.steps:                                  # moved to the new arena
        for a in s.outs:
            assert _ptr(pool.arena) <= _ptr(a) < _ptr(pool.arena) + pool.arena.size
    np.testing.assert_array_equal(to_numpy(small.forward(is_train=True)[0]), small_out)
    small.backward()
    big.forward(is_train=True)
    big.backward()


def test_what_forward_keeps_for_backward_is_one_pool_wide_buffer(ctx):
    """Dropout's mask lives in the pool's Keep: sized by the largest forward, not per node
    and bucket, found again by backward, and the steady state allocates nothing."""
    net = rm.sym.Dropout(rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=16,
                                               name="fc"), p=0.5, name="drop")
    net = rm.sym.Dropout(rm.sym.Activation(net, act_type="tanh"), p=0.3, name="drop2")
    big = bind(ctx, net, data=(8, 4))
    small = Executor.simple_bind(net, ctx, shapes={"data": (2, 4)}, shared_exec=big,
                                 share_memory=True, seed=0)
    keep = big._plan.pool.keep
    masks = 2 * 8 * 16 * 4
    for _ in range(2):
        run(big)
    assert keep.buf.size == masks
    buf = keep.buf
    for exe in (small, big, small):
        run(exe)
    assert keep.buf is buf                         # the smaller bucket fits
    for s in big._plan.steps:
        assert s.ws.nbytes() == 0                  # nothing kept per node
    got = run(big)                                 # big's 4th step
    plain = bind(ctx, net, plan_memory=False, data=(8, 4))
    for _ in range(3):
        run(plain)
    want = run(plain)                              # the same seed: the same 4th masks
    np.testing.assert_array_equal(got[0][0], want[0][0])
    np.testing.assert_allclose(got[1]["fc_weight"], want[1]["fc_weight"], rtol=1e-6)


def test_conv_nets_keep_nothing_of_activation_size_per_node(ctx):
    """Convolution and pooling temporaries are pool scratch, rebuilt when needed: a node's
    own memory stays at BatchNorm's per-channel statistics, training or not."""
    net = rm.sym.Variable("data")
    for i in range(2):
        net = rm.sym.Convolution(net, kernel=(3, 3), pad=(1, 1), num_filter=8, name=f"c{i}")
        net = rm.sym.BatchNorm(net, fix_gamma=False, name=f"bn{i}")
        net = rm.sym.Activation(net, act_type="relu", name=f"r{i}")
        net = rm.sym.Pooling(net, kernel=(2, 2), stride=(2, 2), pool_type="max",
                             name=f"p{i}")
    net = rm.sym.SoftmaxOutput(rm.sym.FullyConnected(net, num_hidden=3, name="fc"),
                               name="softmax")
    for req in ("write", "null"):
        exe = bind(ctx, net, grad_req=req, data=(4, 3, 16, 16))
        run(exe, head_grads=None if req == "null" else False,
            is_train=req == "write")
        for s in exe._plan.steps:
            assert s.ws.nbytes() <= 3 * 8 * 4, (s.node.name, s.ws.nbytes())
        assert exe.memory_report()["scratch"] > 0
