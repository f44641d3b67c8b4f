"""The one acquisition path of a cycle: prepare, score the pool once, rank, spend, follow up.

The strategy is handed an `AcquisitionContext` (alseg.strategies.context): all it may use.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import cast

import numpy as np

from alseg.acquisition.budget import spend
from alseg.acquisition.scoring import score_pool
from alseg.distributed import from_main, is_main, rank_and_size
from alseg.labels.ledger import CostLedger
from alseg.labels.state import LabelState
from alseg.strategies.base import Strategy
from alseg.strategies.context import AcquisitionContext

PHASES = ("train", "evaluate", "auxiliary", "score", "select")


def acquire(
    context: AcquisitionContext,
    seconds: dict[str, float],
    inference_precision: Callable[[], AbstractContextManager] = nullcontext,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the cycle's query on `context` (its network set): the strategy prepares, the pool
    is scored once, rank 0 ranks and spends the budget and the strategy follows up. Adds the
    seconds of the auxiliary, score and select phases; returns the queried units (K, 2) and
    their scores (K,: the strategy's "score", higher = more informative; rank 0's, else NaN)."""
    strategy = cast(Strategy, context.strategy)
    start = time.perf_counter()
    strategy.prepare(context)
    lap = _lap(seconds, "auxiliary", start)
    with inference_precision():
        scores = score_pool(context)
    lap = _lap(seconds, "score", lap)
    queried = np.zeros((0, 2), dtype=np.int64)
    if is_main():  # under DDP rank 0 decides and hands its new state to every rank
        ranked = strategy.rank(scores, context)
        queried = spend(context.oracle, ranked, context.unit, context.budget, context.cycle)
        kept = strategy.pseudo_labels_to_keep(scores, context)
        context.state.pseudo = kept or {}
    queried = share_state(context.oracle.state, context.oracle.ledger, queried)
    _lap(seconds, "select", lap)
    table = scores.units.get("score") if is_main() else None
    unit_scores = table[queried[:, 0], queried[:, 1]] if table is not None else np.full(len(queried), np.nan)
    return queried, unit_scores.astype(np.float64)


def _lap(seconds: dict[str, float], phase: str, since: float) -> float:
    now = time.perf_counter()
    seconds[phase] += now - since
    return now


def bootstrap_resample(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bootstrap sample: as many images as given, drawn with replacement."""
    return rng.choice(images, size=len(images), replace=True)


def share_state(state: LabelState, ledger: CostLedger, queried: np.ndarray) -> np.ndarray:
    """Give every rank rank 0's labelled state, spent costs and queried units; return the latter."""
    if rank_and_size()[1] == 1:
        return queried
    payload = None
    if is_main():
        buffer = io.BytesIO()
        state.save(buffer)
        payload = (buffer.getvalue(), dict(ledger.spent), queried)
    saved, spent, queried = from_main(payload)
    state.load(io.BytesIO(saved))
    ledger.spent = spent
    return queried
