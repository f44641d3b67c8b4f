"""Every strategy in the loop: one contract for all, then what each one must do."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import acquisition_context

from alseg.acquisition.budget import initial_images
from alseg.data.synthetic import random_polygon, synthetic_splits
from alseg.errors import AlsegError
from alseg.experiment import Experiment, build_strategy
from alseg.labels.state import LabelState
from alseg.results.run_dir import read_rows
from alseg.settings import config_dir
from alseg.strategies.base import PoolScores, Strategy
from alseg.strategies.ceal import Ceal
from alseg.strategies.density import InformationDensity
from alseg.strategies.random import RandomSampling
from alseg.strategies.shaping import rank_by_score
from alseg.strategies.suggestive import SuggestiveAnnotation

# Overrides that make each strategy small enough for a test, and a budget that fits it.
TINY_OVERRIDES = {
    "vote_entropy": ["strategy.mc_passes=4"],
    "ceal_melanoma": ["strategy.no_detection=1", "strategy.random=2", "strategy.mc_passes=3"],
    "suggestive": ["strategy.ensemble_size=2"],
    "cereals": ["budget.per_cycle=60", "strategy.cost_steps=10"],
    "vaal": ["strategy.epochs=1", "strategy.side=32", "strategy.width=8"],
}
STRATEGIES = sorted(p.stem for p in (config_dir() / "strategy").glob("*.yaml"))
READS_GROUND_TRUTH = {"oracle_error"}  # besides cereals with strategy.cost=oracle


def run_experiment(make_cfg, path, strategy: str, *extra: str) -> tuple[Experiment, list[dict]]:
    cfg = make_cfg("debug=tiny", f"strategy={strategy}", *TINY_OVERRIDES.get(strategy, []), *extra)
    experiment = Experiment(cfg, path)
    return experiment, experiment.run()


def load_state(path) -> dict[str, np.ndarray]:
    with np.load(path) as saved:
        return dict(saved)


@pytest.mark.parametrize("strategy", STRATEGIES)
class TestStrategyContract:
    def test_spends_its_budget_and_labels_each_unit_once(self, make_cfg, tmp_path, strategy: str) -> None:
        experiment, rows = run_experiment(make_cfg, tmp_path, strategy)
        unit, per_cycle = experiment.budget.unit, experiment.budget.per_cycle
        spent = np.diff([row[f"cost_{unit}"] for row in rows])
        assert len(rows) == 3 and (spent > 0).all()
        if unit == "clicks":
            assert (spent >= per_cycle).all()
        else:
            assert (spent <= per_cycle + 1e-9).all()
        before = load_state(tmp_path / "state" / "cycle_000.npz")["labelled_at"]
        after = load_state(tmp_path / "state" / "cycle_001.npz")["labelled_at"]
        assert (after[before >= 0] == before[before >= 0]).all()  # labels are never taken back
        # State files hold the state after each cycle's query, stamped with the next cycle.
        assert ((after == 2) == ((before < 0) & (after >= 0))).all()

    def test_queries_do_not_depend_on_unlabelled_ground_truth(
        self, make_cfg, tmp_path, strategy: str
    ) -> None:
        cfg = make_cfg(
            "debug=tiny", f"strategy={strategy}", *TINY_OVERRIDES.get(strategy, []), "budget.cycles=1"
        )
        # Only the declared upper bound follows the hidden truth (and must: its door is real).
        assert queries_follow_hidden_truth(cfg, tmp_path) == (strategy in READS_GROUND_TRUTH)


ANSWERED_BY_CLASS = [
    "superpixels budget.annotation=dominant",
    "superpixels budget.annotation=dominant_or_precise budget.dominant_share=0.8",
]
REGION_KINDS = [
    *(p.stem for p in sorted((config_dir() / "regions").glob("*.yaml")) if p.stem != "image"),
    *ANSWERED_BY_CLASS,
]
"""Every region kind of configs/regions/ (a new YAML is contract-tested), and two annotations."""


@pytest.mark.parametrize("regions", REGION_KINDS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_runs_on_every_region_kind_or_stops_before_training(
    make_cfg, tmp_path, strategy: str, regions: str
) -> None:
    kind, *annotation = regions.split()
    cfg = make_cfg(
        "debug=tiny",
        f"strategy={strategy}",
        *TINY_OVERRIDES.get(strategy, []),
        f"regions={kind}",
        *annotation,
    )
    cfg.budget.cycles = 1
    built = build_strategy(cfg.strategy)
    if built.queries == "images":
        with pytest.raises(AlsegError, match="queries whole images; run it with regions=image") as error:
            Experiment(cfg, tmp_path)
        assert "\n" not in str(error.value) and not (tmp_path / "cycles.csv").exists()
        return
    experiment = Experiment(cfg, tmp_path)
    rows = experiment.run()
    unit, per_cycle = experiment.budget.unit, experiment.budget.per_cycle
    spent = rows[1][f"cost_{unit}"] - rows[0][f"cost_{unit}"]
    assert spent >= per_cycle if unit == "clicks" else 0 < spent <= per_cycle + 1e-9
    labelled_at = load_state(tmp_path / "state" / "cycle_000.npz")["labelled_at"]
    assert (labelled_at[~experiment.regions.exists] == -1).all()  # padding is never a unit
    assert (labelled_at == 1).sum() == rows[0]["queried_units"] > 0


@pytest.mark.parametrize(
    "strategy", [s for s in STRATEGIES if s not in ("coreset", "suggestive", "vaal", *READS_GROUND_TRUTH)]
)
def test_superpixel_queries_do_not_depend_on_unlabelled_ground_truth(
    make_cfg, tmp_path, strategy: str
) -> None:
    cfg = make_cfg(
        "debug=tiny",
        f"strategy={strategy}",
        *TINY_OVERRIDES.get(strategy, []),
        "regions=superpixels",
        "budget.cycles=1",
    )
    assert not queries_follow_hidden_truth(cfg, tmp_path)


SHAPED = [s for s in STRATEGIES if "/shaping@_here_" in (config_dir() / "strategy" / f"{s}.yaml").read_text()]
"""Strategies whose config takes the score-shaping keys (configs/shaping/default.yaml)."""


def test_every_strategy_that_scores_takes_score_shaping() -> None:
    assert set(STRATEGIES) - set(SHAPED) == {"random", "coreset", "suggestive"}  # they rank no scores


@pytest.mark.parametrize("strategy", SHAPED)
def test_class_balanced_purity_weighted_power_sampled_dominant_superpixels_run(
    make_cfg, tmp_path, strategy: str
) -> None:
    if strategy == "vaal":
        pytest.skip("vaal queries whole images")
    cfg = make_cfg(
        "debug=tiny", f"strategy={strategy}", *TINY_OVERRIDES.get(strategy, []), "regions=superpixels",
        "budget.annotation=dominant", "strategy.class_balance=true", "strategy.purity=true",
        "strategy.sampling=power", "budget.cycles=1",
    )  # fmt: skip
    experiment = Experiment(cfg, tmp_path)
    rows = experiment.run()
    shaping = experiment.strategy.shaping
    assert shaping.class_balance and shaping.purity and shaping.sampling == "power"
    assert rows[1]["cost_clicks"] - rows[0]["cost_clicks"] == rows[0]["queried_units"] > 0


def test_regions_only_strategies_stop_on_whole_images(make_cfg, tmp_path) -> None:
    cfg = make_cfg("debug=tiny", "strategy=cereals", "regions=image")
    with pytest.raises(AlsegError, match="queries regions: run it with regions=windows"):
        Experiment(cfg, tmp_path)


def test_mc_strategies_without_dropout_stop_before_training(make_cfg, tmp_path) -> None:
    cfg = make_cfg("debug=tiny", "strategy=vote_entropy", "model.network.head_dropout=0.0")
    with pytest.raises(AlsegError, match=r"needs MC dropout .* set model\.network\.head_dropout > 0"):
        Experiment(cfg, tmp_path)
    assert not (tmp_path / "config.yaml").exists()


def scramble_hidden_truth(experiment: Experiment, seed: int) -> None:
    """Replace everything the oracle holds of the unlabelled pool: label maps and polygons
    (the click costs). The synthetic pool has no instance maps."""
    pool = experiment.data.train
    rng = np.random.default_rng(seed)
    hidden = np.setdiff1d(
        np.arange(len(pool)), initial_images(len(pool), experiment.budget.initial, experiment.seed)
    )
    pool._targets[hidden] = torch.randint(0, 6, pool._targets[hidden].shape, dtype=pool._targets.dtype)
    side = pool.image_size[0]
    for image in hidden.tolist():
        count = int(rng.integers(1, 6))
        pool._polygons[image] = [
            (
                int(rng.integers(1, 6)),
                random_polygon(rng, int(rng.integers(3, 9)), side / 2).astype(np.float32),
            )
            for _ in range(count)
        ]


def queries_follow_hidden_truth(cfg, tmp_path, strategy: Strategy | None = None) -> bool:
    """Whether the ranking of one acquisition changes when the hidden ground truth is scrambled.

    The ranking, not the units bought: with a click budget, how many units a cycle buys
    depends on what the annotator's clicks turn out to cost, which is the oracle's answer.
    """
    rankings = []
    for scramble in (False, True):
        experiment = Experiment(cfg, tmp_path / f"scrambled_{scramble}")
        if strategy is not None:
            experiment.strategy = strategy
        if scramble:
            scramble_hidden_truth(experiment, seed=1)
        rank = experiment.strategy.rank

        def recording(scores, context, rank=rank):
            rankings.append(rank(scores, context))
            return rankings[-1]

        experiment.strategy.rank = recording
        experiment.run()
        del experiment.strategy.rank
    return not np.array_equal(*rankings)


class ReadsLabels(RandomSampling):
    """A positive control: ranks images by the share of their hidden pixels that are background."""

    needs_model = False

    def rank(self, scores: PoolScores, context) -> np.ndarray:
        truth = context.pool._dataset  # what the leakage test must catch
        share = np.array([float((truth.target(i) == 0).float().mean()) for i in range(len(truth))])
        return rank_by_score(np.where(scores.available, share[:, None], -np.inf))


class ReadsCosts(RandomSampling):
    """A positive control: ranks images by their hidden polygons' vertex count."""

    needs_model = False

    def rank(self, scores: PoolScores, context) -> np.ndarray:
        truth = context.pool._dataset
        clicks = np.array([float(sum(len(v) for _, v in truth.polygons(i))) for i in range(len(truth))])
        return rank_by_score(np.where(scores.available, clicks[:, None], -np.inf))


