"""The extension stories of docs/extending.md hold for code outside the repository: a strategy
and a region kind in a user's own module, with their YAMLs in a user's own config folder
(`hydra.searchpath`), compose, run and are contract-checked like alseg's own."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from alseg.experiment import Experiment

USER_MODULE = '''
"""A user's own strategy and region kind, outside alseg."""
import numpy as np
import torch

from alseg.regions.boxes import BoxRegions
from alseg.strategies.base import TopScoreStrategy


class LeastBright(TopScoreStrategy):
    """Queries the darkest units first: a score any unit reduction can average."""

    def pixel_statistics(self, prediction):
        return {"score": 1.0 - prediction.images.mean(dim=1)}


class Quadrants(BoxRegions):
    """Each image cut into its four quadrants."""

    def boxes(self, height, width):
        h, w = height // 2, width // 2
        return np.array([[0, 0, h, w], [0, w, h, width], [h, 0, height, w], [h, w, height, width]])
'''


@pytest.fixture
def user_extension(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's module on the path and a config folder naming its classes."""
    (tmp_path / "my_alseg.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    configs = tmp_path / "my_configs"
    (configs / "strategy").mkdir(parents=True)
    (configs / "regions").mkdir()
    strategy = "_target_: my_alseg.LeastBright\nname: least_bright\n"
    (configs / "strategy" / "least_bright.yaml").write_text(strategy)
    (configs / "regions" / "quadrants.yaml").write_text("_target_: my_alseg.Quadrants\n")
    return configs


def test_a_strategy_and_a_region_kind_from_outside_the_package_run(
    make_cfg, tmp_path, user_extension
) -> None:
    cfg = make_cfg(
        f"hydra.searchpath=[file://{user_extension}]",
        "debug=tiny",
        "strategy=least_bright",
        "regions=quadrants",
    )
    experiment = Experiment(cfg, tmp_path / "run")
    rows = experiment.run()
    assert len(rows) == 3 and rows[-1]["cost_regions"] > rows[0]["cost_regions"]
    state = np.load(tmp_path / "run" / "state" / "cycle_001.npz")["labelled_at"]
    assert state.shape[1] == 4  # four quadrants an image
    # the darkest quadrants are queried first: every quadrant bought by the second query is
    # darker than every one never bought
    pool = experiment.data.train
    quadrants = [(slice(0, 16), slice(0, 16)), (slice(0, 16), slice(16, 32)),
                 (slice(16, 32), slice(0, 16)), (slice(16, 32), slice(16, 32))]  # fmt: skip
    brightness = np.array(
        [[float(pool.image(i)[:, rows, cols].mean()) for rows, cols in quadrants] for i in range(len(pool))]
    )
    bought, left = brightness[state == 2], brightness[state < 0]
    assert len(bought) and bought.max() <= left.min() + 1e-6


def test_a_class_named_outside_any_config_file_runs(make_cfg, tmp_path, user_extension) -> None:
    cfg = make_cfg("debug=tiny", "regions._target_=my_alseg.Quadrants", "budget.unit=regions")
    assert len(Experiment(cfg, tmp_path / "run").run()) == 3
