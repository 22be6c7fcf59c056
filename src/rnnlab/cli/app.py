"""The ``rnnlab`` command: a thin Hydra entry point around ``runner``.

``cli`` runs Hydra with HYDRA_FULL_ERROR set so that errors reach it, then turns a
user's mistake (a bad value, an unknown option or key) into one line on stderr and
exit status 2, with no traceback. Anything else is a bug and keeps its traceback.
SIGINT, SIGTERM and SIGHUP end the run (or the sweep's runs) KILLED, exit 130.

A single run uses both cores: ``recorder`` forks a worker for Hydra and the numerics
while this process imports MLflow and records. This module imports no MLflow itself
(``sweep``, ``lifecycle`` and ``tracking`` are imported where needed), so that the
import happens in parallel with the worker.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from rnnlab import console
from rnnlab.cli import link, recorder
from rnnlab.cli.errors import (
    USAGE_ERROR,
    first_line,
    override_errors,
    remove_run_folder,
    user_error,
)
from rnnlab.config import (
    CONF_DIR,
    config_overrides,
    missing_config_dirs,
    register_configs,
    searchpath_override,
    user_config_dirs,
)
from rnnlab.jobs import basin_map, results, text, training

register_configs()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | dict:
    """Train and log one job; return its objective for sweepers to minimise (the final
    loss, inf if it diverged; a basin map returns its metrics)."""
    hc = HydraConfig.get()
    # the task's overrides, and the user's config folders (--config-dir, hydra.searchpath)
    # as one absolute hydra.searchpath override: a rerun composes with the same folders
    folders = user_config_dirs(hc.runtime.config_sources)
    overrides = config_overrides(hc.overrides.task) + searchpath_override(folders)
    missing = missing_config_dirs(folders)
    if missing:
        remove_run_folder(Path(hc.runtime.output_dir))
        console.error("rnnlab", missing)
        sys.exit(USAGE_ERROR)
    output_dir = Path(hc.runtime.output_dir)
    if hc.mode == RunMode.MULTIRUN:
        return _sweep_job(cfg, output_dir, overrides)
    try:
        task = cfg.task  # (an interpolation that cannot be resolved fails here or below)
        if link.LINK is not None:  # a worker: the launching process records
            return link.hand_over(cfg, output_dir, overrides)
        if task == "basin_map":
            metrics = basin_map.execute_basin(cfg, output_dir, overrides)
        else:
            result = training.execute(cfg, output_dir, overrides)
    except results.GradientCheckFailed as exc:  # the run is recorded FAILED: one line
        _exit_with(exc)
    except Exception as exc:
        if user_error(exc) is None:
            raise  # a bug: its traceback
        # the user's mistake (a value, an interpolation, a store): one line, without
        # Hydra's "Error executing job" report; a refused run leaves nothing behind
        remove_run_folder(output_dir)
        _exit_with(exc)
    if cfg.task == "basin_map":
        console.say(basin_map.basin_report(metrics))
        return metrics
    console.say(text.report(result))
    return result.objective


def _sweep_job(cfg: DictConfig, output_dir: Path, overrides: list[str]) -> float:
    """One job of a multirun: a child run of the sweep's parent, and one line."""
    from rnnlab.cli import callback, launchers
    from rnnlab.sweeps import plan

    ctx = callback.current()
    if ctx is None:
        raise RuntimeError("the sweep has no MLflow parent run: its callback failed (see above)")
    shown = [o for o in overrides if o.split("=", 1)[0] in ctx.swept] or overrides
    job = f"[job {ctx.job_num}] {' '.join(shown)}"
    if link.LINK is not None and os.getpid() == ctx.launcher_pid:
        # the worker of a two-process sweep: the launching process records the job
        return link.hand_over_job(cfg, output_dir, overrides, ctx.job_num, job)
    try:
        result = training.execute(
            cfg,
            output_dir,
            overrides,
            parent_run_id=ctx.parent_run_id,
            experiment_id=ctx.experiment_id,
            extra_tags={plan.SWEEP_JOB_TAG: str(ctx.job_num), **launchers.worker_tags()},
            tracking_uri=ctx.tracking_uri,
            log_model=False,  # the sweep logs the best run's model once, on its parent
            job=text.SweepJob.of(ctx.job_num, overrides, ctx.swept),
        )
    except Exception as exc:
        console.say(f"{job}: FAILED: {user_error(exc) or f'{type(exc).__name__}: {exc}'}")
        raise
    console.say(f"{job}: {text.outcome(result.trajectory)}; run {result.run_id}")
    return result.objective


def _exit_with(exc: BaseException) -> NoReturn:
    if isinstance(exc, results.GradientCheckFailed):
        console.say(f"rnnlab: gradient check failed: {exc}", err=True)
        sys.exit(1)
    console.error("rnnlab", user_error(exc) or str(exc))
    sys.exit(USAGE_ERROR)


