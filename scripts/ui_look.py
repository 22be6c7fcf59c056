"""Look at rnnlab's runs the way a user does: in the MLflow UI, in a real headless browser.

    uv run --group browser python scripts/ui_look.py [--out outputs/ui-look] [--keep]

On a fresh store in a temporary folder it runs the README's three commands
(``rnnlab``, ``rnnlab -m experiment=compare_starts``, ``rnnlab experiment=basin_map``),
starts ``mlflow server`` on a free loopback port, and saves screenshots (PNG) of:

    01-experiments.png        the experiment list (descriptions)
    02-runs-table.png         compare_starts: the runs table, sweep parent expanded
    03-chart-view.png         compare_starts: the chart view of its runs
    04-parent-overview.png    the sweep parent's overview (description, params, metrics)
    05-parent-figures.png     the parent's artifacts: the comparison figure
    06-child-metrics.png      a diverged child's metric charts
    07-child-overview.png     a finished child's overview (source, user, description)
    08-compare-14.png         the compare view of all 14 children
    09-basin-map.png          the basin-map run's overview
    10-single-run.png         the default run's overview

Needs Debian's ``chromium`` (``apt-get install chromium``) and Playwright from PyPI (the
``browser`` dependency group); Playwright's own browser download is not used.
"""

from __future__ import annotations

import argparse
import json
import os
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
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
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


def api(url: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"{url}/api/2.0/mlflow/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


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
        run([str(BIN / "rnnlab")], work)
        run([str(BIN / "rnnlab"), "-m", "experiment=compare_starts"], work)
        run([str(BIN / "rnnlab"), "experiment=basin_map"], work)
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


def look(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    exps = {
        e["name"]: e["experiment_id"]
        for e in api(url, "experiments/search", {"max_results": 100})["experiments"]
    }
    cs = exps["compare_starts"]
    runs = api(url, "runs/search", {"experiment_ids": [cs], "max_results": 100})["runs"]

    def tags(r: dict) -> dict:
        return {t["key"]: t["value"] for t in r["data"].get("tags", [])}

    parent = next(r for r in runs if tags(r).get("sweep") == "true")
    children = [r for r in runs if tags(r).get("mlflow.parentRunId") == parent["info"]["run_id"]]
    diverged = next(r for r in children if "(diverged)" in r["info"]["run_name"])
    finished = next(r for r in children if "(diverged)" not in r["info"]["run_name"])
    single = api(url, "runs/search", {"experiment_ids": [exps["rnnlab"]]})["runs"][0]
    basin = api(url, "runs/search", {"experiment_ids": [exps["basin_map"]]})["runs"][0]
    ml = "workflowType=machine_learning"
    child_ids = json.dumps([c["info"]["run_id"] for c in children])
    pages = [
        ("01-experiments", f"#/experiments?{ml}"),
        ("02-runs-table", f"#/experiments/{cs}/runs?{ml}"),
        ("03-chart-view", f"#/experiments/{cs}/runs?{ml}&compareRunsMode=CHART"),
        ("04-parent-overview", f"#/experiments/{cs}/runs/{parent['info']['run_id']}?{ml}"),
        (
            "05-parent-figures",
            f"#/experiments/{cs}/runs/{parent['info']['run_id']}/artifacts/"
            f"figures/sweep_trajectories.png?{ml}",
        ),
        (
            "06-child-metrics",
            f"#/experiments/{cs}/runs/{diverged['info']['run_id']}/model-metrics?{ml}",
        ),
        ("07-child-overview", f"#/experiments/{cs}/runs/{finished['info']['run_id']}?{ml}"),
        ("08-compare-14", f'#/compare-runs?runs={child_ids}&experiments=["{cs}"]&{ml}'),
        (
            "09-basin-map",
            f"#/experiments/{exps['basin_map']}/runs/{basin['info']['run_id']}?{ml}",
        ),
        ("10-single-run", f"#/experiments/{exps['rnnlab']}/runs/{single['info']['run_id']}?{ml}"),
    ]
    expand = "02-runs-table", "03-chart-view"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        for name, route in pages:
            page.goto(f"{url}/{route}", wait_until="load")
            time.sleep(4)  # the UI keeps polling; its tables and charts render within this
            close = page.locator('button[aria-label="Close"]')
            if close.count():  # the assistant's side panel: more room for the runs
                close.first.click()
                time.sleep(0.5)
            if name in expand:  # the sweep parent's children
                page.locator('button[data-component-id*="runnamecellrenderer"]').first.click()
                time.sleep(2)
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            print(f"{name}: {page.url}")
        browser.close()


if __name__ == "__main__":
    main()
