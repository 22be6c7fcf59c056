"""``rnnlab-rerun RUN_ID [OVERRIDE ...]``: a logged run (or a whole sweep) composed again from
its ``config/overrides.yaml`` and checked against its ``config/config.yaml`` before it
runs again, as a new run tagged ``rerun_of`` (a sweep: every planned job, a new parent)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rnnlab import console
from rnnlab.config import (
    SEARCHPATH_KEY,
    flatten,
    resolver_call,
    searchpath_of,
    searchpath_override,
    to_container,
    validate,
)
from rnnlab.config import compose as compose_config
from rnnlab.jobs import runner
from rnnlab.jobs.spec import SweepRef
from rnnlab.store import lineage, query, ui, uris
from rnnlab.sweeps import plan as plan_mod
from rnnlab.sweeps.parent import SweepParent

# Where a run is stored is not part of what it computes (a rerun records into the store
# and experiment of today's config and environment: MLFLOW_TRACKING_URI, ..._EXPERIMENT_NAME,
# and the logged URI is redacted): a rerun does not compare it. Nor which series it
# logs as step metrics (runs logged before step_metrics existed logged every one).
IGNORED_PREFIXES = ("step_metrics.", "tracking.")


class RerunError(LookupError):
    """A run that cannot be rerun: unknown id, no logged config, or a changed conf/."""


def logged_inputs(client, run_id: str) -> tuple[Any, list[str], dict[str, Any]]:
    """(run, overrides, resolved config) as the run logged them."""
    try:
        run = query.get_run(client, run_id)
    except LookupError as exc:
        raise RerunError(str(exc)) from None
    try:
        overrides, config = query.download_yaml(
            client, run_id, "config", ["overrides.yaml", "config.yaml"]
        )
    except uris.StoreError:
        raise  # the artifacts are not where the store says: that, in one line
    except Exception:
        raise RerunError(
            f"run {run_id} has no logged config (config/config.yaml and config/overrides.yaml)"
        ) from None
    return run, [str(o) for o in overrides or []], config


def check_overrides(overrides: Sequence[str], source: str) -> None:
    """A logged override is data, not code: one that calls a resolver (``${oc.env:X}``,
    refused when a run is recorded; so written into the file since) is refused.
    Interpolations of config keys (``init.wx=${init.wrec}``, in any spelling) compose
    again as they did, which the comparison with the logged config checks."""
    for o in overrides:
        problem = resolver_call(o)
        if problem:
            raise RerunError(f"{source}: {problem}")


def _changed_keys(composed: dict[str, Any], logged: dict[str, Any]) -> list[str]:
    a, b = flatten(composed), flatten(logged)
    keys = sorted(
        k for k in set(a) | set(b) if not k.startswith(IGNORED_PREFIXES) and a.get(k) != b.get(k)
    )
    return [f"{k} (logged {b.get(k)!r}, now {a.get(k)!r})" for k in keys]


def relocated(base: Sequence[str], config_dirs: Sequence[str], label: str) -> list[str]:
    """``base`` with its user config folders (the logged ``hydra.searchpath``) replaced by
    ``config_dirs`` where given; RerunError naming a logged folder that is missing."""
    base = list(base)
    if config_dirs:
        for d in config_dirs:
            if not Path(d).is_dir():
                raise RerunError(f"--config-dir {d!r} is not a folder")
        rest = [o for o in base if not o.startswith(SEARCHPATH_KEY + "=")]
        return rest + searchpath_override([Path(d).resolve().as_uri() for d in config_dirs])
    for entry in searchpath_of(base):
        path = entry.removeprefix("file://")
        if entry.startswith("file://") and not Path(path).is_dir():
            raise RerunError(
                f"{label} was composed with the config folder {path} (--config-dir or "
                "hydra.searchpath), which is missing: give its new place with "
                "rnnlab-rerun RUN_ID --config-dir DIR"
            )
    return base


def compose_checked(
    base: Sequence[str],
    logged: dict[str, Any] | None,
    new_overrides: Sequence[str],
    label: str,
    config_dirs: Sequence[str] = (),
):
    """The rerun's config: ``base`` composed (and, where a logged config is given, checked
    against it), the new overrides on top, validated. Nothing is created. The logged
    config folders are used, or ``config_dirs`` in their place."""
    base = [o for o in base if not o.startswith("tracking.uri=")]
    base = relocated(base, config_dirs, label)
    check_overrides(base, f"the logged overrides of {label}")
    if logged is not None:
        changed = _changed_keys(to_container(compose_config(base)), logged)
        if changed:
            raise RerunError(
                f"conf/ has changed since {label}, so it would not be reproduced: "
                f"{'; '.join(changed[:3])}{' ...' if len(changed) > 3 else ''}"
            )
    cfg = compose_config([*base, *new_overrides])
    if cfg.get("task") == "basin_map":
        raise RerunError(
            f"{label} is a basin map; rerun it with its command instead: rnnlab {' '.join(base)}"
        )
    validate(cfg)
    return cfg, [*base, *new_overrides]


def rerun_run(
    recorder: Any,
    client: Any,
    run_id: str,
    new_overrides: Sequence[str],
    out_root: Path,
    config_dirs: Sequence[str] = (),
) -> Any:
    """Run ``run_id`` again (overrides on top) as a new run tagged ``rerun_of`` in its
    experiment; where the new run is (``jobs.spec.RunRef``)."""
    run, overrides, logged = logged_inputs(client, run_id)
    note = lineage.version_note(run_id, run.data.tags)
    if note:
        console.say(note)
    if run.data.tags.get("task") == "basin_map":
        raise RerunError(
            f"run {run_id} is a basin map; rerun it with its command instead: "
            f"rnnlab {' '.join(overrides)}"
        )
    cfg, all_overrides = compose_checked(
        overrides, logged, new_overrides, f"run {run_id}", config_dirs
    )
    cfg.tracking.uri = client.tracking_uri  # the store it is read from
    job = runner.job_of(
        cfg,
        to_container(cfg),
        all_overrides,
        out_root / run_id,
        tags={"rerun_of": run_id},
        experiment_id=run.info.experiment_id,
        source=shlex.join(["rnnlab-rerun", run_id, *new_overrides]),
    )
    runner.run_job(job, recorder)
    return recorder.ended[job.key]


def sweep_plan(client: Any, parent: Any) -> plan_mod.Plan:
    """The sweep's jobs as it planned them (its children's overrides for a sweep that
    logged no plan)."""
    parent_id = parent.info.run_id
    try:
        return plan_mod.logged_plan(client, parent_id)
    except Exception:
        children = query.child_runs(client, parent.info.experiment_id, parent_id)
        jobs = [logged_inputs(client, c.info.run_id)[1] for c in children]
        if not jobs:
            raise RerunError(f"sweep run {parent_id} has no jobs to rerun") from None
        return plan_mod.Plan(jobs=jobs, swept={})


def _logged_config(client: Any, child: Any) -> dict[str, Any] | None:
    """The config a sweep's job logged; None for a job that ended before it logged one
    (killed at its start: the plan composes it, unchecked); RerunError for a finished one."""
    try:
        return logged_inputs(client, child.info.run_id)[2]
    except RerunError:
        if child.info.status == "FINISHED":
            raise
        return None


def rerun_sweep(
    recorder: Any,
    client: Any,
    parent_id: str,
    new_overrides: Sequence[str],
    out_root: Path,
    config_dirs: Sequence[str] = (),
) -> None:
    """Every job of a sweep's plan, again, under a new parent (KILLED if interrupted)."""
    parent = query.get_run(client, parent_id)
    note = lineage.version_note(parent_id, parent.data.tags)
    if note:
        console.say(note)
    experiment_id = parent.info.experiment_id
    plan = sweep_plan(client, parent)
    children = {
        int(c.data.tags[plan_mod.SWEEP_JOB_TAG]): c
        for c in query.child_runs(client, experiment_id, parent_id)
        if c.data.tags.get(plan_mod.SWEEP_JOB_TAG, "").isdigit()
    }
    jobs = []  # check every job before the first one runs
    for num, overrides in enumerate(plan.jobs):
        child = children.get(num)
        logged = _logged_config(client, child) if child else None
        label = f"job {num} of sweep {parent_id}"
        cfg, all_overrides = compose_checked(overrides, logged, new_overrides, label, config_dirs)
        tags = {plan_mod.SWEEP_JOB_TAG: str(num)}
        if child is not None:
            tags["rerun_of"] = child.info.run_id
        jobs.append((num, cfg, all_overrides, tags))
    # numbered among the experiment's sweeps of the same name: "compare_starts #4 rerun of #2"
    base = parent.data.tags.get(ui.NAME_TAG) or parent.info.run_name
    number = re.match(re.escape(base) + r" (#\d+)", parent.info.run_name)
    of = number.group(1) if number else parent.info.run_name
    sweep = SweepParent(
        config=to_container(jobs[0][1]),
        plan=replace(plan, jobs=[j[2] for j in jobs]),  # a search's: still one (its names, log10)
        base=base,
        extra=" ".join([f"rerun of {of}", *new_overrides]),
        sweep_dir=str(out_root.resolve()),
    )
    tags = {
        **lineage.source_tags(shlex.join(["rnnlab-rerun", parent_id, *new_overrides])),
        "rerun_of": parent_id,
        "sweep_dir": sweep.sweep_dir,
    }
    sweep.start(client, experiment_id, tags, params=dict(parent.data.params))
    sweep.log_plan(client)  # what a resume of this rerun runs
    console.say(
        f"Rerun of sweep {parent_id}: {len(jobs)} jobs; MLflow parent run "
        f"{sweep.parent_run_id} (experiment {experiment_id}) in "
        f"{uris.redact(client.tracking_uri)}"
    )
    run_jobs(recorder, sweep, jobs, out_root)


def run_jobs(
    recorder: Any,
    sweep: SweepParent,
    jobs: Sequence[tuple[int, Any, list[str], dict[str, str]]],
    out_root: Path,
) -> None:
    """Run ``jobs`` ((number, composed config, overrides, tags) each) one after the other
    as children of the open ``sweep`` (a job's failure is its line, and the next one
    runs), then have it summarised and ended (KILLED on a signal, re-raised)."""
    recorder.adopt_sweep(sweep)
    ref = SweepRef(sweep.key)
    try:
        for num, cfg, all_overrides, tags in jobs:
            cfg.tracking.uri = sweep.tracking_uri
            job = runner.job_of(
                cfg,
                to_container(cfg),
                all_overrides,
                out_root / f"job{num}",
                sweep=ref,
                job=plan_mod.sweep_job(num, all_overrides, sweep.plan),
                tags=tags,
                source=shlex.join(["rnnlab", *all_overrides]),
                log_model=False,
            )
            try:
                runner.run_job(job, recorder)
            except Exception:
                continue  # its line says why; the sweep goes on
    except KeyboardInterrupt:
        recorder.end_sweep(sweep.key, interrupted=True)
        raise
    recorder.end_sweep(sweep.key)
