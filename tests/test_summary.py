"""A sweep's summary says what its jobs became (issue 30, 15): killed jobs are counted as
killed, not failed; an interrupted sweep's verdict says it is not final."""

from __future__ import annotations

import numpy as np

from rnnlab.sweeps.summary import NOT_STARTED, Summary


def row(job: int, status: str, loss: float | None = None, **extra) -> dict:
    return {"job": job, "status": status, "final_loss": loss, "overrides": [f"init=s{job}"],
            "run_name": f"#{job}", "run_id": f"r{job}", "error": None, **extra}  # fmt: skip


def sweep(interrupted: bool = False) -> Summary:
    rows = [row(0, "FINISHED", 0.5), row(1, "FINISHED", 0.25), row(2, "KILLED"),
            row(3, "FAILED", error="boom"), row(4, NOT_STARTED)]  # fmt: skip
    s = Summary(rows=rows, swept=["init"], interrupted=interrupted, parent_run_id="P1")
    s.best_rates = {"gd": (0.001, 0.25)}
    return s


def test_killed_jobs_are_counted_apart_from_failed_ones():
    s = sweep()
    assert [r["job"] for r in s.failed] == [3] and [r["job"] for r in s.killed] == [2]
    assert s.counts() == "5 jobs, 2 finished, 0 diverged, 1 failed, 1 killed, 1 not started"
    text = s.text()
    assert "  job 3 (init=s3): boom" in text and "  job 2 (init=s2): KILLED" in text
    assert "Failed: #3." in s.description("1") and "Killed: #2." in s.description("1")


def test_an_interrupted_sweep_does_not_offer_its_verdict_as_final():
    final = sweep().text().splitlines()[-1]
    assert final.startswith("Best learning rate: 0.001 (median final loss 0.25 over its starts)")
    assert final.endswith(". Feed it back: uv run rnnlab -m experiment=compare_starts "
                          "gd_learning_rate=0.001")  # fmt: skip
    cut = sweep(interrupted=True).text().splitlines()[-1]
    assert "Feed" not in cut and cut.startswith("Best learning rate so far: 0.001")
    assert cut.endswith("rnnlab-rerun P1 --resume runs the rest")
    s = sweep(interrupted=True)
    s.best_rates = {"gd": (0.001, 0.25), "adam": (0.01, 0.5)}
    assert "Feed them back" not in s.text() and "Best learning rates so far" in s.text()
    s.interrupted = False
    assert s.text().splitlines()[-1] == (
        "Feed them back: uv run rnnlab -m experiment=compare_optimizers " + s.rate_overrides()
    )


def test_swept_floats_read_as_a_person_writes_them():
    """Issue 31, 5: a float range's values (``2.9999999999999996``, ``-1.11e-16``) in the
    console table and the children's names; the params keep the exact values."""
    from rnnlab.jobs.text import SweepJob, run_name

    job = SweepJob.of(231, ["init.wx=2.9999999999999996", "init.wrec=-1.1102230246400313e-16",
                            "optimizer=gd"], ["init.wx", "init.wrec", "optimizer"])  # fmt: skip
    config = {"init": {"name": "custom", "wx": 2.9999999999999996,
                       "wrec": -1.1102230246400313e-16}, "optimizer": {"name": "gd"}}  # fmt: skip
    assert run_name(config, job=job) == "#231 gd-(3, 0)"
    assert job.params["choice.init.wx"] == "2.9999999999999996"  # exact, as it ran
    s = Summary(rows=[row(0, "FINISHED", 0.5, **{"init.wx": "2.9999999999999996"})],
                swept=["init.wx"])  # fmt: skip
    assert s.text().splitlines()[1].split()[:2] == ["0", "3"]


def test_a_parent_over_custom_starts_does_not_name_a_start_no_child_ran_from():
    """Issue 31, 5: a grid over init.wx x init.wrec recorded init.name=lab_start on its
    parent, though every child ran from its own (custom) start."""
    from rnnlab.sweeps.plan import Plan, shared_params

    config = {"init": {"name": "lab_start", "wx": -1.5, "wrec": 2.0}, "iterations": 50}
    grid = Plan(jobs=[], swept={"init.wx": ["-1", "1"], "init.wrec": ["0", "2"]})
    params = shared_params(config, grid)
    assert "init.name" not in params and "init.wx" not in params
    assert params["iterations"] == "50" and params["sweep.init.wx"] == "-1, 1"
    other = shared_params(config, Plan(jobs=[], swept={"iterations": ["5", "10"]}))
    assert other["init.name"] == "lab_start"  # a sweep that keeps the start names it


def test_a_grid_over_a_float_range_says_what_it_runs_before_it_runs():
    """Issue 31, 5: ``range(-3,3,0.6)`` x ``range(-3,3,0.6)`` x 2 optimisers is 242 jobs,
    not the 200 it reads like: Hydra's float range reaches 2.9999999999999996."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from rnnlab.sweeps.parent import jobs_text

    overrides = OverridesParser.create().parse_overrides(
        ["init.wx=range(-3,3,0.6)", "init.wrec=range(-3,3,0.6)", "optimizer=rprop,gd"]
    )
    swept = {o.get_key_element(): list(o.sweep_string_iterator()) for o in overrides}
    assert swept["init.wx"][-1] == "2.9999999999999996" and len(swept["init.wx"]) == 11
    assert jobs_text(242, swept) == (
        "242 jobs = init.wx 11 (-3 ... 3) x init.wrec 11 (-3 ... 3) x optimizer 2"
    )
    assert jobs_text(14, {"init": list("abcdefg"), "optimizer": ["rprop", "gd"]}) == "14 jobs"
    assert jobs_text(5, swept) == "5 jobs"  # not the grid's product: only the count


def test_a_diverged_job_reads_in_the_table_as_on_its_line():
    """Issue 31, 5: its line says "diverged at iteration 1"; the table said only
    ``diverged`` beside ``iterations 0`` (the updates kept)."""
    from rnnlab.core.train import DIVERGED, Trajectory
    from rnnlab.jobs.text import diverged_text

    w = np.array([[1.0, 3.0]])
    traj = Trajectory(w[0], w, np.array([5.0]), np.zeros((1, 2)), np.zeros((0, 2)), DIVERGED, 1)
    line = diverged_text(traj)
    assert line.startswith("diverged at iteration 1: no final loss")
    s = Summary(rows=[row(0, "FINISHED", None, training="diverged", iterations=0, diverged_at=1)],
                swept=["init"])  # fmt: skip
    header, cells = s.text().splitlines()[:2]
    assert cells.split()[header.split().index("training") :][:4] == ["diverged", "at", "1", "0"]
