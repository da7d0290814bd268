"""Resuming a fit from a checkpoint continues exactly, on both placements.

Two half-runs (epochs 0-1, checkpoint with optimizer states, then
``Module.load(prefix, 2, load_optimizer_states=True)`` and
``fit(begin_epoch=2, arg_params=..., aux_params=...)``) must end with the
parameters of one whole run, bit for bit: the momentum or Adam moments, the
update counts (Adam's bias correction, the scheduler's position) and the
learning-rate schedule all carry over.
"""
import numpy as np
import pytest

import raymod as rm
from raymod import optimizer as opt
from raymod.io import NDArrayIter
from raymod.optimizer.state_io import dumps_states, loads_saved_states
from tests.parallel.conftest import ray_session  # noqa: F401  (the session's one Ray)

BATCH, SAMPLES, HALF, EPOCHS = 8, 32, 2, 4


def _net():
    data = rm.sym.Variable("data")
    fc1 = rm.sym.FullyConnected(data, num_hidden=6, name="fc1")
    bn = rm.sym.BatchNorm(fc1, name="bn1")       # aux states must resume too
    act = rm.sym.Activation(bn, act_type="relu", name="relu1")
    fc2 = rm.sym.FullyConnected(act, num_hidden=3, name="fc2")
    return rm.sym.SoftmaxOutput(fc2, name="softmax")


def _data():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((SAMPLES, 5)).astype(np.float32)
    y = np.argmax(x @ rng.standard_normal((5, 3)), axis=1).astype(np.float32)
    return NDArrayIter(x, y, batch_size=BATCH, shuffle=False)


def _initial_params():
    rng = np.random.default_rng(3)
    shapes = {"fc1_weight": (6, 5), "fc1_bias": (6,), "bn1_gamma": (6,), "bn1_beta": (6,),
              "fc2_weight": (3, 6), "fc2_bias": (3,)}
    args = {k: rm.nd.array(rng.uniform(-0.5, 0.5, s).astype(np.float32))
            for k, s in shapes.items()}
    aux = {"bn1_moving_mean": rm.nd.zeros((6,)), "bn1_moving_var": rm.nd.ones((6,))}
    return args, aux


# Each entry builds fresh optimizer settings (a scheduler is stateful): steps of 3
# updates, so the schedule changes inside each half and across the boundary.
OPTIMIZERS = {
    "sgd_momentum": lambda: ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-3,
                                     "lr_scheduler": rm.lr_scheduler.FactorScheduler(
                                         step=3, factor=0.7, base_lr=0.1)}),
    "adam": lambda: ("adam", {"learning_rate": 0.01, "wd": 1e-3,
                              "lr_scheduler": rm.lr_scheduler.MultiFactorScheduler(
                                  step=[3, 7, 11], factor=0.5, base_lr=0.01)}),
}
# (contexts, kvstore): one device (the worker's own Updater), two devices where
# the store runs the optimizer ('local') and where every device does ('device').
LAYOUTS = {"1dev": (1, "local"), "2dev_local": (2, "local"), "2dev_device": (2, "device")}


def _fit(mod, begin, end, optimizer, layout, **kwargs):
    name, params = OPTIMIZERS[optimizer]()
    mod.fit(_data(), num_epoch=end, begin_epoch=begin, optimizer=name,
            optimizer_params=params, kvstore=LAYOUTS[layout][1],
            eval_metric="acc", **kwargs)


def _module(placement, layout, **kwargs):
    contexts = [rm.cpu(i) for i in range(LAYOUTS[layout][0])]
    return rm.mod.Module(_net(), context=contexts, placement=placement, **kwargs)


# In-process every optimizer meets every layout. On Ray each module still starts
# its own actors (seconds each, three modules a case), so Ray runs one optimizer
# per layout: both optimizers, and states held by one worker, by the driver's
# store and by two workers.
CASES = ([("in_process", o, lay) for o in sorted(OPTIMIZERS) for lay in sorted(LAYOUTS)]
         + [("ray", "adam", "1dev"), ("ray", "sgd_momentum", "2dev_local"),
            ("ray", "adam", "2dev_device")])


@pytest.fixture
def placement(request):
    if request.param == "ray":
        request.getfixturevalue("ray_session")
    return request.param


