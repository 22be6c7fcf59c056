"""The journal of run ends a store could not take: one JSON line per run (the URI without
its password) in ``$RNNLAB_STATE_DIR/pending.jsonl``, written on the next start against
that store, every change under the journal's lock; unreadable lines set aside."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rnnlab import console
from rnnlab.store.uris import redact, resolve_uri

STATUSES = ("FINISHED", "FAILED", "KILLED")


def path() -> Path:
    root = os.environ.get("RNNLAB_STATE_DIR") or Path.home() / ".local" / "state" / "rnnlab"
    return Path(root) / "pending.jsonl"


def _lock() -> Any:
    from filelock import FileLock

    return FileLock(str(path()) + ".lock", timeout=30)


def add(uri: str, run_id: str, status: str, error: str | None) -> bool:
    """Keep the end of run ``run_id``; False where there is nowhere to keep it
    (``rnnlab-doctor`` still finds the run by its dead owner)."""
    entry = {
        "uri": redact(resolve_uri(uri)),
        "run_id": run_id,
        "status": status,
        "error": console.redact(error) if error else error,
    }
    try:
        path().parent.mkdir(parents=True, exist_ok=True)
        with _lock(), open(path(), "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
    except OSError:
        return False
    return True


def _entry(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(line.decode("utf-8"))
    except ValueError:  # not UTF-8, not JSON
        return None
    ok = (
        isinstance(entry, dict)
        and all(isinstance(entry.get(k), str) for k in ("uri", "run_id", "status"))
        and entry["status"] in STATUSES
        and isinstance(entry.get("error"), str | type(None))
    )
    return entry if ok else None


def apply(client: Any) -> None:
    """Write this store's waiting ends (a run still RUNNING gets its end); keep the other
    stores' lines and the ones the store could not take now."""
    from rnnlab.store.uris import gone

    if not path().exists():
        return
    uri = redact(resolve_uri(client.tracking_uri))
    try:
        with _lock():
            lines = [line for line in path().read_bytes().splitlines() if line.strip()]
            keep, bad = [], []
            for line in lines:
                entry = _entry(line)
                if entry is None:
                    bad.append(line)
                elif entry["uri"] != uri or not _write(client, entry, gone):
                    keep.append(line)
            if bad:
                aside = path().with_name(path().name + ".bad")
                with open(aside, "ab") as f:
                    f.write(b"".join(line + b"\n" for line in bad))
                console.say(
                    f"rnnlab: {len(bad)} line(s) of the journal {path()} could not be read; "
                    f"set aside in {aside}",
                    err=True,
                )
            if len(keep) != len(lines):
                path().write_bytes(b"".join(line + b"\n" for line in keep))
    except (OSError, TimeoutError):  # (filelock's Timeout: another process holds it)
        pass


def _write(client: Any, entry: dict[str, Any], gone: Any) -> bool:
    """Record one waiting end; True once it needs keeping no more."""
    run_id, status = entry["run_id"], entry["status"]
    try:
        run = client.get_run(run_id)
        if run.info.lifecycle_stage == "deleted":
            console.say(f"rnnlab: run {run_id} was deleted; its end is dropped", err=True)
        elif run.info.status == "RUNNING":
            if entry.get("error"):
                client.set_tag(run_id, "error", entry["error"][:5000])
            client.set_terminated(run_id, status)
            console.say(
                f"rnnlab: recorded run {run_id} as {status} (its end could not be written "
                "when it stopped)",
                err=True,
            )
    except Exception as exc:
        if not gone(exc):
            return False  # the store cannot take it now either: kept
        console.say(f"rnnlab: run {run_id} is no longer in the store; its end is dropped", err=True)
    return True
