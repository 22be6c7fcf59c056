"""Every override Hydra accepts, in a sweep and in a rerun, or refused in one line before
anything exists (issue 30, situations 1, 5, 7 and 15): Hydra's prefixes (``+``, ``++``,
``~``), its sweeps (lists, ``choice``, ``range``), quoted and escaped values,
interpolations, numbers no float holds, run ids that cannot be ids, Hydra's modes given
together, config folders that are not YAML or not UTF-8; the Python API's errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_environment, new_store, run_cli
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
from test_user_world import one_error_line

import rnnlab
from rnnlab.config import ConfigError

TINY = ["iterations=20", "plots=none", "tracking.log_model=false"]
# MLflow's rule for a param's or tag's name
MLFLOW_KEY = re.compile(r"[\w\-. :/]+")


def store(tmp_path: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{new_store(tmp_path / 'outputs' / 'mlflow.db')}")


def every_run(client: MlflowClient) -> list:
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(ids, run_view_type=ViewType.ALL) if ids else []


def sweep_parent(client: MlflowClient, before: set[str] = frozenset()):
    (p,) = [r for r in every_run(client) if r.data.tags.get("sweep") == "true"
            and r.info.run_id not in before]  # fmt: skip
    kids = [r for r in every_run(client) if r.data.tags.get("mlflow.parentRunId") == p.info.run_id]
    return p, kids


GRAMMAR = {
    # a key of the user's own, added (the README's +repeat=1,2,3)
    "append": (["+repeat=1,2"], "repeat"),
    # a key set whether or not the config has it
    "force": (["++iterations=20,30"], "iterations"),
    "choice": (["iterations=choice(20,30)"], "iterations"),
    "range": (["+seed_offset=range(0,2)"], "seed_offset"),
    # quoted values holding the sweep's separator, and Hydra's escaping of it
    "quoted": (["+note='a,b','c d'"], "note"),
    "escaped": (["+note=a\\,b,c"], "note"),
    # an interpolation of another key, swept beside the key it names
    "interpolation": (["init.wx=${init.wrec},1.5"], "init.wx"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(GRAMMAR))
def test_every_sweep_grammar_records_valid_names_and_reruns(tmp_path, case):
    overrides, key = GRAMMAR[case]
    client = store(tmp_path)
    rest = [o for o in TINY if not o.startswith(key + "=")]  # a later value ends a sweep
    proc = run_cli(["-m", *overrides, "init=steady", *rest], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == "" and "Traceback" not in proc.stdout
    p, kids = sweep_parent(client)
    assert p.info.status == "FINISHED" and sorted(k.info.status for k in kids) == ["FINISHED"] * 2
    # the space as the parent's param, each value as the child's, under the config key
    assert f"sweep.{key}" in p.data.params, p.data.params
    chosen = {k.data.params[f"choice.{key}"] for k in kids}
    assert len(chosen) == 2 and all(v.replace("\\", "").strip("'") for v in chosen), chosen
    for run in [p, *kids]:
        assert all(MLFLOW_KEY.fullmatch(name) for name in run.data.params), run.data.params
    if case == "interpolation":  # resolved in the job as Hydra resolves it
        wx = sorted(float(k.data.params["init.wx"]) for k in kids)
        assert wx == sorted([1.5, float(kids[0].data.params["init.wrec"])])
    # the sweep reruns: the same jobs, the same results
    again = run_cli([p.info.run_id], tmp_path, script="rnnlab-rerun")
    assert again.returncode == 0, again.stdout + again.stderr
    p2, kids2 = sweep_parent(client, {p.info.run_id})
    assert p2.data.tags["rerun_of"] == p.info.run_id
    loss = sorted(float(k.data.metrics["final_loss"]) for k in kids)
    assert sorted(float(k.data.metrics["final_loss"]) for k in kids2) == loss
    # and so does one of its children, alone
    child = run_cli([kids[0].info.run_id], tmp_path, script="rnnlab-rerun")
    assert child.returncode == 0, child.stdout + child.stderr


@pytest.mark.slow
def test_a_run_with_an_interpolation_reruns_to_the_same_numbers(tmp_path):
    client = store(tmp_path)
    proc = run_cli(["init.wx=${init.wrec}", *TINY], tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = every_run(client)
    assert run.data.params["init.wx"] == run.data.params["init.wrec"]
    again = run_cli([run.info.run_id], tmp_path, script="rnnlab-rerun")
    assert again.returncode == 0, again.stdout + again.stderr
    rerun = next(r for r in every_run(client) if r.data.tags.get("rerun_of") == run.info.run_id)
    assert rerun.data.metrics["final_loss"] == run.data.metrics["final_loss"]


RESOLVERS = ["iterations=${oc.env:HOME}", "tracking.description=${now:%H}", "+x=$\\{oc.env:X\\}"]


@pytest.mark.slow
@pytest.mark.parametrize("override", RESOLVERS)
def test_an_override_that_calls_a_resolver_is_refused_before_anything_exists(tmp_path, override):
    proc = run_cli([override, *TINY], tmp_path)
    assert "calls a resolver" in one_error_line(proc)
    sweep = run_cli(["-m", override, "init=steady,explode", *TINY], tmp_path)
    assert "calls a resolver" in one_error_line(sweep)
    assert not (tmp_path / "outputs").exists()
    with pytest.raises(ConfigError, match="calls a resolver"):
        rnnlab.run([override, *TINY, f"tracking.uri=sqlite:///{tmp_path}/api.db"])
    assert not (tmp_path / "api.db").exists()


@pytest.mark.slow
def test_a_logged_override_edited_to_call_a_resolver_is_refused_by_the_rerun(tmp_path):
    client = store(tmp_path)
    assert run_cli(TINY, tmp_path).returncode == 0
    (run,) = every_run(client)
    logged = next(
        (tmp_path / "outputs").rglob(f"{run.info.run_id}/artifacts/config/overrides.yaml")
    )
    logged.write_text(
        logged.read_text(encoding="utf-8") + "- init.name=${oc.env:HOME}\n", encoding="utf-8"
    )
    proc = run_cli([run.info.run_id], tmp_path, script="rnnlab-rerun")
    assert "calls a resolver" in one_error_line(proc, "rnnlab-rerun")
    assert len(every_run(client)) == 1


@pytest.mark.slow
@pytest.mark.parametrize("key", ["iterations", "tracking.description", "optimizer"])
def test_deleting_a_key_of_the_schema_is_one_line(tmp_path, key):
    for args in ([f"~{key}"], ["-m", f"~{key}", "init=steady,explode"]):
        line = one_error_line(run_cli([*args, *TINY], tmp_path))
        assert f"~{key} cannot be applied: {key} is a key of rnnlab's config schema" in line
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_hydras_modes_given_together_are_one_line(tmp_path):
    line = one_error_line(run_cli(["-m", "--cfg", "job", "experiment=compare_starts"], tmp_path))
    assert line == (
        "rnnlab: error: -m/--multirun and --cfg job cannot be given together: Hydra does "
        "one of --run, -m/--multirun, --cfg, --info and --shell-completion at a time"
    )
    assert not (tmp_path / "outputs").exists()


HUGE = "9" * 5000


@pytest.mark.slow
@pytest.mark.parametrize("value", [HUGE, "9" * 400, f"[1,{'9' * 400}]"])
def test_a_number_no_float_holds_is_one_line_and_short(tmp_path, value):
    for args in ([f"init.wx={value}"], ["-m", f"init.wx={value}", "init=steady,explode"]):
        line = one_error_line(run_cli([*args, *TINY], tmp_path))
        assert "rnnlab's numbers are floats, at most 1.8e308" in line and len(line) < 300
    assert not (tmp_path / "outputs").exists()
    with pytest.raises(ConfigError, match=r"at most 1\.8e308"):
        rnnlab.run([f"init.wx={value}", *TINY, f"tracking.uri=sqlite:///{tmp_path}/api.db"])


@pytest.mark.slow
@pytest.mark.parametrize("script", ["rnnlab-rerun", "rnnlab-plot"])
def test_a_run_id_that_cannot_be_one_is_refused_at_once(tmp_path, script):
    store(tmp_path)
    proc = run_cli(["a" * 100_000], tmp_path, script=script, timeout=60)
    line = one_error_line(proc, script)
    assert "(100,000 characters)' is not a run id" in line and len(line) < 250
    with pytest.raises(LookupError, match="is not a run id"):
        rnnlab.load("a" * 100_000, tracking_uri=f"sqlite:///{tmp_path}/outputs/mlflow.db")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "args", "why"),
    [
        ("rnnlab-plot", [], "the following arguments are required: run_id"),
        ("rnnlab-doctor", ["--bogus"], "unrecognized arguments: --bogus"),
        ("rnnlab-rerun", ["x", "--resume", "iterations=3"], "--resume runs the sweep's jobs"),
    ],
)
def test_a_commands_argument_mistake_is_one_line(tmp_path, script, args, why):
    line = one_error_line(run_cli(args, tmp_path, script=script), script)
    assert why in line and line.endswith(f"(see {script} --help)")


BROKEN = {
    "yaml": (b"defaults: [/schema/init@_here_, _self_]\nname: mine\nwx: [1,\n", "not valid YAML"),
    "not utf-8": (b"defaults: [/schema/init@_here_, _self_]\nname: m\xff\xfene\n", "not UTF-8"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_config_folder_file_that_is_not_yaml_or_not_utf8_is_one_line(tmp_path, kind):
    content, why = BROKEN[kind]
    (tmp_path / "myconf" / "init").mkdir(parents=True)
    (tmp_path / "myconf" / "init" / "mine.yaml").write_bytes(content)
    client = store(tmp_path)
    for args in (["init=mine"], ["-m", "init=mine,steady"]):
        line = one_error_line(run_cli(["--config-dir", "myconf", *args, *TINY], tmp_path))
        assert "mine.yaml" in line and why in line, line
    assert [r.info.status for r in every_run(client) if r.info.status == "RUNNING"] == []
    assert not [r for r in every_run(client) if r.data.tags.get("sweep") != "true"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        (["iterations=abc"], "could not be converted to Integer"),
        (["optimizer=nosuch"], "optimizer=nosuch is not an option of group 'optimizer'"),
        (["bad override"], "cannot read the override 'bad override'"),
        (["init.wx=${nope}"], "Interpolation key 'nope' not found"),
        (["~iterations"], "~iterations cannot be applied"),
    ],
)
def test_the_api_raises_config_error_with_one_line(tmp_path, overrides, why):
    with pytest.raises(ConfigError) as caught:
        rnnlab.run([*overrides, *TINY, f"tracking.uri=sqlite:///{tmp_path}/api.db"])
    assert why in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "api.db").exists()


@pytest.mark.slow
def test_a_runs_source_runs_it_again_in_a_shell_as_written(tmp_path):
    """A value Hydra needs quoted (an ``=`` or ``&`` in it: hydra#1577, hydra#2857) is
    quoted in the run's Source, so that pasting it into a shell makes the same run."""
    client = store(tmp_path)
    name = "pink & green"
    proc = run_cli([*TINY, f'tracking.experiment="{name}"', '+note="epoch=9-step=8"'], tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = every_run(client)
    source = run.data.tags["mlflow.source.name"]
    bin_dir = Path(sys.executable).parent
    again = subprocess.run(["bash", "-c", source], cwd=tmp_path, capture_output=True,
                           encoding="utf-8", env={**cli_environment(),
                                                  "PATH": f"{bin_dir}:/usr/bin:/bin"})  # fmt: skip
    assert again.returncode == 0, (source, again.stderr)
    runs = every_run(client)
    assert len(runs) == 2 and {client.get_experiment(r.info.experiment_id).name for r in runs} == {
        name
    }
    assert runs[0].data.metrics["final_loss"] == runs[1].data.metrics["final_loss"]


def test_a_childs_overrides_are_read_back_from_its_shell_quoted_source():
    """A Source is ``shlex.join``-ed: a value with a space is one override again."""
    import shlex

    from rnnlab.sweeps.plan import source_overrides

    source = shlex.join(["rnnlab", "tracking.description=two words", "init=steady"])
    assert source_overrides(source) == ["tracking.description=two words", "init=steady"]
    assert source_overrides("rnnlab 'unclosed x=1") == ["'unclosed", "x=1"]  # not rnnlab's
