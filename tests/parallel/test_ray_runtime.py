"""The embedded Ray runtime and multi-node placement, each in a driver of its own.

These start Ray clusters of their own, so they run in subprocesses and never
meet the session's Ray (`ray_session`): a driver that starts raymod's embedded
runtime and exits without `ray.shutdown`, and a two-node
`ray.cluster_utils.Cluster` on this machine.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_driver(source, timeout=240):
    """Run `source` as a fresh driver from the repository root; its last line is JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["RAY_AUTH_MODE"] = "disabled"
    env["PYTHONPATH"] = ROOT
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(source)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(f"driver printed no result (exit {proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc, json.loads(lines[-1])


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def _survivors(pids, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.2)
    return [(p, open(f"/proc/{p}/cmdline").read().replace("\0", " ")[:120])
            for p in pids if _alive(p)]


_EMBEDDED_DRIVER = """
    import json, os, sys
    import numpy as np
    import ray
    import raymod as rm
    from raymod.io import DataBatch
    from raymod.parallel import runtime

    assert not ray.is_initialized()
    mod = rm.mod.Module(rm.sym.SoftmaxOutput(rm.sym.FullyConnected(
        rm.sym.Variable("data"), num_hidden=3, name="fc"), name="softmax"),
        context=[rm.cpu(0), rm.cpu(1)], placement="ray")
    mod.bind([("data", (4, 5))], [("softmax_label", (4,))])
    mod.init_params()
    mod.init_optimizer(kvstore="device")
    mod.forward_backward(DataBatch([np.ones((4, 5), np.float32)],
                                   [np.array([0, 1, 2, 0], np.float32)]))
    mod.update()
    mod.get_params()

    def descendants(pid):
        found, todo = [], [pid]
        while todo:
            p = todo.pop()
            try:
                with open(f"/proc/{p}/task/{p}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except FileNotFoundError:
                kids = []
            found += kids
            todo += kids
        return found

    workers = mod._exec_group._workers.pids()
    print(json.dumps({"started_here": runtime.started_here(),
                      "resources": ray.cluster_resources().get("CPU"),
                      "ray_processes": sorted(set(descendants(os.getpid()) + workers)),
                      "workers": workers}), flush=True)
    if sys.argv[-1] == "raise":
        raise RuntimeError("the driver fails after training")
"""


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["return", "raise"])
def test_embedded_runtime_leaves_no_ray_process_behind(ending):
    """raymod starts Ray for a driver with no cluster and stops every process at its exit."""
    source = _EMBEDDED_DRIVER.replace("sys.argv[-1]", repr(ending))
    proc, result = _run_driver(source)
    assert result["started_here"] is True
    assert result["resources"] == os.cpu_count()            # sized for this machine
    assert (proc.returncode != 0) == (ending == "raise")
    if ending == "raise":
        assert "the driver fails after training" in proc.stderr
    # raylet, gcs_server, agents, the workers: at least a handful, all ours
    assert len(result["ray_processes"]) >= 4
    assert set(result["workers"]) <= set(result["ray_processes"])
    assert _survivors(result["ray_processes"]) == []


_BESIDE_A_CLUSTER_DRIVER = """
    import json, os
    # The latest cluster `ray start` ran on this machine, as Ray records it (nothing
    # listens there): a bare ray.init() would try to join it.
    os.environ["RAY_TMPDIR"] = __TMP__
    with open(os.path.join(__TMP__, "ray", "ray_current_cluster"), "w") as f:
        f.write("127.0.0.1:9")
    from raymod.parallel import runtime
    ray = runtime.ensure_ray()
    print(json.dumps({"started_here": runtime.started_here(),
                      "cpus": ray.cluster_resources().get("CPU")}), flush=True)
"""


@pytest.mark.slow
def test_embedded_runtime_starts_its_own_ray_beside_a_cluster_started_on_this_machine():
    tmp = tempfile.mkdtemp(prefix="rm", dir="/tmp")     # short: Ray's socket paths
    try:
        os.makedirs(os.path.join(tmp, "ray"))
        _, result = _run_driver(_BESIDE_A_CLUSTER_DRIVER.replace("__TMP__", repr(tmp)),
                                timeout=120)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert result == {"started_here": True, "cpus": os.cpu_count()}


