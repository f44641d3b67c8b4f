"""dataset=folder: images/ + masks/ + class names is a dataset, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alseg.data.base import IGNORE_INDEX
from alseg.data.folder import folder_splits
from alseg.errors import AlsegError
from alseg.experiment import Experiment

PALETTE = [[0, 0, 0], [200, 30, 30], [30, 200, 30]]


def write_folder(root: Path, count: int = 12, rgb: bool = False, size=(24, 32)) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
            root / "images" / f"im{i:02d}.jpg"
        )
        mask = np.zeros(size, dtype=np.uint8)
        mask[4:12, 6:20] = 1 + i % 2
        mask[0, 0] = 255
        if rgb:
            colours = np.array([*PALETTE, [255, 255, 255]], dtype=np.uint8)
            Image.fromarray(colours[np.where(mask == 255, 3, mask)]).save(root / "masks" / f"im{i:02d}.png")
        else:
            Image.fromarray(mask).save(root / "masks" / f"im{i:02d}.png")
    return root


def test_a_folder_with_class_names_is_a_dataset(tmp_path: Path) -> None:
    splits = folder_splits(str(write_folder(tmp_path)), ["background", "a", "b"], size=(24, 32))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (10, 1, 1)
    stems = {p[0].stem for split in (splits.train, splits.val, splits.test) for p in split.pairs}
    assert len(stems) == 12  # a partition of the images
    target = splits.train.target(0).numpy()
    assert target[0, 0] == IGNORE_INDEX and set(np.unique(target)) <= {0, 1, 2, IGNORE_INDEX}
    again = folder_splits(str(tmp_path), ["background", "a", "b"], size=(24, 32))
    assert [p[0] for p in again.val.pairs] == [p[0] for p in splits.val.pairs]  # seeded


def test_rgb_masks_with_a_palette(tmp_path: Path) -> None:
    root = write_folder(tmp_path, rgb=True)
    splits = folder_splits(
        str(root), ["background", "a", "b"], palette=PALETTE, ignore_color=[255, 255, 255], size=(24, 32)
    )
    gray = folder_splits(str(write_folder(tmp_path / "gray")), ["background", "a", "b"], size=(24, 32))
    np.testing.assert_array_equal(splits.train.target(3).numpy(), gray.train.target(3).numpy())
    with pytest.raises(AlsegError, match=r"colours \[\(255, 255, 255\)\] that are not in dataset.palette"):
        folder_splits(str(root), ["background", "a", "b"], palette=PALETTE, size=(24, 32)).train.target(0)


def test_split_files_choose_the_splits(tmp_path: Path) -> None:
    root = write_folder(tmp_path)
    for name, stems in (("train", range(8)), ("val", range(8, 10)), ("test", range(10, 12))):
        (root / f"{name}.txt").write_text("\n".join(f"im{i:02d}" for i in stems) + "\n")
    files = {name: f"{name}.txt" for name in ("train", "val", "test")}
    splits = folder_splits(str(root), ["background", "a", "b"], split_files=files, size=(24, 32))
    assert [p[0].stem for p in splits.test.pairs] == ["im10", "im11"] and len(splits.train) == 8
    (root / "val.txt").write_text("im08\nnope\n")
    with pytest.raises(AlsegError, match=r"val.txt lists \['nope'\], which have no image and mask pair"):
        folder_splits(str(root), ["background", "a", "b"], split_files=files)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("mask_missing", "images have no mask in"),
        ("image_missing", "masks have no image"),
        ("bad_value", r"holds label values \[7\] outside the classes"),
        ("bad_size", "an image and its label must have the same size"),
        ("corrupt", "cannot decode"),
    ],
)
def test_bad_folders_fail_with_one_line(tmp_path: Path, damage: str, message: str) -> None:
    root = write_folder(tmp_path)
    if damage == "mask_missing":
        (root / "masks" / "im03.png").unlink()
    elif damage == "image_missing":
        (root / "images" / "im03.jpg").unlink()
    elif damage == "bad_value":
        Image.fromarray(np.full((24, 32), 7, dtype=np.uint8)).save(root / "masks" / "im00.png")
    elif damage == "bad_size":
        Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(root / "masks" / "im00.png")
    else:
        (root / "images" / "im00.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(AlsegError, match=message) as error:
        splits = folder_splits(str(root), ["background", "a", "b"], size=(24, 32))
        for split in (splits.train, splits.val, splits.test):
            for index in range(len(split)):
                split.target(index)
    assert "\n" not in str(error.value)


def test_missing_root_and_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(AlsegError, match="does not exist; put images in"):
        folder_splits(str(tmp_path / "absent"), ["a", "b"])
    root = write_folder(tmp_path / "data", count=2)
    with pytest.raises(AlsegError, match="too few for a train, a val and a test split"):
        folder_splits(str(root), ["background", "a", "b"])
    with pytest.raises(AlsegError, match=r"ignore_index=1 must be in \[3, 255\]"):
        folder_splits(str(root), ["background", "a", "b"], ignore_index=1)


def test_alseg_runs_on_a_folder_dataset(make_cfg, tmp_path: Path) -> None:
    root = write_folder(tmp_path / "data", count=30, size=(32, 32))
    cfg = make_cfg(
        "dataset=folder", f"dataset.root={root}", "dataset.classes=[background,a,b]", "debug=tiny",
        "regions=superpixels", "budget.cycles=1",
    )  # fmt: skip
    rows = Experiment(cfg, tmp_path / "run").run()
    assert len(rows) == 2 and 7.9 < rows[1]["cost_images"] <= 8  # superpixels of 4 images' worth


CAMVID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "CamVid"


@pytest.mark.skipif(not CAMVID.is_dir(), reason="../shared/data/CamVid is absent")
def test_camvid_laid_out_as_a_folder_dataset_runs(make_cfg, tmp_path: Path) -> None:
    """A user's layout of CamVid: images/ and masks/ (links to the files), void 11 ignored."""
    root = tmp_path / "camvid_folder"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for image in sorted((CAMVID / "train").glob("*.png"))[:30]:
        (root / "images" / image.name).symlink_to(image)
        (root / "masks" / image.name).symlink_to(CAMVID / "trainannot" / image.name)
    classes = "[sky,building,pole,road,pavement,tree,sign_symbol,fence,car,pedestrian,bicyclist]"
    cfg = make_cfg(
        "dataset=folder", f"dataset.root={root}", f"dataset.classes={classes}",
        "dataset.ignore_index=11", "debug=tiny",
        "dataset.splits.size=[48,64]", "budget.cycles=1",
    )  # fmt: skip
    experiment = Experiment(cfg, tmp_path / "run")
    assert (len(experiment.data.train), len(experiment.data.val), len(experiment.data.test)) == (24, 3, 3)
    rows = experiment.run()
    assert len(rows) == 2 and rows[0]["clicks_counted_at"] == "360x480 (label maps)"


