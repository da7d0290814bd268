"""rm.rnn cells: MXNet's names (from MXNet's tests/python/unittest/test_rnn.py),
shapes, and the math against plain numpy recurrences."""
import json

import numpy as np
import pytest

import raymod as rm
import raymod.rnn  # noqa: F401  (until raymod/__init__ exports rm.rnn)
from raymod.base import MXNetError
from raymod.name import NameManager
from raymod.test_utils import assert_almost_equal, check_numeric_gradient

PARAM_NAMES = ['rnn_h2h_bias', 'rnn_h2h_weight', 'rnn_i2h_bias', 'rnn_i2h_weight']
STEP_OUTPUTS = ['rnn_t0_out_output', 'rnn_t1_out_output', 'rnn_t2_out_output']


def step_inputs(n):
    return [rm.sym.Variable('rnn_t%d_data' % i) for i in range(n)]


def three_step_shapes():
    return dict(rnn_t0_data=(10, 50), rnn_t1_data=(10, 50), rnn_t2_data=(10, 50))


# ----------------------------------------------------------------------------- numpy oracles

def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_rnn_step(x, h, p, prefix, act=np.tanh):
    return act(x @ p[prefix + 'i2h_weight'].T + p[prefix + 'i2h_bias']
               + h @ p[prefix + 'h2h_weight'].T + p[prefix + 'h2h_bias'])


def np_lstm_step(x, h, c, p, prefix):
    gates = (x @ p[prefix + 'i2h_weight'].T + p[prefix + 'i2h_bias']
             + h @ p[prefix + 'h2h_weight'].T + p[prefix + 'h2h_bias'])
    gi, gf, gc, go = np.split(gates, 4, axis=1)
    c_new = sigmoid(gf) * c + sigmoid(gi) * np.tanh(gc)
    h_new = sigmoid(go) * np.tanh(c_new)
    return h_new, c_new


