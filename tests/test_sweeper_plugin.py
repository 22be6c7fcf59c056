"""rnnlab's Hydra sweeper as any Hydra app sees it: registered in Hydra's ConfigStore, and
passing Hydra's own plugin test suites (``hydra.test_utils.launcher_common_tests``), run
the way Hydra's plugins run them in their own tests, with Hydra's example apps, not
rnnlab's conf/ (issue 21)."""

from __future__ import annotations

import pytest
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.test_utils.launcher_common_tests import (
    BatchedSweeperTestSuite,
    IntegrationTestSuite,
    LauncherTestSuite,
)

from hydra_plugins.rnnlab_sweeper import Sweeper as RnnlabSweeper

SWEEPER = ["hydra/sweeper=rnnlab"]


def test_the_sweeper_is_a_hydra_plugin_with_its_node_in_the_config_store():
    # Hydra's scan loads the plugin's module anew: compare by name
    found = {f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Sweeper)}
    assert f"{RnnlabSweeper.__module__}.{RnnlabSweeper.__name__}" in found
    node = ConfigStore.instance().load("hydra/sweeper/rnnlab.yaml")
    assert node.provider == "rnnlab"
    assert node.node._target_ == "hydra_plugins.rnnlab_sweeper.Sweeper"
    assert node.node.max_batch_size is None and node.node.params is None


@pytest.mark.parametrize("launcher_name, overrides", [("basic", SWEEPER)])
class TestRnnlabSweeperWithTheBasicLauncher(LauncherTestSuite):
    pass


@pytest.mark.parametrize(
    "launcher_name, overrides", [("basic", [*SWEEPER, "hydra.sweeper.max_batch_size=2"])]
)
class TestRnnlabSweeperInBatches(BatchedSweeperTestSuite):  # 6 jobs: 3 batches of 2
    pass


@pytest.mark.slow
@pytest.mark.parametrize("task_launcher_cfg, extra_flags", [({}, ["-m", *SWEEPER])])
class TestRnnlabSweeperIntegration(IntegrationTestSuite):
    pass


def test_the_sweeper_composes_ahead_only_the_jobs_that_cover_every_group_value():
    # a 1,000-job grid composed whole before its first job waited minutes: only job 0 and
    # the jobs that bring a group's value (or a value of a key under a varying group)
    from rnnlab.sweeps.plan import covering_jobs

    groups = ("init", "optimizer", "experiment")
    grid = [
        [f"optimizer={o}", f"init.wx={x}", f"init.wrec={r}"]
        for o in ("rprop", "gd")
        for x in range(25)
        for r in range(20)
    ]
    assert covering_jobs(grid, groups) == [0, 500]  # the first job of each optimiser
    # a key under a group that varies: its values need composing (its type depends on it)
    mixed = [
        [f"optimizer={o}", f"optimizer.learning_rate={v}"] for o in ("gd", "adam") for v in "123"
    ]
    chosen = covering_jobs(mixed, groups)
    assert chosen == [0, 1, 2, 3]  # gd 1, gd 2, gd 3 (new rates), adam 1 (a new option)
    assert {o for i in chosen for o in mixed[i]} == {o for job in mixed for o in job}
    # an experiment that varies can change anything: every value is covered
    exp = [[f"experiment={e}", f"iterations={n}"] for e in ("a", "b") for n in (10, 20, 30)]
    covered = {o for i in covering_jobs(exp, groups) for o in exp[i]}
    assert covered == {o for job in exp for o in job}
