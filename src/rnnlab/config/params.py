"""What a run records as params: its config flattened to ``key: value`` strings."""

from __future__ import annotations

from typing import Any

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
CHOICE_PREFIX = "choice."  # a sweep child's param per swept key: choice.<key> = its value
SWEPT_PREFIX = "sweep."  # a sweep parent's param per swept key: sweep.<key> = its values
LOG10_PREFIX = "choice.log10."  # a key searched on a log scale: its value's log10, too
NAMED_KEYS = ("init", "init.name", "optimizer", "optimizer.name")  # a child's name says them


def config_key(override_key: str) -> str:
    """The config key an override's key names, as an MLflow param name takes it: without
    Hydra's ``+``/``++``/``~`` and ``@package`` (``+repeat`` -> ``repeat``)."""
    return override_key.lstrip("+~").split("@")[0]


def on_log_scale(distribution: str) -> bool:
    """Whether a search draws a key on a log scale: Hydra's sweepers write it
    ``tag(log, interval(1e-7, 1))`` (Optuna's, Nevergrad's)."""
    return "tag(log" in distribution.replace(" ", "")


def as_number(value: Any) -> float | None:
    """``value`` as a float, None where it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def shown(value: Any, digits: int = 4) -> str:
    """A number as a person reads it in a name or a table (the params keep the exact
    value): rounded at 1e-12, so that a float range's ``2.9999999999999996`` reads ``3``
    and ``-1.1102230246400313e-16`` reads ``0``, then to ``digits`` significant digits
    where that is shorter (a search's ``0.0016193110912440748``: ``0.001619``); what is
    not a number, as it is."""
    number = None if isinstance(value, bool) else as_number(value)
    if number is None:
        return str(value)
    text = str(value)
    short = f"{round(number, 12) + 0.0:.{digits}g}"
    return short if len(short) < len(text) or round(number, 12) != number else text


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