def binary_folder(root: Path, foreground: int, count: int = 12, suffix: str = ".png") -> Path:
    """Lesion-like masks: background 0 and a square of `foreground` (255 as most tools save)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(
            root / "images" / f"im{i:02d}.png"
        )
        mask = np.zeros((24, 32), dtype=np.uint8)
        mask[6:18, 8 + i % 4 : 20 + i % 4] = foreground
        Image.fromarray(mask).save(root / "masks" / f"im{i:02d}{suffix}")
    return root


def test_binary_masks_stored_as_0_255_are_refused_with_the_fix(tmp_path: Path) -> None:
    root = str(binary_folder(tmp_path, 255))
    with pytest.raises(
        AlsegError, match=r"hold only the values 0 and 255 .* dataset.values=\[0,255\]"
    ) as error:
        folder_splits(root, ["background", "lesion"], size=(24, 32))
    assert "\n" not in str(error.value)
    splits = folder_splits(root, ["background", "lesion"], values=[0, 255], size=(24, 32))
    target = splits.train.target(0).numpy()
    assert set(np.unique(target).tolist()) == {0, 1} and (target == 1).sum() == 12 * 12  # the lesion
    with pytest.raises(AlsegError, match=r"dataset\.values must give 2 distinct"):
        folder_splits(root, ["background", "lesion"], values=[0, 0], size=(24, 32))


def test_jpeg_masks_are_refused_as_lossy(tmp_path: Path) -> None:
    root = str(binary_folder(tmp_path / "a", 1, suffix=".jpg"))
    with pytest.raises(AlsegError, match="JPEG masks are lossy"):
        folder_splits(root, ["background", "lesion"], mask_suffix=".jpg", size=(24, 32))
    disguised = binary_folder(tmp_path / "b", 1)  # JPEG bytes behind a .png name
    for mask in (disguised / "masks").iterdir():
        Image.open(mask).convert("L").save(mask, format="JPEG")
    splits = folder_splits(str(disguised), ["background", "lesion"], size=(24, 32))
    with pytest.raises(AlsegError, match="is a JPEG: lossy compression"):
        splits.train.target(0)


def test_out_of_range_values_name_the_keys_to_change(tmp_path: Path) -> None:
    root = str(binary_folder(tmp_path, 7))
    splits = folder_splits(root, ["background", "lesion"], size=(24, 32))
    with pytest.raises(AlsegError, match=r"values \[7\] outside .*dataset.ignore_index=7, .*dataset.values"):
        splits.train.target(0)


def test_a_class_no_mask_holds_is_a_warning_naming_it(make_cfg, tmp_path: Path, caplog) -> None:
    from alseg.experiment import Experiment

    root = binary_folder(tmp_path / "data", 1, count=30)
    cfg = make_cfg(
        "dataset=folder", f"dataset.root={root}", "dataset.classes=[background,lesion,vessel]",
        "dataset.splits.size=[24,32]", "debug=tiny", "budget.cycles=0",
    )  # fmt: skip
    with caplog.at_level("WARNING", logger="alseg"):
        Experiment(cfg, tmp_path / "run").run()
    warnings = [r.getMessage() for r in caplog.records if "no mask of the" in r.getMessage()]
    assert len(warnings) == 2 and all("class vessel:" in w for w in warnings)  # val and test
    assert all("lesion" not in w for w in warnings)
