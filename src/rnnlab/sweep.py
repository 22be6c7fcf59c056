"""One multirun, one parent MLflow run: a Hydra callback (the summary is ``summary``).

``MlflowSweepCallback.on_multirun_start`` runs in the launching process. It plans the
sweep (the job list Hydra's basic sweeper will run, from the same overrides), checks it
(a task that cannot be swept, an option that does not exist, a store that does not
answer: one line, exit 2, nothing created), creates the store and the experiment once
(a fresh store's migrations and experiment creation race when several processes do
them), and opens the parent run with the shared config and the swept keys as params and
the job list as an artifact. Hydra pickles the callback into every worker (joblib, Ray),
where ``on_job_start`` publishes the parent to the job (``current()``), so each job's
run becomes a child (``mlflow.parentRunId``, tag ``sweep_job``) in the parent's
experiment.

``finalize`` (from ``on_multirun_end``, or from ``app.cli`` on an error or a signal:
Hydra 1.3 skips ``on_multirun_end`` when a job raises) ends children that were left
RUNNING, reads the children back from the store, and gives the parent its summary
(table, metrics, description, comparison figures, the best run's model) and FINISHED,
FAILED or KILLED.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rnnlab import console, lifecycle
from rnnlab.config import (
    CONF_DIR,
    ConfigError,
    conf_options,
    config_overrides,
    run_params,
    to_container,
    validate,
)
from rnnlab.config import GROUPS as config_groups

if TYPE_CHECKING:
    from rnnlab.summary import Summary

SWEEP_JOB_TAG = "sweep_job"  # on a child: its job number
RAY_NODE_TAG = "ray_node_id"  # on a child a Ray worker ran: the node it ran on
BASIC_SWEEPERS = (  # sweepers that expand the grid as plan() does
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
    "hydra_plugins.rnnlab_sweeper.Sweeper",
)
GROUPS = (*config_groups, "experiment")  # the choices a sweep can vary


class SweepRefused(BaseException):
    """The sweep cannot start (one line for the user). A BaseException because Hydra
    turns an Exception raised in a callback into a warning and goes on."""


@dataclass(frozen=True)
class SweepContext:
    """What a job inside a sweep needs to attach its run to the parent."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    job_num: int
    launcher_pid: int
    swept: tuple[str, ...] = ()  # the keys the sweep varies: what tells its jobs apart


_current: SweepContext | None = None
_open: dict[str, MlflowSweepCallback] = {}  # parents opened by this process, not yet closed
_linked: MlflowSweepCallback | None = None  # a worker's sweep, its parent in the recorder


def current() -> SweepContext | None:
    """The sweep the running job belongs to (None outside a multirun)."""
    return _current


def end_linked(interrupted: bool = False) -> bool:
    """In a worker: tell the recorder the sweep has ended (it summarises); False if this
    process started no such sweep (or has told it already)."""
    global _linked
    from rnnlab import recorder

    if _linked is None:
        return False
    _linked = None
    recorder.LINK.send(("sweep-end", interrupted))
    return True


# --- the plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The jobs of a sweep, in Hydra's order (job i is ``jobs[i]``), and what is swept."""

    jobs: list[list[str]]
    swept: dict[str, list[str]]  # key -> its values, in order


