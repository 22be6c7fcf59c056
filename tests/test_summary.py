"""A sweep's summary says what its jobs became (issue 30, 15): killed jobs are counted as
killed, not failed; an interrupted sweep's verdict says it is not final."""

from __future__ import annotations

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
