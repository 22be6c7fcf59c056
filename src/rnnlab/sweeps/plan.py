"""A sweep's plan: the jobs Hydra's basic sweeper runs (or a searching sweeper's space and
settings), checked before anything is created, and the params its parent records."""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rnnlab import console
from rnnlab.config import (
    CONF_DIR,
    conf_options,
    config_overrides,
    plain,
    run_params,
)
from rnnlab.config import GROUPS as config_groups
from rnnlab.config.params import SWEPT_PREFIX, config_key, on_log_scale
from rnnlab.errors import SweepRefused
from rnnlab.jobs.text import SweepJob

SWEEP_JOB_TAG = "sweep_job"  # on a child: its job number
BASIC_SWEEPERS = (  # sweepers that expand the grid as plan() does
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
    "hydra_plugins.rnnlab_sweeper.Sweeper",
)
GROUPS = (*config_groups, "experiment")  # the choices a sweep can vary


# --- the plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The jobs of a sweep, in Hydra's order (job i is ``jobs[i]``), and what is swept.
    A search (``searched``): ``swept`` maps each searched key to its distribution as
    written (``["tag(log, interval(0.0001, 1))"]``), ``jobs`` is empty until the search
    has ended (then: the jobs it ran), and ``sweeper`` holds its settings."""

    jobs: list[list[str]]
    swept: dict[str, list[str]]  # key -> its values, in order (a search: its distribution)
    searched: bool = False  # the sweeper decides the jobs as it goes
    sweeper: dict[str, str] = field(default_factory=dict)  # a search's settings, flattened

    @property
    def log_keys(self) -> tuple[str, ...]:
        """The keys a search draws on a log scale."""
        drawn = self.swept.items() if self.searched else ()
        return tuple(k for k, v in drawn if v and on_log_scale(v[0]))


def sweep_job(num: int, overrides: Sequence[str], p: Plan | None) -> SweepJob:
    """Job ``num`` of the sweep ``p`` (its swept keys' values, whether a search drew them
    and on which scale), from the job's overrides."""
    if p is None:
        return SweepJob.of(num, overrides, ())
    return SweepJob.of(num, overrides, list(p.swept), p.searched, p.log_keys)


def source_overrides(source: str) -> list[str]:
    """The overrides of a child's recorded Source (``rnnlab k=v ...``, shell-quoted)."""
    try:
        return shlex.split(source)[1:]
    except ValueError:  # not a command rnnlab wrote
        return source.split()[1:]


