"""Gradient cases: every registered operator must appear in some test module's GRAD_CASES.

A case builds a symbol, gives the shapes of its inputs (and optional fixed
values for inputs such as labels or indices), and is checked against central
finite differences in float64 by `raymod.test_utils.check_numeric_gradient`.
`tests/ops/test_coverage.py` fails when an operator has no case.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from raymod.test_utils import check_numeric_gradient


@dataclass
class GradCase:
    op: str                          # canonical operator name the case covers
    id: str                          # short description, used as the pytest id
    build: Callable                  # () -> Symbol
    shapes: dict                     # argument name -> shape
    values: dict = field(default_factory=dict)   # name -> fixed array (labels, indices)
    aux: dict = field(default_factory=dict)      # aux name -> array
    grad_nodes: Optional[list] = None            # default: every argument not in `values`
    rtol: float = 1e-4
    atol: float = 1e-6
    eps: float = 1e-4
    low: float = -1.0                # random inputs are uniform in [low, high)
    high: float = 1.0
    use_forward_train: bool = True

    def __str__(self):
        return f"{self.op}-{self.id}"


def run_grad_case(case, ctx, seed=0):
    rng = np.random.default_rng(seed)
    location = {}
    for name, shape in case.shapes.items():
        if name in case.values:
            location[name] = np.asarray(case.values[name], dtype=np.float64)
        else:
            location[name] = rng.uniform(case.low, case.high, size=shape)
    grad_nodes = case.grad_nodes
    if grad_nodes is None:
        grad_nodes = [n for n in case.shapes if n not in case.values]
    sym = case.build()
    check_numeric_gradient(sym, location, aux_states=case.aux or None,
                           numeric_eps=case.eps, rtol=case.rtol, atol=case.atol,
                           grad_nodes=grad_nodes, ctx=ctx,
                           use_forward_train=case.use_forward_train)


def case_ids(cases):
    return [str(c) for c in cases]