class AsksForTrueClicks(RandomSampling):
    """Opens the true-click door without declaring itself an upper bound."""

    needs_model = False

    def rank(self, scores: PoolScores, context) -> np.ndarray:
        return rank_by_score(np.where(scores.available, context.true_clicks(), -np.inf))


@pytest.mark.parametrize("control", [ReadsLabels, ReadsCosts])
def test_the_leakage_test_catches_strategies_that_read_hidden_truth(make_cfg, tmp_path, control) -> None:
    cfg = make_cfg("debug=tiny", "strategy=random", "budget.cycles=1")
    assert queries_follow_hidden_truth(cfg, tmp_path, control("control"))


def test_only_declared_upper_bounds_read_true_clicks(make_cfg, tmp_path) -> None:
    cfg = make_cfg("debug=tiny", "strategy=random", "budget.cycles=1")
    with pytest.raises(AlsegError, match="only an upper-bound ablation"):
        queries_follow_hidden_truth(cfg, tmp_path, AsksForTrueClicks("sneaky"))
    # Exactly one config may read ground truth: cereals with the oracle cost.
    assert {
        name for name in STRATEGIES if strategy_of(make_cfg, name).reads_ground_truth
    } == READS_GROUND_TRUTH
    oracle_cost = strategy_of(make_cfg, "cereals", "strategy.cost=oracle")
    assert oracle_cost.reads_ground_truth
    cfg = make_cfg(
        "debug=tiny",
        "strategy=cereals",
        *TINY_OVERRIDES["cereals"],
        "strategy.cost=oracle",
        "budget.cycles=1",
    )
    assert queries_follow_hidden_truth(cfg, tmp_path / "oracle")  # the door is real
    assert read_rows(tmp_path / "oracle" / "scrambled_False" / "cycles.csv")[0]["reads_ground_truth"] == 1


