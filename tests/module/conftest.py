"""Every test here runs on both placements (see tests/placements.py)."""
from tests.parallel.conftest import ray_session  # noqa: F401
from tests.placements import placement, pytest_generate_tests  # noqa: F401
