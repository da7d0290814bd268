"""FusedRNNCell and init.FusedRNN: MXNet's names and layout, equivalence with the
unfused cells, and MXNet 1.9.1 checkpoints (tests/fixtures/mxnet/make_rnn_fixtures.py)."""
import json
import os

import numpy as np
import pytest

import raymod as rm
from raymod.context import to_numpy
from raymod.io import DataBatch

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "mxnet")
CHECKPOINTS = {"fused_lstm": ("lstm", 2, False), "fused_gru": ("gru", 1, True)}
VOCAB, EMBED, HIDDEN, SEQ, BATCH = 12, 4, 5, 6, 3   # as make_rnn_fixtures.py


def _bind(sym, ctx, shapes, values=None, dtype=np.float64):
    exe = sym.simple_bind(ctx, type_dict={n: dtype for n in sym.list_arguments()}, **shapes)
    for name, value in (values or {}).items():
        exe.arg_dict[name][...] = ctx.xp.asarray(np.asarray(value, dtype=dtype))
    return exe


# --------------------------------------------------------------------------- graph

def test_unroll_graph_names_and_shapes():
    cell = rm.rnn.FusedRNNCell(5, num_layers=2, mode="lstm", bidirectional=True)
    outputs, states = cell.unroll(6, rm.sym.Variable("data"), layout="TNC",
                                  merge_outputs=True)
    assert states == []
    assert outputs.list_arguments() == ["data", "lstm_parameters"]
    args, outs, _ = outputs.infer_shape(data=(6, 3, 4))
    assert args == [(6, 3, 4), (2 * ((4 + 5 + 2) * 20 + (10 + 5 + 2) * 20),)]
    assert outs == [(6, 3, 10)]
    assert cell.state_info == [{"shape": (4, 0, 5), "__layout__": "LNC"}] * 2
    # unroll made begin states 0 and 1; the counter goes on, as MXNet's
    assert [s.name for s in cell.begin_state()] == ["lstm_begin_state_2",
                                                    "lstm_begin_state_3"]


def test_unroll_ntc_list_outputs_and_next_states():
    cell = rm.rnn.FusedRNNCell(3, mode="gru", get_next_state=True, prefix="g_")
    outputs, states = cell.unroll(4, rm.sym.Variable("data"), layout="NTC",
                                  merge_outputs=False)
    assert len(outputs) == 4
    assert len(states) == 1 and states[0].attr("__layout__") == "LNC"
    group = rm.sym.Group(list(outputs) + states)
    _, outs, _ = group.infer_shape(data=(2, 4, 7))
    assert outs == [(2, 3)] * 4 + [(1, 2, 3)]


def test_mxnet_checkpoint_symbol_is_what_raymod_builds():
    """The fixture's graph (written by MXNet) and raymod's agree on arguments, outputs,
    shapes and the parameters' `__init__` (MXNet's FusedRNN JSON)."""
    for prefix, (mode, layers, bidi) in CHECKPOINTS.items():
        theirs = rm.sym.load(os.path.join(FIXTURES, f"{prefix}-symbol.json"))
        cell = rm.rnn.FusedRNNCell(HIDDEN, num_layers=layers, mode=mode, bidirectional=bidi,
                                   prefix=f"{mode}_")
        embed = rm.sym.Embedding(rm.sym.Variable("data"), input_dim=VOCAB, output_dim=EMBED,
                                 name="embed")
        outputs, _ = cell.unroll(SEQ, inputs=embed, layout="NTC", merge_outputs=True)
        pred = rm.sym.FullyConnected(rm.sym.Reshape(outputs, shape=(-1, HIDDEN * (1 + bidi))),
                                     num_hidden=VOCAB, name="pred")
        ours = rm.sym.SoftmaxOutput(pred, rm.sym.Reshape(rm.sym.Variable("softmax_label"),
                                                         shape=(-1,)), name="softmax")
        assert ours.list_arguments() == theirs.list_arguments()
        assert ours.list_outputs() == theirs.list_outputs()
        shapes = dict(data=(BATCH, SEQ), softmax_label=(BATCH, SEQ))
        assert ours.infer_shape(**shapes) == theirs.infer_shape(**shapes)
        init = f"{mode}_parameters"
        assert ours.attr_dict()[init]["__init__"] == theirs.attr_dict()[init]["__init__"]
        assert json.loads(ours.attr_dict()[init]["__init__"])[0] == "fusedrnn"


# --------------------------------------------------------------------------- weights

