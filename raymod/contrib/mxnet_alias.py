"""Run MXNet scripts unchanged: `import mxnet` (and `mxnet.X`) gives raymod (and `raymod.X`).

From a shell::

    python -m raymod.mxnet_compat train.py --its --own --flags
    python -m raymod.mxnet_compat --raymod-placement in_process train.py ...
    python -m raymod.mxnet_compat -m package.train ...

In a notebook, before anything imports mxnet::

    import raymod.contrib.mxnet_alias as alias
    alias.install()
    import mxnet as mx          # raymod

`mxnet.X` resolves to raymod's module `raymod.X` (`mxnet.module.executor_group`,
`mxnet.io`, `mxnet.test_utils`, ...), or to the module raymod keeps under
that attribute (`mxnet.nd` is `raymod.ndarray`, `mxnet.kv` the kvstore,
`mxnet.sym.contrib` the contrib namespace). A module raymod does not have
raises an ImportError that names it. A real MXNet cannot share a process
with the alias: `install()` refuses when one is imported already.
"""
import importlib
import importlib.abc
import importlib.machinery
import os
import runpy
import sys
import types

ALIAS, TARGET = "mxnet", "raymod"
# MXNet modules whose raymod home has another name
_RENAMED = {"mxnet.visualization": "raymod.viz"}
# MXNet modules raymod does not have on purpose, and what to use instead
_ABSENT = {
    "gluon": "raymod implements MXNet's Module API (mx.mod.Module, fit, score, predict), "
             "not Gluon",
    "autograd": "raymod computes gradients in bound executors (Module.backward); it has no "
                "imperative autograd",
    "numpy": "mx.np is MXNet's numpy interface; raymod's NDArray is a numpy array already",
    "np": "mx.np is MXNet's numpy interface; raymod's NDArray is a numpy array already",
    "numpy_extension": "raymod has no MXNet numpy extension (mx.npx)",
    "npx": "raymod has no MXNet numpy extension (mx.npx)",
    "profiler": "raymod has no profiler: use cProfile, or Ray's timeline on the Ray placement",
    "onnx": "raymod has no ONNX export",
    "rtc": "raymod compiles no CUDA kernels at run time",
}
_HELP = """usage: python -m raymod.mxnet_compat [--raymod-placement {ray,in_process}] \
(script.py | -m module) [args ...]

Run an MXNet 1.x script unchanged, with `import mxnet` resolving to raymod.
Everything after the script (or -m module) is the script's own command line.
  --raymod-placement P  where raymod's device workers run: 'ray' (the default)
                        or 'in_process'
"""


class _ExistingModule(importlib.abc.Loader):
    """A loader that hands back a module that is already imported (under its raymod name)."""

    def __init__(self, module):
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        """Nothing to run: the module was executed when raymod imported it."""


class MXNetAliasFinder(importlib.abc.MetaPathFinder):
    """A meta-path finder that answers `mxnet` and `mxnet.*` with raymod's modules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        module = resolve(fullname)
        return importlib.machinery.ModuleSpec(fullname, _ExistingModule(module),
                                              is_package=hasattr(module, "__path__"))


def resolve(fullname):
    """raymod's module for MXNet module name `fullname` (ModuleNotFoundError if it has none)."""
    if fullname == ALIAS:
        return importlib.import_module(TARGET)
    if fullname in _RENAMED:
        return importlib.import_module(_RENAMED[fullname])
    parent_name, _, child = fullname.rpartition(".")
    parent = sys.modules.get(parent_name) or importlib.import_module(parent_name)
    target = f"{parent.__name__}.{child}"
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as err:
        if err.name != target:   # raymod has it, but something it needs is missing
            raise
    attribute = getattr(parent, child, None)
    if isinstance(attribute, types.ModuleType):
        return attribute
    reason = _ABSENT.get(child, "")
    raise ModuleNotFoundError(
        f"No module named {fullname!r}: `mxnet` is raymod here (raymod.contrib.mxnet_alias), "
        f"and raymod has no {target!r}" + (f": {reason}" if reason else ""), name=fullname)


