"""Paper protocols: each experiment config holds the paper's numbers, and its CPU twin runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from alseg.experiment import Experiment, run
from alseg.settings import build

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_ceal_isic2017(make_cfg) -> None:
    cfg = make_cfg("experiment=ceal_isic2017")
    assert cfg.dataset.name == "isic2017" and cfg.strategy.name == "ceal_melanoma"
    assert (cfg.budget.initial, cfg.budget.cycles, cfg.strategy.mc_passes) == (600, 10, 20)
    assert cfg.budget.per_cycle == 2 * cfg.strategy.no_detection + cfg.strategy.random
    # The survey's iteration: 10 "no detection", 10 most uncertain, 15 random.
    assert (cfg.strategy.no_detection, cfg.strategy.random, cfg.budget.per_cycle) == (10, 15, 35)


def test_suggestive_glas(make_cfg) -> None:
    cfg = make_cfg("experiment=suggestive_glas")
    assert cfg.dataset.name == "glas" and cfg.model.name == "fcn8s"
    strategy = cfg.strategy
    assert (strategy.candidates, strategy.select, strategy.ensemble_size) == (16, 8, 4)


def test_cereals_cityscapes(make_cfg) -> None:
    cfg = make_cfg("experiment=cereals_cityscapes")
    assert cfg.dataset.name == "cityscapes" and cfg.strategy.name == "cereals"
    assert cfg.model.name == "fcn8s" and cfg.model.network.width == 0.25
    assert cfg.regions.size == 128 and cfg.dataset.reference_width == 2048
    height, width = cfg.dataset.splits.size
    assert cfg.budget.initial == 50 and cfg.budget.unit == "pixels"
    assert cfg.budget.per_cycle == 50 * height * width  # 50 images' worth of area
    boxes = build(cfg.regions).boxes(height, width)  # windows: the same boxes on every image
    assert (boxes[0, 2] - boxes[0, 0]) == 128 * width // 2048  # 128 pixels at the original width


@pytest.mark.parametrize("name", ["vaal_cityscapes", "vaal_bdd100k"])
def test_vaal(make_cfg, name: str) -> None:
    cfg = make_cfg(f"experiment={name}")
    assert cfg.dataset.name == name.split("_")[1] and cfg.model.name == "dilated_resnet"
    budget = cfg.budget
    assert budget.initial + budget.cycles * budget.per_cycle == pytest.approx(0.4)  # 10% + 5% steps to 40%


def test_fractional_budget_is_a_share_of_the_pool(make_cfg, tmp_path) -> None:
    cfg = make_cfg("experiment=vaal_bdd100k_cpu", "dataset.splits.train=40")
    experiment = Experiment(cfg, tmp_path)
    assert experiment.budget.per_cycle == 2  # 5% of 40 images


def test_fcn8s_and_dilated_resnet_predict_full_resolution(make_cfg) -> None:
    for model in ("fcn8s", "dilated_resnet"):
        network = build(make_cfg(f"model={model}").model.network, num_classes=5).eval()
        with torch.inference_mode():
            assert network(torch.rand(1, 3, 64, 96)).shape == (1, 5, 64, 96)


TWINS = {
    "ceal_isic2017_cpu": SHARED_DATA / "ISIC2017",
    "suggestive_glas_cpu": SHARED_DATA / "ISIC2017",
    "cereals_cityscapes_cpu": SHARED_DATA / "CamVid",
    "vaal_cityscapes_cpu": SHARED_DATA / "CamVid",
}
QUICK = ["budget.cycles=1", "train.epochs=1", "train.min_steps=1", "train.batch_size=4", "progress=false"]


@pytest.mark.slow  # minutes: decodes the whole real dataset (run by `make test-all`)
@pytest.mark.parametrize("name", sorted(TWINS))
def test_cpu_twin_on_real_data_runs_a_cycle(make_cfg, tmp_path, name: str) -> None:
    if not TWINS[name].is_dir():
        pytest.skip(f"{TWINS[name]} is absent (real data for this twin)")
    extra = ["strategy.epochs=1"] if "vaal" in name else []
    rows = run(make_cfg(f"experiment={name}", *QUICK, f"dataset.root={TWINS[name]}", *extra), tmp_path)
    assert len(rows) == 2 and rows[1]["cost_pixels"] > rows[0]["cost_pixels"]


def test_synthetic_cpu_twin_runs_a_cycle(make_cfg, tmp_path) -> None:
    cfg = make_cfg("experiment=vaal_bdd100k_cpu", *QUICK, "dataset.splits.train=60", "strategy.epochs=1")
    rows = run(cfg, tmp_path)
    assert len(rows) == 2 and rows[1]["cost_images"] == rows[0]["cost_images"] + 3  # 6 + 5% of 60
