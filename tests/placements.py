"""Module-level tests run on both placements: in-process workers and Ray actors.

`tests/module` and `tests/module_composite` import these two hooks into their
conftest, so every test there runs twice, once per placement, with that
placement made the default for the modules it creates. A test that needs an
in-process internal (an Executor object, a monkeypatched worker) says so with
`@pytest.mark.in_process_only("why")` and then runs in-process only.
"""
import pytest

from raymod.parallel import default_placement, set_default_placement

PLACEMENTS = ("in_process", "ray")


def pytest_generate_tests(metafunc):
    if "placement" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("in_process_only")
    params = PLACEMENTS[:1] if marker else PLACEMENTS
    metafunc.parametrize("placement", params, indirect=True)


@pytest.fixture(autouse=True)
def placement(request):
    """The placement under test, made the default for the test's modules."""
    name = getattr(request, "param", "in_process")
    if name == "ray":
        request.getfixturevalue("ray_session")
    before = default_placement()
    set_default_placement(name)
    yield name
    set_default_placement(before)
