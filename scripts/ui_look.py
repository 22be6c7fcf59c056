"""Look at rnnlab's runs the way a user does: in the MLflow UI, in a real headless browser,
clicking from the README's link, never deep-linking past a step.

    uv run --group browser python scripts/ui_look.py [--out outputs/ui-look] [--keep]

On a fresh store in a temporary folder it runs the README's commands (``rnnlab``,
``rnnlab optimizer=gd init=explode``, ``rnnlab -m experiment=compare_starts``, the same
with ``hydra/launcher=joblib``, the Optuna experiment with Adam), starts ``mlflow server``
on a free loopback port, opens a fresh browser on the README's link and clicks, saving a
screenshot (PNG) at each step:

    01-home.png              the README's link: MLflow's home page
    02-experiments.png       "Model training" clicked (once), then "Experiments"
    03-runs-table.png        compare_starts clicked: its runs table as MLflow shows it
    04-results-view.png      "Views" -> "rnnlab: results": the columns a comparison needs
    05-sweep-expanded.png    the newest sweep's + clicked: its 14 children
    06-chart-view.png        the chart icon: every run's charts
    06b-chart-loss.png       "loss" typed in the charts' search box
    07-children-ticked.png   back to the table, the 14 children ticked
    08-compare.png           "Compare": the compare page of the 14 children
    09-diverged-run.png      back, a diverged child's name clicked: its overview
    10-diverged-metrics.png  its "Model metrics" tab
    11-optuna-view.png       back to "Experiments", the Optuna experiment, "rnnlab: results"
    12-optuna-expanded.png   its search's + clicked: the 20 trials
    13-optuna-charts.png     the chart icon: the parallel coordinates over the searched rate
    14-optuna-compare.png    the 20 trials ticked, "Compare"

and prints, per step, the address the browser is at and what the page says.

Needs Debian's ``chromium`` (``apt-get install chromium``) and Playwright from PyPI (the
``browser`` dependency group); Playwright's own browser download is not used.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list[str], cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}
    print("$", " ".join(args), flush=True)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8")
    print(proc.stdout, end="")
    if proc.stderr:
        print("[stderr]", proc.stderr, end="")
    proc.check_returncode()


def start_server(store: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{store / 'outputs' / 'mlflow.db'}",
            "--workers",
            "1",
        ],
        cwd=store,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("mlflow server did not start")


COMMANDS = [
    [],
    ["optimizer=gd", "init=explode"],
    ["-m", "experiment=compare_starts"],
    ["-m", "experiment=compare_starts", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    ["-m", "experiment=optimizer_learning_rates_optuna", "optimizer=adam"],
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/ui-look"))
    parser.add_argument("--store", type=Path, help="use this folder's outputs/mlflow.db")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = args.store.resolve() if args.store else Path(tempfile.mkdtemp(prefix="rnnlab-ui-"))
    if not args.store:
        for command in COMMANDS:
            run([str(BIN / "rnnlab"), *command], work)
    port = free_port()
    server = start_server(work, port)
    url = f"http://127.0.0.1:{port}"
    try:
        look(url, out)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        if not args.store and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots in {out}")


def settle(seconds: float = 3) -> None:
    time.sleep(seconds)  # the UI keeps polling; its tables and charts render within this


def look(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})

        def shot(name: str, what: str) -> None:
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            print(f"{name}: {page.url}\n    {what}")

        def close_assistant() -> None:  # MLflow's assistant panel: more room for the runs
            close = page.locator('button[aria-label="Close"]')
            if close.count():
                close.first.click()
                settle(0.5)

        page.goto(f"{url}/", wait_until="load")  # the README's link
        settle(4)
        shot("01-home", "the link the README gives")
        page.get_by_text("Model training", exact=True).first.click()  # the README's click
        settle(1)
        page.get_by_role("link", name="Experiments").first.click()
        settle()
        shot("02-experiments", "the experiment list after the one click")
        page.get_by_role("link", name="compare_starts").first.click()
        settle(5)
        close_assistant()
        shot("03-runs-table", f"opens on: {page.locator('h2, h1').first.inner_text()}")

        def pick_view() -> None:  # "Views" -> "rnnlab: results"
            page.get_by_role("button", name="Views").first.click()
            settle(1)
            page.get_by_text("rnnlab: results").first.click()
            settle(4)

        def expand_newest() -> int:  # the newest sweep's +: the rows shown then
            page.locator('button[data-component-id*="runnamecellrenderer"]').first.click()
            settle()
            return page.locator(".ag-center-cols-container .ag-row").count()

        def show(kind: str, seconds: float = 3) -> None:  # the table or the charts
            page.locator(f"label:has(input[type=radio][value={kind}])").first.click()
            settle(seconds)

        def tick(rows: int) -> None:  # row 0 is the parent, then its children
            for row in range(1, rows):
                page.locator(f'.ag-row[row-index="{row}"] input.ag-checkbox-input').first.click()
            settle(1)

        pick_view()
        shot("04-results-view", "the saved view rnnlab keeps")
        rows = expand_newest()
        shot("05-sweep-expanded", f"{rows} rows after expanding the newest sweep")
        show("CHART", 6)
        shot("06-chart-view", "every run's charts")
        page.get_by_placeholder("Search metric charts").first.fill("loss")
        settle(4)
        shot("06b-chart-loss", "the charts whose name has 'loss'")
        show("TABLE")
        tick(15)
        shot("07-children-ticked", "the 14 children ticked")
        page.get_by_role("button", name="Compare").first.click()
        settle(6)
        shot("08-compare", "the compare page")
        page.go_back()
        settle(5)
        close_assistant()
        expand_newest()
        page.get_by_role("link", name=re.compile(r"\(diverged\)")).first.click()
        settle(4)
        shot("09-diverged-run", "a diverged child's overview")
        page.get_by_role("tab", name="Model metrics").first.click()
        settle(4)
        shot("10-diverged-metrics", "its metrics")
        page.go_back()  # the run's overview, then the runs table: its breadcrumb
        page.go_back()
        settle(4)
        page.get_by_role("link", name="Experiments").first.click()
        settle()
        page.get_by_role("link", name="optimizer_learning_rates_optuna").first.click()
        settle(5)
        close_assistant()
        pick_view()
        shot("11-optuna-view", "the Optuna experiment in the saved view")
        rows = expand_newest()
        shot("12-optuna-expanded", f"{rows} rows after expanding the search")
        show("CHART", 6)
        shot("13-optuna-charts", "the search's charts")
        show("TABLE")
        tick(rows)
        page.get_by_role("button", name="Compare").first.click()
        settle(6)
        shot("14-optuna-compare", f"the compare page of its {rows - 1} trials")
        browser.close()


if __name__ == "__main__":
    main()
