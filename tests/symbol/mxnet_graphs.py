"""Graphs built the same way by MXNet 1.9.1 (`make_mxnet_json.py`) and by raymod (tests).

Each builder takes the symbol module (`mx.sym` or `rm.sym`) and the name
module (`mx.name` or `rm.name`) and returns a Symbol; the shapes in SHAPES
are what `infer_shape` is asked with. Every builder opens a fresh
NameManager so automatic names do not depend on what ran before.
"""


def arith(S, N):
    with N.NameManager():
        a, b = S.Variable("a"), S.Variable("b")
        return S.Group([a + b, a - b, a * b, a / b, a + 2, 2 + a, a - 2, 2 - a, a * 2.0,
                        a / 2, 2 / a, a ** 2, 2 ** a, a ** b, -a, (a * b) + 1])


def concat12(S, N):
    """More than 10 inputs: MXNet breaks an entry list over lines past 10 items."""
    with N.NameManager():
        xs = [S.Variable(f"x{i}") for i in range(12)]
        return S.Group(xs[:11] + [S.Concat(*xs, dim=1, name="cat")])


def attrs(S, N):
    with N.NameManager():
        v = S.Variable("v", shape=(2, 3), lr_mult=0.5, wd_mult=2, dtype="float16",
                       init='["zero", {}]', __layout__="NC")
        f = S.FullyConnected(v, num_hidden=4, name="f", lr_mult=0, __layout__="NC",
                             no_bias=True)
        return S.Group([f, S.BlockGrad(f, name="bg"), S.make_loss(f, name="ml"),
                        S.MakeLoss(f, name="ML")])


def var_head(S, N):
    with N.NameManager():
        data = S.Variable("data")
        return S.Group([S.LinearRegressionOutput(data, name="lro"), data])


def embed(S, N):
    with N.NameManager():
        data = S.Variable("data")
        e = S.Embedding(data, input_dim=10, output_dim=4, name="emb")
        r = S.Reshape(e, shape=(0, -1), name="r")
        return S.LeakyReLU(r, act_type="prelu", name="pr")


def scoped(S, N, AttrScope):
    """Auto names (per-hint counters, Prefix) and AttrScope attributes on every node."""
    with N.NameManager():
        data = S.Variable("data")
        with AttrScope(ctx_group="dev1", __mood__="calm"):
            h = S.FullyConnected(data, num_hidden=3)
            h = S.Activation(h, act_type="tanh")
        with N.Prefix("enc_"):
            h = S.FullyConnected(h, num_hidden=2)
            h = S.Activation(h, act_type="relu", name="act")
        h = S.FullyConnected(h, num_hidden=2)
        return S.SoftmaxOutput(h)


def bn_net(S, N):
    with N.NameManager():
        data = S.Variable("data")
        h = S.Convolution(data, kernel=(3, 3), num_filter=2, pad=(1, 1), name="conv")
        h = S.BatchNorm(h, name="bn", fix_gamma=False)
        h = S.Activation(h, act_type="relu", name="relu")
        h = S.Flatten(h, name="flat")
        return S.SoftmaxOutput(S.FullyConnected(h, num_hidden=3, name="fc"), name="sm")


# name -> (builder, infer_shape keyword shapes)
GRAPHS = {
    "arith": (arith, {"a": (2, 3)}),
    "concat12": (concat12, {f"x{i}": (2, i + 1) for i in range(12)}),
    "attrs": (attrs, {}),
    "var_head": (var_head, {"data": (4, 2)}),
    "embed": (embed, {"data": (2, 5)}),
    "scoped": (scoped, {"data": (5, 7)}),
    "bn_net": (bn_net, {"data": (2, 1, 4, 4)}),
}


def build(name, S, N, AttrScope):
    builder, _ = GRAPHS[name]
    if builder is scoped:
        return builder(S, N, AttrScope)
    return builder(S, N)
