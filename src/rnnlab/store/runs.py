"""A run's life in the store: started with its owner on it (host, pid, start time), ended
FINISHED, FAILED (the error recorded) or KILLED, the end kept in the journal where the
store cannot take it."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

import psutil

from rnnlab import console
from rnnlab.store import pending

HOST_TAG, PID_TAG, PID_START_TAG = "rnnlab.host", "rnnlab.pid", "rnnlab.pid_start"
ERROR_TAG = "error"

# (run id, status, written), in order: how this process started (RUNNING) and ended each
# run (written False: the end waits in the journal), so that what a command says is true
history: list[tuple[str, str, bool]] = []


def process_tags(pid: int | None = None) -> dict[str, str]:
    """The owner of a run: this host, the process's pid and its start time (so that a pid
    reused by another process does not look like the owner)."""
    pid = os.getpid() if pid is None else pid
    started = f"{psutil.Process(pid).create_time():.2f}"
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_START_TAG: started}


def owner_alive(tags: Mapping[str, str]) -> bool | None:
    """Whether the process that owns a run (by its tags) still runs; None where this
    machine cannot tell (another host, or a run without the tags)."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return None
    try:
        started = psutil.Process(int(tags[PID_TAG])).create_time()
    except psutil.Error:
        return False
    recorded = tags.get(PID_START_TAG, "")
    if "." not in recorded:  # not a start time (none, or an older rnnlab's clock ticks)
        return True
    return abs(float(recorded) - started) < 0.05


def what_ended(since: int = 0) -> str:
    """What became of the runs this process started, in a few words for the console: each
    one whose last word came at or after ``history[since]``, each one whose end waits in the
    journal (whenever that was), and each one still open; built from the last word on each
    run, so that it cannot contradict what the store (or the journal) holds."""
    if not history:
        return "no run had been recorded yet"
    last: dict[str, tuple[int, str, bool]] = {}
    for i, (rid, st, ok) in enumerate(history):
        last[rid] = (i, st, ok)
    parts = []
    for status in ("KILLED", "FAILED", "FINISHED"):
        ids = [r for r, (i, st, ok) in last.items() if st == status and ok and i >= since]
        if ids:
            parts.append(f"{_runs(ids)} marked {status}")
    waiting = [(r, st) for r, (_, st, ok) in last.items() if not ok]
    if waiting:
        parts.append(
            f"{_runs([r for r, _ in waiting])} to be marked {waiting[0][1]} when the store "
            "takes writes again (the next rnnlab start against it, or rnnlab-doctor --repair)"
        )
    still = [r for r, (_, st, _) in last.items() if st == "RUNNING"]
    if still:
        parts.append(f"{_runs(still)} left RUNNING (rnnlab-doctor --repair ends it)")
    return "; ".join(parts) or "no run was open"


def _runs(ids: list[str]) -> str:
    return f"run {ids[0]}" if len(ids) == 1 else f"{len(ids)} runs"


def start(
    client: Any,
    experiment_id: str,
    name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
    params: Mapping[str, str] | None = None,
    owner: int | None = None,
) -> str:
    """Create a run owned by process ``owner`` (this one by default), RUNNING until
    ``end``; return its id. StoreError where the store takes no run (a read-only store):
    none exists then."""
    from rnnlab.store import log, uris

    all_tags = {**process_tags(owner), **tags}
    if parent_run_id:
        all_tags[log.PARENT_TAG] = parent_run_id
    try:
        run_id: str = client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id
    except Exception as exc:
        if not uris.is_store_error(exc) or isinstance(exc, uris.StoreError):
            raise
        raise uris.StoreError(f"cannot use the MLflow store: {uris.reason(exc)}") from exc
    history.append((run_id, "RUNNING", True))
    if params:
        try:
            log.log_batch(client, run_id, params=params)
        except BaseException as exc:  # not left RUNNING: FAILED, with what was refused
            end(client, run_id, "FAILED", f"its params were not taken: {uris.reason(exc)}")
            raise
    return run_id


def reopen(client: Any, run_id: str) -> None:
    """Take over an ended (or orphaned) run: owned by this process, RUNNING again until
    ``end`` (a resumed sweep's parent)."""
    from rnnlab.store import log

    log.log_batch(client, run_id, tags=process_tags())
    client.update_run(run_id, status="RUNNING")
    history.append((run_id, "RUNNING", True))


def end(client: Any, run_id: str, status: str, error: str | None = None, trace: str = "") -> bool:
    """End the run (FINISHED, FAILED or KILLED), with the error and its traceback when
    given. If the store cannot take it, the end waits in the journal: False."""
    from rnnlab.store import log

    if any(rid == run_id and not ok for rid, _, ok in history):
        return False  # its first end waits in the journal already: that one stands
    if error:
        error = console.redact(error)
    try:
        if error:
            tags = {ERROR_TAG: error[:5000]}
            if status == "FAILED":
                tags[log.NOTE_TAG] = f"**Failed**: {error[:2000]}"
            log.log_batch(client, run_id, tags=tags)
        client.set_terminated(run_id, status)
    except Exception:
        pending.add(client.tracking_uri, run_id, status, error)
        history.append((run_id, status, False))
        return False
    history.append((run_id, status, True))
    if trace:  # an artifact: artifact storage may fail where the store did not
        try:
            client.log_text(run_id, console.redact(trace), "error.txt")
        except Exception:
            pass
    return True
