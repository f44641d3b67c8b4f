"""Shared by the benchmarks: machine facts, a table printer and the JSON record."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from alseg.results.run_dir import format_table
from alseg.settings import config_dir

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def compose_cfg(*overrides: str) -> DictConfig:
    """The experiment config `alseg run` would compose with these overrides."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def scoring_context(pool, regions, network, strategy, batch_size: int, device, mc_mode: str = "head"):
    """An AcquisitionContext that scores `pool` cut by the region maps `regions` (nothing labelled)."""
    import numpy as np

    from alseg.labels.ledger import CostLedger
    from alseg.labels.oracle import Oracle
    from alseg.labels.state import LabelState
    from alseg.strategies.context import AcquisitionContext

    return AcquisitionContext(
        cycle=1,
        strategy=strategy,
        oracle=Oracle(pool, LabelState(regions, pool.image_size), CostLedger()),
        unit="images",
        budget=1.0,
        rng=np.random.default_rng(0),
        batch_size=batch_size,
        progress=False,
        mc_mode=mc_mode,
        network=network,
        device=device,
    )


def seconds(work: Callable[[], object], repeat: int = 3) -> float:
    """The best wall time of `repeat` runs of `work`, after one warm-up run."""
    work()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def print_table(rows: list[dict[str, Any]]) -> None:
    print(format_table(rows, list(rows[0])))


def save(name: str, rows: list[dict[str, Any]], **extra: Any) -> Path:
    """Write the benchmark's rows with the machine facts to bench/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "rows": rows, **extra}, indent=1))
    print(f"wrote {path}")
    return path
