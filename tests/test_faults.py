"""Nothing left RUNNING, nothing hung, nothing leaked: rnnlab under signals, a dead
server and a full disk (issue 11).

Each case starts the real ``rnnlab`` command (its own process group, as a terminal
would), waits for a phase (before any run, during training, between a sweep's jobs,
while joblib's workers run), sends a signal to the launching process or to the whole
group, and then checks with the MLflow client: no run RUNNING (after ``rnnlab-doctor
--repair`` where only SIGKILL could leave one), the sweep's parent rolled up with its
summary, and no process of the command still alive, by pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import MlflowServer, cli_command, cli_environment, new_store, run_cli
from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.slow, pytest.mark.faults]

SINGLE = ["iterations=40000", "plots=none", "tracking.log_model=false"]  # ~2 s of training
SWEEP = ["-m", "init=steady,explode,vanish", "optimizer=rprop,gd", "iterations=4000", "plots=none"]


def wait_for(check: Callable[[], object], timeout: float = 60, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {check}")


def children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = children_of(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.add(pid)
        except OSError:
            pass
    return out


class Command:
    """The rnnlab command, started in a process group of its own."""

    def __init__(self, args: list[str], cwd: Path, script: str = "rnnlab") -> None:
        self.cwd = cwd
        self.proc = subprocess.Popen(
            cli_command(args, script),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**cli_environment(), "RNNLAB_STATE_DIR": str(cwd / "state")},
            start_new_session=True,
            encoding="utf-8",
        )
        self.seen: set[int] = {self.proc.pid}

    def watch(self) -> None:
        """Remember every process the command has started so far."""
        self.seen |= descendants(self.proc.pid)

    def signal(self, sig: int, group: bool = False) -> None:
        self.watch()
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def finish(self, timeout: float = 90) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def leftovers(self, wait: float = 20) -> set[int]:
        """The command's processes still alive ``wait`` seconds after it ended."""
        deadline = time.monotonic() + wait
        while alive(self.seen) and time.monotonic() < deadline:
            time.sleep(0.2)
        return alive(self.seen)


def runs(cwd: Path) -> list:
    db = cwd / "outputs" / "mlflow.db"
    if not db.exists():
        return []
    client = MlflowClient(f"sqlite:///{db}")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def running(cwd: Path) -> list:
    return [r for r in runs(cwd) if r.info.status == "RUNNING"]


def parent(cwd: Path):
    found = [r for r in runs(cwd) if r.data.tags.get("sweep") == "true"]
    return found[0] if found else None


def children(cwd: Path) -> list:
    p = parent(cwd)
    return [r for r in runs(cwd) if p and r.data.tags.get("mlflow.parentRunId") == p.info.run_id]


def assert_rolled_up(cwd: Path) -> None:
    """The parent ended with its summary: every planned job accounted for."""
    p = parent(cwd)
    assert p is not None and p.info.status in ("KILLED", "FAILED"), p and p.info.status
    m = p.data.metrics
    assert m["jobs"] == 6, m
    done = len([c for c in children(cwd) if c.info.status == "FINISHED"])
    killed = len([c for c in children(cwd) if c.info.status == "KILLED"])
    assert m["jobs_killed"] == killed, m  # a killed job is not counted as failed
    assert m["jobs_not_started"] + done + m["jobs_failed"] + killed == 6, m
    client = MlflowClient(f"sqlite:///{cwd}/outputs/mlflow.db")
    arts = {f.path for f in client.list_artifacts(p.info.run_id, "summary")}
    assert "summary/summary.csv" in arts


