"""The private names of Hydra that rnnlab uses, all in ``rnnlab.frameworks`` (issue 29):
each test fails when Hydra changes what rnnlab relies on."""

from __future__ import annotations

import ast
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.singleton import Singleton
from hydra.version import VersionBase

from rnnlab.frameworks import basic_sweeper, build_requirements_map, hydra_restored

SRC = Path(__file__).resolve().parents[1] / "src"


def test_the_basic_sweeper_expands_a_grid_in_batches():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = basic_sweeper()
    assert callable(sweeper.validate_batch_is_legal)
    overrides = OverridesParser.create().parse_overrides(["a=1,2", "b=x,y,z"])
    (batch,) = sweeper.split_arguments(overrides, None)
    assert batch[0] == ["a=1", "b=x"] and len(batch) == 6
    assert len(sweeper.split_arguments(overrides, 4)) == 2


def test_hydras_process_wide_state_is_put_back(tmp_path):
    (tmp_path / "app.yaml").write_text("x: 1\n", encoding="utf-8")
    assert isinstance(Singleton._instances, dict)
    before = Singleton._instances.get(VersionBase)
    with hydra_restored():
        with initialize_config_dir(config_dir=str(tmp_path), version_base="1.1"):
            assert compose(config_name="app").x == 1
            assert GlobalHydra.instance().is_initialized()
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
            assert Singleton._instances.get(GlobalHydra) is not None
    assert not GlobalHydra.instance().is_initialized()
    assert Singleton._instances.get(VersionBase) is before


def test_mlflows_packages_map_is_built_ahead():
    from mlflow.utils import requirements_utils

    build_requirements_map()
    assert requirements_utils._PACKAGES_TO_MODULES["numpy"] == "numpy"
    assert "mlflow" in requirements_utils._MODULES_TO_PACKAGES["mlflow"]


def test_no_other_module_uses_a_private_name_of_hydra_or_mlflow():
    found = []
    for path in SRC.rglob("*.py"):
        if path.name == "frameworks.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom | ast.Import):
                continue
            module = getattr(node, "module", None) or ""
            names = [a.name for a in node.names]
            for name in [module, *names]:
                top = name.split(".")[0]
                if top in ("hydra", "mlflow") and any(p.startswith("_") for p in name.split(".")):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}: {name}")
            if isinstance(node, ast.ImportFrom) and module.split(".")[0] in ("hydra", "mlflow"):
                found += [
                    f"{path.relative_to(SRC)}:{node.lineno}: {module}.{n}"
                    for n in names
                    if n.startswith("_") and not n.startswith("__")
                ]
    assert found == []
