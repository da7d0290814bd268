"""The fused RNN operator: gradients, MXNet 1.9.1's numbers, a loop reference, shapes, errors.

`rnn_op_cases.npz` was written by tests/fixtures/mxnet/make_rnn_fixtures.py
with mxnet==1.9.1 (CPU kernels): inputs, outputs, head gradients and input
gradients of a 2-layer bidirectional RNN per mode, in float64.
"""
import os

import numpy as np
import pytest

import raymod as rm
from raymod.base import MXNetError
from raymod.context import to_numpy
from raymod.ops.rnn import rnn_param_layout, rnn_param_size, split_parameters
from raymod.test_utils import check_symbolic_forward
from tests.ops.cases import GradCase, case_ids, run_grad_case

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "mxnet")
MODES = ("lstm", "gru", "rnn_tanh", "rnn_relu")
data = lambda: rm.sym.Variable("data")   # noqa: E731


def _rnn(**kw):
    return lambda: rm.sym.RNN(data(), name="rnn", **kw)


def _case(mode, layers, bidirectional, state_outputs, seq=3, batch=2, n_in=3, hidden=2):
    D = 2 if bidirectional else 1
    shapes = {"data": (seq, batch, n_in),
              "rnn_parameters": (rnn_param_size(mode, layers, n_in, hidden, bidirectional),),
              "rnn_state": (layers * D, batch, hidden)}
    if mode == "lstm":
        shapes["rnn_state_cell"] = (layers * D, batch, hidden)
    name = f"{mode}-L{layers}{'-bi' if bidirectional else ''}" \
        f"{'-states' if state_outputs else ''}"
    return GradCase("RNN", name, _rnn(mode=mode, state_size=hidden, num_layers=layers,
                                      bidirectional=bidirectional,
                                      state_outputs=state_outputs), shapes)


GRAD_CASES = [_case(mode, layers, bidi, states)
              for mode in MODES
              for layers, bidi, states in ((1, False, False), (2, True, True))] + [
    _case("lstm", 2, False, True), _case("lstm", 1, True, False),
    _case("gru", 2, False, False), _case("gru", 1, True, True),
    _case("rnn_tanh", 1, False, True, seq=1),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_gradient(case, ctx):
    run_grad_case(case, ctx)


# --------------------------------------------------------------------------- reference

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _step(mode, x, h, c, w):
    """One time step written from MXNet's documented formulas."""
    a = x @ w["wx"].T + w["bx"]
    r = h @ w["wh"].T + w["bh"]
    if mode == "lstm":
        i, f, g, o = np.split(a + r, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c
    if mode == "gru":
        (ar, az, an), (rr, rz, rn) = np.split(a, 3, axis=1), np.split(r, 3, axis=1)
        reset, update = _sigmoid(ar + rr), _sigmoid(az + rz)
        n = np.tanh(an + reset * rn)
        return (1 - update) * n + update * h, None
    pre = a + r
    return (np.tanh(pre) if mode == "rnn_tanh" else np.maximum(pre, 0)), None


def reference_rnn(mode, x, flat, h0, c0, layers, hidden, bidirectional, masks=()):
    """Loops over layers, directions and steps; masks[l] scales layer l's output."""
    D = 2 if bidirectional else 1
    weights = split_parameters(flat, mode, layers, x.shape[2], hidden, bidirectional)
    inp, hy, cy = x, [], []
    for layer in range(layers):
        outs = []
        for d in range(D):
            h = h0[layer * D + d]
            c = None if c0 is None else c0[layer * D + d]
            seq = [None] * x.shape[0]
            steps = range(x.shape[0] - 1, -1, -1) if d else range(x.shape[0])
            for t in steps:
                h, c = _step(mode, inp[t], h, c, weights[layer][d])
                seq[t] = h
            outs.append(np.stack(seq))
            hy.append(h)
            cy.append(c)
        inp = np.concatenate(outs, axis=2)
        if layer < len(masks):
            inp = inp * masks[layer]
    return inp, np.stack(hy), None if c0 is None else np.stack(cy)


def _values(sym, shapes, rng, scale=1.0):
    return {n: rng.uniform(-scale, scale, size=shapes[n]) for n in sym.list_arguments()}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (3, False), (2, True)])
