"""RAYMOD_PLACEMENT: a process's default placement, so one script runs on either."""
import pytest

from raymod.parallel import placement


@pytest.fixture
def unset_default(monkeypatch):
    # The suite sets in_process as the default: take that away for these tests.
    monkeypatch.setitem(placement._default, "placement", None)


def test_ray_is_the_default_without_the_variable(unset_default, monkeypatch):
    monkeypatch.delenv(placement.PLACEMENT_ENV, raising=False)
    assert placement.default_placement() == "ray"


def test_the_variable_sets_the_default(unset_default, monkeypatch):
    monkeypatch.setenv(placement.PLACEMENT_ENV, "in_process")
    assert placement.default_placement() == "in_process"
    import raymod as rm
    group = placement.create_worker_group([rm.cpu(0)])
    assert group.in_process


def test_set_default_placement_wins_over_the_variable(unset_default, monkeypatch):
    monkeypatch.setenv(placement.PLACEMENT_ENV, "ray")
    placement.set_default_placement("in_process")
    assert placement.default_placement() == "in_process"


def test_a_bad_value_is_named(unset_default, monkeypatch):
    monkeypatch.setenv(placement.PLACEMENT_ENV, "gpu")
    with pytest.raises(ValueError, match="RAYMOD_PLACEMENT must be one of .* received 'gpu'"):
        placement.default_placement()