def _real_mxnet():
    """(name, module) of an imported module of a real MXNet, or None."""
    for name, module in list(sys.modules.items()):
        if (name == ALIAS or name.startswith(ALIAS + ".")) and module is not None \
                and not getattr(module, "__name__", "").startswith(TARGET):
            return name, module
    return None


def installed():
    """Whether `import mxnet` currently gives raymod."""
    return any(isinstance(f, MXNetAliasFinder) for f in sys.meta_path)


def install():
    """Make `import mxnet` (and its submodules) give raymod in this process.

    Call it before anything imports mxnet; calling it again does nothing.

    Raises
    ------
    RuntimeError
        When a real MXNet is imported already: both cannot be `mxnet` at once.
    """
    found = _real_mxnet()
    if found is not None:
        name, module = found
        where = getattr(module, "__file__", None) or "an unknown file"
        raise RuntimeError(
            f"a real MXNet is already imported in this process ({name!r} from {where}), so "
            f"raymod cannot stand in for `mxnet` here. Run the script in a fresh process with "
            f"`python -m raymod.mxnet_compat script.py ...`, or call "
            f"raymod.contrib.mxnet_alias.install() before anything imports mxnet (restart "
            f"the notebook kernel first)")
    if not installed():
        sys.meta_path.insert(0, MXNetAliasFinder())


def uninstall():
    """Undo `install()`: `import mxnet` no longer gives raymod (already imported aliases go)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, MXNetAliasFinder)]
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        if getattr(sys.modules[name], "__name__", "").startswith(TARGET):
            del sys.modules[name]


def run_script(path, args=()):
    """Run the MXNet script at `path` as `__main__` with command line `args`, on raymod.

    `sys.argv` is `[path, *args]` and the script's folder comes first on
    `sys.path` while it runs, as with `python path args...`; both are put
    back afterwards. Exceptions and `SystemExit` reach the caller.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no script {path!r} to run")
    install()
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


def run_module(name, args=()):
    """Run module `name` as `__main__` (like `python -m name args...`), on raymod."""
    install()
    saved_argv = sys.argv[:]
    sys.argv = [name, *args]
    try:
        runpy.run_module(name, run_name="__main__", alter_sys=True)
    finally:
        sys.argv = saved_argv


def _parse(argv):
    """(placement or None, 'script'/'module', target, args) from the command line."""
    placement = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            print(_HELP, end="")
            raise SystemExit(0)
        if arg == "--raymod-placement" or arg.startswith("--raymod-placement="):
            if "=" in arg:
                placement = arg.split("=", 1)[1]
            elif i + 1 < len(argv):
                i += 1
                placement = argv[i]
            else:
                raise SystemExit("--raymod-placement needs a value: ray or in_process")
        elif arg == "-m":
            if i + 1 >= len(argv):
                raise SystemExit("-m needs a module name\n\n" + _HELP)
            return placement, "module", argv[i + 1], argv[i + 2:]
        elif arg.startswith("-"):
            raise SystemExit(f"unknown option {arg!r} before the script name\n\n" + _HELP)
        else:
            return placement, "script", arg, argv[i + 1:]
        i += 1
    raise SystemExit("no script to run\n\n" + _HELP)


def main(argv=None):
    """The `python -m raymod.mxnet_compat` command (see the module docstring)."""
    placement, kind, target, args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        install()
    except RuntimeError as err:
        raise SystemExit(f"raymod.mxnet_compat: {err}") from None
    if placement is not None:
        from ..parallel import set_default_placement
        try:
            set_default_placement(placement)
        except ValueError as err:
            raise SystemExit(f"--raymod-placement: {err}") from None
    if kind == "module":
        run_module(target, args)
    else:
        run_script(target, args)
    return 0
