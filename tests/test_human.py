"""oracle=human: the query goes out as files, the answers come back, and the run continues
exactly as the simulated one when the answers are the ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alseg.data.base import IGNORE_INDEX
from alseg.errors import AlsegError
from alseg.experiment import Experiment, label_run
from alseg.labels.human import VOID_ANSWER, brush_results, pending_cycle, query_dir

RUN = ("debug=tiny", "strategy=entropy", "budget.cycles=2")
SAME = (
    "cost_images",
    "cost_pixels",
    "cost_regions",
    "labelled_fraction",
    "queried_units",
    "test_miou",
    "val_miou",
)


def truth_of(experiment: Experiment, image: int, regions: list[int]) -> np.ndarray:
    """What a careful annotator paints on an image's task: the ground truth of its queried regions."""
    inside = experiment.state.regions[image].mask(np.array(regions))
    truth = experiment.data.train.target(image).numpy()
    return np.where(inside, truth, IGNORE_INDEX).astype(np.uint8)


def tasks_of(query: dict) -> dict[str, tuple[int, list[int]]]:
    """Each task of a query: its image and its queried regions."""
    tasks: dict[str, tuple[int, list[int]]] = {}
    for unit in query["units"]:
        tasks.setdefault(unit["task"], (unit["image"], []))[1].append(unit["region"])
    return tasks


def label_studio_export(experiment: Experiment, folder: Path) -> Path:
    """The query's tasks, answered from the ground truth, as Label Studio exports them."""
    query = json.loads((folder / "query.json").read_text())
    tasks = json.loads((folder / "tasks.json").read_text())
    names = experiment.data.class_names
    painted = {name: truth_of(experiment, *where) for name, where in tasks_of(query).items()}
    export = [
        {
            "id": 100 + n,
            "data": task["data"],
            "annotations": [{"id": n, "result": brush_results(painted[task["data"]["task"]], names)}],
        }
        for n, task in enumerate(tasks)
    ]
    path = folder.parent / f"{folder.name}_export.json"
    path.write_text(json.dumps(export))
    return path


def mask_folder(experiment: Experiment, folder: Path) -> Path:
    query = json.loads((folder / "query.json").read_text())
    out = folder.parent / f"{folder.name}_masks"
    out.mkdir()
    for name, where in tasks_of(query).items():
        Image.fromarray(truth_of(experiment, *where)).save(out / f"{name}.png")
    return out


def comparable(rows: list[dict]) -> list[dict]:
    return [{key: row[key] for key in SAME} for row in rows]


@pytest.mark.parametrize("answers", ["label_studio", "mask_folder"])
def test_answers_from_the_ground_truth_give_the_simulated_run(make_cfg, tmp_path, answers: str) -> None:
    simulated = Experiment(make_cfg(*RUN), tmp_path / "simulated").run()
    root = tmp_path / "human"
    cfg = make_cfg(*RUN, "oracle=human")
    for cycle in (1, 2):
        rows = Experiment(cfg, root).run()
        assert len(rows) == cycle and pending_cycle(root) == cycle
        assert Experiment(cfg, root).run() == rows  # rerun before labelling: it waits, trains nothing
        folder = query_dir(root, cycle)
        assert {p.name for p in folder.iterdir()} >= {
            "images",
            "regions",
            "predictions",
            "tasks.json",
            "query.json",
        }
        query = json.loads((folder / "query.json").read_text())
        assert len(query["units"]) == rows[-1]["queried_units"] == 4
        reader = Experiment(cfg, root)
        source = (
            label_studio_export(reader, folder) if answers == "label_studio" else mask_folder(reader, folder)
        )
        cost = label_run(root, source)
        assert cost["images"] == 4 and cost["clicks"] > 0 and pending_cycle(root) is None
    rows = Experiment(cfg, root).run()
    assert comparable(rows) == comparable(simulated)
    assert rows[0]["cost_clicks"] == simulated[0]["cost_clicks"]  # the initial set, from the dataset


def test_the_query_holds_images_regions_and_predictions_for_label_studio(make_cfg, tmp_path) -> None:
    root = tmp_path / "run"
    cfg = make_cfg(*RUN, "oracle=human", "regions=superpixels", "budget.unit=regions", "budget.per_cycle=5")
    Experiment(cfg, root).run()
    folder = query_dir(root, 1)
    query = json.loads((folder / "query.json").read_text())
    tasks = json.loads((folder / "tasks.json").read_text())
    by_task = tasks_of(query)
    images = {unit["image"] for unit in query["units"]}
    assert len(query["units"]) == 5 and len(tasks) == len(by_task) == len(images)
    for task in tasks:  # one task an image, holding all of its queried regions
        name = task["data"]["task"]
        image, regions = by_task[name]
        region = np.asarray(Image.open(folder / "regions" / f"{name}.png")) > 0
        prediction = np.asarray(Image.open(folder / "predictions" / f"{name}.png"))
        expected = Experiment(cfg, root).state.regions[image].mask(np.array(regions))
        assert np.array_equal(region, expected) and not region.all()  # its superpixels, not the image
        assert (prediction[~region] == IGNORE_INDEX).all() and (prediction[region] != IGNORE_INDEX).all()
        assert task["data"]["image"].startswith("data:image/png;base64,")
        assert task["data"]["regions"] == regions and task["data"]["pool_image"] == image
        assert task["data"]["source"] and task["predictions"][0]["result"]
    scores = [task["data"]["score"] for task in tasks]
    assert scores == sorted(scores, reverse=True)  # the most informative image first
    config = (folder / "labeling_config.xml").read_text()
    assert "<BrushLabels" in config and '<Label value="(void)"/>' in config