def plan(config: DictConfig) -> Plan | None:
    """The job list Hydra's basic sweeper builds from these overrides (None for another
    sweeper, which decides its jobs as it goes). The whole sweep grammar: ``glob`` reads
    a group's options through the running Hydra's config loader (with the user's config
    folders), as the sweeper itself does."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if config.hydra.sweeper.get("_target_") not in BASIC_SWEEPERS:
        return None
    from hydra.errors import HydraException

    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + config_overrides(
        config.hydra.overrides.task
    )
    parser = OverridesParser.create(config_loader=_config_loader())
    try:
        overrides = parser.parse_overrides(arguments)
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
        key = o.get_key_element()
        if o.is_sweep_override() and o.is_discrete_sweep():
            swept[key] = list(o.sweep_string_iterator())
        else:
            swept.pop(key, None)  # a later plain value replaces an earlier sweep
    batches = BasicSweeper.split_arguments(overrides, None)
    return Plan(jobs=[job for batch in batches for job in batch], swept=swept)


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
        span = (value.stop - value.start) / value.step if value.step else -1
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


def _check_plan(p: Plan, config: DictConfig) -> None:
    """Refuse what would fail after the parent exists: options that do not exist, a
    task that does not run as a sweep, and keys that decide where runs are stored."""
    for key in p.swept:
        bare = key.lstrip("+~").split("@")[0]
        if any(
            bare == k or bare.startswith(k + ".") or bare.startswith(k + "/") for k in STORAGE_KEYS
        ):
            raise SweepRefused(
                f"{key} cannot be swept: a sweep's runs are stored in one store and one "
                f"experiment, under one parent run; run one sweep per value instead, e.g. "
                f"rnnlab -m {key}={p.swept[key][0]} ..."
            )
    for key, values in p.swept.items():
        group = key.lstrip("+~").split("@")[0]
        if group in GROUPS:
            options = group_options(group, config)
            for v in values:
                if v not in options and v != "null":
                    raise SweepRefused(
                        f"{group}={v} is not an option of group '{group}': "
                        f"choose one of {', '.join(options)}"
                    )
    tasks = {config.get("task")}
    stores = set()
    for v in p.swept.get("experiment", []):
        files = _option_files("experiment", v, config)
        loaded = OmegaConf.load(files[0]) if files else OmegaConf.create()
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


def _swept_prefixes(p: Plan) -> tuple[str, ...]:
    return tuple(k.lstrip("+~").split("@")[0] for k in p.swept)


def _shared_params(config: dict[str, Any], p: Plan) -> dict[str, str]:
    """The parent's params: the config every job shares, and what is swept over what."""
    from rnnlab import ui

    prefixes = _swept_prefixes(p)
    shared = {
        k: v
        for k, v in run_params(config).items()
        if not any(k == s or k.startswith(s + ".") for s in prefixes)
    }
    return {**shared, **{f"{ui.SWEPT_PREFIX}{k}": ", ".join(v) for k, v in p.swept.items()}}


# --- joblib's workers ---------------------------------------------------------------

JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
_warming: list = []  # the thread starting joblib's workers, joined before the launch


def _check_launcher(config: DictConfig) -> None:
    """The launcher's settings that would fail the sweep after its parent opened."""
    launcher = config.hydra.launcher
    if launcher.get("_target_") == JOBLIB_LAUNCHER:
        n = launcher.get("n_jobs")
        if not isinstance(n, int) or isinstance(n, bool) or n == 0:
            raise SweepRefused(
                f"hydra.launcher.n_jobs={n} is not allowed: a number of worker processes "
                "(>= 1), or -1 for one per core (-2: all but one, ...)"
            )


def _warm_joblib_workers(config: DictConfig) -> None:
    """With ``hydra/launcher=joblib``: start joblib's worker processes now, and have them
    import rnnlab and MLflow (~2 s each), while this process composes every job; the
    launcher's ``Parallel`` then reuses them (joblib keeps one reusable pool)."""
    import threading

    launcher = config.hydra.launcher
    if launcher.get("_target_") != JOBLIB_LAUNCHER:
        return
    from joblib import Parallel, delayed

    # what the launcher passes to Parallel, so that joblib reuses the pool it starts here
    kwargs = {k: v for k, v in OmegaConf.to_container(launcher).items() if k != "_target_"}
    kwargs["backend"] = "loky"
    for key in ("n_jobs", "pre_dispatch", "batch_size"):
        try:
            kwargs[key] = int(kwargs[key])
        except (TypeError, ValueError, KeyError):
            pass
    n = kwargs.get("n_jobs", -1)
    n = os.cpu_count() or 1 if not isinstance(n, int) or n < 1 else n

    def warm() -> None:
        try:
            Parallel(**kwargs)(delayed(_warm_up_worker)() for _ in range(n))
        except Exception:  # only a head start: the launcher starts the pool itself
            pass

    thread = threading.Thread(target=warm, name="rnnlab-warm-joblib", daemon=True)
    thread.start()
    _warming.append(thread)


