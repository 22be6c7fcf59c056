"""Benchmark: how many jobs Optuna's TPE needs to find a learning rate as good as the grid's.

    uv run python benchmarks/optuna_vs_grid.py [--seeds 5] [--trials 30] [--no-cli]

The grid is ``experiment=optimizer_learning_rates``: per optimiser (gd, gd_clip,
momentum, adam) 8 rates (decades 1e-7 .. 1) x 3 starts (steady, vanish,
vanish_oscillate) = 24 jobs, 96 in all; an optimiser's best rate has the lowest median
final loss over the 3 starts (a diverged start counts as infinitely bad). A search
"matches" the grid at the first trial whose best-so-far rate has a median final loss
over the same 3 starts no higher than the grid's best.

Two searches, each with the sampler of ``experiment=optimizer_learning_rates_optuna``
(Optuna's TPE, log-uniform over [1e-7, 1]), for sampler seeds 0 .. seeds-1:

- *median objective*: a trial trains its rate from the 3 starts and reports their
  median (3 jobs a trial), the grid's own criterion;
- *the experiment as run*: a trial is one job from ``steady`` (what
  ``rnnlab -m experiment=optimizer_learning_rates_optuna`` does);
  its best-so-far rate is then judged by the median over the 3 starts.

Every job is rnnlab's own computation (``rnnlab.jobs.compute``, the maths a sweep job
runs, without MLflow). Unless ``--no-cli``, the experiment also runs through the CLI
for seed 0 on a fresh store, and the script checks that it drew the same rates as the
in-process sampler (the figures above are then the CLI's).
"""

from __future__ import annotations

import argparse
import copy
import math
import re
import statistics
import subprocess
import tempfile

import numpy as np
import optuna
from timing import BIN, environment

from rnnlab.config.composition import compose, to_container
from rnnlab.jobs.compute import compute

OPTIMIZERS = ["gd", "gd_clip", "momentum", "adam"]
STARTS = ["steady", "vanish", "vanish_oscillate"]
RATES = [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
LOW, HIGH = 1e-7, 1.0  # the experiment's search space
SEARCH_START = "steady"  # the experiment's start


class Lab:
    """Final losses of one optimiser at a rate from a start (computed once each)."""

    def __init__(self) -> None:
        self.configs = {
            (o, s): to_container(compose([f"optimizer={o}", f"init={s}", "plots=none"]))
            for o in OPTIMIZERS
            for s in STARTS
        }
        self.cache: dict[tuple[str, str, float], float] = {}

    def loss(self, optimizer: str, start: str, rate: float) -> float:
        key = (optimizer, start, rate)
        if key not in self.cache:
            config = copy.deepcopy(self.configs[(optimizer, start)])
            config["optimizer"]["learning_rate"] = rate
            trajectory = compute(config).trajectory
            self.cache[key] = math.inf if trajectory.diverged else trajectory.final_loss
        return self.cache[key]

    def median(self, optimizer: str, rate: float) -> float:
        return float(np.median([self.loss(optimizer, s, rate) for s in STARTS]))


def search(lab: Lab, optimizer: str, seed: int, trials: int, objective: str, target: float):
    """(trials until the best-so-far rate matches ``target``, or None; the rates drawn)."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    best, drawn, matched = (math.inf, None), [], None
    for k in range(1, trials + 1):
        trial = study.ask()
        rate = trial.suggest_float("optimizer.learning_rate", LOW, HIGH, log=True)
        drawn.append(rate)
        if objective == "median":
            value = lab.median(optimizer, rate)
        else:
            value = lab.loss(optimizer, SEARCH_START, rate)
        study.tell(trial, value)  # a diverged job: inf, as rnnlab reports it to a sweeper
        if value < best[0]:
            best = (value, rate)
        if matched is None and best[1] is not None and lab.median(optimizer, best[1]) <= target:
            matched = k
    return matched, drawn


def cli_rates(optimizer: str, trials: int) -> list[float]:
    """The rates the CLI's experiment drew (seed 0), in trial order, on a fresh store."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            str(BIN / "rnnlab"), "-m", "hydra/sweeper=optuna",
            "experiment=optimizer_learning_rates_optuna", f"optimizer={optimizer}",
            f"hydra.sweeper.n_trials={trials}",
        ]  # fmt: skip
        proc = subprocess.run(
            args, cwd=tmp, env=environment(), capture_output=True, text=True, encoding="utf-8"
        )
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
        found = re.findall(
            r"^\[job (\d+)\] optimizer\.learning_rate=([0-9.eE+-]+)", proc.stdout, re.M
        )
        return [float(rate) for _, rate in sorted(found, key=lambda jr: int(jr[0]))]


def jobs_text(matched: list[int | None], per_trial: int, trials: int) -> str:
    found = [m * per_trial for m in matched if m is not None]
    missed = len(matched) - len(found)
    median = f"{statistics.median(found):g}" if found else "-"
    spread = f"{min(found)}-{max(found)}" if found else "-"
    miss = f", {missed} of {len(matched)} seeds not in {trials * per_trial}" if missed else ""
    return f"median {median} ({spread}{miss})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--no-cli", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lab = Lab()
    print(
        f"Jobs until a search's best rate has a median final loss over {', '.join(STARTS)}"
        f" as low as the grid's best (seeds 0-{args.seeds - 1}, at most {args.trials} trials)"
    )
    header = f"{'optimiser':<9} {'grid: rate, median':<22} {'grid jobs':>9}  "
    print(header + f"{'TPE, median objective':<30} TPE from {SEARCH_START} (the experiment)")
    agree = True
    for optimizer in OPTIMIZERS:
        medians = {r: lab.median(optimizer, r) for r in RATES}
        rate = min(medians, key=lambda r: (medians[r], r))
        target = medians[rate]
        by_median, by_start = [], []
        for seed in range(args.seeds):
            by_median.append(search(lab, optimizer, seed, args.trials, "median", target)[0])
            matched, drawn = search(lab, optimizer, seed, args.trials, "start", target)
            by_start.append(matched)
            if seed == 0 and not args.no_cli:
                cli = cli_rates(optimizer, args.trials)
                agree = agree and np.allclose(cli, drawn, rtol=1e-12)
        print(
            f"{optimizer:<9} {f'{rate:g}, {target:.4g}':<22} {len(RATES) * len(STARTS):>9}  "
            f"{jobs_text(by_median, len(STARTS), args.trials):<30} "
            f"{jobs_text(by_start, 1, args.trials)}"
        )
    if not args.no_cli:
        print(f"The CLI's experiment (seed 0) drew the in-process sampler's rates: {agree}")


if __name__ == "__main__":
    main()
