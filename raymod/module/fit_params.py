"""`FitParams`: fit's arguments as one dataclass, with MXNet's Python defaults."""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional


def _default_initializer():
    from ..initializer import Uniform
    return Uniform(0.01)


@dataclass
class FitParams:
    """Everything `BaseModule.fit` takes besides the data.

    `mod.fit(train, eval_data=val, params=FitParams(num_epoch=3))` is the same
    as passing the fields as keywords. Defaults are MXNet's Python `fit`
    defaults (not the Scala FitParams ones, whose kvstore setter did nothing).
    """

    eval_metric: Any = "acc"
    epoch_end_callback: Any = None
    batch_end_callback: Any = None
    kvstore: Any = "local"
    optimizer: Any = "sgd"
    optimizer_params: Any = (("learning_rate", 0.01),)
    eval_end_callback: Any = None
    eval_batch_end_callback: Any = None
    initializer: Any = field(default_factory=_default_initializer)
    arg_params: Optional[dict] = None
    aux_params: Optional[dict] = None
    allow_missing: bool = False
    force_rebind: bool = False
    force_init: bool = False
    begin_epoch: int = 0
    num_epoch: Optional[int] = None
    validation_metric: Any = None
    monitor: Any = None
    sparse_row_id_fn: Any = None

    def __post_init__(self):
        if not isinstance(self.begin_epoch, int) or self.begin_epoch < 0:
            raise ValueError(f"begin_epoch must be an int >= 0, received {self.begin_epoch!r}")
        if self.num_epoch is not None and (not isinstance(self.num_epoch, int)
                                           or self.num_epoch < 0):
            raise ValueError(f"num_epoch must be an int >= 0, received {self.num_epoch!r}")

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls):
        return [f.name for f in dataclasses.fields(cls)]
