"""``rnnlab-rerun RUN_ID [OVERRIDE ...]``: rerun a logged run (or a whole sweep) from the
MLflow store alone.

The run's ``config/overrides.yaml`` (read with ``yaml.safe_load``, never a pickle) is
composed again with Hydra's compose API, new overrides applied on top in Hydra's
grammar. Before anything runs, the recomposed config (without the new overrides) is
checked against the logged ``config/config.yaml``: if ``conf/`` has changed since, the
rerun refuses with the keys that differ instead of quietly computing something else.
The new run lands in the original's experiment, tagged ``rerun_of=RUN_ID``; a sweep's
parent reruns every child under a new parent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from rnnlab import runner, sweep, tracking
from rnnlab.app import user_error
from rnnlab.config import ConfigError, to_container, validate
from rnnlab.config import compose as compose_config
from rnnlab.tracking import flatten

IGNORED = ("tracking.",)  # where a run is stored is not part of what it computes


class RerunError(LookupError):
    """A run that cannot be rerun: unknown id, no logged config, or a changed conf/."""


def logged_inputs(client, run_id: str) -> tuple[Any, list[str], dict[str, Any]]:
    """(run, overrides, resolved config) as the run logged them."""
    try:
        run = tracking.get_run(client, run_id)
    except LookupError as exc:
        raise RerunError(str(exc)) from None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = tracking.download(client, run_id, "config", Path(tmp))
            overrides = yaml.safe_load((folder / "overrides.yaml").read_text()) or []
            config = yaml.safe_load((folder / "config.yaml").read_text())
        except Exception:
            raise RerunError(
                f"run {run_id} has no logged config (config/config.yaml and config/overrides.yaml)"
            ) from None
    return run, [str(o) for o in overrides], config


def _changed_keys(composed: dict[str, Any], logged: dict[str, Any]) -> list[str]:
    a, b = flatten(composed), flatten(logged)
    keys = sorted(k for k in set(a) | set(b) if not k.startswith(IGNORED) and a.get(k) != b.get(k))
    return [f"{k} (logged {b.get(k)!r}, now {a.get(k)!r})" for k in keys]


def prepare(client, run_id: str, new_overrides: Sequence[str], tracking_uri: str):
    """Compose and check the rerun's config; nothing is created."""
    run, overrides, logged = logged_inputs(client, run_id)
    base = [o for o in overrides if not o.startswith("tracking.uri=")]
    changed = _changed_keys(to_container(compose_config(base)), logged)
    if changed:
        raise RerunError(
            f"conf/ has changed since run {run_id}, so it would not be reproduced: "
            f"{'; '.join(changed[:3])}{' ...' if len(changed) > 3 else ''}"
        )
    all_overrides = [*base, *new_overrides, f"tracking.uri={tracking_uri}"]
    cfg = compose_config(all_overrides)
    validate(cfg)
    return run, cfg, [*base, *new_overrides]


def rerun_run(
    client,
    run_id: str,
    new_overrides: Sequence[str],
    tracking_uri: str,
    out_root: Path,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> runner.RunResult:
    run, cfg, overrides = prepare(client, run_id, new_overrides, tracking_uri)
    return runner.execute(
        cfg,
        out_root / run_id,
        overrides,
        parent_run_id=parent_run_id,
        experiment_id=run.info.experiment_id,
        extra_tags={"rerun_of": run_id, **(extra_tags or {})},
        tracking_uri=tracking_uri,
    )


def rerun_sweep(
    client, parent_id: str, new_overrides: Sequence[str], tracking_uri: str, out_root: Path
) -> sweep.Summary:
    """Every child of a sweep's parent, again, under a new parent."""
    parent = tracking.get_run(client, parent_id)
    children = tracking.child_runs(client, parent.info.experiment_id, parent_id)
    if not children:
        raise RerunError(f"sweep run {parent_id} has no child runs to rerun")
    for child in children:  # check every child before the first one runs
        prepare(client, child.info.run_id, new_overrides, tracking_uri)
    experiment_id = parent.info.experiment_id
    new_parent = tracking.start_parent(
        client,
        experiment_id,
        f"rerun-{parent.info.run_name}",
        {"sweep": "true", "rerun_of": parent_id, "sweep_dir": str(out_root.resolve())},
    )
    config = None
    try:
        for child in children:
            num = child.data.tags.get(sweep.SWEEP_JOB_TAG, "0")
            result = rerun_run(
                client,
                child.info.run_id,
                new_overrides,
                tracking_uri,
                out_root,
                parent_run_id=new_parent,
                extra_tags={sweep.SWEEP_JOB_TAG: num},
            )
            config = result.config
            sweep.record_job(client, new_parent, int(num), [*new_overrides], None)
        summary = sweep.collect(client, experiment_id, new_parent)
        sweep.log_summary(client, new_parent, summary, config)
    except BaseException:
        tracking.end_run(client, new_parent, "FAILED")
        raise
    tracking.end_run(client, new_parent, "FAILED" if summary.failed else "FINISHED")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="rnnlab-rerun",
        description="Rerun a logged run (or every child of a sweep) from the MLflow store, "
        "optionally with Hydra overrides on top, as a new run tagged rerun_of.",
    )
    parser.add_argument("run_id", help="the MLflow run id (a run or a sweep's parent)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. optimizer=gd")
    parser.add_argument(
        "--tracking-uri",
        default=tracking.default_uri(),
        help=f"MLflow store (default: $MLFLOW_TRACKING_URI or {tracking.DEFAULT_URI})",
    )
    args = parser.parse_args(argv)
    tracking_uri = tracking.resolve_uri(args.tracking_uri)
    out_root = Path("outputs") / "reruns" / datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
    try:
        client = tracking.client_for(tracking_uri)
        run = tracking.get_run(client, args.run_id)
        if run.data.tags.get("sweep") == "true":
            summary = rerun_sweep(client, args.run_id, args.overrides, tracking_uri, out_root)
            print(summary.text())
        else:
            result = rerun_run(client, args.run_id, args.overrides, tracking_uri, out_root)
            print(runner.report(result))
            print(f"rerun of {args.run_id}")
    except (LookupError, ConfigError) as exc:  # RerunError is a LookupError
        print(f"rnnlab-rerun: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        message = user_error(exc)
        if message is None:
            raise
        print(f"rnnlab-rerun: error: {message}", file=sys.stderr)
        sys.exit(2)
