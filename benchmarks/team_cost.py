"""Benchmark: how a sweep's cost grows with its size, on the three stores/launchers.

    uv run python benchmarks/team_cost.py [--sizes 14 112 1000] [--backends sqlite server ray]

The lab's sweep (every start x RProp and gradient descent, 500 iterations, per-iteration
metrics, the parent's summary) widened: 14 jobs is ``experiment=compare_starts``; 112
and 1000 jobs sweep a grid of starts (8 x 7 and 25 x 20 values of init.wx x init.wrec)
with both optimisers. Each size runs on

- sqlite: the default embedded store, basic launcher;
- server: the team stack's MLflow server on PostgreSQL (scripts/team_stack.sh), joblib
  with 2 workers;
- ray: the same server, the jobs on the stack's two-node Ray cluster (driver inside the
  stack's network namespace).

It prints seconds per job for each, and as the ratio to the 14-job sweep's seconds per
job on the same backend (measured in the same run): per-job overhead must stay flat as
the sweep grows (target: the 1000-job ratio <= 1.5). And the parent's summary, timed
from the store (the last child's end to the parent's end): seconds, not minutes (target:
<= 30 s for 1000 children). Needs root for the team stack (server, ray).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from timing import BIN, ROOT, environment, verdict

STACK = ROOT / "scripts" / "team_stack.sh"


def grid(n: int, lo: float, hi: float) -> str:
    step = (hi - lo) / (n - 1)
    return ",".join(f"{lo + i * step:.4g}" for i in range(n))


def sweep_args(size: int) -> list[str]:
    if size == 14:
        return ["experiment=compare_starts"]
    shape = {112: (8, 7), 1000: (25, 20)}[size]
    return [
        "experiment=compare_starts",
        f"init.wx={grid(shape[0], -2.0, 2.0)}",
        f"init.wrec={grid(shape[1], -2.0, 2.0)}",
        "init=lab_start",  # the group stays fixed; the grid sets its values
    ]


def summary_seconds(uri: str, experiment: str) -> tuple[float, int]:
    """(seconds from the last child's end to the parent's end, children) from the store."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            break
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    children = [r for r in runs if r is not parent]
    last = max(r.info.end_time for r in children)
    return (parent.info.end_time - last) / 1000, len(children)


def run(backend: str, size: int, work: Path, stack_uri: str | None, env: dict) -> float:
    experiment = f"cost-{backend}-{size}"
    args = [str(BIN / "rnnlab"), "-m", *sweep_args(size), f"tracking.experiment={experiment}"]
    if backend == "sqlite":
        command, uri = args, f"sqlite:///{work}/outputs/mlflow.db"
    elif backend == "server":
        command = [*args, "tracking=server", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
        uri = stack_uri
    else:
        command = ["bash", str(STACK), "exec", *args, "tracking=server", "hydra/launcher=ray"]
        uri = stack_uri
    t0 = time.perf_counter()
    proc = subprocess.run(
        command,
        cwd=work,
        env={**env, **({"MLFLOW_TRACKING_URI": stack_uri} if backend == "server" else {})},
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:  # the failed jobs' lines (stdout) and the sweep's verdict
        failed = "\n".join(line for line in proc.stdout.splitlines() if "FAILED" in line)
        raise SystemExit(
            f"{backend} {size} failed ({proc.returncode}):\n{failed}\n{proc.stderr[-2000:]}"
        )
    summary, children = summary_seconds(uri, experiment)
    if children != size:
        raise SystemExit(f"{backend} {size}: {children} child runs, not {size}")
    print(
        f"{backend:<7s} {size:5d} jobs  {elapsed:8.1f} s  {elapsed / size:6.3f} s/job  "
        f"summary {summary:5.1f} s",
        flush=True,
    )
    return elapsed / size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[14, 112, 1000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "server", "ray"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = environment()
        stack_uri = None
        team = any(b != "sqlite" for b in args.backends)
        if team:
            env_stack = {
                **env,
                "RNNLAB_TEAM_NAME": f"rnnlab-bench-{os.getpid()}",
                "RNNLAB_TEAM_DIR": str(work / "stack"),
                "RNNLAB_TEAM_PORT": "5099",
            }
            out = subprocess.run(
                ["bash", str(STACK), "start"], env=env_stack, capture_output=True, text=True
            )
            if out.returncode != 0:
                raise SystemExit(f"team stack: {out.stderr[-2000:]}")
            env = env_stack
            stack_uri = "http://127.0.0.1:5099"
        # the SQLite store exists before the first timed sweep (as the server's does)
        subprocess.run(
            [str(BIN / "rnnlab"), "plots=none", "iterations=5", "tracking.log_model=false"],
            cwd=work,
            env=environment(),
            capture_output=True,
            check=True,
        )
        per_job: dict[tuple[str, int], float] = {}
        try:
            for backend in args.backends:
                for size in args.sizes:
                    per_job[backend, size] = run(backend, size, work, stack_uri, env)
        finally:
            if team:
                subprocess.run(["bash", str(STACK), "stop"], env=env, capture_output=True)
        print()
        print("backend  " + "  ".join(f"{s:>6d} jobs" for s in args.sizes) + "  growth")
        for backend in args.backends:
            base = per_job[backend, args.sizes[0]]
            cells = [f"{per_job[backend, s]:7.3f} s/j" for s in args.sizes]
            growth = per_job[backend, args.sizes[-1]] / base
            print(
                f"{backend:<8s} " + "  ".join(cells) + f"  {growth:.2f}x the {args.sizes[0]}-job"
                f" per-job cost (target <= 1.5x: {verdict(growth <= 1.5)})"
            )


if __name__ == "__main__":
    main()
