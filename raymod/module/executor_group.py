"""MXNet's import path `mxnet.module.executor_group`; the group lives in raymod.parallel."""
from ..parallel.executor_group import DataParallelExecutorGroup  # noqa: F401

__all__ = ["DataParallelExecutorGroup"]
