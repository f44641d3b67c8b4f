"""Bad settings stop before anything is built, with one line naming the key and what it accepts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alseg.errors import AlsegError
from alseg.experiment import Experiment

BAD_OVERRIDES = [
    ("budget.per_cycle=abc", "budget.per_cycle='abc' is not valid: it must be a number > 0"),
    ("budget.cycles=two", "budget.cycles='two' is not valid: it must be an integer >= 0"),
    ("budget.cycles=-1", "budget.cycles=-1 is not valid"),
    ("budget.initial=0", "budget.initial=0 is not valid"),
    ("budget.initial=1.5", "budget.initial=1.5 is not valid"),
    ("budget.total=-3", "budget.total=-3 is not valid"),
    ("seed=-1", "seed=-1 is not valid: it must be an integer >= 0"),
    ("seed=1.5", "seed=1.5 is not valid"),
    ("scoring.batch_size=0", "scoring.batch_size=0 is not valid: it must be an integer >= 1"),
    ("train.batch_size=0", "train.batch_size=0 is not valid"),
    ("train.lr=0", "train.lr=0 is not valid: it must be a number > 0"),
    ("train.epochs=0", "train.epochs=0 is not valid"),
    ("train.weight_decay=-0.1", "train.weight_decay=-0.1 is not valid"),
    ("train.reinit=maybe", "train.reinit='maybe' is not valid: it must be true or false"),
    (
        "model.network.head_dropout=1.0",
        "model.network.head_dropout=1.0 is not valid: it must be a probability",
    ),
    ("model.network.head_dropout=-0.1", "model.network.head_dropout=-0.1 is not valid"),
    ("evaluate_on=[train]", "evaluate_on=['train'] is not valid: it must be a list of splits"),
    ("dataset.splits.size=0", "dataset.splits.size=0 is not valid"),
    ("trainer.devices=0", "trainer.devices=0 is not valid"),
    ("trainer.devices=3", "add trainer.strategy=ddp_find_unused_parameters_true"),
    ("strategy=vote_entropy strategy.mc_passes=1", "strategy.mc_passes=1 is not a committee"),
    ("progress=sometimes", "progress='sometimes' is not valid"),
]


@pytest.mark.parametrize(("override", "message"), BAD_OVERRIDES)
def test_a_bad_override_stops_before_anything_is_built(make_cfg, tmp_path, override, message) -> None:
    with pytest.raises(AlsegError) as error:
        Experiment(make_cfg("debug=tiny", *override.split()), tmp_path / "run")
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()  # nothing was written


def test_several_cpu_processes_stay_allowed_and_more_gpus_than_there_are_are_not(make_cfg, tmp_path) -> None:
    import torch

    ddp = ["trainer.strategy=ddp_find_unused_parameters_true"]
    Experiment(make_cfg("debug=tiny", "trainer.devices=2", "trainer.accelerator=cpu", *ddp), tmp_path)
    Experiment(make_cfg("debug=tiny", "trainer.devices=2", *ddp), tmp_path)  # auto: CPU processes
    gpus = torch.cuda.device_count()
    with pytest.raises(AlsegError, match=f"asks for {gpus + 2} GPUs but this machine has {gpus}"):
        cfg = make_cfg("debug=tiny", f"trainer.devices={gpus + 2}", "trainer.accelerator=gpu", *ddp)
        Experiment(cfg, tmp_path / "gpus")


@pytest.mark.parametrize("override", ["budget.per_cycle=abc", "seed=-1"])
def test_the_command_prints_one_line_and_no_traceback(tmp_path: Path, override: str) -> None:
    command = [sys.executable, "-m", "alseg.cli", "run", "debug=tiny", override, f"hydra.run.dir={tmp_path}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ})
    assert done.returncode == 2
    errors = [line for line in (done.stdout + done.stderr).splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and override.split("=")[0] in errors[0]
    assert "Traceback" not in done.stdout + done.stderr


def test_debug_tiny_keeps_full_supervision_and_prices_budgets_in_their_unit(make_cfg, tmp_path) -> None:
    from alseg.experiment import Experiment

    experiment = Experiment(make_cfg("experiment=full_supervision", "debug=tiny"), tmp_path / "full")
    assert (experiment.cfg.budget.initial, experiment.cfg.budget.cycles) == (1.0, 0)
    rows = experiment.run()
    assert len(rows) == 1 and rows[0]["labelled_fraction"] == 1.0  # not a random AL run
    # a click budget is 4 images' worth of the tiny synthetic set's clicks, not 4 clicks
    assert make_cfg("budget=clicks", "debug=tiny").budget.per_cycle == 4 * 50
    assert make_cfg("budget=images", "debug=tiny").budget.per_cycle == 4
    assert make_cfg("budget.unit=pixels", "debug=tiny").budget.per_cycle == 4 * 32 * 32


def test_windows_too_small_to_mean_a_region_are_refused(make_cfg, tmp_path) -> None:
    """Cityscapes' 128-pixel windows at width 2048 become 2 pixels on debug=tiny's 32-pixel
    images: refused in one line instead of querying specks."""
    from alseg.errors import AlsegError
    from alseg.experiment import Experiment

    cfg = make_cfg("strategy=cereals", "debug=tiny", "dataset.reference_width=2048")
    with pytest.raises(AlsegError, match="makes windows of 2 pixels") as error:
        Experiment(cfg, tmp_path / "run")
    assert "\n" not in str(error.value)
    Experiment(make_cfg("strategy=cereals", "debug=tiny"), tmp_path / "ok")  # 8-pixel windows: fine