@pytest.mark.filterwarnings("ignore:Parameters already initialized")  # MXNet's, after load
@pytest.mark.parametrize("placement,optimizer,layout", CASES, indirect=["placement"])
def test_two_half_runs_equal_one_whole_run(placement, optimizer, layout, tmp_path):
    args, aux = _initial_params()
    whole = _module(placement, layout)
    _fit(whole, 0, EPOCHS, optimizer, layout, arg_params=args, aux_params=aux)
    expected_args, expected_aux = whole.get_params()

    prefix = str(tmp_path / "run")
    first = _module(placement, layout)
    _fit(first, 0, HALF, optimizer, layout, arg_params=args, aux_params=aux,
         epoch_end_callback=rm.callback.module_checkpoint(first, prefix,
                                                          save_optimizer_states=True))
    del first     # the driver "dies": nothing of the first half survives but the files

    second = rm.mod.Module.load(prefix, HALF, load_optimizer_states=True,
                                context=[rm.cpu(i) for i in range(LAYOUTS[layout][0])],
                                placement=placement)
    loaded_args, loaded_aux = rm.model.load_params(prefix, HALF)
    _fit(second, HALF, EPOCHS, optimizer, layout, arg_params=loaded_args,
         aux_params=loaded_aux)
    got_args, got_aux = second.get_params()

    for name, want in {**expected_args, **expected_aux}.items():
        got = {**got_args, **got_aux}[name]
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=name)


# ------------------------------------------------------------ the Updater underneath
def _adam():
    return opt.create("adam", learning_rate=0.05, lr_scheduler=rm.lr_scheduler.FactorScheduler(
        step=2, factor=0.5, base_lr=0.05))


def _steps(updater, weight, seeds):
    for seed in seeds:
        grad = np.random.default_rng(seed).standard_normal(weight.shape).astype(np.float32)
        updater("w", grad, weight)


def test_states_without_the_optimizer_carry_the_update_counts():
    """A fresh optimizer loading states-only bytes continues Adam's t and the schedule."""
    start = rm.nd.array(np.linspace(-1, 1, 6, dtype=np.float32))
    whole = opt.get_updater(_adam())
    w_whole = start.copy()
    _steps(whole, w_whole, range(6))

    first = opt.get_updater(_adam())
    w = start.copy()
    _steps(first, w, range(3))
    blob = first.get_states()              # dump_optimizer=False: MXNet's default
    assert loads_saved_states(blob).progress == {"num_update": 3,
                                                 "index_update_counts": {"w": 3}}
    resumed = opt.get_updater(_adam())
    resumed.set_states(blob)
    assert resumed.optimizer.num_update == 3
    assert resumed.optimizer.learning_rate == first.optimizer.learning_rate
    _steps(resumed, w, range(3, 6))
    np.testing.assert_array_equal(w, w_whole)


def test_loaded_counts_follow_the_index_to_another_device():
    """Counts saved on cpu(0) apply where the index is next updated (a worker on cpu(1))."""
    first = opt.get_updater(_adam())
    _steps(first, rm.nd.array(np.ones(4, np.float32), ctx=rm.cpu(0)), range(2))
    resumed = opt.get_updater(_adam())
    resumed.set_states(first.get_states())
    _steps(resumed, rm.nd.array(np.ones(4, np.float32), ctx=rm.cpu(1)), [9])
    assert resumed.optimizer._all_index_update_counts[1] == {"w": 3}
    assert resumed.optimizer.num_update == 3


def test_loading_replaces_counts_of_a_used_optimizer():
    """Counts the loading optimizer had already are the saved ones afterwards."""
    saved = opt.get_updater(_adam())
    _steps(saved, np.ones(3, np.float32), range(2))
    used = opt.get_updater(_adam())
    _steps(used, np.ones(3, np.float32), range(5))
    used("other", np.ones(2, np.float32), np.ones(2, np.float32))
    used.set_states(saved.get_states())
    assert used.optimizer._all_index_update_counts == {0: {"w": 2}}
    assert used.optimizer.num_update == 2


def test_states_written_before_counts_existed_still_load():
    old_blob = dumps_states({"w": (np.zeros(3, np.float32), np.zeros(3, np.float32))})
    assert loads_saved_states(old_blob).progress is None
    u = opt.get_updater(_adam())
    _steps(u, np.ones(3, np.float32), range(2))
    u.set_states(old_blob)
    assert u.optimizer.num_update == 2                   # nothing saved: nothing changed
    assert u.optimizer._all_index_update_counts == {0: {"w": 2}}


def test_corrupt_progress_is_refused():
    blob = dumps_states({}, progress={"num_update": 1})
    with pytest.raises(ValueError, match="progress"):
        loads_saved_states(blob)
