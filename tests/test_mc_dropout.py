"""MC dropout: the cheap head-only committee equals the full one, and needs dropout."""

from __future__ import annotations

import pytest
import torch

from alseg.errors import AlsegError
from alseg.model import build_network, mc_dropout_committee


def network(head_dropout: float) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_network(
        "Unet", "resnet18", 4, encoder_depth=3, decoder_channels=[16, 8, 4], head_dropout=head_dropout
    )
    return net.eval()


@torch.inference_mode()
def test_head_and_full_committees_agree_with_one_seed() -> None:
    net = network(0.3)
    images = torch.rand(2, 3, 32, 32)
    torch.manual_seed(7)
    head, _ = mc_dropout_committee(net, images, 5, "head")
    torch.manual_seed(7)
    full, _ = mc_dropout_committee(net, images, 5, "full")
    torch.testing.assert_close(head, full)
    assert head.shape == (5, 2, 4, 32, 32)
    assert not torch.allclose(head[0], head[1])  # members differ: dropout is active
    assert not net.training and not any(m.training for m in net.modules())  # modes restored


def test_committee_without_dropout_is_refused() -> None:
    with pytest.raises(AlsegError, match="head_dropout"):
        mc_dropout_committee(network(0.0), torch.rand(1, 3, 32, 32), 3, "head")
