"""A training job's computation, pure: a config in, a ``JobResult`` out (the lab's
dataset, its gradient check, the optimiser's trajectory, the gradient over time from
the lab's points, the test sequence).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rnnlab.config import (
    OPTIMIZER_NAMES,
    RATE_KEYS,
)
from rnnlab.core import rnn
from rnnlab.core.data import Dataset, make_dataset
from rnnlab.core.gradcheck import gradient_check
from rnnlab.core.optim import (
    Adam,
    GradientDescent,
    IRPropMinus,
    IRPropPlus,
    Momentum,
    Optimizer,
    RProp,
)
from rnnlab.core.train import optimise, predict
from rnnlab.jobs.results import Curves, GradientCheckFailed, JobResult

STEP_RULES = {
    "rprop": RProp,
    "gd": GradientDescent,
    "momentum": Momentum,
    "adam": Adam,
    "gd_clip": GradientDescent,  # with its clip_norm
    "irprop_minus": IRPropMinus,
    "irprop_plus": IRPropPlus,
}


def build_optimizer(cfg: Mapping[str, Any]) -> Optimizer:
    """The step rule named by ``cfg['name']`` with the config's hyperparameters."""
    return STEP_RULES[cfg["name"]](**{k: v for k, v in cfg.items() if k != "name"})


def optimizer_label(cfg: Mapping[str, Any]) -> str:
    """A human name for figures: 'RProp', 'gradient descent (lr=1e-05)', 'Adam (lr=0.01)'."""
    name = "gd" if cfg["name"] == "gd_clip" else cfg["name"]
    label = OPTIMIZER_NAMES[name]
    if name not in RATE_KEYS:  # the RProp family: no learning rate
        return label
    rate = f"lr={cfg['learning_rate']:g}"
    if name == "gd":
        clip = cfg.get("clip_norm")
        return f"{label} ({rate}" + (f", clipped at {clip:g})" if clip else ")")
    if name == "momentum":
        kind = "Nesterov momentum" if cfg.get("nesterov") else label
        return f"{kind} {cfg['momentum']:g} ({rate})"
    return f"{label} ({rate})"


def dataset_of(config: Mapping[str, Any]) -> Dataset:
    d = config["data"]
    return make_dataset(d["recipe"], d["n_samples"], d["seq_len"], d["seed"])


def gradient_curves(dataset: Dataset, points: Mapping[str, Sequence[float]]) -> Curves:
    """The gradient over time (d loss / d S_k, k = 0..T) from each named point."""
    curves = {}
    with np.errstate(over="ignore", invalid="ignore"):
        for name, (wx, wrec) in points.items():
            g = rnn.state_gradients(dataset.X, dataset.t, wx, wrec)
            if np.all(np.isfinite(g)):
                curves[name] = (float(wx), float(wrec), g)
    return curves


# --- 1. compute -------------------------------------------------------------------------


def compute(config: Mapping[str, Any], safe_point: Callable[[], None] | None = None) -> JobResult:
    """The lab's whole job from a resolved config: pure, no files, no runs.
    ``safe_point()`` is called every iteration (where the caller may stop it).

    Raises GradientCheckFailed (carrying the check) when BPTT disagrees with central
    differences."""
    dataset = dataset_of(config)
    g = config["gradcheck"]
    check = gradient_check(dataset.X, dataset.t, g["wx"], g["wrec"], g["eps"], g["rtol"])
    if not check.passed:
        raise GradientCheckFailed(check)
    trajectory = optimise(
        dataset.X,
        dataset.t,
        (config["init"]["wx"], config["init"]["wrec"]),
        build_optimizer(config["optimizer"]),
        config["iterations"],
        config["tolerance"],
        config["divergence"]["loss_factor"],
        safe_point,
    )
    with np.errstate(over="ignore", invalid="ignore"):
        test_output = float(predict(config["data"]["test_sequence"], *trajectory.final_w)[0])
    curves = gradient_curves(dataset, config["plots"]["points"])
    return JobResult(dict(config), dataset, check, trajectory, curves, test_output)
