"""`rm.sym.contrib` (MXNet's `mx.sym.contrib`): the contrib operator namespace.

MXNet registers experimental operators as `_contrib_<Name>` and exposes them
here as `<Name>`; raymod does the same for every registered operator whose
name starts with `_contrib_`. A name raymod does not implement raises an
AttributeError that says so, rather than a bare "no attribute".
"""
from ..ops import alias_table, registered_ops
from .op_functions import make_function

PREFIX = "_contrib_"


def contrib_names():
    """MXNet's `_contrib_` operators raymod has, by their short name."""
    names = {n for n in registered_ops() if n.startswith(PREFIX)}
    names |= {a for a in alias_table() if a.startswith(PREFIX)}
    return {n[len(PREFIX):]: n for n in names}


def _export(namespace):
    for short, full in contrib_names().items():
        namespace[short] = make_function(short, full)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"raymod has no contrib operator {name!r} (MXNet's "
                         f"mx.sym.contrib.{name} / _contrib_{name}); the contrib operators "
                         f"raymod implements are {sorted(contrib_names()) or 'none yet'}")


_export(globals())
__all__ = sorted(contrib_names())
