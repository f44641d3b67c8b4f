"""What labelling has cost: the cost units and the ledger that counts them all at once."""

from __future__ import annotations

COST_UNITS = ("images", "pixels", "regions", "clicks")
"""Currencies of labelling cost: image area (in whole images), pixels, regions, clicks."""


class CostLedger:
    """Labelling cost spent so far, in every cost unit at once."""

    def __init__(self) -> None:
        self.spent = dict.fromkeys(COST_UNITS, 0.0)

    def charge(self, cost: dict[str, float]) -> None:
        for unit in COST_UNITS:
            self.spent[unit] += float(cost[unit])