def np_gru_step(x, h, p, prefix):
    xi = x @ p[prefix + 'i2h_weight'].T + p[prefix + 'i2h_bias']
    hh = h @ p[prefix + 'h2h_weight'].T + p[prefix + 'h2h_bias']
    xr, xz, xo = np.split(xi, 3, axis=1)
    hr, hz, ho = np.split(hh, 3, axis=1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    cand = np.tanh(xo + r * ho)
    return (1 - z) * cand + z * h


def random_params(sym, shapes, rng, scale=0.5):
    arg_shapes, _, _ = sym.infer_shape(**shapes)
    return {n: rng.uniform(-scale, scale, s)
            for n, s in zip(sym.list_arguments(), arg_shapes, strict=True)}


# ----------------------------------------------------------------------------- MXNet's names

@pytest.mark.parametrize("make_cell", [
    lambda: rm.rnn.RNNCell(100, prefix='rnn_'),
    lambda: rm.rnn.LSTMCell(100, prefix='rnn_', forget_bias=1.0),
    lambda: rm.rnn.GRUCell(100, prefix='rnn_'),
], ids=["rnn", "lstm", "gru"])
def test_cell_names_and_shapes_match_mxnet(make_cell):
    cell = make_cell()
    outputs, _ = cell.unroll(3, step_inputs(3))
    outputs = rm.sym.Group(outputs)
    assert sorted(cell.params._params.keys()) == PARAM_NAMES
    assert outputs.list_outputs() == STEP_OUTPUTS
    _, outs, _ = outputs.infer_shape(**three_step_shapes())
    assert outs == [(10, 100), (10, 100), (10, 100)]


def test_default_prefixes():
    for cls, prefix in [(rm.rnn.RNNCell, 'rnn_'), (rm.rnn.LSTMCell, 'lstm_'),
                        (rm.rnn.GRUCell, 'gru_')]:
        cell = cls(4)
        assert sorted(cell.params._params) == sorted(
            prefix + n for n in ['i2h_weight', 'i2h_bias', 'h2h_weight', 'h2h_bias'])


def test_lstm_step_node_names_are_mxnets():
    cell = rm.rnn.LSTMCell(8, prefix='lstm_')
    out, states = cell(rm.sym.Variable('x'), cell.begin_state())
    internals = out.get_internals().list_outputs()
    for part in ['i2h', 'h2h', 'slice_output0', 'slice_output3', 'i', 'f', 'c', 'o',
                 'state', 'out']:
        suffix = part if part.startswith('slice') else part + '_output'
        assert 'lstm_t0_' + suffix in internals
    assert out.name == 'lstm_t0_out'
    assert states[1].name == 'lstm_t0_state'
    out2, _ = cell(rm.sym.Variable('x1'), states)
    assert out2.name == 'lstm_t1_out'


def test_gru_step_node_names_are_mxnets():
    cell = rm.rnn.GRUCell(8, prefix='gru_')
    out, _ = cell(rm.sym.Variable('x'), cell.begin_state())
    internals = out.get_internals().list_outputs()
    for name in ['gru_t0__i2h_output', 'gru_t0__h2h_output', 'gru_t0__i2h_slice_output2',
                 'gru_t0__h2h_slice_output0', 'gru_t0__r_act_output', 'gru_t0__z_act_output',
                 'gru_t0__h_act_output', 'gru_t0_out_output']:
        assert name in internals


def test_lstm_i2h_bias_carries_lstmbias_init():
    cell = rm.rnn.LSTMCell(5, prefix='l_', forget_bias=1.0)
    attrs = cell.params.get('i2h_bias').list_attr()
    assert attrs['__init__'] == '["lstmbias", {"forget_bias": 1.0}]'
    cell2 = rm.rnn.LSTMCell(5, prefix='l2_', forget_bias=2.5)
    assert json.loads(cell2.params.get('i2h_bias').list_attr()['__init__']) == \
        ['lstmbias', {'forget_bias': 2.5}]
    assert '__init__' not in cell.params.get('h2h_bias').list_attr()


def test_lstm_forget_bias_initializes_forget_rows():
    # MXNet's test_lstm_forget_bias: the initializer reads the __init__ attribute.
    import raymod.initializer as init
    cell = rm.rnn.LSTMCell(3, prefix='l0_', forget_bias=2.0)
    desc = init.InitDesc('l0_i2h_bias', attrs=cell.params.get('i2h_bias').list_attr())
    arr = np.full((12,), 7.0, dtype=np.float32)
    init.Uniform()(desc, arr)
    assert_almost_equal(arr, np.hstack([np.zeros(3), 2.0 * np.ones(3), np.zeros(6)]))


def test_lstm_forget_bias_through_module():
    # MXNet's test_lstm_forget_bias, verbatim but for the names.
    from raymod.module import Module
    forget_bias = 2.0
    stack = rm.rnn.SequentialRNNCell()
    stack.add(rm.rnn.LSTMCell(100, forget_bias=forget_bias, prefix='l0_'))
    stack.add(rm.rnn.LSTMCell(100, forget_bias=forget_bias, prefix='l1_'))
    sym, _ = stack.unroll(1, rm.sym.Variable('data'), merge_outputs=True)
    mod = Module(sym, label_names=None, context=rm.cpu(0))
    mod.bind(data_shapes=[('data', (32, 1, 200))], label_shapes=None)
    mod.init_params()
    bias_argument = next(x for x in sym.list_arguments() if x.endswith('i2h_bias'))
    expected_bias = np.hstack([np.zeros((100,)), forget_bias * np.ones(100, ),
                               np.zeros((2 * 100,))])
    assert_almost_equal(mod.get_params()[0][bias_argument], expected_bias)


def test_stack_names_match_mxnet():
    cell = rm.rnn.SequentialRNNCell()
    for i in range(5):
        if i == 1:
            cell.add(rm.rnn.ResidualCell(rm.rnn.LSTMCell(100, prefix='rnn_stack%d_' % i)))
        else:
            cell.add(rm.rnn.LSTMCell(100, prefix='rnn_stack%d_' % i))
    outputs, _ = cell.unroll(3, step_inputs(3))
    outputs = rm.sym.Group(outputs)
    keys = sorted(cell.params._params.keys())
    for i in range(5):
        for n in ['h2h_weight', 'h2h_bias', 'i2h_weight', 'i2h_bias']:
            assert 'rnn_stack%d_%s' % (i, n) in keys
    assert outputs.list_outputs() == ['rnn_stack4_t0_out_output', 'rnn_stack4_t1_out_output',
                                      'rnn_stack4_t2_out_output']
    _, outs, _ = outputs.infer_shape(**three_step_shapes())
    assert outs == [(10, 100), (10, 100), (10, 100)]


def test_bidirectional_names_match_mxnet():
    cell = rm.rnn.BidirectionalCell(rm.rnn.LSTMCell(100, prefix='rnn_l0_'),
                                    rm.rnn.LSTMCell(100, prefix='rnn_r0_'),
                                    output_prefix='rnn_bi_')
    outputs, states = cell.unroll(3, step_inputs(3))
    outputs = rm.sym.Group(outputs)
    assert outputs.list_outputs() == ['rnn_bi_t0_output', 'rnn_bi_t1_output',
                                      'rnn_bi_t2_output']
    _, outs, _ = outputs.infer_shape(**three_step_shapes())
    assert outs == [(10, 200), (10, 200), (10, 200)]
    assert [len(s) for s in states] == [2, 2]     # [l_states, r_states], as MXNet


def test_residual_adds_input():
    # MXNet's test_residual: with zero weights the GRU output is 0, so out == input.
    cell = rm.rnn.ResidualCell(rm.rnn.GRUCell(50, prefix='rnn_'))
    outputs, _ = cell.unroll(2, step_inputs(2))
    outputs = rm.sym.Group(outputs)
    assert sorted(cell.params._params.keys()) == PARAM_NAMES
    _, outs, _ = outputs.infer_shape(rnn_t0_data=(10, 50), rnn_t1_data=(10, 50))
    assert outs == [(10, 50), (10, 50)]
    exe = outputs.simple_bind(rm.cpu(), grad_req='null', rnn_t0_data=(10, 50),
                              rnn_t1_data=(10, 50))
    exe.forward(rnn_t0_data=np.ones((10, 50)), rnn_t1_data=np.ones((10, 50)))
    for out in exe.outputs:
        assert np.array_equal(out, np.ones((10, 50)))


def test_residual_merged_outputs():
    cell = rm.rnn.ResidualCell(rm.rnn.RNNCell(4, prefix='rnn_'))
    data = rm.sym.Variable('data')
    out, _ = cell.unroll(3, data, merge_outputs=True)
    assert out.name.endswith('_plus_residual')
    rng = np.random.default_rng(3)
    params = random_params(out, {'data': (2, 3, 4)}, rng)
    exe = out.simple_bind(rm.cpu(), grad_req='null', data=(2, 3, 4))
    exe.forward(**params)
    x, p = params['data'], params
    h = np.zeros((2, 4))
    for t in range(3):
        h = np_rnn_step(x[:, t], h, p, 'rnn_')
        assert_almost_equal(exe.outputs[0][:, t], h + x[:, t], rtol=1e-5, atol=1e-6)


def test_residual_bidirectional():
    cell = rm.rnn.ResidualCell(rm.rnn.BidirectionalCell(rm.rnn.GRUCell(25, prefix='rnn_l_'),
                                                        rm.rnn.GRUCell(25, prefix='rnn_r_')))
    outputs, _ = cell.unroll(2, step_inputs(2), merge_outputs=False)
    outputs = rm.sym.Group(outputs)
    assert sorted(cell.params._params.keys()) == \
        ['rnn_l_h2h_bias', 'rnn_l_h2h_weight', 'rnn_l_i2h_bias', 'rnn_l_i2h_weight',
         'rnn_r_h2h_bias', 'rnn_r_h2h_weight', 'rnn_r_i2h_bias', 'rnn_r_i2h_weight']
    _, outs, _ = outputs.infer_shape(rnn_t0_data=(10, 50), rnn_t1_data=(10, 50))
    assert outs == [(10, 50), (10, 50)]
    exe = outputs.simple_bind(rm.cpu(), grad_req='null', rnn_t0_data=(10, 50),
                              rnn_t1_data=(10, 50))
    exe.forward(rnn_t0_data=np.ones((10, 50)) + 5, rnn_t1_data=np.ones((10, 50)) + 5)
    for out in exe.outputs:
        assert np.array_equal(out, np.ones((10, 50)) + 5)


def test_zoneout_shapes():
    cell = rm.rnn.ZoneoutCell(rm.rnn.RNNCell(100, prefix='rnn_'), zoneout_outputs=0.5,
                              zoneout_states=0.5)
    outputs, _ = cell.unroll(3, step_inputs(3))
    outputs = rm.sym.Group(outputs)
    _, outs, _ = outputs.infer_shape(**three_step_shapes())
    assert outs == [(10, 100), (10, 100), (10, 100)]


def test_zoneout_without_probabilities_is_the_base_cell():
    cell = rm.rnn.ZoneoutCell(rm.rnn.RNNCell(3, prefix='rnn_'))
    outputs, _ = cell.unroll(2, step_inputs(2))
    assert [o.name for o in outputs] == ['rnn_t0_out', 'rnn_t1_out']
    # unrolling again names the base cell's steps and states from 0 again
    outputs, _ = cell.unroll(2, step_inputs(2))
    assert [o.name for o in outputs] == ['rnn_t0_out', 'rnn_t1_out']


# ----------------------------------------------------------------------------- begin_state, unroll

def test_begin_state_names_counter_and_reset():
    cell = rm.rnn.LSTMCell(6, prefix='lstm_')
    states = cell.begin_state()
    assert [s.name for s in states] == ['lstm_begin_state_0', 'lstm_begin_state_1']
    assert states[0].list_attr()['__layout__'] == 'NC'
    assert [s.name for s in cell.begin_state()] == ['lstm_begin_state_2', 'lstm_begin_state_3']
    cell.reset()
    var_states = cell.begin_state(func=rm.sym.Variable)
    assert [s.name for s in var_states] == ['lstm_begin_state_0', 'lstm_begin_state_1']
    assert var_states[1].list_attr()['__shape__'] == '(0, 6)'
    assert var_states[1].list_attr()['__layout__'] == 'NC'


def test_sequential_begin_state_concatenates_children():
    stack = rm.rnn.SequentialRNNCell()
    stack.add(rm.rnn.LSTMCell(4, prefix='l0_'))
    stack.add(rm.rnn.GRUCell(4, prefix='l1_'))
    states = stack.begin_state(func=rm.sym.Variable)
    assert [s.name for s in states] == ['l0_begin_state_0', 'l0_begin_state_1',
                                        'l1_begin_state_0']
    assert len(stack.state_info) == 3
    assert stack.state_shape == [(0, 4), (0, 4), (0, 4)]


def test_unrolled_lstm_arguments_and_shapes():
    cell = rm.rnn.LSTMCell(7, prefix='lstm_')
    data = rm.sym.Variable('data')
    out, states = cell.unroll(4, data, begin_state=cell.begin_state(func=rm.sym.Variable),
                              merge_outputs=True)
    assert out.list_arguments() == ['data', 'lstm_i2h_weight', 'lstm_i2h_bias',
                                    'lstm_begin_state_0', 'lstm_h2h_weight',
                                    'lstm_h2h_bias', 'lstm_begin_state_1']
    arg_shapes, out_shapes, _ = out.infer_shape(data=(3, 4, 5))
    assert dict(zip(out.list_arguments(), arg_shapes, strict=True)) == {
        'data': (3, 4, 5), 'lstm_i2h_weight': (28, 5), 'lstm_i2h_bias': (28,),
        'lstm_begin_state_0': (3, 7), 'lstm_h2h_weight': (28, 7), 'lstm_h2h_bias': (28,),
        'lstm_begin_state_1': (3, 7)}
    assert out_shapes == [(3, 4, 7)]
    _, st_shapes, _ = rm.sym.Group(states).infer_shape(data=(3, 4, 5))
    assert st_shapes == [(3, 7), (3, 7)]


def test_unroll_single_symbol_splits_along_time():
    with NameManager():
        cell = rm.rnn.GRUCell(3, prefix='gru_')
        data = rm.sym.Variable('data')
        outs, _ = cell.unroll(2, data, layout='TNC')
        assert isinstance(outs, list) and len(outs) == 2
        internals = outs[0].get_internals().list_outputs()
        assert 'split0_output0' in internals
        _, shapes, _ = rm.sym.Group(outs).infer_shape(data=(2, 6, 5))
        assert shapes == [(6, 3), (6, 3)]


def test_unroll_merge_layouts():
    cell = rm.rnn.RNNCell(3, prefix='rnn_')
    data = rm.sym.Variable('data')
    out, _ = cell.unroll(5, data, layout='TNC', merge_outputs=True)
    assert out.infer_shape(data=(5, 2, 4))[1] == [(5, 2, 3)]
    out, _ = cell.unroll(5, data, layout='NTC', merge_outputs=True)
    assert out.infer_shape(data=(2, 5, 4))[1] == [(2, 5, 3)]
    outs, _ = cell.unroll(2, step_inputs(2), merge_outputs=False)
    assert isinstance(outs, list)


def test_params_shared_between_cells():
    params = rm.rnn.RNNParams('shared_')
    a = rm.rnn.RNNCell(4, prefix='a_', params=params)
    b = rm.rnn.RNNCell(4, prefix='b_', params=params)
    x = rm.sym.Variable('x')
    ha, _ = a(x, a.begin_state())
    hb, _ = b(ha, b.begin_state())
    assert hb.list_arguments() == ['x', 'shared_i2h_weight', 'shared_i2h_bias',
                                   'shared_h2h_weight', 'shared_h2h_bias']
    assert hb.name == 'b_t0_out'
    assert params.get('i2h_weight') is params._params['shared_i2h_weight']


def test_sequential_params_override_children():
    # As MXNet: a child whose params were handed out (every weighted cell hands
    # them to itself in its constructor) cannot take the stack's container.
    params = rm.rnn.RNNParams('seq_')
    stack = rm.rnn.SequentialRNNCell(params=params)
    stack.add(rm.rnn.DropoutCell(0.2, prefix='d0_'))
    assert stack.params is params
    with pytest.raises(MXNetError, match="Either specify params for SequentialRNNCell"):
        stack.add(rm.rnn.RNNCell(4, prefix='l1_'))
    assert len(stack._cells) == 1
    plain = rm.rnn.SequentialRNNCell()
    plain.add(rm.rnn.RNNCell(4, prefix='l0_'))
    assert sorted(plain.params._params) == ['l0_h2h_bias', 'l0_h2h_weight', 'l0_i2h_bias',
                                            'l0_i2h_weight']


def test_sequential_step_matches_unroll_names():
    stack = rm.rnn.SequentialRNNCell()
    stack.add(rm.rnn.RNNCell(4, prefix='l0_'))
    stack.add(rm.rnn.LSTMCell(4, prefix='l1_'))
    out, states = stack(rm.sym.Variable('x'), stack.begin_state())
    assert out.name == 'l1_t0_out'
    assert [s.name for s in states] == ['l0_t0_out', 'l1_t0_out', 'l1_t0_state']


def test_dropout_cell():
    cell = rm.rnn.DropoutCell(0.5, prefix='drop_')
    data = rm.sym.Variable('data')
    out, states = cell.unroll(3, data, merge_outputs=True)
    assert states == [] and out.infer_shape(data=(2, 3, 4))[1] == [(2, 3, 4)]
    exe = out.simple_bind(rm.cpu(), grad_req='null', data=(2, 3, 4))
    x = np.arange(24.0).reshape(2, 3, 4)
    exe.forward(is_train=False, data=x)
    assert_almost_equal(exe.outputs[0], x)        # inference: identity
    outs, _ = cell.unroll(2, step_inputs(2))
    assert len(outs) == 2
    with pytest.raises(ValueError, match="dropout probability must be in"):
        rm.rnn.DropoutCell(1.5)
    with pytest.raises(TypeError, match="dropout probability must be a number"):
        rm.rnn.DropoutCell('0.5')


# ----------------------------------------------------------------------------- bad input

def test_unroll_bad_inputs():
    cell = rm.rnn.RNNCell(4)
    with pytest.raises(ValueError, match="expected 3 input symbols"):
        cell.unroll(3, step_inputs(2))
    with pytest.raises(ValueError, match="grouped symbol"):
        cell.unroll(2, rm.sym.Group(step_inputs(2)))
    with pytest.raises(ValueError, match="deprecated"):
        cell.unroll(2, None)
    with pytest.raises(ValueError, match="length must be a positive int"):
        cell.unroll(0, step_inputs(1))
    with pytest.raises(ValueError, match="layout must be a string with a 'T' axis"):
        cell.unroll(2, rm.sym.Variable('d'), layout='NC')
    with pytest.raises(TypeError, match="input 1 must be a Symbol"):
        cell.unroll(2, [rm.sym.Variable('a'), 3])


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="LSTMCell: num_hidden must be a positive int"):
        rm.rnn.LSTMCell(0)
    with pytest.raises(ValueError, match="GRUCell: num_hidden must be a positive int"):
        rm.rnn.GRUCell(2.5)
    with pytest.raises(TypeError, match="forget_bias must be a number"):
        rm.rnn.LSTMCell(3, forget_bias='1')
    with pytest.raises(TypeError, match="params must be an RNNParams"):
        rm.rnn.RNNCell(3, params={})
    with pytest.raises(TypeError, match="cell must be an RNN cell"):
        rm.rnn.SequentialRNNCell().add('lstm')
    with pytest.raises(TypeError, match="activation must be a string or a callable"):
        cell = rm.rnn.RNNCell(3, activation=3)
        cell(rm.sym.Variable('x'), cell.begin_state())


