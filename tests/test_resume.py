"""Resuming a fit from a checkpoint continues exactly, on both placements.

Two half-runs (epochs 0-1, checkpoint with optimizer states, then
``Module.load(prefix, 2, load_optimizer_states=True)`` and
``fit(begin_epoch=2, arg_params=..., aux_params=...)``) must end with the
parameters of one whole run, bit for bit: the momentum or Adam moments, the
update counts (Adam's bias correction, the scheduler's position) and the
learning-rate schedule all carry over. Also: a checkpoint save that fails
halfway, or a driver SIGKILLed while saving, leaves the previous checkpoint
whole and resumable; and the `Updater` beneath carries the update counts.
"""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import raymod as rm
from raymod import fileio
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
# the store runs the optimizer ('local'), where every device does ('device'), and
# where parameter-server actors do ('dist_sync', Ray actors on either placement).
LAYOUTS = {"1dev": (1, "local"), "2dev_local": (2, "local"), "2dev_device": (2, "device"),
           "2dev_dist_sync": (2, "dist_sync")}


def _fit(mod, begin, end, optimizer, layout, **kwargs):
    name, params = OPTIMIZERS[optimizer]()
    mod.fit(_data(), num_epoch=end, begin_epoch=begin, optimizer=name,
            optimizer_params=params, kvstore=LAYOUTS[layout][1],
            eval_metric="acc", **kwargs)


def _module(placement, layout, **kwargs):
    contexts = [rm.cpu(i) for i in range(LAYOUTS[layout][0])]
    return rm.mod.Module(_net(), context=contexts, placement=placement, **kwargs)


# Both epoch-end callbacks that save optimizer states, one per optimizer.
CHECKPOINTS = {
    "sgd_momentum": lambda mod, prefix: rm.callback.module_checkpoint(
        mod, prefix, save_optimizer_states=True),
    "adam": lambda mod, prefix: rm.callback.do_checkpoint(
        prefix, save_optimizer_states=True, module=mod),
}
# In-process every optimizer meets every layout but dist_sync (its parameter
# servers are Ray actors on either placement, started per module: one case). A
# Ray case costs seconds (three modules' workers), so Ray runs one optimizer per
# layout: both optimizers, states held by one worker, by the driver's store and
# by two workers.
CASES = ([("in_process", o, lay) for o in sorted(OPTIMIZERS) for lay in sorted(LAYOUTS)
          if lay != "2dev_dist_sync"]
         + [("in_process", "sgd_momentum", "2dev_dist_sync"), ("ray", "adam", "1dev"),
            ("ray", "sgd_momentum", "2dev_local"), ("ray", "adam", "2dev_device")])


@pytest.mark.filterwarnings("ignore:Parameters already initialized")  # MXNet's, after load
@pytest.mark.parametrize("placement,optimizer,layout", CASES)
def test_two_half_runs_equal_one_whole_run(placement, optimizer, layout, tmp_path, request):
    if placement == "ray" or LAYOUTS[layout][1].startswith("dist"):
        request.getfixturevalue("ray_session")      # dist_sync's servers are Ray actors
    args, aux = _initial_params()
    whole = _module(placement, layout)
    _fit(whole, 0, EPOCHS, optimizer, layout, arg_params=args, aux_params=aux)
    expected_args, expected_aux = whole.get_params()

    prefix = str(tmp_path / "run")
    first = _module(placement, layout)
    _fit(first, 0, HALF, optimizer, layout, arg_params=args, aux_params=aux,
         epoch_end_callback=CHECKPOINTS[optimizer](first, prefix))
    del first     # the driver "dies": nothing of the first half survives but the files

    second = rm.mod.Module.load(prefix, HALF, load_optimizer_states=True,
                                context=[rm.cpu(i) for i in range(LAYOUTS[layout][0])],
                                placement=placement)
    loaded_args, loaded_aux = rm.model.load_params(prefix, HALF)
    _fit(second, HALF, EPOCHS, optimizer, layout, arg_params=loaded_args,
         aux_params=loaded_aux)
    _assert_same(second.get_params(), (expected_args, expected_aux))


