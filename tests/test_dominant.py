"""Dominant-class labels, class-balanced scores and the oracle-error upper bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import acquisition_context

from alseg.acquisition.scoring import score_pool
from alseg.data.base import IGNORE_INDEX
from alseg.data.synthetic import synthetic_splits
from alseg.errors import AlsegError
from alseg.experiment import Experiment
from alseg.labels.ledger import CostLedger
from alseg.labels.oracle import Oracle
from alseg.labels.state import LabelState
from alseg.regions.boxes import Grid
from alseg.regions.superpixels import Superpixels
from alseg.results.run_dir import read_rows
from alseg.strategies.oracle_error import OracleError
from alseg.strategies.random import RandomSampling
from alseg.strategies.shaping import ScoreShaping
from alseg.strategies.uncertainty import UncertaintySampling


def hand_made_pool():
    """One 16 x 16 image whose 2 x 2 grid cells hold known class mixtures."""
    pool = synthetic_splits(train=1, val=1, test=1, size=16).train
    truth = np.zeros((16, 16), dtype=np.uint8)
    truth[:8, 8:12] = 2  # top-right cell: half class 2, half class 0
    truth[8:, :8] = 3  # bottom-left: all class 3 ...
    truth[8:10, :8] = IGNORE_INDEX  # ... but a quarter void
    truth[8:, 8:] = 1  # bottom-right: class 1 with a 6-pixel speck of class 4
    truth[12:14, 12:15] = 4
    pool._targets[0] = torch.from_numpy(truth)
    return pool, truth


def entropy_superpixel_run(make_cfg, tmp_path, *overrides: str) -> tuple[Experiment, list, list]:
    """A tiny entropy run on superpixels: the experiment, its cycles.csv rows and, for cycles 1
    and 2, the clicks paid and the units (images, regions) labelled in that cycle."""
    cfg = make_cfg("debug=tiny", "strategy=entropy", "regions=superpixels", *overrides)
    experiment = Experiment(cfg, tmp_path)
    rows = experiment.run()
    labelled = np.load(tmp_path / "state" / "cycle_002.npz")["labelled_at"]
    paid = [(rows[c]["cost_clicks"] - rows[c - 1]["cost_clicks"], labelled == c) for c in (1, 2)]
    return experiment, rows, paid


@pytest.mark.parametrize("share", [0.0, 0.6])
def test_dominant_labels_by_hand_and_their_wrong_share_equals_a_numpy_count(share: float) -> None:
    pool, truth = hand_made_pool()
    oracle = Oracle(pool, LabelState(Grid(2, 2).maps(pool), (16, 16)), CostLedger(), "dominant", share)
    cost = oracle.reveal([(0, r) for r in range(4)], cycle=0)
    assert cost["clicks"] == 4  # one click a region
    given = oracle.training_target(0).numpy()
    # top-left all 0; top-right a tie of 0 and 2 (the lower class wins), or ignore below the share;
    # bottom-left 3 (its void pixels labelled 3 too; 48 of 64 pixels = 0.75 >= 0.6); bottom-right 1.
    assert (given[:8, :8] == 0).all() and (given[8:, :8] == 3).all() and (given[8:, 8:] == 1).all()
    assert (given[:8, 8:] == (0 if share == 0.0 else IGNORE_INDEX)).all()
    known = truth != IGNORE_INDEX
    wrong = known & (given != IGNORE_INDEX) & (given != truth)
    assert oracle.wrong_label_share() == pytest.approx(wrong.sum() / known.sum())
    assert wrong.sum() == (32 if share == 0.0 else 0) + 6  # the class-2 half, the class-4 speck


def test_precise_labels_are_never_wrong_and_cost_polygon_clicks() -> None:
    pool, _ = hand_made_pool()
    oracle = Oracle(pool, LabelState(Grid(2, 2).maps(pool), (16, 16)), CostLedger())
    cost = oracle.reveal([(0, 3)], cycle=0)
    assert cost["clicks"] != 1 and oracle.wrong_label_share() == 0.0
    assert torch.equal(oracle.training_target(0)[8:, 8:], pool.target(0)[8:, 8:])


def test_dominant_runs_pay_one_click_per_labelled_region(make_cfg, tmp_path) -> None:
    cfg = make_cfg("debug=tiny", "strategy=entropy", "regions=superpixels", "budget.annotation=dominant")
    experiment = Experiment(cfg, tmp_path)
    rows = experiment.run()
    labelled = np.load(tmp_path / "state" / "cycle_001.npz")["labelled_at"]
    initial = (labelled == 0).sum()  # every superpixel of the initial images, a click each
    assert (
        rows[0]["cost_clicks"]
        == initial
        == experiment.regions.counts[experiment.state.labelled_at[:, 0] == 0].sum()
    )
    for cycle in (1, 2):
        paid = rows[cycle]["cost_clicks"] - rows[cycle - 1]["cost_clicks"]
        assert paid == (labelled == cycle).sum() > 0
    assert all(0 < row["wrong_label_share"] < 0.5 for row in rows)


def test_the_dominant_ceiling_labels_every_superpixel_of_the_pool(make_cfg, tmp_path) -> None:
    cfg = make_cfg(
        "experiment=full_supervision", "regions=superpixels", "budget.annotation=dominant",
        "dataset.splits.limit=12", "dataset.splits.size=32", "train.epochs=1", "train.min_steps=1",
    )  # fmt: skip
    experiment = Experiment(cfg, tmp_path)
    (row,) = experiment.run()
    assert row["labelled_fraction"] == 1.0 and row["cost_clicks"] == experiment.regions.counts.sum()
    assert row["wrong_label_share"] > 0


def test_class_weights_favour_rare_labelled_classes_and_reweight_scores() -> None:
    pool = synthetic_splits(train=6, val=1, test=1, size=16).train
    pool._targets[:] = 0
    pool._targets[0, :2, :2] = 1  # class 1 is rare among the labelled pixels
    context = acquisition_context(pool)
    context.oracle.reveal([(0, 0), (1, 0)], cycle=0)
    weights = context.labelled_class_weights()
    assert weights[1] > 10 * weights[0] and weights.mean() == pytest.approx(1.0)
    assert weights[5] > weights[1]  # never labelled: the rarest

    class Predicts(torch.nn.Module):  # image i predicts class i everywhere, equally unsure
        def __init__(self) -> None:
            super().__init__()
            self.encoder = lambda images: [images]
            self.decoder = torch.nn.Identity()

        def segmentation_head(self, features: list[torch.Tensor]) -> torch.Tensor:
            images = features[-1]
            logits = torch.zeros(len(images), 6, *images.shape[-2:])
            for row, mean in enumerate(images.mean(dim=(1, 2, 3)).tolist()):
                logits[row, round(mean * 10) % 6] = 1.0
            return logits

    pool._images[:] = (torch.arange(6)[:, None, None, None] * 255 // 10 + 1).to(torch.uint8)
    plain = UncertaintySampling("entropy", "entropy")
    balanced = UncertaintySampling("entropy", "entropy", shaping=ScoreShaping(class_balance=True))
    scores = {}
    for strategy in (plain, balanced):
        context.strategy, context.network = strategy, Predicts()
        scores[strategy.shaping.class_balance] = score_pool(context).score[:, 0]  # weights: the context's
    assert np.allclose(scores[False][2:], scores[False][2])  # plain entropy: all equal
    np.testing.assert_allclose(scores[True][2:], scores[False][2:] * weights[2:].numpy(), rtol=1e-5)


class PredictsMap(torch.nn.Module):
    """Predicts the same label map for every image, each pixel's class at probability 0.6."""

    def __init__(self, labels: np.ndarray, classes: int) -> None:
        super().__init__()
        onehot = torch.nn.functional.one_hot(torch.as_tensor(labels).long(), classes).permute(2, 0, 1)
        self.logits = onehot.float() * np.log(0.6 / (0.4 / (classes - 1)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(images), -1, -1, -1)


def test_purity_is_the_share_of_the_most_predicted_class_and_weighs_the_score() -> None:
    pool, truth = hand_made_pool()
    predicted = np.where(truth == IGNORE_INDEX, 3, truth)  # the model predicts the truth, void as 3
    scores = {}
    for purity in (False, True):
        strategy = UncertaintySampling("entropy", "entropy", shaping=ScoreShaping(purity=purity))
        context = acquisition_context(pool, Grid(2, 2), PredictsMap(predicted, 6), strategy)
        scores[purity] = score_pool(context)
    cells = [predicted[:8, :8], predicted[:8, 8:], predicted[8:, :8], predicted[8:, 8:]]
    by_numpy = [np.bincount(cell.ravel()).max() / cell.size for cell in cells]  # [1, 0.5, 1, 58/64]
    np.testing.assert_allclose(scores[True].units["purity"][0], by_numpy, rtol=1e-6)
    plain = scores[False].score[0]
    assert np.allclose(plain, plain[0])  # every pixel equally unsure: plain entropy ties
    np.testing.assert_allclose(scores[True].score[0], plain * np.array(by_numpy), rtol=1e-5)
    assert scores[True].score[0].argmin() == 1  # the half-and-half cell steps back


def test_oracle_error_queries_where_the_model_is_wrong() -> None:
    """Against random, the units it picks hold a far larger share of misclassified pixels."""
    pool = synthetic_splits(train=30, val=1, test=1, size=32, seed=4).train
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 1))  # a poor model: background everywhere
    with torch.no_grad():
        network[0].weight.zero_()
        network[0].bias.copy_(torch.tensor([1.0, 0, 0, 0, 0, 0]))
    network.encoder = lambda images: [images]
    network.decoder = torch.nn.Identity()
    network.segmentation_head = lambda features: network[0](features[-1])
    errors = {}
    for strategy in (OracleError("oracle_error"), RandomSampling("random")):
        context = acquisition_context(pool, Superpixels(segments=20), network, strategy, budget=40)
        strategy.prepare(context)
        ranked = strategy.rank(score_pool(context), context)[:40]
        wrong = known = 0
        for image, region in ranked.tolist():
            mask = context.regions[image].mask(np.array([region]))
            with torch.no_grad():
                predicted = network(pool.image(image)[None]).argmax(dim=1)[0].numpy()
            truth = pool.target(image).numpy()
            wrong += int(((predicted != truth) & mask).sum())
            known += int(mask.sum())
        errors[strategy.name] = wrong / known
    assert errors["oracle_error"] > errors["random"] + 0.1
    assert errors["oracle_error"] > 0.9


