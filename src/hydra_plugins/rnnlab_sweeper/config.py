"""The sweeper's node in Hydra's ConfigStore, ``hydra/sweeper=rnnlab`` (no postponed
annotations: Hydra's plugin scan runs this module outside ``sys.modules``)."""

from dataclasses import dataclass
from typing import Optional

from hydra.core.config_store import ConfigStore


@dataclass
class RnnlabSweeperConf:
    """The basic sweeper's fields: ``max_batch_size`` (jobs per batch; None: all at
    once) and ``params`` (key -> sweep expression, like command-line overrides)."""

    _target_: str = "hydra_plugins.rnnlab_sweeper.Sweeper"
    max_batch_size: Optional[int] = None  # noqa: UP045 (see the module's docstring)
    params: Optional[dict[str, str]] = None  # noqa: UP045


ConfigStore.instance().store(
    group="hydra/sweeper", name="rnnlab", node=RnnlabSweeperConf, provider="rnnlab"
)
