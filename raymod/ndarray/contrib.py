"""`rm.nd.contrib` (MXNet's `mx.nd.contrib`): the contrib namespace of the NDArray API.

raymod's NDArrays are numpy arrays and raymod runs operators only inside
bound executors, so this namespace holds no imperative operators; a name
looked up here raises an AttributeError saying so. It exists so that MXNet
code reaching for `mx.nd.contrib` (an import, a `hasattr` check) resolves.
"""
__all__ = []


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"raymod has no imperative contrib operator {name!r} (MXNet's "
                         f"mx.nd.contrib.{name}); raymod runs operators through symbols: "
                         f"mx.sym.contrib and an executor or module")
