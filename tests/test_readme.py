"""Every command and Python snippet of README.md, run as written on a fresh store, in
README order, each checked against what the README says it does.

The commands run through bash with the project's virtualenv first on PATH, so `uv run X`
runs as `X` (the same executables `uv run` would start); placeholders (RUN_ID,
PARENT_RUN_ID, SWEEP_PARENT_RUN_ID) are filled from the runs the README's own commands
made. Servers the README starts (`mlflow ui`, `mlflow models serve`) run in the
background for the commands after them and are stopped at the end. A README command
without an entry in EXPECT (or SKIP, with the reason) fails the test: add one.

Marked ``readme`` (select with -m readme) and ``slow``; all cases run in one worker,
in order (they build on each other).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, cli_environment
from mlflow import MlflowClient

pytestmark = [pytest.mark.slow, pytest.mark.readme, pytest.mark.xdist_group("readme")]

BIN = REPO / ".venv" / "bin"
PLACEHOLDERS = ("SWEEP_PARENT_RUN_ID", "PARENT_RUN_ID", "RUN_ID")


@dataclass
class Snippet:
    kind: str  # "bash", "python" or "file" (a YAML file the README shows: its path first)
    text: str  # a bash command (continuations joined, comment kept) or a Python block
    output: str | None = None  # the README's sample output that follows it, if any

    @property
    def key(self) -> str:
        """The command without its comment (a Python block: its first line)."""
        if self.kind == "python":
            lines = self.text.strip().splitlines()
            return f"{lines[0]} ...{lines[-1][:20]}"
        if self.kind == "file":
            return f"file {self.path}"
        return re.sub(r"\s+#.*$", "", self.text.removeprefix("$ ")).strip()

    @property
    def path(self) -> str:
        """A file snippet's path: its first line, ``# PATH: what it is``."""
        return self.text.splitlines()[0].removeprefix("# ").split(":", 1)[0]


def readme_snippets() -> list[Snippet]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found: list[Snippet] = []
    block_start = 0  # the first command of the last block: a sample output belongs to it
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
        if lang == "python":
            found.append(Snippet("python", body))
            continue
        if lang == "yaml":
            found.append(Snippet("file", body))
            continue
        if lang == "":  # a sample of output: the first line may be the command ($ ...)
            lines = body.strip("\n").splitlines()
            if lines[0].startswith("$ "):
                found.append(Snippet("bash", lines[0], "\n".join(lines[1:])))
            else:
                found[block_start].output = body.strip("\n")
            continue
        block_start = len(found)
        command = ""
        for line in body.splitlines():
            line = line.strip()
            if command:  # a continuation
                command = command[:-1].rstrip() + " " + line
            elif line and not line.startswith("#"):
                command = line
            if command and not command.endswith("\\"):
                found.append(Snippet("bash", command))
                command = ""
    return found


