"""Acquisition under data parallelism (Lightning DDP): each rank scores its shard of the pool,
the scores are gathered so that rank 0 decides once, and rank 0's new labelled state is
given to every rank. Without an initialised process group everything is a no-op."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from alseg.labels import LabelState
from alseg.ledger import CostLedger


def rank_and_size() -> tuple[int, int]:
    """This process's rank and the number of ranks (0, 1 outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def process_rank() -> int:
    """This process's rank: the process group's, or Lightning's from the environment before
    the group starts (a DDP child knows its rank before its first fit)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(getattr(rank_zero_only, "rank", 0))


def is_main() -> bool:
    """Whether this process decides and writes: rank 0."""
    return process_rank() == 0


def barrier() -> None:
    """Wait for every rank (after rank 0 wrote what the others will read)."""
    if rank_and_size()[1] > 1:
        dist.barrier()


def shard(indices: np.ndarray) -> np.ndarray:
    """This rank's share of `indices`: every size-th one, from its rank on."""
    rank, size = rank_and_size()
    return indices[rank::size]


def _device() -> torch.device:
    """Where collectives need their tensors: the current GPU under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_max(table: np.ndarray) -> np.ndarray:
    """Elementwise maximum over ranks: merges unit tables where unscored entries are -inf."""
    if rank_and_size()[1] == 1:
        return table
    merged = torch.from_numpy(np.ascontiguousarray(table)).to(_device())
    dist.all_reduce(merged, op=dist.ReduceOp.MAX)
    return merged.cpu().numpy()


def gather_schema(names: list[str], width: int) -> tuple[list[str], int]:
    """The union of the statistic names and the descriptor width over ranks (a rank whose
    shard was empty has seen none)."""
    if rank_and_size()[1] == 1:
        return names, width
    everyone: list[Any] = [None] * rank_and_size()[1]
    dist.all_gather_object(everyone, (names, width))
    return sorted({name for seen, _ in everyone for name in seen}), max(w for _, w in everyone)


def gather_rows(rows: torch.Tensor, indices: np.ndarray, total: int) -> torch.Tensor:
    """The (total, D) table whose rows `indices` each rank filled: rows of other ranks are zero."""
    full = torch.zeros((total, rows.shape[1]), dtype=rows.dtype)
    full[torch.from_numpy(indices)] = rows.cpu()
    if rank_and_size()[1] == 1:
        return full
    full = full.to(_device())
    dist.all_reduce(full, op=dist.ReduceOp.SUM)
    return full.cpu()


def gather_objects(found: dict[int, Any]) -> dict[int, Any]:
    """The union over ranks of per-image results (pseudo-labels each rank kept of its shard)."""
    if rank_and_size()[1] == 1:
        return found
    everyone: list[Any] = [None] * rank_and_size()[1]
    dist.all_gather_object(everyone, found)
    return {key: value for part in everyone for key, value in part.items()}


def share_state(state: LabelState, ledger: CostLedger, queried: np.ndarray) -> np.ndarray:
    """Give every rank rank 0's labelled state, spent costs and queried units; return the latter."""
    if rank_and_size()[1] == 1:
        return queried
    payload: list[Any] = [None]
    if is_main():
        buffer = io.BytesIO()
        state.save(buffer)
        payload = [(buffer.getvalue(), dict(ledger.spent), queried)]
    dist.broadcast_object_list(payload, src=0, device=_device())
    saved, spent, queried = payload[0]
    state.load(io.BytesIO(saved))
    ledger.spent = spent
    return queried
