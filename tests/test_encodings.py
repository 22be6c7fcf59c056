"""Locale-proof (issue 30): every text file rnnlab reads or writes names its encoding, and
the commands work under a locale whose encoding is ASCII (``LC_ALL=C PYTHONUTF8=0``: no
UTF-8 coercion, no UTF-8 mode), with configs and values outside ASCII."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_environment, run_cli
from mlflow.tracking import MlflowClient

SRC = Path(__file__).resolve().parents[1] / "src"
TEXT_CALLS = {"open", "read_text", "write_text", "savetxt", "loadtxt", "TextIOWrapper", "fdopen"}
NOT_FILES = {"parent.open", "distribution.read_text", "os.open"}  # sweep parent; metadata; fds


def _name(func: ast.expr) -> tuple[str, str]:
    if isinstance(func, ast.Name):
        return func.id, func.id
    if isinstance(func, ast.Attribute):
        owner = func.value
        if isinstance(owner, ast.Call):
            owner = owner.func
        base = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
        return func.attr, f"{base}.{func.attr}"
    return "", ""


def _binary(call: ast.Call) -> bool:
    modes = [a for a in call.args[1:2]] + [k.value for k in call.keywords if k.arg == "mode"]
    return any(isinstance(m, ast.Constant) and "b" in str(m.value) for m in modes)


def text_io_without_encoding(source: str) -> list[int]:
    """Lines of ``source`` that open, read or write text without naming an encoding."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name, qualified = _name(node.func)
        keywords = {k.arg for k in node.keywords}
        if name in TEXT_CALLS and qualified not in NOT_FILES:
            if "encoding" not in keywords and not _binary(node):
                lines.append(node.lineno)
        if keywords & {"text", "universal_newlines"} and "encoding" not in keywords:
            lines.append(node.lineno)  # subprocess output decoded with the locale's codec
    return lines


def test_every_text_file_rnnlab_reads_or_writes_names_its_encoding():
    found = [
        f"{path.relative_to(SRC)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        for line in text_io_without_encoding(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_the_check_finds_text_io_without_an_encoding():
    bad = 'p.read_text()\nopen(f)\nopen(f, "w")\nnp.savetxt(p, a)\nrun(c, text=True)\n'
    good = 'p.read_text(encoding="utf-8")\nopen(f, "rb")\nrun(c, capture_output=True)\n'
    assert text_io_without_encoding(bad) == [1, 2, 3, 4, 5]
    assert text_io_without_encoding(good) == []


def ascii_locale() -> dict[str, str]:
    env = cli_environment()
    env.update(LC_ALL="C", LANG="C", PYTHONUTF8="0")
    env.pop("PYTHONIOENCODING", None)
    probe = "import locale, sys; print(locale.getpreferredencoding(False), sys.flags.utf8_mode)"
    seen = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, encoding="utf-8"
    ).stdout.split()
    assert seen == ["ANSI_X3.4-1968", "0"], seen  # the locale really is ASCII
    return env


UMLAUT = """# @package _global_
# an experiment of the user's own, its description by Igel and H\u00fcsken
tracking:
  experiment: "H\u00fcsken"
  description: "iRprop\u2212 as in Igel and H\u00fcsken (2000): \u03be over (wx, wrec)"
"""


@pytest.mark.slow
def test_a_sweep_with_a_config_outside_ascii_runs_under_an_ascii_locale(tmp_path):
    (tmp_path / "myconf" / "experiment").mkdir(parents=True)
    (tmp_path / "myconf" / "experiment" / "umlaut.yaml").write_text(UMLAUT, encoding="utf-8")
    secret = "http://alice:s3cret@127.0.0.1:1"  # only scrubbed: never contacted
    proc = run_cli(
        [
            "-m",
            "--config-dir",
            "myconf",
            "experiment=umlaut",
            "init=steady,explode",
            "iterations=30",
            "plots=none",
            f"+note={secret}",
        ],
        tmp_path,
        env=ascii_locale(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and proc.stderr == ""
    client = MlflowClient(f"sqlite:///{(tmp_path / 'outputs' / 'mlflow.db').as_posix()}")
    exp = client.get_experiment_by_name("H\u00fcsken")
    assert exp is not None and exp.tags["mlflow.note.content"].startswith("iRprop\u2212 as in")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3  # the parent, 2 children
    # Hydra's own records of the sweep were read and scrubbed (as UTF-8)
    hydra_files = [
        p
        for p in (tmp_path / "outputs").rglob("*.yaml")
        if p.name == "multirun.yaml" or p.parent.name == ".hydra"
    ]
    assert [p.name for p in hydra_files].count("multirun.yaml") == 1 and len(hydra_files) >= 7
    for path in hydra_files:
        assert "s3cret" not in path.read_text(encoding="utf-8"), path


@pytest.mark.slow
def test_the_python_api_reruns_and_loads_under_an_ascii_locale(tmp_path):
    uri = f"sqlite:///{(tmp_path / 'api.db').as_posix()}"
    script = f"""
import rnnlab
done = rnnlab.run(["iterations=20", "plots=none", "tracking.uri={uri}",
                   "tracking.experiment='H\u00fcsken'"])
again = rnnlab.load(done.run_id, tracking_uri="{uri}")
print(again.config["tracking"]["experiment"] == "H\u00fcsken", again.final_loss == done.final_loss)
"""
    (tmp_path / "api.py").write_text(script, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-X", "utf8=0", str(tmp_path / "api.py")],
        cwd=tmp_path,
        env=ascii_locale(),
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"], proc.stdout + proc.stderr
