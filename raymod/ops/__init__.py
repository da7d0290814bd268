"""Operators, one family per module; importing this package registers them all."""
import importlib
import pkgutil

from .base import (Operator, Param, Workspace, register, get_op_class,  # noqa: F401
                   registered_ops, alias_table)

# Every module of this package is an operator family; import them all so the
# registry (and so rm.sym.*) is complete whatever the caller imported first.
for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base" and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
