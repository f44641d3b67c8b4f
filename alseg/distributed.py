"""Acquisition under data parallelism (Lightning DDP): each rank scores its shard of the pool,
the scores are gathered so that rank 0 decides once, and rank 0's new labelled state is
given to every rank. Without an initialised process group everything is a no-op."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from pytorch_lightning.utilities.rank_zero import rank_zero_only


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


def from_main(payload: Any) -> Any:
    """Rank 0's `payload` on every rank (the payload itself outside a process group)."""
    if rank_and_size()[1] == 1:
        return payload
    box = [payload if is_main() else None]
    dist.broadcast_object_list(box, src=0, device=_device())
    return box[0]
