"""`mx.kvstore`: MXNet's key-value store module (MXNet has both `mx.kvstore` and `mx.kv`).

A re-export of `raymod.parallel.kvstore`, where the store lives, so MXNet
code such as `mx.kvstore.create('device')` (example/image-classification's
`common/fit.py`) and `from mxnet.kvstore import KVStore` keep working.
"""
from .parallel.kvstore import KVSTORE_TYPES, KVStore, create

__all__ = ["KVSTORE_TYPES", "KVStore", "create"]
