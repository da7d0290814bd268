"""`rm.sym`: MXNet's symbolic API. Operator functions are generated from the registry."""
from ..attribute import AttrScope  # noqa: F401
from ..ops import alias_table, registered_ops
from .json_io import load, load_json  # noqa: F401
from .op_functions import make_function
from .symbol import Group, Symbol, Variable, var  # noqa: F401


def _export_operators(namespace):
    for op_name in registered_ops():
        if op_name not in namespace:
            namespace[op_name] = make_function(op_name, op_name)
    for alias, op_name in alias_table().items():
        if alias not in namespace:
            namespace[alias] = make_function(alias, op_name)


_export_operators(globals())

from . import contrib  # noqa: E402,F401  (after the operators: mx.sym.contrib)
