"""The ``rnnlab`` command: a thin Hydra entry point (``main``: the composed config as a job,
run through this process's recorder) and ``cli``, which runs it through ``cli.command``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from rnnlab import console
from rnnlab.cli import callback
from rnnlab.cli.errors import (
    override_errors,
    remove_run_folder,
    run_folder_error,
    undecodable_config,
)
from rnnlab.config import (
    CONF_DIR,
    config_overrides,
    missing_config_dirs,
    register_configs,
    searchpath_override,
    to_container,
    user_config_dirs,
    validate,
)
from rnnlab.errors import (
    INTERRUPTED,
    USAGE_ERROR,
    StoreError,
    StoreFailed,
    SweepRefused,
    user_error,
)
from rnnlab.jobs import recorder as recording
from rnnlab.jobs import runner
from rnnlab.jobs.results import GradientCheckFailed
from rnnlab.proc import created
from rnnlab.sweeps.plan import sweep_job

register_configs()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> Any:
    """One job of this config; returns what a sweeper minimises (the final loss, inf if it
    diverged; a basin map: its metrics)."""
    hc = HydraConfig.get()
    # the task's overrides, and the user's config folders (--config-dir, hydra.searchpath)
    # as one absolute hydra.searchpath override: a rerun composes with the same folders
    folders = user_config_dirs(hc.runtime.config_sources)
    overrides = config_overrides(hc.overrides.task) + searchpath_override(folders)
    output_dir = Path(hc.runtime.output_dir)
    missing = missing_config_dirs(folders)
    if missing:  # (Hydra skips a search path folder it does not find)
        remove_run_folder(output_dir)
        console.error("rnnlab", missing)
        sys.exit(USAGE_ERROR)
    sweep = callback.current()
    try:
        if sweep is None:
            validate(cfg)  # alone, a bad value is one line and no run; in a sweep, its child fails
        job = runner.job_of(
            cfg,
            to_container(cfg),
            overrides,
            output_dir,
            sweep=sweep.ref if sweep else None,
            job=sweep_job(sweep.num, overrides, sweep.plan) if sweep else None,
            tags=sweep.tags if sweep else {},
            log_model=False if sweep else None,  # a sweep logs the best run's, on its parent
            created=created.noted(output_dir),
        )
        return runner.run_job(job, recording.current()).objective
    except Exception as exc:
        if sweep is not None:
            raise  # recorded on its run: Hydra marks the job failed, the summary names it
        problem = user_error(exc)
        if isinstance(exc, GradientCheckFailed):  # recorded FAILED
            console.say(f"rnnlab: gradient check failed: {exc}", err=True)
            sys.exit(1)
        if problem is None:
            raise  # a bug: its traceback
        remove_run_folder(output_dir)  # a refused run leaves nothing behind
        console.error("rnnlab", problem)
        sys.exit(USAGE_ERROR)


def cli() -> None:
    """Console-script entry point for ``rnnlab``."""
    from rnnlab.cli import command
    from rnnlab.proc import startup

    startup.quiet_gc()  # while start-up imports; proc.startup.settle_gc ends it
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
    from rnnlab.store import orphans

    orphans.offer_hints()
    os.environ["HYDRA_FULL_ERROR"] = "1"
    # Ray's workers use this environment: no virtualenv per Ray session (launchers.py)
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    if not sys.stdout.isatty():  # Ray colours its workers' line prefixes even in a pipe
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    if not console.verbose():  # joblib's resource tracker (a process of its own) warns of
        # what it cleans up after a killed worker, below rnnlab's one line: not unless -v
        quiet = "ignore:resource_tracker:UserWarning"
        os.environ["PYTHONWARNINGS"] = ",".join(
            filter(None, [os.environ.get("PYTHONWARNINGS"), quiet])
        )
    sys.exit(command.run(run_hydra, "rnnlab"))


def run_hydra(recorder: Any) -> int:
    """Hydra's entry point; the exit status, with one line for a user's mistake. A sweep
    stopped by an error is ended here (Hydra 1.3 skips ``on_multirun_end`` then)."""
    try:
        main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        callback.end_open_sweeps(interrupted=True)
        return INTERRUPTED
    except BrokenPipeError:  # Hydra's own print (--help, --cfg) had no reader left: done
        console.reader_gone(sys.stdout)
        return 0
    except (StoreFailed, StoreError):
        raise  # the recorder's (in this process): cli.command says it
    except SweepRefused as exc:
        callback.end_open_sweeps(error=str(exc))
        console.error("rnnlab", str(exc))
        return USAGE_ERROR
    except Exception as exc:
        problem = undecodable_config(exc, sys.argv[1:]) or user_error(exc) or run_folder_error(exc)
        if callback.end_open_sweeps(error=problem or f"{type(exc).__name__}: {exc}"):
            return 1  # jobs' own failures: recorded on their runs, named by the summary
        if problem is None:
            raise  # a bug: its traceback
        console.error("rnnlab", problem)
        return USAGE_ERROR
    return 0