def test_modified_base_cell_cannot_be_used_directly():
    base = rm.rnn.RNNCell(3, prefix='rnn_')
    cell = rm.rnn.ResidualCell(base)
    with pytest.raises(MXNetError, match="Call the modifier cell instead"):
        base.begin_state()
    states = cell.begin_state(func=rm.sym.Variable)
    assert [s.name for s in states] == ['rnn_begin_state_0']
    assert cell.params is base.params


def test_bidirectional_cannot_be_stepped():
    bi = rm.rnn.BidirectionalCell(rm.rnn.RNNCell(2, prefix='l_'), rm.rnn.RNNCell(2, prefix='r_'))
    with pytest.raises(NotImplementedError, match="Please use unroll"):
        bi(rm.sym.Variable('x'), bi.begin_state())
    with pytest.raises(MXNetError, match="doesn't support zoneout"):
        rm.rnn.ZoneoutCell(bi, zoneout_outputs=0.5)


# ----------------------------------------------------------------------------- weights

def test_unpack_pack_weights_round_trip():
    cell = rm.rnn.LSTMCell(3, prefix='lstm_')
    rng = np.random.default_rng(0)
    args = {'lstm_i2h_weight': rng.normal(size=(12, 5)), 'lstm_i2h_bias': rng.normal(size=12),
            'lstm_h2h_weight': rng.normal(size=(12, 3)), 'lstm_h2h_bias': rng.normal(size=12),
            'other': np.ones(2)}
    unpacked = cell.unpack_weights(args)
    assert sorted(unpacked) == sorted(
        ['other'] + ['lstm_%s_%s_%s' % (g, gate, k) for g in ('i2h', 'h2h')
                     for gate in 'ifco' for k in ('weight', 'bias')])
    assert_almost_equal(unpacked['lstm_i2h_f_weight'], args['lstm_i2h_weight'][3:6])
    assert_almost_equal(unpacked['lstm_h2h_o_bias'], args['lstm_h2h_bias'][9:12])
    packed = cell.pack_weights(unpacked)
    assert sorted(packed) == sorted(args)
    for k in args:
        assert_almost_equal(packed[k], args[k])
    assert 'lstm_i2h_weight' in args            # the input dict is left alone


