"""The config layer (Hydra): schemas registered in ConfigStore (``schema``), value
checks (``checks``: ``validate``), composition (``composition``: ``compose``) and what
a run records as params (``params``). The names other layers use are re-exported here:
``from rnnlab.config import validate, compose``."""

from __future__ import annotations

from rnnlab.config.checks import GROUPS, check_plots, conf_options, validate
from rnnlab.config.composition import (
    SEARCHPATH_KEY,
    compose,
    config_overrides,
    job_environment,
    missing_config_dirs,
    plain,
    resolver_call,
    searchpath_of,
    searchpath_override,
    to_container,
    user_config_dirs,
    with_search_path,
)
from rnnlab.config.params import flatten, run_params
from rnnlab.config.schema import (
    CONF_DIR,
    CUSTOM_START,
    FIGURES,
    LAB_POINTS,
    OPTIMIZER_NAMES,
    OPTIMIZERS,
    RATE_KEYS,
    SERIES,
    Config,
    ConfigError,
    PlotsConfig,
    optimizer_id,
    register_configs,
)
