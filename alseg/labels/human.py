"""A human annotator in the loop: the queried units go out as files, the answers come back.

With `oracle=human` a run stops after each acquisition and writes the batch to label under
`RUN_DIR/queries/cycle_<k>/`: per image (a task, holding all of its queried regions) the
image as its file holds it, the mask of its queried regions and the model's prediction
restricted to them (`images/`, `regions/`, `predictions/`, PNGs named by task), a Label Studio
import (`tasks.json`: the image embedded once, its source file named, brush pre-annotations
restricted to the regions; `labeling_config.xml` for the project, with a `(void)` label for
pixels of no class), and `query.json` listing each queried unit with its task. `alseg label
RUN_DIR --from EXPORT` reads the answers back, from a Label Studio JSON export (brush RLE,
decoded with Label Studio's SDK, and polygons) or from a folder of mask PNGs named by task,
checks them, pays the ledger and records them; the same `alseg run` command then continues.
The initial set is labelled from the dataset's masks (the labelled images one starts with).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from alseg.atomic import atomic_write, atomic_write_text
from alseg.data.base import IGNORE_INDEX, SegmentationDataset
from alseg.data.files import resize_labels
from alseg.errors import AlsegError
from alseg.labels.ledger import COST_UNITS, CostLedger
from alseg.labels.oracle import Oracle
from alseg.labels.state import LabelState

PAINTED_MIN_SIDE = 256
"""Below this side (px) the contour estimate under-counts a polygon dataset's vertices
(tests/test_click_costs.py)."""
log = logging.getLogger("alseg")
VOID_LABEL = "(void)"
"""The label people give pixels that belong to no class (IGNORE_INDEX when training)."""
VOID_ANSWER = 254
"""A void answer's value in an answer map (and in answer PNGs), until it trains as IGNORE_INDEX."""
QUERIES = "queries"
PENDING = "pending.json"
ANSWERS = "answers"


def query_dir(root: Path, cycle: int) -> Path:
    return root / QUERIES / f"cycle_{cycle:03d}"


def pending_cycle(root: Path) -> int | None:
    """The cycle whose query awaits its answers, or None."""
    path = root / QUERIES / PENDING
    return int(json.loads(path.read_text())["cycle"]) if path.exists() else None


class HumanOracle(Oracle):
    """An oracle whose answers come from people: a query is recorded as pending, not labelled,
    and training reads the answered label maps (`RUN_DIR/answers/`) for the units they
    answered; the initial set comes from the dataset's masks. With `asks_people` False (a run
    resumed with the simulated oracle) new queries are answered from the dataset, while the
    earlier answers still train."""

    def __init__(
        self,
        pool: SegmentationDataset,
        state: LabelState,
        ledger: CostLedger,
        root: Path,
        asks_people: bool = True,
    ) -> None:
        super().__init__(pool, state, ledger)
        self.root = root
        self.asks_people = asks_people
        self.pending: list[tuple[int, int]] = []
        self._answers: dict[int, np.ndarray] | None = None

    @classmethod
    def for_run(
        cls,
        pool: SegmentationDataset,
        state: LabelState,
        ledger: CostLedger,
        root: Path,
        unit: str,
        annotation: str,
        dominant_share: float,
        **options: Any,
    ) -> HumanOracle:
        if unit == "clicks" or annotation != "precise":
            raise AlsegError(
                "people's answers need budget.unit images, pixels or regions and budget.annotation=precise: "
                "clicks are known only once the answers come back"
            )
        return cls(pool, state, ledger, root, **options)

    def _unit_clicks_now(self, image: int, region: int, new_pixels: int) -> float:
        """Clicks are known only once the answer is back (`apply_answers` pays them)."""
        return super()._unit_clicks_now(image, region, new_pixels) if not self.asks_people else 0.0

    def label(
        self, image: int, region: int, cycle: int, cost: dict[str, float] | None = None
    ) -> dict[str, float]:
        """Queue the unit for the annotator; nothing is paid or labelled until it is answered."""
        if not self.asks_people:
            return super().label(image, region, cycle, cost)
        self.pending.append((image, region))
        return cost or self.unit_cost(image, region)

    def answered(self) -> dict[int, np.ndarray]:
        """Label maps (H, W) per image from every applied answer (IGNORE_INDEX elsewhere)."""
        if self._answers is None:
            self._answers = {}
            for path in sorted((self.root / ANSWERS).glob("cycle_*.npz")):
                with np.load(path) as saved:
                    for image, answer in zip(saved["images"].tolist(), saved["maps"], strict=True):
                        known = self._answers.setdefault(image, np.full(answer.shape, IGNORE_INDEX, np.uint8))
                        known[answer != IGNORE_INDEX] = answer[answer != IGNORE_INDEX]
        return self._answers

    def training_target(self, image: int) -> torch.Tensor:
        target = super().training_target(image)
        if image in self.answered():
            answer = torch.from_numpy(self.answered()[image]).long()
            target = torch.where(answer != IGNORE_INDEX, answer, target)
        return target

    def wrong_label_share(self) -> float:
        return 0.0  # the truth of human answers is not known; precise simulated labels are exact


