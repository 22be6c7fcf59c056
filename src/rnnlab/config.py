"""Config schemas (dataclasses registered in Hydra's ConfigStore) and value checks.

YAML files under ``conf/`` are the interface; each extends a schema stored here, so a
wrong type or an unknown key fails at composition with the key named. Ranges that a
type cannot express (eta_minus in (0, 1), ...) are checked by ``validate``, which
raises ``ConfigError`` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from rnnlab.data import LAB_TEST_SEQUENCE, RECIPES

# conf/ sits at the top of the checkout; the package is installed from it in place.
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

FIGURES = ("loss_surface", "gradient_over_time", "trajectory", "training_curves", "steps")
FORMATS = ("png", "svg", "pdf")

# The lab's six annotated points (golden/lab8.json "lab_points"), by what the gradient
# over time does from each.
LAB_POINTS = {
    "steady": [2.0, 1.0],
    "explode": [1.0, 2.0],
    "explode_oscillate": [1.0, -2.0],
    "vanish_at_once": [1.0, 0.0],
    "vanish": [1.0, 0.5],
    "vanish_oscillate": [1.0, -0.5],
}


# Upper bounds: values past them crash or exhaust the machine once a run exists (found by
# trying them), so validation refuses them before anything is created.
MAX_SAMPLES = 100_000  # data.n_samples: memory and time grow with n x seq_len
MAX_SEQ_LEN = 1000  # data.seq_len: past ~2000 the gradient at (1.2, 1.2) (1.2^T) overflows
MAX_ITERATIONS = 100_000  # 7 metric values an iteration: 700k values, ~1 min of logging
MAX_STEP = 1000.0  # RProp's steps and GD's learning rate: weights live in [-3, 3]
MAX_ETA_PLUS = 10.0  # RProp's step growth per iteration
MAX_DPI = 600  # figure resolution: 100000 exhausted memory
MAX_BASIN_RESOLUTION = 2048  # 2048 x 2048 starts: ~0.4 GiB of maps per optimiser
MAX_TEST_SEQUENCE = 10_000
MAX_CHECK_POINT = 10.0  # gradcheck.wx/wrec: the lab checks at (1.2, 1.2)
MAX_EXPERIMENT_NAME = 256  # MLflow's experiments.name column
MAX_NAME = 64  # names that become run names, labels and metric keys (init.name, ...)
MAX_TEXT = 1000  # any other string value (a description: MAX_DESCRIPTION)
MAX_DESCRIPTION = 5000  # MLflow's limit of an experiment tag's value
NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.+-]*"
STORE_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql")


class ConfigError(ValueError):
    """A config value outside what is allowed. ``str()`` is the one-line message."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        shown = f"{value[:57]}..." if isinstance(value, str) and len(value) > 60 else value
        super().__init__(f"{key}={shown!r} is not allowed: {allowed}")

    def __reduce__(self):
        return (ConfigError, (self.key, self.value, self.allowed))


@dataclass
class DataConfig:
    recipe: str = MISSING
    n_samples: int = 30
    seq_len: int = 20
    seed: int = 61185
    test_sequence: list[float] = field(default_factory=lambda: list(LAB_TEST_SEQUENCE))


@dataclass
class InitConfig:
    name: str = MISSING
    wx: float = MISSING
    wrec: float = MISSING


@dataclass
class RPropConfig:
    name: str = "rprop"
    initial_step: float = 0.001
    eta_plus: float = 1.2
    eta_minus: float = 0.5
    step_min: float | None = None
    step_max: float | None = None


@dataclass
class GDConfig:
    name: str = "gd"
    learning_rate: float = 1e-5
    clip_norm: float | None = None


@dataclass
class MomentumConfig:
    name: str = "momentum"
    learning_rate: float = 1e-6
    momentum: float = 0.9
    nesterov: bool = False


@dataclass
class AdamConfig:
    name: str = "adam"
    learning_rate: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8


