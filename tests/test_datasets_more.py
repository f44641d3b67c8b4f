"""Cityscapes, BDD100K, VOC and GlaS layouts, on the real samples where present, and the
contour estimate of click costs against exact polygon counts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from alseg.data.base import IGNORE_INDEX
from alseg.data.cityscapes import bdd100k_splits, cityscapes_splits
from alseg.data.glas import glas_splits
from alseg.data.views import EvaluationImages
from alseg.data.voc import voc_splits
from alseg.errors import AlsegError
from alseg.labels.ledger import CostLedger
from alseg.labels.oracle import Oracle
from alseg.labels.state import LabelState
from alseg.metrics import evaluate
from alseg.regions.boxes import WholeImage

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "samples"
needs = {
    name: pytest.mark.skipif(not (SAMPLES / name).is_dir(), reason=f"../shared/data/samples/{name} is absent")
    for name in ("cityscapes", "bdd100k", "voc")
}
CITY = "frankfurt_000000_000294"
BDD_POLYGONS = SAMPLES / "bdd100k" / "labels" / "pan_seg" / "polygons" / "sample_polygons.json"


def cityscapes_layout(root: Path, polygons: bool) -> Path:
    """The real sample copied into train and val, with a polygons file in the official schema."""
    source = SAMPLES / "cityscapes"
    for split in ("train", "val"):
        for kind, suffix in (("leftImg8bit", "_leftImg8bit.png"), ("gtFine", "_gtFine_labelIds.png")):
            target = root / kind / split / "frankfurt"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / kind / "val" / "frankfurt" / f"{CITY}{suffix}", target)
        if polygons:
            objects = [
                {"label": "road", "polygon": [[0, 60], [255, 60], [255, 127], [0, 127]], "deleted": 0},
                {
                    "label": "cargroup",
                    "polygon": [[10, 70], [60, 70], [60, 100], [35, 110], [10, 100]],
                    "deleted": 0,
                },
                {"label": "ego vehicle", "polygon": [[0, 120], [255, 120], [128, 127]], "deleted": 0},
            ]
            document = {"imgHeight": 128, "imgWidth": 256, "objects": objects}
            (root / "gtFine" / split / "frankfurt" / f"{CITY}_gtFine_polygons.json").write_text(
                json.dumps(document)
            )
    return root


@needs["cityscapes"]
def test_cityscapes_maps_label_ids_to_train_ids_and_reads_polygons(tmp_path: Path) -> None:
    splits = cityscapes_splits(str(cityscapes_layout(tmp_path, polygons=True)), size=(64, 128))
    raw = np.asarray(
        Image.open(SAMPLES / "cityscapes/gtFine/val/frankfurt" / f"{CITY}_gtFine_labelTrainIds.png")
    )
    target = splits.train.target(0).numpy()
    expected = np.asarray(Image.fromarray(raw).resize((128, 64), Image.Resampling.NEAREST))
    assert (target == expected).mean() > 0.99  # the official trainIds, up to resizing
    assert splits.test is splits.val and splits.num_classes == 19
    polygons = splits.train.polygons(0)
    assert [cls for cls, _ in polygons] == [0, 13, IGNORE_INDEX]
    # Polygons stay in the file's pixels (256 x 128): clicks are counted as drawn.
    np.testing.assert_allclose(polygons[1][1][:2], [[10, 70], [60, 70]])
    assert splits.train.annotation_size(0) == (128, 256)
    oracle = Oracle(splits.train, LabelState(WholeImage().maps(splits.train), (64, 128)), CostLedger())
    assert oracle.reveal([(0, 0)], cycle=0)["clicks"] == 4 + 5 + 3


@needs["cityscapes"]
def test_cityscapes_without_polygons_estimates_clicks_and_bad_json_fails(tmp_path: Path) -> None:
    splits = cityscapes_splits(str(cityscapes_layout(tmp_path / "a", polygons=False)), size=(64, 128))
    assert splits.train.polygons(0) is None
    oracle = Oracle(splits.train, LabelState(WholeImage().maps(splits.train), (64, 128)), CostLedger())
    assert oracle.reveal([(0, 0)], cycle=0)["clicks"] > 10
    root = cityscapes_layout(tmp_path / "b", polygons=True)
    (root / "gtFine/train/frankfurt" / f"{CITY}_gtFine_polygons.json").write_text("{not json")
    with pytest.raises(AlsegError, match="not a Cityscapes polygons file"):
        cityscapes_splits(str(root)).train.polygons(0)


def test_cityscapes_errors(tmp_path: Path) -> None:
    with pytest.raises(AlsegError, match=r"Cityscapes root .* does not exist"):
        cityscapes_splits(str(tmp_path / "none"))
    (tmp_path / "leftImg8bit" / "val").mkdir(parents=True)
    with pytest.raises(AlsegError, match="no images in"):
        cityscapes_splits(str(tmp_path))


@needs["bdd100k"]
def test_bdd100k_real_masks_and_poly2d_costs(tmp_path: Path) -> None:
    frame = json.loads(BDD_POLYGONS.read_text())[0]
    for split in ("train", "val"):
        masks = tmp_path / "labels/sem_seg/masks" / split
        images = tmp_path / "images/10k" / split
        masks.mkdir(parents=True)
        images.mkdir(parents=True)
        for name in ("sample_a", "sample_b"):
            shutil.copy(SAMPLES / "bdd100k/labels/sem_seg/masks/val" / f"{name}.png", masks)
            Image.new("RGB", (1280, 720), (90, 90, 90)).save(images / f"{name}.jpg")
        polygons = tmp_path / "labels/sem_seg/polygons"
        polygons.mkdir(parents=True, exist_ok=True)
        (polygons / f"sem_seg_{split}.json").write_text(json.dumps([{**frame, "name": "sample_a.jpg"}]))
    splits = bdd100k_splits(str(tmp_path), size=(72, 128))
    target = splits.train.target(0).numpy()
    assert set(np.unique(target).tolist()) <= set(range(19)) | {IGNORE_INDEX} and len(np.unique(target)) > 5
    polygons = splits.train.polygons(0)
    assert len(polygons) == 76 and sum(len(v) for _, v in polygons) == 7496
    assert splits.train.polygons(1) is None  # no frame for sample_b: costs are estimated


@needs["voc"]
def test_voc_real_sample(tmp_path: Path) -> None:
    root = tmp_path / "VOC2012"
    shutil.copytree(SAMPLES / "voc" / "VOC2012", root)
    (root / "ImageSets/Segmentation/train.txt").write_text("2007_000063\n")
    splits = voc_splits(str(root), size=(125, 166))
    target = splits.train.target(0).numpy()
    assert set(np.unique(target).tolist()) == {0, 9, 12, IGNORE_INDEX}  # background, chair, dog, border
    assert splits.class_names[9] == "chair" and splits.num_classes == 21
    assert splits.val_is_test  # VOC's test labels are not public: said in the log and the report
    (root / "ImageSets/Segmentation/train.txt").write_text("2007_000063\nmissing_id\n")
    with pytest.raises(AlsegError, match="lists missing_id"):
        voc_splits(str(root))


def test_glas_layout_is_binary_from_instance_ids(tmp_path: Path) -> None:
    for prefix in ("train", "testA", "testB"):
        for i in (1, 2):
            Image.new("RGB", (30, 20), (200, 100, 150)).save(tmp_path / f"{prefix}_{i}.bmp")
            anno = np.zeros((20, 30), dtype=np.uint8)
            anno[2:8, 2:10], anno[10:18, 12:25] = 1, 7  # two glands with instance ids
            Image.fromarray(anno).save(tmp_path / f"{prefix}_{i}_anno.bmp")
    (tmp_path / "Grade.csv").write_text("name,grade\n")
    splits = glas_splits(str(tmp_path), size=(20, 30))
    assert [len(s) for s in (splits.train, splits.val, splits.test)] == [2, 2, 2]
    target = splits.test.target(1).numpy()
    assert set(np.unique(target).tolist()) == {0, 1} and target[12, 15] == 1
    assert set(np.unique(splits.test.instances(1)).tolist()) == {0, 1, 7}  # instances kept for F1
    perfect = evaluate(
        OraclePredictor(splits.test),
        DataLoader(EvaluationImages(splits.test), batch_size=2),
        2,
        torch.device("cpu"),
    )
    assert perfect["object_f1"] == 1.0 and perfect["miou"] == 1.0
    (tmp_path / "testB_2_anno.bmp").unlink()
    with pytest.raises(AlsegError, match="has no label"):
        glas_splits(str(tmp_path))


class OraclePredictor(torch.nn.Module):
    """Predicts each image's true labels (the images of a split are told apart by index)."""

    def __init__(self, split) -> None:
        super().__init__()
        self.split = split
        self.calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        targets = torch.stack([self.split.target(self.calls + i) for i in range(len(images))])
        self.calls += len(images)
        return torch.nn.functional.one_hot(targets, 2).permute(0, 3, 1, 2).float()
