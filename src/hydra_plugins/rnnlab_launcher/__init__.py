"""rnnlab's Hydra launcher (``hydra/launcher=rnnlab``): Hydra's basic launcher with each job's
config composed ahead (``rnnlab.cli.launcher``); its node is in Hydra's ConfigStore."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.rnnlab_launcher.config import RnnlabLauncherConf  # noqa: F401 (registers it)

RNNLAB_CALLBACK = "rnnlab.cli.callback.MlflowSweepCallback"


class RnnlabLauncher(Launcher):
    """Every job in this process, its config composed ahead (see ``rnnlab.cli.launcher``)."""

    log = logging.getLogger(__name__)
    checks_batches = True  # it composes a batch's covering jobs before running any

    def __init__(self, compose_ahead: bool = True, keep_configs: bool | None = None) -> None:
        self.compose_ahead, self.keep_configs = compose_ahead, keep_configs
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        if self.keep_configs is None:  # rnnlab's app records every job: Hydra's copies can go
            callbacks = (config.hydra.get("callbacks") or {}).values()
            self.keep_configs = not any(c.get("_target_") == RNNLAB_CALLBACK for c in callbacks)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from rnnlab.cli import launcher

        returns: Any = launcher.launch(self, job_overrides, initial_job_idx)
        return returns
