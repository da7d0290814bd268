"""cluster.yaml validates offline with Ray's own launcher code and schema (no Ray session)."""
import copy
import json
import os

import jsonschema
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER_YAML = os.path.join(ROOT, "cluster.yaml")


def _raw():
    with open(CLUSTER_YAML) as f:
        return yaml.safe_load(f)


def _prepared(config):
    # validate_config on a raw file always fails: prepare_config merges the
    # provider's defaults first, as `ray up` does.
    from ray.autoscaler._private.util import prepare_config
    return prepare_config(copy.deepcopy(config))


def _schema():
    import ray.autoscaler
    with open(os.path.join(os.path.dirname(ray.autoscaler.__file__), "ray-schema.json")) as f:
        return json.load(f)


def test_cluster_yaml_validates_with_rays_launcher_code():
    from ray.autoscaler._private.util import validate_config
    config = _prepared(_raw())
    validate_config(config)
    jsonschema.validate(config, _schema())
    jsonschema.validate(_raw(), _schema())          # the file itself, before the defaults


def test_cluster_yaml_has_cpu_head_and_gpu_workers_installing_raymod():
    config = _prepared(_raw())
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and head["resources"]["CPU"] > 0
    gpu_types = [t for name, t in types.items()
                 if name != config["head_node_type"] and t["resources"].get("GPU", 0) >= 1]
    assert gpu_types, "a GPU worker node type"
    assert config["max_workers"] >= sum(t.get("min_workers", 0) for t in types.values())
    # the checkout is mounted where every node installs it from
    assert config["file_mounts"] == {"/home/ray/raymod": "."}
    every_node = " ; ".join(config["setup_commands"])
    assert "pip install -q -e /home/ray/raymod" in every_node
    # prepare_config merges the common setup into each role's commands
    assert any("cupy" in c for c in config["worker_setup_commands"])
    assert any("/home/ray/raymod" in c for c in config["head_setup_commands"])
    assert any("ray start --head" in c for c in config["head_start_ray_commands"])


@pytest.mark.parametrize("breakage", ["unknown_key", "head_not_a_type", "bad_min_workers"])
def test_validation_catches_a_broken_config(breakage):
    """The checks above can fail: Ray's validator rejects each of these edits."""
    from ray.autoscaler._private.util import validate_config
    config = _raw()
    if breakage == "unknown_key":
        config["available_node_types"]["worker.gpu"]["gpus_please"] = 1
    elif breakage == "head_not_a_type":
        config["head_node_type"] = "head.missing"
    else:
        config["available_node_types"]["worker.gpu"]["min_workers"] = 99
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        validate_config(_prepared(config))
