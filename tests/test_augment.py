"""Augmentation moves image and target together, and only on the training set."""

from __future__ import annotations

import pytest
import torch

from alseg.data.augment import Augmentation
from alseg.errors import AlsegError


def test_flip_and_crop_keep_image_and_target_aligned() -> None:
    image = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(2, 4, 6)
    target = image[0].long()
    flipped_image, flipped_target = Augmentation(hflip=1.0)(image, target)
    assert torch.equal(flipped_image, image.flip(-1)) and torch.equal(flipped_target, target.flip(-1))
    torch.manual_seed(0)
    cropped_image, cropped_target = Augmentation(crop=[2, 3])(image, target)
    assert cropped_image.shape == (2, 2, 3) and torch.equal(cropped_image[0].long(), cropped_target)


def test_no_augmentation_is_the_identity_and_bad_settings_fail() -> None:
    image, target = torch.rand(3, 5, 5), torch.zeros(5, 5, dtype=torch.long)
    out_image, out_target = Augmentation()(image, target)
    assert out_image is image and out_target is target
    with pytest.raises(AlsegError, match="probability"):
        Augmentation(hflip=2.0)
    with pytest.raises(AlsegError, match="larger than the images"):
        Augmentation(crop=[8, 8])(image, target)


def test_a_run_trains_on_crops_and_evaluates_whole_images(run_tiny) -> None:
    plain, _ = run_tiny("strategy=entropy")
    augmented, _ = run_tiny("dataset.augment.hflip=0.5", "dataset.augment.crop=[16,16]", "strategy=entropy")
    assert [row["cost_images"] for row in augmented] == [4, 8, 12]
    assert 0 <= augmented[0]["test_miou"] <= 1
    assert augmented[0]["test_miou"] != plain[0]["test_miou"]  # training saw other pixels