def _write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def labeling_config(class_names: tuple[str, ...]) -> str:
    """The Label Studio project config: brush and polygon labels of the classes on the image."""
    labels = "".join(f'<Label value="{name}"/>' for name in (*class_names, VOID_LABEL))
    return (
        '<View><Image name="image" value="$image" zoom="true"/>'
        f'<BrushLabels name="brush" toName="image">{labels}</BrushLabels>'
        f'<PolygonLabels name="polygon" toName="image">{labels}</PolygonLabels></View>'
    )


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def brush_results(label_map: np.ndarray, class_names: tuple[str, ...]) -> list[dict[str, Any]]:
    """A label map (H, W) as Label Studio brush results, one per class present (RLE by the SDK)."""
    from label_studio_sdk.converter.brush import mask2rle

    height, width = label_map.shape
    results = []
    for cls in np.unique(label_map).tolist():
        if cls == IGNORE_INDEX:
            continue
        rle = mask2rle(np.where(label_map == cls, 255, 0).astype(np.uint8))
        results.append(
            {
                "from_name": "brush", "to_name": "image", "type": "brushlabels",
                "original_width": width, "original_height": height, "image_rotation": 0,
                "value": {"format": "rle", "rle": rle, "brushlabels": [class_names[cls]]},
            }
        )  # fmt: skip
    return results


