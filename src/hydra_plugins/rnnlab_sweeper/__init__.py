"""rnnlab's Hydra sweeper (``hydra/sweeper=rnnlab``): Hydra's basic sweeper (the same grid,
job order and batches) whose check of a batch composes only the jobs that cover every
group value (``rnnlab.sweeps.plan.covering_jobs``), not every job: a config error still
stops the sweep before its first job, and a 1,000-job sweep does not wait minutes for it.
Like Hydra's own plugins it registers its config node in Hydra's ConfigStore, so any Hydra
app of this environment can select it.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra_plugins.rnnlab_sweeper.config import RnnlabSweeperConf  # noqa: F401 (registers it)
from rnnlab.frameworks import basic_sweeper


class Sweeper(basic_sweeper()):  # type: ignore[misc]
    """Hydra's basic sweeper, checking each batch by its covering jobs."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from rnnlab.cli import launchers
        from rnnlab.sweeps.plan import GROUPS, covering_jobs

        if not getattr(self.launcher, "checks_batches", False):  # (rnnlab's launcher does)
            loader = self.hydra_context.config_loader
            for i in covering_jobs(batch, GROUPS):
                loader.load_sweep_config(self.config, list(batch[i]))
        launchers.joined_warm_up()  # joblib's workers ready before the launcher uses them