def _warm_up_worker() -> None:
    import gc

    gc.disable()  # the imports' own garbage collections cost ~18% of them
    import rnnlab.app
    import rnnlab.runner  # noqa: F401
    import rnnlab.tracking as tracking

    tracking.settle_gc()


def joined_warm_up() -> None:
    """Wait for joblib's workers to be started (before the launcher uses the pool)."""
    while _warming:
        _warming.pop().join()


def worker_tags() -> dict[str, str]:
    """Where a job ran, for a job that a Ray worker runs: its node (tag ``ray_node_id``,
    so a run on a cluster says which machine computed it)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return {}
    try:
        return {RAY_NODE_TAG: ray.get_runtime_context().get_node_id()}
    except Exception:  # a Ray without a runtime context here: nothing to say
        return {}


# --- a local Ray instance --------------------------------------------------------------

RAY_LAUNCHER = "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"


def _start_ray(config: DictConfig) -> None:
    """With ``hydra/launcher=ray``: join the cluster at ``hydra.launcher.ray.init.address``
    (or ``$RAY_ADDRESS``), or else start a local Ray instance here, quiet, with its
    session files in a temporary folder that goes with it when this process ends (the
    launcher then uses it). Jobs run in this environment: no runtime
    environment is built (app.cli sets RAY_ENABLE_UV_RUN_RUNTIME_ENV=0, or Ray would
    build a virtualenv of the whole uv project per session: minutes, a GB left behind)."""
    launcher = config.hydra.launcher
    if launcher.get("_target_") != RAY_LAUNCHER:
        return
    init = OmegaConf.to_container(launcher.ray.init, resolve=True) or {}
    import logging
    import shutil

    import ray

    if ray.is_initialized():
        return
    address = init.get("address") or os.environ.get("RAY_ADDRESS")
    if address:
        # a cluster: join it here, quiet. (The launcher would pass its default
        # object_store_memory, which Ray refuses when joining a cluster.)
        init.pop("object_store_memory", None)
        if str(address).split("://")[-1].startswith(("127.", "localhost")):
            # a cluster on loopback: this node is 127.0.0.1 too (Ray would otherwise
            # look for a route outside first, and warn where there is none)
            init.setdefault("_node_ip_address", "127.0.0.1")
        ray.init(**{"logging_level": logging.ERROR, **init, "address": address})
        atexit.register(ray.shutdown)
        return
    folder = tempfile.mkdtemp(prefix="rnnlab-ray-")  # short: Ray's socket paths must be
    init = {
        "object_store_memory": 78643200,  # as the launcher sets it: 75 MB is plenty here
        "include_dashboard": False,
        "logging_level": logging.ERROR,
        **init,
        "_temp_dir": folder,
    }
    ray.init(**{k: v for k, v in init.items() if k != "address"})

    def stop() -> None:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)


def _scrub_hydra_files(config: DictConfig) -> None:
    """Hydra's own record of a job (``.hydra/*.yaml``) and of a sweep (``multirun.yaml``)
    keep the command line as typed: hide passwords in URIs there too (written just now,
    before the job starts)."""
    folders = [Path(config.hydra.runtime.output_dir) / (config.hydra.output_subdir or "")]
    files = [p for f in folders if config.hydra.output_subdir for p in f.glob("*.yaml")]
    if config.hydra.mode == RunMode.MULTIRUN:
        files.append(Path(config.hydra.sweep.dir) / "multirun.yaml")
    for path in files:
        try:
            text = path.read_text()
            hidden = console.redact(text)
            if hidden != text:
                path.write_text(hidden)
        except OSError:
            continue  # not there (or not ours to change): nothing to hide


# --- the callback ---------------------------------------------------------------------


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.tracking_uri: str | None = None
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self.config: dict[str, Any] | None = None
        self.plan: Plan | None = None
        self.launcher_pid = os.getpid()
        self.name = "sweep"  # the parent's name: `base #k extra` once it is open
        self.base, self.extra = "sweep", ""
        self.overrides: list[str] = []
        self.searchpath: list[str] = []  # the user's config folders, as one override
        self.sweep_dir = ""
        self.sweep_folder = None  # created.Created: the sweep's folder before Hydra made it

    # --- a single run -----------------------------------------------------------------

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before Hydra makes the run's folder: note what is there (``created``), so that
        a run refused later removes only what it made."""
        from rnnlab import created

        try:
            folder = OmegaConf.select(config, "hydra.run.dir")
        except Exception:  # an interpolation only Hydra's job can resolve: note nothing
            return
        if folder:
            created.note(str(folder))

    # --- launching process ---------------------------------------------------------

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Plan and check the sweep, then open its parent (see the module's docstring). A
        mistake of the user's found here stops the sweep in one line (SweepRefused):
        Hydra would turn any other exception into a warning and run the jobs anyway."""
        from rnnlab import created
        from rnnlab.errors import user_error

        try:
            try:
                self._start(config)
            except Exception as exc:
                problem = user_error(exc)
                if problem is None:
                    raise
                raise SweepRefused(problem) from None
        except SweepRefused:
            created.remove(created.noted(str(config.hydra.sweep.dir)))  # the folder, if made
            raise

    def _start(self, config: DictConfig) -> None:
        from rnnlab import created, recorder

        # what Hydra will make of the sweep's folder: named if it cannot be made, taken
        # away again if the sweep is refused before its first job
        self.sweep_folder = created.note(str(config.hydra.sweep.dir))

        lifecycle.install_signal_handlers()
        self.launcher_pid = os.getpid()
        self.plan = plan(config)
        swept = _swept_prefixes(self.plan) if self.plan else ()
        if self.plan is not None:
            _check_plan(self.plan, config)
        try:
            validate(config)
        except ConfigError as exc:
            if not any(exc.key == s or exc.key.startswith(s + ".") for s in swept):
                raise SweepRefused(str(exc)) from None
        self.config = to_container(config)
        _check_launcher(config)
        _warm_joblib_workers(config)
        _start_ray(config)
        self.base, self.extra = _name_parts(config, self.plan)
        self.name = self.base
        from rnnlab.config import missing_config_dirs, searchpath_override, user_config_dirs

        # the user's config folders, which every job (and a rerun of it) composes with
        folders = user_config_dirs(config.hydra.runtime.config_sources)
        missing = missing_config_dirs(folders)
        if missing:
            raise SweepRefused(missing)
        self.searchpath = searchpath_override(folders)
        self.overrides = [
            console.redact(o) for o in config_overrides(config.hydra.overrides.task)
        ] + self.searchpath
        self.sweep_dir = str(Path(config.hydra.sweep.dir).resolve())
        try:  # Hydra makes it next, and would stop with a traceback after the parent opened
            Path(self.sweep_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SweepRefused(
                f"cannot make the sweep folder {self.sweep_dir} (hydra.sweep.dir): {exc.strerror}"
            ) from None
        if recorder.LINK is not None:  # the launching process records: it opens the parent
            global _linked
            recorder.LINK.send(("sweep-start", self))
            _linked = self
            self.answered = False
            if self.plan is None:  # another sweeper: its jobs may start at once
                self.await_parent()
        else:
            self.open_parent()

    def await_parent(self) -> None:
        """In a worker: the recorder's answer to ``sweep-start`` (the parent's ids), read
        once, when the jobs need it: rnnlab's sweeper reads it after composing every job,
        so that the worker composes while the recorder starts."""
        from rnnlab import recorder

        if getattr(self, "answered", True):
            return
        reply = recorder.LINK.recv()
        self.answered = True
        if reply[0] == "refused":
            from rnnlab import created

            created.remove(self.sweep_folder)  # its folder and multirun.yaml: no sweep ran
            raise SweepRefused(reply[1])
        self.tracking_uri, self.experiment_id, self.parent_run_id = reply[1:]

    def open_parent(self) -> None:
        """The store side of the start: the store and the experiment, created once, and
        the parent run (shared params, swept keys, the plan as an artifact). Raises
        SweepRefused when the store cannot be used."""
        from rnnlab import tracking, ui

        t = self.config["tracking"]
        try:
            self.tracking_uri = tracking.resolve_uri(t["uri"])
            client = tracking.client_for(self.tracking_uri)  # creates a fresh store's schema
            self.experiment_id = tracking.ensure_experiment(
                client, t["experiment"], t["artifact_root"], t["description"]
            )
        except tracking.StoreError as exc:
            raise SweepRefused(str(exc)) from None
        except Exception as exc:
            raise SweepRefused(f"cannot use the MLflow store: {tracking.reason(exc)}") from None
        from rnnlab import doctor

        doctor.offer(client)
        params = _shared_params(self.config, self.plan) if self.plan else {}
        self.parent_run_id = lifecycle.start(
            client,
            self.experiment_id,
            self.name,
            {
                **tracking.source_tags(" ".join(["rnnlab", "-m", *self.overrides])),
                ui.SWEEP_TAG: "true",
                ui.NAME_TAG: self.base,
                "sweep_dir": self.sweep_dir,
                "sweep_overrides": json.dumps(self.overrides),
                tracking.NOTE_TAG: f"Sweep running: {self.jobs_text()}",
            },
            params=params,
        )
        _open[self.parent_run_id] = self
        self.name_parent(client)
        self._log_plan(client)
        console.say(
            f"Sweep {self.name}: {self.jobs_text()}; MLflow parent run {self.parent_run_id} "
            f"(experiment {self.experiment_id}) in {tracking.redact(self.tracking_uri)}"
        )

    def name_parent(self, client) -> None:
        """Number the parent among its experiment's sweeps of the same name, and add the
        swept keys' columns to the experiment's results view (``ui``)."""
        from rnnlab import ui

        with lifecycle.owning(client, self.parent_run_id, finish=False):
            self.name = ui.number_name(
                client, self.experiment_id, self.parent_run_id, self.base, self.extra
            )
            ui.save_results_view(client, self.experiment_id)

    def say_links(self, summary: Summary) -> None:
        """The sweep in the MLflow UI: its parent, its children compared, the results view."""
        from rnnlab import ui

        base = ui.base_url(self.tracking_uri, self.config["tracking"].get("ui_url"))
        children = [r["run_id"] for r in summary.rows if r.get("run_id")]
        for line in ui.sweep_lines(base, self.experiment_id, self.parent_run_id, children):
            console.say(line)

    def jobs_text(self) -> str:
        return f"{len(self.plan.jobs)} jobs" if self.plan else "jobs chosen by the sweeper"

    def _log_plan(self, client) -> None:
        """The job list (what a rerun of this sweep reruns) and the launching config."""
        from rnnlab import tracking
        from rnnlab.runner import write_config

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if self.plan:
                (folder / "jobs.json").write_text(
                    json.dumps(
                        {
                            "swept": self.plan.swept,
                            "jobs": [
                                [console.redact(o) for o in [*job, *self.searchpath]]
                                for job in self.plan.jobs
                            ],
                        },
                        indent=1,
                    )
                )
            write_config(self.config, self.overrides, folder)
            tracking.log_files(client, self.parent_run_id, folder, "sweep")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not end_linked():
            self.finalize()

    # --- each job, in whichever process runs it ------------------------------------

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        _scrub_hydra_files(config)
        if _linked is self:
            self.await_parent()
        if self.parent_run_id is None:
            return  # a single run: no parent
        if os.getpid() != self.launcher_pid:  # a worker process (joblib, Ray)
            lifecycle.install_signal_handlers()
            console.quiet()
            if not getattr(MlflowSweepCallback, "_watching", False):
                lifecycle.watch_parent()
                MlflowSweepCallback._watching = True
        _current = SweepContext(
            self.tracking_uri,
            self.experiment_id,
            self.parent_run_id,
            int(config.hydra.job.num),
            self.launcher_pid,
            tuple(self.plan.swept) if self.plan else (),
        )

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        _current = None

    # --- closing the parent --------------------------------------------------------

    def finalize(self, interrupted: bool = False, quiet: bool = False) -> Summary | None:
        """Summarise the children on the parent and end it; safe to call twice. When the
        store fails, the parent's end waits in the journal (``quiet``: without saying so;
        the caller has)."""
        from rnnlab import summary as summaries
        from rnnlab import tracking

        if self.parent_run_id not in _open:
            return None
        del _open[self.parent_run_id]
        client = tracking.client_for(self.tracking_uri)
        # A signal during the summary does not cut it short: an interrupted summary is
        # still a summary (its table, metrics and figures), and the parent ends KILLED;
        # the signal takes effect once the parent has ended.
        with lifecycle.shielded():
            try:
                summaries.end_orphaned_children(client, self.experiment_id, self.parent_run_id)
                summary = summaries.collect(
                    client, self.experiment_id, self.parent_run_id, self.plan
                )
                summaries.log_summary(
                    client, self.parent_run_id, summary, self.config, self.experiment_id
                )
                console.say(summary.text())
                self.say_links(summary)
            except Exception as exc:
                killed = interrupted or lifecycle.received() is not None
                why = f"{type(exc).__name__}: {tracking.reason(exc)}"
                state = "KILLED" if killed else "FAILED"
                lifecycle.end(client, self.parent_run_id, state, why, quiet=quiet)
                raise
            if interrupted or lifecycle.received() is not None:
                status = "KILLED"
            else:
                status = "FAILED" if summary.failed or summary.not_started else "FINISHED"
            lifecycle.end(client, self.parent_run_id, status)
        return summary


def _name_parts(config: DictConfig, p: Plan | None) -> tuple[str, str]:
    """A sweep parent's name before its number (the experiment, else the swept keys:
    ``init x optimizer.eta_plus``) and after it: what else the command chose (overrides
    that are not swept, another launcher or sweeper), so that sweeps of one experiment
    read apart in every MLflow view."""
    choices = config.hydra.runtime.choices
    swept = set(p.swept) if p else set()
    base = choices.get("experiment") or (" x ".join(p.swept) if p and p.swept else "sweep")
    extra = [
        console.redact(o)
        for o in config_overrides(config.hydra.overrides.task)
        if o.split("=", 1)[0].lstrip("+~") not in swept | {"experiment"}
    ]
    for group, default in (("hydra/sweeper", "rnnlab"), ("hydra/launcher", "basic")):
        if choices.get(group) not in (None, default):
            extra.append(f"{group}={choices.get(group)}")
    return base, " ".join(extra)


def finalize_open(interrupted: bool = False) -> list[Summary]:
    """Close every parent this process opened and has not closed (the fallback)."""
    return [s for cb in list(_open.values()) if (s := cb.finalize(interrupted)) is not None]


@atexit.register
def _close_at_exit() -> None:
    for cb in list(_open.values()):
        try:
            cb.finalize(interrupted=True)
        except Exception:  # the store may be gone at exit; nothing more can be done
            pass
