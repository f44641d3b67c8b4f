"""Every option of every config group composes and instantiates."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import get_class, instantiate

from alseg.data.synthetic import synthetic_splits
from alseg.errors import AlsegError
from alseg.experiment import build_strategy
from alseg.settings import build, check_settings, config_dir

GROUPS = [
    "dataset", "model", "strategy", "regions", "budget", "oracle", "train/semi", "trainer", "logger",
    "experiment", "debug",
]  # fmt: skip


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


ALL_OPTIONS = [(group, option) for group in GROUPS for option in options(group)]


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert options(group), f"configs/{group}/ is empty"
    assert {"random", "least_confidence", "margin", "entropy"} <= set(options("strategy"))


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL_ROOTS = {"camvid": SHARED_DATA / "CamVid", "isic2017": SHARED_DATA / "ISIC2017"}


@pytest.mark.parametrize(("group", "option"), ALL_OPTIONS)
def test_option_composes_and_builds(make_cfg, tmp_path: Path, group: str, option: str) -> None:
    cfg = make_cfg(f"{group}={option}", "logger.mode=disabled" if option == "wandb" else "seed=0")
    check_settings(cfg)  # every shipped option is a valid setting
    build_strategy(cfg.strategy)
    get_class(cfg.oracle._target_)
    build(cfg.regions).maps(synthetic_splits(train=2, val=1, test=1, size=64).train)
    if "root" in cfg.dataset:
        # Without the data, building must fail with the missing-root message, not a trace.
        real = REAL_ROOTS.get(option, tmp_path / "absent")
        cfg.dataset.root = str(real)
        if not real.is_dir():
            with pytest.raises(AlsegError, match="does not exist"):
                build(cfg.dataset.splits)
        else:
            assert len(build(cfg.dataset.splits).train) > 0
    elif group == "dataset" or option == "tiny":
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


@pytest.mark.parametrize("dataset", sorted(p.stem for p in (config_dir() / "dataset").glob("*.yaml")))
def test_debug_tiny_composes_with_every_dataset(make_cfg, tmp_path: Path, dataset: str) -> None:
    cfg = make_cfg(f"dataset={dataset}", "debug=tiny")
    assert cfg.dataset.splits.limit == 24 and cfg.dataset.splits.size == 32
    check_settings(cfg)
    real = REAL_ROOTS.get(dataset)
    if "root" in cfg.dataset and (real is None or not real.is_dir()):
        return  # composing is what can be checked without the data
    if real is not None:
        cfg.dataset.root = str(real)
    splits = build(cfg.dataset.splits)
    assert len(splits.train) == 24 and splits.train.image_size == (32, 32)
    assert len(splits.val) <= 24 and len(splits.test) <= 24
