"""The embedded synthetic dataset: deterministic, imbalanced, with exact polygons."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from alseg.data.synthetic import CLASS_NAMES, render_image, synthetic_splits
from alseg.errors import AlsegError


@pytest.fixture(scope="module")
def splits():
    return synthetic_splits(train=200, val=4, test=4, size=48, seed=0)


def test_same_seed_same_images_other_seed_other_images() -> None:
    a, b, c = (synthetic_splits(5, 1, 1, 32, seed) for seed in (0, 0, 1))
    assert torch.equal(a.train.image(3), b.train.image(3))
    assert torch.equal(a.train.target(3), b.train.target(3))
    assert not torch.equal(a.train.image(3), c.train.image(3))
    assert not torch.equal(a.train.image(0), a.val.image(0))


def test_images_and_targets_have_the_documented_types(splits) -> None:
    image, target = splits.train.image(0), splits.train.target(0)
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert image.min() >= 0 and image.max() <= 1
    assert target.shape == (48, 48) and target.dtype == torch.int64
    assert splits.num_classes == len(CLASS_NAMES) >= 5


def test_classes_are_imbalanced_with_a_rare_small_class(splits) -> None:
    labels = np.stack([splits.train.target(i).numpy() for i in range(len(splits.train))])
    frequency = np.bincount(labels.ravel(), minlength=len(CLASS_NAMES)) / labels.size
    assert (frequency > 0).all()
    rare = int(np.argmin(frequency))
    assert CLASS_NAMES[rare] == "spot" and frequency[rare] < 0.01
    images_with_rare = (labels == rare).reshape(len(labels), -1).any(axis=1).mean()
    assert 0.05 < images_with_rare < 0.4


def test_each_object_is_its_polygon() -> None:
    _, label, polygons = render_image(seed=0, split="train", index=7, size=64, noise=0.0)
    redrawn = Image.new("L", (64, 64), 0)
    for cls, vertices in polygons:
        ImageDraw.Draw(redrawn).polygon([tuple(v) for v in vertices.astype(float).tolist()], fill=cls)
    assert (np.asarray(redrawn) == label).mean() > 0.99
    assert all(len(v) >= 3 for _, v in polygons)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(AlsegError, match="at least 1 image"):
        synthetic_splits(train=0)
    with pytest.raises(AlsegError, match="size"):
        synthetic_splits(size=8)