def plan(config: DictConfig) -> Plan:
    """The job list Hydra's basic sweeper builds from these overrides, or, for another
    sweeper (which decides its jobs as it goes), the search it runs (``search``). The
    whole sweep grammar: ``glob`` reads a group's options through the running Hydra's
    config loader (with the user's config folders), as the sweeper itself does."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from rnnlab.frameworks import basic_sweeper

    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + config_overrides(
        config.hydra.overrides.task
    )
    parser = OverridesParser.create(config_loader=_config_loader())
    try:
        overrides = parser.parse_overrides(arguments)
        if config.hydra.sweeper.get("_target_") not in BASIC_SWEEPERS:
            return search(overrides, config)
        sizes = [_sweep_size(o) for o in overrides if o.is_sweep_override()]
    except HydraException as exc:
        raise SweepRefused(f"cannot read the sweep: {str(exc).strip().splitlines()[0]}") from None
    _check_values(overrides, config)
    if math.prod(sizes) > MAX_SWEEP_JOBS:
        raise SweepRefused(
            f"the sweep has {math.prod(sizes):,} jobs; at most {MAX_SWEEP_JOBS:,} run in "
            "one sweep: sweep fewer values, or split it"
        )
    swept: dict[str, list[str]] = {}
    for o in overrides:
        key = config_key(o.get_key_element())
        if o.is_sweep_override() and o.is_discrete_sweep():
            swept[key] = list(o.sweep_string_iterator())
        else:
            swept.pop(key, None)  # a later plain value replaces an earlier sweep
    batches = basic_sweeper().split_arguments(overrides, None)
    return Plan(jobs=[job for batch in batches for job in batch], swept=swept)


def search(overrides, config: DictConfig) -> Plan:
    """The plan of a sweeper that decides its jobs as it goes: each key it searches (a
    sweep override on the command line or in ``hydra.sweeper.params``) with its
    distribution as written, and the sweeper's own settings (``hydra.sweeper`` but its
    params: the sampler, its seed, the number of trials, the direction)."""
    from rnnlab.config import flatten

    swept: dict[str, list[str]] = {}
    for o in overrides:
        key = config_key(o.get_key_element())
        if o.is_sweep_override():
            swept[key] = [o.input_line.split("=", 1)[1].strip()]
        else:
            swept.pop(key, None)  # a later plain value replaces an earlier search
    settings = {k: v for k, v in plain(config.hydra.sweeper).items() if k != "params"}
    sweeper = {k: str(v) for k, v in flatten(settings, "sweeper.").items()}
    return Plan(jobs=[], swept=swept, searched=True, sweeper=sweeper)


PLAN_FILE = ("sweep", "jobs.json")  # where a sweep's parent logs its plan (SweepParent)


def logged_plan(client, parent_run_id: str) -> Plan:
    """The plan a sweep's parent logged (``sweep/jobs.json``: its jobs, what they sweep,
    whether a sweeper searched). Raises StoreError for artifacts that are not where the
    store says, else what the download raises (no plan logged)."""
    from rnnlab.store import query

    folder, name = PLAN_FILE
    (raw,) = query.download_yaml(client, parent_run_id, folder, [name])
    jobs = [list(j) for j in raw["jobs"]]
    swept = {config_key(k): v for k, v in raw["swept"].items()}
    return Plan(jobs, swept, bool(raw.get("searched")), raw.get("sweeper") or {})


MAX_SWEEP_JOBS = 10_000  # ~0.2-0.5 s a job: a longer sweep is a mistake or a plan to split


def _sweep_size(o) -> int:
    """How many values the sweep override ``o`` has, counted without listing a range (a
    range of 10^8 values would take minutes to list). Raises SweepRefused for a sweep the
    basic sweeper cannot list (``interval``) and for one with no values."""
    import math as m

    from hydra.core.override_parser.types import RangeSweep

    if not o.is_discrete_sweep():
        raise SweepRefused(
            f"{o.input_line}: Hydra's basic sweeper runs lists, range(), choice() and "
            "glob(), not intervals; an interval needs a sampling sweeper, e.g. "
            "hydra/sweeper=optuna"
        )
    value = o.value()
    if isinstance(value, RangeSweep):
        start, stop, step = value.start or 0, value.stop or 0, value.step
        span = (stop - start) / step if step else -1
        n = max(m.ceil(span), 0)
    else:
        n = len(list(o.sweep_string_iterator()))
    if n == 0:
        raise SweepRefused(f"{o.input_line} has no values: the sweep would run nothing")
    return n


def _check_values(overrides, config: DictConfig) -> None:
    """Each value a sweep gives a typed key fits the key's type (``iterations=3,abc``):
    refused before the parent exists rather than found by the job that gets it."""
    import copy

    from hydra.core.override_parser.types import ChoiceSweep, QuotedString, RangeSweep
    from omegaconf.errors import OmegaConfBaseException, ValidationError

    trial = copy.deepcopy(config)
    OmegaConf.set_readonly(trial, False)
    groups = {o.key_or_group for o in overrides if o.is_sweep_override()} & set(GROUPS)
    for o in overrides:
        key = o.key_or_group
        if key.split(".")[0] in groups or "experiment" in groups:
            continue  # its node's type depends on the option each job chooses
        if not o.is_sweep_override() or o.package or key.startswith("hydra") or "/" in key:
            continue
        if key.split(".")[0] in GROUPS and "." not in key:
            continue  # a group's options: checked against the search path
        if OmegaConf.select(trial, key, default=None) is None and o.is_add():
            continue
        value = o.value()
        values = value.list if isinstance(value, ChoiceSweep) else []
        if isinstance(value, RangeSweep):
            values = [value.start]
        for v in values:
            if isinstance(v, QuotedString):
                v = v.text  # the value Hydra passes on
            try:
                OmegaConf.update(trial, key, v, merge=False)
            except ValidationError as exc:  # the value does not fit the key's type
                why = str(exc).strip().splitlines()[0]
                raise SweepRefused(f"{key}={v} is not allowed: {why}") from None
            except OmegaConfBaseException:
                break  # not a key of this config (Hydra says so at composition)


def _config_loader():
    """The running Hydra's config loader (None outside a Hydra app)."""
    from hydra.core.global_hydra import GlobalHydra

    gh = GlobalHydra.instance()
    return gh.config_loader() if gh.is_initialized() else None


def group_options(group: str, config: DictConfig) -> list[str]:
    """The options of config group ``group`` on the sweep's search path (rnnlab's conf/
    and the user's own folders: ``--config-dir``, ``hydra.searchpath``)."""
    loader = _config_loader()
    if loader is None:
        return conf_options(group)
    typed = config_overrides(config.hydra.overrides.hydra)
    hydra_overrides = [o for o in typed if o.startswith("hydra.searchpath")]
    return sorted(loader.get_group_options(group, config_name="config", overrides=hydra_overrides))


def _option_files(group: str, option: str, config: DictConfig) -> list[Path]:
    """Where option ``group/option`` may be: in conf/ and the user's config folders."""
    folders = [CONF_DIR]
    for source in config.hydra.runtime.get("config_sources") or []:
        if source.get("schema") == "file" and source.get("path"):
            folders.append(Path(source.path))
    return [
        f / group / f"{option}.yaml" for f in folders if (f / group / f"{option}.yaml").is_file()
    ]