def repair(cwd: Path) -> None:
    proc = run_cli([], cwd=cwd, script="rnnlab-doctor")
    assert proc.returncode == 0 and "orphaned" in proc.stdout, proc.stdout + proc.stderr
    proc = run_cli(["--repair"], cwd=cwd, script="rnnlab-doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def work(tmp_path) -> Path:
    new_store(tmp_path / "outputs" / "mlflow.db")
    return tmp_path


# --- a single run -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sig", "group"),
    [
        (signal.SIGINT, True),
        (signal.SIGTERM, False),
        (signal.SIGHUP, False),
        (signal.SIGTERM, True),
    ],
    ids=["ctrl-c", "sigterm", "sighup", "sigterm-group"],
)
def test_a_signal_during_training_ends_the_run_killed(work, sig, group):
    cmd = Command(SINGLE, work)
    wait_for(lambda: running(work))
    cmd.watch()
    assert len(cmd.seen) == 2  # the recorder and its worker
    time.sleep(0.5)
    cmd.signal(sig, group)
    code, _, err = cmd.finish()
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    (run,) = runs(work)
    assert run.info.status == "KILLED" and run.data.tags["error"].startswith("interrupted")
    assert not cmd.leftovers()


def test_a_signal_before_the_run_exists_leaves_nothing(work):
    cmd = Command(SINGLE, work)
    time.sleep(0.4)  # Python and Hydra starting: no run yet
    cmd.signal(signal.SIGTERM)
    code, _, err = cmd.finish()
    assert code in (130, -signal.SIGTERM) and "Traceback" not in err, (code, err)
    assert running(work) == [] and not cmd.leftovers()


def test_a_signal_while_metrics_are_recorded_ends_the_run_killed(work):
    cmd = Command(["iterations=60000", "plots=none", "tracking.log_model=false"], work)
    client = MlflowClient(f"sqlite:///{work}/outputs/mlflow.db")

    def logging() -> bool:
        r = running(work)
        return bool(r) and bool(client.get_metric_history(r[0].info.run_id, "loss"))

    wait_for(logging, timeout=120, step=0.05)
    cmd.signal(signal.SIGTERM)
    code, _, err = cmd.finish()
    assert code == 130 and "Traceback" not in err, err
    assert running(work) == [] and not cmd.leftovers()


def test_kill_9_leaves_a_run_the_doctor_repairs(work):
    cmd = Command(SINGLE, work)
    wait_for(lambda: running(work))
    cmd.signal(signal.SIGKILL)
    cmd.finish()
    assert not cmd.leftovers()  # the worker notices and ends too
    (run,) = running(work)  # only SIGKILL can leave one
    # the next rnnlab start says so in one line
    proc = run_cli(["plots=none", "iterations=3"], cwd=work)
    assert proc.returncode == 0 and "rnnlab-doctor --repair" in proc.stderr, proc.stderr
    repair(work)
    assert (
        running(work) == []
        and MlflowClient(f"sqlite:///{work}/outputs/mlflow.db").get_run(run.info.run_id).info.status
        == "KILLED"
    )


@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [(signal.SIGKILL, 1, "the worker process was killed (SIGKILL)"),
     (signal.SIGTERM, 130, "interrupted (a signal to its worker process)")],
    ids=["oom-kill", "sigterm"],
)  # fmt: skip
@pytest.mark.parametrize("args", [SINGLE, SWEEP], ids=["run", "sweep"])
def test_the_worker_killed_alone_is_told_in_one_line(work, sig, code, said, args):
    """Issue 30, 11: what the OOM killer does (its worker killed, the command not) was told
    in not one line (exit 247)."""
    cmd = Command(args, work)
    wait_for(lambda: running(work) if args is SINGLE else len(children(work)) >= 2)
    cmd.watch()
    worker = min(p for p in cmd.seen if p != cmd.proc.pid)  # the command's first child
    os.kill(worker, sig)
    got, out, err = cmd.finish()
    lines = err.strip().splitlines()
    assert got == code and len(lines) == 1 and said in lines[0], (got, err)
    assert "KILLED" in lines[0] and "Traceback" not in out + err
    assert running(work) == [] and not cmd.leftovers()
    killed = {r.info.run_id for r in runs(work) if r.info.status == "KILLED"}
    assert killed and all(rid[:8] in lines[0] or "runs marked KILLED" in lines[0] for rid in killed)