_CLI_PID = os.getpid()


def cli() -> None:
    """Console-script entry point for ``rnnlab``."""
    from rnnlab.proc import startup

    startup.quiet_gc()  # while start-up imports; proc.startup.settle_gc ends it
    from rnnlab.proc import forked, signals
    from rnnlab.store import orphans, runs

    args = console.take_verbose_flag(sys.argv[1:])
    if "--version" in args:  # rnnlab's (Hydra's own flag would print Hydra's)
        from rnnlab.store import lineage

        console.say(lineage.version_text())
        sys.exit(0)
    if console.verbose():  # Hydra's own logging back on the console
        args += ["hydra/job_logging=default", "hydra/hydra_logging=default"]
    sys.argv = [sys.argv[0], *args]
    console.quiet()
    problem = override_errors(args)
    if problem is not None:
        console.error("rnnlab", problem)
        sys.exit(USAGE_ERROR)
    signals.install_signal_handlers()
    orphans.offer_hints()
    forked.enable()  # the command's own process may fork (the worker, figures)
    os.environ["HYDRA_FULL_ERROR"] = "1"
    # Ray's workers use this environment: no virtualenv per Ray session (sweep.py)
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    if not sys.stdout.isatty():  # Ray colours its workers' line prefixes even in a pipe
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    try:
        code = recorder.run(args, _run_hydra) if recorder.eligible(args) else _run_hydra()
    except KeyboardInterrupt as exc:  # a signal between the runs' end and here
        why = exc.signal_name if isinstance(exc, signals.Interrupted) else "SIGINT"
        console.say(runs.interrupted_line("rnnlab", why), err=True)
        code = 130
    _exit(code)


def _exit(code: int) -> NoReturn:
    """Exit with ``code`` after the exit hooks (Ray's shutdown, joblib's workers, logging),
    and with 130 if a signal arrives meanwhile: Python's own exit would restore the
    default handlers for its last steps, where a signal ended the command -15 or -1."""
    import atexit

    from rnnlab.proc import signals

    if os.getpid() != _CLI_PID:  # a forked worker: its parent (the recorder) exits last
        sys.exit(code)
    signals.exit_on_signal(130)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code if isinstance(code, int) else 1)


def _run_hydra() -> int:
    """Hydra's entry point with rnnlab's error handling; returns the exit status."""
    from rnnlab.proc import signals
    from rnnlab.store import runs

    worker = link.LINK is not None  # the recorder reports interruptions and sweeps
    try:
        main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt as exc:
        if worker:
            return 130
        why = exc.signal_name if isinstance(exc, signals.Interrupted) else "SIGINT"
        _end_open_sweeps(interrupted=True)
        console.say(runs.interrupted_line("rnnlab", why), err=True)
        return 130
    except BaseException as exc:
        from rnnlab.sweeps.plan import SweepRefused

        if isinstance(exc, SweepRefused):
            console.error("rnnlab", str(exc))
            return USAGE_ERROR
        if not isinstance(exc, Exception):
            raise
        problem = user_error(exc)
        if worker and _end_linked_sweep():
            # the recorder summarises the sweep and says which jobs failed
            if problem is not None and not link.job_failure(exc):
                console.error("rnnlab", problem)
                return USAGE_ERROR
            if not link.job_failure(exc):  # the launcher's own failure: say what
                why = first_line(str(exc))[:300]
                console.error("rnnlab", f"the sweep stopped: {type(exc).__name__}: {why}")
            return 1
        # Hydra 1.3 skips on_multirun_end when a job raised: close the sweep here.
        summaries = _end_open_sweeps()
        if summaries and any(s.failed for s in summaries):  # the jobs' own errors
            failed = sum(len(s.failed) + len(s.not_started) for s in summaries)
            total = sum(len(s.rows) for s in summaries)
            console.say(
                f"rnnlab: {failed} of {total} jobs failed or did not run (listed above); "
                "the sweep's parent run is marked FAILED",
                err=True,
            )
            return 1
        if isinstance(exc, results.GradientCheckFailed) or problem is not None:
            try:
                _exit_with(exc)
            except SystemExit as done:
                return done.code
        raise  # not a job's failure nor a user's mistake: a bug, with its traceback
    return 0


# A multirun loads the sweep's modules; a single run never does (they import MLflow, which
# the worker leaves to the recorder). So: no module loaded, no sweep to end.


def _end_open_sweeps(interrupted: bool = False) -> list:
    """End the sweep parents this process opened and has not ended; their summaries."""
    parent = sys.modules.get("rnnlab.sweeps.parent")
    return parent.finalize_open(interrupted) if parent else []


def _end_linked_sweep() -> bool:
    """In the worker: tell the recorder the sweep has ended (False: this process ran none)."""
    callback = sys.modules.get("rnnlab.cli.callback")
    return callback.end_linked() if callback else False
