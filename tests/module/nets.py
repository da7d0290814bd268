"""Small symbols and data shared by the Module tests."""
import numpy as np

import raymod as rm
import raymod.io  # noqa: F401  (rm.io)
import raymod.metric  # noqa: F401  (rm.metric)
import raymod.rnn  # noqa: F401  (rm.rnn)

CPU2 = [rm.cpu(0), rm.cpu(1)]


def mlp(num_hidden=8, num_classes=3):
    data = rm.sym.Variable("data")
    fc1 = rm.sym.FullyConnected(data, num_hidden=num_hidden, name="fc1")
    act = rm.sym.Activation(fc1, act_type="relu", name="relu1")
    fc2 = rm.sym.FullyConnected(act, num_hidden=num_classes, name="fc2")
    return rm.sym.SoftmaxOutput(fc2, name="softmax")


def step_by_step_net():
    """The classic step-by-step backprop network of MXNet's test_monitor/test_module_set_params."""
    x = rm.sym.Variable("data")
    x = rm.sym.FullyConnected(name="fc_0", data=x, num_hidden=2)
    x = rm.sym.Activation(name="act_0", data=x, act_type="sigmoid")
    x = rm.sym.FullyConnected(name="fc_1", data=x, num_hidden=2)
    x = rm.sym.Activation(name="act_1", data=x, act_type="sigmoid")
    return rm.sym.LinearRegressionOutput(data=x, name="softmax", grad_scale=2)


STEP_PARAMS = {
    "fc_0_weight": np.array([[.15, .20], [.25, .30]], np.float32),
    "fc_0_bias": np.array([.35, .35], np.float32),
    "fc_1_weight": np.array([[.40, .45], [.50, .55]], np.float32),
    "fc_1_bias": np.array([.60, .60], np.float32),
}
STEP_DATA = np.array([[0.05, .10]], np.float32)
STEP_LABEL = np.array([[.01, 0.99]], np.float32)


def classification_data(n=64, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    w = rng.standard_normal((features, classes))
    y = np.argmax(x @ w, axis=1).astype(np.float32)
    return x, y

