"""rnnlab where the platform lacks what Linux has (issue 29): with ``fcntl``, ``os.fork`` and
``signal.SIGHUP`` taken away (a ``sitecustomize`` on PYTHONPATH, as on Windows, where
fork is missing, and macOS, where it is unsafe) the command runs in one process with the
same results: a run, the 14-job sweep, and a sweep interrupted mid-way (exit 130, nothing
left RUNNING). The journal of run ends keeps every entry while processes append to it."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import cli_command, cli_environment, new_store, run_cli
from mlflow.tracking import MlflowClient

from rnnlab.store import pending

pytestmark = pytest.mark.slow

SITECUSTOMIZE = """
import os, signal, sys
sys.modules["fcntl"] = None  # import fcntl: ImportError, as on Windows
for name in ("fork", "forkpty"):
    if hasattr(os, name):
        delattr(os, name)
del signal.SIGHUP
"""


@pytest.fixture
def no_posix(tmp_path) -> dict[str, str]:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = cli_environment()
    env["PYTHONPATH"] = str(tmp_path / "site")
    check = "import os, signal; print(hasattr(os, 'fork'), hasattr(signal, 'SIGHUP'))"
    python = str(Path(cli_command([])[0]).parent / "python")
    out = subprocess.run(
        [python, "-c", check], env=env, capture_output=True, text=True, encoding="utf-8"
    )
    assert out.stdout.split() == ["False", "False"]
    return env


def runs_in(db: Path) -> list:
    client = MlflowClient(f"sqlite:///{db}")
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids) if ids else []


def test_the_command_and_a_sweep_run_without_fork_fcntl_and_sighup(tmp_path, no_posix):
    db = new_store(tmp_path / "outputs" / "mlflow.db")
    run = subprocess.run(cli_command(["plots=none"]), cwd=tmp_path, env=no_posix,
                         capture_output=True, text=True, timeout=300, encoding="utf-8")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Final loss 0.111257 after 500 iterations (completed)." in run.stdout
    sweep = subprocess.run(cli_command(["-m", "experiment=compare_starts"]), cwd=tmp_path,
                           env=no_posix, capture_output=True, timeout=300,
                           encoding="utf-8")  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert "14 jobs, 11 finished, 3 diverged, 0 failed" in sweep.stdout
    found = runs_in(db)
    (parent,) = [r for r in found if r.data.tags.get("sweep") == "true"]
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 14 and {c.info.status for c in children} == {"FINISHED"}
    assert parent.info.status == "FINISHED"
    # one process: the sweep's every run is owned by the process the user started
    assert len({r.data.tags["rnnlab.pid"] for r in [parent, *children]}) == 1


def test_an_interrupted_sweep_without_fork_ends_killed(tmp_path, no_posix):
    db = new_store(tmp_path / "outputs" / "mlflow.db")
    args = [
        "-m",
        "init=steady,explode,vanish",
        "optimizer=rprop,gd",
        "iterations=4000",
        "plots=none",
    ]
    proc = subprocess.Popen(cli_command(args), cwd=tmp_path, env=no_posix, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, encoding="utf-8")  # fmt: skip
    deadline = time.monotonic() + 120
    while not any(r.data.tags.get("sweep_job") == "1" for r in runs_in(db)):  # job 1 began
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("rnnlab: interrupted (SIGINT); ")
    assert "Traceback" not in err
    found = runs_in(db)
    assert "RUNNING" not in {r.info.status for r in found}
    (parent,) = [r for r in found if r.data.tags.get("sweep") == "true"]
    assert parent.info.status == "KILLED"
    statuses = {
        r.data.tags["sweep_job"]: r.info.status for r in found if "sweep_job" in r.data.tags
    }
    # the jobs before the signal FINISHED; the one it came in (if it came in one, not
    # between two; job 1 may have ended by the time the store was read) KILLED; none after
    order = "".join(statuses[str(n)][0] for n in range(len(statuses)))
    assert re.fullmatch("F+K?", order) and len(order) < 6, statuses


def _append(state_dir: str, start: int, n: int) -> None:
    os.environ["RNNLAB_STATE_DIR"] = state_dir
    for i in range(start, start + n):
        pending.add(f"sqlite:///{state_dir}/other.db", f"run{i}", "KILLED", None)


def test_the_journal_loses_no_entry_while_processes_append_and_one_applies(tmp_path, monkeypatch):
    """Issue 29: the journal was read, filtered and rewritten without a lock while other
    processes (joblib's workers) appended to it."""
    monkeypatch.setenv("RNNLAB_STATE_DIR", str(tmp_path))
    store = f"sqlite:///{new_store(tmp_path / 'mine.db')}"
    client = MlflowClient(store)
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_append, args=(str(tmp_path), k * 1000, 300)) for k in (1, 2)]
    for w in writers:
        w.start()
    applied = 0
    while any(w.is_alive() for w in writers) or applied < 5:
        pending.add(store, "gone", "KILLED", None)  # a line for this store, applied next
        pending.apply(client)
        applied += 1
    for w in writers:
        w.join(timeout=60)
        assert w.exitcode == 0
    lines = pending.path().read_text(encoding="utf-8").splitlines()
    assert sorted(lines) == sorted(set(lines)) and len(lines) == 600  # the others' lines, all