class Workspace:
    """The fresh folder the README's commands run in, the ids they made, the servers
    they started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ids: dict[str, str] = {}
        self.servers: list[subprocess.Popen] = []

    @property
    def store(self) -> MlflowClient:
        return MlflowClient(f"sqlite:///{self.root}/outputs/mlflow.db")

    def fill(self, text: str, quote: bool = False) -> str:
        """The placeholders replaced by the ids (in Python, as string literals)."""
        for name in PLACEHOLDERS:
            if name in text:
                text = text.replace(name, repr(self.ids[name]) if quote else self.ids[name])
        return text.replace("/path/to/rnnlab", str(REPO))

    def env(self) -> dict[str, str]:
        env = cli_environment()
        env["PATH"] = f"{BIN}:{env['PATH']}"
        return env

    def shell(
        self, command: str, timeout: float = 600, uv: bool = False
    ) -> subprocess.CompletedProcess:
        """The command in the workspace; ``uv``: through uv itself (a project of the
        README's own, not this checkout's environment)."""
        command = self.fill(command)
        env = self.env()
        if uv:
            env.pop("VIRTUAL_ENV", None)  # (uv run pytest's environment is not myproj's)
        else:
            command = command.replace("uv run ", "")
        return subprocess.run(
            ["bash", "-c", command],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            encoding="utf-8",
        )

    def background(self, command: str, port: int) -> None:
        if not port_free(port):
            pytest.skip(f"port {port}, which the README's command uses, is taken here")
        command = self.fill(command).replace("uv run ", "")
        proc = subprocess.Popen(
            ["bash", "-c", command],  # a session of its own: stop() kills the group
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.servers.append(proc)
        deadline = time.monotonic() + 120
        while port_free(port):
            assert proc.poll() is None, f"{command} exited {proc.returncode}"
            assert time.monotonic() < deadline, f"{command} did not listen on {port}"
            time.sleep(0.3)

    def stop(self) -> None:
        for proc in self.servers:
            with_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with_group(proc, signal.SIGKILL)
                proc.wait()


def with_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


# --- what each README command should do -------------------------------------------------


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.stdout


def default_run(ws: Workspace, s: Snippet) -> None:
    out = ok(ws.shell(s.text)).splitlines()
    sample = s.output.splitlines()
    assert out[:4] == sample[:4]  # the lab's lines, exactly as the README prints them
    m = re.fullmatch(r"MLflow run ([0-9a-f]{32}) \(experiment 1\) in sqlite:///(.*)", out[4])
    assert m and m.group(2) == f"{ws.root}/outputs/mlflow.db", out[4]
    assert len(out) == 7
    ws.ids["RUN_ID"] = m.group(1)
    run_link = sample[5].replace("3f0c...", m.group(1))
    assert out[5:] == [run_link, sample[6]]  # the UI links, as the README prints them


def own_project(ws: Workspace, s: Snippet) -> None:
    ok(ws.shell(s.text, uv=True))
    assert str(REPO) in (ws.root / "myproj" / "pyproject.toml").read_text(encoding="utf-8")


def in_own_project(expected: str) -> Callable[[Workspace, Snippet], None]:
    def check(ws: Workspace, s: Snippet) -> None:
        out = ok(ws.shell(s.text, uv=True))
        assert expected in out, out[-3000:]
        assert (ws.root / "myproj" / "outputs" / "mlflow.db").is_file()  # myproj's own store
        store = MlflowClient(f"sqlite:///{ws.root}/myproj/outputs/mlflow.db")
        for run in store.search_runs([e.experiment_id for e in store.search_experiments()]):
            assert run.info.status == "FINISHED"
            assert run.data.tags["version.rnnlab"] == "0.1.0"
            assert "git_commit" not in run.data.tags  # installed, not rnnlab's checkout

    return check


def a_file(ws: Workspace, s: Snippet) -> None:
    path = ws.root / s.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(s.text, encoding="utf-8")


def mlflow_ui(ws: Workspace, s: Snippet) -> None:
    ws.background(s.text, 5000)
    found = json.loads(
        get("http://127.0.0.1:5000/api/2.0/mlflow/experiments/search?max_results=50")
    )
    assert "rnnlab" in {e["name"] for e in found["experiments"]}
    assert "<html" in get("http://127.0.0.1:5000/").lower()


def figures_in(folder: str) -> Callable[[Workspace, Snippet], None]:
    def check(ws: Workspace, s: Snippet) -> None:
        out = ok(ws.shell(s.text))
        where = ws.root / ws.fill(folder)
        drawn = sorted(p.name for p in where.glob("*.png"))
        assert len(drawn) == 5 and len(out.splitlines()) == 5, (drawn, out)

    return check


def prints(*expected: str) -> Callable[[Workspace, Snippet], None]:
    def check(ws: Workspace, s: Snippet) -> None:
        out = ok(ws.shell(s.text))
        for part in expected:
            assert ws.fill(part) in out, (part, out[-3000:])

    return check


def custom_start(ws: Workspace, s: Snippet) -> None:
    prints("after 137 iterations (converged)")(ws, s)
    (run,) = ws.store.search_runs(["1"], max_results=1)  # the newest
    assert run.info.run_name == "rprop-(1.5, 0.5)" and run.data.tags["init"] == "custom"
    assert run.data.tags["status"] == "converged"


def svg_run(ws: Workspace, s: Snippet) -> None:
    ok(ws.shell(s.text))
    client = ws.store
    (run,) = client.search_runs(["1"], "params.`data.recipe` = 'binary'")
    assert run.data.params["data.seq_len"] == "10"
    arts = [f.path for f in client.list_artifacts(run.info.run_id, "figures")]
    assert arts and all(a.endswith(".svg") for a in arts)


def my_study(ws: Workspace, s: Snippet) -> None:
    ok(ws.shell(s.text))
    exp = ws.store.get_experiment_by_name("my-study")
    assert exp is not None and len(ws.store.search_runs([exp.experiment_id])) == 1


def refused(ws: Workspace, s: Snippet) -> None:
    before = len(ws.store.search_runs(["1"]))
    proc = ws.shell(s.key)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == s.output.strip()  # the README's line, exactly
    assert len(ws.store.search_runs(["1"])) == before


SWEEP_COUNTS = "14 jobs, 11 finished, 3 diverged, 0 failed"


def compare_starts(ws: Workspace, s: Snippet) -> None:
    prints(SWEEP_COUNTS)(ws, s)
    if "PARENT_RUN_ID" not in ws.ids:  # the first: the parent the README's ids stand for
        client = ws.store
        exp = client.get_experiment_by_name("compare_starts")
        (parent,) = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")
        ws.ids["PARENT_RUN_ID"] = ws.ids["SWEEP_PARENT_RUN_ID"] = parent.info.run_id


def rerun_sweep(ws: Workspace, s: Snippet) -> None:
    out = ok(ws.shell(s.text))
    first = out.splitlines()[0]
    parent = ws.ids["PARENT_RUN_ID"]
    assert re.match(rf"Rerun of sweep {parent}: 14 jobs; MLflow parent run [0-9a-f]{{32}}", first)
    assert len([line for line in out.splitlines() if line.startswith("[job ")]) == 14
    assert SWEEP_COUNTS in out


def api_block(ws: Workspace, s: Snippet) -> None:
    out = ok(python(ws, s.text)).splitlines()
    assert re.match(r"[0-9a-f]{32} \S+ \S+ \[", out[0])  # id, final loss, final wx, losses
    assert len(out) == 1 + 2 + 14  # the table: two header lines (columns, index) and 14 runs
    assert sum("(diverged)" in line for line in out[3:]) == 3  # the sweep's diverged runs


def model_block(ws: Workspace, s: Snippet) -> None:
    out = ok(python(ws, s.text)).strip().splitlines()
    run = ws.store.get_run(ws.ids["RUN_ID"])
    wx, wrec = run.data.metrics["final_wx"], run.data.metrics["final_wrec"]
    x = np.array([0.66, 0.33, 0.33, 0.66, 1.0] * 4)  # the README's input: 20 steps
    expected = wx * np.sum(wrec ** np.arange(len(x) - 1, -1, -1) * x)  # y = wx sum wrec^(T-k) x_k
    got = float(re.findall(r"[-\d.e+]+", out[-1])[0])
    assert np.isclose(got, expected, rtol=1e-6), (out, expected)
    assert abs(got - x.sum()) < 0.02 * x.sum()  # "within a few percent" of the sum, as it says


def python(ws: Workspace, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "python"), "-c", ws.fill(code, quote=True)],
        cwd=ws.root,
        env=ws.env(),
        capture_output=True,
        text=True,
        timeout=300,
        encoding="utf-8",
    )


def models_serve(ws: Workspace, s: Snippet) -> None:
    ws.background(s.text, 5001)
    assert get("http://127.0.0.1:5001/ping").strip() in ("", "\n")


def invocations(ws: Workspace, s: Snippet) -> None:
    out = ok(ws.shell(s.text))
    predictions = json.loads(out)["predictions"]
    assert len(predictions) == 1 and np.isfinite(np.ravel(predictions)).all()
    assert abs(np.ravel(predictions)[0] - 11.92) < 0.02 * 11.92  # the test sequence's sum


EXPECT: dict[str, Callable[[Workspace, Snippet], None]] = {
    "uv run rnnlab": default_run,
    "uv init myproj": lambda ws, s: ok(ws.shell(s.text, uv=True)),
    "uv add --project myproj /path/to/rnnlab": own_project,
    "cd myproj && uv run rnnlab": in_own_project("Final loss 0.111257 after 500 iterations"),
    "cd myproj && uv run rnnlab --version": in_own_project("rnnlab 0.1.0 (Hydra 1.3.8, MLflow "),
    "file myproj/myconf/init/mine.yaml": a_file,
    "cd myproj && uv run rnnlab --config-dir myconf init=mine": in_own_project("MLflow run "),
    "cd myproj && uv run rnnlab --cfg job --package optimizer optimizer=adam": in_own_project(
        "name: adam"
    ),
    "uv run mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db": mlflow_ui,
    "uv run rnnlab-plot RUN_ID": figures_in("outputs/plots/RUN_ID"),
    "uv run rnnlab-plot RUN_ID --out outputs/figs --tracking-uri http://127.0.0.1:5000": (
        figures_in("outputs/figs")
    ),
    "uv run rnnlab optimizer=gd init=explode": prints("diverged at iteration"),
    "uv run rnnlab optimizer.eta_minus=0.3 iterations=200": prints("after 200 iterations"),
    "uv run rnnlab init.wx=1.5 init.wrec=0.5 tolerance=0.1": custom_start,
    "uv run rnnlab data=binary data.seq_len=10 plots.format=svg": svg_run,
    "uv run rnnlab tracking.experiment=my-study": my_study,
    "uv run rnnlab optimizer.eta_minus=1.5": refused,
    "uv run rnnlab -m experiment=compare_starts": compare_starts,
    "uv run rnnlab -m experiment=compare_starts hydra/launcher=joblib hydra.launcher.n_jobs=2": (
        compare_starts
    ),
    "uv run rnnlab -m experiment=compare_starts hydra/launcher=ray": compare_starts,
    "uv run rnnlab -m hydra/sweeper=optuna hydra.sweeper.n_trials=20 "
    "hydra.sweeper.sampler.seed=1 optimizer=adam "
    "'optimizer.learning_rate=tag(log,interval(0.0001,1))' init=steady": prints(
        "20 jobs, ", "Best: #", " learning_rate=", " adam-steady, final loss"
    ),
    "uv run rnnlab -m experiment=optimizer_learning_rates_optuna optimizer=adam": prints(
        "20 jobs, ", "Best: #14 learning_rate=0.02564 adam-steady"
    ),
    "uv run rnnlab -m experiment=gd_learning_rates": prints("Best learning rate: 1e-05"),
    "uv run rnnlab -m experiment=compare_starts gd_learning_rate=1e-05": compare_starts,
    # the README says conf/config.yaml's rates are this study's result: it checks that
    "uv run rnnlab -m experiment=optimizer_learning_rates": prints(
        "Feed them back: uv run rnnlab -m experiment=compare_optimizers gd_learning_rate=1e-05 "
        "gd_clip_learning_rate=0.01 momentum_learning_rate=1e-06 adam_learning_rate=0.01"
    ),
    "uv run rnnlab -m experiment=compare_optimizers": prints("49 jobs, 43 finished, 6 diverged"),
    "uv run rnnlab experiment=basin_map_optimizers": prints("adam_fraction_converged"),
    "uv run rnnlab experiment=basin_map": prints("rprop_fraction_converged"),
    "uv run rnnlab experiment=basin_map basin.resolution=512 iterations=300 "
    "gd_learning_rate=3e-5": prints("gd_fraction_converged"),
    "uv run rnnlab-rerun RUN_ID": prints("Final loss 0.111257 after 500 iterations (completed)."),
    "uv run rnnlab-rerun RUN_ID optimizer=gd iterations=300": prints("diverged at iteration"),
    "uv run rnnlab-rerun SWEEP_PARENT_RUN_ID": rerun_sweep,
    "uv run rnnlab-rerun SWEEP_PARENT_RUN_ID --resume": prints(
        "all 14 jobs finished; nothing to resume"
    ),
    "uv run rnnlab-rerun RUN_ID --tracking-uri http://127.0.0.1:5000": prints(
        "Final loss 0.111257 after 500 iterations (completed)."
    ),
    'import rnnlab ...print(table[["run_na': api_block,
    "import mlflow ...print(model.predict(": model_block,
    "MLFLOW_TRACKING_URI=sqlite:///outputs/mlflow.db uv run mlflow models serve -m "
    "runs:/RUN_ID/model --env-manager local --port 5001": models_serve,
    "curl -s http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' -d "
    '\'{"inputs": [[0.66,0.33,0.33,0.66,1.0,0.66,0.33,0.33,0.66,1.0,0.66,0.33,0.33,0.66,1.0,'
    "0.66,0.33,0.33,0.66,1.0]]}'": invocations,
    "uv run rnnlab-doctor": prints("no orphaned runs"),
    "uv run rnnlab-doctor --repair": prints("no orphaned runs"),
}

# Commands the README shows that this test does not run, and why.
TEMPLATE = "a template for a real deployment (SERVER, HEAD, USER: your machines)"
TEAM = "the team stack: tests/test_team_stack.py runs these commands (root, namespace)"
SKIP = {
    "uv run pytest": "this test suite itself",
    "pip install /path/to/rnnlab/dist/rnnlab-0.1.0-py3-none-any.whl": (
        "tests/test_install.py installs the wheel into fresh environments (the lock's versions)"
    ),
    "uv run rnnlab -m experiment=compare_starts hydra/launcher=ray "
    "hydra.launcher.ray.init.address=HEAD:6379 tracking=server": TEMPLATE,
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false uv run mlflow server --host 0.0.0.0 --port 5000 "
    "--backend-store-uri postgresql+psycopg://USER:PASSWORD@DBHOST:5432/mlflow "
    "--artifacts-destination /srv/mlflow-artifacts --workers 2": TEMPLATE,
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV=0 uv run ray start --head --port 6379": TEMPLATE,
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV=0 uv run ray start --address HEAD:6379": TEMPLATE,
    "export MLFLOW_TRACKING_URI=http://SERVER:5000": TEMPLATE,
    'eval "$(scripts/team_stack.sh start)"': TEAM,
    "scripts/team_stack.sh exec uv run rnnlab -m experiment=compare_starts hydra/launcher=ray "
    "hydra.launcher.ray.init.address=$RAY_ADDRESS tracking=server": TEAM,
    "uv run rnnlab tracking=server": TEAM,
    "scripts/team_stack.sh status": TEAM,
    "scripts/team_stack.sh stop": TEAM,
}

SNIPPETS = readme_snippets()


def test_every_readme_command_has_a_check():
    keys = [s.key for s in SNIPPETS]
    missing = [k for k in keys if k not in EXPECT and k not in SKIP]
    assert not missing, f"README commands with no check in tests/test_readme.py: {missing}"
    stale = [k for k in [*EXPECT, *SKIP] if k not in keys]
    assert not stale, f"checks for commands the README no longer has: {stale}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("readme"))
    yield ws
    ws.stop()


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"{i:02d}" for i in range(len(SNIPPETS))])
def test_readme_snippet_does_what_it_says(workspace, snippet):
    if snippet.key in SKIP:
        pytest.skip(SKIP[snippet.key])
    assert snippet.key in EXPECT, "no check for this README command"
    EXPECT[snippet.key](workspace, snippet)
