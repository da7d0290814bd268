"""How device workers ask Ray for resources (pure: no Ray session)."""
import pytest

import raymod as rm
from raymod.parallel.ray_group import _WORKER_MEMORY, _bundles, _resource_summary

CPU = [rm.cpu(i) for i in range(4)]
GPU = [rm.gpu(i) for i in range(2)]


@pytest.mark.parametrize("contexts,nodes,expected,threads", [
    (CPU[:1], [2], [{"CPU": 2.0}], 2),                       # one worker: every core
    (CPU[:2], [2], [{"CPU": 1.0}, {"CPU": 1.0}], 1),         # two: half each
    (CPU[:3], [2], [{"CPU": 0.6666}] * 3, 1),                # more workers than cores: share
    (CPU[:2], [8, 4], [{"CPU": 4.0}, {"CPU": 4.0}], 4),      # 6 each would not fit a node
    (CPU[:3], [8, 4], [{"CPU": 4.0}] * 3, 4),
    (CPU[:2], [1, 1], [{"CPU": 1.0}, {"CPU": 1.0}], 1),      # one per node
    (GPU, [8], [{"GPU": 1, "CPU": 1.0}, {"GPU": 1, "CPU": 1.0}], 6),
])
def test_bundles_divide_the_cores(contexts, nodes, expected, threads):
    assert _bundles(contexts, nodes, free_cpus=sum(nodes)) == (expected, threads)


def test_bundles_share_what_is_free_and_never_ask_for_nothing():
    """A second module beside a first: a share of the free cores, or memory alone."""
    assert _bundles(CPU[:2], [2], free_cpus=1.0)[0] == [{"CPU": 0.5}, {"CPU": 0.5}]
    assert _bundles(CPU[:2], [2], free_cpus=0.0)[0] == [{"memory": _WORKER_MEMORY}] * 2
    # GPU bundles keep their GPU when no core is free
    assert _bundles(GPU[:1], [2], free_cpus=0.0)[0] == [{"GPU": 1}]
    # Ray counts in 1e-4 units: never more than is free
    bundles, _ = _bundles(CPU[:3], [2], free_cpus=1.0)
    assert sum(b["CPU"] for b in bundles) <= 1.0 and bundles[0]["CPU"] == 0.3333


def test_workers_on_shared_cores_use_fewer_blas_threads():
    """Spinning BLAS threads of two modules on the same cores slow both down."""
    assert _bundles(CPU[:1], [8], free_cpus=8.0)[1] == 8
    assert _bundles(CPU[:1], [8], free_cpus=4.0)[1] == 4
    assert _bundles(CPU[:1], [2], free_cpus=0.0)[1] == 1
    assert _bundles(CPU[:1], [2], free_cpus=0.0, cpu_threads=2)[1] == 2   # an explicit count wins


def test_resource_summary_drops_placement_group_bookkeeping():
    summary = _resource_summary({"CPU": 2.0, "memory": 2 * 1024**3,
                                 "CPU_group_0_abc": 1.0, "bundle_group_abc": 1000.0,
                                 "node:10.0.0.1": 1.0, "node:__internal_head__": 1.0})
    assert summary == "CPU=2, GPU=0, memory=2.00GiB"


def test_cpu_worker_threads_setting():
    from raymod.parallel import set_cpu_worker_threads
    assert _bundles(CPU[:1], [2], free_cpus=2, cpu_threads=1) == ([{"CPU": 1.0}], 1)
    assert _bundles(CPU[:2], [8], free_cpus=8, cpu_threads=3)[0] == [{"CPU": 3.0}] * 2
    previous = set_cpu_worker_threads(2)    # the Ray test session may have set 1
    try:
        assert set_cpu_worker_threads(None) == 2
        assert set_cpu_worker_threads(3) is None
    finally:
        set_cpu_worker_threads(previous)
    with pytest.raises(ValueError, match="positive int or None"):
        set_cpu_worker_threads(0)
