"""Annotation modes: how the annotator answers a queried unit, one class each.

A mode turns a unit's ground truth (pixels per class, its area) into the answer training
reads (`LabelState.dominant`: a class, a class set, IGNORE_INDEX, or NO_CLASS for the unit's
exact pixels) and the clicks that answer costs. Exact answers are priced by outlines, which
need the image as annotated, so the oracle prices them: a precise unit by its region map's
outline clicks, a unit answered exactly after a fill click by the cuts inside it.

Adding a mode is one class here: subclass `AnswerMode`, set its name and flags, and add it to
ANSWER_MODES (`budget.annotation=<name>` then selects it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from alseg.data.base import IGNORE_INDEX
from alseg.errors import AlsegError
from alseg.labels.state import NO_CLASS, class_set_code


class AnswerMode(ABC):
    """How a queried unit is answered, given `share` (budget.dominant_share, a fraction)."""

    name: ClassVar[str]
    outlined: ClassVar[bool] = False
    """Every unit is answered with its exact pixels and priced by its outline (no class answer)."""
    answers_are_truth: ClassVar[bool] = True
    """Training on every unit's answer is training on the ground truth (class sets allow it)."""

    def __init__(self, share: float = 0.0) -> None:
        self.share = share

    @abstractmethod
    def answer(self, counts: np.ndarray, area: int) -> tuple[int, float]:
        """The answer code and its clicks for a unit whose known pixels per class are `counts`
        and whose area (void included) is `area` pixels. A NO_CLASS answer (exact pixels after a
        fill click) is charged the cuts inside the unit on top, by the oracle."""

    def _top_class(self, counts: np.ndarray, area: int) -> int | None:
        """The unit's most frequent class (ties: the lower index) where it covers `share` of it."""
        top = counts.max()
        return int(np.argmax(counts)) if top > 0 and top >= self.share * area else None


class Precise(AnswerMode):
    """The exact pixels of the unit, at the clicks of outlining them."""

    name = "precise"
    outlined = True

    def answer(self, counts: np.ndarray, area: int) -> tuple[int, float]:
        return NO_CLASS, 0.0  # priced by the unit's outline


class Dominant(AnswerMode):
    """The unit's most frequent class over all of it at one click; IGNORE_INDEX where that class
    covers less than `share` of the unit."""

    name = "dominant"
    answers_are_truth = False

    def answer(self, counts: np.ndarray, area: int) -> tuple[int, float]:
        top = self._top_class(counts, area)
        return (IGNORE_INDEX if top is None else top), 1.0


class Classes(AnswerMode):
    """The classes the unit holds (each covering at least `share` of it), a click per class (one
    for a unit of void only); training learns a partial label: each pixel is one of them."""

    name = "classes"

    def answer(self, counts: np.ndarray, area: int) -> tuple[int, float]:
        present = np.flatnonzero((counts > 0) & (counts >= self.share * area))
        return class_set_code(present), float(max(len(present), 1))


class DominantOrPrecise(AnswerMode):
    """The most frequent class at one click where it covers `share` of the unit; else the exact
    pixels: one click filling the unit with its most frequent class, plus the cuts of everything
    else in it (other classes, background and void alike), counted as annotated."""

    name = "dominant_or_precise"
    answers_are_truth = False

    def answer(self, counts: np.ndarray, area: int) -> tuple[int, float]:
        top = self._top_class(counts, area)
        if top is not None:
            return top, 1.0
        return (NO_CLASS if counts.max() > 0 else IGNORE_INDEX), 1.0


ANSWER_MODES: dict[str, type[AnswerMode]] = {
    mode.name: mode for mode in (Precise, Dominant, Classes, DominantOrPrecise)
}
"""The modes `budget.annotation` names."""


def answer_mode(name: str, share: float = 0.0) -> AnswerMode:
    """The annotation mode called `name`; the error lists the valid names."""
    if name not in ANSWER_MODES:
        raise AlsegError(f"budget.annotation={name} is not an annotation mode; one of {list(ANSWER_MODES)}")
    return ANSWER_MODES[name](share)
