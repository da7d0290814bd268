"""`rm.mod`: BaseModule, Module, BucketingModule, SequentialModule, FitParams."""
from .base_module import BaseModule  # noqa: F401
from .fit_params import FitParams  # noqa: F401
from .module import Module  # noqa: F401