@dataclass
class IRPropConfig:
    name: str = MISSING  # irprop_minus or irprop_plus
    initial_step: float = 0.001
    eta_plus: float = 1.2
    eta_minus: float = 0.5
    step_min: float = 0.0
    step_max: float = 50.0


# The optimizers (conf/optimizer/<name>.yaml) and, for those with a learning rate, the
# top-level key that sets it (so one sweep can set each optimizer's own rate).
OPTIMIZERS = ("rprop", "irprop_minus", "irprop_plus", "gd", "gd_clip", "momentum", "adam")
RATE_KEYS = {o: f"{o}_learning_rate" for o in ("gd", "gd_clip", "momentum", "adam")}
OPTIMIZER_NAMES = {  # by optimizer_id: what figures, tables and descriptions call them
    "rprop": "RProp",
    "irprop_minus": "iRprop-",
    "irprop_plus": "iRprop+",
    "gd": "gradient descent",
    "gd_clip": "gradient descent, clipped",
    "momentum": "momentum",
    "adam": "Adam",
}


def optimizer_id(o: Any) -> str:
    """The optimizer a config names: its ``name``, except gradient descent with
    clipping, which is ``gd_clip`` (as conf/optimizer/gd_clip.yaml)."""
    if o.get("name") == "gd" and o.get("clip_norm") is not None:
        return "gd_clip"
    return str(o.get("name"))


@dataclass
class GradCheckConfig:
    wx: float = 1.2
    wrec: float = 1.2
    eps: float = 1e-7
    rtol: float = 1e-5


@dataclass
class PlotsConfig:
    enabled: bool = True
    sweep_figures: bool = True
    figures: list[str] = field(default_factory=lambda: list(FIGURES))
    format: str = "png"
    dpi: int = 120
    resolution: int = 400
    overview: list[float] = field(default_factory=lambda: [-3.0, 3.0, -3.0, 3.0])
    zoom: list[float] = field(default_factory=lambda: [-0.1, 2.1, -0.1, 2.1])
    trajectory_zoom: list[float] = field(default_factory=lambda: [0.0, 2.0, 0.0, 2.0])
    points: dict[str, list[float]] = field(default_factory=lambda: dict(LAB_POINTS))


@dataclass
class TrackingConfig:
    uri: str = MISSING
    artifact_root: str | None = None
    experiment: str = "rnnlab"
    description: str | None = None
    log_model: bool = True
    ui_url: str | None = None  # the MLflow UI of the printed links (see rnnlab.ui.base_url)


@dataclass
class DivergenceConfig:
    loss_factor: float | None = 1e6


@dataclass
class BasinConfig:
    resolution: int = 256
    bounds: list[float] = field(default_factory=lambda: [-3.0, 3.0, -3.0, 3.0])
    tolerance: float = 0.2
    chunk: int = 4096
    optimizers: dict[str, Any] = field(default_factory=dict)


TASKS = ("train", "basin_map")


@dataclass
class Config:
    data: DataConfig = MISSING
    init: InitConfig = MISSING
    optimizer: Any = MISSING
    plots: PlotsConfig = MISSING
    tracking: TrackingConfig = MISSING
    gradcheck: GradCheckConfig = field(default_factory=GradCheckConfig)
    iterations: int = 500
    tolerance: float | None = None
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)
    gd_learning_rate: float = 1e-5
    gd_clip_learning_rate: float = 0.01
    momentum_learning_rate: float = 1e-6
    adam_learning_rate: float = 0.01
    valley_loss: float = 0.2
    task: str = "train"
    basin: BasinConfig = field(default_factory=BasinConfig)


