"""One lifecycle for every process that owns an MLflow run.

A run is opened with the process that owns it recorded on it (tags ``rnnlab.host``,
``rnnlab.pid``, ``rnnlab.pid_start``), and ended FINISHED, FAILED (the error recorded)
or KILLED on every exit path: a return, an exception, Ctrl-C, SIGTERM or SIGHUP
(``install_signal_handlers`` turns the last two into ``Interrupted``, a
KeyboardInterrupt). Only SIGKILL (or a power cut) leaves a run RUNNING; the recorded
process identity lets ``rnnlab-doctor`` tell such an orphan from a live run and end
it. When the store cannot take the final write (a full disk, a server gone), the end
state waits in a local journal (``store.client.Pending``) and is written on the next start
against that store.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

from rnnlab import console
from rnnlab.proc.signals import Interrupted, check_signals, shielded, when_signalled

HOST_TAG, PID_TAG, PID_START_TAG = "rnnlab.host", "rnnlab.pid", "rnnlab.pid_start"
ERROR_TAG = "error"


_mark = 0  # len(history) when the first signal arrived


def _note_mark() -> None:
    global _mark
    _mark = len(history)


when_signalled(_note_mark)


def interrupted_line(prog: str, why: str) -> str:
    """The one line an interrupted command ends with: the signal and what became of the
    runs since it arrived (none, KILLED, waiting in the journal)."""
    return f"{prog}: interrupted ({why}); {what_ended(_mark)}"


# --- who owns a run ---------------------------------------------------------------------


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), '' where unknown: with
    the pid it names one process, even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def process_tags() -> dict[str, str]:
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_START_TAG: _start_ticks(pid)}


def owner_alive(tags: Mapping[str, str]) -> bool | None:
    """Whether the process that owns a run (by its tags) still runs; None where this
    machine cannot tell (another host, or a run without the tags)."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return None
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    start = tags.get(PID_START_TAG, "")
    return not start or _start_ticks(pid) in ("", start)


# --- opening and ending ------------------------------------------------------------------

_open: dict[str, Any] = {}  # run id -> client: runs this process opened and has not ended
# (run id, status, written), in order: how this process started (RUNNING) and ended each
# run (written False: the end waits in the journal), so that what the commands say is
# what happened
history: list[tuple[str, str, bool]] = []


def what_ended(since: int) -> str:
    """What became of the runs this process started or ended after ``history[since]``,
    in a few words for the console: only what happened."""
    later = history[since:]
    if not later and not history:
        return "no run had been recorded yet"
    finished = {rid: (st, ok) for rid, st, ok in later if st != "RUNNING"}
    if not finished:
        return "no run was open"
    parts = []
    for status in ("KILLED", "FAILED", "FINISHED"):
        ids = [rid for rid, (st, ok) in finished.items() if st == status and ok]
        if ids:
            runs = f"run {ids[0]}" if len(ids) == 1 else f"{len(ids)} runs"
            parts.append(f"{runs} marked {status}")
    waiting = [(rid, st) for rid, (st, ok) in finished.items() if not ok]
    if waiting:
        runs = f"run {waiting[0][0]}" if len(waiting) == 1 else f"{len(waiting)} runs"
        parts.append(
            f"{runs} to be marked {waiting[0][1]} when the store takes writes again (the "
            "next rnnlab start against it, or rnnlab-doctor --repair)"
        )
    return "; ".join(parts)


def start(
    client,
    experiment_id: str,
    name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
    params: Mapping[str, str] | None = None,
) -> str:
    """Create a run owned by this process (left RUNNING until ``end``); return its id."""
    from rnnlab.store import log

    all_tags = {**process_tags(), **tags}
    if parent_run_id:
        all_tags[log.PARENT_TAG] = parent_run_id
    with shielded():  # a run created is a run this process knows it must end
        run_id = client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id
        _open[run_id] = client
        history.append((run_id, "RUNNING", True))
    if params:
        log.log_batch(client, run_id, params=params)
    return run_id