@pytest.mark.parametrize("prefix", sorted(CHECKPOINTS))
def test_unpack_weights_matches_mxnet_and_pack_inverts_it(prefix):
    mode, layers, bidi = CHECKPOINTS[prefix]
    _, args, _ = rm.model.load_checkpoint(os.path.join(FIXTURES, prefix), 1)
    theirs = np.load(os.path.join(FIXTURES, f"{prefix}-io.npz"))
    cell = rm.rnn.FusedRNNCell(HIDDEN, num_layers=layers, mode=mode, bidirectional=bidi,
                               prefix=f"{mode}_")
    unpacked = cell.unpack_weights({f"{mode}_parameters": args[f"{mode}_parameters"],
                                    "other": 1})
    expected = {k[len("unpacked/"):]: theirs[k] for k in theirs.files
                if k.startswith("unpacked/")}
    assert sorted(unpacked) == sorted(expected) + ["other"]
    for name, value in expected.items():
        np.testing.assert_array_equal(to_numpy(unpacked[name]), value, err_msg=name)
    packed = cell.pack_weights(unpacked)
    assert sorted(packed) == [f"{mode}_parameters", "other"]
    assert isinstance(packed[f"{mode}_parameters"], rm.nd.NDArray)
    np.testing.assert_array_equal(to_numpy(packed[f"{mode}_parameters"]),
                                  to_numpy(args[f"{mode}_parameters"]))


def test_unpacked_pieces_are_copies():
    cell = rm.rnn.FusedRNNCell(2, mode="rnn_tanh", prefix="r_")
    flat = np.arange(rm.ops.rnn.rnn_param_size("rnn_tanh", 1, 3, 2), dtype=np.float32)
    pieces = cell.unpack_weights({"r_parameters": flat})
    pieces["r_l0_i2h_weight"][...] = -1
    assert flat.min() == 0
    assert pieces["r_l0_h2h_weight"].shape == (2, 2)


def test_pack_weights_errors():
    cell = rm.rnn.FusedRNNCell(2, mode="gru", prefix="g_")
    args = cell.unpack_weights({"g_parameters": np.zeros(rm.ops.rnn.rnn_param_size(
        "gru", 1, 3, 2), dtype=np.float32)})
    missing = dict(args)
    del missing["g_l0_h2h_z_weight"]
    with pytest.raises(KeyError, match="g_l0_h2h_z_weight"):
        cell.pack_weights(missing)
    bad = dict(args, g_l0_h2h_z_bias=np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"g_l0_h2h_z_bias: expected shape \(2,\), received "
                                         r"\(3,\)"):
        cell.pack_weights(bad)
    with pytest.raises(KeyError, match="g_parameters"):
        cell.unpack_weights({})


# --------------------------------------------------------------------------- equivalence

