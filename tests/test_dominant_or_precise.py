"""Dominant or precise answers (budget.annotation=dominant_or_precise): a pure unit gets its
dominant class at one click, a mixed one its exact pixels at a fill click plus the cuts."""

from __future__ import annotations

import numpy as np
import pytest
from test_dominant import entropy_superpixel_run, hand_made_pool

from alseg.budget import CostLedger
from alseg.costs import OutlineSamples, cut_clicks
from alseg.data.base import IGNORE_INDEX
from alseg.errors import AlsegError
from alseg.experiment import Experiment
from alseg.labels import NO_CLASS, LabelState
from alseg.oracle import Oracle
from alseg.regions import Grid


def test_cut_clicks_count_the_corners_inside_and_two_per_crossing() -> None:
    square = OutlineSamples([(1, np.array([[2, 2], [12, 2], [12, 12], [2, 12]], dtype=float))])
    inside = np.zeros((20, 20), dtype=bool)
    inside[:, :7] = True  # the left part: two corners, one stretch in and out
    assert cut_clicks(square, inside, (20, 20)) == 2 + 2
    assert cut_clicks(square, np.ones((20, 20), dtype=bool), (20, 20)) == 4  # drawn closed
    band = np.zeros((20, 20), dtype=bool)
    band[5:9] = True  # both sides cross it with no corner inside
    assert cut_clicks(square, band, (20, 20)) == 2 * 2
    assert cut_clicks(square, ~inside & ~band, (40, 40)) == 0  # at twice the size it lies top-left


def hand_made_oracle(share: float) -> tuple[Oracle, np.ndarray]:
    pool, truth = hand_made_pool()
    pool._polygons[0] = None  # outlines traced from the hand-made label map
    state = LabelState(Grid(2, 2).maps(pool), (16, 16))
    return Oracle(pool, state, CostLedger(), "dominant_or_precise", share), truth


def test_mixed_units_are_answered_exactly_and_pay_a_fill_click_and_their_cuts() -> None:
    oracle, truth = hand_made_oracle(0.6)
    costs = [oracle.reveal([(0, r)], cycle=0)["clicks"] for r in range(4)]
    # top-right: a tie of 0 and 2 (0.5 < 0.6), filled with 0 and cut along the straight edge of
    # class 2 (2 clicks); the others are pure enough: one click each
    assert costs == [1, 1 + 2, 1, 1]
    assert oracle.state.dominant[0, :4].tolist() == [0, NO_CLASS, 3, 1]
    given = oracle.training_target(0).numpy()
    assert (given[:8, 8:] == truth[:8, 8:]).all()
    known = truth != IGNORE_INDEX
    assert oracle.wrong_label_share() == pytest.approx(6 / known.sum())  # the speck of class 4 only
    answers = oracle.true_answers(np.array([0]))[0].numpy()
    assert (answers[:8, 8:] == truth[:8, 8:]).all() and (answers[:8, :8] == 0).all()


def test_a_mixed_unit_of_one_class_and_void_costs_one_click() -> None:
    oracle, truth = hand_made_oracle(0.95)
    assert oracle.reveal([(0, 2)], cycle=0)["clicks"] == 1  # class 3 and void: nothing to cut
    assert (oracle.training_target(0).numpy()[8:, :8] == truth[8:, :8]).all()


def test_dominant_or_precise_runs_pay_what_each_answer_costs(make_cfg, tmp_path) -> None:
    experiment, rows, paid = entropy_superpixel_run(
        make_cfg, tmp_path, "budget.annotation=dominant_or_precise", "budget.dominant_share=0.9"
    )
    state = experiment.state
    for clicks, new in paid:
        assert clicks == pytest.approx(state.clicks[new].sum()) and new.any()
    pure = state.labelled & (state.dominant != NO_CLASS)
    assert (state.clicks[pure] == 1).all() and (state.clicks[state.labelled & ~pure] > 1).any()
    assert all(0 <= row["wrong_label_share"] < 0.1 for row in rows)  # only what pure units miss


def test_dominant_or_precise_at_share_zero_is_refused(make_cfg, tmp_path) -> None:
    cfg = make_cfg("debug=tiny", "regions=superpixels", "budget.annotation=dominant_or_precise")
    with pytest.raises(AlsegError, match=r"budget\.dominant_share in"):
        Experiment(cfg, tmp_path)
