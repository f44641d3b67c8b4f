"""Dominant or precise answers (budget.annotation=dominant_or_precise): a pure unit gets its
dominant class at one click, a mixed one its exact pixels at a fill click plus the cuts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_dominant import entropy_superpixel_run, hand_made_pool

from alseg.clicks import OutlineSamples, cut_clicks
from alseg.data.base import IGNORE_INDEX
from alseg.errors import AlsegError
from alseg.experiment import Experiment
from alseg.labels.ledger import CostLedger
from alseg.labels.oracle import Oracle
from alseg.labels.state import NO_CLASS, LabelState
from alseg.regions.boxes import Grid


def test_cut_clicks_count_the_corners_inside_and_two_per_crossing() -> None:
    square = OutlineSamples([(1, np.array([[2, 2], [12, 2], [12, 12], [2, 12]], dtype=float))])
    inside = np.zeros((20, 20), dtype=bool)
    inside[:, :7] = True  # the left part: two corners, one stretch in and out
    assert cut_clicks(square, inside) == 2 + 2
    assert cut_clicks(square, np.ones((20, 20), dtype=bool)) == 4  # drawn closed
    band = np.zeros((20, 20), dtype=bool)
    band[5:9] = True  # both sides cross it with no corner inside
    assert cut_clicks(square, band) == 2 * 2
    near = np.zeros((20, 20), dtype=bool)
    near[:, :4] = True  # the left side (x = 2) runs inside the eroded border (cols 1-2): paid
    assert cut_clicks(square, near) == 2 + 2  # its two corners, one stretch in and out
    near[:, 3] = False  # now x = 2 is the eroded border's outer column: not paid again
    assert cut_clicks(square, near) == 0


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


def test_void_in_a_mixed_unit_is_cut_out_like_a_class() -> None:
    oracle, truth = hand_made_oracle(0.95)
    # class 3 with void in rows 8-9: filled with 3, the void's lower edge (y = 10) cut across
    assert oracle.reveal([(0, 2)], cycle=0)["clicks"] == 1 + 2
    assert (oracle.training_target(0).numpy()[8:, :8] == truth[8:, :8]).all()  # void stays void


def test_an_object_filling_a_unit_pays_for_its_outline_against_the_background() -> None:
    """Background (class 0) is not outlined on its own, but an object that fills most of a unit
    must still be cut from it: the exact answer holds the boundary."""
    oracle, truth = hand_made_oracle(0.9)
    assert oracle._pool.unannotated_classes == (0,)
    truth[:8, 8:14] = 2  # top-right: class 2 on 48 of 64 pixels (0.75 < 0.9), background on the right
    truth[:8, 14:] = 0
    oracle._pool._targets[0] = torch.from_numpy(truth)
    assert oracle.reveal([(0, 1)], cycle=0)["clicks"] == 1 + 2  # filled with 2, cut along x = 14
    assert oracle.state.dominant[0, 1] == NO_CLASS
    assert (oracle.training_target(0).numpy()[:8, 8:] == truth[:8, 8:]).all()


def test_mixed_prices_do_not_depend_on_the_training_size(make_cfg, tmp_path) -> None:
    """The same 2 x 2 grid cells of 64 x 80 images, trained at 32 x 40 and at 64 x 80: cuts
    and erosion happen on the image as annotated, so every unit costs the same."""
    from test_human import shapes_folder

    data = shapes_folder(tmp_path / "data", 6, (64, 80))
    prices = []
    for size in ("[32,40]", "[64,80]"):
        cfg = make_cfg(
            "dataset=folder", f"dataset.root={data}", "dataset.classes=[background,disc,bar]",
            "dataset.unannotated_classes=[0]", f"dataset.splits.size={size}", "regions=grid",
            "regions.rows=2", "regions.cols=2", "budget.annotation=dominant_or_precise",
            "budget.dominant_share=0.95", "debug=tiny", "dataset.splits.limit=null",
            "dataset.val_fraction=0.2", "dataset.test_fraction=0.2", "budget.initial=1", "budget.cycles=0",
        )  # fmt: skip
        oracle = Experiment(cfg, tmp_path / size).oracle
        prices.append(
            [oracle.unit_cost(i, r)["clicks"] for i in range(len(oracle.pool_images)) for r in range(4)]
        )
    assert prices[0] == prices[1] and max(prices[0]) > 1


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
