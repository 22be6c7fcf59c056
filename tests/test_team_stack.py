"""The team path end to end: sweeps on a two-node Ray cluster, recorded through an MLflow
server into PostgreSQL, all started by scripts/team_stack.sh in a network namespace of
its own (only there does Ray keep to 127.0.0.1) and stopped again.

Marked ``team`` (select with -m team) and ``slow``; needs root, iproute2 and Debian's
postgresql (.ci/run installs it where it is missing)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, cli_environment, free_port
from mlflow import MlflowClient

pytestmark = [pytest.mark.slow, pytest.mark.team, pytest.mark.xdist_group("team-stack")]

SCRIPT = REPO / "scripts" / "team_stack.sh"
RNNLAB = REPO / ".venv" / "bin" / "rnnlab"
RAY_SWEEP = ["hydra/launcher=ray", "hydra.launcher.ray.init.address=127.0.0.1:6379"]
# a sweep child's loss (step_metrics.sweep_job_points): 500 iterations, every 5th point
CHILD_POINTS = list(range(0, 501, 5))


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return "needs Debian's postgresql (apt-get install postgresql; .ci/run does)"
    return None


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if (why := _why_not()) is not None:
        pytest.skip(why)
    state = tmp_path_factory.mktemp("team")
    env = {
        **cli_environment(),
        "RNNLAB_TEAM_NAME": f"rnnlab-test-{os.getpid()}",
        "RNNLAB_TEAM_DIR": str(state),
        "RNNLAB_TEAM_PORT": str(free_port()),
    }
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        encoding="utf-8",
    )
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        lines = dict(
            line.removeprefix("export ").split("=", 1)
            for line in started.stdout.split("\n")
            if line
        )
        assert lines["MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{env['RNNLAB_TEAM_PORT']}"
        assert lines["RAY_ADDRESS"] == "127.0.0.1:6379"
        yield {"env": env, "state": state, "uri": lines["MLFLOW_TRACKING_URI"]}
    finally:
        sessions = (
            (state / "sessions").read_text(encoding="utf-8").split()
            if (state / "sessions").exists()
            else []
        )
        stopped = subprocess.run(
            ["bash", str(SCRIPT), "stop"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            encoding="utf-8",
        )
        assert stopped.returncode == 0, stopped.stderr
        # nothing left: no namespace, no process of any session the stack started
        assert (
            env["RNNLAB_TEAM_NAME"]
            not in subprocess.run(
                ["ip", "netns", "list"], capture_output=True, text=True, encoding="utf-8"
            ).stdout
        )
        left = subprocess.run(
            ["ps", "-e", "-o", "sid="], capture_output=True, text=True, encoding="utf-8"
        ).stdout
        assert not set(sessions) & set(left.split()), "a process of the stack is still running"


def in_stack(
    stack, args: list[str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess:
    """A command inside the stack's namespace (as `scripts/team_stack.sh exec`)."""
    return subprocess.run(
        ["bash", str(SCRIPT), "exec", *args],
        cwd=cwd,
        env=stack["env"],
        capture_output=True,
        text=True,
        timeout=timeout,
        encoding="utf-8",
    )


