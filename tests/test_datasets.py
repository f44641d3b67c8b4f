"""File datasets: the official layouts, real data when present, one clear error per bad input."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from alseg.data.base import IGNORE_INDEX
from alseg.data.camvid import camvid_splits
from alseg.data.isic import isic2017_splits
from alseg.errors import AlsegError
from alseg.experiment import run

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_camvid = pytest.mark.skipif(not (SHARED / "CamVid").is_dir(), reason="../shared/data/CamVid is absent")
needs_isic = pytest.mark.skipif(
    not (SHARED / "ISIC2017").is_dir(), reason="../shared/data/ISIC2017 is absent"
)


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_camvid(root: Path, per_split: int = 3, size=(36, 48), label_value: int | None = None) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        lines = []
        for i in range(per_split):
            name = f"{split}_{i:03d}.png"
            write_png(root / split / name, rng.integers(0, 255, (*size, 3), dtype=np.uint8))
            labels = rng.integers(0, 12, size, dtype=np.uint8)
            if label_value is not None:
                labels[0, 0] = label_value
            write_png(root / f"{split}annot" / name, labels)
            lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def write_isic(root: Path, count: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for folder in ("Training", "Validation"):
        for i in range(count):
            stem = f"ISIC_{i:07d}"
            image = Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
            (root / f"ISIC-2017_{folder}_Data").mkdir(parents=True, exist_ok=True)
            image.save(root / f"ISIC-2017_{folder}_Data" / f"{stem}.jpg")
            mask = np.zeros((40, 40), dtype=np.uint8)
            mask[10:30, 12:28] = 255
            write_png(root / f"ISIC-2017_{folder}_Part1_GroundTruth" / f"{stem}_segmentation.png", mask)
    return root


def test_camvid_layout_is_read_resized_and_void_ignored(tmp_path: Path) -> None:
    splits = camvid_splits(str(write_camvid(tmp_path)), size=(18, 24))
    assert [len(s) for s in (splits.train, splits.val, splits.test)] == [3, 3, 3]
    image, target = splits.train.image(0), splits.train.target(0)
    assert image.shape == (3, 18, 24) and target.shape == (18, 24)
    values = set(np.unique(target.numpy()).tolist())
    assert values <= set(range(11)) | {IGNORE_INDEX} and IGNORE_INDEX in values
    assert splits.num_classes == 11


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.mkdir(), "is empty"),
        (lambda root: (write_camvid(root), (root / "val.txt").unlink()), "missing split file"),
        (lambda root: (write_camvid(root), (root / "trainannot" / "train_001.png").unlink()), "has no label"),
        (lambda root: (write_camvid(root), (root / "test" / "test_002.png").unlink()), "does not exist"),
    ],
)
def test_camvid_layout_errors_name_the_problem(tmp_path: Path, damage, message: str) -> None:
    root = tmp_path / "CamVid"
    damage(root)
    with pytest.raises(AlsegError, match=message):
        camvid_splits(str(root))


def test_label_values_outside_the_classes_are_refused(tmp_path: Path) -> None:
    splits = camvid_splits(str(write_camvid(tmp_path, label_value=40)))
    with pytest.raises(AlsegError, match=r"train_000\.png holds label values \[40\] outside the classes"):
        splits.train.target(0)


def test_image_and_label_of_different_sizes_are_refused(tmp_path: Path) -> None:
    root = write_camvid(tmp_path)
    write_png(root / "trainannot" / "train_000.png", np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(AlsegError, match="must have the same size"):
        camvid_splits(str(root)).train.image(0)


def test_corrupt_image_is_refused(tmp_path: Path) -> None:
    root = write_camvid(tmp_path)
    (root / "train" / "train_002.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(AlsegError, match=r"cannot decode .*train_002\.png"):
        camvid_splits(str(root)).train.image(2)


def test_isic_layout_binary_and_test_falls_back_to_validation(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="alseg"):
        splits = isic2017_splits(str(write_isic(tmp_path)), size=(20, 20))
    assert "validation split is used as the test split" in caplog.text
    assert splits.class_names == ("background", "lesion")
    target = splits.train.target(1).numpy()
    assert set(np.unique(target).tolist()) == {0, 1} and target[10, 10] == 1
    assert splits.test is splits.val


def test_experiment_on_written_camvid_runs_and_missing_root_fails(make_cfg, tmp_path: Path) -> None:
    root = write_camvid(tmp_path / "CamVid", per_split=6)
    overrides = [
        "dataset=camvid",
        "dataset.splits.size=[32,32]",
        "model.network.encoder_depth=3",
        "model.network.decoder_channels=[16,8,4]",
        "budget.initial=2",
        "budget.per_cycle=2",
        "budget.cycles=1",
        "train.epochs=1",
        "train.min_steps=1",
        "progress=false",
    ]
    rows = run(make_cfg(*overrides, f"dataset.root={root}"), tmp_path / "run")
    assert [row["cost_images"] for row in rows] == [2, 4]
    assert "test_iou_bicyclist" in rows[0]
    with pytest.raises(AlsegError, match=r"CamVid root .* does not exist"):
        run(make_cfg(*overrides, f"dataset.root={tmp_path / 'nowhere'}"), tmp_path / "run2")


@needs_camvid
def test_real_camvid() -> None:
    splits = camvid_splits(str(SHARED / "CamVid"), size=(90, 120))
    assert [len(s) for s in (splits.train, splits.val, splits.test)] == [367, 101, 233]
    target = splits.test.target(5).numpy()
    assert set(np.unique(target).tolist()) <= set(range(11)) | {IGNORE_INDEX}
    assert len(np.unique(target)) > 4


@needs_isic
def test_real_isic2017() -> None:
    splits = isic2017_splits(str(SHARED / "ISIC2017"), size=(64, 64))
    assert (len(splits.train), len(splits.val)) == (2000, 150)
    target = splits.val.target(0).numpy()
    assert set(np.unique(target).tolist()) <= {0, 1} and target.any()


def test_disk_cache_serves_decoded_pairs_and_notices_changed_or_damaged_files(tmp_path: Path, caplog) -> None:
    root = write_camvid(tmp_path / "CamVid")
    cache = tmp_path / "cache"
    first = camvid_splits(str(root), size=(18, 24), cache_dir=str(cache))
    image, target = first.train.image(0), first.train.target(0)
    (entry,) = cache.glob("*.npz")
    # A truncated entry is deleted and rebuilt with a warning.
    entry.write_bytes(entry.read_bytes()[:40])
    caplog.set_level("WARNING", logger="alseg")
    again = camvid_splits(str(root), size=(18, 24), cache_dir=str(cache))
    assert torch.equal(again.train.image(0), image) and torch.equal(again.train.target(0), target)
    assert "is damaged" in caplog.text and np.load(entry)["image"].shape == (3, 18, 24)
    # New content under the old modification time: the byte size is in the key, so it is decoded.
    source = root / "train" / "train_000.png"
    stat = source.stat()
    source.write_bytes(b"broken")
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(AlsegError, match="cannot decode"):
        camvid_splits(str(root), size=(18, 24), cache_dir=str(cache)).train.image(0)