def test_forward_matches_loop_reference(ctx, rng, mode, layers, bidirectional):
    hidden = 4
    sym = rm.sym.RNN(data(), mode=mode, state_size=hidden, num_layers=layers,
                     bidirectional=bidirectional, state_outputs=True, name="rnn")
    arg_shapes, _, _ = sym.infer_shape(data=(5, 3, 6))
    loc = _values(sym, dict(zip(sym.list_arguments(), arg_shapes)), rng)
    expected = reference_rnn(mode, loc["data"], loc["rnn_parameters"], loc["rnn_state"],
                             loc.get("rnn_state_cell"), layers, hidden, bidirectional)
    check_symbolic_forward(sym, loc, [e for e in expected if e is not None], rtol=1e-4,
                           atol=1e-5, ctx=ctx)


# --------------------------------------------------------------------------- MXNet 1.9.1

@pytest.mark.parametrize("mode", MODES)
def test_forward_and_backward_match_mxnet(ctx, mode):
    cases = np.load(os.path.join(FIXTURES, "rnn_op_cases.npz"))
    sym = rm.sym.RNN(data(), mode=mode, state_size=3, num_layers=2, bidirectional=True,
                     state_outputs=True, name="rnn")
    names = sym.list_arguments()
    loc = {n: cases[f"{mode}/in/{n}"] for n in names}
    exe = sym.simple_bind(ctx, type_dict={n: np.float64 for n in names},
                          **{n: v.shape for n, v in loc.items()})
    for name, value in loc.items():
        exe.arg_dict[name][...] = ctx.xp.asarray(value)
    outputs = exe.forward(is_train=True)
    exe.backward([ctx.xp.asarray(cases[f"{mode}/head/{i}"]) for i in range(len(outputs))])
    for i, out in enumerate(outputs):
        np.testing.assert_allclose(to_numpy(out), cases[f"{mode}/out/{i}"], rtol=1e-6,
                                   atol=1e-6, err_msg=f"output {i}")
    for name in names:
        np.testing.assert_allclose(to_numpy(exe.grad_dict[name]), cases[f"{mode}/grad/{name}"],
                                   rtol=1e-6, atol=1e-6, err_msg=name)


# --------------------------------------------------------------------------- dropout

def _rnn_step(exe):
    return next(s for s in exe._plan.steps if s.op.op_name == "RNN")


