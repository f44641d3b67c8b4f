"""MC dropout: the cheap head-only committee equals the full one, and needs dropout."""

from __future__ import annotations

import pytest
import torch

from alseg.errors import AlsegError
from alseg.model import committee
from alseg.model.committee import mc_dropout_chunks, mc_dropout_committee
from alseg.model.networks import build_network


def network(head_dropout: float, arch: str = "Unet", kind: str = "channel") -> torch.nn.Module:
    torch.manual_seed(0)
    shape = {"encoder_depth": 3, "decoder_channels": [16, 8, 4]} if arch == "Unet" else {"encoder_depth": 5}
    net = build_network(arch, "resnet18", 4, head_dropout=head_dropout, head_dropout_kind=kind, **shape)
    return net.eval()


def committees(net: torch.nn.Module, images: torch.Tensor, passes: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(7)
    head, _ = mc_dropout_committee(net, images, passes, "head")
    torch.manual_seed(7)
    full, _ = mc_dropout_committee(net, images, passes, "full")
    return head, full


@pytest.mark.parametrize("kind", ["element", "channel"])
@torch.inference_mode()
def test_head_and_full_committees_agree_with_one_seed(kind: str) -> None:
    net = network(0.3, kind=kind)
    head, full = committees(net, torch.rand(2, 3, 32, 32), 5)
    torch.testing.assert_close(head, full)
    assert head.shape == (5, 2, 4, 32, 32)
    assert not torch.allclose(head[0], head[1])  # members differ: dropout is active
    assert not net.training and not any(m.training for m in net.modules())  # modes restored


def test_committee_without_dropout_is_refused() -> None:
    with pytest.raises(AlsegError, match="head_dropout"):
        mc_dropout_committee(network(0.0), torch.rand(1, 3, 32, 32), 3, "head")


@torch.inference_mode()
def test_head_committee_with_upsampling_head_agrees_with_full() -> None:
    net = network(0.5, "DeepLabV3Plus")  # its head upsamples x4
    net.decoder.aspp[0].project[3].p = 0.0  # the only dropout outside the head
    head, full = committees(net, torch.rand(2, 3, 64, 64), 3)
    torch.testing.assert_close(head, full)
    assert head.shape == (3, 2, 4, 64, 64)


@torch.inference_mode()
def test_head_committee_loops_when_responses_exceed_the_limit(monkeypatch) -> None:
    net, images = network(0.3), torch.rand(2, 3, 32, 32)
    torch.manual_seed(3)
    factored, _ = mc_dropout_committee(net, images, 4, "head")
    monkeypatch.setattr(committee, "RESPONSES_LIMIT", 0)
    torch.manual_seed(3)
    looped, _ = mc_dropout_committee(net, images, 4, "head")
    torch.testing.assert_close(factored, looped)


@torch.inference_mode()
def test_chunked_committee_is_the_whole_committee_in_pieces() -> None:
    net, images = network(0.3), torch.rand(5, 3, 32, 32)
    torch.manual_seed(5)
    whole, _ = mc_dropout_committee(net, images, 4, "head")
    per_image = 4 * 4 * 32 * 32 * 4  # members x classes x pixels x float32
    torch.manual_seed(5)
    chunks, _ = mc_dropout_chunks(net, images, 4, "head", chunk_bytes=2 * per_image)
    chunks = list(chunks)
    assert [chunk.shape[1] for chunk in chunks] == [2, 2, 1]
    torch.testing.assert_close(torch.cat(chunks, dim=1), whole)


def test_unknown_dropout_kind_is_refused() -> None:
    with pytest.raises(AlsegError, match="head_dropout_kind"):
        network(0.2, kind="spatial")


def test_channel_dropout_drops_whole_channels() -> None:
    dropout = network(0.5).segmentation_head[0].train()
    out = dropout(torch.ones(4, 8, 5, 5))
    per_channel = out.flatten(2)
    assert torch.all(per_channel.amin(dim=2) == per_channel.amax(dim=2))  # a channel is kept or dropped whole
    assert set(per_channel.unique().tolist()) == {0.0, 2.0}