def strategy_of(make_cfg, name: str, *overrides: str) -> Strategy:
    return build_strategy(make_cfg(f"strategy={name}", *overrides).strategy)


def test_cereals_labels_parts_of_images_in_clicks_without_overlap(make_cfg, tmp_path) -> None:
    experiment, rows = run_experiment(make_cfg, tmp_path, "cereals")
    assert experiment.budget.unit == "clicks" and not experiment.regions.whole_images
    state = LabelState(experiment.regions, experiment.state.image_size)
    state.labelled_at = load_state(tmp_path / "state" / "cycle_000.npz")["labelled_at"]
    partly = [0 < state.pixel_mask(i).mean() < 1 for i in range(24)]
    assert any(partly), "regions should label parts of images"
    overlap = experiment.regions[0].overlap()
    for image in range(24):
        queried = np.flatnonzero(state.labelled_at[image] == 1)
        assert not (overlap[np.ix_(queried, queried)] - np.eye(len(queried)) > 0).any()
    assert rows[1]["labelled_fraction"] < rows[0]["labelled_fraction"] + 4 / 24


def test_region_labels_train_as_long_as_their_pixels_in_whole_images(make_cfg, tmp_path) -> None:
    """An epoch is one pass over the labelled pixels: regions spread over many images do not
    buy more optimizer steps than the same pixels in whole images."""
    epochs = ["train.epochs=3", "train.min_steps=1", "budget.cycles=1"]
    experiment, _ = run_experiment(make_cfg, tmp_path, "cereals", *epochs)
    state = LabelState(experiment.regions, experiment.state.image_size)
    state.labelled_at = load_state(tmp_path / "state" / "cycle_000.npz")["labelled_at"]
    images = state.labelled_images()
    worth = sum(state.pixel_mask(i).mean() for i in images)
    assert worth < len(images) - 1, "the query should label parts of several images"
    logged = read_rows(tmp_path / "train" / "cycle_001" / "metrics.csv")
    batches = math.ceil(len(images) / 4)  # loader batches of 4 over the partly labelled images
    expected = 3 * math.ceil(batches * worth / len(images))
    assert expected < 3 * batches  # what 3 passes over the partly labelled images would take
    assert max(int(row["step"]) for row in logged) + 1 == expected


