"""Ray's session fixture is tests/parallel's (one Ray for the whole session)."""
from tests.parallel.conftest import ray_session  # noqa: F401
