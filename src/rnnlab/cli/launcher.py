"""rnnlab's launcher (``hydra/launcher=rnnlab``): Hydra's basic launcher, each job's config
composed ahead by a forked ``Composer`` (job k+1 composed while job k runs) where the
platform may fork; the batch's covering jobs composed first, so a config error stops it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from rnnlab.proc import link, signals


class Composer:
    """A forked copy of this process composing ``jobs`` (each a list of overrides) in
    order; ``take(overrides)`` the next config if it is that job's, else None."""

    def __init__(self, loader: Any, master: DictConfig, jobs: Sequence[Sequence[str]]) -> None:
        import multiprocessing

        from rnnlab.proc import startup

        receive, send = multiprocessing.Pipe(duplex=False)
        pid = os.fork()
        if pid == 0:  # the child: compose, send, leave without this process's exit hooks
            receive.close()
            link.forget_parent()
            signals.default()
            link.watch_parent()
            startup.settle_gc()
            try:
                for overrides in jobs:
                    try:
                        cfg = loader.load_sweep_config(master, list(overrides))
                    except BaseException:  # composed again by the launcher, for its error
                        send.send((list(overrides), None))
                        break
                    send.send((list(overrides), cfg))
            except BaseException:  # the launcher has gone, or closed the pipe
                pass
            os._exit(0)
        send.close()
        self.pid, self._receive = pid, receive

    def take(self, overrides: Sequence[str]) -> DictConfig | None:
        try:
            composed, cfg = self._receive.recv()
        except (EOFError, OSError):
            return None
        return cfg if composed == list(overrides) else None

    def close(self) -> None:
        import signal

        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self._receive.close()


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
    """Run the batch ``job_overrides`` (Hydra's ``Launcher.launch``): first compose the jobs
    that cover every group value (``sweeps.plan.covering_jobs``), so that a config error
    stops the batch before its first job, then run every job. Returns Hydra's JobReturns,
    their configs dropped unless the launcher keeps them (``keep_configs``: Hydra keeps
    ~1.8 MB a job, 2 GB over a 1,000-job sweep)."""
    from hydra.core.utils import configure_log, filter_overrides, run_job, setup_globals

    from rnnlab.sweeps.plan import GROUPS, covering_jobs

    setup_globals()
    config, loader = launcher.config, launcher.hydra_context.config_loader
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    covering = covering_jobs(job_overrides, GROUPS) if job_overrides else []
    composed = {i: loader.load_sweep_config(config, list(job_overrides[i])) for i in covering}
    rest = [o for i, o in enumerate(job_overrides) if i not in composed]
    composer = None
    if launcher.compose_ahead and len(rest) > 1 and link.can_fork():
        composer = Composer(loader, config, rest)
    returns = []
    try:
        for i, overrides in enumerate(job_overrides):
            signals.check()  # between jobs: a safe point
            idx = initial_job_idx + i
            cfg = composed.pop(i, None)
            if cfg is None and composer is not None:
                cfg = composer.take(overrides)
                if cfg is None:  # not the job it composed next: compose here from now on
                    composer.close()
                    composer = None
            if cfg is None:
                cfg = loader.load_sweep_config(config, list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.id = idx
                cfg.hydra.job.num = idx
            launcher.log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            ret = run_job(
                hydra_context=launcher.hydra_context,
                task_function=launcher.task_function,
                config=cfg,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
            if not launcher.keep_configs:
                ret.cfg = ret.hydra_cfg = None
            returns.append(ret)
            configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    finally:
        if composer is not None:
            composer.close()
    return returns
