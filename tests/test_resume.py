"""Issue 22: an interrupted sweep resumed (``rnnlab-rerun PARENT_RUN_ID --resume``): only
the jobs that did not finish run again, under the same parent, whose summary then counts
every planned job once."""

from __future__ import annotations

import csv
import signal
import subprocess
import time

import pytest
from conftest import cli_command, cli_environment, new_store, run_cli
from mlflow.tracking import MlflowClient

INITS = "steady,vanish,vanish_oscillate,explode,lab_start"
JOBS = 10  # 5 starts x 2 optimisers


def children_by_job(client, parent):
    found = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    by_job: dict[int, list] = {}
    for c in found:
        by_job.setdefault(int(c.data.tags["sweep_job"]), []).append(c)
    return by_job


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_running_only_what_did_not_finish(tmp_path):
    db = new_store(tmp_path / "outputs" / "mlflow.db")
    client = MlflowClient(f"sqlite:///{db}")
    args = ["-m", f"init={INITS}", "optimizer=rprop,gd", "iterations=3000", "plots=none"]
    proc = subprocess.Popen(
        cli_command(args), cwd=tmp_path, env=cli_environment(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, encoding="utf-8",
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # a signal mid-sweep: once two jobs have finished
        done = [
            r
            for r in client.search_runs(["1"], "attributes.status = 'FINISHED'")
            if "sweep_job" in r.data.tags
        ]
        if len(done) >= 2 or proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    (parent,) = client.search_runs(["1"], "tags.sweep = 'true'")
    assert parent.info.status == "KILLED"
    before = children_by_job(client, parent)
    finished_before = {
        num: c.info.run_id for num, cs in before.items() for c in cs if c.info.status == "FINISHED"
    }
    assert 2 <= len(finished_before) < JOBS

    resumed = run_cli([parent.info.run_id, "--resume"], tmp_path, script="rnnlab-rerun")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{JOBS - len(finished_before)} of {JOBS} jobs to run" in resumed.stdout
    ran = [line for line in resumed.stdout.splitlines() if line.startswith("[job ")]
    assert len(ran) == JOBS - len(finished_before)

    parent = client.get_run(parent.info.run_id)
    assert parent.info.status == "FINISHED"
    after = children_by_job(client, parent)
    assert sorted(after) == list(range(JOBS))
    for num, cs in after.items():
        ok = [c for c in cs if c.info.status == "FINISHED"]
        assert len(ok) == 1, (num, [c.info.status for c in cs])  # each job finished once
        if num in finished_before:  # not run again
            assert ok[0].info.run_id == finished_before[num] and len(cs) == 1
        else:
            assert ok[0].data.tags["resumed"] == "true"
            earlier = [c for c in cs if c is not ok[0]]  # an interrupted attempt stays
            assert all(c.info.status == "KILLED" for c in earlier)
            if earlier:
                assert ok[0].data.tags["attempt_of"] in {c.info.run_id for c in earlier}
    m = parent.data.metrics
    assert (m["jobs"], m["jobs_not_started"], m["jobs_failed"]) == (JOBS, 0, 0)
    with open(
        client.download_artifacts(parent.info.run_id, "summary/summary.csv", str(tmp_path)),
        encoding="utf-8",
    ) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["job"]) for r in rows] == list(range(JOBS))
    assert {r["status"] for r in rows} == {"FINISHED"}
    assert {r["run_id"] for r in rows} == {
        c.info.run_id for cs in after.values() for c in cs if c.info.status == "FINISHED"
    }

    again = run_cli([parent.info.run_id, "--resume"], tmp_path, script="rnnlab-rerun")
    assert again.returncode == 0 and "nothing to resume" in again.stdout
