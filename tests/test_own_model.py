"""Your own network, optimizer, scheduler and loss, from the config alone."""

from __future__ import annotations

import pytest
import torch

from alseg.errors import AlsegError
from alseg.experiment import Experiment
from alseg.results.run_dir import read_rows


def test_a_network_of_ones_own_runs_every_strategy_that_needs_only_logits(make_cfg, tmp_path) -> None:
    for strategy in ("entropy", "vote_entropy"):
        overrides = ["scoring.mc_mode=full", "strategy.mc_passes=3"] if strategy == "vote_entropy" else []
        cfg = make_cfg(
            "debug=tiny", f"strategy={strategy}", "budget.cycles=1", "~model.network",
            "+model.network._target_=networks.TinyNet", *overrides,
        )  # fmt: skip
        rows = Experiment(cfg, tmp_path / strategy).run()
        assert rows[1]["cost_images"] == 8


def test_a_network_breaking_the_contract_stops_before_training(make_cfg, tmp_path) -> None:
    cfg = make_cfg("debug=tiny", "~model.network", "+model.network._target_=networks.HalfSize")
    with pytest.raises(AlsegError, match=r"it gave \(1, 6, 16, 16\), expected \(1, 6, 32, 32\)"):
        Experiment(cfg, tmp_path)
    cfg = make_cfg(
        "debug=tiny", "strategy=density", "~model.network", "+model.network._target_=networks.TinyNet"
    )
    with pytest.raises(AlsegError, match="needs descriptors: the network must have encoder, decoder"):
        Experiment(cfg, tmp_path / "density")
    assert not (tmp_path / "cycles.csv").exists()


def test_optimizer_scheduler_and_loss_come_from_the_config(make_cfg, tmp_path) -> None:
    cfg = make_cfg(
        "debug=tiny", "budget.cycles=0",
        "train.optimizer._target_=torch.optim.SGD", "~train.optimizer.weight_decay",
        "+train.optimizer.momentum=0.9", "+train.loss.label_smoothing=0.1",
        "train.scheduler={_target_: torch.optim.lr_scheduler.StepLR, _partial_: true, step_size: 1}",
    )  # fmt: skip
    experiment = Experiment(cfg, tmp_path)
    module = experiment.training.build_module(0)
    optimizers = module.configure_optimizers()
    optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    assert (
        isinstance(scheduler, torch.optim.lr_scheduler.StepLR)
        and optimizers["lr_scheduler"]["interval"] == "step"
    )
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(cfg.train.lr * 0.1)  # StepLR's gamma
    assert module.loss.label_smoothing == 0.1 and module.loss.ignore_index == 255
    experiment.run()
    logged = read_rows(tmp_path / "train" / "cycle_000" / "metrics.csv")
    assert len([row for row in logged if row.get("train/loss_step")]) >= 2  # the loss of every step
