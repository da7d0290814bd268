"""Small networks and data shared by the composite-module tests."""
import numpy as np

import raymod as rm
from raymod.io import DataBatch, DataDesc

IP = "in_process"
VOCAB = 12
HIDDEN = 6


def lstm_sym_gen(vocab=VOCAB, hidden=HIDDEN, num_layers=2):
    """MXNet's bucketing LSTM language model (auto-named embedding, like test_module_switch_bucket)."""
    def sym_gen(seq_len):
        data = rm.sym.Variable("data")
        label = rm.sym.Variable("softmax_label")
        embed = rm.sym.Embedding(data=data, input_dim=vocab, output_dim=hidden)
        stack = rm.rnn.SequentialRNNCell()
        for i in range(num_layers):
            stack.add(rm.rnn.LSTMCell(num_hidden=hidden, prefix=f"lstm_l{i}_"))
        outputs, _ = stack.unroll(seq_len, inputs=embed, merge_outputs=True)
        pred = rm.sym.Reshape(outputs, shape=(-1, hidden))
        pred = rm.sym.FullyConnected(data=pred, num_hidden=vocab, name="pred")
        label = rm.sym.Reshape(label, shape=(-1,))
        pred = rm.sym.SoftmaxOutput(data=pred, label=label, name="softmax")
        return pred, ("data",), ("softmax_label",)
    return sym_gen


def token_batch(key, batch_size=4, vocab=VOCAB, seed=0):
    rng = np.random.default_rng(seed + key)
    data = rng.integers(0, vocab, (batch_size, key)).astype(np.float32)
    label = np.roll(data, -1, axis=1)
    return DataBatch([rm.nd.array(data)], [rm.nd.array(label)], pad=0, bucket_key=key,
                     provide_data=[DataDesc("data", data.shape)],
                     provide_label=[DataDesc("softmax_label", label.shape)])


def sentences(n=120, vocab=VOCAB, max_len=9, seed=0):
    """Sentences with structure (each token is the previous + 1), lengths 3..max_len."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        length = int(rng.integers(3, max_len + 1))
        start = int(rng.integers(1, vocab))
        out.append([(start + i) % (vocab - 1) + 1 for i in range(length)])
    return out


def stage_syms(hidden=6, classes=3):
    """Two halves of an MLP: fc1+relu, then fc2+softmax (data named 'data' in both)."""
    s1 = rm.sym.Activation(rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=hidden,
                                                 name="fc1"), act_type="relu", name="relu1")
    s2 = rm.sym.SoftmaxOutput(rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=classes,
                                                    name="fc2"), name="softmax")
    return s1, s2


def whole_sym(hidden=6, classes=3):
    """The same network as one symbol."""
    net = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=hidden, name="fc1")
    net = rm.sym.Activation(net, act_type="relu", name="relu1")
    net = rm.sym.FullyConnected(net, num_hidden=classes, name="fc2")
    return rm.sym.SoftmaxOutput(net, name="softmax")


def classification(n=48, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    w = rng.standard_normal((features, classes))
    y = np.argmax(x @ w, axis=1).astype(np.float32)
    return x, y


def seeded_params(shapes, seed=1):
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-0.5, 0.5, s).astype(np.float32) for k, s in sorted(shapes.items())}


def grads_of(module):
    """{param name: gradient summed over devices} of a bound Module (any placement)."""
    group = module._exec_group
    per_device = group.get_grads()
    return {n: sum(np.asarray(d[n], dtype=np.float64) for d in per_device)
            for n in per_device[0]}