def register_configs() -> None:
    """Store the schemas the YAML files extend (``defaults: [/schema/<group>@_here_]``)."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for name, node in [
        ("data", DataConfig),
        ("init", InitConfig),
        ("rprop", RPropConfig),
        ("gd", GDConfig),
        ("momentum", MomentumConfig),
        ("adam", AdamConfig),
        ("irprop", IRPropConfig),
        ("plots", PlotsConfig),
        ("tracking", TrackingConfig),
    ]:
        cs.store(group="schema", name=name, node=node)


# --- value checks -------------------------------------------------------------------


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(key, value, allowed)


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _positive(x: Any) -> bool:
    return _finite(x) and x > 0


def _check_range(key: str, r: list[float]) -> None:
    ok = len(r) == 4 and all(map(_finite, r)) and r[0] < r[1] and r[2] < r[3]
    _check(ok, key, list(r), "four finite numbers [wx_min, wx_max, wrec_min, wrec_max], min < max")


def _check_number(o: DictConfig, key: str, name: str, ok, allowed: str) -> None:
    v = o[name]
    _check(_finite(v) and ok(v), f"{key}.{name}", v, allowed)


def _check_steps(o: DictConfig, key: str) -> None:
    """RProp's family: the initial step, the growth and shrink factors, the bounds (the
    lab's RProp may leave them null; iRprop's lower bound may be 0, as Igel and Hüsken
    set it)."""
    _check_number(
        o, key, "initial_step", lambda v: 0 < v <= MAX_STEP, f"a number in (0, {MAX_STEP:g}]"
    )
    _check_number(
        o, key, "eta_plus", lambda v: 1 < v <= MAX_ETA_PLUS, f"a number in (1, {MAX_ETA_PLUS:g}]"
    )
    _check_number(o, key, "eta_minus", lambda v: 0 < v < 1, "a number in (0, 1)")
    lab = o.name == "rprop"
    for name in ("step_min", "step_max"):
        v = o[name]
        zero_ok = name == "step_min" and not lab
        ok = (v is None and lab) or (_finite(v) and (v >= 0 if zero_ok else v > 0))
        interval = f"{'[' if zero_ok else '('}0, {MAX_STEP:g}]"
        _check(
            ok and (v is None or v <= MAX_STEP),
            f"{key}.{name}",
            v,
            f"{'null or ' if lab else ''}a number in {interval}",
        )
    if o.step_min is not None and o.step_max is not None:
        _check(
            o.step_min <= o.step_max,
            f"{key}.step_min",
            o.step_min,
            f"at most {key}.step_max ({o.step_max})",
        )


def _check_rate(o: DictConfig, key: str) -> None:
    _check_number(
        o, key, "learning_rate", lambda v: 0 < v <= MAX_STEP, f"a number in (0, {MAX_STEP:g}]"
    )


def _check_optimizer(o: DictConfig, key: str) -> None:
    names = ("rprop", "irprop_minus", "irprop_plus", "gd", "momentum", "adam")
    _check(o.get("name") in names, f"{key}.name", o.get("name"), f"one of {', '.join(names)}")
    if o.name in ("rprop", "irprop_minus", "irprop_plus"):
        _check_steps(o, key)
    elif o.name == "gd":
        _check_rate(o, key)
        v = o.get("clip_norm")
        _check(
            v is None or (_positive(v) and v <= MAX_STEP),
            f"{key}.clip_norm",
            v,
            f"null (no clipping) or a number in (0, {MAX_STEP:g}]",
        )
    elif o.name == "momentum":
        _check_rate(o, key)
        _check_number(o, key, "momentum", lambda v: 0 <= v < 1, "a number in [0, 1)")
    else:  # adam
        _check_rate(o, key)
        for name in ("beta1", "beta2"):
            _check_number(o, key, name, lambda v: 0 <= v < 1, "a number in [0, 1)")
        _check_number(o, key, "epsilon", lambda v: 0 < v <= 1, "a number in (0, 1]")


GROUPS = ("data", "init", "optimizer", "plots", "tracking")  # one option each, required


def conf_options(group: str) -> list[str]:
    """The options of ``group`` in rnnlab's conf/ (the user's folders: the running Hydra's
    config loader, see ``sweep.group_options``)."""
    return sorted(f.stem for f in (CONF_DIR / group).glob("*.yaml"))


def _check_groups(cfg: DictConfig) -> None:
    """Each group chose an option (``init=null`` or ``~data`` leave none)."""
    for group in GROUPS:
        node = cfg.get(group) if group in cfg else None
        if not isinstance(node, DictConfig):
            options = conf_options(group)
            _check(False, group, node, f"one of the options of group {group}: {', '.join(options)}")


SCHEMAS = {  # each node's keys: what its schema defines (``+key=...`` adds others)
    "data": DataConfig,
    "init": InitConfig,
    "plots": PlotsConfig,
    "tracking": TrackingConfig,
    "gradcheck": GradCheckConfig,
    "divergence": DivergenceConfig,
    "basin": BasinConfig,
}
OPTIMIZER_SCHEMAS = {
    "rprop": RPropConfig,
    "gd": GDConfig,
    "momentum": MomentumConfig,
    "adam": AdamConfig,
    "irprop_minus": IRPropConfig,
    "irprop_plus": IRPropConfig,
}


def _check_keys(node: DictConfig, key: str, schema: type) -> None:
    """No key beyond ``schema``'s: an added one (``+optimizer.foo=1``) would otherwise
    reach the code (a TypeError in a run) or be ignored without a word."""
    from dataclasses import fields

    allowed = [f.name for f in fields(schema)]
    for name in node:
        _check(
            name in allowed,
            f"{key}.{name}",
            node[name],
            f"not a key of {key}: {', '.join(allowed)}",
        )


def check_plots(p: Any) -> None:
    """The ``plots`` settings (also those a logged run is redrawn with); ConfigError on
    the first that is not allowed."""
    p = p if isinstance(p, DictConfig) else OmegaConf.create(p)
    for f in p.figures:
        _check(
            f in FIGURES,
            "plots.figures",
            list(p.figures),
            f"a list drawn from {', '.join(FIGURES)}",
        )
    _check(p.format in FORMATS, "plots.format", p.format, f"one of {', '.join(FORMATS)}")
    _check(10 <= p.dpi <= MAX_DPI, "plots.dpi", p.dpi, f"an integer in [10, {MAX_DPI}]")
    _check(2 <= p.resolution <= 4000, "plots.resolution", p.resolution, "an integer in [2, 4000]")
    for key in ("overview", "zoom", "trajectory_zoom"):
        _check_range(f"plots.{key}", list(p[key]))
    for name, xy in p.points.items():
        ok = len(xy) == 2 and all(map(_finite, xy))
        _check(ok, f"plots.points.{name}", list(xy), "a pair [wx, wrec] of finite numbers")


def validate(cfg: DictConfig) -> None:
    """Check every value a wrong setting would break; raise ConfigError on the first."""
    _check_groups(cfg)
    for group, schema in SCHEMAS.items():
        if isinstance(cfg.get(group), DictConfig):
            _check_keys(cfg[group], group, schema)
    name = cfg.optimizer.get("name")
    if name in OPTIMIZER_SCHEMAS:
        _check_keys(cfg.optimizer, "optimizer", OPTIMIZER_SCHEMAS[name])
    d = cfg.data
    _check(d.recipe in RECIPES, "data.recipe", d.recipe, f"one of {', '.join(RECIPES)}")
    _check(
        1 <= d.n_samples <= MAX_SAMPLES,
        "data.n_samples",
        d.n_samples,
        f"an integer in [1, {MAX_SAMPLES}]",
    )
    _check(
        1 <= d.seq_len <= MAX_SEQ_LEN,
        "data.seq_len",
        d.seq_len,
        f"an integer in [1, {MAX_SEQ_LEN}]",
    )
    _check(0 <= d.seed < 2**32, "data.seed", d.seed, "an integer in [0, 2**32)")
    seq = list(d.test_sequence)
    _check(
        1 <= len(seq) <= MAX_TEST_SEQUENCE and all(map(_finite, seq)),
        "data.test_sequence",
        seq if len(seq) <= 20 else f"<{len(seq)} values>",
        f"a list of 1 to {MAX_TEST_SEQUENCE} finite numbers",
    )

    _check(_finite(cfg.init.wx), "init.wx", cfg.init.wx, "a finite number")
    _check(_finite(cfg.init.wrec), "init.wrec", cfg.init.wrec, "a finite number")

    _check_optimizer(cfg.optimizer, "optimizer")

    for rate_key in RATE_KEYS.values():
        _check(
            _positive(cfg[rate_key]) and cfg[rate_key] <= MAX_STEP,
            rate_key,
            cfg[rate_key],
            f"a number in (0, {MAX_STEP:g}]",
        )
    _check(_positive(cfg.valley_loss), "valley_loss", cfg.valley_loss, "a finite number > 0")
    _check(
        1 <= cfg.iterations <= MAX_ITERATIONS,
        "iterations",
        cfg.iterations,
        f"an integer in [1, {MAX_ITERATIONS}]",
    )
    _check(
        cfg.tolerance is None or _positive(cfg.tolerance),
        "tolerance",
        cfg.tolerance,
        "null or a finite number > 0",
    )
    f = cfg.divergence.loss_factor
    _check(
        f is None or (_finite(f) and f > 1),
        "divergence.loss_factor",
        f,
        "null (no bound) or a finite number > 1",
    )

    g = cfg.gradcheck
    # where the check runs and how: the gradient at |w| > 10 overflows for long sequences;
    # a central difference step past 0.01 measures the curvature, not the gradient
    for name in ("wx", "wrec"):
        _check(
            _finite(g[name]) and abs(g[name]) <= MAX_CHECK_POINT,
            f"gradcheck.{name}",
            g[name],
            f"a number in [-{MAX_CHECK_POINT:g}, {MAX_CHECK_POINT:g}]",
        )
    _check(_positive(g.eps) and g.eps <= 0.01, "gradcheck.eps", g.eps, "a number in (0, 0.01]")
    _check(_positive(g.rtol) and g.rtol < 1, "gradcheck.rtol", g.rtol, "a number in (0, 1)")

    check_plots(cfg.plots)

    _check(cfg.task in TASKS, "task", cfg.task, f"one of {', '.join(TASKS)}")
    if cfg.task == "basin_map":
        b = cfg.basin
        _check(
            2 <= b.resolution <= MAX_BASIN_RESOLUTION,
            "basin.resolution",
            b.resolution,
            f"an integer in [2, {MAX_BASIN_RESOLUTION}]",
        )
        _check_range("basin.bounds", list(b.bounds))
        _check(_positive(b.tolerance), "basin.tolerance", b.tolerance, "a finite number > 0")
        _check(b.chunk >= 1, "basin.chunk", b.chunk, "an integer >= 1")
        _check(
            len(b.optimizers) >= 1,
            "basin.optimizers",
            dict(b.optimizers),
            "at least one optimizer config",
        )
        for name, o in b.optimizers.items():
            _check_optimizer(o, f"basin.optimizers.{name}")

    _check_tracking(cfg.tracking)
    _check_strings(cfg)


def _check_name(key: str, value: Any) -> None:
    import re

    ok = isinstance(value, str) and len(value) <= MAX_NAME and re.fullmatch(NAME_PATTERN, value)
    _check(
        bool(ok),
        key,
        str(value),
        f"a name of 1 to {MAX_NAME} letters, digits and _ . + - (not starting with . + -)",
    )


def _check_strings(cfg: DictConfig) -> None:
    """Every string has a bound, as numbers do: names that become run names, labels and
    metric keys are short and plain; any other text is printable and bounded."""
    _check_name("init.name", cfg.init.name)
    for name in cfg.plots.points:
        _check_name(f"plots.points.{name}", name)
    if cfg.task == "basin_map":
        for name in cfg.basin.optimizers:
            _check_name(f"basin.optimizers.{name}", name)
    flat = flatten(to_container(cfg))
    for key, value in flat.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if not isinstance(v, str):
                continue
            limit = MAX_DESCRIPTION if key == "tracking.description" else MAX_TEXT
            _check(
                len(v) <= limit and v.isprintable(),
                key,
                v,
                f"text of at most {limit} printable characters",
            )


def _check_tracking(t: DictConfig) -> None:
    from urllib.parse import urlsplit

    uri = t.uri or ""
    scheme = urlsplit(uri).scheme.split("+")[0] if "://" in uri else ""
    shown = _redacted(uri)
    _check(
        scheme in STORE_SCHEMES and (scheme != "sqlite" or uri.startswith("sqlite:///")),
        "tracking.uri",
        shown,
        "a database URI (sqlite:///path/mlflow.db, postgresql://...) or a tracking server "
        "(http://host:port)",
    )
    if scheme == "sqlite":
        path = Path(uri[len("sqlite:///") :])
        _check(
            bool(path.name) and not path.is_dir(),
            "tracking.uri",
            shown,
            "an SQLite file, not a folder",
        )
    name = t.experiment or ""
    _check(
        0 < len(name) <= MAX_EXPERIMENT_NAME and name == name.strip() and name.isprintable(),
        "tracking.experiment",
        name if len(name) <= 60 else f"{name[:57]}...",
        f"a name of 1 to {MAX_EXPERIMENT_NAME} printable characters",
    )
    root = t.artifact_root
    if root and "://" in root:
        _check(
            root.startswith("file://"),
            "tracking.artifact_root",
            root,
            "a local folder (or null: the tracking server decides)",
        )


def _redacted(uri: str) -> str:
    from rnnlab.console import redact

    return redact(uri)


def compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The config ``rnnlab`` would compose for these overrides (Hydra's compose API;
    ``hydra.searchpath=[...]`` among them adds the user's config folders). Works inside
    a caller's own Hydra context (a notebook's ``initialize``/``compose`` block, a
    ``@hydra.main`` app): GlobalHydra is put back as it was. Hydra's node is kept
    (``hydra.runtime.config_sources`` says which folders were used)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    with hydra_restored():  # the caller's Hydra, if any, is put back
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(
                config_name="config", overrides=list(overrides), return_hydra_config=True
            )


@contextlib.contextmanager
def hydra_restored() -> Iterator[None]:
    """GlobalHydra as it was before the block (initialized with the caller's search path,
    or not at all), whatever the block does to it: Hydra's own ``initialize`` keeps and
    restores it the same way. Hydra's version base too, which ``initialize`` sets for the
    whole process and does not put back (it decides, e.g., whether a caller's app that
    names no ``version_base`` changes its working directory)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.singleton import Singleton
    from hydra.initialize import get_gh_backup
    from hydra.version import VersionBase

    backup = get_gh_backup()
    version = Singleton._instances.get(VersionBase)
    base = version.version_base if version is not None else None
    try:
        yield
    finally:
        if backup is None:
            Singleton._instances.pop(GlobalHydra, None)
        else:
            Singleton._instances[GlobalHydra] = backup
        if version is None:
            Singleton._instances.pop(VersionBase, None)
        else:
            version.version_base = base  # setbase() refuses "unspecified"
            Singleton._instances[VersionBase] = version


