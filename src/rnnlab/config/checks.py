"""Value checks: ``validate`` holds every value to what a type cannot express (a range, a
bound) and raises ``ConfigError`` naming the key, the value and what is allowed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rnnlab.config.composition import to_container
from rnnlab.config.params import flatten
from rnnlab.config.schema import (
    CONF_DIR,
    FIGURES,
    FORMATS,
    MAX_BASIN_RESOLUTION,
    MAX_CHECK_POINT,
    MAX_DESCRIPTION,
    MAX_DPI,
    MAX_ETA_PLUS,
    MAX_EXPERIMENT_NAME,
    MAX_ITERATIONS,
    MAX_NAME,
    MAX_SAMPLES,
    MAX_SEQ_LEN,
    MAX_STEP,
    MAX_TEST_SEQUENCE,
    MAX_TEXT,
    NAME_PATTERN,
    RATE_KEYS,
    SERIES,
    STORE_SCHEMES,
    TASKS,
    AdamConfig,
    BasinConfig,
    ConfigError,
    DataConfig,
    DivergenceConfig,
    GDConfig,
    GradCheckConfig,
    InitConfig,
    IRPropConfig,
    MomentumConfig,
    PlotsConfig,
    RPropConfig,
    TrackingConfig,
)
from rnnlab.console import redact
from rnnlab.core.data import RECIPES

# --- value checks -------------------------------------------------------------------


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(key, value, allowed)


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _positive(x: Any) -> bool:
    return _finite(x) and x > 0


def _in(key: str, v: Any, lo: float, hi: float, ends: str = "[]", integer: bool = False) -> None:
    """``v`` in the interval from ``lo`` to ``hi`` (``ends``: "[]", "(]", "[)", "()")."""
    ok = (isinstance(v, int) and not isinstance(v, bool)) if integer else _finite(v)
    ok = ok and (v >= lo if ends[0] == "[" else v > lo) and (v <= hi if ends[1] == "]" else v < hi)
    what = "an integer" if integer else "a number"
    shown = [str(x) if isinstance(x, int) else f"{x:g}" for x in (lo, hi)]
    _check(ok, key, v, f"{what} in {ends[0]}{shown[0]}, {shown[1]}{ends[1]}")


def _check_range(key: str, r: list[float]) -> None:
    ok = len(r) == 4 and all(map(_finite, r)) and r[0] < r[1] and r[2] < r[3]
    _check(ok, key, list(r), "four finite numbers [wx_min, wx_max, wrec_min, wrec_max], min < max")


def _check_steps(o: DictConfig, key: str) -> None:
    """RProp's family: the initial step, the growth and shrink factors, the bounds (the
    lab's RProp may leave them null; iRprop's lower bound may be 0, as Igel and Hüsken
    set it)."""
    _in(f"{key}.initial_step", o.initial_step, 0, MAX_STEP, "(]")
    _in(f"{key}.eta_plus", o.eta_plus, 1, MAX_ETA_PLUS, "(]")
    _in(f"{key}.eta_minus", o.eta_minus, 0, 1, "()")
    lab = o.name == "rprop"
    for name in ("step_min", "step_max"):
        v = o[name]
        zero_ok = name == "step_min" and not lab
        ok = (v is None and lab) or (_finite(v) and (v >= 0 if zero_ok else v > 0))
        interval = f"{'[' if zero_ok else '('}0, {MAX_STEP:g}]"
        allowed = f"{'null or ' if lab else ''}a number in {interval}"
        _check(ok and (v is None or v <= MAX_STEP), f"{key}.{name}", v, allowed)
    if o.step_min is not None and o.step_max is not None:
        allowed = f"at most {key}.step_max ({o.step_max})"
        _check(o.step_min <= o.step_max, f"{key}.step_min", o.step_min, allowed)


def _check_optimizer(o: DictConfig, key: str) -> None:
    names = ("rprop", "irprop_minus", "irprop_plus", "gd", "gd_clip", "momentum", "adam")
    _check(o.get("name") in names, f"{key}.name", o.get("name"), f"one of {', '.join(names)}")
    if o.name in ("rprop", "irprop_minus", "irprop_plus"):
        _check_steps(o, key)
        return
    _in(f"{key}.learning_rate", o.learning_rate, 0, MAX_STEP, "(]")
    if o.name in ("gd", "gd_clip"):
        v = o.get("clip_norm")
        allowed = f"a number in (0, {MAX_STEP:g}]"
        if o.name == "gd":
            allowed = f"null (no clipping) or {allowed}"
        ok = (v is None and o.name == "gd") or (v is not None and _positive(v) and v <= MAX_STEP)
        _check(ok, f"{key}.clip_norm", v, allowed)
    elif o.name == "momentum":
        _in(f"{key}.momentum", o.momentum, 0, 1, "[)")
    else:  # adam
        _in(f"{key}.beta1", o.beta1, 0, 1, "[)")
        _in(f"{key}.beta2", o.beta2, 0, 1, "[)")
        _in(f"{key}.epsilon", o.epsilon, 0, 1, "(]")


GROUPS = ("data", "init", "optimizer", "plots", "tracking")  # one option each, required


def conf_options(group: str) -> list[str]:
    """The options of ``group`` in rnnlab's conf/ (the user's folders: the running Hydra's
    config loader, see ``sweeps.plan.group_options``)."""
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
    "gd_clip": GDConfig,
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
    for name in map(str, node):
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
    figures = list(p.figures)
    drawn = f"a list drawn from {', '.join(FIGURES)}"
    _check(all(f in FIGURES for f in figures), "plots.figures", figures, drawn)
    _check(p.format in FORMATS, "plots.format", p.format, f"one of {', '.join(FORMATS)}")
    _in("plots.dpi", p.dpi, 10, MAX_DPI, integer=True)
    _in("plots.resolution", p.resolution, 2, 4000, integer=True)
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
    _in("data.n_samples", d.n_samples, 1, MAX_SAMPLES, integer=True)
    _in("data.seq_len", d.seq_len, 1, MAX_SEQ_LEN, integer=True)
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
        _in(rate_key, cfg[rate_key], 0, MAX_STEP, "(]")
    _check(_positive(cfg.valley_loss), "valley_loss", cfg.valley_loss, "a finite number > 0")
    _in("iterations", cfg.iterations, 1, MAX_ITERATIONS, integer=True)
    tol, factor = cfg.tolerance, cfg.divergence.loss_factor
    _check(tol is None or _positive(tol), "tolerance", tol, "null or a finite number > 0")
    allowed = "null (no bound) or a finite number > 1"
    _check(
        factor is None or (_finite(factor) and factor > 1),
        "divergence.loss_factor",
        factor,
        allowed,
    )
    g = cfg.gradcheck
    # where the check runs and how: the gradient at |w| > 10 overflows for long sequences;
    # a central difference step past 0.01 measures the curvature, not the gradient
    _in("gradcheck.wx", g.wx, -MAX_CHECK_POINT, MAX_CHECK_POINT)
    _in("gradcheck.wrec", g.wrec, -MAX_CHECK_POINT, MAX_CHECK_POINT)
    _in("gradcheck.eps", g.eps, 0, 0.01, "(]")
    _in("gradcheck.rtol", g.rtol, 0, 1, "()")
    check_plots(cfg.plots)
    _check(cfg.task in TASKS, "task", cfg.task, f"one of {', '.join(TASKS)}")
    if cfg.task == "basin_map":
        b = cfg.basin
        _in("basin.resolution", b.resolution, 2, MAX_BASIN_RESOLUTION, integer=True)
        _check_range("basin.bounds", list(b.bounds))
        _check(_positive(b.tolerance), "basin.tolerance", b.tolerance, "a finite number > 0")
        _check(b.chunk >= 1, "basin.chunk", b.chunk, "an integer >= 1")
        allowed = "at least one optimizer config"
        _check(len(b.optimizers) >= 1, "basin.optimizers", dict(b.optimizers), allowed)
        for name, o in b.optimizers.items():
            _check_optimizer(o, f"basin.optimizers.{name}")
    _check_tracking(cfg.tracking)
    m = cfg.step_metrics
    for kind in ("run", "sweep_job"):
        names = list(m[kind])
        ok = len(set(names)) == len(names) and set(names) <= set(SERIES)
        _check(ok, f"step_metrics.{kind}", names, f"distinct names among {', '.join(SERIES)}")
    points = m.sweep_job_points
    _check(points is None or points >= 2, "step_metrics.sweep_job_points", points, ">= 2 or null")
    _check_strings(cfg)


def _check_name(key: str, value: Any) -> None:
    import re

    ok = isinstance(value, str) and len(value) <= MAX_NAME and re.fullmatch(NAME_PATTERN, value)
    allowed = f"a name of 1 to {MAX_NAME} letters, digits and _ . + - (not starting with . + -)"
    _check(bool(ok), key, str(value), allowed)


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
            allowed = f"text of at most {limit} printable characters"
            _check(len(v) <= limit and v.isprintable(), key, v, allowed)


def _check_tracking(t: DictConfig) -> None:
    from urllib.parse import urlsplit

    uri = t.uri or ""
    scheme = urlsplit(uri).scheme.split("+")[0] if "://" in uri else ""
    shown = redact(uri)
    _check(
        scheme in STORE_SCHEMES and (scheme != "sqlite" or uri.startswith("sqlite:///")),
        "tracking.uri",
        shown,
        "a database URI (sqlite:///path/mlflow.db, postgresql://...) or a tracking server "
        "(http://host:port)",
    )
    if scheme == "sqlite":
        path = Path(uri[len("sqlite:///") :])
        allowed = "an SQLite file, not a folder"
        _check(bool(path.name) and not path.is_dir(), "tracking.uri", shown, allowed)
    name = t.experiment or ""
    _check(
        0 < len(name) <= MAX_EXPERIMENT_NAME and name == name.strip() and name.isprintable(),
        "tracking.experiment",
        name,
        f"a name of 1 to {MAX_EXPERIMENT_NAME} printable characters",
    )
    root = t.artifact_root
    if root and "://" in root:
        allowed = "a local folder (or null: the tracking server decides)"
        _check(root.startswith("file://"), "tracking.artifact_root", root, allowed)