# ------------------------------------------------------------ a driver dying mid-save
class _HalfWriter:
    """A file that writes half of its first write, then fails (or kills the process)."""

    def __init__(self, f, fail):
        self.f, self.fail = f, fail

    def write(self, data):
        view = memoryview(data).cast("B")
        self.f.write(view[:len(view) // 2])
        self.f.flush()
        self.fail()

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.f.__exit__(*exc)


def break_writes_of(monkeypatch, name, fail):
    """Make the atomic writer's temporary file for `name` (a base name) fail halfway."""
    real_mkstemp, real_fdopen = fileio.tempfile.mkstemp, fileio.os.fdopen
    temps = set()

    def mkstemp(*args, **kwargs):
        fd, path = real_mkstemp(*args, **kwargs)
        if os.path.basename(path).startswith(f".{name}."):
            temps.add(fd)
        return fd, path

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        return _HalfWriter(f, fail) if fd in temps else f

    monkeypatch.setattr(fileio.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(fileio.os, "fdopen", fdopen)


def _disk_full():
    raise OSError("disk full halfway through (simulated)")


def _checkpointing_fit(mod, prefix, epochs):
    _fit(mod, 0, epochs, "adam", "1dev", arg_params=_initial_params()[0],
         aux_params=_initial_params()[1],
         epoch_end_callback=rm.callback.do_checkpoint(prefix, save_optimizer_states=True,
                                                      module=mod))


def _resume_from(prefix, epoch, end):
    mod = rm.mod.Module.load(prefix, epoch, load_optimizer_states=True, placement="in_process")
    args, aux = rm.model.load_params(prefix, epoch)
    _fit(mod, epoch, end, "adam", "1dev", arg_params=args, aux_params=aux)
    return mod.get_params()


def _whole_run(end):
    mod = _module("in_process", "1dev")
    args, aux = _initial_params()
    _fit(mod, 0, end, "adam", "1dev", arg_params=args, aux_params=aux)
    return mod.get_params()


def _assert_same(got, want):
    for g, w in zip(got, want, strict=True):
        assert sorted(g) == sorted(w)
        for name in w:
            np.testing.assert_array_equal(np.asarray(g[name]), np.asarray(w[name]), name)


def _visible(path):
    return sorted(p.name for p in path.iterdir() if not p.name.startswith("."))


@pytest.mark.filterwarnings("ignore:Parameters already initialized")
@pytest.mark.parametrize("broken", ["run-0002.states", "run-0002.params"])
def test_a_save_failing_midway_leaves_the_last_checkpoint_whole(monkeypatch, tmp_path, broken):
    prefix = str(tmp_path / "run")
    break_writes_of(monkeypatch, broken, _disk_full)
    with pytest.raises(OSError, match="disk full"):
        _checkpointing_fit(_module("in_process", "1dev"), prefix, 3)
    monkeypatch.undo()
    written = ["run-0001.params", "run-0001.states", "run-symbol.json"]
    if broken.endswith(".params"):       # the states come first and were complete
        written.append("run-0002.states")
    assert _visible(tmp_path) == sorted(written)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert rm.model.saved_epochs(prefix) == [1]
    _assert_same(_resume_from(prefix, 1, 3), _whole_run(3))


@pytest.mark.filterwarnings("ignore:Parameters already initialized")
def test_a_driver_killed_while_saving_loses_only_that_epoch(tmp_path):
    """SIGKILL in the middle of epoch 2's .params: epoch 1 resumes exactly."""
    prefix = str(tmp_path / "run")
    child = textwrap.dedent(f"""
        import os, signal, sys, pytest
        from tests import test_resume as t
        monkeypatch = pytest.MonkeyPatch()
        t.break_writes_of(monkeypatch, "run-0002.params",
                          lambda: os.kill(os.getpid(), signal.SIGKILL))
        t._checkpointing_fit(t._module("in_process", "1dev"), {prefix!r}, 3)
        sys.exit("the driver was not killed")
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", child], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert _visible(tmp_path) == ["run-0001.params", "run-0001.states", "run-0002.states",
                                  "run-symbol.json"]
    # A killed process cannot clean up: its half-written temporary stays hidden,
    # under a name no reader looks at.
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".run-0002.params.")
    assert rm.model.saved_epochs(prefix) == [1]
    _assert_same(_resume_from(prefix, 1, 3), _whole_run(3))


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
    assert resumed.get_states() == blob             # loading then saving changes nothing
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
