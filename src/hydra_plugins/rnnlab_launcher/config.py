"""The launcher's node in Hydra's ConfigStore, ``hydra/launcher=rnnlab`` (no postponed
annotations: Hydra's plugin scan runs this module outside ``sys.modules``)."""

from dataclasses import dataclass
from typing import Optional

from hydra.core.config_store import ConfigStore


@dataclass
class RnnlabLauncherConf:
    """``compose_ahead``: compose the next jobs' configs in a forked process while a job
    runs (where this platform may fork); ``keep_configs``: keep each job's config in the
    results Hydra returns (~1.8 MB a job); None: keep them unless rnnlab's callback, which
    records every job itself, is the app's."""

    _target_: str = "hydra_plugins.rnnlab_launcher.RnnlabLauncher"
    compose_ahead: bool = True
    keep_configs: Optional[bool] = None  # noqa: UP045 (see the module's docstring)


ConfigStore.instance().store(
    group="hydra/launcher", name="rnnlab", node=RnnlabLauncherConf, provider="rnnlab"
)
