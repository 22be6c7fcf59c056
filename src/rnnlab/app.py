"""The ``rnnlab`` command: a thin Hydra entry point around ``runner.execute``.

``cli`` runs Hydra with HYDRA_FULL_ERROR set so that errors reach it, then turns a
user's mistake (a bad value, an unknown option or key) into one line on stderr and
exit status 2, with no traceback. Anything else is a bug and keeps its traceback.
SIGINT, SIGTERM and SIGHUP end the run (or the sweep's runs) KILLED, exit 130.
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

from rnnlab import console, lifecycle, runner, sweep
from rnnlab.config import CONF_DIR, ConfigError, register_configs

register_configs()

USAGE_ERROR = 2


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | dict:
    """Train and log one job; return the final loss for sweepers to minimise (a basin
    map returns its metrics)."""
    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    ctx = sweep.current()
    if hc.mode == RunMode.MULTIRUN and ctx is None:
        raise RuntimeError("the sweep has no MLflow parent run: its callback failed (see above)")
    if ctx is None:
        try:
            if cfg.task == "basin_map":
                metrics = runner.execute_basin(cfg, Path(hc.runtime.output_dir), overrides)
            else:
                result = runner.execute(cfg, Path(hc.runtime.output_dir), overrides)
        except (ConfigError, runner.GradientCheckFailed) as exc:
            # one line, without Hydra's "Error executing job" report
            _exit_with(exc)
        if cfg.task == "basin_map":
            console.say(
                "\n".join(
                    f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}"
                    for k, v in metrics.items()
                    if v is not None
                )
            )
            return metrics
        console.say(runner.report(result))
        return result.final_loss
    shown = [o for o in overrides if o.split("=", 1)[0] in ctx.swept] or overrides
    job = f"[job {ctx.job_num}] {' '.join(shown)}"
    try:
        result = runner.execute(
            cfg,
            Path(hc.runtime.output_dir),
            overrides,
            parent_run_id=ctx.parent_run_id,
            experiment_id=ctx.experiment_id,
            extra_tags={sweep.SWEEP_JOB_TAG: str(ctx.job_num)},
            tracking_uri=ctx.tracking_uri,
            log_model=False,  # the sweep logs the best run's model once, on its parent
        )
    except Exception as exc:
        console.say(f"{job}: FAILED: {user_error(exc) or f'{type(exc).__name__}: {exc}'}")
        raise
    console.say(f"{job}: {runner.outcome(result.trajectory)}; run {result.run_id}")
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
        console.say(f"rnnlab: gradient check failed: {exc}", err=True)
        sys.exit(1)
    console.error("rnnlab", user_error(exc) or str(exc))
    sys.exit(USAGE_ERROR)


def cli() -> None:
    """Console-script entry point for ``rnnlab``."""
    args = console.take_verbose_flag(sys.argv[1:])
    if console.verbose():  # Hydra's own logging back on the console
        args += ["hydra/job_logging=default", "hydra/hydra_logging=default"]
    sys.argv = [sys.argv[0], *args]
    console.quiet()
    lifecycle.install_signal_handlers()
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except sweep.SweepRefused as exc:
        console.error("rnnlab", str(exc))
        sys.exit(USAGE_ERROR)
    except KeyboardInterrupt as exc:
        why = exc.signal_name if isinstance(exc, lifecycle.Interrupted) else "SIGINT"
        summaries = sweep.finalize_open(interrupted=True)
        what = "the sweep's runs were" if summaries else "the run was"
        console.say(f"rnnlab: interrupted ({why}); {what} marked KILLED", err=True)
        sys.exit(130)
    except Exception as exc:
        # Hydra 1.3 skips on_multirun_end when a job raised: close the sweep here.
        summaries = sweep.finalize_open()
        if summaries:
            failed = sum(len(s.failed) + len(s.not_started) for s in summaries)
            total = sum(len(s.rows) for s in summaries)
            console.say(
                f"rnnlab: {failed} of {total} jobs failed or did not run (listed above); "
                "the sweep's parent run is marked FAILED",
                err=True,
            )
            sys.exit(1)
        if isinstance(exc, runner.GradientCheckFailed) or user_error(exc) is not None:
            _exit_with(exc)
        raise