def config_overrides(node: Any) -> list[str]:
    """Hydra's record of the command line's overrides (``hydra.overrides.task``) as the
    strings typed: not resolved (``init.name=${oc.env:X}`` stays that text)."""
    return [str(o) for o in OmegaConf.to_container(node, resolve=False)] if node else []


SEARCHPATH_KEY = "hydra.searchpath"
# the config sources a user adds: --config-dir, and hydra.searchpath on the command line
USER_SOURCES = ("command-line", "hydra.searchpath in command-line")


def user_config_dirs(config_sources: Any) -> list[str]:
    """The config folders the user added to the search path (``--config-dir``,
    ``hydra.searchpath``), as absolute ``file://`` (or ``pkg://``) entries, in order."""
    found = []
    for source in config_sources or []:
        if source.get("provider") not in USER_SOURCES:
            continue
        path = str(source.get("path"))
        entry = (
            f"file://{os.path.abspath(path)}"
            if source.get("schema") == "file"
            else (f"{source.get('schema')}://{path}")
        )
        if entry not in found:
            found.append(entry)
    return found


def missing_config_dirs(dirs: list[str]) -> str | None:
    """One line naming the first user config folder that is not there (Hydra skips a
    ``hydra.searchpath`` folder it cannot find), None if all are."""
    for entry in dirs:
        if entry.startswith("file://") and not Path(entry[len("file://") :]).is_dir():
            return f"hydra.searchpath: the config folder {entry[len('file://') :]} is not there"
    return None


