"""Every config group option composes; every bad value gets one clear line."""

from __future__ import annotations

import pytest
from conftest import INITS, compose_config

from rnnlab.config import CONF_DIR, OPTIMIZERS, ConfigError, optimizer_id, validate
from rnnlab.errors import user_error

GROUPS = ["data", "init", "optimizer", "plots", "tracking", "experiment"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def test_groups_have_the_documented_options():
    assert options("data") == ["binary", "lab8"]
    assert options("init") == sorted(INITS)
    assert options("optimizer") == sorted(OPTIMIZERS)
    assert set(options("tracking")) == {"local", "server"}


WITH = {"optimizer_learning_rates_optuna": ["hydra/sweeper=optuna"]}


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_validates(group, option):
    # an experiment with another sweeper's settings needs that sweeper named beside it
    # (only the command line switches the sweeper: README, "Step 1 as a search")
    cfg = compose_config([f"{group}={option}", *WITH.get(option, [])])
    validate(cfg)
    if group == "init":
        assert cfg.init.name == option
    if group == "optimizer":
        assert optimizer_id(cfg.optimizer) == option


def test_defaults_are_the_labs(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = compose_config()
    assert (cfg.data.recipe, cfg.data.n_samples, cfg.data.seq_len, cfg.data.seed) == (
        "lab8",
        30,
        20,
        61185,
    )
    assert (cfg.init.wx, cfg.init.wrec) == (-1.5, 2.0)
    assert cfg.optimizer.name == "rprop"
    o = cfg.optimizer
    assert (o.initial_step, o.eta_plus, o.eta_minus) == (0.001, 1.2, 0.5)
    assert cfg.iterations == 500
    assert (cfg.gradcheck.wx, cfg.gradcheck.wrec, cfg.gradcheck.eps) == (1.2, 1.2, 1e-7)
    assert cfg.plots.resolution >= 400
    assert cfg.tracking.uri == "sqlite:///outputs/mlflow.db"


def test_the_store_is_mlflow_tracking_uri_when_set(monkeypatch):
    """MLflow's convention: $MLFLOW_TRACKING_URI names the store unless an override does."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////data/team.db")
    assert compose_config().tracking.uri == "sqlite:////data/team.db"
    chosen = compose_config(["tracking.uri=sqlite:////data/mine.db"])
    assert chosen.tracking.uri == "sqlite:////data/mine.db"


BAD_VALUES = [
    ("optimizer.eta_minus=1.5", "optimizer.eta_minus", "(0, 1)"),
    ("optimizer.eta_minus=0", "optimizer.eta_minus", "(0, 1)"),
    ("optimizer.eta_plus=1.0", "optimizer.eta_plus", "(1, 10]"),
    ("optimizer.initial_step=0", "optimizer.initial_step", "(0, 1000]"),
    ("optimizer.step_max=-1", "optimizer.step_max", "(0, 1000]"),
    ("data.seq_len=0", "data.seq_len", "[1, 1000]"),
    ("data.n_samples=0", "data.n_samples", "[1, 100000]"),
    ("data.seed=-3", "data.seed", "2**32"),
    ("init.wx=nan", "init.wx", "finite"),
    ("init.wrec=inf", "init.wrec", "finite"),
    ("iterations=0", "iterations", "[1, 100000]"),
    ("tolerance=-1", "tolerance", "> 0"),
    ("gradcheck.eps=0", "gradcheck.eps", "(0, 0.01]"),
    ("plots.format=jpg", "plots.format", "png, svg, pdf"),
    ("plots.resolution=1", "plots.resolution", "[2, 4000]"),
    ("plots.figures=[loss_surface,nope]", "plots.figures", "loss_surface"),
    ("plots.zoom=[1,0,0,1]", "plots.zoom", "min < max"),
]


@pytest.mark.parametrize(("override", "key", "allowed"), BAD_VALUES)
def test_out_of_range_values_name_key_value_and_range(override, key, allowed):
    cfg = compose_config([override])
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    line = user_error(info.value)
    assert "\n" not in line
    assert line.startswith(f"{key}=")
    assert override.split("=", 1)[1].strip("[]").split(",")[0] in line
    assert allowed in line


def test_gd_learning_rate_must_be_positive():
    cfg = compose_config(["optimizer=gd", "optimizer.learning_rate=-0.1"])
    with pytest.raises(ConfigError, match=r"optimizer.learning_rate=-0.1 .*\(0, 1000\]"):
        validate(cfg)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("init.wx=abc", ["init.wx=abc", "could not be converted to Float"]),
        ("data.seq_len=ten", ["data.seq_len=ten", "could not be converted to Integer"]),
        ("optimizer=nadam", ["optimizer=nadam", "adam, gd, gd_clip"]),
        ("init=nowhere", ["init=nowhere", "explode"]),
        ("optimizer.foo=1", ["optimizer.foo", "Key 'foo' not in 'RPropConfig'"]),
    ],
)
def test_composition_errors_become_one_line(override, expected):
    with pytest.raises(Exception) as info:
        compose_config([override])
    line = user_error(info.value)
    assert line is not None and "\n" not in line
    for part in expected:
        assert part in line


@pytest.mark.parametrize(
    "overrides, name, run",
    [
        ([], "lab_start", "rprop-lab_start"),
        (["init=steady", "optimizer=gd"], "steady", "gd-steady"),
        (["init=steady", "init.wx=2.0", "init.wrec=1"], "steady", "rprop-steady"),  # its own
        (["init.wx=1.5", "init.wrec=0.5"], "custom", "rprop-(1.5, 0.5)"),
        (["init=explode", "init.wrec=3", "optimizer=adam"], "custom", "adam-(1, 3)"),
    ],
)
def test_a_start_overridden_away_from_its_option_is_custom(overrides, name, run):
    from rnnlab.config import to_container
    from rnnlab.jobs.text import run_name

    config = to_container(compose_config(overrides))
    assert config["init"]["name"] == name
    assert run_name(config) == run


def test_each_optimizer_has_a_name_of_its_own():
    """Issue 31, 2: gd_clip's config said ``name: gd``: the results view's optimizer.name
    column could not tell clipped gradient descent from plain."""
    names = {}
    for stem in OPTIMIZERS:
        cfg = compose_config([f"optimizer={stem}"])
        validate(cfg)
        names[stem] = cfg.optimizer.name
        assert optimizer_id(cfg.optimizer) == stem
    assert names == {s: s for s in OPTIMIZERS}  # unique, and the option's own name
    plain = compose_config(["optimizer=gd", "optimizer.clip_norm=2"])  # gd given a clip
    assert optimizer_id(plain.optimizer) == "gd_clip"
    with pytest.raises(ConfigError, match=r"optimizer\.clip_norm=None"):
        validate(compose_config(["optimizer=gd_clip", "optimizer.clip_norm=null"]))