_CLUSTER_DRIVER = """
    import json, os
    import numpy as np
    import ray
    from ray.cluster_utils import Cluster
    import raymod as rm
    from raymod.io import NDArrayIter
    from raymod.parallel import runtime

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False,
        "object_store_memory": 128 * 1024 * 1024})
    cluster.add_node(num_cpus=1, object_store_memory=128 * 1024 * 1024)
    cluster.wait_for_nodes()
    os.environ["RAY_ADDRESS"] = cluster.address       # raymod joins it, starts nothing

    def net():
        fc1 = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=6, name="fc1")
        act = rm.sym.Activation(fc1, act_type="relu")
        return rm.sym.SoftmaxOutput(rm.sym.FullyConnected(act, num_hidden=3, name="fc2"),
                                    name="softmax")

    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32) + (x[:, 1] > 0)

    def train(ctx, kvstore, placement):
        rm.random.seed(3)
        mod = rm.mod.Module(net(), context=ctx, placement=placement)
        mod.bind([("data", (12, 5))], [("softmax_label", (12,))])
        mod.init_params(initializer=rm.init.Xavier())
        mod.init_optimizer(kvstore=kvstore, optimizer_params={
            "learning_rate": 0.3, "momentum": 0.9})
        for batch in NDArrayIter(x, y, batch_size=12):
            mod.forward_backward(batch)
            mod.update()
        return mod, mod.get_params()[0]

    result = {}
    _, ref = train([rm.cpu(0)], "local", "in_process")
    for kvstore in ("device", "dist_sync"):
        mod, got = train([rm.cpu(0), rm.cpu(1)], kvstore, "ray")
        result[kvstore] = {
            "diff": max(float(np.abs(got[k] - ref[k]).max()) for k in ref),
            "worker_nodes": mod._exec_group._workers.node_ids(),
        }
        if kvstore == "dist_sync":
            servers = mod._kvstore._servers
            result[kvstore]["server_nodes"] = ray.get([s.node_id.remote() for s in servers])
        del mod
    result["started_here"] = runtime.started_here()
    result["nodes"] = len([n for n in ray.nodes() if n["Alive"]])
    print(json.dumps(result), flush=True)
    ray.shutdown()
    cluster.shutdown()
"""


@pytest.mark.slow
def test_two_node_cluster_places_one_worker_per_node_and_trains_the_same():
    _, result = _run_driver(_CLUSTER_DRIVER)
    assert result["nodes"] == 2
    assert result["started_here"] is False                  # RAY_ADDRESS: joined, not started
    for kvstore in ("device", "dist_sync"):
        entry = result[kvstore]
        # one core per node, one core per worker: the gang spans both nodes
        assert len(set(entry["worker_nodes"])) == 2, entry
        assert entry["diff"] < 2e-5, entry
    # one parameter server per node, spread over both
    assert len(set(result["dist_sync"]["server_nodes"])) == 2


_NODE_LOSS_DRIVER = """
    import json, os, time
    import numpy as np
    import ray
    from ray.cluster_utils import Cluster
    import raymod as rm
    from raymod.io import NDArrayIter

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "object_store_memory": 128 * 1024 * 1024})
    nodes = [cluster.add_node(num_cpus=1, object_store_memory=128 * 1024 * 1024) for _ in range(3)]
    cluster.wait_for_nodes()
    os.environ["RAY_ADDRESS"] = cluster.address

    def net():
        fc1 = rm.sym.FullyConnected(rm.sym.Variable("data"), num_hidden=6, name="fc1")
        act = rm.sym.Activation(fc1, act_type="relu")
        out = rm.sym.FullyConnected(act, num_hidden=3, name="fc2")
        return rm.sym.SoftmaxOutput(out, name="softmax")

    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32) + (x[:, 1] > 0)

    def train(kill):
        rm.random.seed(3); np.random.seed(3)
        mod = rm.mod.Module(net(), context=[rm.cpu(0), rm.cpu(1)], placement="ray")
        state = {}
        def cb(p):
            if kill and (p.epoch, p.nbatch) == (1, 2):
                node_ids = mod._exec_group._workers.node_ids()
                state["before"] = node_ids
                victim = [n for n in nodes if n.node_id == node_ids[1]][0]
                cluster.remove_node(victim)
        mod.fit(NDArrayIter(x, y, batch_size=12, shuffle=True), num_epoch=3, kvstore="device",
                batch_end_callback=cb, optimizer_params={"learning_rate": 0.3, "momentum": 0.9})
        state["after"] = mod._exec_group._workers.node_ids()
        return mod.get_params()[0], state

    ref, _ = train(False)
    rm.parallel.release_idle_workers()
    t = time.time()
    got, state = train(True)
    print(json.dumps({"diff": max(float(np.abs(got[k] - ref[k]).max()) for k in ref),
                      "before": state["before"], "after": state["after"], "secs": time.time() - t}))
    ray.shutdown(); cluster.shutdown()
"""


@pytest.mark.slow
def test_a_fit_survives_the_loss_of_a_node():
    """Three one-core nodes, two workers: the node of worker 1 goes mid-fit; its bundle
    is placed on the spare node and the fit ends as the undisturbed one."""
    _, result = _run_driver(_NODE_LOSS_DRIVER)
    assert result["diff"] == 0.0
    assert result["after"][0] == result["before"][0]
    assert result["after"][1] not in result["before"]