def sweep_runs(client: MlflowClient, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return exp, parent, children, runs


def test_a_sweep_on_two_ray_nodes_is_recorded_in_postgresql(stack, tmp_path):
    experiment = "team-compare"
    proc = in_stack(
        stack,
        [
            str(RNNLAB),
            "-m",
            "experiment=compare_starts",
            *RAY_SWEEP,
            "tracking=server",
            f"tracking.experiment={experiment}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "14 jobs, 11 finished, 3 diverged, 0 failed" in proc.stdout

    # read back through the server, from outside the namespace (the forwarded port)
    client = MlflowClient(stack["uri"])
    exp, parent, children, runs = sweep_runs(client, experiment)
    assert exp.artifact_location.startswith("mlflow-artifacts:")  # through the server
    assert parent.info.status == "FINISHED" and len(runs) == 15  # nothing lost or misplaced
    assert sorted(int(c.data.tags["sweep_job"]) for c in children) == list(range(14))
    assert all(c.info.status == "FINISHED" for c in children)
    nodes = {c.data.tags.get("ray_node_id") for c in children}
    assert None not in nodes and len(nodes) >= 2, nodes  # jobs ran on both nodes
    for c in children:
        history = client.get_metric_history(c.info.run_id, "loss")
        if c.data.tags["status"] == "diverged":
            assert c.data.metrics["diverged"] == 1 and "final_loss" not in c.data.metrics
        else:
            history = sorted(history, key=lambda m: m.step)
            assert [m.step for m in history] == CHILD_POINTS  # nothing lost on the way
            assert history[-1].value == c.data.metrics["final_loss"]
    assert parent.data.metrics["jobs"] == 14 and parent.data.metrics["jobs_diverged"] == 3
    figures = {f.path for f in client.list_artifacts(parent.info.run_id, "figures")}
    assert {"figures/sweep_trajectories.png", "figures/sweep_loss_curves.png"} <= figures
    assert client.list_artifacts(parent.info.run_id, "summary")
    # the artifacts went through the server into its --artifacts-destination
    assert list((stack["state"] / "artifacts").rglob("sweep_trajectories.png"))

    # and the store is PostgreSQL: the same runs, read through MLflow from the database
    read = in_stack(
        stack,
        [
            str(REPO / ".venv" / "bin" / "python"),
            "-c",
            "import json, sys; from mlflow import MlflowClient;"
            "c = MlflowClient('postgresql+psycopg://rnnlab@127.0.0.1:5432/mlflow');"
            f"e = c.get_experiment_by_name('{experiment}');"
            "runs = c.search_runs([e.experiment_id], max_results=1000);"
            "print(json.dumps({r.info.run_id: r.info.status for r in runs}))",
        ],
        cwd=tmp_path,
        timeout=120,
    )
    assert read.returncode == 0, read.stderr[-2000:]
    in_db = json.loads(read.stdout.strip().splitlines()[-1])
    assert in_db == {r.info.run_id: r.info.status for r in runs}


def test_a_single_run_from_outside_the_namespace_and_the_status(stack, tmp_path):
    """The README's `uv run rnnlab tracking=server` beside the stack (through the
    forwarded port) and `scripts/team_stack.sh status` (the Ray nodes)."""
    env = {**stack["env"], "MLFLOW_TRACKING_URI": stack["uri"]}
    proc = subprocess.run(
        [str(RNNLAB), "tracking=server", "plots=none", "tracking.experiment=team-single"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        encoding="utf-8",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("MLflow run ")]
    assert line.endswith(f"in {stack['uri']}")
    assert f"In the MLflow UI: {stack['uri']}/#/experiments/" in proc.stdout  # the server's UI
    client = MlflowClient(stack["uri"])
    (run,) = client.search_runs([client.get_experiment_by_name("team-single").experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["final_loss"] > 0
    status = subprocess.run(
        ["bash", str(SCRIPT), "status"],
        env=stack["env"],
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    assert status.returncode == 0, status.stderr
    assert f"MLFLOW_TRACKING_URI={stack['uri']}" in status.stdout
    assert status.stderr.count(" node_") == 2  # Ray's status: two active nodes


def test_a_failing_job_on_the_cluster_is_named(stack, tmp_path):
    experiment = "team-failing"
    proc = in_stack(
        stack,
        [
            str(RNNLAB),
            "-m",
            "init=steady,vanish",
            "optimizer.eta_minus=0.5,1.5",  # 1.5 is out of range: those two jobs fail
            "plots=none",
            *RAY_SWEEP,
            "tracking=server",
            f"tracking.experiment={experiment}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    client = MlflowClient(stack["uri"])
    _, parent, children, _ = sweep_runs(client, experiment)
    assert parent.info.status == "FAILED"
    failed = sorted(c.data.tags["sweep_job"] for c in children if c.info.status == "FAILED")
    assert failed == ["1", "3"]  # jobs 1 and 3 have eta_minus=1.5
    assert sorted(parent.data.tags["failed_jobs"].replace(",", " ").split()) == failed
    assert all(c.info.status != "RUNNING" for c in children)


def _node_ids(stack, cwd: Path) -> dict[str, str]:
    """Ray node id -> the script's name for it (ray-head, ray-node-2)."""
    read = in_stack(
        stack,
        [
            str(REPO / ".venv" / "bin" / "python"),
            "-c",
            "import json, ray; ray.init(address='127.0.0.1:6379', logging_level='ERROR');"
            "print(json.dumps({n['NodeID']: n['ObjectStoreSocketName'] for n in ray.nodes()"
            " if n['Alive']}))",
        ],
        cwd=cwd,
        timeout=120,
    )
    assert read.returncode == 0, read.stderr[-2000:]
    sockets = json.loads(read.stdout.strip().splitlines()[-1])
    return {k: "ray-node-2" if "/node-2/" in v else "ray-head" for k, v in sockets.items()}


def test_a_worker_node_killed_mid_sweep_leaves_nothing_running(stack, tmp_path):
    experiment = "team-node-lost"
    nodes = _node_ids(stack, tmp_path)
    second = next(k for k, v in nodes.items() if v == "ray-node-2")
    command = [
        "bash",
        str(SCRIPT),
        "exec",
        str(RNNLAB),
        "-m",
        "experiment=compare_starts",
        "init=steady,explode,vanish,vanish_oscillate",  # 8 jobs of ~3 s on this stack
        *RAY_SWEEP,
        "tracking=server",
        f"tracking.experiment={experiment}",
    ]
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=stack["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    client = MlflowClient(stack["uri"])
    killed = False
    deadline = time.monotonic() + 240
    while not killed and proc.poll() is None and time.monotonic() < deadline:
        exp = client.get_experiment_by_name(experiment)
        running = (
            client.search_runs(
                [exp.experiment_id],
                f"tags.ray_node_id = '{second}' and attributes.status = 'RUNNING'",
            )
            if exp
            else []
        )
        # a job that has just started on the second node (so it cannot finish before the
        # kill lands): the node goes, all of it
        fresh = [r for r in running if time.time() * 1000 - r.info.start_time < 1000]
        if fresh:
            sid = int((stack["state"] / "ray-node-2.sid").read_text(encoding="utf-8"))
            out = subprocess.run(
                ["ps", "-e", "-o", "pid=,sid="], capture_output=True, text=True, encoding="utf-8"
            )
            for line in out.stdout.splitlines():
                pid, s = (int(x) for x in line.split())
                if s == sid:
                    os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.1)
    stdout, stderr = proc.communicate(timeout=600)
    assert killed, "no job was seen running on the second node"
    assert "Traceback" not in stdout.decode() + stderr.decode()
    _, parent, children, runs = sweep_runs(client, experiment)
    assert all(r.info.status != "RUNNING" for r in runs)  # nothing left RUNNING
    assert parent.info.status in ("FINISHED", "FAILED")
    lost = [c for c in children if c.info.status == "KILLED"]
    statuses = [
        (c.data.tags["sweep_job"], c.info.status, c.data.tags.get("ray_node_id")) for c in children
    ]
    assert lost and all(c.data.tags["ray_node_id"] == second for c in lost), (
        statuses,
        stdout[-3000:],
        stderr[-3000:],
    )
    # every job of the plan is accounted for: finished (Ray retried it on the head) or
    # named as failed on the parent
    finished = {c.data.tags["sweep_job"] for c in children if c.info.status == "FINISHED"}
    named = set(parent.data.tags.get("failed_jobs", "").replace(",", " ").split()) - {"none"}
    assert finished | named == {str(i) for i in range(8)}, (finished, named)
    description = parent.data.tags["mlflow.note.content"]
    assert "Retried" in description or "Failed: none" not in description


def _log_at_once(client: MlflowClient, runs: list[str], digest: str) -> list[Exception]:
    """Every run logs the same dataset, all released at the same moment; the errors."""
    import threading

    import numpy as np

    from rnnlab.store import log as log_mod

    X, t = np.arange(6.0).reshape(2, 3), np.array([3.0, 12.0])
    barrier, errors = threading.Barrier(len(runs)), []

    def log(run_id: str) -> None:
        barrier.wait()
        try:
            log_mod.log_dataset(client, run_id, "lab8", digest, X, t)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=log, args=(r,)) for r in runs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors


def test_runs_logging_the_same_data_at_once_all_get_it(stack):
    """MLflow's store looks a dataset up, then inserts it; runs of a parallel sweep that
    log the same data at once race on that insert in PostgreSQL (the 112-job benchmark
    lost a job to it). Each round, 8 runs log a new dataset at the same moment."""
    client = MlflowClient(stack["uri"])
    exp_id = client.create_experiment("team-datasets")
    for round_ in range(5):
        runs = [client.create_run(exp_id).info.run_id for _ in range(8)]
        errors = _log_at_once(client, runs, f"d{round_}")
        assert not errors, errors
        for run_id in runs:
            (logged,) = client.get_run(run_id).inputs.dataset_inputs
            assert logged.dataset.digest == f"d{round_}"
            client.set_terminated(run_id)