def test_bad_answers_stop_with_one_line_and_apply_nothing(make_cfg, tmp_path) -> None:
    root = tmp_path / "run"
    cfg = make_cfg(*RUN, "oracle=human")
    Experiment(cfg, root).run()
    folder = query_dir(root, 1)
    state_before = (root / "state" / "cycle_000.npz").read_bytes()
    masks = mask_folder(Experiment(cfg, root), folder)
    first = sorted(masks.iterdir())[0]
    Image.fromarray(np.full((32, 32), 9, dtype=np.uint8)).save(first)
    with pytest.raises(AlsegError, match=r"holds values \[9\]; classes are 0..5") as error:
        label_run(root, masks)
    assert "\n" not in str(error.value)
    first.unlink()
    with pytest.raises(AlsegError, match="answers no task"):
        label_run(root, masks)
    Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(first)
    with pytest.raises(AlsegError, match="is 16x16, not 32x32"):
        label_run(root, masks)
    assert (root / "state" / "cycle_000.npz").read_bytes() == state_before and pending_cycle(root) == 1


def test_pixels_said_void_train_as_ignore(make_cfg, tmp_path) -> None:
    root = tmp_path / "run"
    cfg = make_cfg(*RUN, "oracle=human")
    Experiment(cfg, root).run()
    masks = mask_folder(Experiment(cfg, root), query_dir(root, 1))
    first = sorted(masks.iterdir())[0]
    answer = np.asarray(Image.open(first)).copy()
    answer[:5] = VOID_ANSWER  # the annotator says: no class here
    Image.fromarray(answer).save(first)
    label_run(root, masks)
    image = tasks_of(json.loads((query_dir(root, 1) / "query.json").read_text()))[first.stem][0]
    target = Experiment(cfg, root).oracle.training_target(image).numpy()
    assert (target[:5] == IGNORE_INDEX).all() and (target[5:] != IGNORE_INDEX).all()


def test_human_oracle_refuses_click_budgets(make_cfg, tmp_path) -> None:
    with pytest.raises(AlsegError, match=r"people.s answers need budget\.unit images, pixels or regions"):
        Experiment(make_cfg(*RUN, "oracle=human", "strategy=cereals"), tmp_path)


def test_human_and_simulated_cycles_mix(make_cfg, tmp_path) -> None:
    """People answer cycle 1's query; the run then continues with the simulated oracle and
    still trains on their answers: the same curve as a simulated run throughout."""
    simulated = Experiment(make_cfg(*RUN), tmp_path / "simulated").run()
    root = tmp_path / "mixed"
    cfg = make_cfg(*RUN, "oracle=human")
    Experiment(cfg, root).run()
    label_run(root, mask_folder(Experiment(cfg, root), query_dir(root, 1)))
    rows = Experiment(make_cfg(*RUN, "oracle=simulated"), root).run()
    assert comparable(rows) == comparable(simulated) and pending_cycle(root) is None
    assert (root / "answers" / "cycle_001.npz").exists() and not (root / "queries" / "cycle_002").exists()


def test_a_pool_of_ones_own_images_without_masks_is_labelled_by_people(make_cfg, tmp_path) -> None:
    """dataset=folder with dataset.unlabelled: the initial set comes from the images with masks,
    the rest of the pool has none until people answer; the simulated oracle is refused."""
    from test_folder_dataset import write_folder

    root = write_folder(tmp_path / "data", count=36, size=(32, 32))
    (root / "unlabelled").mkdir()
    truth = {}
    for image in sorted((root / "images").glob("*.jpg"))[:16]:  # these lose their masks
        mask = root / "masks" / f"{image.stem}.png"
        truth[image.stem] = np.asarray(Image.open(mask))
        image.rename(root / "unlabelled" / image.name)
        mask.unlink()
    base = (
        "dataset=folder", f"dataset.root={root}", "dataset.classes=[background,a,b]",
        "dataset.unlabelled=unlabelled",
        "dataset.unannotated_classes=[0]", "dataset.splits.size=[32,32]", "debug=tiny", "budget.cycles=1",
        "dataset.splits.limit=null", "strategy=random", "seed=3",
    )  # fmt: skip
    with pytest.raises(AlsegError, match=r"16 pool images have no mask .* run with oracle=human"):
        Experiment(make_cfg(*base), tmp_path / "refused")
    run_dir, cfg = tmp_path / "run", make_cfg(*base, "oracle=human")
    experiment = Experiment(cfg, run_dir)
    pool = experiment.data.train
    without = set(pool.unlabelled().tolist())
    assert len(without) == 16
    experiment.run()
    assert not set(np.flatnonzero(experiment.state.labelled_at[:, 0] == 0).tolist()) & without
    query = json.loads((query_dir(run_dir, 1) / "query.json").read_text())
    answers = tmp_path / "answers"
    answers.mkdir()
    for name, (image, _) in tasks_of(query).items():
        stem = pool.pairs[image][0].stem
        mask = truth[stem] if stem in truth else np.asarray(Image.open(pool.pairs[image][1]))
        Image.fromarray(mask).resize((32, 32), Image.Resampling.NEAREST).save(answers / f"{name}.png")
    assert any(unit["image"] in without for unit in query["units"]), "random picks some of the 16"
    label_run(run_dir, answers)
    rows = Experiment(cfg, run_dir).run()
    assert len(rows) == 2 and rows[1]["cost_images"] == 8
    answered = [unit["image"] for unit in query["units"] if unit["image"] in without]
    target = Experiment(cfg, run_dir).oracle.training_target(answered[0])
    assert (target != IGNORE_INDEX).all()  # trained on the people's answer, not on a missing mask