def test_oracle_error_reads_truth_only_through_its_declared_door() -> None:
    pool = synthetic_splits(train=4, val=1, test=1, size=16).train
    context = acquisition_context(pool, strategy=UncertaintySampling("entropy", "entropy"))
    with pytest.raises(AlsegError, match="true labels of unlabelled units"):
        context.true_targets(np.arange(2))
    with pytest.raises(AlsegError, match="true answers of unlabelled units"):
        context.true_answers(np.arange(2))


@pytest.mark.parametrize("annotation", ["dominant", "precise"])
def test_corrected_oracle_error_counts_only_what_the_answer_would_fix(annotation: str) -> None:
    pool, _ = hand_made_pool()
    scores = {}
    for corrected in (False, True):
        oracle = OracleError("oracle_error", corrected=corrected)
        context = acquisition_context(
            pool, Grid(2, 2), PredictsMap(np.zeros((16, 16)), 6), oracle, annotation=annotation
        )
        oracle.prepare(context)
        scores[corrected] = score_pool(context).score[0]
    # The model says 0 everywhere: wrong on the class-2 half of the top-right cell (answered 0
    # with dominant labels: not fixed), on the 48 known pixels of bottom-left (answered 3) and
    # on all of bottom-right (answered 1: the 6-pixel speck of 4 stays wrong). Void pixels
    # count in a cell's area, never as wrong.
    np.testing.assert_allclose(scores[False], [0, 0.5, 0.75, 1.0])
    fixed = [0, 0, 0.75, 58 / 64] if annotation == "dominant" else [0, 0.5, 0.75, 1.0]
    np.testing.assert_allclose(scores[True], fixed)


def test_oracle_error_runs_are_marked_as_reading_ground_truth(make_cfg, tmp_path) -> None:
    cfg = make_cfg("debug=tiny", "strategy=oracle_error", "regions=superpixels", "budget.cycles=1")
    Experiment(cfg, tmp_path).run()
    assert {row["reads_ground_truth"] for row in read_rows(tmp_path / "cycles.csv")} == {1}
