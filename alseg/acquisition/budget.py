"""The budget rules: what labelling costs are counted in, what a cycle may spend, when the
loop stops, and whether the pool can pay for what is asked. One place for all of them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from alseg.errors import AlsegError
from alseg.labels.ledger import CostLedger

if TYPE_CHECKING:
    from alseg.labels.oracle import Oracle


@dataclass(frozen=True)
class Budget:
    """How labelling is paid for: `unit` is one of COST_UNITS; amounts are in that unit
    (checked by alseg.settings before the experiment is built). `initial` is a count of
    images or a fraction of the pool; an `images` budget per cycle below 1 is a fraction.
    `annotation` names an annotation mode (alseg.labels.answers.ANSWER_MODES), which
    `dominant_share` (a fraction of a unit) tunes."""

    unit: str
    initial: int | float
    per_cycle: float
    total: float | None
    cycles: int | None
    annotation: str = "precise"
    dominant_share: float = 0.0

    @classmethod
    def from_config(cls, values: dict[str, Any], pool_size: int) -> Budget:
        budget = cls(**values)
        if budget.unit == "images" and budget.per_cycle < 1:  # a fraction of the pool
            return cls(**{**values, "per_cycle": math.ceil(budget.per_cycle * pool_size)})
        return budget

    def should_acquire(self, cycle: int, ledger: CostLedger) -> bool:
        """Whether the training of `cycle` is followed by a query."""
        if self.cycles is not None and cycle >= self.cycles:
            return False
        return self.total is None or ledger.spent[self.unit] < self.total - 1e-9

    def for_cycle(self, ledger: CostLedger) -> float:
        """What the next query may spend: `per_cycle`, or what is left of `total`."""
        if self.total is None:
            return self.per_cycle
        return min(self.per_cycle, self.total - ledger.spent[self.unit])

    def check_pool(self, pool_size: int, image_pixels: int) -> None:
        """Fail at once, before region maps and click prices are computed, when the pool cannot
        hold the initial set or, in images or pixels, what the cycles plan to label."""
        initial = self.initial if self.initial >= 1 else math.ceil(self.initial * pool_size)
        if initial > pool_size:
            raise AlsegError(
                f"budget.initial asks for {initial:g} images but the pool holds {pool_size}; lower "
                "budget.initial or give it as a fraction of the pool (e.g. 0.1)"
            )
        if self.unit not in ("images", "pixels") or self.cycles == 0:
            return
        per_image = 1 if self.unit == "images" else image_pixels
        self.check_fits(CostLedger(), (pool_size - initial) * per_image)

    def check_fits(self, ledger: CostLedger, capacity: float) -> None:
        """Fail before training when the unlabelled pool (`capacity` in the unit) cannot pay."""
        if self.cycles == 0:
            return
        planned = [self.per_cycle]
        if self.cycles is not None:
            planned.append(self.per_cycle * self.cycles)
        if self.total is not None:
            planned = [min(p, self.total - ledger.spent[self.unit]) for p in planned]
            if self.total < ledger.spent[self.unit]:
                raise AlsegError(
                    f"budget.total ({self.total} {self.unit}) is below the cost of the initial set "
                    f"({ledger.spent[self.unit]:g} {self.unit}); raise budget.total or lower budget.initial."
                )
        if max(planned) > capacity + 1e-9:
            raise AlsegError(
                f"the budget asks for {max(planned):g} {self.unit} after the initial set, but the "
                f"unlabelled pool only holds {capacity:g} {self.unit}; lower budget.per_cycle, "
                "budget.cycles or budget.total, or use a larger pool."
            )


def spend(oracle: Oracle, ranked: np.ndarray, unit: str, amount: float, cycle: int) -> np.ndarray:
    """Have the oracle label units in ranked order (K, 2) until `amount` (in `unit`) is spent.

    Units whose cost is known before labelling (images, pixels, regions) are skipped when
    they no longer fit. A click cost is only known once the annotator has drawn it, so the
    last unit may overshoot a click budget; the ledger records what was really spent.
    Units with no unlabelled pixel left are skipped. Returns the labelled units.
    """
    spent, revealed = 0.0, []
    for image, region in ranked.tolist():
        if spent >= amount - 1e-9:
            break
        cost = oracle.unit_cost(image, region)
        if cost["pixels"] == 0 or (unit != "clicks" and spent + cost[unit] > amount + 1e-9):
            continue
        oracle.label(image, region, cycle, cost)
        spent += cost[unit]
        revealed.append((image, region))
    return np.array(revealed, dtype=np.int64).reshape(-1, 2)


def initial_images(
    num_images: int, size: int | float, seed: int, without_masks: np.ndarray | None = None
) -> np.ndarray:
    """Indices of the seeded initial labelled set of whole images.

    `size` is a count of images (an int) or a fraction of the pool (a float in (0, 1]). It
    depends on the seed alone, so every strategy run with one seed starts from the same set.
    Pool images `without_masks` (only people can label them) are never drawn.
    """
    if isinstance(size, float) and 0 < size <= 1:
        count = math.ceil(size * num_images)
    elif isinstance(size, int) and size > 0:
        count = size
    else:
        raise AlsegError(
            f"budget.initial must be a positive number of images (e.g. 20) or a fraction of the "
            f"pool in (0, 1] (e.g. 0.1); got {size!r}."
        )
    if without_masks is not None and len(without_masks):
        masked = np.setdiff1d(np.arange(num_images), without_masks)
        if count > len(masked):
            raise AlsegError(
                f"budget.initial asks for {count} initial images but only {len(masked)} pool images have "
                "masks; lower budget.initial or add masks"
            )
        return np.sort(np.random.default_rng([seed, 0]).choice(masked, size=count, replace=False))
    if count > num_images:
        raise AlsegError(
            f"budget.initial asks for {count} initial images but the pool holds {num_images}; "
            "lower budget.initial or use a larger dataset."
        )
    rng = np.random.default_rng([seed, 0])
    return np.sort(rng.choice(num_images, size=count, replace=False))
