"""The archived runs (bench/runs/) still make the committed tables (docs/results/): moving a
class or adding a config key must not split old curves from new ones or change a number."""

from __future__ import annotations

from pathlib import Path

import pytest

from alseg.results.report import markdown, reference, summary
from alseg.results.run_dir import rows_to_csv
from alseg.results.runs import load_runs

ROOT = Path(__file__).resolve().parent.parent
RUNS, TABLES = ROOT / "bench" / "runs", ROOT / "docs" / "results"
# (table, its runs, cost, metric, split), as scripts/regenerate_docs.sh makes them
CASES = [
    ("camvid_label_efficiency_clicks", ["label_efficiency"], "clicks", "miou", None),
    ("synthetic_strategies", ["synthetic"], "images", "miou", None),
    ("isic2017_cpu_dice", ["isic_cpu"], "images", "dice", None),
    ("camvid_lite0_val", ["camvid_lite0"], "clicks", "miou", "val"),
]


@pytest.mark.parametrize(("table", "folders", "cost", "metric", "split"), CASES, ids=[c[0] for c in CASES])
def test_archived_runs_make_the_committed_table(
    table: str, folders: list[str], cost: str, metric: str, split: str | None
) -> None:
    runs = load_runs([RUNS / folder for folder in folders], split)
    rows = summary(runs, cost, metric)
    assert rows_to_csv(rows) == (TABLES / f"{table}.csv").read_text()
    text = markdown(rows, reference(runs, metric), metric, cost, runs)
    assert text == (TABLES / f"{table}.md").read_text()


def test_a_run_saved_before_the_move_resumes(make_cfg, tmp_path: Path) -> None:
    """A run directory whose config.yaml predates the move (old class paths, `oracle` a string,
    a key added since) resumes instead of being refused as a different run."""
    from omegaconf import OmegaConf

    from alseg.experiment import Experiment

    cfg = make_cfg("debug=tiny")
    first = Experiment(cfg, tmp_path).run()
    saved = OmegaConf.load(tmp_path / "config.yaml")
    saved.regions._target_ = "alseg.regions.WholeImage"
    saved.model.network._target_ = "alseg.model.build_network"
    saved.oracle = "simulated"
    del saved["full_supervision"]
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(saved))
    rows = Experiment(cfg, tmp_path).run()
    assert rows == first  # the finished run, read back whole
