"""Encoder weights from a local file, ImageNet input normalisation, and a fast offline failure."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from alseg.errors import AlsegError
from alseg.model import IMAGENET_MEAN_STD, build_network

SMALL = {"arch": "Unet", "encoder_name": "resnet18", "num_classes": 3, "encoder_depth": 3}
SMALL["decoder_channels"] = [16, 8, 4]


def saved_encoder(path: Path, extra: dict | None = None) -> dict[str, torch.Tensor]:
    torch.manual_seed(5)
    state = build_network(**SMALL).encoder.state_dict()
    state = {key: value.clone() for key, value in state.items()}
    torch.save({**state, **(extra or {})}, path)
    return state


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_encoder_weights_load_from_a_local_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"encoder{suffix}"
    state = saved_encoder(tmp_path / "encoder.pth")
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    torch.manual_seed(99)  # a different initialisation: only the file can make them equal
    network = build_network(**SMALL, encoder_weights=str(path))
    for key, value in network.encoder.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_a_classification_checkpoint_loads_without_its_classifier(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pth"
    state = saved_encoder(path, {"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)})
    network = build_network(**SMALL, encoder_weights=str(path))
    assert torch.equal(network.encoder.conv1.weight, state["conv1.weight"])


def test_pretrained_weights_normalise_inputs_as_imagenet(tmp_path: Path) -> None:
    path = tmp_path / "encoder.pth"
    saved_encoder(path)
    normalised = build_network(**SMALL, encoder_weights=str(path)).eval()
    plain = build_network(**SMALL, encoder_weights=str(path), input_normalization="none").eval()
    plain.load_state_dict(normalised.state_dict(), strict=False)  # the same weights, no buffers
    images = torch.rand(2, 3, 32, 32)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET_MEAN_STD)
    with torch.no_grad():
        torch.testing.assert_close(normalised(images), plain((images - mean) / std))
        features = normalised.encoder(images)  # the scorer's encoder-once path normalises too
        torch.testing.assert_close(features[-1], plain.encoder((images - mean) / std)[-1])
    assert not hasattr(build_network(**SMALL), "input_mean")  # no weights, no normalisation (auto)
    custom = build_network(**SMALL, input_normalization={"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})
    assert custom.input_std.flatten().tolist() == [0.25, 0.25, 0.25]


def test_bad_weights_and_settings_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(AlsegError, match="no such file"):
        build_network(**SMALL, encoder_weights=str(tmp_path / "absent.pth"))
    other = tmp_path / "resnet34.pth"
    torch.save(build_network(**{**SMALL, "encoder_name": "resnet34"}).encoder.state_dict(), other)
    with pytest.raises(AlsegError, match="does not fit the encoder") as error:
        build_network(**SMALL, encoder_weights=str(other))
    assert "\n" not in str(error.value)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(AlsegError, match="cannot read encoder weights"):
        build_network(**SMALL, encoder_weights=str(tmp_path / "junk.pth"))
    with pytest.raises(AlsegError, match="input_normalization must be auto, imagenet, none"):
        build_network(**SMALL, input_normalization="zscore")


def test_imagenet_weights_offline_fail_at_once_saying_how_to_supply_the_file(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent/hf-cache")  # nothing cached
    start = time.perf_counter()
    with pytest.raises(
        AlsegError, match=r"download model.safetensors from https://huggingface.co/\S+"
    ) as error:
        build_network(**SMALL, encoder_weights="imagenet")
    assert time.perf_counter() - start < 10
    assert "model.network.encoder_weights=/path/to/model.safetensors" in str(error.value)
