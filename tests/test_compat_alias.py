"""`import mxnet` as raymod: the alias (raymod.contrib.mxnet_alias) and its command."""
import importlib
import os
import subprocess
import sys
import textwrap
import types

import pytest

import raymod
from raymod.contrib import mxnet_alias

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# MXNet module path -> raymod's module it must be
SAME_MODULE = {
    "mxnet": "raymod", "mxnet.module": "raymod.module", "mxnet.mod": "raymod.module",
    "mxnet.module.executor_group": "raymod.module.executor_group", "mxnet.io": "raymod.io",
    "mxnet.ndarray": "raymod.ndarray", "mxnet.nd": "raymod.ndarray",
    "mxnet.nd.random": "raymod.ndarray.random", "mxnet.symbol": "raymod.symbol",
    "mxnet.sym": "raymod.symbol", "mxnet.sym.contrib": "raymod.symbol.contrib",
    "mxnet.metric": "raymod.metric", "mxnet.optimizer": "raymod.optimizer",
    "mxnet.initializer": "raymod.initializer", "mxnet.init": "raymod.initializer",
    "mxnet.callback": "raymod.callback", "mxnet.kvstore": "raymod.kvstore",
    "mxnet.kv": "raymod.parallel.kvstore", "mxnet.model": "raymod.model",
    "mxnet.rnn": "raymod.rnn", "mxnet.test_utils": "raymod.test_utils",
    "mxnet.base": "raymod.base", "mxnet.lr_scheduler": "raymod.lr_scheduler",
    "mxnet.monitor": "raymod.monitor", "mxnet.viz": "raymod.viz",
    "mxnet.visualization": "raymod.viz", "mxnet.contrib": "raymod.contrib",
    "mxnet.contrib.sym": "raymod.symbol.contrib", "mxnet.random": "raymod.random",
    "mxnet.context": "raymod.context", "mxnet.name": "raymod.name",
}


@pytest.fixture
def alias():
    mxnet_alias.install()
    yield mxnet_alias
    mxnet_alias.uninstall()


@pytest.mark.parametrize("mxnet_name", sorted(SAME_MODULE))
def test_mxnet_modules_are_raymods(alias, mxnet_name):
    assert importlib.import_module(mxnet_name) is importlib.import_module(SAME_MODULE[mxnet_name])


def test_mxnet_names_scripts_use_resolve(alias):
    from mxnet.base import MXNetError
    from mxnet.module import BucketingModule, Module
    from mxnet.module.executor_group import DataParallelExecutorGroup
    import mxnet as mx
    assert MXNetError is raymod.MXNetError and Module is raymod.mod.Module
    assert BucketingModule is raymod.mod.BucketingModule
    assert DataParallelExecutorGroup is raymod.module.executor_group.DataParallelExecutorGroup
    assert mx.io.MNISTIter is raymod.io.MNISTIter and mx.kvstore.create is raymod.kv.create


@pytest.mark.parametrize("mxnet_name, says", [
    ("mxnet.gluon", "not Gluon"),
    ("mxnet.autograd", "no imperative autograd"),
    ("mxnet.module.no_such_thing", "raymod has no 'raymod.module.no_such_thing'"),
])
def test_what_raymod_lacks_is_named(alias, mxnet_name, says):
    with pytest.raises(ModuleNotFoundError, match=f"No module named '{mxnet_name}'.*{says}"):
        importlib.import_module(mxnet_name)


def test_install_refuses_next_to_a_real_mxnet(monkeypatch):
    real = types.ModuleType("mxnet")
    real.__file__ = "/site-packages/mxnet/__init__.py"
    monkeypatch.setitem(sys.modules, "mxnet", real)
    with pytest.raises(RuntimeError, match=r"real MXNet is already imported.*"
                                           r"/site-packages/mxnet/__init__.py"):
        mxnet_alias.install()
    assert not mxnet_alias.installed()


def test_uninstall_forgets_the_alias():
    mxnet_alias.install()
    mxnet_alias.install()   # twice is once
    assert sum(isinstance(f, mxnet_alias.MXNetAliasFinder) for f in sys.meta_path) == 1
    importlib.import_module("mxnet.io")
    mxnet_alias.uninstall()
    assert not mxnet_alias.installed() and "mxnet.io" not in sys.modules


# ---------------------------------------------------------------------- the command

def _compat(tmp_path, *args, script=None, env=None):
    if script is not None:
        (tmp_path / "script.py").write_text(textwrap.dedent(script))
    return subprocess.run([sys.executable, "-m", "raymod.mxnet_compat", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "RAY_AUTH_MODE": "disabled", **(env or {})})


def test_runs_the_script_with_its_arguments_and_exit_code(tmp_path):
    script = """
        import sys
        import mxnet as mx
        import raymod.parallel as rp
        print(mx.__name__, sys.argv[1:], __name__, rp.default_placement())
        sys.exit(int(sys.argv[-1]))
    """
    done = _compat(tmp_path, "--raymod-placement", "in_process", "script.py", "--lr", "0.1",
                   "3", script=script)
    assert done.returncode == 3, done.stderr
    assert done.stdout.split() == ["raymod", "['--lr',", "'0.1',", "'3']", "__main__",
                                   "in_process"]


def test_runs_a_module_with_dash_m(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "train.py").write_text(
        "import sys, mxnet\nprint(mxnet.nd.__name__, sys.argv[1:])\n")
    done = _compat(tmp_path, "-m", "pkg.train", "--epochs", "2",
                   env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "raymod.ndarray ['--epochs', '2']"


def test_script_errors_reach_the_shell(tmp_path):
    done = _compat(tmp_path, "script.py", script="import mxnet.gluon\n")
    assert done.returncode == 1 and "not Gluon" in done.stderr


@pytest.mark.parametrize("args, says", [
    (["--raymod-placement", "tpu", "script.py"], "placement must be one of"),
    (["--verbose", "script.py"], "unknown option '--verbose'"),
    ([], "no script to run"),
])
def test_bad_command_lines_are_explained(tmp_path, args, says):
    done = _compat(tmp_path, *args, script="print('ran')\n")
    assert done.returncode != 0 and says in done.stderr and "ran" not in done.stdout


def test_the_command_refuses_when_a_real_mxnet_is_imported(tmp_path):
    fake = tmp_path / "site" / "mxnet"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("__version__ = '1.9.1'\n")
    (tmp_path / "script.py").write_text("print('ran')\n")
    code = ("import runpy, sys; sys.path.insert(0, sys.argv[1]); import mxnet; "
            "sys.argv = ['raymod.mxnet_compat', 'script.py']; "
            "runpy.run_module('raymod.mxnet_compat', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "ran" not in done.stdout
    assert "a real MXNet is already imported" in done.stderr
    assert str(fake / "__init__.py") in done.stderr


def test_run_script_puts_argv_and_path_back(tmp_path):
    (tmp_path / "s.py").write_text("import sys\nassert sys.argv == [__file__, 'a']\n"
                                   "import mxnet\n")
    argv, path = sys.argv[:], sys.path[:]
    try:
        mxnet_alias.run_script(str(tmp_path / "s.py"), ["a"])
    finally:
        mxnet_alias.uninstall()
    assert sys.argv == argv and sys.path == path