# --- a sweep, basic launcher ------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "sig", "group"),
    [
        ("before-jobs", signal.SIGTERM, False),
        ("between-jobs", signal.SIGTERM, False),
        ("between-jobs", signal.SIGINT, True),
        ("between-jobs", signal.SIGHUP, False),
    ],
    ids=["sigterm-before-jobs", "sigterm-between-jobs", "ctrl-c", "sighup"],
)
def test_a_signal_to_a_sweep_ends_the_parent_killed_with_its_summary(work, phase, sig, group):
    cmd = Command(SWEEP, work)
    if phase == "before-jobs":
        wait_for(lambda: parent(work))  # the parent exists, the jobs are being composed
    else:
        wait_for(lambda: len(children(work)) >= 2)
    cmd.signal(sig, group)
    code, out, err = cmd.finish()
    assert code == 130 and "Traceback" not in err, err
    assert running(work) == [], [r.info.run_name for r in running(work)]
    assert_rolled_up(work)
    assert "NOT STARTED" in out  # the summary counts the jobs that never started
    assert not cmd.leftovers()


def test_kill_9_to_a_sweep_the_doctor_rolls_the_parent_up(work):
    cmd = Command(SWEEP, work)
    wait_for(lambda: len(children(work)) >= 2)
    cmd.signal(signal.SIGKILL)
    cmd.finish()
    assert not cmd.leftovers()
    assert running(work)  # the parent (and maybe a job) left RUNNING
    repair(work)
    assert running(work) == []
    assert_rolled_up(work)
    # a rerun of the interrupted sweep reruns every job of it, not only those that ran
    proc = run_cli([parent(work).info.run_id], cwd=work, script="rnnlab-rerun")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sum(line.startswith("[job ") for line in proc.stdout.splitlines()) == 6


def test_two_ctrl_c_as_the_summary_begins_keep_the_parents_end(work):
    """Issue 30, 10: Ctrl-C twice 0.2 s apart after a sweep's last job left its parent
    RUNNING, unjournaled, and said "no run was open"."""
    cmd = Command([*SWEEP[:-1], "plots.dpi=40"], work)  # with figures: a summary that takes time
    wait_for(lambda: [c.info.status for c in children(work)].count("FINISHED") == 6, timeout=120)
    cmd.signal(signal.SIGINT, group=True)
    time.sleep(0.2)
    cmd.signal(signal.SIGINT, group=True)
    code, out, err = cmd.finish()
    assert code == 130 and "Traceback" not in out + err and not cmd.leftovers(), err
    (line,) = err.strip().splitlines()
    p = parent(work)
    if p.info.status == "RUNNING":  # the second signal came before its end was written
        assert line.endswith("1 run(s) to be marked KILLED on the next rnnlab start"), line
        entries = [
            json.loads(x)
            for x in (work / "state" / "pending.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        assert [(e["run_id"], e["status"]) for e in entries] == [(p.info.run_id, "KILLED")]
        journal = {**cli_environment(), "RNNLAB_STATE_DIR": str(work / "state")}
        proc = run_cli([], cwd=work, script="rnnlab-doctor", env=journal)
        assert proc.returncode == 0, proc.stderr
    else:
        assert "no run was open" not in line, line
    assert running(work) == [] and parent(work).info.status == "KILLED"


# --- a sweep, joblib launcher -----------------------------------------------------------

JOBLIB = [*SWEEP, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGINT, True)],
    ids=["sigterm-main", "sigterm-group", "ctrl-c"],
)
def test_a_signal_to_a_joblib_sweep_ends_its_workers_and_runs(work, sig, group):
    cmd = Command(JOBLIB, work)
    wait_for(lambda: len(children(work)) >= 2, timeout=120)
    cmd.watch()
    assert len(cmd.seen) >= 4  # recorder, Hydra's worker, two joblib workers (and more)
    cmd.signal(sig, group)
    code, _, err = cmd.finish()
    assert code == 130 and "Traceback" not in err, err
    assert running(work) == [], [r.info.run_name for r in running(work)]
    assert_rolled_up(work)
    assert not cmd.leftovers(), "joblib's workers outlived the sweep"


def test_kill_9_to_a_joblib_sweep_leaves_no_worker_behind(work):
    cmd = Command(JOBLIB, work)
    wait_for(lambda: len(children(work)) >= 2, timeout=120)
    cmd.signal(signal.SIGKILL)
    cmd.finish()
    assert not cmd.leftovers(wait=30), "joblib's workers outlived the sweep"
    repair(work)
    assert running(work) == []
    assert_rolled_up(work)


