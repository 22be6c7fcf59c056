"""rnnlab as a package (issue 28): the wheel and the sdist carry conf/ and the sweeper
plugin; the wheel, installed from the lock into a fresh environment outside the checkout,
runs from an empty folder that is a git repository of the user's own, on every Python the
machine has from 3.11 on; what a run records names rnnlab's version, not the user's commit.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, cli_environment
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

VERSION = "0.1.0"


def pythons() -> dict[str, str]:
    """One interpreter per Python minor version >= 3.11 this machine has ("3.12" -> path)."""
    found: dict[str, str] = {}
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3.*")))
    candidates += [shutil.which(f"python3.{m}") or "" for m in range(11, 20)] + [sys.executable]
    for exe in candidates:
        if not exe or not os.access(exe, os.X_OK) or exe.endswith("-config"):
            continue
        try:
            out = subprocess.run(
                [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30, check=True, encoding="utf-8",
            ).stdout.strip()  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            continue
        if tuple(map(int, out.split("."))) >= (3, 11):
            found.setdefault(out, exe)
    return dict(sorted(found.items()))


PYTHONS = pythons()


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The wheel and the sdist, built from this checkout by its build backend."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(["uv", "build", "--out-dir", str(out), str(REPO)], check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    return out


def test_the_wheel_and_the_sdist_carry_the_configs_and_the_plugin(dist):
    (wheel,) = dist.glob("rnnlab-*.whl")
    (sdist,) = dist.glob("rnnlab-*.tar.gz")
    shipped = sorted(str(p.relative_to(REPO)) for p in (REPO / "conf").rglob("*.yaml"))
    assert len(shipped) > 25
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"rnnlab/{p}" for p in shipped} <= names
    assert {
        "hydra_plugins/rnnlab_sweeper/__init__.py",
        "hydra_plugins/rnnlab_sweeper/config.py",
    } <= names
    assert not [n for n in names if "__pycache__" in n or n.startswith("conf/")]
    root = sdist.name.removesuffix(".tar.gz")
    members = set(tarfile.open(sdist).getnames())
    assert {f"{root}/{p}" for p in shipped} <= members
    assert f"{root}/src/hydra_plugins/rnnlab_sweeper/__init__.py" in members
    assert f"{root}/uv.lock" in members


def install(dist: Path, python: str, venv: Path) -> Path:
    """A fresh virtual environment with the wheel and the locked versions of what it needs
    (``uv export`` of uv.lock); returns its bin folder."""
    requirements = venv.parent / "requirements.txt"
    subprocess.run(
        ["uv", "export", "--frozen", "--no-default-groups", "--no-emit-project", "--no-hashes",
         "--project", str(REPO), "-o", str(requirements)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(["uv", "venv", "--python", python, str(venv)], check=True, env=env,
                   capture_output=True, timeout=120)  # fmt: skip
    (wheel,) = dist.glob("rnnlab-*.whl")
    proc = subprocess.run(
        ["uv", "pip", "install", "--python", str(venv / "bin" / "python"),
         "-r", str(requirements), str(wheel)],
        env=env, capture_output=True, text=True, timeout=900, encoding="utf-8",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv / "bin"


class Folder:
    """An empty folder of the user's, a git repository with one commit, where the
    installed commands run (their environment first on PATH, no MLflow/Hydra variables)."""

    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.root, self.bin = root, bin_dir
        root.mkdir()
        for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "mine"]):
            subprocess.run(["git", *args], cwd=root, check=True, env=self.env())
        self.commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                     check=True, encoding="utf-8").stdout.strip()  # fmt: skip

    def env(self) -> dict[str, str]:
        env = cli_environment()
        env.update(PATH=f"{self.bin}:{env['PATH']}", GIT_AUTHOR_NAME="me", GIT_AUTHOR_EMAIL="m@e",
                   GIT_COMMITTER_NAME="me", GIT_COMMITTER_EMAIL="m@e")  # fmt: skip
        env.pop("VIRTUAL_ENV", None)
        return env

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), cwd=self.root, env=self.env(), capture_output=True,
                              text=True, timeout=600, encoding="utf-8")  # fmt: skip
        if ok:
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
            assert "Traceback" not in proc.stdout + proc.stderr
        return proc

    @property
    def store(self) -> MlflowClient:
        return MlflowClient(f"sqlite:///{self.root}/outputs/mlflow.db")

    def runs(self, experiment: str, filter_string: str = "") -> list:
        exp = self.store.get_experiment_by_name(experiment)
        return self.store.search_runs([exp.experiment_id], filter_string) if exp else []


SMOKE_API = """
import rnnlab
result = rnnlab.run(["init=steady", "optimizer=gd", "plots=none"])
again = rnnlab.load(result.run_id)
table = rnnlab.compare([result.run_id, again.run_id])
print(result.run_id, again.final_loss == result.final_loss, len(table))
"""

HYDRA_APP = """
import hydra

