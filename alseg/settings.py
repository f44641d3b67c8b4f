"""The composed config checked before anything is built: one line per wrong key.

Each rule names a key, what it accepts and how to tell; `check_settings` applies them in
order and stops at the first wrong value with a message naming the key, the value given and
what it accepts. Keys a config does not have (an option of one model or strategy) are skipped.
Strategy-specific values are checked by the strategies' constructors, datasets by their loaders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from alseg.errors import AlsegError
from alseg.labels.answers import ANSWER_MODES
from alseg.labels.ledger import COST_UNITS

LR_SCHEDULES = ("cosine", "constant")
"""`train.lr_schedule` without a scheduler: decay to zero over each cycle's steps, or keep the rate."""

SPLITS = ("val", "test")


def config_dir() -> Path:
    """configs/ of a source checkout (editable install), else the copy shipped in the wheel."""
    package = Path(__file__).resolve().parent
    source = package.parent / "configs"
    return source if (source / "config.yaml").is_file() else package / "configs"


TINY_IMAGES = 4
"""Images' worth labelled per cycle by the debug=tiny overlay, in whatever unit the budget is."""
TINY_CLICKS_PER_IMAGE = 50
"""Clicks an image of the tiny synthetic set takes to outline (its polygons: about 50)."""


def tiny_per_cycle(unit: str) -> int:
    """debug=tiny's per-cycle budget: TINY_IMAGES images' worth in the budget's unit (32 x 32
    images), so that a click or pixel budget is not read as 4 clicks or 4 pixels."""
    worth = {"images": 1, "regions": 1, "pixels": 32 * 32, "clicks": TINY_CLICKS_PER_IMAGE}
    if unit not in worth:
        raise AlsegError(f"budget.unit={unit} is not valid: it must be one of {list(worth)}.")
    return TINY_IMAGES * worth[unit]


if not OmegaConf.has_resolver("alseg_tiny_per_cycle"):
    OmegaConf.register_new_resolver("alseg_tiny_per_cycle", tiny_per_cycle)


def apply_full_supervision(cfg: DictConfig) -> None:
    """`full_supervision: true` (experiment=full_supervision) trains once on the whole pool,
    whatever an overlay such as debug=tiny says of the budget: initial 1.0, no acquisition."""
    if cfg.get("full_supervision") and cfg.get("budget") is not None:
        cfg.budget.initial, cfg.budget.cycles, cfg.budget.total = 1.0, 0, None


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _size(value: Any) -> bool:
    """An image size: one positive int, or [H, W] of positive ints."""
    values = list(value) if isinstance(value, list | tuple | ListConfig) else [value]
    return len(values) in (1, 2) and all(_integer(v) and v > 0 for v in values)


@dataclass(frozen=True)
class Rule:
    key: str
    accepts: str  # what the key accepts, in words
    valid: Callable[[Any], bool]
    optional: bool = False  # may be null


RULES = (
    Rule("seed", "an integer >= 0", lambda v: _integer(v) and v >= 0),
    Rule("progress", "true or false", lambda v: isinstance(v, bool)),
    Rule("keep_checkpoints", "true or false", lambda v: isinstance(v, bool)),
    Rule(
        "evaluate_on",
        f"a list of splits from {list(SPLITS)}, e.g. [val, test]",
        lambda v: isinstance(v, list | ListConfig) and all(s in SPLITS for s in v),
    ),
    Rule("train.epochs", "an integer >= 1", lambda v: _integer(v) and v >= 1),
    Rule("train.min_steps", "an integer >= 0", lambda v: _integer(v) and v >= 0),
    Rule("train.batch_size", "an integer >= 1", lambda v: _integer(v) and v >= 1),
    Rule("train.lr", "a number > 0", lambda v: _number(v) and v > 0),
    Rule("train.weight_decay", "a number >= 0", lambda v: _number(v) and v >= 0),
    Rule("train.lr_schedule", " or ".join(LR_SCHEDULES), lambda v: v in LR_SCHEDULES),
    Rule("train.reinit", "true or false", lambda v: isinstance(v, bool)),
    Rule("train.num_workers", "an integer >= 0", lambda v: _integer(v) and v >= 0),
    Rule("scoring.batch_size", "an integer >= 1", lambda v: _integer(v) and v >= 1),
    Rule(
        "scoring.mc_mode",
        "head (rerun only the segmentation head per MC member) or full (the whole network)",
        lambda v: v in ("head", "full"),
    ),
    Rule("budget.unit", f"one of {list(COST_UNITS)}", lambda v: v in COST_UNITS),
    Rule(
        "budget.initial",
        "a number of images (an integer >= 1) or a fraction of the pool in (0, 1]",
        lambda v: (_integer(v) and v >= 1) or (isinstance(v, float) and 0 < v <= 1),
    ),
    Rule("budget.per_cycle", "a number > 0 (in budget.unit)", lambda v: _number(v) and v > 0),
    Rule("budget.annotation", f"one of {list(ANSWER_MODES)}", lambda v: v in ANSWER_MODES),
    Rule("budget.dominant_share", "a share in [0, 1]", lambda v: _number(v) and 0 <= v <= 1),
    Rule("budget.total", "a number > 0, or null", lambda v: _number(v) and v > 0, optional=True),
    Rule(
        "budget.cycles",
        "an integer >= 0 (0: train once on the initial set, as the full-supervision reference), or null",
        lambda v: _integer(v) and v >= 0,
        optional=True,
    ),
    Rule("model.network.head_dropout", "a probability in [0, 1)", lambda v: _number(v) and 0 <= v < 1),
    Rule("dataset.splits.size", "a positive image size, [H, W] or one side", _size),
    Rule("trainer.devices", "an integer >= 1, a list of device ids, or auto", lambda v: _devices(v)),
)


