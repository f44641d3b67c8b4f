"""Every option of every config group composes and instantiates."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from alseg.cli import config_dir
from alseg.experiment import Budget, build

GROUPS = ["dataset", "model", "strategy", "regions", "budget", "trainer", "logger", "experiment", "debug"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


ALL_OPTIONS = [(group, option) for group in GROUPS for option in options(group)]


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert options(group), f"configs/{group}/ is empty"
    assert {"random", "least_confidence", "margin", "entropy"} <= set(options("strategy"))


@pytest.mark.parametrize(("group", "option"), ALL_OPTIONS)
def test_option_composes_and_builds(make_cfg, tmp_path: Path, group: str, option: str) -> None:
    cfg = make_cfg(f"{group}={option}", "logger.mode=disabled" if option == "wandb" else "seed=0")
    Budget(**cfg.budget)
    build(cfg.strategy)
    build(cfg.regions).boxes(64, 64)
    if group == "dataset" or option == "tiny":
        splits = build(cfg.dataset.splits)
        assert len(splits.train) > 0
    build(cfg.model.network, num_classes=6)
    build(cfg.logger, save_dir=str(tmp_path)).finalize("success")
    trainer = instantiate(cfg.trainer, accelerator="cpu", max_epochs=1, logger=False)
    assert trainer.max_epochs == 1


def test_experiment_files_start_with_their_command() -> None:
    for path in (config_dir() / "experiment").glob("*.yaml"):
        lines = path.read_text().splitlines()
        assert lines[0] == "# @package _global_"
        assert lines[1].startswith("# alseg run experiment=" + path.stem), path
