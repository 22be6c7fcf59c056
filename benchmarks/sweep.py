"""Benchmark: the lab's 14-job sweep with the basic, joblib and Ray launchers.

    uv run python benchmarks/sweep.py [--rounds 3] [--no-ray]

``rnnlab -m experiment=compare_starts`` (every named start x RProp and gradient descent,
500 iterations each, per-iteration metrics, the parent's summary and figures) on an
existing store, with the basic launcher (target: 10 s or less on this machine; also
shown as a ratio to the lab's notebook run as a script, measured alternately in the same
run) and with joblib's 2 workers (shown against the basic launcher). Then once with
``hydra/launcher=ray`` from the project folder: no virtualenv may be built for the Ray
session (seconds, not minutes) and nothing may be left behind (temporary folders, Ray
processes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from timing import BIN, ROOT, alternate, line, timed, verdict

TARGET = 10.0
SWEEP = [str(BIN / "rnnlab"), "-m", "experiment=compare_starts"]


def ray_processes() -> set[int]:
    out = subprocess.run(
        ["ps", "-eo", "pid,args"], capture_output=True, text=True, encoding="utf-8"
    ).stdout
    return {
        int(row.split()[0])
        for row in out.splitlines()[1:]
        if any(w in row for w in ("raylet", "gcs_server", "ray::", "ray/dashboard"))
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        timed([str(BIN / "rnnlab"), "plots=none"], work)  # the store exists from here on
        medians = alternate(
            {
                "notebook": [
                    str(BIN / "python"),
                    str(ROOT / "benchmarks" / "lab8_notebook.py"),
                    str(work / "notebook"),
                ],
                "basic": SWEEP,
                "joblib": [*SWEEP, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
            },
            work,
            args.rounds,
        )
        basic, joblib = medians["basic"], medians["joblib"]
        line("lab 8 notebook as a script (reference)", medians["notebook"])
        line(
            "14-job compare_starts sweep, basic launcher",
            basic,
            f"= {basic / medians['notebook']:.1f}x the notebook; "
            f"target <= {TARGET:g} s: {verdict(basic <= TARGET)}",
        )
        line(
            "14-job compare_starts sweep, joblib, 2 workers",
            joblib,
            f"= {joblib / basic:.2f}x the basic launcher; "
            f"faster than basic: {verdict(joblib < basic)}",
        )
        if args.no_ray:
            return
        before_tmp = set(os.listdir(tempfile.gettempdir()))
        before_ray = ray_processes()
        t0 = time.perf_counter()
        timed([*SWEEP, "hydra/launcher=ray"], ROOT)  # from the project folder
        seconds = time.perf_counter() - t0
        time.sleep(2)  # Ray's processes end just after the driver
        left = sorted(set(os.listdir(tempfile.gettempdir())) - before_tmp)
        procs = ray_processes() - before_ray
        line(
            "14-job compare_starts sweep, local Ray, from the project folder",
            seconds,
            f"seconds, not minutes: {verdict(seconds < 60)}",
        )
        print(
            f"left behind: temporary folders {left or 'none'}, Ray processes "
            f"{sorted(procs) or 'none'}: {verdict(not left and not procs)}"
        )


if __name__ == "__main__":
    main()