def test_stack_unpack_weights_and_rnn_gates():
    stack = rm.rnn.SequentialRNNCell()
    stack.add(rm.rnn.GRUCell(2, prefix='g_'))
    stack.add(rm.rnn.RNNCell(2, prefix='r_'))
    args = {'g_i2h_weight': np.zeros((6, 3)), 'g_i2h_bias': np.zeros(6),
            'g_h2h_weight': np.zeros((6, 2)), 'g_h2h_bias': np.zeros(6),
            'r_i2h_weight': np.zeros((2, 2)), 'r_i2h_bias': np.zeros(2),
            'r_h2h_weight': np.zeros((2, 2)), 'r_h2h_bias': np.zeros(2)}
    unpacked = stack.unpack_weights(args)
    assert 'g_i2h_z_weight' in unpacked and 'r_i2h_weight' in unpacked   # RNN gate is ''
    assert sorted(stack.pack_weights(unpacked)) == sorted(args)
    with pytest.raises(ValueError, match="expected 6 rows"):
        stack.unpack_weights(dict(args, g_i2h_weight=np.zeros((4, 3))))


# ----------------------------------------------------------------------------- the math

def test_lstm_step_matches_numpy(ctx):
    cell = rm.rnn.LSTMCell(4, prefix='lstm_')
    x = rm.sym.Variable('x')
    h, (h2, c2) = cell(x, cell.begin_state(func=rm.sym.Variable))
    sym = rm.sym.Group([h, c2])
    shapes = {'x': (3, 5)}
    rng = np.random.default_rng(1)
    p = random_params(sym, shapes, rng)
    exe = sym.simple_bind(ctx, grad_req='null', **shapes)
    exe.forward(**p)
    h_ref, c_ref = np_lstm_step(p['x'], p['lstm_begin_state_0'], p['lstm_begin_state_1'],
                                p, 'lstm_')
    assert_almost_equal(exe.outputs[0], h_ref, rtol=1e-5, atol=1e-6)
    assert_almost_equal(exe.outputs[1], c_ref, rtol=1e-5, atol=1e-6)