def _devices(value: Any) -> bool:
    if value == "auto":
        return True
    if isinstance(value, list | ListConfig):
        return all(_integer(v) and v >= 0 for v in value)
    return _integer(value) and value >= 1


def check_settings(cfg: DictConfig) -> None:
    """Raise one AlsegError naming the first key whose value the run cannot use."""
    for rule in RULES:
        if OmegaConf.select(cfg, rule.key, default=_MISSING) is _MISSING:
            continue
        value = OmegaConf.select(cfg, rule.key)
        if value is None and rule.optional:
            continue
        if value is None or not rule.valid(value):
            raise AlsegError(f"{rule.key}={_shown(value)} is not valid: it must be {rule.accepts}.")
    if cfg.get("budget") is not None and cfg.budget.get("cycles") is None and cfg.budget.get("total") is None:
        raise AlsegError("set budget.cycles or budget.total (or both) so that the run ends.")
    _check_annotation(cfg)
    _check_semi(cfg)
    _check_smp_shape(cfg)
    _check_devices(cfg)


_MISSING = object()


def _shown(value: Any) -> str:
    return (
        "null" if value is None else repr(OmegaConf.to_object(value) if OmegaConf.is_config(value) else value)
    )


def _check_annotation(cfg: DictConfig) -> None:
    """Refuse dominant_or_precise at a share that outlines no unit (it would be dominant)."""
    budget = cfg.get("budget")
    if budget is not None and budget.get("annotation") == "dominant_or_precise" and not budget.dominant_share:
        raise AlsegError(
            "budget.annotation=dominant_or_precise outlines the units whose top class covers less than "
            "budget.dominant_share, and at 0 none does: set budget.dominant_share in (0, 1], e.g. 0.9."
        )


def _check_semi(cfg: DictConfig) -> None:
    """`train.semi=NAME` sets a string where the option's config belongs: say how to choose it."""
    semi = OmegaConf.select(cfg, "train.semi")
    if semi is not None and not isinstance(semi, DictConfig):
        raise AlsegError(
            f"train.semi={semi} sets a value; choose the option with train/semi={semi} "
            "(configs/train/semi/: none, ema_teacher)"
        )


SMP_SHAPE_KEYS = ("encoder_depth", "decoder_channels")
"""Keys only smp networks (build_network) take; debug=tiny sets them to shrink the network."""


def _check_smp_shape(cfg: DictConfig) -> None:
    """Refuse smp's shape keys on a network built by another builder (FCN-8s, SegNet)."""
    network = OmegaConf.select(cfg, "model.network")
    if network is None or str(network.get("_target_", "")).endswith(".build_network"):
        return
    given = [key for key in SMP_SHAPE_KEYS if key in network]
    if given:
        deletions = " ".join(f"~model.network.{key}" for key in given)
        raise AlsegError(
            f"model={cfg.model.get('name')} takes no {', '.join(given)} (smp networks' shape, which "
            f"debug=tiny sets); add {deletions} to the command, or set model.network.width for a "
            "smaller network."
        )


def _check_devices(cfg: DictConfig) -> None:
    """Refuse DDP that would fail on unused parameters, and more GPUs than the machine has."""
    import torch

    trainer = cfg.get("trainer")
    if trainer is None:
        return
    devices, accelerator = trainer.get("devices", 1), trainer.get("accelerator", "auto")
    wanted = len(devices) if isinstance(devices, ListConfig) else devices
    if not _integer(wanted) or wanted <= 1:
        return
    depth = OmegaConf.select(cfg, "model.network.encoder_depth", default=5)
    if trainer.get("strategy", "auto") in ("auto", "ddp", "ddp_spawn") and depth < 5:
        raise AlsegError(
            f"trainer.devices={wanted} trains with DDP, and an smp encoder at encoder_depth={depth} "
            "leaves parameters unused; add trainer.strategy=ddp_find_unused_parameters_true."
        )
    gpus = torch.cuda.device_count()
    # Without GPUs, accelerator auto runs several CPU processes (DDP over gloo), as cpu does.
    on_gpus = accelerator in ("gpu", "cuda") or (accelerator == "auto" and gpus > 0)
    if on_gpus and wanted > gpus:
        raise AlsegError(
            f"trainer.devices={wanted} asks for {wanted} GPUs but this machine has {gpus}; lower "
            "trainer.devices, or set trainer.accelerator=cpu to run that many CPU processes."
        )


def build(node: DictConfig, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, letting an AlsegError from the built object reach the user whole."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, AlsegError):
            raise error.__cause__ from None
        raise


SECRET_KEYS = ("oracle.token",)
"""Config keys whose values never reach a file, a logger or a message."""
HIDDEN = "<hidden>"


def public_config(cfg: DictConfig) -> DictConfig:
    """The resolved config with every secret's value hidden: what the run directory and the
    loggers get."""
    public = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for key in SECRET_KEYS:
        if OmegaConf.select(public, key) is not None:
            OmegaConf.update(public, key, HIDDEN)
    assert isinstance(public, DictConfig)
    return public


def public_overrides(overrides: list[str]) -> list[str]:
    """Command-line overrides with every secret's value hidden."""
    return [
        f"{override.split('=', 1)[0]}={HIDDEN}"
        if override.lstrip("+~").split("=", 1)[0] in SECRET_KEYS
        else override
        for override in overrides
    ]