def reopen(client, run_id: str) -> None:
    """Take over an ended (or orphaned) run: owned by this process from now on (its owner
    tags), RUNNING again until ``end`` (a resumed sweep's parent)."""
    from rnnlab.store import log

    with shielded():
        log.log_batch(client, run_id, tags=process_tags())
        client.update_run(run_id, status="RUNNING")
        _open[run_id] = client
        history.append((run_id, "RUNNING", True))


def end(
    client,
    run_id: str,
    status: str,
    error: str | None = None,
    trace: str = "",
    quiet: bool = False,
) -> bool:
    """End the run (FINISHED, FAILED or KILLED), with the error and its traceback when
    given. If the store cannot take it, the end waits in the journal, the user is told
    (unless ``quiet``: the caller says it once for many runs), and False is returned."""

    with shielded():
        return _end(client, run_id, status, error, trace, quiet)


def _end(client, run_id: str, status: str, error: str | None, trace: str, quiet: bool) -> bool:
    from rnnlab.store import client as client_mod
    from rnnlab.store import log, uris

    _open.pop(run_id, None)
    if error:
        error = console.redact(error)
    try:
        if error:
            tags = {ERROR_TAG: error[:5000]}
            if status == "FAILED":
                tags[log.NOTE_TAG] = f"**Failed**: {error[:2000]}"
            log.log_batch(client, run_id, tags=tags)
        client.set_terminated(run_id, status)
    except Exception as exc:
        client_mod.Pending.add(client.tracking_uri, run_id, status, error)
        history.append((run_id, status, False))
        if quiet:
            return False
        console.error(
            "rnnlab",
            f"could not record run {run_id} as {status} ({uris.reason(exc)}); it is "
            "recorded on the next rnnlab start against this store (or by rnnlab-doctor)",
        )
        return False
    history.append((run_id, status, True))
    if trace:  # the traceback is an artifact: artifact storage may fail where the store did not
        with contextlib.suppress(Exception):
            client.log_text(run_id, console.redact(trace), "error.txt")
    return True


@contextlib.contextmanager
def owned_run(
    client,
    experiment_id: str,
    name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
    params: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Open a run and yield its id; end it FINISHED, FAILED (error recorded) or KILLED
    (Ctrl-C, SIGTERM, SIGHUP) whatever happens. The exception propagates."""
    run_id = start(client, experiment_id, name, tags, parent_run_id, params)
    with owning(client, run_id):
        yield run_id


@contextlib.contextmanager
def owning(client, run_id: str, finish: bool = True) -> Iterator[None]:
    """End the open run ``run_id`` when the block ends: FINISHED (unless ``finish`` is
    False: the run stays open for more), FAILED (error recorded) or KILLED (Ctrl-C,
    SIGTERM, SIGHUP). The exception propagates."""
    try:
        yield
    except KeyboardInterrupt as exc:
        why = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
        end(client, run_id, "KILLED", f"interrupted ({why})")
        raise
    except BaseException as exc:
        from rnnlab.store import uris

        # a store that failed is reported once, by whoever stops on it
        quiet = isinstance(exc, Exception) and uris.is_store_error(exc)
        why = f"{type(exc).__name__}: {exc}"
        end(client, run_id, "FAILED", why, traceback.format_exc(), quiet=quiet)
        raise
    else:
        try:
            check_signals()
        except KeyboardInterrupt as exc:
            end(client, run_id, "KILLED", f"interrupted ({exc.signal_name})")
            raise
        if finish:
            end(client, run_id, "FINISHED")


@atexit.register
def _end_open_runs() -> None:
    """A run still open when the interpreter exits (an exit no handler saw) ends KILLED."""
    for run_id, client in list(_open.items()):
        with contextlib.suppress(Exception):
            end(client, run_id, "KILLED", "the process exited with the run open")
