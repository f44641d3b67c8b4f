"""Where cycle rows go besides cycles.csv: Lightning loggers, built from `configs/logger/`."""

from __future__ import annotations

import json
import netrc
import os
import secrets
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import WandbLogger

from alseg.errors import AlsegError

WANDB_MODES = ("auto", "online", "offline", "disabled")
RUN_ID_FILE = "wandb_run_id"
"""File in the run directory that keeps its W&B run id across resumes."""


def has_wandb_login() -> bool:
    """Whether W&B credentials exist (an API key in the environment or in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


class FinishingWandbLogger(WandbLogger):
    """A WandbLogger for cycle rows: at the end it logs the curve (a `wandb.Table` of every
    cycle with a line plot of test mIoU against cost) and closes its run."""

    def __init__(self, x_axis: str = "cost_images", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.x_axis = x_axis
        self._cycles: list[dict[str, float]] = []

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, step)
        self._cycles.append(dict(metrics))

    def log_training_loss(self, loss: float, step: int, cycle: int) -> None:
        """One optimizer step's training loss, on its own axis `train/step` (steps over all
        cycles, counted from the run's start)."""
        self.experiment.log({"train/loss": loss, "train/step": step, "train/cycle": cycle})

    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self._experiment is None:
            return
        if self._cycles:
            import wandb

            columns: list[str | int] = sorted({key for row in self._cycles for key in row})
            table = wandb.Table(
                columns=columns, data=[[row.get(str(c)) for c in columns] for row in self._cycles]
            )
            metric = "test_miou" if "test_miou" in columns else "val_miou"
            plot = wandb.plot.line(table, self.x_axis, metric, title=f"{metric} vs labelling cost")
            self._experiment.log({"cycles": table, "curve": plot})
        self._experiment.finish(exit_code=0 if status == "success" else 1)
        import wandb

        # finish() returns before W&B's service has written everything: wait for it, so that
        # the run's last cycle is in its files when `alseg` returns (a reader, or `wandb sync`
        # right after, would otherwise miss it). The next run starts a fresh service.
        wandb.teardown()


def wandb_logger(
    save_dir: str,
    project: str,
    entity: str | None = None,
    group: str | None = None,
    mode: str = "auto",
    name: str | None = None,
    x_axis: str = "cost_images",
) -> FinishingWandbLogger:
    """A W&B logger whose cycle metrics use labelling cost (`x_axis`, the budget's unit) as
    their x-axis.

    `mode=auto` logs online when credentials exist and offline otherwise, so a run without a
    network or a login never waits on W&B; `wandb sync` uploads an offline run later. The run
    id is kept in the run directory, so a resumed run continues the same W&B run.
    """
    if mode not in WANDB_MODES:
        raise AlsegError(f"logger.mode must be one of {list(WANDB_MODES)} (got {mode!r}).")
    if mode == "auto":
        mode = "online" if has_wandb_login() else "offline"
    id_file = Path(save_dir) / RUN_ID_FILE
    if not id_file.is_file():
        id_file.parent.mkdir(parents=True, exist_ok=True)
        id_file.write_text(secrets.token_hex(4) + "\n")  # W&B ids: short, lowercase, alphanumeric
    logger = FinishingWandbLogger(
        x_axis=x_axis,
        project=project,
        entity=entity,
        group=group,
        name=name,
        save_dir=save_dir,
        mode=mode,
        id=id_file.read_text().strip(),
        resume="allow",
    )
    run = logger.experiment
    run.define_metric(x_axis)
    for prefix in ("val_*", "test_*", "labelled_fraction", "cost_*"):
        run.define_metric(prefix, step_metric=x_axis)
    run.define_metric("train/step")
    run.define_metric("train/*", step_metric="train/step")
    return logger


_BLOCK = 32 * 1024
_HEADER = 7  # checksum (4), length (2), type (1) of each chunk; the file starts with one too
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(path: Path) -> list[bytes]:
    """The raw records of a W&B transaction log (a LevelDB-style log of 32 KiB blocks)."""
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise AlsegError(f"{path} is not a W&B run file (it should start with ':W&B').")
    records, pending, offset = [], b"", _HEADER
    while offset + _HEADER <= len(data):
        room = _BLOCK - offset % _BLOCK
        if room < _HEADER:  # a block's tail too short for a header is padding
            offset += room
            continue
        length, kind = struct.unpack_from("<HB", data, offset + 4)
        chunk = data[offset + _HEADER : offset + _HEADER + length]
        offset += _HEADER + length
        if kind == _FULL:
            records.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            records.append(pending + chunk)
        else:
            break  # zero padding at the end of the last block
    return records


def _parsed_records(run_dir: Path) -> list[Any]:
    """The parsed records of a W&B run directory's transaction log."""
    from wandb.proto import wandb_internal_pb2

    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise AlsegError(f"{run_dir} holds no W&B run file (run-*.wandb).")
    records = []
    for raw in _records(files[0]):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        record.ParseFromString(raw)
        records.append(record)
    return records


def wandb_run_finished(run_dir: Path) -> bool:
    """Whether a W&B run directory's log holds the run's exit record (written when finished)."""
    return any(record.WhichOneof("record_type") == "exit" for record in _parsed_records(run_dir))


def read_wandb_history(run_dir: Path) -> list[dict[str, float]]:
    """The logged rows of a W&B run directory (offline or synced), in logging order."""
    return [
        {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
        for record in _parsed_records(run_dir)
        if record.WhichOneof("record_type") == "history"
    ]


def read_wandb_run(run_dir: Path) -> dict[str, str]:
    """The id, group and display name a W&B run directory was logged under."""
    for record in _parsed_records(run_dir):
        if record.WhichOneof("record_type") == "run":
            return {"id": record.run.run_id, "group": record.run.run_group, "name": record.run.display_name}
    raise AlsegError(f"{run_dir} holds no W&B run record.")


def read_wandb_config(run_dir: Path) -> dict[str, Any]:
    """The config a W&B run directory recorded (its updates in order)."""
    config: dict[str, Any] = {}
    for record in _parsed_records(run_dir):
        kind = record.WhichOneof("record_type")
        updates = (
            record.config.update if kind == "config" else record.run.config.update if kind == "run" else []
        )
        config.update({item.key: json.loads(item.value_json) for item in updates})
    return config


def read_wandb_x_axis(run_dir: Path) -> str:
    """The step metric a W&B run directory draws its test (else val) metrics against."""
    axes = {
        record.metric.glob_name: record.metric.step_metric
        for record in _parsed_records(run_dir)
        if record.WhichOneof("record_type") == "metric"
    }
    return axes.get("test_*") or axes.get("val_*", "")
