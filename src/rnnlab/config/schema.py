"""Config schemas: dataclasses registered in Hydra's ConfigStore (each YAML file under
``conf/`` extends one, so a wrong type or an unknown key fails at composition with the
key named), the limits ``validate`` holds values to, and ``ConfigError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from rnnlab.core.data import LAB_TEST_SEQUENCE
from rnnlab.errors import ConfigError  # noqa: F401 (the config layer's error)

# The shipped configs, package data: the wheel carries the repository's conf/ as rnnlab/conf
# (in a checkout, src/rnnlab/conf is a link to conf/).
CONF_DIR = Path(str(files("rnnlab") / "conf"))

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
    """The optimizer a config names: its ``name`` (conf/optimizer/gd_clip.yaml's is
    ``gd_clip``), and ``gd_clip`` too for gradient descent given a ``clip_norm``."""
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
    ui_url: str | None = None  # the MLflow UI of the printed links (see rnnlab.store.ui.base_url)


# a run's per-iteration series (per point: loss, weights, gradient; per update: steps)
SERIES = ("loss", "wx", "wrec", "grad_wx", "grad_wrec", "step_wx", "step_wrec")


@dataclass
class StepMetricsConfig:
    """Which series a run logs as MLflow step metrics (its ``results/trajectory.csv`` has
    every series at every iteration whatever this says): a single run's, and a sweep
    child's, at most ``sweep_job_points`` points each (every k-th and the last; None:
    every one)."""

    run: list[str] = field(default_factory=lambda: list(SERIES))
    sweep_job: list[str] = field(default_factory=lambda: ["loss", "wx", "wrec"])
    sweep_job_points: int | None = 101


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
    step_metrics: StepMetricsConfig = field(default_factory=StepMetricsConfig)
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
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    return float(values["wx"]), float(values["wrec"])
