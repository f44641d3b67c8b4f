"""LabelState, the budget rules and the Oracle: what is labelled and what it cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alseg.acquisition.budget import initial_images, spend
from alseg.clicks import clip_polygon, contour_clicks, polygon_clicks
from alseg.data.base import IGNORE_INDEX
from alseg.data.synthetic import synthetic_splits
from alseg.errors import AlsegError
from alseg.labels.ledger import CostLedger
from alseg.labels.oracle import Oracle
from alseg.labels.state import LabelState
from alseg.regions.boxes import Grid, WholeImage


@pytest.fixture(scope="module")
def data():
    return synthetic_splits(train=40, val=2, test=2, size=32, seed=3)


def make_oracle(pool, regions) -> Oracle:
    return Oracle(pool, LabelState(regions.maps(pool), pool.image_size), CostLedger())


@pytest.mark.parametrize(("rows", "cols", "height", "width"), [(1, 1, 8, 8), (3, 4, 32, 30), (5, 2, 17, 9)])
def test_grid_tiles_the_image_exactly_once(rows, cols, height, width) -> None:
    cover = np.zeros((height, width), dtype=int)
    for y0, x0, y1, x1 in Grid(rows, cols).boxes(height, width):
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()


def test_grid_larger_than_image_is_refused() -> None:
    with pytest.raises(AlsegError, match="does not fit"):
        Grid(10, 10).boxes(4, 4)


def test_oracle_charges_every_cost_unit_for_whole_images(data) -> None:
    # Images whose objects lie wholly inside: their clicks are exactly their vertex counts.
    inside = [
        i
        for i in range(len(data.train))
        if all(((v >= 0) & (v <= 32)).all() for _, v in data.train.polygons(i))
    ][:2]
    oracle = make_oracle(data.train, WholeImage())
    cost = oracle.reveal([(i, 0) for i in inside], cycle=0)
    expected_clicks = sum(len(v) for i in inside for _, v in data.train.polygons(i))
    assert cost == {"images": 2.0, "pixels": 2 * 32 * 32, "regions": 2.0, "clicks": expected_clicks}
    assert oracle.ledger.spent == cost
    assert oracle.state.labelled_images().tolist() == inside
    with pytest.raises(ValueError, match="twice"):
        oracle.reveal([(inside[0], 0)], cycle=1)


def test_training_target_hides_unlabelled_pixels(data) -> None:
    oracle = make_oracle(data.train, Grid(2, 2))
    oracle.reveal([(3, 1)], cycle=0)  # top-right quarter
    target = oracle.training_target(3)
    truth = data.train.target(3)
    assert torch.equal(target[:16, 16:], truth[:16, 16:])
    assert (target[16:, :] == IGNORE_INDEX).all() and (target[:, :16] == IGNORE_INDEX).all()
    assert oracle.ledger.spent["images"] == pytest.approx(0.25)
    assert oracle.state.labelled_fraction() == pytest.approx(0.25 / len(data.train))


def test_spend_pays_exactly_a_geometric_budget(data) -> None:
    oracle = make_oracle(data.train, Grid(2, 2))
    ranked = np.array([[i, r] for i in range(len(data.train)) for r in range(4)])
    revealed = spend(oracle, ranked, "images", 1.5, cycle=1)
    assert len(revealed) == 6 and oracle.ledger.spent["images"] == pytest.approx(1.5)
    assert (oracle.state.labelled_at[revealed[:, 0], revealed[:, 1]] == 1).all()


def test_spend_of_a_click_budget_stops_once_spent(data) -> None:
    oracle = make_oracle(data.train, WholeImage())
    ranked = np.array([[i, 0] for i in range(len(data.train))])
    spend(oracle, ranked, "clicks", 30, cycle=1)
    spent = oracle.ledger.spent["clicks"]
    last_cost = (
        oracle.ledger.spent["clicks"]
        - polygon_clicks(
            [p for i in oracle.state.labelled_images()[:-1] for p in data.train.polygons(int(i))],
            np.array([[0, 0, 32, 32]]),
        )[0]
    )
    assert spent >= 30 and spent - last_cost < 30


def test_remaining_capacity_is_the_unlabelled_pool(data) -> None:
    oracle = make_oracle(data.train, WholeImage())
    oracle.reveal([(0, 0)], cycle=0)
    assert oracle.remaining_capacity("images") == pytest.approx(len(data.train) - 1)


def test_initial_images_are_seeded_and_sized() -> None:
    assert initial_images(100, 10, seed=1).tolist() == initial_images(100, 10, seed=1).tolist()
    assert initial_images(100, 10, seed=1).tolist() != initial_images(100, 10, seed=2).tolist()
    assert len(initial_images(100, 0.25, seed=0)) == 25
    assert len(initial_images(100, 1.0, seed=0)) == 100
    for bad in (0, -3, 1.5, 0.0):
        with pytest.raises(AlsegError, match=r"budget\.initial"):
            initial_images(100, bad, seed=0)
    with pytest.raises(AlsegError, match="pool holds 100"):
        initial_images(100, 101, seed=0)


def test_clip_polygon_inside_outside_and_across() -> None:
    square = np.array([[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0]])
    assert len(clip_polygon(square, (0, 0, 10, 10))) == 4
    assert len(clip_polygon(square, (20, 20, 30, 30))) == 0
    half = clip_polygon(square, (0, 0, 10, 4))  # x <= 4 keeps the left half: 4 corners
    assert len(half) == 4 and half[:, 0].max() == pytest.approx(4.0)
    corner = clip_polygon(square, (0, 0, 4, 4))  # one original vertex + 2 crossings + box corner
    assert len(corner) == 4


def test_contour_clicks_count_the_corners_of_a_rectangle() -> None:
    target = np.zeros((20, 20), dtype=np.int64)
    target[4:12, 5:15] = 1
    target[0:2, 0:2] = IGNORE_INDEX
    clicks = contour_clicks(target, np.array([[0, 0, 20, 20]]), skip_classes=(0, IGNORE_INDEX))
    assert clicks.tolist() == [4]
