"""The `alseg` command. Only this module touches the Hydra runtime."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from alseg.errors import AlsegError
from alseg.labels.ledger import COST_UNITS
from alseg.settings import config_dir

log = logging.getLogger("alseg")


def package_version() -> str:
    """The installed alseg's version (pyproject.toml's)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("alseg")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _run_task(cfg: DictConfig) -> None:
    from alseg.experiment import run

    # Lightning's own deprecation notices say nothing a user of alseg can act on.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # Keep the terminal to alseg's cycle lines and the progress bars.
    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        # Jobs of a parallel sweep write to one terminal: mark each line with its job.
        prefix_console_lines(f"[job {hydra_cfg.job.num} {hydra_cfg.job.override_dirname}] ")
    if hydra_cfg.mode == RunMode.MULTIRUN and "group" in cfg.logger:
        # W&B: one group per sweep, each run named by its overrides, unless the config says otherwise.
        cfg.logger.group = cfg.logger.group or Path(hydra_cfg.sweep.dir).name
        cfg.logger.name = cfg.logger.name or hydra_cfg.job.override_dirname or None
    try:
        run(cfg, hydra_cfg.runtime.output_dir, list(hydra_cfg.overrides.task))
    except AlsegError as error:
        log.error("error: %s", error)
        sys.exit(2)


CONSOLE_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


def prefix_console_lines(prefix: str) -> None:
    """Start every console log line with `prefix` (files keep the plain format)."""
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:
            handler.setFormatter(logging.Formatter(prefix + CONSOLE_FORMAT))


def run_command(overrides: list[str]) -> None:
    """`alseg run [overrides]`: Hydra composes configs/ and runs one experiment (or a sweep with -m)."""
    task = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(_run_task)
    # argv[0] names this file: DDP's launcher re-runs it, with the same overrides, per rank.
    sys.argv = [str(Path(__file__).resolve()), *overrides]
    task()


def _add_curve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="run directories, sweep directories or W&B run directories")
    parser.add_argument("--cost", default="images", choices=list(COST_UNITS))
    parser.add_argument(
        "--split",
        choices=["val", "test"],
        help="evaluation split to compare on (default: test where the runs evaluated it, else val); "
        "choose a protocol on val",
    )
    parser.add_argument(
        "--metric",
        default="miou",
        help="a metric the runs have (miou, dice, pixel_acc, iou_<class>, ...); a wrong one lists them",
    )


def plot_command(args: argparse.Namespace) -> None:
    from alseg.results.plot import FigureStyle, parse_labels, parse_size, plot_curves
    from alseg.results.runs import load_runs

    runs = load_runs(args.paths, args.split)
    style = FigureStyle(parse_size(args.size), args.font_size, args.title, parse_labels(args.label))
    for path in plot_curves(runs, args.cost, args.metric, args.band, Path(args.output), args.log_cost, style):
        print(f"wrote {path}")


def label_command(args: argparse.Namespace) -> None:
    from alseg.experiment import label_run

    cost = label_run(Path(args.run_dir), Path(args.source))
    spent = ", ".join(f"{value:g} {unit}" for unit, value in cost.items())
    print(f"applied the answers to {args.run_dir}: {spent}; rerun the same `alseg run` command to continue")


def report_command(args: argparse.Namespace) -> None:
    from alseg.atomic import atomic_write_text
    from alseg.results.report import markdown, reference, short_rows, summary, text_table
    from alseg.results.run_dir import rows_to_csv
    from alseg.results.runs import load_runs

    runs = load_runs(args.paths, args.split)
    rows = summary(runs, args.cost, args.metric)
    print(text_table(rows if args.all else short_rows(rows, args.metric, args.cost)))
    output = Path(args.output)
    atomic_write_text(output.with_suffix(".csv"), rows_to_csv(rows))
    text = markdown(rows, reference(runs, args.metric), args.metric, args.cost, runs)
    atomic_write_text(output.with_suffix(".md"), text)
    print(f"wrote {output.with_suffix('.csv')} and {output.with_suffix('.md')}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="alseg",
        description="Active learning experiments for semantic segmentation.",
        epilog="`alseg run --help` lists the config groups and options.",
    )
    parser.add_argument("--version", action="version", version=f"alseg {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run",
        add_help=False,
        help="run one experiment: alseg run [key=value ...]; a sweep: alseg run -m key=a,b",
    )
    plot = commands.add_parser("plot", help="draw metric-vs-cost curves of runs (PNG, SVG and PDF)")
    _add_curve_options(plot)
    plot.add_argument(
        "--band", default="std", choices=["std", "ci95"], help="band over seeds: std or 95%% t interval"
    )
    plot.add_argument("--log-cost", action="store_true", help="logarithmic cost axis")
    plot.add_argument("--size", default="7,4.5", help="figure width,height in inches (default 7,4.5)")
    plot.add_argument("--font-size", type=float, default=9.0, help="font size in points (default 9)")
    plot.add_argument("--title", help="the figure's title (default: dataset, metric and cost)")
    plot.add_argument(
        "--label",
        action="append",
        default=[],
        help="replace a legend entry: 'ENTRY::TEXT', e.g. 'entropy (sampling=power)::drawn' (repeatable)",
    )
    plot.add_argument(
        "-o", "--output", default="curves.png", help="output file (PNG; SVG and PDF are written beside it)"
    )
    report = commands.add_parser("report", help="compare strategies: final metric, AUC, cost to 95%%")
    _add_curve_options(report)
    report.add_argument(
        "-o", "--output", default="report", help="output prefix of the CSV and Markdown files"
    )
    report.add_argument(
        "--all", action="store_true", help="print every column (the CSV and Markdown files always hold them)"
    )
    label = commands.add_parser(
        "label", help="apply the answers to a run's pending query (oracle=human), then rerun the run"
    )
    label.add_argument("run_dir", help="the run directory holding queries/pending.json")
    label.add_argument(
        "--from",
        dest="source",
        required=True,
        help="a Label Studio JSON export, or a folder of <task>.png masks",
    )
    if argv and argv[0] == "run":
        run_command(argv[1:])
        return
    args = parser.parse_args(argv)
    try:
        {"plot": plot_command, "report": report_command, "label": label_command}[args.command](args)
    except AlsegError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    # `python -m alseg.cli run ...` is the `alseg` command; a DDP child process re-runs this
    # file with the overrides alone (`python .../alseg/cli.py key=value ...`).
    if sys.argv[1:2] and "=" in sys.argv[1]:
        run_command(sys.argv[1:])
    else:
        main()