def test_kill_9_of_a_joblib_sweeps_worker_leaves_no_process(work):
    """Issue 30, 12: kill -9 of the worker (not the command) in a joblib sweep left two
    loky workers and two resource trackers alive, ignoring SIGTERM."""
    cmd = Command(JOBLIB, work)
    wait_for(lambda: len(children(work)) >= 2, timeout=120)
    cmd.watch()
    worker = min(p for p in cmd.seen if p != cmd.proc.pid)
    os.kill(worker, signal.SIGKILL)
    code, out, err = cmd.finish()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    (line,) = lines
    assert code == 1 and "the worker process was killed (SIGKILL)" in line, err
    assert "Traceback" not in out + err and "no run was open" not in line
    assert running(work) == [] and not cmd.leftovers(wait=30), "joblib's workers outlived it"


# --- a store that stops working ---------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["iterations=20000", "plots=none", "tracking.log_model=false"],
     [*SWEEP[:-2], "iterations=20000", "plots=none"]],
    ids=["run", "sweep"],
)  # fmt: skip
def test_a_full_disk_ends_in_one_line_and_the_run_is_ended_later(tmp_path, args):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"this machine forbids mounting a small disk: {mounted.stderr.decode()}")
    try:
        new_store(disk / "mlflow.db")
        filler = disk / "filler"
        filler.write_bytes(b"\0" * 1_500_000)  # ~0.5 MB left for the run
        uri = f"sqlite:///{disk}/mlflow.db"
        cmd = Command([*args, f"tracking.uri={uri}"], tmp_path)
        code, out, err = cmd.finish(timeout=120)
        assert code == 1, (code, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "the disk is full" in lines[0], err
        assert "no run was open" not in lines[0]  # (said of runs that were open: issue 30, 9)
        assert "Traceback" not in out + err and not cmd.leftovers()
        filler.unlink()  # space again: the run's end is written on the next start
        client = MlflowClient(uri)
        journal = {**cli_environment(), "RNNLAB_STATE_DIR": str(tmp_path / "state")}
        proc = run_cli(["--tracking-uri", uri], cwd=tmp_path, script="rnnlab-doctor", env=journal)
        assert proc.returncode == 0
        found = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert found and all(r.info.status in ("KILLED", "FAILED", "FINISHED") for r in found), err
        assert {r.info.status for r in found if not r.data.tags.get("mlflow.parentRunId")} <= {
            "KILLED",
            "FAILED",
        }
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_server_that_dies_mid_sweep_ends_it_in_one_line(tmp_path):
    server = MlflowServer(tmp_path / "server")
    try:
        args = [*SWEEP, "tracking=server", f"tracking.uri={server.url}"]
        cmd = Command(args, tmp_path)
        client = MlflowClient(server.url)

        def jobs_done() -> int:
            exps = client.search_experiments()
            found = client.search_runs([e.experiment_id for e in exps]) if exps else []
            return sum(r.info.status == "FINISHED" for r in found) >= 1

        wait_for(jobs_done, timeout=120, step=0.3)
        server.stop(signal.SIGKILL)
        t0 = time.monotonic()
        code, out, err = cmd.finish(timeout=120)
        assert time.monotonic() - t0 < 60  # seconds, not minutes
        assert code == 1 and "Traceback" not in out + err, (code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "stopped working" in lines[0], err
        assert not cmd.leftovers()
        server.start()  # back: the doctor (or the next start) ends what was left
        proc = run_cli(["--repair", "--tracking-uri", server.url], tmp_path, script="rnnlab-doctor")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        found = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert found and not [r for r in found if r.info.status == "RUNNING"]
    finally:
        server.stop()


# --- issue 19: moments the suites above did not reach ----------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_the_summary_still_gives_the_summary(work, sig):
    """Issue 19, fault 3: a signal after the last child finished ended the parent FAILED,
    often without its summary, and the console table was not printed."""
    cmd = Command([*SWEEP[:-2], "iterations=50", "plots=none"], work)
    # the last job's line is printed as its run ends; the summary follows at once
    lines = []
    for line in cmd.proc.stdout:
        lines.append(line)
        if line.startswith("[job 5]"):
            cmd.signal(sig)
            break
    code, out, err = cmd.finish()
    out = "".join(lines) + out
    assert code == 130, (code, out, err)
    p = parent(work)
    assert p.info.status == "KILLED"
    assert_rolled_up(work)
    assert p.data.metrics["jobs"] == 6 and "6 jobs" in out  # the table was printed
    assert err.strip().splitlines()[-1] == (
        f"rnnlab: interrupted ({signal.Signals(sig).name}); run {p.info.run_id} marked KILLED"
    )
    assert running(work) == []


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5])
def test_an_interruption_before_any_run_says_so(work, delay):
    """Issue 19, fault 6: "the run was marked KILLED" was printed when no run existed,
    and a signal during start-up ended the command -15 with no word."""
    cmd = Command(SINGLE, work)
    time.sleep(delay)  # start-up: imports, Hydra, the worker; no run yet
    cmd.signal(signal.SIGTERM)
    code, out, err = cmd.finish()
    if code == -signal.SIGTERM:  # before Python ran any of rnnlab's code (a loaded machine):
        assert delay < 0.1 and (out, err) == ("", "")  # Python's default end, nothing made
        assert runs(work) == [] and not (work / "outputs" / "runs").exists()
        return
    assert code == 130, (code, out, err)
    assert err.strip().splitlines() == [
        "rnnlab: interrupted (SIGTERM); no run had been recorded yet"
    ], err
    assert runs(work) == []


