"""A run directory: cycle rows, labelled state and checkpoints, written atomically and resumable.

Layout:
  config.yaml                 the resolved config of the run
  cycles.csv                  one row per cycle (cost in every unit, metrics, seconds)
  state/cycle_NNN.npz         LabelState after cycle NNN's acquisition (labelled_at, clicks, pseudo)
  state/cycle_NNN.json        rows, ledger and the checksums of NNN's files; written last, it
                              marks NNN complete
  checkpoints/cycle_NNN.pt    network weights trained in cycle NNN (the latest two unless kept)

On resume the latest cycle is verified against its checksums; a damaged cycle is discarded
(one warning) and recomputed from the one before it, whose weights are still kept.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import torch

from alseg.atomic import atomic_write, atomic_write_text
from alseg.errors import AlsegError
from alseg.labels.ledger import CostLedger
from alseg.labels.state import LabelState

log = logging.getLogger("alseg")

Row = dict[str, Any]


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def flatten_config(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config (dicts and lists) as {"a.b.c": value}, lists as tuples."""
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(flatten_config(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: tuple(node) if isinstance(node, list) else node}


def rows_to_csv(rows: list[Row]) -> str:
    """CSV of the rows; columns in order of first appearance (a column added by a later version
    of alseg is empty in rows written before it)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_rows(path: Path) -> list[Row]:
    """Rows of a cycles.csv, with numbers parsed."""
    with path.open() as handle:
        return [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def _number(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


class RunDirectory:
    """Reads and writes the files of one run directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.checkpoint_dir = root / "checkpoints"

    def last_completed_cycle(self) -> int:
        """The highest cycle whose state was committed, or -1 for a new run."""
        cycles = [int(p.stem.split("_")[1]) for p in self.state_dir.glob("cycle_*.json")]
        return max(cycles, default=-1)

    def finished_rows(self) -> list[Row] | None:
        """The rows of a run whose last committed cycle queried nothing (it is done), else None."""
        completed = self.last_completed_cycle()
        if completed < 0:
            return None
        rows = self._record(completed)["rows"]
        return rows if rows and int(rows[-1].get("queried_units", 1)) == 0 else None

    def _record(self, cycle: int) -> dict[str, Any]:
        return json.loads(self.state_file(cycle, "json").read_text())

    def damage(self, cycle: int) -> str | None:
        """What is wrong with a committed cycle's files, or None when they are intact."""
        try:
            record = self._record(cycle)
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as error:
            return f"its record does not parse ({error})"
        files = {"state": self.state_file(cycle, "npz"), "checkpoint": self.checkpoint(cycle)}
        for name, expected in record.get("checksums", {}).items():
            if not files[name].is_file():
                return f"{files[name].name} is missing"
            if file_digest(files[name]) != expected:
                return f"{files[name].name} does not match its checksum"
        return None

    def discard_damaged_cycles(self) -> None:
        """Verify the latest committed cycles; discard damaged ones, newest first, until one
        is intact. One clear error when no intact cycle is left to resume from."""
        while (cycle := self.last_completed_cycle()) >= 0:
            problem = self.damage(cycle)
            if problem is None:
                return
            for suffix in ("json", "npz"):
                self.state_file(cycle, suffix).unlink(missing_ok=True)
            self.checkpoint(cycle).unlink(missing_ok=True)
            if cycle == 0 or self.damage(cycle - 1) is not None or not self.checkpoint(cycle - 1).is_file():
                raise AlsegError(
                    f"{self.root}: cycle {cycle} was damaged ({problem}) and no intact cycle is left to "
                    "resume from; delete the run directory (or give a new hydra.run.dir) to start again."
                )
            log.warning(
                "%s: cycle %d was damaged (%s); it is discarded and recomputed from cycle %d",
                self.root,
                cycle,
                problem,
                cycle - 1,
            )

    def remove_stale_temporaries(self) -> None:
        """Delete temporary files that a killed process left half-written."""
        for folder in (self.root, self.state_dir, self.checkpoint_dir):
            for path in folder.glob(".*.*"):
                if path.is_file():
                    path.unlink()

    def state_file(self, cycle: int, suffix: str) -> Path:
        """state/cycle_NNN.npz (the label state) or .json (the record that commits the cycle)."""
        return self.state_dir / f"cycle_{cycle:03d}.{suffix}"

    def checkpoint(self, cycle: int) -> Path:
        return self.checkpoint_dir / f"cycle_{cycle:03d}.pt"

    def save_cycle(
        self,
        cycle: int,
        rows: list[Row],
        state: LabelState,
        ledger: CostLedger,
        weights: dict[str, torch.Tensor],
        keep_checkpoints: bool,
    ) -> None:
        """Commit one completed cycle: checkpoint, state, then the json that marks it done."""
        state_file = self.state_file(cycle, "npz")
        atomic_write(self.checkpoint(cycle), lambda handle: torch.save(weights, handle))
        atomic_write(state_file, state.save)
        checksums = {"state": file_digest(state_file), "checkpoint": file_digest(self.checkpoint(cycle))}
        record = {"cycle": cycle, "rows": rows, "ledger": ledger.spent, "checksums": checksums}
        atomic_write_text(self.state_file(cycle, "json"), json.dumps(record, indent=1))
        # The previous cycle's weights stay: a damaged cycle is recomputed from them.
        if not keep_checkpoints and cycle > 1:
            self.checkpoint(cycle - 2).unlink(missing_ok=True)
        self.write_rows(rows)

    def update_state(self, cycle: int, state: LabelState, ledger: CostLedger) -> None:
        """Replace a committed cycle's label state and ledger (answers applied after it)."""
        state_file = self.state_file(cycle, "npz")
        atomic_write(state_file, state.save)
        record = self._record(cycle)
        record["ledger"] = ledger.spent
        record["checksums"]["state"] = file_digest(state_file)
        atomic_write_text(self.state_file(cycle, "json"), json.dumps(record, indent=1))

    def restore(self, cycle: int, state: LabelState, ledger: CostLedger) -> list[Row]:
        """Load the committed state of `cycle` into `state` and `ledger`; return its rows."""
        record = self._record(cycle)
        state.load(self.state_file(cycle, "npz"))
        ledger.spent.update(record["ledger"])
        self.write_rows(record["rows"])
        return record["rows"]

    def write_rows(self, rows: list[Row]) -> None:
        if rows:
            atomic_write_text(self.root / "cycles.csv", rows_to_csv(rows))


def format_table(rows: list[Row], columns: list[str]) -> str:
    """A plain-text table of the chosen columns, numbers right-aligned."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "nan" if math.isnan(value) else f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
        return str(value)

    cells = [columns] + [[cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(text.rjust(w) for text, w in zip(line, widths, strict=True)) for line in cells)
