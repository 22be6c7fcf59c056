"""The ``rnnlab`` command: a thin ``@hydra.main`` entry point around ``runner.execute``.

``cli`` runs Hydra with HYDRA_FULL_ERROR set so that errors reach it, then turns a
user's mistake (a bad value, an unknown option or key) into one line on stderr and
exit status 2, with no traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from rnnlab import runner, sweep
from rnnlab.config import CONF_DIR, ConfigError, register_configs, validate

register_configs()

USAGE_ERROR = 2


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | dict:
    """Train and log one job; return the final loss for sweepers to minimise (a basin
    map returns its metrics)."""
    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    ctx = sweep.current()
    if hc.mode == RunMode.MULTIRUN and ctx is None and cfg.task == "train":
        validate(cfg)  # a bad value explains itself in one line
        raise RuntimeError("the sweep has no MLflow parent run: its callback failed (see above)")
    try:
        if cfg.task == "basin_map":
            metrics = runner.execute_basin(cfg, Path(hc.runtime.output_dir), overrides)
        else:
            result = runner.execute(
                cfg,
                Path(hc.runtime.output_dir),
                overrides,
                parent_run_id=ctx.parent_run_id if ctx else None,
                experiment_id=ctx.experiment_id if ctx else None,
                extra_tags={sweep.SWEEP_JOB_TAG: str(ctx.job_num)} if ctx else None,
                tracking_uri=ctx.tracking_uri if ctx else None,
            )
    except (ConfigError, runner.GradientCheckFailed) as exc:
        if hc.mode != RunMode.RUN:
            raise  # in a sweep this job fails; the others go on
        # A single run: say it in one line, without Hydra's "Error executing job" report.
        _exit_with(exc)
    if cfg.task == "basin_map":
        print(
            "\n".join(
                f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}"
                for k, v in metrics.items()
                if v is not None
            ),
            flush=True,
        )
        return metrics
    if hc.mode == RunMode.RUN:
        print(runner.report(result), flush=True)
    else:
        traj = result.trajectory
        print(
            f"[job {hc.job.num}] {' '.join(overrides)}: final loss "
            f"{result.final_loss:.6g} after {traj.iterations} iterations ({traj.status}); "
            f"run {result.run_id}",
            flush=True,
        )
    return result.final_loss


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def user_error(exc: BaseException) -> str | None:
    """One line for a mistake in the user's config or overrides; None for anything else."""
    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and exc.options:
        group, _, option = exc.missing_cfg_file.rpartition("/")
        return (
            f"{group}={option} is not an option of group '{group}': "
            f"choose one of {', '.join(exc.options)}"
        )
    if isinstance(exc, ConfigCompositionException | OmegaConfBaseException):
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        cause = exc.__cause__
        if isinstance(cause, OmegaConfBaseException):
            lines.append(_first_line(str(cause)))
        keep = []
        for ln in lines:
            if ln.startswith(("Config search path", "full_key", "object_type", "reference_type")):
                break
            if ln not in keep:
                keep.append(ln)
        return "; ".join(keep) or type(exc).__name__
    return None


def _exit_with(exc: BaseException) -> NoReturn:
    if isinstance(exc, runner.GradientCheckFailed):
        print(f"rnnlab: gradient check failed: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"rnnlab: error: {user_error(exc)}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


def cli() -> None:
    """Console-script entry point for ``rnnlab``."""
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except KeyboardInterrupt:
        sweep.finalize_open(interrupted=True)
        print("rnnlab: interrupted; the run was marked KILLED", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        # Hydra 1.3 skips on_multirun_end when a job raised: close the sweep here.
        summaries = sweep.finalize_open()
        if summaries:
            failed = sum(len(s.failed) for s in summaries)
            total = sum(len(s.rows) for s in summaries)
            print(
                f"rnnlab: {failed} of {total} jobs failed (listed above); the sweep's "
                "parent run is marked FAILED",
                file=sys.stderr,
            )
            sys.exit(1)
        if isinstance(exc, runner.GradientCheckFailed) or user_error(exc) is not None:
            _exit_with(exc)
        raise