def write_query(
    root: Path,
    cycle: int,
    units: list[tuple[int, int]],
    pool: SegmentationDataset,
    predictions: list[np.ndarray],
    state: LabelState,
    class_names: tuple[str, ...],
    scores: np.ndarray | None = None,
) -> Path:
    """Write the batch to label (see the module docstring) and mark it pending; its folder.
    Images, regions and predictions are at each image's annotation size (as its file holds it),
    so that people label, and are paid for, what the simulated oracle prices. With the
    strategy's `scores` of the units, each task carries its best unit's score and the tasks
    come most informative first (the order Label Studio shows them in)."""
    folder = query_dir(root, cycle)
    for sub in ("images", "regions", "predictions"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    regions_of: dict[int, list[int]] = {}  # the queried regions of each image, in query order
    predicted_of: dict[int, np.ndarray] = {}
    score_of: dict[int, float] = {}
    unit_scores = np.full(len(units), np.nan) if scores is None else np.asarray(scores, dtype=np.float64)
    for (image, region), predicted, score in zip(units, predictions, unit_scores.tolist(), strict=True):
        regions_of.setdefault(image, []).append(region)
        predicted_of[image] = predicted
        score_of[image] = max(score_of.get(image, -math.inf), score if math.isfinite(score) else -math.inf)
    ordered = sorted(regions_of, key=lambda image: -score_of[image])  # stable: query order on ties
    tasks, listed = [], []
    for number, image in enumerate(ordered):
        regions = regions_of[image]
        task = f"t{number:04d}"
        size = pool.annotation_size(image)
        inside = state.regions[image].mask_at(np.array(regions), size)
        restricted = np.where(inside, resize_labels(predicted_of[image], size), IGNORE_INDEX).astype(np.uint8)
        files = {
            "images": _png(pool.annotation_image(image)),
            "regions": _png(inside.astype(np.uint8) * 255),
            "predictions": _png(restricted),
        }
        for sub, data in files.items():
            _write_bytes(folder / sub / f"{task}.png", data)
        for region in regions:
            box = [int(v) for v in state.regions[image].boxes[region]]
            listed.append({"task": task, "image": image, "region": region, "box": box, "size": list(size)})
        url = "data:image/png;base64," + base64.b64encode(files["images"]).decode()
        fields = {"image": url, "task": task, "pool_image": image, "regions": regions}
        fields["source"] = pool.source(image)
        if math.isfinite(score_of[image]):
            fields["score"] = score_of[image]
        prediction = {"model_version": f"cycle_{cycle:03d}", "result": brush_results(restricted, class_names)}
        tasks.append({"data": fields, "predictions": [prediction]})
    query = {
        "cycle": cycle,
        "classes": list(class_names),
        "training_size": list(state.image_size),
        "units": listed,
    }
    atomic_write_text(folder / "query.json", json.dumps(query, indent=1))
    atomic_write_text(folder / "tasks.json", json.dumps(tasks))
    atomic_write_text(folder / "labeling_config.xml", labeling_config(class_names) + "\n")
    atomic_write_text(root / QUERIES / PENDING, json.dumps({"cycle": cycle}) + "\n")
    return folder


@dataclass
class Answer:
    """One task's answer: its label map (H, W; IGNORE_INDEX where unpainted) and, when drawn
    as polygons, the clicks they took."""

    label_map: np.ndarray
    polygon_clicks: int | None


def answer_size(query: dict, unit: dict) -> tuple[int, int]:
    """(H, W) a unit's answer comes at: its image's annotation size (queries written before
    that was recorded: the training size)."""
    size = unit.get("size") or query.get("size") or query["training_size"]
    return int(size[0]), int(size[1])


def read_label_studio(export: Path, query: dict) -> dict[str, Answer]:
    """Answers from a Label Studio JSON export: brush RLE (decoded by the SDK) and polygons
    (points in percent of the image), painted in the order drawn; the latest annotation of a
    task counts."""
    from label_studio_sdk.converter.brush import decode_rle

    names = {name: cls for cls, name in enumerate(query["classes"])} | {VOID_LABEL: VOID_ANSWER}
    sizes = {unit["task"]: answer_size(query, unit) for unit in query["units"]}
    answers: dict[str, Answer] = {}
    for task in json.loads(export.read_text()):
        key = task.get("data", {}).get("task")
        annotations = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
        if key not in sizes or not annotations:
            continue
        height, width = sizes[key]
        label_map = np.full((height, width), IGNORE_INDEX, dtype=np.uint8)
        clicks = 0
        polygons_only = True
        for result in annotations[-1].get("result", []):
            value, kind = result.get("value", {}), result.get("type", "")
            labels = value.get("brushlabels") or value.get("polygonlabels") or []
            if len(labels) != 1 or labels[0] not in names:
                raise AlsegError(
                    f"{export}: task {key} has labels {labels}; each answer names one of {query['classes']}"
                )
            if (result.get("original_height"), result.get("original_width")) not in (
                (height, width),
                (None, None),
            ):
                raise AlsegError(
                    f"{export}: task {key} was drawn on a {result.get('original_width')}x"
                    f"{result.get('original_height')} image; the query's images are {width}x{height}"
                )
            if kind == "brushlabels":
                polygons_only = False
                mask = np.reshape(decode_rle(value["rle"]), (height, width, 4))[:, :, 3] > 127
                label_map[mask] = names[labels[0]]
            elif kind == "polygonlabels":
                points = [(x / 100 * width, y / 100 * height) for x, y in value["points"]]
                canvas = Image.new("L", (width, height), 0)
                ImageDraw.Draw(canvas).polygon(points, fill=1)
                label_map[np.asarray(canvas, dtype=bool)] = names[labels[0]]
                clicks += len(points)
        answers[key] = Answer(label_map, clicks if polygons_only else None)
    return answers


def read_mask_folder(folder: Path, query: dict) -> dict[str, Answer]:
    """Answers as mask PNGs named by task (class indices, 255 unlabelled)."""
    answers = {}
    for unit in query["units"]:
        path = folder / f"{unit['task']}.png"
        if path.exists():
            with Image.open(path) as mask:
                if mask.mode not in ("L", "P"):  # an indexed PNG holds class indices, not colours
                    raise AlsegError(
                        f"{path} is a {mask.mode} image; an answer is a PNG of class indices (mode L or P)"
                    )
                answers[unit["task"]] = Answer(np.asarray(mask).copy(), None)
    return answers


def checked_answers(
    answers: dict[str, Answer], query: dict, source: Path, state: LabelState, fill: int | None
) -> list[np.ndarray]:
    """Each task's answer restricted to its region, checked: every task answered, known
    classes, the query's size, the region covered (unpainted pixels take the `fill` class, the
    dataset's background, when it has one). One error, and nothing applied, otherwise."""
    missing = [unit["task"] for unit in query["units"] if unit["task"] not in answers]
    if missing:
        raise AlsegError(
            f"{source} answers no task {missing[:5]} ({len(missing)} of {len(query['units'])}); "
            "label them all"
        )
    classes, restricted = len(query["classes"]), []
    for unit in query["units"]:
        answer = answers[unit["task"]].label_map
        size = answer_size(query, unit)
        if answer.shape != size:
            raise AlsegError(
                f"{source}: task {unit['task']} is {answer.shape[1]}x{answer.shape[0]}, not "
                f"{size[1]}x{size[0]} (the image as the query holds it)"
            )
        inside = state.regions[unit["image"]].mask_at(np.array([unit["region"]]), size)
        values = answer[inside]
        bad = sorted(set(np.unique(values).tolist()) - set(range(classes)) - {IGNORE_INDEX, VOID_ANSWER})
        if bad:
            raise AlsegError(
                f"{source}: task {unit['task']} holds values {bad}; classes are 0..{classes - 1} "
                f"({VOID_ANSWER}: void)"
            )
        if (values == IGNORE_INDEX).any():
            if fill is None:
                unlabelled = int((values == IGNORE_INDEX).sum())
                raise AlsegError(
                    f"{source}: task {unit['task']} leaves {unlabelled} pixels of region {unit['region']} "
                    f"unlabelled; label the whole region ({VOID_LABEL} for pixels of no class)"
                )
            answer = np.where(inside & (answer == IGNORE_INDEX), fill, answer)
        answer = np.where(answer == VOID_ANSWER, IGNORE_INDEX, answer)  # said void: trains as ignore
        restricted.append(np.where(inside, answer, IGNORE_INDEX).astype(np.uint8))
    return restricted


def apply_answers(
    oracle: HumanOracle,
    query: dict,
    maps: list[np.ndarray],
    answers: dict[str, Answer],
) -> dict[str, float]:
    """Label the query's units with the answers, pay the ledger and store them, at the training
    size, under RUN_DIR/answers/. Clicks are the polygons' vertices where drawn as polygons,
    else the outlines of the answer within its region at the annotation resolution: the rule
    that prices the ground truth of a dataset without polygons (`Oracle.answer_clicks`).
    Returns what the query cost."""
    total = dict.fromkeys(COST_UNITS, 0.0)
    cycle = int(query["cycle"])
    training, small = [], set()
    units_of = Counter(unit["task"] for unit in query["units"])
    for unit, answer in zip(query["units"], maps, strict=True):
        image, region = int(unit["image"]), int(unit["region"])
        cost = oracle.unit_cost(image, region)
        # polygons drawn over several queried regions of an image are priced per region by the
        # outline rule; a task of one region costs its vertices
        drawn = answers[unit["task"]].polygon_clicks if units_of[unit["task"]] == 1 else None
        annotated = resize_labels(answer, oracle.annotation_size(image))
        cost["clicks"] = float(drawn) if drawn is not None else oracle.answer_clicks(image, region, annotated)
        if drawn is None and oracle.has_polygons(image) and min(annotated.shape) < PAINTED_MIN_SIDE:
            small.add(annotated.shape)
        oracle.state.mark(np.array([[image, region]]), cycle, np.array([cost["clicks"]]))
        oracle.ledger.charge(cost)
        for key in COST_UNITS:
            total[key] += cost[key]
        inside = oracle.state.regions[image].mask(np.array([region]))
        labels = resize_labels(answer, oracle.state.image_size)
        training.append(np.where(inside, labels, IGNORE_INDEX).astype(np.uint8))
    if small:
        log.warning(
            "painted answers at %s are priced by the contour estimate, which counts about a third fewer "
            "clicks than this dataset's polygons at sides under %d px (docs/click_costs.md): costs of "
            "people's and simulated cycles differ in scale",
            ", ".join(f"{h}x{w}" for h, w in sorted(small)), PAINTED_MIN_SIDE,
        )  # fmt: skip
    images = np.array([unit["image"] for unit in query["units"]], dtype=np.int64)
    (oracle.root / ANSWERS).mkdir(parents=True, exist_ok=True)
    atomic_write(
        oracle.root / ANSWERS / f"cycle_{cycle:03d}.npz",
        lambda handle: np.savez(handle, images=images, maps=np.stack(training)),
    )
    return total
