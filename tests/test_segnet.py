"""SegNet: the decoder unpools each value to where its encoder stage pooled it from, and the
network serves every strategy (MC committees, descriptors) through smp's layout."""

from __future__ import annotations

import pytest
import torch
from test_strategies import STRATEGIES, TINY_OVERRIDES
from torch import nn

from alseg.errors import AlsegError
from alseg.experiment import Experiment
from alseg.model.networks import build_segnet, has_smp_layout
from alseg.model.segnet import SegNet

# debug=tiny shrinks smp networks; SegNet has no encoder_depth or decoder_channels
SEGNET_TINY = ["model=segnet", "~model.network.encoder_depth", "~model.network.decoder_channels"]


def identity_segnet() -> SegNet:
    """SegNet with every convolution stage replaced by the identity: pooling and unpooling only."""
    network = SegNet(num_classes=1, width=1 / 64)
    for stages in (network.encoder.stages, network.decoder.stages):
        for k in range(len(stages)):
            stages[k] = nn.Identity()
    return network


def test_unpooling_puts_each_maximum_where_the_encoder_pooled_it_from() -> None:
    # Five 2 x 2 poolings reduce each 32 x 32 block to its maximum; five unpoolings with the same
    # indices must put it back at the maximum's own pixel, zeros everywhere else.
    image = torch.randperm(32 * 64).float().view(1, 1, 32, 64)
    network = identity_segnet()
    restored = network.decoder(network.encoder(image))
    expected = torch.zeros_like(image)
    for left in (0, 32):
        block = image[0, 0, :, left : left + 32]
        row, col = divmod(int(block.argmax()), 32)
        expected[0, 0, row, left + col] = block.max()
    assert torch.equal(restored, expected)


def test_unpooling_follows_a_hand_placed_maximum_through_every_stage() -> None:
    image = torch.zeros(1, 1, 64, 32)
    image[0, 0, 37, 5] = 9.0  # in the lower block: row 37 = 32 + 5
    image[0, 0, 2, 30] = 4.0  # in the upper block
    network = identity_segnet()
    restored = network.decoder(network.encoder(image))
    assert torch.equal(restored, image)


def test_segnet_has_the_smp_layout_and_predicts_full_resolution() -> None:
    network = build_segnet(5, width=0.125, head_dropout=0.1).eval()
    assert has_smp_layout(network) and isinstance(network.segmentation_head[0], nn.Dropout2d)
    with torch.inference_mode():
        assert network(torch.rand(2, 3, 64, 96)).shape == (2, 5, 64, 96)
    with pytest.raises(AlsegError, match="divisible by 32"):
        network(torch.rand(1, 3, 40, 96))


def test_segnet_weights_load_from_a_file_and_a_wrong_file_stops_in_one_line(tmp_path) -> None:
    trained = build_segnet(5, width=0.125)
    torch.save(trained.state_dict(), tmp_path / "segnet.pt")
    loaded = build_segnet(5, width=0.125, weights=str(tmp_path / "segnet.pt"))
    for key, value in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    with pytest.raises(AlsegError, match="another width or class count"):
        build_segnet(7, width=0.125, weights=str(tmp_path / "segnet.pt"))
    with pytest.raises(AlsegError, match="is not a file"):
        build_segnet(5, width=0.125, weights=str(tmp_path / "absent.pt"))


# the strategies that reach inside the network (head-only MC committee, descriptors, an
# ensemble) run in `make test`; every strategy runs in `make test-all`
LAYOUT_STRATEGIES = ["vote_entropy", "coreset", "suggestive"]


@pytest.mark.parametrize(
    "strategy",
    [s if s in LAYOUT_STRATEGIES else pytest.param(s, marks=pytest.mark.slow) for s in STRATEGIES],
)
def test_every_strategy_runs_with_segnet(make_cfg, tmp_path, strategy: str) -> None:
    cfg = make_cfg("debug=tiny", f"strategy={strategy}", *TINY_OVERRIDES.get(strategy, []), *SEGNET_TINY)
    rows = Experiment(cfg, tmp_path).run()
    unit = cfg.budget.unit
    assert len(rows) == 3 and rows[-1][f"cost_{unit}"] > rows[0][f"cost_{unit}"]


def test_debug_tiny_with_segnet_says_which_keys_to_drop(make_cfg, tmp_path) -> None:
    with pytest.raises(AlsegError, match=r"~model.network.encoder_depth ~model.network.decoder_channels"):
        Experiment(make_cfg("debug=tiny", "model=segnet"), tmp_path)
