"""Where cycle rows go besides cycles.csv: Lightning loggers, built from `configs/logger/`."""

from __future__ import annotations

import netrc
import os

from pytorch_lightning.loggers import WandbLogger

from alseg.errors import AlsegError

WANDB_MODES = ("auto", "online", "offline", "disabled")


def has_wandb_login() -> bool:
    """Whether W&B credentials exist (an API key in the environment or in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_logger(
    save_dir: str, project: str, entity: str | None = None, group: str | None = None,
    mode: str = "auto",
) -> WandbLogger:
    """A W&B logger whose cycle metrics use labelling cost as their x-axis.

    `mode=auto` logs online when credentials exist and offline otherwise, so a run without a
    network or a login never waits on W&B; `wandb sync` uploads an offline run later.
    """
    if mode not in WANDB_MODES:
        raise AlsegError(f"logger.mode must be one of {list(WANDB_MODES)} (got {mode!r}).")
    if mode == "auto":
        mode = "online" if has_wandb_login() else "offline"
    logger = WandbLogger(project=project, entity=entity, group=group, save_dir=save_dir, mode=mode)
    run = logger.experiment
    run.define_metric("cost_images")
    for prefix in ("val_*", "test_*", "labelled_fraction", "cost_*"):
        run.define_metric(prefix, step_metric="cost_images")
    return logger
