"""What every dataset gives the rest of alseg: images, label maps and, where known, polygons."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

IGNORE_INDEX = 255
"""Label value of pixels that carry no label (void, border, or not labelled yet)."""

Polygon = tuple[int, np.ndarray]
"""One annotated object: its class and its vertices as an (N, 2) array of (x, y) pixels."""


class ImageSource(Protocol):
    """Images of a split, without labels: all that strategies are given of the pool.

    Images are float tensors (3, H, W) in [0, 1], all of one size.
    """

    class_names: tuple[str, ...]
    image_size: tuple[int, int]

    def __len__(self) -> int: ...

    def image(self, index: int) -> torch.Tensor: ...

    def derived(self, index: int, name: str, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """`compute(image)` of the decoded image (uint8, 3 x H x W), cached with the images
        under `name` (superpixel maps): computed once per image, kept where the images are."""
        ...


class SegmentationDataset(ImageSource, Protocol):
    """A split of a segmentation dataset: images and their labels.

    Targets are long tensors (H, W) with class indices in [0, num_classes) and IGNORE_INDEX
    for void pixels. `unannotated_classes` are classes annotators do not outline (background):
    they cost no clicks.

    Click costs are counted on the image as the annotator sees it, whatever size the network
    trains at: `annotation_size`, `annotation_target` and `polygons` are at that resolution.
    """

    unannotated_classes: tuple[int, ...]
    per_image_classes: tuple[int, ...]  # classes also scored per image (a challenge's metric)

    def target(self, index: int) -> torch.Tensor: ...

    def annotation_size(self, index: int) -> tuple[int, int]:
        """(H, W) of the image as annotated: its original file's size."""
        ...

    def annotation_target(self, index: int) -> np.ndarray:
        """The label map (H, W) at `annotation_size`: what click estimates are counted on."""
        ...

    def annotation_image(self, index: int) -> np.ndarray:
        """The image (H, W, 3) uint8 at `annotation_size`: what people label."""
        ...

    def polygons(self, index: int) -> list[Polygon] | None:
        """Annotated polygons in `annotation_size` pixels, or None when the dataset has none."""
        ...

    def source(self, index: int) -> str:
        """Where the image comes from (its file), as people labelling it are told."""
        ...


@dataclass(frozen=True)
class DataSplits:
    """The splits of one dataset: the pool to label, and the evaluation splits."""

    train: SegmentationDataset
    val: SegmentationDataset
    test: SegmentationDataset

    @property
    def num_classes(self) -> int:
        return len(self.train.class_names)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names

    @property
    def val_is_test(self) -> bool:
        """Whether val also serves as the test split (Cityscapes, BDD100K, VOC: their test
        labels are not public), so that test numbers are val numbers."""
        return self.val is self.test
