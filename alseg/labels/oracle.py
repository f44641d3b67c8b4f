"""The annotator: the only code that reads the ground truth of units not labelled yet."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alseg.clicks import Annotation, OutlineSamples, cut_clicks, label_map_outlines, polygon_clicks
from alseg.data.base import IGNORE_INDEX, SegmentationDataset
from alseg.labels.answers import answer_mode
from alseg.labels.ledger import COST_UNITS, CostLedger
from alseg.labels.state import NO_CLASS, LabelState, candidate_mask


class ImagesOnly:
    """A view of a dataset that gives its images and nothing of its labels."""

    def __init__(self, dataset: SegmentationDataset) -> None:
        self._dataset = dataset
        self.class_names = dataset.class_names
        self.image_size = dataset.image_size

    def __len__(self) -> int:
        return len(self._dataset)

    def image(self, index: int) -> torch.Tensor:
        return self._dataset.image(index)

    def derived(self, index: int, name: str, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return self._dataset.derived(index, name, compute)


class Oracle:
    """The annotator: reveals the ground truth of queried units and charges their cost.

    It is the only holder of the pool's ground truth. Training reads labels through
    `training_target`, which hides every pixel that is not labelled. `annotation` names the
    mode that answers a unit (alseg.labels.answers). Outlined units cost the clicks of
    outlining them, counted at the annotation resolution (each region map clips the outlines to
    its regions on the image as annotated), once per unit, lazily; a unit answered with its
    exact pixels after a fill click pays the cuts inside it, counted the same way.
    """

    def __init__(
        self,
        pool: SegmentationDataset,
        state: LabelState,
        ledger: CostLedger,
        annotation: str = "precise",
        dominant_share: float = 0.0,
    ) -> None:
        self._pool = pool
        self.mode = answer_mode(annotation, dominant_share)
        self.state = state
        self.ledger = ledger
        self.pool_images = ImagesOnly(pool)
        self._annotations: dict[int, Annotation] = {}
        self._unit_clicks: dict[int, dict[int, float]] = {}
        self._whole_clicks: dict[int, float] = {}
        self._true_answers: dict[int, torch.Tensor] = {}  # true_answers of dominant labels, per image
        self._mixed_clicks: dict[tuple[int, int], float] = {}  # dominant_or_precise, per mixed unit
        self._every_outline: dict[int, list] = {}  # dominant_or_precise: outlines of every value

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
    ) -> Oracle:
        """The oracle of a run in `root` whose budget is in `unit` and whose units are answered
        by `annotation`; `options`: the rest of its config (`oracle=<name>`, configs/oracle/)."""
        return cls(pool, state, ledger, annotation, dominant_share, **options)

    def clicks_counted_at(self) -> str:
        """The annotation size(s) (H x W) at which clicks are counted, for cycles.csv."""
        sizes = {self._pool.annotation_size(i) for i in range(len(self._pool))}
        low, high = min(sizes), max(sizes)
        name = "polygons" if self._pool.polygons(0) is not None else "label maps"
        span = f"{low[0]}x{low[1]}" if low == high else f"{low[0]}x{low[1]} to {high[0]}x{high[1]}"
        return f"{span} ({name})"

    def unit_cost(self, image: int, region: int) -> dict[str, float]:
        """What labelling one unit costs now, in every cost unit.

        Only pixels not labelled yet are paid for; where a region overlaps labelled pixels,
        its clicks are scaled by the share of its area that is new.
        """
        inside = self.state.regions[image].mask(np.array([region]))
        new_pixels = int((inside & ~self.state.pixel_mask(image)).sum())
        height, width = self.state.image_size
        return {
            "images": new_pixels / (height * width),
            "pixels": float(new_pixels),
            "regions": 1.0,
            "clicks": self._unit_clicks_now(image, region, new_pixels),
        }

    def _unit_clicks_now(self, image: int, region: int, new_pixels: int) -> float:
        """Clicks of labelling the unit's `new_pixels`: one with dominant-class answers, else
        its outline clicks scaled by the share of its area that is new."""
        if not self.mode.outlined:
            return float(self._class_answers(image, np.array([region]))[1][0]) if new_pixels else 0.0
        area = float(self.state.regions[image].areas[region])
        return float(self._clicks(image, np.array([region]))[0] * new_pixels / area)

    def reveal_images(self, images: np.ndarray, cycle: int) -> None:
        """Label whole images (every unit of each) and charge each image once, as one region."""
        height, width = self.state.image_size
        clicks = 0.0
        for image in images.tolist():
            # Each unit keeps its own click count (what a region-level model learns from),
            # while the ledger pays for the image once.
            regions = np.arange(self.state.regions.counts[image])
            units = np.stack([np.full_like(regions, image), regions], axis=1)
            if not self.mode.outlined:  # every unit answered by the mode
                codes, unit_clicks = self._class_answers(image, regions)
                self.state.mark(units, cycle, unit_clicks.astype(np.float32))
                self.state.dominant[image, regions] = codes
                clicks += float(unit_clicks.sum())
                continue
            self.state.mark(units, cycle, self._clicks(image, regions).astype(np.float32))
            clicks += self.image_clicks(image)
        self.ledger.charge(
            {
                "images": len(images),
                "pixels": len(images) * height * width,
                "regions": len(images),
                "clicks": clicks,
            }
        )

    def _annotation(self, image: int) -> Annotation:
        """What the annotator draws on the image: its polygons, or the outlines of its label map."""
        if image not in self._annotations:
            self._annotations[image] = Annotation(
                self._pool.annotation_size(image),
                self._pool.polygons(image),
                lambda: self._pool.annotation_target(image),
                (*self._pool.unannotated_classes, IGNORE_INDEX),
            )
        return self._annotations[image]

    def _clicks(self, image: int, regions: np.ndarray) -> np.ndarray:
        """Clicks of the image's units `regions`, counted as annotated (cached)."""
        known = self._unit_clicks.setdefault(image, {})
        region_map = self.state.regions[image]
        wanted = range(region_map.count) if region_map.prices_together else regions.tolist()
        missing = [r for r in wanted if r not in known]
        if missing:
            counted = region_map.clicks(self._annotation(image), np.array(missing))
            known.update(zip(missing, counted.tolist(), strict=True))
        return np.array([known[r] for r in regions.tolist()], dtype=np.float64)

    def has_polygons(self, image: int) -> bool:
        """Whether the image's ground truth is drawn polygons (priced by their vertices)."""
        return self._pool.polygons(image) is not None

    def annotation_size(self, image: int) -> tuple[int, int]:
        """(H, W) of the image as annotated."""
        return self._pool.annotation_size(image)

    def answer_clicks(self, image: int, region: int, answer: np.ndarray) -> float:
        """Clicks of a painted answer (a label map of the image at its annotation size,
        IGNORE_INDEX outside the unit), counted by the rule that prices the ground truth of a
        dataset without polygons: its outlines within the unit, at the annotation resolution."""
        size = self._pool.annotation_size(image)
        if answer.shape != size:
            raise ValueError(f"an answer of image {image} is {answer.shape}, not its annotation size {size}")
        drawing = Annotation(size, None, lambda: answer, (*self._pool.unannotated_classes, IGNORE_INDEX))
        return float(self.state.regions[image].clicks(drawing, np.array([region]))[0])

    def image_clicks(self, image: int) -> float:
        """Clicks of the whole image, counted once however its units overlap (cached)."""
        if image not in self._whole_clicks:
            height, width = self._pool.annotation_size(image)
            whole = np.array([[0, 0, height, width]])
            self._whole_clicks[image] = float(polygon_clicks(self._annotation(image).outlines, whole)[0])
        return self._whole_clicks[image]

    def reveal(self, units: Iterable[tuple[int, int]], cycle: int) -> dict[str, float]:
        """Label the units, charge the ledger and return the cost of this query.

        A unit the oracle labels replaces any pseudo-label of its pixels.
        """
        total = dict.fromkeys(COST_UNITS, 0.0)
        for image, region in units:
            cost = self.label(image, region, cycle)
            for unit in COST_UNITS:
                total[unit] += cost[unit]
        return total

    def label(
        self, image: int, region: int, cycle: int, cost: dict[str, float] | None = None
    ) -> dict[str, float]:
        """Mark one unit labelled and charge what it costs now (`cost`, when already priced)."""
        cost = cost or self.unit_cost(image, region)
        self.state.mark(np.array([[image, region]]), cycle, np.array([cost["clicks"]]))
        if not self.mode.outlined:
            self.state.dominant[image, region] = self._class_answers(image, np.array([region]))[0][0]
        self.ledger.charge(cost)
        return cost

    def revealed_clicks(self) -> tuple[np.ndarray, np.ndarray]:
        """Labelled units (K, 2) and the clicks each cost: what an annotator's log records."""
        units = np.argwhere(self.state.labelled)
        return units, self.state.clicks[units[:, 0], units[:, 1]]

    def true_clicks(self) -> np.ndarray:
        """Clicks of every unit (images, regions; NaN beyond an image's regions), read from hidden
        labels (upper-bound ablations only)."""
        table = np.full(self.state.labelled_at.shape, np.nan)
        for image, count in enumerate(self.state.regions.counts.tolist()):
            table[image, :count] = self._clicks(image, np.arange(count))
        return table

    def true_targets(self, indices: np.ndarray) -> torch.Tensor:
        """Ground-truth label maps (B, H, W) of the given images, labelled or not (upper-bound
        ablations only)."""
        return torch.stack([self._pool.target(int(i)) for i in indices])

    def true_answers(self, indices: np.ndarray) -> torch.Tensor:
        """What the annotator would answer (B, H, W) if every unit of the given images were
        queried: each unit's dominant class with dominant labels (overlapping units: the later
        one's answer), else the ground truth (a class answer holds every pixel's class).
        With dominant_or_precise, a mixed unit's answer is its ground truth. Upper-bound
        ablations only."""
        if self.mode.answers_are_truth:
            return self.true_targets(indices)
        answers = []
        for image in indices.tolist():
            if image not in self._true_answers:
                region_map = self.state.regions[image]
                regions = np.arange(region_map.count)
                painted = region_map.paint(regions, self._class_answers(image, regions)[0], IGNORE_INDEX)
                exact = np.where(painted == NO_CLASS, self._pool.target(image).numpy(), painted)
                self._true_answers[image] = torch.from_numpy(exact)
            answers.append(self._true_answers[image])
        return torch.stack(answers).long()

    def remaining_capacity(self, unit: str) -> float:
        """Cost (in `unit`) of labelling everything not labelled yet.

        Clicks are priced per image (its whole-image clicks times its unlabelled share), so
        overlapping windows are not counted twice and the check stays linear in the pool.
        """
        if unit == "regions":
            return float(self.state.available.sum())
        height, width = self.state.image_size
        total = 0.0
        for image in self.state.unlabelled_images().tolist():
            new_share = 1.0 - self.state.pixel_mask(image).mean()
            if unit == "clicks":
                total += self.image_clicks(image) * new_share
            else:
                total += new_share * (height * width if unit == "pixels" else 1.0)
        return total

    def _class_answers(self, image: int, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each region's answer (its label value, see `LabelState.dominant`) and its clicks, by
        the annotation mode; an exact answer (NO_CLASS) also pays the cuts of everything but its
        top class inside it. Void pixels count in the region's area."""
        truth = self._pool.target(image).numpy()
        region_map = self.state.regions[image]
        codes = np.full(len(regions), IGNORE_INDEX, dtype=np.int64)
        clicks = np.ones(len(regions))
        mixed: dict[int, list[int]] = {}  # exact answers: top class -> indices into regions
        for k, region in enumerate(regions.tolist()):
            values = truth[region_map.mask(np.array([region]))]
            counts = np.bincount(values[values != IGNORE_INDEX], minlength=1)
            codes[k], clicks[k] = self.mode.answer(counts, len(values))
            if codes[k] == NO_CLASS:
                mixed.setdefault(int(np.argmax(counts)), []).append(k)
        for top, indices in mixed.items():
            clicks[indices] += self._outline_clicks_without(image, regions[indices], top)
        return codes, clicks

    def _outline_clicks_without(self, image: int, regions: np.ndarray, cls: int) -> np.ndarray:
        """Clicks of drawing every class but `cls` inside each of the image's `regions` (cached),
        once a region is filled with `cls`: the outlines' corners inside it and a start and an
        end where each crosses its border (`cut_clicks`), at the annotation resolution; the
        region's own border is drawn. Every value is outlined here, the unannotated background
        and void included: an object filling most of a unit is cut from the background around
        it, and void is marked as void, since training reads the unit's exact pixels."""
        missing = [r for r in regions.tolist() if (image, r) not in self._mixed_clicks]
        if missing:
            if image not in self._every_outline:
                self._every_outline[image] = label_map_outlines(self._pool.annotation_target(image), ())
            samples = OutlineSamples([o for o in self._every_outline[image] if o[0] != cls])
            region_map = self.state.regions[image]
            size = self._pool.annotation_size(image)
            for region in missing:
                inside = region_map.mask_at(np.array([region]), size)
                self._mixed_clicks[(image, region)] = float(cut_clicks(samples, inside))
        return np.array([self._mixed_clicks[(image, r)] for r in regions.tolist()])

    def training_target(self, image: int) -> torch.Tensor:
        """Oracle labels of an image where labelled (exact pixels, or a unit's class answer over
        the whole unit), else its pseudo-label, else IGNORE_INDEX."""
        if image in self.state.pseudo:
            target = torch.from_numpy(self.state.pseudo[image]).long()
        else:
            target = torch.full(self.state.image_size, IGNORE_INDEX, dtype=torch.long)
        labelled = self.state.labelled[image]
        answered = self.state.dominant[image]
        dominant = np.flatnonzero(labelled & (answered != NO_CLASS))
        if len(dominant):
            painted = torch.from_numpy(self.state.regions[image].paint(dominant, answered[dominant]))
            target = torch.where(painted >= 0, painted, target)
        precise = np.flatnonzero(labelled & (answered == NO_CLASS))
        if len(precise):
            mask = torch.from_numpy(self.state.regions[image].mask(precise))
            target[mask] = self._pool.target(image)[mask]
        return target

    def wrong_label_share(self) -> float:
        """Share of the oracle-labelled pixels (of known class) whose training label excludes
        their class: what dominant-class labels get wrong (0 with precise labels)."""
        wrong = known = 0
        for image in self.state.labelled_images().tolist():
            mask = torch.from_numpy(self.state.pixel_mask(image))
            truth, given = self._pool.target(image)[mask], self.training_target(image)[mask]
            valid = truth != IGNORE_INDEX
            classes = len(self._pool.class_names)
            allowed = candidate_mask(given.view(1, 1, -1), classes)[0, :, 0, :]  # (C, pixels)
            right = allowed.gather(0, truth.clamp(max=classes - 1).view(1, -1))[0]
            known += int(valid.sum())
            wrong += int((valid & allowed.any(dim=0) & ~right).sum())
        return wrong / known if known else 0.0
