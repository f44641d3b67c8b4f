"""Every annotation mode pinned on one fixture: its answers, prices, wrong-label share and
`true_answers`, as recorded in tests/data/annotation_modes.json before the modes became classes.

The fixture is six synthetic images (polygons for three, label maps traced for the others) cut
into superpixels; each mode answers the same units and whole images. Recompute the record only
for a change of behaviour that is meant: `python tests/test_annotation_modes.py`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alseg.data.synthetic import synthetic_splits
from alseg.labels.ledger import CostLedger
from alseg.labels.oracle import Oracle
from alseg.labels.state import LabelState
from alseg.regions.superpixels import Superpixels

RECORD = Path(__file__).parent / "data" / "annotation_modes.json"
MODES = [("precise", 0.0), ("dominant", 0.0), ("dominant", 0.6), ("classes", 0.0), ("classes", 0.2),
         ("dominant_or_precise", 0.7)]  # fmt: skip


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def answered(annotation: str, share: float) -> dict[str, Any]:
    """What the mode's oracle answers for the fixture's queries, and what it charges."""
    pool = synthetic_splits(train=6, val=1, test=1, size=32).train
    for image in (3, 4, 5):
        pool._polygons[image] = None  # priced from the label map's outlines
    state = LabelState(Superpixels(segments=12).maps(pool), pool.image_size)
    oracle = Oracle(pool, state, CostLedger(), annotation, share)
    units = [(image, region) for image in range(5) for region in range(0, state.regions.counts[image], 2)]
    unit_costs = [oracle.unit_cost(*unit)["clicks"] for unit in units]
    oracle.reveal(units, cycle=1)
    oracle.reveal_images(np.array([5]), cycle=2)
    labelled = np.argwhere(state.labelled)
    images = np.arange(6)
    return {
        "unit_costs": [round(c, 6) for c in unit_costs],
        "spent": {unit: round(value, 6) for unit, value in oracle.ledger.spent.items()},
        "answers": state.dominant[labelled[:, 0], labelled[:, 1]].tolist(),
        "clicks": [round(float(c), 6) for c in state.clicks[labelled[:, 0], labelled[:, 1]]],
        "wrong_label_share": round(oracle.wrong_label_share(), 9),
        "true_answers": _digest(oracle.true_answers(images).numpy()),
        "training_targets": _digest(np.stack([oracle.training_target(i).numpy() for i in images])),
        "remaining_clicks": round(oracle.remaining_capacity("clicks"), 6),
    }


def _key(annotation: str, share: float) -> str:
    return f"{annotation}@{share}"


@pytest.mark.parametrize(("annotation", "share"), MODES)
def test_each_annotation_mode_answers_and_prices_as_recorded(annotation: str, share: float) -> None:
    record = json.loads(RECORD.read_text())[_key(annotation, share)]
    assert answered(annotation, share) == record


if __name__ == "__main__":
    RECORD.parent.mkdir(exist_ok=True)
    RECORD.write_text(json.dumps({_key(*mode): answered(*mode) for mode in MODES}, indent=1) + "\n")
