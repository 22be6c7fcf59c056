"""A store and a journal that a fault cannot break (issue 19, faults 1, 4 and 5).

- A fresh SQLite store is made whole or not at all: killed (SIGKILL) at every step of
  MLflow's schema migrations, the store's path never holds a half-made schema, and the
  next start makes it whole (before, 3 of 9 tries left `table ... already exists` for
  good).
- The journal of end states tolerates lines it cannot read.
- A run whose artifact write fails still ends in the store.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import pytest
from conftest import new_store
from mlflow.tracking import MlflowClient

from rnnlab.store import client as client_mod
from rnnlab.store import pending, runs

pytestmark = [pytest.mark.slow, pytest.mark.faults]


def create_killed_at(path: Path, step: int | None) -> int:
    """In a forked child, open (create) the store at ``path`` and SIGKILL the child as
    the ``step``-th write of the schema's version begins (None: no kill). Returns the
    number of version writes the child made before it ended (or its exit code < 0)."""
    count_file = path.parent / f"count-{os.getpid()}"
    pid = os.fork()
    if pid == 0:  # the child
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        seen = 0

        @event.listens_for(Engine, "before_cursor_execute")
        def _count(conn, cursor, statement, *args):
            nonlocal seen
            if "alembic_version" in statement and statement.lstrip().upper().startswith(
                ("UPDATE", "INSERT")
            ):
                seen += 1
                count_file.write_text(str(seen), encoding="utf-8")
                if seen == step:
                    os.kill(os.getpid(), signal.SIGKILL)

        try:
            client_mod.client_for(f"sqlite:///{path}")
            code = 0
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    seen = int(count_file.read_text(encoding="utf-8")) if count_file.exists() else 0
    count_file.unlink(missing_ok=True)
    return code, seen


def schema_is_whole(path: Path) -> bool:
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        (version,) = db.execute("select version_num from alembic_version").fetchone()
    return {"runs", "metrics", "experiments", "alembic_version"} <= tables and bool(version)


def test_a_fresh_store_killed_at_every_migration_step_is_never_half_made(tmp_path):
    # how many steps a creation takes (each writes the schema's version)
    code, steps = create_killed_at(tmp_path / "count" / "mlflow.db", None)
    assert code == 0 and steps >= 10, (code, steps)
    for step in range(1, steps + 1):
        path = tmp_path / f"s{step}" / "mlflow.db"
        code, seen = create_killed_at(path, step)
        assert code == -signal.SIGKILL and seen == step, (step, code, seen)
        # the store's path holds nothing half-made: no store at all
        assert not path.exists() or path.stat().st_size == 0, step
        # the next start (another process) makes it whole, the leftovers cleared
        code, _ = create_killed_at(path, None)
        assert code == 0, step
        assert schema_is_whole(path), step
        leftovers = [p.name for p in path.parent.iterdir() if client_mod.CREATING in p.name]
        assert leftovers == [], (step, leftovers)
        client = MlflowClient(f"sqlite:///{path}")
        eid = client.create_experiment("after", artifact_location=str(tmp_path / "a"))
        assert client.create_run(eid).info.status == "RUNNING"


def test_a_journal_with_unreadable_lines_sets_them_aside(tmp_path, monkeypatch, capfd):
    """Issue 19, fault 5: `[1,2]` or a `\\xff` byte in pending.jsonl crashed every command."""
    monkeypatch.setenv("RNNLAB_STATE_DIR", str(tmp_path / "state"))
    uri = f"sqlite:///{new_store(tmp_path / 'mlflow.db')}"
    client = MlflowClient(uri)
    eid = client.create_experiment("e", artifact_location=str(tmp_path / "art"))
    waiting = client.create_run(eid).info.run_id
    journal = pending.path()
    journal.parent.mkdir(parents=True)
    good = json.dumps({"uri": uri, "run_id": waiting, "status": "KILLED", "error": "gone"})
    other = json.dumps({"uri": "sqlite:////elsewhere.db", "run_id": "x", "status": "FAILED"})
    journal.write_bytes(
        b"[1,2]\n" + good.encode() + b"\n\xff\xfe\n" + b'{"uri": 5}\n' + other.encode() + b"\n"
    )
    client_mod.forget(uri)
    client_mod.client_for(uri)
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [
        f"rnnlab: recorded run {waiting} as KILLED (its end could not be written when it stopped)",
        f"rnnlab: 3 line(s) of the journal {journal} could not be read; set aside in {journal}.bad",
    ]
    assert client.get_run(waiting).info.status == "KILLED"
    assert journal.read_text(encoding="utf-8") == other + "\n"  # another store's entry waits on
    assert Path(f"{journal}.bad").read_bytes() == b'[1,2]\n\xff\xfe\n{"uri": 5}\n'


def test_a_journal_keeps_no_password(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_STATE_DIR", str(tmp_path / "state"))
    pending.add(
        "http://alice:s3cret@127.0.0.1:9/", "r1", "KILLED", "failed at http://alice:s3cret@h/"
    )
    text = pending.path().read_text(encoding="utf-8")
    assert "s3cret" not in text and text.count("alice:***@") == 2


def test_an_artifact_write_that_fails_still_ends_the_run(tmp_path, monkeypatch):
    """Issue 19, fault 4: with the artifact folder replaced by a file, the FAILED end
    waited in the journal though the store took writes."""
    monkeypatch.setenv("RNNLAB_STATE_DIR", str(tmp_path / "state"))
    uri = f"sqlite:///{new_store(tmp_path / 'mlflow.db')}"
    client = MlflowClient(uri)
    (tmp_path / "art").write_text("a file where the artifact folder should be", encoding="utf-8")
    eid = client.create_experiment("e", artifact_location=str(tmp_path / "art"))
    run_id = client.create_run(eid).info.run_id
    assert runs.end(client, run_id, "FAILED", "boom", trace="Traceback ...: boom")
    run = client.get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["error"] == "boom"
    assert not pending.path().exists()  # nothing waits: it was written
    assert (run_id, "FAILED", True) in runs.history  # recorded as written


def test_the_console_line_names_every_run_by_its_last_word(tmp_path, monkeypatch):
    """Issue 30, 9 and 14: "no run was open" was said of runs that were open and then
    ended (their end waiting in the journal), and one run could be journaled twice."""
    monkeypatch.setenv("RNNLAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(runs, "history", [])
    uri = f"sqlite:///{new_store(tmp_path / 'mlflow.db')}"
    client = MlflowClient(uri)
    done, waits, open_ = (client.create_run("0").info.run_id for _ in range(3))
    for rid in (done, waits, open_):
        runs.history.append((rid, "RUNNING", True))
    assert runs.end(client, done, "FINISHED")
    dead = MlflowClient(f"sqlite:///{tmp_path}/gone/nowhere.db")  # takes no write
    assert not runs.end(dead, waits, "FAILED", "the disk is full")
    mark = len(runs.history)  # the moment the command noticed
    assert not runs.end(client, waits, "KILLED", "again")  # its first end stands
    assert [
        json.loads(x)["status"] for x in pending.path().read_text(encoding="utf-8").splitlines()
    ] == ["FAILED"]
    line = runs.what_ended(mark)
    assert line == (
        f"run {waits} to be marked FAILED when the store takes writes again (the next rnnlab "
        f"start against it, or rnnlab-doctor --repair); run {open_} left RUNNING "
        "(rnnlab-doctor --repair ends it)"
    )
    assert runs.end(client, open_, "KILLED", "interrupted")
    assert runs.what_ended(mark).startswith(f"run {open_} marked KILLED; run {waits} to be")
    monkeypatch.setattr(runs, "history", [(done, "RUNNING", True), (done, "FINISHED", True)])
    assert runs.what_ended(2) == "no run was open"
