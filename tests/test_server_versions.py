"""rnnlab against the MLflow servers teams run (issue 28): a real 2.x server (2.22.1, in a
virtual environment of its own that the test makes with uv, on 127.0.0.1) takes single runs
with their model, sweeps and reruns, all FINISHED; a server too old for what rnnlab records
(2.3.2: no dataset inputs) is one line before any run exists. (MLflow 3.17, rnnlab's own, is
served by tests/test_server.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow.artifacts
import pytest
from conftest import free_port, run_cli
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

# A server's release and the day its dependencies are resolved as of (what a machine that
# installed it then has: later SQLAlchemy and setuptools releases break these servers).
RELEASES = {"2.22.1": ("2025-06-15", []), "2.3.2": ("2023-06-30", ["setuptools<70"])}


class OldServer:
    """``mlflow server`` of another MLflow release on 127.0.0.1, its store under ``folder``."""

    def __init__(self, release: str, folder: Path) -> None:
        self.venv, self.port = folder / "venv", free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        as_of, extra = RELEASES[release]
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        subprocess.run(["uv", "venv", "--python", sys.executable, str(self.venv)],
                       check=True, capture_output=True, env=env, timeout=120)  # fmt: skip
        subprocess.run(
            ["uv", "pip", "install", "--python", str(self.venv / "bin" / "python"),
             "--exclude-newer", as_of, f"mlflow=={release}", *extra],
            check=True, capture_output=True, env=env, timeout=900,
        )  # fmt: skip
        bin_dir = self.venv / "bin"
        self.proc = subprocess.Popen(
            [str(bin_dir / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{folder}/server.db",
             "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env={**env, "PATH": f"{bin_dir}:{env['PATH']}"},
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/version", timeout=2) as r:
                    assert r.read().decode().strip() == release
                return
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.5)

    def stop(self) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server_2x(tmp_path_factory):
    server = OldServer("2.22.1", tmp_path_factory.mktemp("mlflow-2.22.1"))
    yield server.url
    server.stop()


def test_a_2x_server_takes_runs_with_their_model_sweeps_and_reruns(tmp_path, server_2x):
    client = MlflowClient(server_2x)
    proc = run_cli(
        ["tracking=server", f"tracking.uri={server_2x}", "plots.resolution=40"], tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    (run,) = client.search_runs([client.get_experiment_by_name("rnnlab").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["final_loss"] == pytest.approx(0.111257, rel=1e-5)
    # the model is the run's artifacts (a 2.x server has no logged models): it loads and
    # predicts the lab's test sequence as the run's test output
    predict = (
        "import mlflow, numpy as np; "
        f"m = mlflow.pyfunc.load_model('runs:/{run.info.run_id}/model'); "
        "print(float(m.predict(np.array([[0.66, 0.33, 0.33, 0.66, 1.0] * 4]))[0]))"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": server_2x}
    out = subprocess.run([sys.executable, "-c", predict], capture_output=True, text=True,
                         env=env, timeout=120, check=True, encoding="utf-8").stdout  # fmt: skip
    assert float(out.split()[-1]) == pytest.approx(run.data.metrics["test_output"], rel=1e-9)

    again = run_cli([run.info.run_id, "--tracking-uri", server_2x], tmp_path, script="rnnlab-rerun")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Final loss 0.111257" in again.stdout

    proc = run_cli(
        ["-m", "experiment=compare_starts", "tracking=server", f"tracking.uri={server_2x}",
         "init=steady,explode,vanish", "iterations=100"],
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "6 jobs, " in proc.stdout and proc.stderr == ""
    exp = client.get_experiment_by_name("compare_starts")
    (parent,) = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")
    children = client.search_runs(
        [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert parent.info.status == "FINISHED" and len(children) == 6
    assert {c.info.status for c in children} == {"FINISHED"}
    # (MLflow 3's client lists a run's artifacts through logged models; a 2.x server has
    # none, so the listing goes to the artifact store itself)
    found = mlflow.artifacts.list_artifacts(parent.info.artifact_uri, tracking_uri=server_2x)
    listed = {f.path.rsplit("/", 1)[-1] for f in found}
    assert {"summary", "model", "figures", "sweep"} <= listed


def test_a_server_too_old_is_one_line_before_any_run(tmp_path_factory, tmp_path):
    server = OldServer("2.3.2", tmp_path_factory.mktemp("mlflow-2.3.2"))
    try:
        for args in ([], ["-m", "init=steady,explode"]):
            proc = run_cli([*args, "tracking=server", f"tracking.uri={server.url}"], tmp_path)
            assert proc.returncode == 2 and proc.stdout == ""
            assert proc.stderr.splitlines() == [
                f"rnnlab: error: the tracking server at {server.url} runs MLflow 2.3.2; rnnlab "
                "needs 2.4 or newer for dataset inputs (runs/log-inputs), which every run records"
            ]
        client = MlflowClient(server.url)
        assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []
        assert not (tmp_path / "outputs").exists()
    finally:
        server.stop()