@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (2, True)])
def test_forward_and_gradients_equal_the_unfused_cells(ctx, rng, mode, layers, bidirectional):
    """Same weights (unpack, then the stack's pack): same outputs, states and gradients."""
    fused = rm.rnn.FusedRNNCell(4, num_layers=layers, mode=mode, bidirectional=bidirectional,
                                get_next_state=True, prefix="f_")
    stack = fused.unfuse()
    x = rm.sym.Variable("data")
    f_out, f_states = fused.unroll(5, x, layout="NTC", merge_outputs=True,
                                   begin_state=fused.begin_state(dtype="float64"))
    s_out, _ = stack.unroll(5, x, layout="NTC", merge_outputs=True,
                            begin_state=stack.begin_state(dtype="float64"))
    shapes = dict(data=(3, 5, 6))
    f_exe = _bind(rm.sym.Group([f_out] + f_states), ctx, shapes)
    n_params = f_exe.arg_dict["f_parameters"].shape[0]
    flat = rng.uniform(-0.5, 0.5, n_params)
    data = rng.normal(size=(3, 5, 6))
    f_exe = _bind(rm.sym.Group([f_out] + f_states), ctx, shapes,
                  {"f_parameters": flat, "data": data})
    per_cell = stack.pack_weights(fused.unpack_weights({"f_parameters": flat}))
    s_exe = _bind(s_out, ctx, shapes, dict(per_cell, data=data))
    f_y = f_exe.forward(is_train=True)
    s_y = s_exe.forward(is_train=True)
    np.testing.assert_allclose(to_numpy(f_y[0]), to_numpy(s_y[0]), rtol=1e-10, atol=1e-12)
    # the fused final states are the unfused last step (first step backwards)
    f_h = to_numpy(f_y[1])
    D = 2 if bidirectional else 1
    top = to_numpy(s_y[0])[:, :, :]
    np.testing.assert_allclose(f_h[(layers - 1) * D], top[:, -1, :4], rtol=1e-10)
    if bidirectional:
        np.testing.assert_allclose(f_h[-1], top[:, 0, 4:], rtol=1e-10)
    gy = rng.normal(size=f_y[0].shape)
    f_exe.backward([ctx.xp.asarray(gy)] + [ctx.xp.zeros(s.shape) for s in f_y[1:]])
    s_exe.backward([ctx.xp.asarray(gy)])
    np.testing.assert_allclose(to_numpy(f_exe.grad_dict["data"]),
                               to_numpy(s_exe.grad_dict["data"]), rtol=1e-9, atol=1e-12)
    grads = {n: to_numpy(g) for n, g in s_exe.grad_dict.items() if n != "data"}
    fused_grads = fused.unpack_weights({"f_parameters": to_numpy(f_exe.grad_dict["f_parameters"])})
    for name, value in stack.unpack_weights(grads).items():
        np.testing.assert_allclose(fused_grads[name], value, rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_unfuse_structure():
    stack = rm.rnn.FusedRNNCell(3, num_layers=3, mode="lstm", bidirectional=True, dropout=0.5,
                                prefix="x_").unfuse()
    kinds = [type(c).__name__ for c in stack._cells]
    assert kinds == ["BidirectionalCell", "DropoutCell", "BidirectionalCell", "DropoutCell",
                     "BidirectionalCell"]
    assert stack._cells[0]._cells[1]._prefix == "x_r0_"
    assert stack._cells[1]._prefix == "x__dropout0_"


def test_fused_cell_cannot_be_stepped_and_checks_arguments():
    cell = rm.rnn.FusedRNNCell(3)
    with pytest.raises(NotImplementedError, match="Please use unroll"):
        cell(rm.sym.Variable("x"), cell.begin_state())
    with pytest.raises(ValueError, match=r"mode must be one of.*received 'LSTM'"):
        rm.rnn.FusedRNNCell(3, mode="LSTM")
    with pytest.raises(ValueError, match=r"num_hidden must be a positive int, received 0"):
        rm.rnn.FusedRNNCell(0)
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
        rm.rnn.FusedRNNCell(3, dropout=1.0)


# --------------------------------------------------------------------------- initializer

def test_fused_rnn_initializer_fills_gate_by_gate():
    cell = rm.rnn.FusedRNNCell(4, num_layers=2, mode="lstm", forget_bias=2.5, prefix="l_")
    init_json = cell.unroll(3, rm.sym.Variable("data"), layout="TNC",
                            merge_outputs=True)[0].attr_dict()["l_parameters"]["__init__"]
    assert json.loads(init_json) == ["fusedrnn", {"init": None, "num_hidden": 4,
                                                  "num_layers": 2, "mode": "lstm",
                                                  "bidirectional": False,
                                                  "forget_bias": 2.5}]
    arr = np.full(rm.ops.rnn.rnn_param_size("lstm", 2, 3, 4), np.nan, dtype=np.float32)
    rm.random.seed(0)
    rm.init.Xavier()(rm.init.InitDesc("l_parameters", {"__init__": init_json}), arr)
    pieces = cell.unpack_weights({"l_parameters": arr})
    for name, value in pieces.items():
        if name.endswith("_f_bias"):
            np.testing.assert_array_equal(value, 2.5)       # i2h and h2h, as MXNet
        elif name.endswith("_bias"):
            np.testing.assert_array_equal(value, 0.0)
        else:
            fan_in, fan_out = value.shape[1], value.shape[0]
            bound = np.sqrt(3.0 / ((fan_in + fan_out) / 2.0))
            assert 0 < np.abs(value).max() <= bound, name   # Xavier per gate block


def test_fused_rnn_initializer_with_its_own_init():
    init = rm.init.FusedRNN(rm.init.Constant(0.25), 2, 1, "gru", bidirectional=True)
    assert rm.init.create(init.dumps()).dumps() == init.dumps()
    arr = np.zeros(rm.ops.rnn.rnn_param_size("gru", 1, 3, 2, True), dtype=np.float32)
    init(rm.init.InitDesc("p", {"__init__": init.dumps()}), arr)
    cell = rm.rnn.FusedRNNCell(2, mode="gru", bidirectional=True, prefix="")
    for name, value in cell.unpack_weights({"parameters": arr}).items():
        expected = 0.0 if name.endswith("_bias") else 0.25
        np.testing.assert_array_equal(value, expected, err_msg=name)
    with pytest.raises(ValueError, match="no global initializer"):
        rm.init.FusedRNN(None, 2, 1, "gru")._init_weight("p", arr)


# --------------------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("prefix", sorted(CHECKPOINTS))
def test_mxnet_checkpoint_forward_and_gradients(prefix):
    sym, args, aux = rm.model.load_checkpoint(os.path.join(FIXTURES, prefix), 1)
    io = np.load(os.path.join(FIXTURES, f"{prefix}-io.npz"))
    mod = rm.mod.Module(sym, context=rm.cpu())
    mod.bind(data_shapes=[("data", (BATCH, SEQ))],
             label_shapes=[("softmax_label", (BATCH, SEQ))])
    mod.set_params(args, aux)
    batch = DataBatch([io["data"]], [io["label"]])
    mod.forward(batch, is_train=False)
    np.testing.assert_allclose(mod.get_outputs()[0].asnumpy(), io["output"], rtol=1e-5,
                               atol=1e-6)
    mod.forward(batch, is_train=True)
    mod.backward()
    grads = {k[len("grad/"):]: io[k] for k in io.files if k.startswith("grad/")}
    got = _module_grads(mod, list(grads))
    for name, value in grads.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


def _module_grads(mod, names):
    """The gradient arrays of one device's executor, by name."""
    group = mod._exec_group
    return {n: to_numpy(g[0]) for n, g in zip(group.param_names, group.grad_arrays)
            if n in names}