def searchpath_override(dirs: list[str]) -> list[str]:
    """``dirs`` as one override in Hydra's grammar (none for no folders): what a run logs
    so that a rerun composes with the same folders."""
    if not dirs:
        return []
    quoted = ", ".join("'" + d.replace("\\", "\\\\").replace("'", "\\'") + "'" for d in dirs)
    return [f"{SEARCHPATH_KEY}=[{quoted}]"]


def with_search_path(overrides: list[str], cfg: DictConfig) -> list[str]:
    """The overrides a run logs: the task's, and the user's config folders of ``cfg``
    (its Hydra node) as one absolute ``hydra.searchpath`` override."""
    rest = [o for o in overrides if not o.startswith(SEARCHPATH_KEY + "=")]
    sources = OmegaConf.select(cfg, "hydra.runtime.config_sources", default=None)
    return rest + searchpath_override(user_config_dirs(sources))


def searchpath_of(overrides: list[str]) -> list[str]:
    """The folders of a logged ``hydra.searchpath`` override (empty without one)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for o in overrides:
        if o.startswith(SEARCHPATH_KEY + "="):
            value = OverridesParser.create().parse_override(o).value()
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return []


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain dicts and lists (Hydra's own node left out). A start
    whose weights were overridden away from its named option's is named ``custom``."""
    container = {
        key: OmegaConf.to_container(cfg[key], resolve=True)
        if OmegaConf.is_config(cfg[key])
        else cfg[key]
        for key in cfg
        if key != "hydra"
    }
    init = container.get("init")
    if isinstance(init, dict) and init.get("name") != CUSTOM_START:
        named = named_start(str(init.get("name")))
        if named is not None and named != (init.get("wx"), init.get("wrec")):
            init["name"] = CUSTOM_START
    return container