def test_dropout_masks_inner_layers_in_training_only(rng):
    sym = rm.sym.RNN(data(), mode="lstm", state_size=4, num_layers=3, p=0.4, name="rnn")
    arg_shapes, _, _ = sym.infer_shape(data=(4, 3, 5))
    loc = _values(sym, dict(zip(sym.list_arguments(), arg_shapes)), rng)
    exe = sym.simple_bind(rm.cpu(), type_dict={n: np.float64 for n in loc},
                          **{n: v.shape for n, v in loc.items()})
    for name, value in loc.items():
        exe.arg_dict[name][...] = value
    plain = reference_rnn("lstm", loc["data"], loc["rnn_parameters"], loc["rnn_state"],
                          loc["rnn_state_cell"], 3, 4, False)[0]
    np.testing.assert_allclose(to_numpy(exe.forward(is_train=False)[0]), plain, rtol=1e-10)
    y = to_numpy(exe.forward(is_train=True)[0])
    ws = _rnn_step(exe).ws
    masks = [to_numpy(ws.buffer(f"mask{i}", (4, 3, 4), np.float64)).copy() for i in range(2)]
    for mask in masks:
        assert set(np.unique(mask)) <= {0.0, 1 / 0.6}
        assert 0 < np.count_nonzero(mask) < mask.size
    expected = reference_rnn("lstm", loc["data"], loc["rnn_parameters"], loc["rnn_state"],
                             loc["rnn_state_cell"], 3, 4, False, masks)[0]
    np.testing.assert_allclose(y, expected, rtol=1e-10)
    # backward goes through the same masks: the data gradient against finite
    # differences of the reference with the masks held fixed
    gy = rng.normal(size=y.shape)
    exe.backward([gy])

    def objective(x):
        return np.sum(reference_rnn("lstm", x, loc["rnn_parameters"], loc["rnn_state"],
                                    loc["rnn_state_cell"], 3, 4, False, masks)[0] * gy)

    numeric = np.zeros_like(loc["data"])
    for idx in np.ndindex(numeric.shape):
        e = np.zeros_like(numeric)
        e[idx] = 1e-6
        numeric[idx] = (objective(loc["data"] + e) - objective(loc["data"] - e)) / 2e-6
    np.testing.assert_allclose(to_numpy(exe.grad_dict["data"]), numeric, rtol=1e-5,
                               atol=1e-8)


def test_steady_state_allocates_nothing(ctx, rng):
    sym = rm.sym.RNN(data(), mode="gru", state_size=4, num_layers=2, bidirectional=True,
                     p=0.2, name="rnn")
    exe = sym.simple_bind(ctx, data=(5, 3, 2))
    gy = ctx.xp.ones((5, 3, 8), dtype=np.float32)
    for _ in range(2):      # the first step sizes the executor's shared kept memory
        exe.forward(is_train=True)
        exe.backward([gy])
    ws = _rnn_step(exe).ws
    before = {k: id(v) for k, v in ws._buffers.items()}
    exe.forward(is_train=True, data=rng.normal(size=(5, 3, 2)).astype(np.float32))
    exe.backward([gy])
    assert {k: id(v) for k, v in ws._buffers.items()} == before


def test_inference_binds_keep_nothing_for_backward(rng):
    """Gates, cell states and inner outputs are kept only when backward will run."""
    sym = rm.sym.RNN(data(), mode="lstm", state_size=4, num_layers=2, name="rnn")
    x = rng.normal(size=(5, 3, 2)).astype(np.float32)
    kept = {}
    for req in ("null", "write"):
        exe = sym.simple_bind(rm.cpu(), data=x.shape, grad_req=req)
        exe.forward(is_train=False, data=x)
        kept[req] = sorted(_rnn_step(exe).ws._buffers)
    assert kept["null"] == []
    assert kept["write"] == ["c0", "c1", "gates0", "gates1", "out0", "tc0", "tc1"]


# --------------------------------------------------------------------------- shapes

def test_reference_shapes_and_names():
    """[verified] with mxnet 1.9.1: names, the flat length and state shapes."""
    for mode, size in (("lstm", 1200), ("gru", 900), ("rnn_tanh", 300)):
        sym = rm.sym.RNN(data(), state_size=5, num_layers=2, mode=mode, bidirectional=True,
                         state_outputs=True, name="r")
        args, outs, aux = sym.infer_shape(data=(4, 3, 6))
        names = ["data", "r_parameters", "r_state"] + (["r_state_cell"] if mode == "lstm"
                                                       else [])
        assert sym.list_arguments() == names
        assert args == [(4, 3, 6), (size,)] + [(4, 3, 5)] * (len(names) - 2)
        out_names = ["r_output", "r_state_output"] + (["r_statecell_output"]
                                                      if mode == "lstm" else [])
        assert sym.list_outputs() == out_names
        assert outs == [(4, 3, 10)] + [(4, 3, 5)] * (len(out_names) - 1)
        assert aux == []
    single = rm.sym.RNN(data(), state_size=5, num_layers=1, mode="lstm", name="r")
    assert single.list_outputs() == ["r_output"]


