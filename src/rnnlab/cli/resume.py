"""``rnnlab-rerun PARENT_RUN_ID --resume``: the planned jobs of a sweep that did not finish,
run again (checked as a rerun is) under the same parent, which is summarised anew."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnlab import console
from rnnlab.cli.rerun import RerunError, compose_checked, logged_inputs, run_jobs
from rnnlab.store import query, runs, ui, uris
from rnnlab.sweeps import plan as plan_mod
from rnnlab.sweeps.parent import SweepParent


def resume_sweep(
    recorder: Any, client: Any, parent_id: str, out_root: Path, config_dirs: Sequence[str] = ()
) -> None:
    """The jobs of a sweep's plan that did not finish (not started, KILLED, FAILED), run
    again as children of the same parent, which is then summarised anew: every planned job
    once, its finished attempt standing for it (an earlier attempt stays a child, counted
    in the job's ``attempts``). Raises RerunError for a
    run that is not a grid sweep's parent with its plan, or a sweep still running."""
    parent = query.get_run(client, parent_id)
    if parent.data.tags.get(ui.SWEEP_TAG) != "true":
        raise RerunError(f"--resume takes a sweep's parent run; {parent_id} is a single run")
    tags = parent.data.tags
    owner = f"pid {tags.get(runs.PID_TAG, '?')} on {tags.get(runs.HOST_TAG, '?')}"
    if parent.info.status == "RUNNING" and runs.owner_alive(parent.data.tags) is not False:
        raise RerunError(
            f"sweep {parent_id} is still running ({owner}): resume it once it has ended, "
            "or end it first (uv run rnnlab-doctor --repair)"
        )
    try:
        plan = plan_mod.logged_plan(client, parent_id)
        (config,) = query.download_yaml(client, parent_id, "sweep/config", ["config.yaml"])
    except uris.StoreError:
        raise
    except Exception:
        raise RerunError(
            f"sweep {parent_id} logged no plan (sweep/jobs.json): rerun it whole"
        ) from None
    if plan.searched:
        raise RerunError(
            f"sweep {parent_id} is a search (its sweeper chose the jobs): resuming it would "
            "continue its study, whose state rnnlab does not keep; rerun it whole (without "
            "--resume) or start a new search"
        )
    experiment_id = parent.info.experiment_id
    attempts: dict[int, list[Any]] = {}
    for c in query.child_runs(client, experiment_id, parent_id):
        if c.data.tags.get(plan_mod.SWEEP_JOB_TAG, "").isdigit():
            attempts.setdefault(int(c.data.tags[plan_mod.SWEEP_JOB_TAG]), []).append(c)
    finished = {n for n, cs in attempts.items() if any(c.info.status == "FINISHED" for c in cs)}
    todo = []  # check every job before the first one runs
    for num, overrides in enumerate(plan.jobs):
        if num in finished:
            continue
        last = max(attempts.get(num, []), key=lambda c: c.info.start_time or 0, default=None)
        try:  # checked against what its last attempt logged, where it got that far
            logged = logged_inputs(client, last.info.run_id)[2] if last else None
        except RerunError:  # an attempt cut off before its config was logged
            logged = None
        label = f"job {num} of sweep {parent_id}"
        cfg, all_overrides = compose_checked(overrides, logged, [], label, config_dirs)
        todo.append((num, last, cfg, all_overrides))
    if not todo:
        console.say(f"Sweep {parent_id}: all {len(plan.jobs)} jobs finished; nothing to resume")
        return
    sweep = SweepParent.resume(client, parent, plan, config)
    runs.reopen(client, parent_id)
    console.say(
        f"Resuming sweep {parent.info.run_name}: {len(todo)} of {len(plan.jobs)} jobs to run "
        f"({len(finished)} finished); MLflow parent run {parent_id} in "
        f"{uris.redact(client.tracking_uri)}"
    )
    jobs = []
    for num, last, cfg, all_overrides in todo:
        tags = {plan_mod.SWEEP_JOB_TAG: str(num), "resumed": "true"}
        if last is not None:
            tags["attempt_of"] = last.info.run_id
        jobs.append((num, cfg, all_overrides, tags))
    run_jobs(recorder, sweep, jobs, out_root)
