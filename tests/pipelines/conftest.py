"""Pipeline tests on Ray share the test session's one Ray (tests/parallel/conftest.py)."""
from tests.parallel.conftest import ray_session  # noqa: F401