def test_cereals_oracle_and_constant_costs_run(make_cfg, tmp_path) -> None:
    for cost in ("oracle", "constant"):
        _, rows = run_experiment(
            make_cfg, tmp_path / cost, "cereals", f"strategy.cost={cost}", "budget.cycles=1"
        )
        assert rows[1]["cost_clicks"] > rows[0]["cost_clicks"]


def test_ceal_pseudo_labels_cost_nothing_and_never_override_the_oracle(make_cfg, tmp_path) -> None:
    experiment, rows = run_experiment(make_cfg, tmp_path, "ceal", "strategy.delta=0.05", "budget.cycles=1")
    state = experiment.state
    assert state.pseudo, "a confident model pseudo-labels images"
    oracle_images = state.labelled_images()
    assert not set(state.pseudo) & set(oracle_images.tolist())
    assert rows[1]["cost_images"] == len(oracle_images) == 8  # pseudo-labels are free
    saved = load_state(tmp_path / "state" / "cycle_000.npz")
    assert sorted(saved["pseudo_images"].tolist()) == sorted(state.pseudo)
    image = next(iter(state.pseudo))
    np.testing.assert_array_equal(experiment.oracle.training_target(image).numpy(), state.pseudo[image])
    assert len(state.training_images()) == len(oracle_images) + len(state.pseudo)