def test_gru_and_rnn_unroll_match_numpy(ctx):
    rng = np.random.default_rng(2)
    for cell, step in [(rm.rnn.GRUCell(3, prefix='gru_'), np_gru_step),
                       (rm.rnn.RNNCell(3, activation='relu', prefix='rnn_'),
                        lambda x, h, p, pre: np_rnn_step(x, h, p, pre,
                                                         act=lambda v: np.maximum(v, 0)))]:
        data = rm.sym.Variable('data')
        out, _ = cell.unroll(3, data, merge_outputs=True)
        shapes = {'data': (2, 3, 4)}
        p = random_params(out, shapes, rng)
        exe = out.simple_bind(ctx, grad_req='null', **shapes)
        exe.forward(**p)
        h = np.zeros((2, 3))
        for t in range(3):
            h = step(p['data'][:, t], h, p, cell._prefix)
            assert_almost_equal(exe.outputs[0][:, t], h, rtol=1e-5, atol=1e-6)


def test_two_layer_lstm_binds_runs_forward_and_backward(ctx):
    stack = rm.rnn.SequentialRNNCell()
    stack.add(rm.rnn.LSTMCell(5, prefix='l0_'))
    stack.add(rm.rnn.LSTMCell(5, prefix='l1_'))
    data = rm.sym.Variable('data')
    out, states = stack.unroll(3, data, merge_outputs=True)
    assert len(states) == 4
    shapes = {'data': (2, 3, 4)}
    exe = out.simple_bind(ctx, grad_req='write', **shapes)
    assert sorted(exe.grad_dict) == sorted(out.list_arguments())
    rng = np.random.default_rng(4)
    p = random_params(out, shapes, rng)
    exe.forward(is_train=True, **p)
    h0 = c0 = h1 = c1 = np.zeros((2, 5))
    expected = []
    for t in range(3):
        h0, c0 = np_lstm_step(p['data'][:, t], h0, c0, p, 'l0_')
        h1, c1 = np_lstm_step(h0, h1, c1, p, 'l1_')
        expected.append(h1)
    assert_almost_equal(exe.outputs[0], np.stack(expected, axis=1), rtol=1e-5, atol=1e-6)
    exe.backward(out_grads=[ctx.xp.ones((2, 3, 5), dtype=np.float32)])
    for name in out.list_arguments():
        g = rm.context.to_numpy(exe.grad_dict[name])
        assert g.shape == p[name].shape and np.all(np.isfinite(g))
        assert np.abs(g).sum() > 0, name