CUSTOM_START = "custom"  # init.name of a start that is none of conf/init's


def named_start(name: str) -> tuple[float, float] | None:
    """(wx, wrec) of the option conf/init/<name>.yaml, if there is one."""
    import yaml

    path = CONF_DIR / "init" / f"{name}.yaml"
    try:
        if not path.is_file():
            return None
    except OSError:  # a name no file can have
        return None
    values = yaml.safe_load(path.read_text())
    return float(values["wx"]), float(values["wrec"])


# --- what a run records as params -------------------------------------------------------

# The keys that decide a training run's result; the whole resolved config is an artifact.
TRAIN_PARAMS = (
    "data",
    "init",
    "optimizer",
    "iterations",
    "tolerance",
    "divergence",
    "valley_loss",
)
# ... and a basin map's (it covers every start and carries its own optimisers).
BASIN_PARAMS = ("data", "iterations", "divergence", "basin")
NOT_PARAMS = ("basin.chunk",)  # how the work is split, not what it computes


def param_value(value: Any) -> str:
    """A config value as a param string (exact), lists as space-separated values: short,
    and shown as text rather than a JSON block in MLflow's compare view."""
    if isinstance(value, list | tuple):
        return " ".join(param_value(v) for v in value)
    return str(value)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys (leaves kept as they are)."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return flat


def run_params(config: dict[str, Any], keys: tuple[str, ...] | None = None) -> dict[str, str]:
    """The params a run logs: the config keys that decide its result, as short strings."""
    if keys is None:
        keys = BASIN_PARAMS if config.get("task") == "basin_map" else TRAIN_PARAMS
    flat = flatten({k: config[k] for k in keys if k in config})
    return {k: param_value(v) for k, v in flat.items() if k not in NOT_PARAMS}
