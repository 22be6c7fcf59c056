"""Benchmark: wall time of the 14-job lab sweep, basic launcher against joblib.

    uv run python benchmarks/sweep.py

Runs, each on a fresh store in a temporary folder: one plain ``rnnlab plots=none`` job
(the reference), ``rnnlab -m experiment=compare_starts`` with the basic launcher, and the
same with ``hydra/launcher=joblib`` (2 workers). Prints each wall time, the per-job
overhead (sweep time / 14) as a ratio to the single run, and the target (10 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RNNLAB = str(Path(sys.executable).parent / "rnnlab")
JOBS = 14


def timed(args: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([RNNLAB, *args], cwd=tmp, env=env, check=True, capture_output=True)
        return time.perf_counter() - t0


def main() -> None:
    single = timed(["plots=none"])
    print(f"single run (rnnlab plots=none, fresh store):        {single:6.1f} s  (reference)")
    for name, extra in [("basic", []), ("joblib, 2 workers", ["hydra/launcher=joblib"])]:
        t = timed(["-m", "experiment=compare_starts", *extra])
        print(
            f"14-job compare_starts sweep, {name:18s}: {t:6.1f} s  "
            f"= {t / single:.1f}x one run; per job {t / JOBS:.2f} s "
            f"= {t / JOBS / single:.2f}x one run  (target: sweep <= 10 s)"
        )


if __name__ == "__main__":
    main()
