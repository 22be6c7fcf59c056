"""``rnnlab-doctor``: runs left RUNNING by a process that no longer exists (their owner's
tags), listed; ``--repair`` ends them KILLED, a sweep's parent with its summary."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rnnlab import console
from rnnlab.cli.errors import Arguments
from rnnlab.store import client as client_mod
from rnnlab.store import lineage, uris
from rnnlab.store import runs as runs_mod
from rnnlab.store.orphans import describe, orphans


def repair(client, runs: Sequence[Any]) -> list[str]:
    """End ``runs`` KILLED, children before parents; a sweep's parent with its summary.
    Returns the ids ended."""
    ended = []
    parents = [r for r in runs if r.data.tags.get("sweep") == "true"]
    for run in [r for r in runs if r not in parents]:
        t = run.data.tags
        why = (
            f"orphaned: its process (pid {t.get(runs_mod.PID_TAG, '?')} on "
            f"{t.get(runs_mod.HOST_TAG, '?')}) ended without ending it; rnnlab-doctor"
        )
        if runs_mod.end(client, run.info.run_id, "KILLED", why):
            ended.append(run.info.run_id)
    for parent in parents:
        if _close_sweep(client, parent):
            ended.append(parent.info.run_id)
    return ended


def _close_sweep(client, parent) -> bool:
    """An orphaned sweep's parent: its summary (the plan against its children), KILLED."""
    from rnnlab.cli import rerun
    from rnnlab.store import query
    from rnnlab.sweeps import collect
    from rnnlab.sweeps.parent import SweepParent

    parent_id, experiment_id = parent.info.run_id, parent.info.experiment_id
    try:
        collect.end_orphaned_children(client, experiment_id, parent_id, wait=0)
        plan = rerun.sweep_plan(client, parent)
        (config,) = query.download_yaml(client, parent_id, "sweep/config", ["config.yaml"])
    except Exception as exc:  # no plan or config logged: end it without a summary
        why = f"orphaned sweep; no summary ({type(exc).__name__}); rnnlab-doctor"
        return runs_mod.end(client, parent_id, "KILLED", why)
    return SweepParent.resume(client, parent, plan, config).finalize(interrupted=True) is not None


def main(argv: list[str] | None = None) -> None:
    argv = console.take_verbose_flag(sys.argv[1:] if argv is None else argv)
    console.quiet()
    parser = Arguments(
        prog="rnnlab-doctor",
        description="List runs left RUNNING by processes that no longer exist; --repair "
        "ends them KILLED (a sweep's parent with its summary).",
    )
    parser.add_argument("--version", action="version", version=lineage.version_text())
    parser.add_argument("--repair", action="store_true", help="end the orphaned runs KILLED")
    parser.add_argument(
        "--other-hosts",
        action="store_true",
        help="also count runs owned by processes on other hosts as orphaned",
    )
    parser.add_argument(
        "--tracking-uri",
        default=uris.default_uri(),
        help=f"MLflow store (default: $MLFLOW_TRACKING_URI or {uris.DEFAULT_URI})",
    )
    args = parser.parse_args(argv)
    try:
        client = client_mod.client_for(args.tracking_uri, create=False)
        dead, unknown = orphans(client, args.other_hosts)
    except uris.StoreError as exc:
        console.error("rnnlab-doctor", str(exc))
        sys.exit(2)
    for run in dead:
        console.say(f"orphaned  {describe(run)}")
    for run in unknown:
        console.say(f"unknown   {describe(run)}  (another host: --other-hosts to count it)")
    if not dead:
        console.say("no orphaned runs" + (f"; {len(unknown)} unknown" if unknown else ""))
        return
    if not args.repair:
        console.say(f"{len(dead)} orphaned run(s): end them KILLED with rnnlab-doctor --repair")
        return
    ended = repair(client, dead)
    console.say(f"ended {len(ended)} of {len(dead)} orphaned run(s) KILLED")
    if len(ended) < len(dead):
        sys.exit(1)
