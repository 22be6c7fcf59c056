"""rnnlab's Hydra sweeper (``hydra/sweeper=rnnlab``): Hydra's basic sweeper whose check of a
batch composes only its covering jobs (``sweeps.plan.covering_jobs``), not every job; its
node is in Hydra's ConfigStore, so any Hydra app can select it."""

from __future__ import annotations

from collections.abc import Sequence

from hydra_plugins.rnnlab_sweeper.config import RnnlabSweeperConf  # noqa: F401 (registers it)
from rnnlab.frameworks import basic_sweeper


class Sweeper(basic_sweeper()):  # type: ignore[misc]
    """Hydra's basic sweeper, checking each batch by its covering jobs."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from rnnlab.sweeps.plan import GROUPS, covering_jobs

        if getattr(self.launcher, "checks_batches", False):  # rnnlab's launcher checks it
            return
        loader = self.hydra_context.config_loader
        for i in covering_jobs(batch, GROUPS):
            loader.load_sweep_config(self.config, list(batch[i]))