def test_a_signal_just_after_the_run_ended_exits_130(work):
    """Issue 19, fault 6: a signal just after a run finished ended the command -15, -1
    or -2 (Python's exit restores the default handlers for its last steps)."""
    for _ in range(3):
        cmd = Command(["iterations=5", "plots=none", "tracking.log_model=false"], work)
        for line in cmd.proc.stdout:
            if line.startswith("MLflow run "):
                cmd.signal(signal.SIGTERM)
                break
        code, out, err = cmd.finish()
        assert code in (0, 130), (code, out, err)
        assert "Traceback" not in err
    assert running(work) == [] and len(runs(work)) == 3
    assert {r.info.status for r in runs(work)} == {"FINISHED"}


def test_a_signal_at_any_moment_of_recording_is_told_as_it_happened(work):
    """Issue 19, fault 2: SIGHUP while the model was logged printed "the run was marked
    KILLED" while the store showed the run RUNNING, with nothing in the journal. Signals
    at moments spread over a run's recording (metrics, files, the model, its end): the
    line printed always matches the store, and no run is left RUNNING."""
    said = []
    for delay in (1.6, 1.8, 2.0, 2.2, 2.4, 2.6, 2.8, 3.0):
        cmd = Command(["iterations=500", "plots=default", "plots.resolution=50"], work)
        time.sleep(delay)
        cmd.signal(signal.SIGHUP)
        code, _, err = cmd.finish()
        assert code in (0, 130) and "Traceback" not in err, (delay, code, err)
        if code == 130:
            last = err.strip().splitlines()[-1]
            said.append(last)
            if "marked KILLED" in last:
                run_id = last.split("run ")[1].split()[0]
                store = MlflowClient(f"sqlite:///{work}/outputs/mlflow.db")
                assert store.get_run(run_id).info.status == "KILLED", (delay, last)
        assert running(work) == [], (delay, err)
    assert said, "no signal landed before the run ended: the delays need adjusting"


def test_a_store_locked_by_another_process_is_named_so(work):
    """Issue 30, 14: a store another process holds locked ended in SQLAlchemy's garbled
    reason ("raised as a result of Query-invoked autoflush")."""
    import sqlite3

    db = sqlite3.connect(work / "outputs" / "mlflow.db", isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")  # as another process's long write holds it
    try:
        proc = run_cli(["iterations=3", "plots=none", "tracking.log_model=false"], cwd=work)
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr.strip().splitlines() == [
        "rnnlab: error: cannot use the MLflow store: the database is locked by another "
        "process (for longer than SQLite waits)"
    ]
    assert runs(work) == [] and not (work / "outputs" / "runs").exists()
