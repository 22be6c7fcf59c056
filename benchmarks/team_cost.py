"""Benchmark: how a sweep's cost grows with its size, on the three stores/launchers.

    uv run python benchmarks/team_cost.py [--sizes 14 112 1000] [--backends sqlite server ray]
        [--baseline REF] [--baseline-size 112]

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

Issue 23's targets, printed met / not met: the 1000-job SQLite sweep (basic launcher) in
<= 3 minutes (<= 0.18 s/job, against the same sweep from the ``--baseline`` commit,
today's main before the issue, at ``--baseline-size`` jobs in the same run, and the
issue's stored 0.47 s/job); the first job started (its run opened in the store) within
2 s of the command's start at every size (its console line, after it is recorded, is
printed too); memory flat with the size (the command's peak resident memory,
its processes' largest); through the team stack's server with joblib's 2 workers
<= 0.5 s/job.
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
# s/job of the 1000-job sweep on main before issue 23 (the figures)
STORED_BASELINE = {"sqlite": 0.47, "server": 1.2}
TARGETS = {"sqlite": 0.18, "server": 0.5}  # s/job at 1000 jobs
FIRST_JOB = 2.0  # s from the command's start to its first job's run (opened in the store)


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


def summary_seconds(uri: str, experiment: str) -> tuple[float, int, float]:
    """(seconds from the last child's end to the parent's end, children, the first
    child's start as a Unix time) from the store."""
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
    first = min(r.info.start_time for r in children) / 1000
    return (parent.info.end_time - last) / 1000, len(children), first


def run(
    backend: str, size: int, work: Path, stack_uri: str | None, env: dict, label: str = ""
) -> dict[str, float]:
    """One sweep: its seconds per job, seconds to the first job's line, peak memory (MB)."""
    label = label or backend
    experiment = f"cost-{label}-{size}"
    args = [str(BIN / "rnnlab"), "-m", *sweep_args(size), f"tracking.experiment={experiment}"]
    if backend == "sqlite":
        command, uri = args, f"sqlite:///{work}/outputs/mlflow.db"
    elif backend == "server":
        command = [*args, "tracking=server", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
        uri = stack_uri
    else:
        command = ["bash", str(STACK), "exec", *args, "tracking=server", "hydra/launcher=ray"]
        uri = stack_uri
    env = {**env, **({"MLFLOW_TRACKING_URI": stack_uri} if backend == "server" else {})}
    peak_file = work / "peak.txt"  # GNU time: the largest resident size of its processes
    command = ["/usr/bin/time", "-f", "%M", "-o", str(peak_file), *command]
    t0, started = time.perf_counter(), time.time()
    first, out = None, []
    with subprocess.Popen(
        command,
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    ) as proc:
        for line in proc.stdout:
            if first is None and line.startswith("[job "):
                first = time.perf_counter() - t0
            out.append(line)
        err = proc.stderr.read()
    elapsed = time.perf_counter() - t0
    peak = int(peak_file.read_text(encoding="utf-8").split()[-1]) / 1024
    if proc.returncode != 0:  # the failed jobs' lines (stdout) and the sweep's verdict
        failed = "".join(line for line in out if "FAILED" in line)
        raise SystemExit(f"{label} {size} failed ({proc.returncode}):\n{failed}\n{err[-2000:]}")
    summary, children, first_start = summary_seconds(uri, experiment)
    if children != size:
        raise SystemExit(f"{label} {size}: {children} child runs, not {size}")
    print(
        f"{label:<8s} {size:5d} jobs  {elapsed:8.1f} s  {elapsed / size:6.3f} s/job  first job "
        f"started {first_start - started:5.2f} s, its line {first or float('nan'):5.2f} s  "
        f"summary {summary:5.1f} s  peak {peak:5.0f} MB",
        flush=True,
    )
    return {"per_job": elapsed / size, "first": first_start - started, "peak": peak}


def baseline_checkout(ref: str, work: Path) -> dict[str, str]:
    """The environment that runs ``rnnlab`` from commit ``ref`` (a worktree under
    ``work``, first on PYTHONPATH: the same installed libraries, that commit's code)."""
    tree = work / "baseline"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref],
        check=True,
        capture_output=True,
    )
    return {"PYTHONPATH": str(tree / "src")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[14, 112, 1000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "server", "ray"])
    parser.add_argument("--baseline", default="ce17999", help="git ref of the reference")
    parser.add_argument("--baseline-size", type=int, default=112)
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
                ["bash", str(STACK), "start"],
                env=env_stack,
                capture_output=True,
                text=True,
                encoding="utf-8",
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
        measured: dict[tuple[str, int], dict[str, float]] = {}
        reference = None
        try:
            if args.baseline and "sqlite" in args.backends:
                old = {**env, **baseline_checkout(args.baseline, work)}
                reference = run("sqlite", args.baseline_size, work, None, old, "baseline")
            for backend in args.backends:
                for size in args.sizes:
                    measured[backend, size] = run(backend, size, work, stack_uri, env)
        finally:
            if team:
                subprocess.run(["bash", str(STACK), "stop"], env=env, capture_output=True)
            if args.baseline:
                subprocess.run(
                    [
                        "git",
                        "-C",
                        str(ROOT),
                        "worktree",
                        "remove",
                        "--force",
                        str(work / "baseline"),
                    ],
                    capture_output=True,
                )
        per_job = {k: v["per_job"] for k, v in measured.items()}
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
        print()
        largest = args.sizes[-1]
        for backend, target in TARGETS.items():
            if (backend, largest) not in per_job:
                continue
            cost = per_job[backend, largest]
            against = f"main before issue 23, stored: {STORED_BASELINE[backend]:.2f} s/job"
            if reference and backend == "sqlite":
                against = (
                    f"baseline {args.baseline} here: {reference['per_job']:.3f} s/job at "
                    f"{args.baseline_size} jobs; " + against
                )
            print(
                f"{backend}: {largest} jobs in {cost * largest:.0f} s, {cost:.3f} s/job (target "
                f"<= {target} s/job: {verdict(cost <= target)}; {against})"
            )
        for backend in args.backends:
            firsts = [measured[backend, s]["first"] for s in args.sizes]
            print(
                f"{backend}: the first job's run opened {max(firsts):.2f} s after the command "
                f"started, at most (target <= {FIRST_JOB} s: {verdict(max(firsts) <= FIRST_JOB)})"
            )
        for backend in args.backends:
            peaks = [measured[backend, s]["peak"] for s in args.sizes]
            print(
                f"{backend}: peak memory {' / '.join(f'{p:.0f}' for p in peaks)} MB at "
                f"{' / '.join(map(str, args.sizes))} jobs"
            )


if __name__ == "__main__":
    main()