def test_ceal_threshold_tightens_with_cycles() -> None:
    ceal = Ceal("ceal", delta=0.9, delta_decay=0.02)
    assert ceal.threshold(0) == pytest.approx(0.9)
    assert ceal.threshold(2) == pytest.approx(0.94)
    assert ceal.threshold(10) == pytest.approx(1.0)


def image_context(n: int, wanted: int):
    """A context over n synthetic whole images whose budget buys `wanted` of them."""
    return acquisition_context(synthetic_splits(train=n, val=1, test=1, size=16).train, budget=wanted)


def test_ceal_melanoma_order_is_uncertain_then_no_detection_then_random() -> None:
    score = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])[:, None]
    foreground = np.array([0.5, 0.0, 0.9, 0.01, 0.8, 0.8, 0.8, 0.8])[:, None]
    scores = PoolScores({"score": score, "foreground": foreground}, None, np.ones((8, 1), dtype=bool))
    ranked = Ceal("ceal_melanoma", no_detection=2, random=1).rank(scores, image_context(8, 5))
    assert ranked[:2, 0].tolist() == [0, 1]  # most uncertain
    assert ranked[2:4, 0].tolist() == [3, 2] or ranked[2:4, 0].tolist() == [3, 4]
    assert sorted(ranked[:, 0].tolist()) == list(range(8))


def test_density_with_beta_zero_is_plain_uncertainty_and_demotes_outliers() -> None:
    context = image_context(4, 2)
    score = np.array([[0.9], [0.5], [0.4], [0.3]])
    descriptors = torch.tensor([[0.0, 1.0], [1.0, 0.1], [1.0, 0.0], [1.0, 0.05]])  # image 0 is an outlier
    scores = PoolScores({"score": score}, descriptors, np.ones((4, 1), dtype=bool))
    plain = InformationDensity("density", beta=0.0).rank(scores, context)
    assert plain[:, 0].tolist() == [0, 1, 2, 3]
    dense = InformationDensity("density", beta=4.0).rank(scores, context)
    assert dense[0, 0] == 1 and dense[-1, 0] == 0


def test_suggestive_chooses_representative_images_among_the_uncertain() -> None:
    context = image_context(6, 2)
    state = context.state
    state.mark(np.array([[5, 0]]), cycle=0, clicks=np.array([1.0]))
    score = np.array([[0.9], [0.8], [0.7], [0.1], [0.05], [-np.inf]])
    # 0 and 1 are near-duplicates; 2 resembles the rest of the pool (3, 4).
    descriptors = torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.1, 1.0], [0.05, 1.0], [0.0, 1.0]])
    scores = PoolScores({"score": score}, descriptors, state.labelled_at < 0)
    strategy = SuggestiveAnnotation("suggestive", candidates=3, select=2)
    ranked = strategy.rank(scores, context)
    chosen = set(ranked[:2, 0].tolist())
    assert 2 in chosen and len(chosen & {0, 1}) == 1  # one of the duplicates, and the representative
    assert 5 not in ranked[:, 0].tolist()


def test_vote_entropy_with_an_ensemble_committee(make_cfg, tmp_path) -> None:
    _, rows = run_experiment(
        make_cfg, tmp_path, "vote_entropy", "strategy.ensemble_size=2", "budget.cycles=1"
    )
    assert rows[1]["cost_images"] == 8
    members = sorted(p.name for p in (tmp_path / "train").iterdir() if "member" in p.name)
    assert members == ["cycle_000_member_1", "cycle_000_member_2"]


def test_suggestive_trains_its_bootstrap_ensemble(make_cfg, tmp_path) -> None:
    run_experiment(make_cfg, tmp_path, "suggestive", "budget.cycles=1")
    members = sorted(p.name for p in (tmp_path / "train").iterdir() if "member" in p.name)
    assert members == ["cycle_000_member_1", "cycle_000_member_2"]
