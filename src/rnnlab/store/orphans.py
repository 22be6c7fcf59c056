"""Runs left RUNNING by processes that are gone (orphans), those of other hosts, and the
hint the rnnlab command prints once per store that holds orphans."""

from __future__ import annotations

from rnnlab import console

_offered: set[str] = set()  # stores this process has looked at
_offering = False  # whether ``offer`` speaks in this process (the rnnlab command's)


def offer_hints() -> None:
    """From now on ``offer`` speaks in this process (and in the processes it forks): the
    ``rnnlab`` command calls it; the Python API and the other commands do not."""
    global _offering
    _offering = True


def running(client) -> list:
    """Every RUNNING run of the store's active experiments."""
    from rnnlab.store import query

    ids = [e.experiment_id for e in client.search_experiments()]
    return query.search(client, ids, "attributes.status = 'RUNNING'") if ids else []


def orphans(client, other_hosts: bool = False) -> tuple[list, list]:
    """(orphaned runs, runs whose owner this machine cannot check)."""
    from rnnlab.store import runs

    dead: list = []
    unknown: list = []
    for run in running(client):
        alive = runs.owner_alive(run.data.tags)
        if alive is False:
            dead.append(run)
        elif alive is None:
            (dead if other_hosts else unknown).append(run)
    return dead, unknown


def offer(client) -> None:
    """Once per store and process (the rnnlab command only): one line if the store holds
    runs left RUNNING by processes that no longer exist."""
    uri = client.tracking_uri
    if not _offering or uri in _offered:
        return
    _offered.add(uri)
    try:
        dead, _ = orphans(client)
    except Exception:  # a look, not a requirement
        return
    if dead:
        console.say(
            f"rnnlab: {len(dead)} run(s) in this store were left RUNNING by processes that "
            "no longer exist; end them KILLED with: uv run rnnlab-doctor --repair",
            err=True,
        )


def describe(run) -> str:
    """One line for a RUNNING run: its id, run or sweep, its name, its owner."""
    from rnnlab.store import runs

    t = run.data.tags
    owner = f"pid {t.get(runs.PID_TAG, '?')} on {t.get(runs.HOST_TAG, '?')}"
    kind = "sweep" if t.get("sweep") == "true" else "run"
    return f"{run.info.run_id}  {kind:5s}  {run.info.run_name}  ({owner})"
