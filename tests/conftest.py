"""Shared fixtures: compose configs with Hydra's Compose API, tiny runs, no network."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from alseg.settings import config_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_SILENT", "true")

TINY = ["debug=tiny"]


def acquisition_context(
    pool,
    regions=None,
    network=None,
    strategy=None,
    seed: int = 0,
    budget: float = 2.0,
    unit: str = "regions",
    annotation: str = "precise",
):
    """An AcquisitionContext over `pool` cut by `regions` (whole images by default), with an
    oracle, an empty ledger and the given network, for strategy and scorer unit tests."""
    import numpy as np

    from alseg.labels.ledger import CostLedger
    from alseg.labels.oracle import Oracle
    from alseg.labels.state import LabelState
    from alseg.regions.boxes import WholeImage
    from alseg.strategies.context import AcquisitionContext
    from alseg.strategies.random import RandomSampling

    maps = (regions or WholeImage()).maps(pool)
    return AcquisitionContext(
        cycle=1,
        strategy=strategy or RandomSampling("random"),
        oracle=Oracle(pool, LabelState(maps, pool.image_size), CostLedger(), annotation),
        unit=unit,
        budget=budget,
        rng=np.random.default_rng(seed),
        batch_size=4,
        progress=False,
        mc_mode="head",
        network=network,
    )


@pytest.fixture
def make_cfg() -> Callable[..., DictConfig]:
    """Compose the primary config with overrides, as `alseg run` would."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


@pytest.fixture
def run_tiny(make_cfg, tmp_path: Path) -> Callable[..., tuple[list[dict], Path]]:
    """Run a tiny experiment in a fresh directory; return its rows and directory."""
    from alseg.experiment import run

    counter = iter(range(1000))

    def _run(*overrides: str) -> tuple[list[dict], Path]:
        run_dir = tmp_path / f"run{next(counter)}"
        return run(make_cfg(*TINY, *overrides), run_dir), run_dir

    return _run