@pytest.mark.parametrize("make_cell", [
    lambda: rm.rnn.LSTMCell(3, prefix='lstm_'),
    lambda: rm.rnn.GRUCell(3, prefix='gru_'),
    lambda: rm.rnn.RNNCell(3, prefix='rnn_'),
], ids=["lstm", "gru", "rnn"])
def test_unrolled_cell_numeric_gradient(make_cell, ctx):
    cell = make_cell()
    data = rm.sym.Variable('data')
    out, _ = cell.unroll(2, data, begin_state=cell.begin_state(func=rm.sym.Variable),
                         merge_outputs=True)
    shapes = {'data': (2, 2, 3)}
    p = random_params(out, shapes, np.random.default_rng(5))
    check_numeric_gradient(out, p, numeric_eps=1e-4, rtol=1e-4, atol=1e-6, ctx=ctx,
                           dtype=np.float64)


def test_bidirectional_matches_numpy(ctx):
    cell = rm.rnn.BidirectionalCell(rm.rnn.RNNCell(3, prefix='l_'),
                                    rm.rnn.GRUCell(2, prefix='r_'), output_prefix='bi_')
    outs, _ = cell.unroll(3, step_inputs(3))
    sym = rm.sym.Group(outs)
    shapes = {'rnn_t%d_data' % t: (2, 4) for t in range(3)}
    p = random_params(sym, shapes, np.random.default_rng(6))
    exe = sym.simple_bind(ctx, grad_req='null', **shapes)
    exe.forward(**p)
    xs = [p['rnn_t%d_data' % t] for t in range(3)]
    h, left = np.zeros((2, 3)), []
    for x in xs:
        h = np_rnn_step(x, h, p, 'l_')
        left.append(h)
    h, right = np.zeros((2, 2)), []
    for x in reversed(xs):
        h = np_gru_step(x, h, p, 'r_')
        right.append(h)
    right.reverse()
    for t in range(3):
        assert_almost_equal(exe.outputs[t], np.concatenate([left[t], right[t]], axis=1),
                            rtol=1e-5, atol=1e-6)


