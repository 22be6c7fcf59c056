"""Shared by the benchmark scripts: wall times of whole commands, medians, verdicts.

Commands run the way a user runs them (the installed console scripts, a fresh or
existing store in a temporary folder, no MLFLOW_/HYDRA_ settings of the caller), and a
target is always judged against a reference measured in the same run, alternating with
it, so that a busy or a quiet machine moves both alike.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}


def timed(args: Sequence[str], cwd: Path) -> float:
    """Seconds the command took; it must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(args), cwd=cwd, env=environment(), capture_output=True, text=True, encoding="utf-8"
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def alternate(commands: dict[str, Sequence[str]], cwd: Path, rounds: int) -> dict[str, float]:
    """Each command ``rounds`` times, in turn (a, b, a, b, ...); their medians."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, args in commands.items():
            times[name].append(timed(args, cwd))
    return {name: statistics.median(t) for name, t in times.items()}


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def line(label: str, seconds: float, note: str = "") -> None:
    print(f"{label:<58s} {seconds:7.2f} s  {note}".rstrip(), flush=True)
