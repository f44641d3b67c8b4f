"""MC-dropout committees: the network run with dropout active, batched by memory, and the
fast path that re-samples channel dropout before the classifier alone."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from alseg.errors import AlsegError
from alseg.model.networks import SmpNetwork, encode, has_smp_layout

DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


@contextmanager
def dropout_active(module: nn.Module) -> Iterator[None]:
    """Put the dropout layers of `module` in training mode (all else as it was), then restore."""
    layers = [m for m in module.modules() if isinstance(m, DROPOUT_TYPES)]
    modes = [m.training for m in layers]
    for layer in layers:
        layer.train()
    try:
        yield
    finally:
        for layer, mode in zip(layers, modes, strict=True):
            layer.train(mode)


def has_dropout(module: nn.Module) -> bool:
    return any(isinstance(m, DROPOUT_TYPES) for m in module.modules())


def mc_dropout_committee(
    network: SmpNetwork, images: torch.Tensor, passes: int, mode: str
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits (T, B, C, H, W) of `passes` stochastic passes with dropout active, and the
    encoder features of a deterministic pass (see `mc_dropout_chunks`)."""
    chunks, features = mc_dropout_chunks(network, images, passes, mode)
    return torch.cat(list(chunks), dim=1), features


COMMITTEE_CHUNK_BYTES = 2**24
"""Bytes of committee logits `mc_dropout_chunks` builds at once: small enough that a chunk is
still in the CPU's cache when a strategy reduces it (twice as fast as whole batches)."""


def mc_dropout_chunks(
    network: SmpNetwork,
    images: torch.Tensor,
    passes: int,
    mode: str,
    chunk_bytes: int = COMMITTEE_CHUNK_BYTES,
) -> tuple[Iterator[torch.Tensor], list[torch.Tensor]]:
    """Committee logits (T, b, C, H, W) for consecutive chunks of the batch, and the encoder
    features of a deterministic pass.

    mode "head" runs encoder and decoder once and only the segmentation head T times (exact
    when all dropout sits in the head), in chunks of about `chunk_bytes` of logits; "full"
    runs the whole network T times on the whole batch. Dropout masks are drawn before the
    first chunk, so chunking never changes the committee.
    """
    if mode not in ("head", "full"):
        raise AlsegError(f"scoring.mc_mode must be 'head' or 'full' (got {mode!r}).")
    if not has_dropout(network.segmentation_head if mode == "head" else network):
        raise AlsegError("MC dropout needs dropout layers: set model.network.head_dropout > 0 (e.g. 0.2).")
    if mode == "full" and not has_smp_layout(network):  # a network of one's own: no features
        with dropout_active(network):
            return iter([torch.stack([network(images) for _ in range(passes)])]), []
    features, decoded = encode(network, images)
    if mode == "head":
        head = network.segmentation_head
        return head_committee(head, decoded, passes, images.shape[-2:], chunk_bytes), features
    with dropout_active(network):
        return iter([torch.stack([network(images) for _ in range(passes)])]), features


RESPONSES_LIMIT = 2**28
"""Bytes of per-channel head responses `head_committee` holds at once; above, it loops."""


def head_committee(
    head: nn.Module, decoded: torch.Tensor, passes: int, output_size: Sequence[int], chunk_bytes: int
) -> Iterator[torch.Tensor]:
    """Logits (T, b, C, H, W) of `passes` draws of the head `Sequential(dropout, smp head)`,
    for consecutive chunks of images of about `chunk_bytes` (H, W: `output_size`).

    Element-wise dropout reruns the head on the decoder output once per member, on the whole
    batch. Channel dropout before a convolution is a masked sum of the convolution's
    per-channel responses, so the responses are computed once and each member is one small
    matrix product; its masks are drawn as `nn.Dropout2d` draws them. Either way the same seed
    gives the same committee as running the whole network `passes` times.
    """
    dropout, smp_head = list(head.children())
    conv, *after = list(smp_head.children())
    if (
        not isinstance(dropout, nn.Dropout | nn.Dropout2d)
        or not isinstance(conv, nn.Conv2d)
        or conv.groups != 1
    ):
        raise AlsegError(
            "scoring.mc_mode 'head' needs the head of build_network (dropout, then a convolution)."
        )
    finish = nn.Sequential(*after)  # upsampling, activation

    def finished(logits: torch.Tensor) -> torch.Tensor:
        return finish(logits.flatten(0, 1)).unflatten(0, (passes, -1))

    batch, channels = decoded.shape[:2]
    if isinstance(dropout, nn.Dropout):
        with dropout_active(dropout):
            return iter([finished(torch.stack([conv(dropout(decoded)) for _ in range(passes)]))])
    keep = 1.0 - dropout.p
    masks = torch.stack([decoded.new_empty(batch, channels).bernoulli_(keep) for _ in range(passes)]) / keep
    per_image = passes * conv.out_channels * math.prod(output_size) * decoded.element_size()
    step = max(1, chunk_bytes // per_image)
    return (
        finished(_channel_dropout_committee(conv, decoded[s : s + step], masks[:, s : s + step]))
        for s in range(0, batch, step)
    )


def _channel_dropout_committee(conv: nn.Conv2d, decoded: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Logits (T, B, C, H, W) of conv(decoded * mask) for channel masks (T, B, channels)."""
    batch, channels, height, width = decoded.shape
    classes = conv.out_channels
    if decoded.element_size() * batch * channels * classes * height * width <= RESPONSES_LIMIT:
        weight = conv.weight.transpose(0, 1).reshape(channels * classes, 1, *conv.kernel_size)
        responses = nn.functional.conv2d(
            decoded, weight, None, conv.stride, conv.padding, conv.dilation, channels
        )
        responses = responses.unflatten(1, (channels, classes))  # (B, channels, C, H', W')
        logits = torch.einsum("tbi,bichw->tbchw", masks, responses)
        if conv.bias is not None:
            logits += conv.bias.view(1, 1, classes, 1, 1)
        return logits
    return torch.stack([conv(decoded * mask[:, :, None, None]) for mask in masks])
