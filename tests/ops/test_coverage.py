"""Every registered operator has at least one finite-difference gradient case."""
import importlib
import pkgutil

import tests.ops as ops_tests
from raymod.ops import registered_ops


def collected_cases():
    cases = []
    for info in pkgutil.iter_modules(ops_tests.__path__):
        if info.name.startswith("test_") and info.name != "test_coverage":
            module = importlib.import_module(f"tests.ops.{info.name}")
            cases.extend(getattr(module, "GRAD_CASES", []))
    return cases


def test_every_registered_operator_has_a_gradient_case():
    covered = {case.op for case in collected_cases()}
    missing = sorted(set(registered_ops()) - covered)
    assert not missing, f"operators without a gradient case: {missing}"