# Where a sweep's runs are stored is one place (one store, one experiment, one parent):
# these keys cannot vary between its jobs.
STORAGE_KEYS = ("tracking",)


def check_plan(p: Plan, config: DictConfig) -> None:
    """Refuse what would fail after the parent exists: options that do not exist, a
    task that does not run as a sweep, and keys that decide where runs are stored."""
    for key in p.swept:
        if any(
            key == k or key.startswith(k + ".") or key.startswith(k + "/") for k in STORAGE_KEYS
        ):
            raise SweepRefused(
                f"{key} cannot be swept: a sweep's runs are stored in one store and one "
                f"experiment, under one parent run; run one sweep per value instead, e.g. "
                f"rnnlab -m {key}={p.swept[key][0]} ..."
            )
    for group, values in p.swept.items():
        if group in GROUPS and not p.searched:  # (a search's values: its distribution)
            options = group_options(group, config)
            for v in values:
                if v not in options and v != "null":
                    raise SweepRefused(
                        f"{group}={v} is not an option of group '{group}': "
                        f"choose one of {', '.join(options)}"
                    )
    tasks = {config.get("task")}
    stores = set()
    for v in p.swept.get("experiment", []) if not p.searched else []:
        files = _option_files("experiment", v, config)
        loaded: Any = OmegaConf.load(files[0]) if files else OmegaConf.create()
        tasks.add(loaded.get("task", "train"))
        tracked = loaded.get("tracking") or {}
        stores.add(tuple(str(tracked.get(k)) for k in ("uri", "experiment", "artifact_root")))
    if "basin_map" in tasks:
        raise SweepRefused(
            "a basin map does not run as a sweep (-m): one run covers every start "
            "of its grid; run it once per setting instead, e.g. "
            "rnnlab experiment=basin_map basin.resolution=64"
        )
    if len(stores) > 1:
        raise SweepRefused(
            f"experiment={','.join(p.swept['experiment'])} cannot be swept: those "
            "experiments store their runs in different MLflow experiments, and a sweep's "
            "runs go under one parent run; run one sweep per experiment instead"
        )


def covering_jobs(batch: Sequence[Sequence[str]], groups: Sequence[str]) -> list[int]:
    """The jobs (indices into ``batch``) a sweep composes before any job runs: job 0, then,
    in order, each job that brings a value not seen yet, so that every value of a config
    group (``optimizer=gd``) and every value of a key under a group that varies
    (``optimizer.eta_minus=0.3`` beside ``optimizer=rprop,gd``; every key if ``experiment``
    varies) is composed once. Other keys' values are checked against their types without
    composing (``plan``)."""

    def key(override: str) -> str:
        return config_key(override.split("=", 1)[0])

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


# a key whose value the composition derives from swept ones: a start's name is "custom"
# once its weights are set (config.composition), so no child of a sweep over them has it
DERIVED = {"init.wx": "init.name", "init.wrec": "init.name"}


def shared_params(config: dict[str, Any], p: Plan) -> dict[str, str]:
    """The parent's params: the config every job shares (not a key the jobs' swept
    values change: ``DERIVED``), and what is swept over what."""
    varies = [*p.swept, *(DERIVED[s] for s in p.swept if s in DERIVED)]
    shared = {
        k: v
        for k, v in run_params(config).items()
        if not any(k == s or k.startswith(s + ".") for s in varies)
    }
    swept = {f"{SWEPT_PREFIX}{k}": ", ".join(v) for k, v in p.swept.items()}
    return {**shared, **swept, **p.sweeper}


# config groups that change where and how a sweep is recorded or drawn, not its results
NOT_RESULTS = ("tracking", "plots", "step_metrics", "hydra")


def name_parts(config: DictConfig, p: Plan | None) -> tuple[str, str]:
    """A sweep parent's name before its number (the experiment, else the swept keys:
    ``init x optimizer.eta_plus``) and after it: what else the command chose (overrides
    that are not swept, another launcher or sweeper), so that sweeps of one experiment
    read apart in every MLflow view; not what leaves the results as they are (where
    they are stored, which figures: ``NOT_RESULTS``)."""
    choices = config.hydra.runtime.choices
    swept = set(p.swept) if p else set()
    base = choices.get("experiment") or (" x ".join(p.swept) if p and p.swept else "sweep")
    extra = [
        console.redact(o)
        for o in config_overrides(config.hydra.overrides.task)
        if config_key(o.split("=", 1)[0]) not in swept | {"experiment"}
        and config_key(o.split("=", 1)[0]).split(".")[0] not in NOT_RESULTS
    ]
    for group, default in (("hydra/sweeper", "rnnlab"), ("hydra/launcher", "rnnlab")):
        if choices.get(group) not in (None, default):
            extra.append(f"{group}={choices.get(group)}")
    return base, " ".join(extra)
