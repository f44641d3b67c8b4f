"""Acquisition under data parallelism: two CPU ranks (gloo) query what one process queries."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra import compose, initialize_config_dir

from alseg.experiment import Experiment
from alseg.results.run_dir import read_rows
from alseg.settings import config_dir

OVERRIDES = ["debug=tiny", "budget.cycles=2"]


def experiment(root: Path, overrides: list[str]) -> Experiment:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return Experiment(compose(config_name="config", overrides=OVERRIDES + overrides), root)


def run_rank(rank: int, port: int, tmp: Path, overrides: list[str]) -> None:
    """One rank: join the group, run the experiment, save the labelled state it ends with."""
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    rank_zero_only.rank = rank  # what Lightning reads from the environment in a DDP child
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        run = experiment(tmp / "run", overrides)
        run.run()
        np.savez(
            tmp / f"rank{rank}.npz", labelled_at=run.state.labelled_at, spent=list(run.ledger.spent.values())
        )
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "overrides",
    [["strategy=entropy", "regions=grid"], ["strategy=coreset"], ["strategy=ceal"]],
    ids=["entropy-regions", "coreset-descriptors", "ceal-pseudo-labels"],
)
def test_two_ranks_query_what_one_process_queries(tmp_path: Path, overrides: list[str]) -> None:
    single = experiment(tmp_path / "single", overrides)
    single.run()
    mp.spawn(run_rank, args=(free_port(), tmp_path, overrides), nprocs=2, join=True)
    ranks = [np.load(tmp_path / f"rank{rank}.npz") for rank in (0, 1)]
    for saved in ranks:  # every rank holds the state one process reaches
        np.testing.assert_array_equal(saved["labelled_at"], single.state.labelled_at)
        np.testing.assert_allclose(saved["spent"], list(single.ledger.spent.values()))
    assert (single.state.labelled_at == 2).any()  # the second query happened
    saved_state = np.load(tmp_path / "run" / "state" / "cycle_002.npz")  # written by rank 0 only
    np.testing.assert_array_equal(saved_state["labelled_at"], single.state.labelled_at)


def test_shards_split_the_pool_between_ranks(monkeypatch) -> None:
    from alseg import distributed

    indices = np.arange(7)
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "rank_and_size", lambda rank=rank: (rank, 2))
        seen.append(distributed.shard(indices))
    assert sorted(np.concatenate(seen).tolist()) == indices.tolist()
    assert not set(seen[0]) & set(seen[1])


def test_without_a_process_group_gathering_changes_nothing() -> None:
    from alseg.distributed import gather_max, gather_rows, is_main

    table = np.array([[1.0, -np.inf]], dtype=np.float32)
    assert gather_max(table) is table
    rows = torch.arange(6.0).reshape(2, 3)
    torch.testing.assert_close(
        gather_rows(rows, np.array([2, 0]), 3), torch.tensor([[3.0, 4, 5], [0, 0, 0], [0, 1, 2]])
    )
    assert is_main()


@pytest.mark.parametrize("semi", ["none", "ema_teacher"])
def test_lightning_ddp_on_two_cpu_processes_runs_the_loop(tmp_path: Path, semi: str) -> None:
    run_dir = tmp_path / "ddp"
    command = [
        str(Path(sys.executable).parent / "alseg"), "run", "debug=tiny", "trainer.accelerator=cpu",
        "trainer.devices=2", "trainer.strategy=ddp_find_unused_parameters_true", f"hydra.run.dir={run_dir}",
        f"train/semi={semi}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(run_dir / "cycles.csv")
    assert [row["cost_images"] for row in rows] == [4, 8, 12]
    child_log = (run_dir / "alseg.rank1.log").read_text()
    assert "cycle 2 of 2 |    12.0 images" in child_log  # rank 1 ran every cycle with the same state