@hydra.main(version_base=None, config_name=None)
def main(cfg):
    print("x =", cfg.x)

main()
"""


@pytest.mark.parametrize("version", list(PYTHONS), ids=[f"python{v}" for v in PYTHONS])
def test_the_installed_wheel_runs_from_a_folder_of_the_users(dist, tmp_path, version):
    """Issue 28: pip/uv install of the wheel (not the checkout) gives every command, from
    any folder, the store under that folder; rnnlab's version recorded, no git tags (the
    folder's repository is the user's, not rnnlab's), no lock hash (a plain environment)."""
    bin_dir = install(dist, PYTHONS[version], tmp_path / "env")
    me = Folder(tmp_path / "myproject", bin_dir)

    assert me.run("rnnlab", "--version").stdout.startswith(f"rnnlab {VERSION} (Hydra ")
    assert "--config-dir DIR" in me.run("rnnlab", "--help").stdout
    out = me.run("rnnlab").stdout
    assert "Final loss 0.111257 after 500 iterations (completed)." in out
    (run,) = me.runs("rnnlab")
    tags = run.data.tags
    assert run.info.status == "FINISHED" and tags["version.rnnlab"] == VERSION
    assert tags["version.python"].startswith(version + ".")
    assert "git_commit" not in tags and "mlflow.source.git.commit" not in tags
    assert me.commit not in str(tags) and "uv_lock_sha256" not in tags
    assert (me.root / "outputs" / "mlartifacts").is_dir()

    # the lab's sweep: 14 children under one parent, all FINISHED
    out = me.run("rnnlab", "-m", "experiment=compare_starts").stdout
    assert "14 jobs, 11 finished, 3 diverged, 0 failed" in out
    (parent,) = me.runs("compare_starts", "tags.sweep = 'true'")
    children = me.runs("compare_starts", f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert parent.info.status == "FINISHED" and len(children) == 14
    assert {c.info.status for c in children} == {"FINISHED"}

    # a rerun, redrawn figures, the doctor
    assert "Final loss 0.111257" in me.run("rnnlab-rerun", run.info.run_id).stdout
    me.run("rnnlab-plot", run.info.run_id)
    assert len(list((me.root / "outputs" / "plots" / run.info.run_id).glob("*.png"))) == 5
    assert "no orphaned runs" in me.run("rnnlab-doctor").stdout

    # a start of the user's own, from their folder, and its rerun
    (me.root / "myconf" / "init").mkdir(parents=True)
    (me.root / "myconf" / "init" / "mine.yaml").write_text(
        "defaults: [/schema/init@_here_, _self_]\nname: mine\nwx: 1.5\nwrec: 0.5\n",
        encoding="utf-8",
    )
    me.run("rnnlab", "--config-dir", "myconf", "init=mine", "plots=none")
    (mine,) = me.runs("rnnlab", "tags.init = 'mine'")
    assert mine.info.status == "FINISHED" and mine.data.params["init.wx"] == "1.5"
    me.run("rnnlab-rerun", mine.info.run_id)
    assert len(me.runs("rnnlab", f"tags.rerun_of = '{mine.info.run_id}'")) == 1

    # the Python API
    line = me.run(str(bin_dir / "python"), "-c", SMOKE_API).stdout.split()
    assert line[1:] == ["True", "2"]
    assert me.store.get_run(line[0]).data.tags["version.rnnlab"] == VERSION

    # the sweeper plugin, selectable by any Hydra app of this environment
    (me.root / "app.py").write_text(HYDRA_APP, encoding="utf-8")
    out = me.run(str(bin_dir / "python"), "app.py", "-m", "hydra/sweeper=rnnlab", "+x=1,2").stdout
    assert "x = 1" in out and "x = 2" in out
