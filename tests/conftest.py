"""Shared fixtures: compose configs with Hydra's Compose API, tiny runs, no network."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from alseg.cli import config_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_SILENT", "true")

TINY = ["debug=tiny"]


def acquisition_context(state, network=None, pool=None, wanted: int = 2, seed: int = 0):
    """An AcquisitionContext for strategy unit tests; helpers they must not need raise."""
    import numpy as np
    import torch

    from alseg.strategies.base import AcquisitionContext

    def unused(*_):
        raise AssertionError("this strategy should not need it")

    return AcquisitionContext(
        cycle=1,
        network=network if network is not None else torch.nn.Identity(),
        pool=pool,
        state=state,
        device=torch.device("cpu"),
        rng=np.random.default_rng(seed),
        wanted=wanted,
        batch_size=4,
        progress=False,
        train_network=unused,
        revealed_clicks=unused,
        true_clicks=unused,
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
