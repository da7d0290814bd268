"""`rm.contrib` (MXNet's `mx.contrib`): adapters to tools users already run.

Each submodule is imported on first use (`rm.contrib.tensorboard`,
`rm.contrib.tune`, `rm.contrib.mxnet_alias`, ...), so an adapter whose
optional package is missing costs nothing until it is asked for.
`sym`/`symbol` and `nd`/`ndarray` are MXNet's contrib operator namespaces.
"""
import importlib
import pkgutil

_NAMESPACES = {"sym": "raymod.symbol.contrib", "symbol": "raymod.symbol.contrib",
               "nd": "raymod.ndarray.contrib", "ndarray": "raymod.ndarray.contrib"}


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    target = _NAMESPACES.get(name, f"{__name__}.{name}")
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as err:
        if err.name != target:  # the adapter exists but a package it needs is missing
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r} (raymod.contrib "
                             f"has {sorted(__dir__())})") from None
    globals()[name] = module
    return module


def __dir__():
    return sorted(set(_NAMESPACES) | {m.name for m in pkgutil.iter_modules(__path__)})
