"""Per-pixel uncertainty measures and per-region reductions, as pure tensor functions.

Measures take class probabilities (B, C, H, W) (never logits) and return (B, H, W) scores
where higher means more informative; committee measures take (T, B, C, H, W). Reductions
over the pixels of a unit are applied by the region maps (alseg.regions.base).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from alseg.errors import AlsegError


def least_confidence(probs: torch.Tensor) -> torch.Tensor:
    """1 - max_c p_c."""
    return 1 - probs.amax(dim=1)


def margin(probs: torch.Tensor) -> torch.Tensor:
    """1 - (p_top1 - p_top2), in [0, 1]: a small margin between the top two scores high."""
    top2 = probs.topk(2, dim=1).values
    return 1 - (top2[:, 0] - top2[:, 1])


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy -sum_c p_c log p_c in nats (0 log 0 = 0)."""
    return -torch.special.xlogy(probs, probs).sum(dim=1)


def vote_entropy(committee: torch.Tensor) -> torch.Tensor:
    """Query-by-committee vote entropy -sum_c V(c)/T log V(c)/T over committee probabilities
    or logits (T, B, C, H, W), where V(c) counts the members whose argmax is c."""
    members, classes = committee.shape[0], committee.shape[2]
    dtype = torch.promote_types(committee.dtype, torch.float32)  # bf16 logits count in float32
    share = vote_counts(class_argmax(committee), classes).to(dtype) / members
    return -torch.special.xlogy(share, share).sum(dim=0)


def vote_counts(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Votes (C, B, H, W) per class of member labels (T, B, H, W).

    Each member's vote is a bit field of an int64 (`bits` per class, enough to count T), so
    one sum over members counts several classes at once; then the fields are unpacked."""
    bits = labels.shape[0].bit_length()
    per_word, field = 63 // bits, (1 << bits) - 1
    index = labels.long()
    counts = []
    for start in range(0, classes, per_word):
        group = range(start, min(start + per_word, classes))
        codes = torch.zeros(256, dtype=torch.int64, device=labels.device)  # one per uint8 label
        codes[start : group.stop] = 1 << (bits * torch.arange(len(group), device=labels.device))
        packed = codes[index].sum(dim=0)
        counts += [(packed >> (bits * k)) & field for k in range(len(group))]
    return torch.stack(counts)


def class_argmax(committee: torch.Tensor) -> torch.Tensor:
    """argmax over the class axis of (T, B, C, H, W), first index on ties, as uint8 (T, B, H, W).

    A running maximum over the few classes: several times faster than `argmax(dim=2)`, whose
    reduction strides across whole feature maps."""
    best = committee[:, :, 0]
    labels = torch.zeros(best.shape, dtype=torch.uint8, device=committee.device)
    for c in range(1, committee.shape[2]):
        candidate = committee[:, :, c]
        labels.masked_fill_(candidate > best, c)
        best = torch.maximum(best, candidate)
    return labels


def committee_variance(committee: torch.Tensor) -> torch.Tensor:
    """Disagreement of a committee (T, B, C, H, W): the variance of each class probability
    across members, averaged over classes."""
    return committee.var(dim=0, unbiased=False).mean(dim=1)


MEASURES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "least_confidence": least_confidence,
    "margin": margin,
    "entropy": entropy,
}


def _lookup(table: dict[str, Callable], kind: str, name: str) -> Callable:
    try:
        return table[name]
    except KeyError:
        raise AlsegError(f"unknown {kind} {name!r}; choose one of {sorted(table)}.") from None


def get_measure(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The uncertainty measure called `name`; the error lists the valid names."""
    return _lookup(MEASURES, "uncertainty measure", name)


def _top_decile_mean(values: torch.Tensor) -> torch.Tensor:
    k = max(1, values.shape[-1] // 10)
    return values.topk(k, dim=-1).values.mean(dim=-1)


REDUCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mean": lambda values: values.mean(dim=-1),
    "max": lambda values: values.amax(dim=-1),
    "top10": _top_decile_mean,
}
"""Reductions over the last axis (the pixels of a unit); `top10` is the mean of its top 10%."""


def get_reduction(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The reduction called `name`; the error lists the valid names."""
    return _lookup(REDUCTIONS, "reduction", name)
