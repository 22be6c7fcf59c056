"""What a job says: its run's name (a sweep's child: its number and swept values),
its description in the MLflow UI, and its lines on the console.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rnnlab.config import CUSTOM_START, optimizer_id
from rnnlab.config.params import (
    CHOICE_PREFIX,
    LOG10_PREFIX,
    NAMED_KEYS,
    as_number,
    config_key,
    shown,
)
from rnnlab.core.train import Trajectory
from rnnlab.jobs.compute import optimizer_label
from rnnlab.jobs.results import JobResult

# --- 3. record --------------------------------------------------------------------------


def run_name(
    config: Mapping[str, Any], trajectory: Trajectory | None = None, job: SweepJob | None = None
) -> str:
    """``rprop-lab_start``: the optimiser and the start. A sweep's child starts with its
    job number and ends with the swept values the rest does not say (``#7 gd-steady
    learning_rate=0.001``), so that what tells two children apart comes before where the
    runs table cuts names short; a diverged run ends in ``(diverged)``."""
    init = config["init"]
    start = init["name"]
    said: tuple[str, ...] = NAMED_KEYS
    if start == CUSTOM_START:  # a start of one's own: its weights say which
        start = f"({shown(init['wx'], 6)}, {shown(init['wrec'], 6)})"
        said = (*NAMED_KEYS, "init.wx", "init.wrec")
    name = f"{optimizer_id(config['optimizer'])}-{start}"
    if job is not None:
        parts = (job.extra(said), name) if job.searched else (name, job.extra(said))
        name = " ".join(filter(None, (f"#{job.num}", *parts)))
    return f"{name} (diverged)" if trajectory is not None and trajectory.diverged else name


def rounded(override: str) -> str:
    """An override with its value as a person reads it (``config.params.shown``):
    ``optimizer.learning_rate=0.0016193110912440748`` -> ``...=0.001619``."""
    key, sep, value = override.partition("=")
    return f"{key}{sep}{shown(value)}" if sep else override


def diverged_text(traj: Trajectory) -> str:
    """A diverged run's one story, for the console, its description and a sweep's line:
    where it diverged and that it has no final loss (only its last finite point)."""
    last = f"{traj.final_loss:.3g} at iteration {traj.iterations}" if len(traj.loss) else "none"
    return f"diverged at iteration {traj.diverged_at}: no final loss (last finite loss {last})"


def description(result: JobResult) -> str:
    """One line for the run's description (the UI's Description)."""
    traj, init = result.trajectory, result.config["init"]
    label = optimizer_label(result.config["optimizer"])
    start = f"{init['name']} ({init['wx']:g}, {init['wrec']:g})"
    if traj.diverged:
        return f"{label} from {start}: {diverged_text(traj)}"
    return (
        f"{label} from {start}: {traj.iterations} iterations, "
        f"final loss {traj.final_loss:.3g}, {traj.status}"
    )


@dataclass(frozen=True)
class SweepJob:
    """A sweep's child: its job number and its swept values (key -> value, as in its
    overrides). Its run's name starts with the number and ends with the values the
    optimiser-start name does not say; each value is also its param ``choice.<key>``."""

    num: int
    swept: Mapping[str, str] = field(default_factory=dict)
    searched: bool = False  # values a search drew: they lead the name (all else is alike)
    log_keys: tuple[str, ...] = ()  # keys a search draws on a log scale

    @classmethod
    def of(
        cls,
        num: int,
        overrides: Sequence[str],
        swept: Sequence[str],
        searched: bool = False,
        log_keys: Sequence[str] = (),
    ) -> SweepJob:
        """Job ``num`` of a sweep over the keys ``swept``, from its overrides."""
        values = {config_key(k): v for k, v in (o.split("=", 1) for o in overrides if "=" in o)}
        return cls(num, {k: values[k] for k in swept if k in values}, searched, tuple(log_keys))

    def extra(self, said: Sequence[str] = NAMED_KEYS) -> str:
        """The swept values the name does not say already (``said``: its keys)."""
        return " ".join(
            f"{k.rsplit('.', 1)[-1]}={shown(v)}" for k, v in self.swept.items() if k not in said
        )

    @property
    def params(self) -> dict[str, str]:
        """``choice.<key>``: MLflow's compare view starts its parallel coordinates on the
        first three params (alphabetically) that differ between the runs: these; a key
        searched on a log scale first as ``choice.log10.<key>`` (the page has no log axis)."""
        params = {f"{CHOICE_PREFIX}{k}": str(v) for k, v in self.swept.items()}
        for k in self.log_keys:
            value = as_number(self.swept.get(k))
            if value is not None and value > 0:
                params[f"{LOG10_PREFIX}{k}"] = repr(math.log10(value))
        return params


# --- the console --------------------------------------------------------------------------


def outcome(traj: Trajectory) -> str:
    """A job's result in a few words, for a sweep's line per job."""
    if traj.diverged:
        return diverged_text(traj)
    return f"final loss {traj.final_loss:.6g} after {traj.iterations} iterations ({traj.status})"


def report(result: JobResult) -> list[str]:
    """The lab's lines for a single run (where it is recorded is the recorder's to add)."""
    check, traj = result.gradcheck, result.trajectory
    lines = [
        f"Gradient check at ({check.at[0]:g}, {check.at[1]:g}): {check.summary()} "
        f"(relative error wx {check.rel_error['wx']:.1e}, wrec {check.rel_error['wrec']:.1e})",
    ]
    wx, wrec = traj.final_w
    weights = "Last finite weights:" if traj.diverged else "Final weights are:"
    lines.append(f"{weights} wx = {wx:.4f}, wrec = {wrec:.4f}")
    s = result.summary
    if "test_output" in s:
        lines.append(
            f"Output from model: {s['test_output']:.4f}; "
            f"expected output (sum of input): {s['test_expected']:.4f}"
        )
    if traj.diverged:
        lines.append(f"Training {diverged_text(traj)}.")
    else:
        lines.append(
            f"Final loss {traj.final_loss:.6g} after {traj.iterations} iterations ({traj.status})."
        )
    return lines