def test_a_journal_line_for_a_run_the_store_no_longer_has_is_cleared_in_one_line(
    tmp_path, monkeypatch, capsys
):
    """Issue 29: a line for a purged run was cleared only for a tracking server's error; an
    SQLite store raises another, so it was retried at every start, for ever."""
    monkeypatch.setenv("RNNLAB_STATE_DIR", str(tmp_path))
    store = f"sqlite:///{new_store(tmp_path / 'mine.db')}"
    pending.add(store, "0123456789abcdef0123456789abcdef", "KILLED", "interrupted")
    pending.apply(MlflowClient(store))
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "rnnlab: run 0123456789abcdef0123456789abcdef is no longer in the store; its end is dropped"
    ]
    assert pending.path().read_text(encoding="utf-8") == ""
    pending.apply(MlflowClient(store))
    assert capsys.readouterr().err == ""  # not again


def test_an_unknown_platform_still_reads_the_store(tmp_path, no_posix):
    db = new_store(tmp_path / "outputs" / "mlflow.db")
    assert run_cli(["plots=none", "iterations=20"], tmp_path).returncode == 0
    (_run,) = runs_in(db)
    doctor = subprocess.run(cli_command([], "rnnlab-doctor"), cwd=tmp_path, env=no_posix,
                            capture_output=True, timeout=120, encoding="utf-8")  # fmt: skip
    assert doctor.returncode == 0 and "no orphaned runs" in doctor.stdout


ANSWER_THEN_WORK = """
import sys, time
from rnnlab.cli import command
from rnnlab.proc import link

class Recorder:  # its ask answers at once, then works for a second
    prog, done = "rnnlab", []
    def warm_up(self):
        pass
    def open_sweep(self):
        return link.Ready("answer", then=lambda: (time.sleep(1.0), self.done.append(1)))

def work(forwarder):
    t0 = time.monotonic()
    answer = forwarder.open_sweep().get()
    return 0 if answer == "answer" and time.monotonic() - t0 < 0.5 else 3

recorder = Recorder()
status = command._serve(recorder, work)
print(status, recorder.done)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="one process where fork is missing")
def test_a_two_process_answer_comes_before_the_work_that_follows_it():
    """What the recorder does after answering an ask (``Reply.then``: rnnlab.plots and
    MLflow's packages map, once a sweep's parent is open) does not hold up the worker,
    and is done."""
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", ANSWER_THEN_WORK], capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.split() == ["0", "[1]"], proc.stderr