def test_partial_shapes_with_unknown_batch():
    """[verified] mxnet: data (4, 0, 6) gives parameters (260,) and states (1, 0, 5)."""
    sym = rm.sym.RNN(data(), state_size=5, num_layers=1, mode="lstm", name="r")
    args, outs, _ = sym.infer_shape_partial(data=(4, 0, 6))
    assert args[1] == (260,)
    assert args[2] == args[3] == (1, 0, 5)
    assert outs[0] == (4, 0, 5)


def test_begin_state_zeros_take_the_batch_from_data():
    states = [rm.sym.zeros(shape=(2, 0, 3), name=f"s{i}") for i in range(2)]
    sym = rm.sym.RNN(data(), state=states[0], state_cell=states[1], state_size=3,
                     num_layers=2, mode="lstm", name="r")
    args, outs, _ = sym.infer_shape(data=(7, 4, 2))
    assert sym.list_arguments() == ["data", "r_parameters"]
    assert outs == [(7, 4, 3)]


def test_layout_is_weights_then_biases():
    pieces = rnn_param_layout("gru", 2, 4, 3, bidirectional=True)
    kinds = [(layer, d, kind) for layer, d, kind, _, _ in pieces]
    assert kinds[:4] == [(0, 0, "wx"), (0, 0, "wh"), (0, 1, "wx"), (0, 1, "wh")]
    assert [k for _, _, k in kinds[8:]] == ["bx", "bh"] * 4
    assert pieces[4][4] == (9, 6)                  # layer 1 reads both directions
    last = pieces[-1]
    assert last[3] + 9 == rnn_param_size("gru", 2, 4, 3, bidirectional=True)


# --------------------------------------------------------------------------- errors

def test_data_must_be_3d():
    sym = rm.sym.RNN(data(), state_size=2, num_layers=1, mode="gru", name="rg")
    with pytest.raises(MXNetError, match=r"RNN 'rg': data: expected a 3-D shape.*received "
                                         r"\(4, 5\)"):
        sym.infer_shape(data=(4, 5))


def test_wrong_parameter_length():
    sym = rm.sym.RNN(data(), state_size=2, num_layers=1, mode="lstm", name="rl")
    with pytest.raises(MXNetError, match=r"'rl'.*parameters.*\(56,\).*\(50,\)"):
        sym.infer_shape(data=(4, 2, 3), rl_parameters=(50,))


def test_wrong_state_shape():
    sym = rm.sym.RNN(data(), state_size=2, num_layers=2, mode="rnn_tanh", name="rs")
    with pytest.raises(MXNetError, match=r"'rs'.*state.*\(2, 3, 2\).*\(1, 3, 2\)"):
        sym.infer_shape(data=(4, 3, 3), rs_state=(1, 3, 2))


@pytest.mark.parametrize("attrs,kind,pattern", [
    (dict(projection_size=2), NotImplementedError, "projection_size is not implemented"),
    (dict(lstm_state_clip_min=-1.0, lstm_state_clip_max=1.0), NotImplementedError,
     "lstm_state_clip_min"),
    (dict(use_sequence_length=True), NotImplementedError, "use_sequence_length"),
    (dict(p=1.0), ValueError, r"p \(dropout between layers\) must be in \[0, 1\)"),
    (dict(state_size=0), ValueError, "state_size must be >= 1"),
])
def test_bad_attributes(attrs, kind, pattern):
    kw = dict(state_size=2, num_layers=1, mode="lstm")
    kw.update(attrs)
    with pytest.raises(kind, match=pattern):
        rm.sym.RNN(data(), name="rb", **kw)


def test_unknown_mode():
    with pytest.raises(ValueError, match=r"mode.*expected one of.*'lstm'.*received 'rnn'"):
        rm.sym.RNN(data(), state_size=2, num_layers=1, mode="rnn", name="rm")
