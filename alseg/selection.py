"""Pure selection algorithms over unit scores and descriptors: NMS, set cover, k-center, density."""

from __future__ import annotations

import numpy as np
import torch


def non_maximum_suppression(scores: np.ndarray, overlap: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS within one image: indices of kept regions, best first.

    `scores` (R,) with -inf for unavailable regions; a region is dropped when its IoU with a
    kept, better region exceeds `threshold` (0 drops any overlap).
    """
    order = np.argsort(-scores, kind="stable")
    order = order[np.isfinite(scores[order])]
    suppressed = np.zeros(len(scores), dtype=bool)
    kept = []
    for region in order:
        if suppressed[region]:
            continue
        kept.append(region)
        suppressed |= overlap[region] > threshold
    return np.array(kept, dtype=np.int64)


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity (N, M) between the rows of a (N, D) and b (M, D)."""
    a = torch.nn.functional.normalize(a.float(), dim=1)
    b = torch.nn.functional.normalize(b.float(), dim=1)
    return a @ b.T


def mean_similarity(queries: torch.Tensor, pool: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """Mean cosine similarity (N,) of each query to every pool row, block by block.

    Memory is one (block, M) slab at a time, never the whole (N, M) matrix.
    """
    return torch.cat(
        [cosine_similarity(queries[i : i + block], pool).mean(dim=1) for i in range(0, len(queries), block)]
    )


def k_center_greedy(features: torch.Tensor, centres: np.ndarray, count: int) -> np.ndarray:
    """Core-set selection: repeatedly pick the point farthest from every centre so far.

    `features` (N, D); `centres` indices already chosen (the labelled set). Returns `count`
    new indices in pick order. Distances are Euclidean; memory is O(N).
    """
    features = features.float()
    distance = torch.full((len(features),), torch.inf, device=features.device)
    if len(centres):
        anchors = features[torch.as_tensor(centres, device=features.device)]
        distance = torch.cat(
            [torch.cdist(features[i : i + 1024], anchors).amin(dim=1) for i in range(0, len(features), 1024)]
        )
        distance[torch.as_tensor(centres, device=features.device)] = -1.0
    picks = []
    for _ in range(min(count, len(features) - len(centres))):
        pick = int(torch.argmax(distance))
        picks.append(pick)
        distance = torch.minimum(distance, (features - features[pick]).norm(dim=1))
        distance[pick] = -1.0
    return np.array(picks, dtype=np.int64)


def greedy_max_cover(similarity: torch.Tensor, count: int) -> np.ndarray:
    """Suggestive annotation's representativeness: greedy maximisation of a set cover.

    `similarity` (K, M): similarity of each candidate to each pool image. Picks `count`
    candidates greedily maximising F(S) = sum_m max_{s in S} similarity[s, m]. Returns
    candidate indices in pick order.
    """
    best = torch.zeros(similarity.shape[1], dtype=similarity.dtype, device=similarity.device)
    available = torch.ones(len(similarity), dtype=torch.bool, device=similarity.device)
    picks = []
    for _ in range(min(count, len(similarity))):
        gain = torch.clamp(similarity - best, min=0).sum(dim=1)
        gain[~available] = -1.0
        pick = int(torch.argmax(gain))
        picks.append(pick)
        available[pick] = False
        best = torch.maximum(best, similarity[pick])
    return np.array(picks, dtype=np.int64)
