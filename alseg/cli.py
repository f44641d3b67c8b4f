"""The `alseg` command. Only this module touches the Hydra runtime."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from alseg.errors import AlsegError

log = logging.getLogger("alseg")


def config_dir() -> Path:
    """configs/ of a source checkout (editable install), else the copy shipped in the wheel."""
    package = Path(__file__).resolve().parent
    source = package.parent / "configs"
    return source if (source / "config.yaml").is_file() else package / "configs"


def _run_task(cfg: DictConfig) -> None:
    from alseg.experiment import run

    # Lightning's own deprecation notices say nothing a user of alseg can act on.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # Keep the terminal to alseg's cycle lines and the progress bars.
    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)

    try:
        run(cfg, HydraConfig.get().runtime.output_dir)
    except AlsegError as error:
        log.error("error: %s", error)
        sys.exit(2)


def run_command(overrides: list[str]) -> None:
    """`alseg run [overrides]`: Hydra composes configs/ and runs one experiment (or a sweep with -m)."""
    task = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(_run_task)
    sys.argv = ["alseg run", *overrides]
    task()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="alseg",
        description="Active learning experiments for semantic segmentation.",
        epilog="`alseg run --help` lists the config groups and options.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run",
        add_help=False,
        help="run one experiment: alseg run [key=value ...]; a sweep: alseg run -m key=a,b",
    )
    if argv and argv[0] == "run":
        run_command(argv[1:])
        return
    parser.parse_args(argv)


if __name__ == "__main__":
    main()
