"""rnnlab's Hydra sweeper: Hydra's basic sweeper, composing each job's config once.

Hydra loads sweepers only from the ``hydra_plugins`` namespace package, so it lives
here rather than in ``rnnlab``. Like Hydra's own plugins it registers its config node in
Hydra's ConfigStore (group ``hydra/sweeper``, name ``rnnlab``) when Hydra scans its
plugins, so ``hydra/sweeper=rnnlab`` works in any Hydra app of this environment, not only
rnnlab's (where conf/config.yaml makes it the default).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from typing import Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.types import HydraContext
from omegaconf import DictConfig

from hydra_plugins.rnnlab_sweeper.config import RnnlabSweeperConf  # noqa: F401 (registers it)

# Configs composed ahead (by the sweeper's check) and kept for the launcher, at most this
# many: past it a job is composed twice rather than holding a large sweep in memory.
COMPOSED_AHEAD = 256
LAUNCH_CHUNK = 32  # jobs per call of the basic launcher in rnnlab's app (see Sweeper.setup)
RNNLAB_CALLBACK = "rnnlab.cli.callback.MlflowSweepCallback"


def covering_jobs(batch: Sequence[Sequence[str]], groups: Sequence[str]) -> list[int]:
    """The jobs (indices into ``batch``) the sweeper composes before any job runs: job 0,
    then, in order, each job that brings a value not seen yet, so that every value of a
    config group (``optimizer=gd``) and every value of a key under a group that varies
    (``optimizer.eta_minus=0.3`` beside ``optimizer=rprop,gd``; every key if
    ``experiment`` varies) is in one of them. Values
    of other keys are checked against their types without composing
    (``rnnlab.sweeps.plan``): composing every job first made a 1,000-job sweep wait
    minutes for its first job."""

    def key(override: str) -> str:
        return override.split("=", 1)[0].lstrip("+~").split("@")[0]

    varying = {key(o) for job in batch for o in job if o not in batch[0]}
    swept_groups = {k for k in varying if k in groups}
    everything = "experiment" in swept_groups

    def needs(override: str) -> bool:
        k = key(override)
        return everything or k in groups or k.split(".")[0] in swept_groups

    chosen, covered = [0], set(batch[0])
    for i, job in enumerate(batch[1:], start=1):  # in order, once: linear in the batch
        if any(o not in covered and needs(o) for o in job):
            chosen.append(i)
            covered.update(job)
    return chosen


class Composer:
    """A forked copy of the worker that composes a sweep's jobs, one after another, with
    Hydra's own loader, and hands them over through a pipe (a config pickles in ~1 ms,
    unpickles in ~2.5; composing one takes ~0.1 s): the worker runs job k while job
    k+1 is composed on the other core. The pipe's buffer holds a few configs, so the
    child stays a few jobs ahead and memory stays flat. It ends when the worker takes
    the last job, closes it (a sweep that stops), or dies (``proc.signals.watch_parent``)."""

    def __init__(self, loader: Any, master_config: DictConfig, jobs: list[list[str]]) -> None:
        import multiprocessing

        from rnnlab.proc import signals, startup

        receive, send = multiprocessing.Pipe(duplex=False)
        pid = os.fork()
        if pid == 0:  # the child: compose, send, leave without the worker's exit hooks
            receive.close()
            signals.default_handlers()
            signals.watch_parent()
            startup.settle_gc()  # (off for the worker's start-up: cycles would pile up)
            try:
                for overrides in jobs:
                    try:
                        cfg = loader.load_sweep_config(master_config, overrides)
                    except BaseException:  # the worker composes it again, for its error
                        send.send((overrides, None))
                        break
                    send.send((overrides, cfg))
            except BaseException:  # the worker has gone, or closed the pipe
                pass
            finally:
                os._exit(0)
        send.close()
        self.pid, self._receive = pid, receive

    def take(self, overrides: Sequence[str]) -> DictConfig | None:
        """The next composed config if it is the one for ``overrides``, else None."""
        try:
            composed, cfg = self._receive.recv()
        except (EOFError, OSError):
            return None
        return cfg if composed == list(overrides) else None

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self._receive.close()


class ComposedAhead:
    """Hydra's config loader, keeping the configs the sweeper composed to check a batch
    for the launcher, which would compose each again (~0.17 s a job)."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self._ahead: dict[tuple[str, ...], DictConfig] = {}

    def compose_ahead(self, master_config: DictConfig, overrides: Sequence[str]) -> None:
        cfg = self._loader.load_sweep_config(master_config, list(overrides))
        if len(self._ahead) < COMPOSED_AHEAD:
            self._ahead[tuple(overrides)] = cfg

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]):
        cfg = self._ahead.pop(tuple(sweep_overrides), None)
        if cfg is None and self.composer is not None:
            cfg = self.composer.take(sweep_overrides)
            if cfg is None:  # not the job it composed next, or it failed: compose here
                self.close_composer()
        if cfg is None:
            cfg = self._loader.load_sweep_config(master_config, sweep_overrides)
        return cfg

    composer: Composer | None = None

    def start_composer(self, master_config: DictConfig, batch: Sequence[Sequence[str]]) -> None:
        """Compose the batch's other jobs in a forked child, in the launcher's order."""
        served = set(self._ahead)
        jobs = []
        for overrides in batch:
            if tuple(overrides) in served:
                served.discard(tuple(overrides))  # the launcher takes it from _ahead
            else:
                jobs.append(list(overrides))
        if len(jobs) >= 2:
            self.composer = Composer(self._loader, master_config, jobs)

    def close_composer(self) -> None:
        if self.composer is not None:
            self.composer.close()
            self.composer = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def __getstate__(self) -> dict[str, Any]:  # sent to workers without the configs
        return {"_loader": self._loader, "_ahead": {}, "composer": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class Sweeper(BasicSweeper):
    """Hydra's basic sweeper (the same grid, job order and batches) that composes each
    job's config once: its check of a batch composes the jobs that cover every group
    value (``covering_jobs``) before any runs (so a config error stops the sweep before
    it starts) and hands those configs to the launcher, which composes the others as it
    runs them (in the rnnlab command's worker, a ``Composer`` composes job k+1 while job
    k runs, and the recorder records job k-1)."""

    compact = False  # rnnlab's app with the basic launcher (see setup)

    def setup(self, *, hydra_context: HydraContext, task_function, config: DictConfig) -> None:
        loader = ComposedAhead(hydra_context.config_loader)
        context = HydraContext(config_loader=loader, callbacks=hydra_context.callbacks)
        super().setup(hydra_context=context, task_function=task_function, config=config)
        launch = self.launcher.launch

        def launch_and_note_failures(job_overrides, initial_job_idx):
            """A job that failed in another process (joblib, Ray) comes back as a copy of
            its error: note it as a job's own failure (recorded on its run), as the jobs
            of this process note theirs."""
            from hydra.core.utils import JobStatus

            from rnnlab.cli import link

            results = []
            step = LAUNCH_CHUNK if self.compact else max(len(job_overrides), 1)
            try:
                for start in range(0, len(job_overrides), step):
                    chunk = launch(job_overrides[start : start + step], initial_job_idx + start)
                    for r in chunk:
                        if r.status == JobStatus.FAILED:
                            link.note_job_failure(r._return_value)
                        if self.compact:  # recorded by rnnlab's callback; Hydra only keeps them
                            r.cfg = r.hydra_cfg = None
                    results += chunk
            finally:
                loader.close_composer()
            return results

        # In rnnlab's own app (its callback records every job) and in this process, the
        # jobs' configs are not kept in Hydra's results (~1.8 MB a job: a 1,000-job sweep
        # grew to 2 GB): the batch runs in chunks, each chunk's configs let go. In the
        # rnnlab command's worker (two processes), a Composer composes the jobs ahead.
        self.compact = isinstance(self.launcher, BasicLauncher) and any(
            (c or {}).get("_target_") == RNNLAB_CALLBACK
            for c in (config.hydra.get("callbacks") or {}).values()
        )
        self.launcher.launch = launch_and_note_failures

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from rnnlab.sweeps.plan import GROUPS

        loader = self.hydra_context.config_loader
        loader.close_composer()  # (a batch before this one: its jobs are done)
        for i in covering_jobs(batch, GROUPS):
            loader.compose_ahead(self.config, batch[i])
        from rnnlab.cli import link

        if self.compact and link.LINK is not None:  # the rnnlab command's worker: overlap
            loader.start_composer(self.config, batch)
        # A two-process sweep: the parent's ids (the recorder opened it meanwhile) before
        # the launcher hands the callback to its workers.
        from rnnlab.cli import callback, launchers

        if callback.linked() is not None:
            callback.linked().await_parent()
        launchers.joined_warm_up()
