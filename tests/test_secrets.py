"""No password anywhere (issue 19, secrets): a tracking URI with credentials, in every
spelling Hydra or a shell gives it, leaves its password in no file a sweep writes (the
local run folders, Hydra's own records of the jobs, the server's store and artifacts,
the journal), in no tag or param, and on no console line.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import MlflowServer, cli_command, cli_environment
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from rnnlab.console import redact

pytestmark = [pytest.mark.slow, pytest.mark.faults]

SECRET = "s3cret-Pa55"


@pytest.mark.parametrize(
    "spelling",
    [
        r"tracking.uri=http\://alice\:{secret}@127.0.0.1\:{port}",  # as Hydra escapes it
        "tracking.uri='http://alice:{secret}@127.0.0.1:{port}'",  # quoted
        "tracking.uri=http://alice:{secret}@127.0.0.1:{port}",
    ],
)
def test_redaction_reads_every_spelling(spelling):
    text = spelling.format(secret=SECRET, port=5000)
    assert SECRET not in redact(text) and "alice" in redact(text)
    listed = f"[{text},{text}]"
    assert SECRET not in redact(listed)


def test_a_sweep_through_a_server_with_a_password_keeps_it_nowhere(tmp_path):
    server = MlflowServer(tmp_path / "server")
    try:
        uri = f"http://alice:{SECRET}@127.0.0.1:{server.port}"
        env = {**cli_environment(), "RNNLAB_STATE_DIR": str(tmp_path / "state")}
        work = tmp_path / "work"
        work.mkdir()
        sweeps = [
            (["-m", f"tracking.uri={uri}", "iterations=3,4"], env),
            (["-m", f"tracking.uri='{uri}'", "init=steady,vanish", "iterations=3"], env),
            (["-m", "tracking=server", "iterations=3,4"], {**env, "MLFLOW_TRACKING_URI": uri}),
            (
                ["-m", f"tracking.uri={uri}", "hydra/launcher=joblib", "iterations=3,4"],
                env,
            ),
            ([f"tracking.uri={uri}", "iterations=3"], env),  # a single run, its model too
        ]
        console = ""
        for args, run_env in sweeps:
            proc = subprocess.run(
                cli_command([*args, "plots=none"]),
                cwd=work,
                env=run_env,
                capture_output=True,
                text=True,
                timeout=300,
                encoding="utf-8",
            )
            assert proc.returncode == 0, proc.stderr
            console += proc.stdout + proc.stderr
        assert SECRET not in console
        assert "alice:***@" in console  # where the runs are, said without the password

        found = subprocess.run(
            ["grep", "-rl", "--binary-files=text", SECRET, str(tmp_path)],
            capture_output=True,
            text=True,
            encoding="utf-8",
        ).stdout.split()
        assert found == []

        client = MlflowClient(server.url)
        experiments = client.search_experiments(view_type=ViewType.ALL)
        runs = client.search_runs([e.experiment_id for e in experiments])
        assert len(runs) == 4 * 3 + 1  # four parents with two children each, one run
        for run in runs:
            for key, value in {**run.data.tags, **run.data.params}.items():
                assert SECRET not in value, (run.info.run_name, key)
    finally:
        server.stop()