def test_bidirectional_merged_outputs():
    cell = rm.rnn.BidirectionalCell(rm.rnn.LSTMCell(4, prefix='l_'),
                                    rm.rnn.LSTMCell(4, prefix='r_'), output_prefix='bi_')
    out, _ = cell.unroll(3, rm.sym.Variable('data'), merge_outputs=True)
    assert out.name == 'bi_out'
    assert out.infer_shape(data=(2, 3, 5))[1] == [(2, 3, 8)]


def test_zoneout_keeps_new_or_previous_values(ctx):
    cell = rm.rnn.ZoneoutCell(rm.rnn.RNNCell(3, prefix='rnn_'), zoneout_outputs=0.5,
                              zoneout_states=0.5)
    outs, _ = cell.unroll(3, step_inputs(3))
    sym = rm.sym.Group(outs)
    shapes = {'rnn_t%d_data' % t: (20, 2) for t in range(3)}
    p = random_params(sym, shapes, np.random.default_rng(7))
    exe = sym.simple_bind(ctx, grad_req='null', **shapes)
    exe.forward(is_train=False, **p)              # inference: zoneout is off
    h = np.zeros((20, 3))
    for t in range(3):
        h = np_rnn_step(p['rnn_t%d_data' % t], h, p, 'rnn_')
        assert_almost_equal(exe.outputs[t], h, rtol=1e-5, atol=1e-6)
    exe.forward(is_train=True, **p)
    got = [rm.context.to_numpy(o) for o in exe.outputs]
    # step 0: each output element is the new value or the previous output, 0
    new0 = np_rnn_step(p['rnn_t0_data'], np.zeros((20, 3)), p, 'rnn_')
    assert np.all(np.isclose(got[0], new0, atol=1e-6) | (got[0] == 0))
    assert np.any(got[0] == 0) and np.any(got[0] != 0)