def shapes_folder(root: Path, count: int, size: tuple[int, int]) -> Path:
    """Images with a disc and a slanted bar each (classes 1 and 2 on background 0): outlines
    whose clicks depend on the resolution they are drawn at."""
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rows, cols = np.mgrid[: size[0], : size[1]]
    for i in range(count):
        cy, cx, r = (
            rng.integers(size[0] // 4, 3 * size[0] // 4),
            rng.integers(size[1] // 4, 3 * size[1] // 4),
            9,
        )
        mask = np.zeros(size, dtype=np.uint8)
        mask[(rows - cy) ** 2 + (cols - cx) ** 2 < r * r] = 1
        mask[np.abs(rows - 0.5 * cols - i % 7) < 3] = 2
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
            root / "images" / f"im{i:02d}.png"
        )
        Image.fromarray(mask).save(root / "masks" / f"im{i:02d}.png")
    return root


@pytest.mark.parametrize("regions", ["image", "superpixels"])
def test_painted_answers_cost_what_the_simulated_oracle_charges(make_cfg, tmp_path, regions: str) -> None:
    """The same units, labelled by the simulated oracle and by people painting the same ground
    truth at the image's own size (64 x 80, trained at 32 x 40): the same clicks, cycle by cycle."""
    data = shapes_folder(tmp_path / "data", 30, (64, 80))
    run = (
        "dataset=folder", f"dataset.root={data}", "dataset.classes=[background,disc,bar]",
        "dataset.unannotated_classes=[0]", "debug=tiny", "dataset.splits.size=[32,40]", "strategy=random",
        "budget.cycles=1", f"regions={regions}", "budget.unit=regions", "budget.per_cycle=12",
    )  # fmt: skip
    simulated = Experiment(make_cfg(*run), tmp_path / "simulated").run()
    root, cfg = tmp_path / "human", make_cfg(*run, "oracle=human")
    Experiment(cfg, root).run()
    folder = query_dir(root, 1)
    query = json.loads((folder / "query.json").read_text())
    reader = Experiment(cfg, root)
    answers = tmp_path / "answers"
    answers.mkdir()
    assert all(unit["size"] == [64, 80] for unit in query["units"])  # as the image's file holds it
    for name, (image, regions) in tasks_of(query).items():
        assert Image.open(folder / "images" / f"{name}.png").size == (80, 64)
        truth = reader.data.train.annotation_target(image)
        inside = reader.state.regions[image].mask_at(np.array(regions), (64, 80))
        Image.fromarray(np.where(inside, truth, IGNORE_INDEX).astype(np.uint8)).save(answers / f"{name}.png")
    cost = label_run(root, answers)
    rows = Experiment(cfg, root).run()
    assert cost["clicks"] == simulated[1]["cost_clicks"] - simulated[0]["cost_clicks"] > 0
    assert [r["cost_clicks"] for r in rows] == [r["cost_clicks"] for r in simulated]
    assert comparable(rows) == comparable(simulated)  # trained on the same labels


def test_indexed_png_answers_are_read_as_class_indices(make_cfg, tmp_path) -> None:
    root = tmp_path / "run"
    cfg = make_cfg(*RUN, "oracle=human")
    Experiment(cfg, root).run()
    masks = mask_folder(Experiment(cfg, root), query_dir(root, 1))
    for path in masks.iterdir():  # the same answers, saved with a palette
        indexed = Image.fromarray(np.asarray(Image.open(path)), mode="L").convert("P")
        indexed.putpalette([255 - v for v in range(256) for _ in range(3)])  # colours unlike the indices
        indexed.save(path)
    assert label_run(root, masks)["images"] == 4
    rgb = sorted(masks.iterdir())[0]
    Image.open(rgb).convert("RGB").save(rgb)
    (root / "queries" / "pending.json").write_text(json.dumps({"cycle": 1}))
    with pytest.raises(AlsegError, match="is a RGB image; an answer is a PNG of class indices"):
        label_run(root, masks)
